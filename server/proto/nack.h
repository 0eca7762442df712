/* Retransmission (RFC 4585 §6.2.1 generic NACK) support for one RTP stream:
 *
 * - hk_nack_cache_*: the downlink retransmission cache. A ring of power-of-two slots
 *   indexed by sequence number, each holding a copy of a plain (unprotected) RTP packet
 *   and its arrival time. All memory is allocated once at creation; put and get never
 *   allocate.
 * - hk_nack_tracker_*: the uplink loss tracker. Fed every received sequence number of a
 *   publisher's stream, it lists the missing ones to put in NACKs, retrying each a few
 *   times, and gives up on old ones. Reordering and wrap-around (65535 -> 0) are
 *   handled; a jump of more than HK_NACK_MAX_JUMP is a stream restart, not a loss.
 *
 * Neither does I/O nor uses globals; one instance belongs to one stream on one loop. */
#ifndef HK_NACK_H
#define HK_NACK_H

#include <stddef.h>
#include <stdint.h>

#define HK_NACK_PACKET_MAX  1500 /* largest packet the cache stores */
#define HK_NACK_MAX_JUMP    1000 /* larger sequence jumps reset the tracker */
#define HK_NACK_MAX_MISSING 256  /* tracker capacity: older losses are forgotten first */

typedef struct hk_nack_cache_s hk_nack_cache_t;

/* Creates a cache of `slots` packets (a power of two, 1..32768). Returns NULL on
 * allocation failure or a bad slot count. Free with hk_nack_cache_destroy. */
hk_nack_cache_t *hk_nack_cache_create(size_t slots);

/* Frees the cache (NULL is allowed). */
void hk_nack_cache_destroy(hk_nack_cache_t *cache);

/* Stores a copy of buf[0..len) as packet `seq` received at now_ms, replacing whatever
 * the slot held, except that a packet older than the slot's current one by at most
 * HK_NACK_MAX_JUMP (a late arrival, not a restart) does not evict it. Returns 0,
 * HK_EINVAL if len is 0 or above HK_NACK_PACKET_MAX, or HK_ERANGE for a late packet
 * that was not stored. */
int hk_nack_cache_put(hk_nack_cache_t *cache, uint16_t seq, const uint8_t *buf, size_t len,
                      uint64_t now_ms);

/* Finds packet `seq` stored less than max_age_ms ago. On success sets *buf (valid until
 * the next put) and *len and returns 0; returns HK_ENOENT if the packet was never
 * stored, has been overwritten by another sequence number, or is too old. */
int hk_nack_cache_get(const hk_nack_cache_t *cache, uint16_t seq, uint64_t now_ms,
                      uint64_t max_age_ms, const uint8_t **buf, size_t *len);

/* Tracker settings. */
typedef struct {
    uint32_t max_retries;       /* NACKs per missing packet before giving up, e.g. 10 */
    uint64_t retry_interval_ms; /* wait between two NACKs of one packet, e.g. ~RTT */
    uint64_t max_age_ms;        /* give up on a packet missing for this long, e.g. 1000 */
} hk_nack_tracker_config_t;

typedef struct {
    uint16_t seq;
    uint32_t retries;
    uint64_t detected_ms;
    uint64_t last_sent_ms;
} hk_nack_missing_t;

/* Embeddable in the owning stream; initialise with hk_nack_tracker_init. */
typedef struct {
    hk_nack_tracker_config_t config;
    int started;
    uint16_t highest; /* highest sequence number received */
    size_t n_missing;
    hk_nack_missing_t missing[HK_NACK_MAX_MISSING]; /* ascending sequence order */
    uint64_t resets;                                /* restarts seen (for stats) */
} hk_nack_tracker_t;

/* Initialises (or resets) the tracker with `config`. */
void hk_nack_tracker_init(hk_nack_tracker_t *t, const hk_nack_tracker_config_t *config);

/* Records the arrival of `seq` at now_ms: a newer seq marks the gap before it missing
 * (at most HK_NACK_MAX_MISSING, the newest kept), an older one is taken off the missing
 * list (reordering or a retransmission), and a jump of more than HK_NACK_MAX_JUMP either
 * way restarts tracking at seq with nothing missing. */
void hk_nack_tracker_received(hk_nack_tracker_t *t, uint16_t seq, uint64_t now_ms);

/* Writes up to max sequence numbers due for a NACK at now_ms into out (ascending) and
 * returns how many. Each returned packet's retry count and send time are updated;
 * packets past max_retries or max_age_ms are dropped from the list. */
size_t hk_nack_tracker_collect(hk_nack_tracker_t *t, uint64_t now_ms, uint16_t *out, size_t max);

/* Number of sequence numbers currently considered missing. */
size_t hk_nack_tracker_missing(const hk_nack_tracker_t *t);

#endif

/* A subscriber transport's pacer (libwebrtc's PacingController, mediasoup's paced sender),
 * for the zero-copy send path. Sans-IO: time is an argument, the caller sends.
 *
 *   rate     HK_PACER_FACTOR_PCT (GoogCC's 2.5x) of the rate it is given, at least
 *            HK_PACER_MIN_BPS: a leaky bucket of that rate. The transport gives it the
 *            larger of its downlink estimate and the throughput its feedback acknowledged:
 *            the estimate starts low and lags a rising link, and a pacer is there to
 *            smooth bursts, not to hold back what the link was seen to carry. A packet
 *            may leave while the budget is positive; what it sends is charged, so a full
 *            packet always fits.
 *   burst    after an idle time the budget holds HK_PACER_BURST_US worth. While packets
 *            wait it holds up to HK_PACER_INTERVAL_US (two 20 ms ticks): the queue is
 *            drained from the transport's tick and at each of its packets, and the time in
 *            between is owed to it, so the queue leaves at the full rate whatever the tick.
 *   queue    the fast path never copies: a packet leaves from the link's slot when nothing
 *            waits and the budget allows. Otherwise it is copied (plain, before SRTP) into
 *            an entry of the host's pool and leaves later, audio first (Opus, by its fixed
 *            payload type), each kind in FIFO order.
 *   twcc     a queued packet's transport-wide sequence number is written at release (its
 *            offset is found when it is queued): numbers leave in increasing order whatever
 *            the order of release, probe padding included, and the writer keeps writing
 *            the next number to leave.
 *   bound    what waits is at most HK_PACER_MAX_QUEUE_US of sending at the pacing rate (in
 *            bytes), and nothing waits longer than that: beyond it the oldest video is
 *            dropped (audio only when no video waits), and counted. 500 ms: later than that
 *            a video packet is late for any jitter buffer, its loss is repaired by NACK or a
 *            key frame sooner than its delivery (GoogCC's 2 s queue limit speeds the pacer
 *            up instead, which a relay cannot: it does not own the encoder).
 *   pool     entries are allocated in slabs of HK_PACER_SLAB when the pool runs out (never
 *            per packet), up to the pool's ceiling; they return to the pool when sent,
 *            dropped or cleared, and the slabs are freed with the pool. One pool per host
 *            (worker): memory follows the backlog there is, not the number of transports.
 *            A pool at its ceiling makes the transport drop its oldest video instead.
 *
 * Ownership: the host owns the pool (hk_pacer_pool_init/free); a transport embeds its
 * pacer, and hk_pacer_clear returns its entries before the transport goes. */
#ifndef HK_PACER_H
#define HK_PACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/io/tx.h"

#define HK_PACER_FACTOR_PCT   250
#define HK_PACER_MIN_BPS      250000 /* audio and retransmissions pass a collapsed estimate */
#define HK_PACER_BURST_US     5000   /* at once after an idle time */
#define HK_PACER_INTERVAL_US  40000  /* owed to a waiting queue at most */
#define HK_PACER_MAX_QUEUE_US 500000 /* of sending at the pacing rate; also the oldest age */
#define HK_PACER_SLAB         64     /* entries allocated at once */
#define HK_PACER_PACKET_MAX   HK_TX_BUF_SIZE

/* Queue delay histogram: bucket i counts delays <= hk_pacer_delay_bounds_us[i], the last
 * one everything above. */
#define HK_PACER_DELAY_BUCKETS 10
extern const uint32_t hk_pacer_delay_bounds_us[HK_PACER_DELAY_BUCKETS - 1];

typedef struct hk_pacer_entry_s {
    struct hk_pacer_entry_s *next;
    uint64_t queued_us;
    uint16_t len;
    uint16_t twcc_offset; /* of the transport-wide sequence number's value; 0: none */
    uint8_t data[HK_PACER_PACKET_MAX];
} hk_pacer_entry_t;

/* What went through the pacers of a pool (exported by the API). */
typedef struct {
    uint64_t queued;  /* packets that waited */
    uint64_t dropped; /* ... dropped from a queue (over its bound, or the pool's) */
    uint64_t delay_bucket[HK_PACER_DELAY_BUCKETS];
    uint64_t delay_count;
    uint64_t delay_sum_us;
} hk_pacer_counters_t;

typedef struct {
    hk_pacer_entry_t *free;
    void *slabs;        /* a list: each slab starts with the pointer to the next */
    size_t entries;     /* allocated */
    size_t used;        /* in queues */
    size_t max_entries; /* ceiling */
    hk_pacer_counters_t counters;
} hk_pacer_pool_t;

typedef struct {
    hk_pacer_entry_t *head, *tail;
} hk_pacer_fifo_t;

typedef struct {
    hk_pacer_pool_t *pool; /* NULL: off (no estimate), nothing is paced */
    uint64_t rate_bps;
    int64_t budget;   /* micro-bits (bits x 10^6): rate_bps x elapsed microseconds */
    int64_t burst;    /* the budget's cap while nothing waits */
    int64_t owed;     /* ... and while something waits (also the debt's floor) */
    uint64_t last_us; /* of the last refill */
    size_t max_bytes; /* what may wait */
    hk_pacer_fifo_t audio, video;
    size_t bytes;     /* waiting */
    size_t packets;   /* waiting */
    uint64_t queued;  /* packets that waited, in all */
    uint64_t dropped; /* ... dropped */
    uint64_t max_delay_us;
} hk_pacer_t;

/* A pool of at most max_entries entries (at least one slab's worth); none allocated yet. */
void hk_pacer_pool_init(hk_pacer_pool_t *pool, size_t max_entries);
/* Frees the slabs. Every pacer of the pool must have been cleared. */
void hk_pacer_pool_free(hk_pacer_pool_t *pool);

/* Starts pacing at HK_PACER_FACTOR_PCT of estimate_bps with entries from pool; the budget
 * starts full (a burst). */
void hk_pacer_init(hk_pacer_t *p, hk_pacer_pool_t *pool, uint64_t estimate_bps, uint64_t now_us);
/* A new estimate: the rate, the burst and the queue's bound follow. */
void hk_pacer_set_rate(hk_pacer_t *p, uint64_t estimate_bps);
/* Returns every waiting entry to the pool (the packets are not sent) and stops pacing. */
void hk_pacer_clear(hk_pacer_t *p);

static inline void hk_pacer_refill(hk_pacer_t *p, uint64_t now_us)
{
    if (now_us <= p->last_us)
        return;
    uint64_t elapsed = now_us - p->last_us;
    p->last_us = now_us;
    if (elapsed > HK_PACER_INTERVAL_US)
        elapsed = HK_PACER_INTERVAL_US;
    int64_t cap = p->packets ? p->owed : p->burst;
    p->budget += (int64_t)(p->rate_bps * elapsed);
    if (p->budget > cap)
        p->budget = cap;
}

/* The fast path's question: may a packet leave now, straight from the link's slot? True
 * when nothing waits and the budget is positive. */
static inline bool hk_pacer_may_send(hk_pacer_t *p, uint64_t now_us)
{
    if (p->packets)
        return false;
    hk_pacer_refill(p, now_us);
    return p->budget > 0;
}

/* A packet of bytes (as sent) left, paced or not (padding and retransmissions too): it is
 * charged to the budget, down to the floor of the debt. */
static inline void hk_pacer_on_sent(hk_pacer_t *p, size_t bytes)
{
    p->budget -= (int64_t)bytes * 8000000;
    if (p->budget < -p->owed)
        p->budget = -p->owed;
}

/* Copies a plain RTP packet into the queue. Over the bound (or with the pool at its
 * ceiling) the oldest video waiting is dropped first. Returns 0; HK_EINVAL when it is no
 * RTP packet or longer than HK_PACER_PACKET_MAX; HK_ENOMEM when no entry could be had
 * (the packet is dropped). Both are counted as dropped. */
int hk_pacer_push(hk_pacer_t *p, const uint8_t *pkt, size_t len, uint64_t now_us);

/* The packet to send now, audio first, or NULL: nothing waits, or the budget is spent.
 * Drops what waited longer than HK_PACER_MAX_QUEUE_US on the way. Send it, then
 * hk_pacer_pop. */
const hk_pacer_entry_t *hk_pacer_due(hk_pacer_t *p, uint64_t now_us);
/* The same whatever the budget (a probe cluster sends waiting media first). */
const hk_pacer_entry_t *hk_pacer_head(hk_pacer_t *p, uint64_t now_us);
/* Removes the packet hk_pacer_due or hk_pacer_head returned (its entry returns to the
 * pool) and records how long it waited. */
void hk_pacer_pop(hk_pacer_t *p, uint64_t now_us);

static inline bool hk_pacer_waiting(const hk_pacer_t *p)
{
    return p->packets != 0;
}

#endif

/* Everything the media transports of one thread share: the STUN and DTLS contexts, the
 * maps that find a transport for a datagram (server ufrag on first contact, then the
 * tuple), the timer wheel of their deadlines, scratch space and the counters.
 * Sans-IO: datagrams and time come in as arguments; datagrams go out through the
 * link of the tuple they are addressed to (io/tx.h). Nothing here is global, nothing
 * here is libuv: a unit test drives a host with a fake link and a fake clock. */
#ifndef HK_RTC_HOST_H
#define HK_RTC_HOST_H

#include <stdint.h>

#include "common/map.h"
#include "common/wheel.h"
#include "config/config.h"
#include "server/io/tx.h"
#include "server/proto/demux.h"
#include "server/proto/stun.h"
#include "server/rtc/pacer.h"

typedef struct hk_transport_s hk_transport_t;
typedef struct hk_dtls_context_s hk_dtls_context_t;
typedef struct hk_cert_s hk_cert_t;

/* The path a transport's media takes, from its selected tuple: UDP straight to the
 * client, ICE-TCP, or UDP from a TURN server relaying for the client. */
typedef enum { HK_PATH_UDP = 0, HK_PATH_TCP, HK_PATH_RELAYED, HK_PATH_COUNT } hk_path_t;

const char *hk_path_name(hk_path_t path);

#define HK_RTC_MAX_RELAYS 8
/* The pacer pool's ceiling per connection the server accepts: a 500 ms queue of
 * 1200-byte packets at 1.2 Mbit/s each, were every connection backlogged at once (one
 * connection's own bound comes from its rate, rtc/pacer.h). */
#define HK_RTC_PACER_ENTRIES_PER_CONNECTION 64

/* Media counters (exported by the API). */
typedef struct {
    uint64_t dropped_demux[HK_DEMUX_DROP_COUNT]; /* by demux reason */
    uint64_t dropped_unvalidated;        /* DTLS/RTP/RTCP from a tuple ICE has not validated */
    uint64_t stun[HK_STUN_STATUS_COUNT]; /* STUN requests by outcome */
    uint64_t dtls_errors;
    uint64_t dtls_connected;
    uint64_t dtls_before_answer; /* ClientHello before the answer's fingerprint: dropped */
    uint64_t srtp_unprotect_errors;
    uint64_t srtcp_unprotect_errors;
    uint64_t srtp_protect_errors;
    uint64_t before_keys;  /* SRTP/SRTCP before DTLS finished: dropped */
    uint64_t unknown_ssrc; /* RTP from a publisher with an SSRC it did not announce */
    uint64_t rtp_packets_in;
    uint64_t rtp_bytes_in;
    uint64_t rtcp_packets_in;
    uint64_t forwarded_packets;
    uint64_t forwarded_bytes;
    uint64_t nacks_received;  /* NACKed sequence numbers from subscribers */
    uint64_t retransmissions; /* answered from the cache */
    uint64_t retransmission_misses;
    uint64_t nacks_rate_limited; /* NACKed packets over max_nacks_per_second: not answered */
    uint64_t nacks_sent;         /* NACK packets to publishers */
    uint64_t plis_received;
    uint64_t plis_sent;
    uint64_t plis_throttled;
    uint64_t plis_moved_down; /* from congested subscribers: answered by a lower layer */
    uint64_t layer_dropped;   /* packets of temporal layers (and SVC spatial layers) a
                                 subscriber's link does not carry: left out of its stream */
    uint64_t twcc_feedback_sent;
    uint64_t twcc_feedback_received; /* subscribers' transport-cc feedback, fed to estimates */
    uint64_t probe_clusters;         /* bandwidth probes sent to subscribers */
    uint64_t padding_packets;        /* RTX padding sent in those probes */
    uint64_t padding_bytes;
    uint64_t receiver_reports_sent;
    uint64_t sender_reports_relayed;
    uint64_t rtcp_errors; /* malformed compound packets */
    uint64_t rtp_errors;  /* RTP that authenticated but does not parse */
    uint64_t consent_expired;
    uint64_t ice_tuple_conflicts;     /* checks refused: the tuple is another transport's */
    uint64_t ice_nominations_refused; /* USE-CANDIDATE elsewhere while the selected has consent */
    uint64_t ice_consent_checks_sent; /* our checks to such a tuple (retransmissions too) */
    uint64_t ice_tuple_moves;         /* the selected tuple moved after our check was answered */
    uint64_t timer_fires;             /* transport deadlines handled (the wheel) */
    uint64_t selected_paths[HK_PATH_COUNT];  /* gauge: transports sending on each path */
    uint64_t path_selections[HK_PATH_COUNT]; /* tuples selected, by path */
    uint64_t tuples_closed;                  /* validated tuples whose link closed (TCP) */
    uint64_t relay_packets; /* pushed to other workers' relays (a channel over workers) */
    uint64_t relay_dropped; /* not: the relay's ring was full */
} hk_media_counters_t;

typedef struct hk_rtc_host_s {
    const hk_config_t *config;
    hk_stun_t *stun;
    hk_dtls_context_t *dtls;
    hk_map_t ufrags; /* server ufrag (8 ice-chars packed) -> transport */
    hk_map_t tuples; /* hk_tuple_key -> transport (hk_tuple_equal confirms) */
    hk_wheel_t wheel;
    int n_transports;
    uint8_t work[HK_TX_BUF_SIZE];       /* scratch for RTCP building */
    uint32_t relays[HK_RTC_MAX_RELAYS]; /* TURN servers' IPv4 addresses (network order) */
    uint64_t now_us; /* the latest receive or tick time: send times for the estimates */
    int n_relays;
    hk_media_counters_t counters;
    /* The entries the transports' pacers hold packets in (rtc/pacer.h): allocated as
     * backlogs need them, up to HK_RTC_PACER_ENTRIES_PER_CONNECTION x max_connections. */
    hk_pacer_pool_t pacer_pool;
    /* A diagnostic (the worker sets it from HISOKA_BWE_TRACE): every downlink estimate's
     * inputs, one line each (hk_bwe_set_recorder's), with its transport's log id. */
    void (*bwe_trace)(void *user, const char *log_id, const char *line);
    void *bwe_trace_user;
#ifdef HK_TEST_ATTACKS
    /* Test builds only (make attack-build): the worker sets it from HISOKA_TEST_ATTACK=replay.
     * The server then attacks its own subscribers: it replays earlier video frames to
     * them (sfu/consumer.c). */
    bool attack_replay;
#endif
} hk_rtc_host_t;

/* Creates the STUN and DTLS contexts (the DTLS one with cert). Returns 0 or HK_EIO. */
int hk_rtc_host_init(hk_rtc_host_t *host, const hk_config_t *config, const hk_cert_t *cert);
void hk_rtc_host_free(hk_rtc_host_t *host);

/* One datagram from `from` (buf is writable). now_us: the receive time in microseconds
 * of a monotonic clock (its milliseconds are the host's time base). */
void hk_rtc_host_receive(hk_rtc_host_t *host, uint8_t *buf, size_t len, const hk_tuple_t *from,
                         uint64_t now_us);

/* The link of `tuple` closed (an ICE-TCP connection): the transport that validated it
 * forgets it, and moves its media to another validated tuple if it was sending there.
 * One map lookup. */
void hk_rtc_host_forget_tuple(hk_rtc_host_t *host, const hk_tuple_t *tuple);

/* The TURN servers' addresses: UDP from them is counted as relayed. */
void hk_rtc_host_set_relays(hk_rtc_host_t *host, const uint32_t *ipv4, int n);

/* The path of a tuple (HK_PATH_*). */
hk_path_t hk_rtc_host_path(const hk_rtc_host_t *host, const hk_tuple_t *tuple);

/* Runs the deadlines that came (consent, DTLS retransmission, NACK, feedback, reports). */
void hk_rtc_host_tick(hk_rtc_host_t *host, uint64_t now_ms);

/* The packed key of a server ufrag of exactly HK_RTC_UFRAG_LEN characters, 0 otherwise. */
#define HK_RTC_UFRAG_LEN 8
uint64_t hk_rtc_ufrag_key(const char *ufrag);

#endif

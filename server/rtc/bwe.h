/* Send-side downlink bandwidth estimation for one subscriber transport, with GoogCC's
 * structure (libwebrtc m77, as mediasoup uses it; constants in RESEARCH.md §6):
 *
 *   send history  transport-wide sequence number -> (send time, size), recorded when the
 *                 packet really leaves;
 *   feedback      transport-cc results (received + arrival time, or lost), in any parsed
 *                 form: hk_bwe_feedback_t, or hk_rtcp_twcc_packet_t through
 *                 hk_bwe_on_twcc;
 *   delay-based   packets grouped by 5 ms of send time (bursts joined), the trendline of
 *                 the accumulated one-way delay gradient over 20 groups (smoothing 0.9,
 *                 gain 4), an overuse detector with an adaptive threshold (12.5 ms
 *                 initially, k_up 0.0087, k_down 0.039, 6..600 ms, overuse after 10 ms),
 *                 and AIMD rate control (x1.08 per second, additive near the last
 *                 congested rate, back-off to 0.85 x acknowledged throughput);
 *   loss-based    loss <= 2 %: +8 % a second; 2..10 %: hold; > 10 %: x (1 - loss / 2),
 *                 at most every 300 ms + RTT; capped by the delay-based estimate;
 *   probing       a cluster of packets sent above the estimate; the rate at which it
 *                 arrived, when higher, becomes the estimate at once;
 *   estimate      the smaller of the two, within [min_bps, max_bps].
 *
 * Sans-IO: time is an argument (microseconds, any monotonic origin for send and "now";
 * arrival times are on the receiver's clock, only their differences are used). One
 * allocation at creation; nothing per packet or per feedback. */
#ifndef HK_BWE_H
#define HK_BWE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto/rtcp.h"

/* Packets remembered (a power of two dividing 65536): 4 s at 1000 packets a second. */
#define HK_BWE_HISTORY 4096

typedef struct hk_bwe_s hk_bwe_t;

typedef struct {
    uint64_t start_bps; /* initial estimate, e.g. 300 kbps */
    uint64_t min_bps;   /* the estimate never goes below (e.g. 30 kbps) */
    uint64_t max_bps;   /* nor above */
} hk_bwe_config_t;

/* One packet's fate as a feedback reports it. */
typedef struct {
    uint16_t seq; /* transport-wide sequence number */
    bool received;
    int64_t arrival_us; /* receiver clock; received only */
} hk_bwe_feedback_t;

typedef enum {
    HK_BWE_NORMAL = 0,
    HK_BWE_UNDERUSE,
    HK_BWE_OVERUSE,
} hk_bwe_usage_t;

typedef struct {
    uint64_t estimate_bps;
    uint64_t delay_based_bps;
    uint64_t loss_based_bps;
    uint64_t acked_bps;        /* acknowledged throughput (0 until measured) */
    double loss_ratio;         /* last loss report: lost / expected, 0..1 */
    hk_bwe_usage_t usage;      /* the overuse detector's last state */
    double trend;              /* trendline slope (ms of delay per ms) */
    double threshold_ms;       /* the detector's adaptive threshold */
    int64_t rtt_us;            /* smoothed, from feedback or hk_bwe_on_rtt */
    uint64_t packets_sent;     /* recorded by hk_bwe_on_sent */
    uint64_t packets_acked;    /* reported received */
    uint64_t packets_lost;     /* reported lost and never received since */
    uint64_t feedback_unknown; /* feedback entries for packets not in the history */
    uint64_t probes;           /* clusters begun */
    uint64_t probes_raised;    /* ... whose result raised the estimate */
    uint64_t probes_failed;    /* ... too few packets back to measure */
    uint64_t probes_queued;    /* ... whose delay grew: they filled a queue, not measured */
    uint64_t probe_bps;        /* the last measured cluster's rate */
} hk_bwe_stats_t;

/* Creates an estimator. Returns NULL on allocation failure or an invalid config
 * (min > max, start outside [min, max], min 0). Free with hk_bwe_free. */
hk_bwe_t *hk_bwe_new(const hk_bwe_config_t *config);

void hk_bwe_free(hk_bwe_t *bwe);

/* Records a packet with transport-wide sequence number seq and size bytes (the whole
 * RTP packet as sent, SRTP tag included) leaving at send_us. Call it when the packet
 * really leaves (after the send call, or from the pacer), not when it is queued. A
 * sequence number reused after HK_BWE_HISTORY packets replaces the old entry. */
void hk_bwe_on_sent(hk_bwe_t *bwe, uint16_t seq, size_t size, int64_t send_us);

/* Feeds one feedback's n results, received at now_us, and updates the estimate.
 * Entries for packets never recorded (or overwritten) are ignored and counted; a packet
 * reported twice counts once; one first reported lost then received counts as received.
 * Returns the number of entries used. */
size_t hk_bwe_on_feedback(hk_bwe_t *bwe, const hk_bwe_feedback_t *results, size_t n,
                          int64_t now_us);

/* The same for the output of hk_rtcp_parse_twcc. */
size_t hk_bwe_on_twcc(hk_bwe_t *bwe, const hk_rtcp_twcc_packet_t *pkts, size_t n, int64_t now_us);

/* Probing. Packets recorded between hk_bwe_probe_begin and hk_bwe_probe_end form a
 * cluster: the sender sends them (media and padding) at a rate above the estimate for a
 * short while. Once the feedback reported them all (or a second after the end), the rate
 * at which they arrived is measured, and a result above the estimate becomes the
 * estimate (libwebrtc's ProbeController/ProbeBitrateEstimator). One cluster at a time:
 * beginning a new one forgets the last. */
void hk_bwe_probe_begin(hk_bwe_t *bwe, int64_t now_us);
void hk_bwe_probe_end(hk_bwe_t *bwe, int64_t now_us);
/* True from hk_bwe_probe_begin until that cluster was measured or given up. */
bool hk_bwe_probing(const hk_bwe_t *bwe);

/* A round-trip time measured elsewhere (RTCP RR's DLSR); used instead of the
 * feedback-derived one. */
void hk_bwe_on_rtt(hk_bwe_t *bwe, int64_t rtt_us);

/* A recorder of every input, for a real session's trace (tests/unit/test_bwe.c replays
 * recorded ones): one line of text per input, without a newline:
 *   s SEND_US SEQ SIZE     hk_bwe_on_sent
 *   p SEQ ARRIVAL_US       one feedback entry (ARRIVAL_US -1: lost) ...
 *   f NOW_US               ... the feedback they came in, fed at NOW_US
 *   b NOW_US / e NOW_US    hk_bwe_probe_begin / hk_bwe_probe_end
 *   r RTT_US               hk_bwe_on_rtt
 * record NULL: none (the default). */
typedef void (*hk_bwe_recorder_t)(void *user, const char *line);
void hk_bwe_set_recorder(hk_bwe_t *bwe, hk_bwe_recorder_t record, void *user);

/* True while the link shows congestion: the last loss report above the loss-based rule's
 * decrease threshold (10 %), or the delay detector in overuse. */
bool hk_bwe_congested(const hk_bwe_t *bwe);

/* The current estimate, in bits per second. */
uint64_t hk_bwe_estimate(const hk_bwe_t *bwe);

/* The acknowledged throughput over the last window, in bits per second (0 until
 * measured). */
uint64_t hk_bwe_acked(const hk_bwe_t *bwe);

void hk_bwe_get_stats(const hk_bwe_t *bwe, hk_bwe_stats_t *out);

#endif

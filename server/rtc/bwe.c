/* Send-side bandwidth estimation in GoogCC's structure (see bwe.h). Names follow
 * libwebrtc m77's modules/congestion_controller/goog_cc and modules/remote_bitrate_estimator
 * so the two can be read side by side; the code is our own. */
#include "server/rtc/bwe.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inter-arrival grouping (inter_arrival.cc, delay_based_bwe.cc). */
#define GROUP_LENGTH_US       5000
#define BURST_DELTA_US        5000
#define MAX_BURST_US          100000
#define REORDER_RESET_COUNT   3
#define ARRIVAL_JUMP_RESET_US 3000000
/* Trendline estimator (trendline_estimator.cc). */
#define TREND_WINDOW         20
#define TREND_SMOOTHING      0.9
#define TREND_THRESHOLD_GAIN 4.0
#define TREND_MAX_DELTAS     60
/* Overuse detector (overuse_detector.cc). */
#define THRESHOLD_INITIAL_MS 12.5
#define THRESHOLD_K_UP       0.0087
#define THRESHOLD_K_DOWN     0.039
#define THRESHOLD_MIN_MS     6.0
#define THRESHOLD_MAX_MS     600.0
#define MAX_ADAPT_OFFSET_MS  15.0
#define MAX_TIME_DELTA_MS    100.0
#define OVERUSE_TIME_MS      10.0
/* AIMD (aimd_rate_control.cc). */
#define AIMD_BETA              0.85
#define AIMD_INCREASE          1.08
#define AIMD_MIN_INCREASE      1000.0
#define AIMD_FRAME_RATE        30.0
#define AIMD_PACKET_BITS       (1200.0 * 8)
#define AIMD_MIN_NEAR_MAX      4000.0
#define AIMD_RESPONSE_EXTRA_US 100000
#define AIMD_REDUCE_MIN_US     10000
#define AIMD_REDUCE_MAX_US     200000
#define LINK_ALPHA             0.05
/* Acknowledged throughput. */
#define ACKED_WINDOW_US   500000
#define ACKED_MIN_SPAN_US 150000
#define ACKED_RING        2048
/* Loss-based (send_side_bandwidth_estimation.cc). */
#define LOSS_MIN_EXPECTED 20
#define LOSS_LOW          0.02
#define LOSS_HIGH         0.10
#define LOSS_INCREASE     1.08
#define LOSS_DECREASE_US  300000
#define LOSS_HISTORY_US   1000000
#define LOSS_HISTORY      64
#define RTT_DEFAULT_US    100000
#define LOSS_NARROWED     0.6 /* arrival rate below this x send rate: the link narrowed */
#define SCRATCH           1024
/* Probing (probe_bitrate_estimator.cc): a cluster counts once this many of its packets
 * arrived, or it is given up a second after it ended. */
#define PROBE_MIN_PACKETS   5
#define PROBE_TIMEOUT_US    1000000
#define PROBE_MIN_SPAN_US   1000
#define PROBE_RECV_FRACTION 0.9 /* received slower than this x sent: the link's rate */
/* Fewer of its packets arrived than this (in percent): a policer dropped the rest, and
 * what passed it went through at the rate of its burst allowance, not of the link
 * (libwebrtc's kMinReceivedProbesRatio). */
#define PROBE_MIN_RECEIVED_PCT 80
#define PROBE_UTILIZATION      0.95 /* ... of which this much is taken */
/* One-way delay that grew by more than this from the cluster's first packet to its last:
 * the cluster filled a queue, and its arrival rate says more about a burst allowance than
 * about the link (a token bucket lets a short burst through at line rate). */
#define PROBE_MAX_DELAY_GROWTH_US 10000

typedef struct {
    int64_t send_us;
    uint32_t size;
    uint16_t seq;
    uint8_t state;   /* 0 free, 1 sent, 2 reported lost, 3 received */
    uint8_t cluster; /* probe cluster it was sent in, 0: none */
} sent_t;

enum { SLOT_FREE, SLOT_SENT, SLOT_LOST, SLOT_RECEIVED };

typedef struct {
    bool valid;
    int64_t first_send_us;
    int64_t last_send_us;
    int64_t first_arrival_us;
    int64_t complete_us; /* last arrival */
} group_t;

typedef struct {
    int64_t send_us;
    int64_t arrival_us;
    uint32_t size;
} acked_t;

typedef struct {
    int64_t time_us;
    double bps;
} history_t;

/* The probe cluster being sent or waiting for its feedback. */
typedef struct {
    uint8_t id; /* 0: none yet */
    bool sending;
    bool done; /* evaluated (or given up) */
    uint32_t sent, reported, received;
    uint64_t sent_bytes, recv_bytes;
    int64_t first_send_us, last_send_us, end_us;
    int64_t first_arrival_us, last_arrival_us;
    /* One-way delay (arrival - send, clocks apart) of the first and last sent of its
     * received packets. */
    int64_t first_sent_us, first_delay_us, last_sent_us, last_delay_us;
} probe_t;

enum { RATE_HOLD, RATE_INCREASE, RATE_DECREASE };

struct hk_bwe_s {
    hk_bwe_config_t config;
    sent_t sent[HK_BWE_HISTORY];

    /* inter-arrival */
    group_t current, previous;
    int reordered;

    /* trendline + detector */
    int num_deltas;
    int64_t first_arrival_us;
    bool have_first_arrival;
    double accumulated_ms;
    double smoothed_ms;
    double window_x[TREND_WINDOW], window_y[TREND_WINDOW];
    int window_len, window_head;
    double trend, prev_trend;
    double threshold_ms;
    int64_t last_threshold_us;
    double time_over_using_ms;
    int overuse_counter;
    hk_bwe_usage_t usage;

    /* AIMD */
    double delay_bps;
    int rate_state;
    int64_t last_change_us;
    bool have_link;
    double link_kbps, link_var;

    /* acked throughput: received packets by arrival time */
    acked_t acked[ACKED_RING];
    size_t acked_head, acked_len;
    uint64_t acked_bytes;
    double acked_bps;

    /* loss-based */
    double loss_bps;
    uint32_t lost_acc, expected_acc;
    double loss_ratio;
    bool have_loss_report;
    int64_t last_decrease_us;
    bool have_decrease;
    history_t min_history[LOSS_HISTORY];
    size_t min_head, min_len;

    /* RTT */
    int64_t rtt_us;
    bool rtt_external;

    probe_t probe;
    uint16_t last_sent_seq;
    bool have_sent;

    hk_bwe_stats_t counters;
    hk_bwe_recorder_t record;
    void *record_user;
    acked_t scratch[SCRATCH];
};

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

hk_bwe_t *hk_bwe_new(const hk_bwe_config_t *config)
{
    if (!config || config->min_bps == 0 || config->min_bps > config->max_bps ||
        config->start_bps < config->min_bps || config->start_bps > config->max_bps)
        return NULL;
    hk_bwe_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->config = *config;
    b->threshold_ms = THRESHOLD_INITIAL_MS;
    b->last_threshold_us = -1;
    b->time_over_using_ms = -1;
    b->delay_bps = (double)config->start_bps;
    b->loss_bps = (double)config->start_bps;
    b->rate_state = RATE_HOLD;
    b->last_change_us = -1;
    b->rtt_us = RTT_DEFAULT_US;
    return b;
}

void hk_bwe_free(hk_bwe_t *bwe)
{
    free(bwe);
}

void hk_bwe_set_recorder(hk_bwe_t *bwe, hk_bwe_recorder_t record, void *user)
{
    bwe->record = record;
    bwe->record_user = user;
}

static void recordf(hk_bwe_t *bwe, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void recordf(hk_bwe_t *bwe, const char *fmt, ...)
{
    char line[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    bwe->record(bwe->record_user, line);
}

void hk_bwe_on_sent(hk_bwe_t *bwe, uint16_t seq, size_t size, int64_t send_us)
{
    if (bwe->record)
        recordf(bwe, "s %lld %u %zu", (long long)send_us, seq, size);
    bwe->last_sent_seq = seq;
    bwe->have_sent = true;
    sent_t *s = &bwe->sent[seq % HK_BWE_HISTORY];
    s->send_us = send_us;
    s->size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    s->seq = seq;
    s->state = SLOT_SENT;
    s->cluster = 0;
    bwe->counters.packets_sent++;
    probe_t *p = &bwe->probe;
    if (p->sending) {
        s->cluster = p->id;
        if (p->sent++ == 0)
            p->first_send_us = send_us;
        p->last_send_us = send_us;
        p->sent_bytes += s->size;
    }
}

void hk_bwe_probe_begin(hk_bwe_t *bwe, int64_t now_us)
{
    if (bwe->record)
        recordf(bwe, "b %lld", (long long)now_us);
    probe_t *p = &bwe->probe;
    uint8_t id = (uint8_t)(p->id == UINT8_MAX ? 1 : p->id + 1);
    *p = (probe_t){.id = id, .sending = true};
    bwe->counters.probes++;
}

void hk_bwe_probe_end(hk_bwe_t *bwe, int64_t now_us)
{
    if (bwe->record)
        recordf(bwe, "e %lld", (long long)now_us);
    probe_t *p = &bwe->probe;
    if (!p->sending)
        return;
    p->sending = false;
    p->end_us = now_us;
}

bool hk_bwe_probing(const hk_bwe_t *bwe)
{
    return bwe->probe.id && !bwe->probe.done;
}

void hk_bwe_on_rtt(hk_bwe_t *bwe, int64_t rtt_us)
{
    if (bwe->record)
        recordf(bwe, "r %lld", (long long)rtt_us);
    if (rtt_us <= 0)
        return;
    bwe->rtt_us = rtt_us;
    bwe->rtt_external = true;
}

/* ---- acknowledged throughput ---- */

static void acked_add(hk_bwe_t *b, int64_t arrival_us, uint32_t size)
{
    if (b->acked_len == ACKED_RING) {
        b->acked_bytes -= b->acked[b->acked_head].size;
        b->acked_head = (b->acked_head + 1) % ACKED_RING;
        b->acked_len--;
    }
    acked_t *a = &b->acked[(b->acked_head + b->acked_len) % ACKED_RING];
    a->arrival_us = arrival_us;
    a->size = size;
    b->acked_len++;
    b->acked_bytes += size;
    int64_t newest = arrival_us;
    while (b->acked_len > 1 && newest - b->acked[b->acked_head].arrival_us > ACKED_WINDOW_US) {
        b->acked_bytes -= b->acked[b->acked_head].size;
        b->acked_head = (b->acked_head + 1) % ACKED_RING;
        b->acked_len--;
    }
    int64_t span = newest - b->acked[b->acked_head].arrival_us;
    if (span >= ACKED_MIN_SPAN_US) {
        /* The oldest packet's bytes arrived before the span began. */
        uint64_t bytes = b->acked_bytes - b->acked[b->acked_head].size;
        b->acked_bps = (double)bytes * 8e6 / (double)span;
    }
}

/* ---- overuse detector and trendline ---- */

static void update_threshold(hk_bwe_t *b, double modified_trend, int64_t now_us)
{
    if (b->last_threshold_us < 0)
        b->last_threshold_us = now_us;
    double abs_trend = fabs(modified_trend);
    if (abs_trend > b->threshold_ms + MAX_ADAPT_OFFSET_MS) {
        /* A latency spike: do not adapt to it. */
        b->last_threshold_us = now_us;
        return;
    }
    double k = abs_trend < b->threshold_ms ? THRESHOLD_K_DOWN : THRESHOLD_K_UP;
    double dt_ms = fmin((double)(now_us - b->last_threshold_us) / 1000.0, MAX_TIME_DELTA_MS);
    b->threshold_ms += k * (abs_trend - b->threshold_ms) * dt_ms;
    b->threshold_ms = clamp(b->threshold_ms, THRESHOLD_MIN_MS, THRESHOLD_MAX_MS);
    b->last_threshold_us = now_us;
}

static void detect(hk_bwe_t *b, double send_delta_ms, int64_t now_us)
{
    if (b->num_deltas < 2) {
        b->usage = HK_BWE_NORMAL;
        return;
    }
    int n = b->num_deltas < TREND_MAX_DELTAS ? b->num_deltas : TREND_MAX_DELTAS;
    double modified = n * b->trend * TREND_THRESHOLD_GAIN;
    if (modified > b->threshold_ms) {
        if (b->time_over_using_ms < 0)
            b->time_over_using_ms = send_delta_ms / 2;
        else
            b->time_over_using_ms += send_delta_ms;
        b->overuse_counter++;
        if (b->time_over_using_ms > OVERUSE_TIME_MS && b->overuse_counter > 1 &&
            b->trend >= b->prev_trend) {
            b->time_over_using_ms = 0;
            b->overuse_counter = 0;
            b->usage = HK_BWE_OVERUSE;
        }
    } else if (modified < -b->threshold_ms) {
        b->time_over_using_ms = -1;
        b->overuse_counter = 0;
        b->usage = HK_BWE_UNDERUSE;
    } else {
        b->time_over_using_ms = -1;
        b->overuse_counter = 0;
        b->usage = HK_BWE_NORMAL;
    }
    b->prev_trend = b->trend;
    update_threshold(b, modified, now_us);
}

static double linear_fit_slope(const hk_bwe_t *b, double fallback)
{
    double sx = 0, sy = 0;
    for (int i = 0; i < b->window_len; i++) {
        sx += b->window_x[i];
        sy += b->window_y[i];
    }
    double mx = sx / b->window_len, my = sy / b->window_len;
    double num = 0, den = 0;
    for (int i = 0; i < b->window_len; i++) {
        num += (b->window_x[i] - mx) * (b->window_y[i] - my);
        den += (b->window_x[i] - mx) * (b->window_x[i] - mx);
    }
    return den == 0 ? fallback : num / den;
}

static void trendline_update(hk_bwe_t *b, double recv_delta_ms, double send_delta_ms,
                             int64_t arrival_us, int64_t now_us)
{
    double delta_ms = recv_delta_ms - send_delta_ms;
    if (b->num_deltas < 1000)
        b->num_deltas++;
    if (!b->have_first_arrival) {
        b->first_arrival_us = arrival_us;
        b->have_first_arrival = true;
    }
    b->accumulated_ms += delta_ms;
    b->smoothed_ms = TREND_SMOOTHING * b->smoothed_ms + (1 - TREND_SMOOTHING) * b->accumulated_ms;
    int slot;
    if (b->window_len < TREND_WINDOW) {
        slot = b->window_len++;
    } else {
        slot = b->window_head;
        b->window_head = (b->window_head + 1) % TREND_WINDOW;
    }
    b->window_x[slot] = (double)(arrival_us - b->first_arrival_us) / 1000.0;
    b->window_y[slot] = b->smoothed_ms;
    if (b->window_len == TREND_WINDOW)
        b->trend = linear_fit_slope(b, b->trend);
    detect(b, send_delta_ms, now_us);
}

/* One received packet, in arrival order (inter_arrival.cc). */
static void inter_arrival(hk_bwe_t *b, int64_t send_us, int64_t arrival_us, int64_t now_us)
{
    group_t *cur = &b->current;
    if (!cur->valid) {
        *cur = (group_t){true, send_us, send_us, arrival_us, arrival_us};
        return;
    }
    if (send_us < cur->first_send_us)
        return; /* sent before the group being built: out of order */
    bool new_group;
    int64_t ts_delta = send_us - cur->last_send_us;
    int64_t arrival_delta = arrival_us - cur->complete_us;
    if (ts_delta == 0)
        new_group = false;
    else if (arrival_delta - ts_delta < 0 && arrival_delta <= BURST_DELTA_US &&
             arrival_us - cur->first_arrival_us < MAX_BURST_US)
        new_group = false; /* a burst: packets queued behind each other */
    else
        new_group = send_us - cur->first_send_us > GROUP_LENGTH_US;
    if (!new_group) {
        if (send_us > cur->last_send_us)
            cur->last_send_us = send_us;
        if (arrival_us > cur->complete_us)
            cur->complete_us = arrival_us;
        return;
    }
    if (b->previous.valid) {
        int64_t send_delta = cur->last_send_us - b->previous.last_send_us;
        int64_t recv_delta = cur->complete_us - b->previous.complete_us;
        if (recv_delta - send_delta > ARRIVAL_JUMP_RESET_US ||
            recv_delta - send_delta < -ARRIVAL_JUMP_RESET_US) {
            /* The receiver's clock jumped: start over. */
            b->previous.valid = false;
            *cur = (group_t){true, send_us, send_us, arrival_us, arrival_us};
            return;
        }
        if (recv_delta < 0) {
            if (++b->reordered >= REORDER_RESET_COUNT) {
                b->reordered = 0;
                b->previous.valid = false;
                *cur = (group_t){true, send_us, send_us, arrival_us, arrival_us};
                return;
            }
        } else {
            b->reordered = 0;
            trendline_update(b, (double)recv_delta / 1000.0, (double)send_delta / 1000.0,
                             cur->complete_us, now_us);
        }
    }
    b->previous = *cur;
    *cur = (group_t){true, send_us, send_us, arrival_us, arrival_us};
}

/* ---- AIMD rate control ---- */

static void link_update(hk_bwe_t *b, double sample_bps)
{
    double sample = sample_bps / 1000.0;
    if (!b->have_link) {
        b->link_kbps = sample;
        b->link_var = 0.4;
        b->have_link = true;
    } else {
        b->link_kbps = (1 - LINK_ALPHA) * b->link_kbps + LINK_ALPHA * sample;
    }
    double norm = fmax(b->link_kbps, 1.0);
    double error = b->link_kbps - sample;
    b->link_var = (1 - LINK_ALPHA) * b->link_var + LINK_ALPHA * error * error / norm;
    b->link_var = clamp(b->link_var, 0.4, 2.5);
}

static double link_deviation(const hk_bwe_t *b)
{
    return sqrt(b->link_var * b->link_kbps);
}

static double near_max_increase_bps_per_s(const hk_bwe_t *b)
{
    double bits_per_frame = b->delay_bps / AIMD_FRAME_RATE;
    double packets_per_frame = ceil(bits_per_frame / AIMD_PACKET_BITS);
    if (packets_per_frame < 1)
        packets_per_frame = 1;
    double avg_packet_bits = bits_per_frame / packets_per_frame;
    double response_ms = (double)(b->rtt_us + AIMD_RESPONSE_EXTRA_US) / 1000.0;
    return fmax(AIMD_MIN_NEAR_MAX, avg_packet_bits * 1000.0 / response_ms);
}

static bool time_to_reduce_further(const hk_bwe_t *b, int64_t now_us)
{
    int64_t interval = b->rtt_us;
    if (interval < AIMD_REDUCE_MIN_US)
        interval = AIMD_REDUCE_MIN_US;
    if (interval > AIMD_REDUCE_MAX_US)
        interval = AIMD_REDUCE_MAX_US;
    if (b->last_change_us < 0 || now_us - b->last_change_us >= interval)
        return true;
    return b->acked_bps > 0 && b->delay_bps / 2 > b->acked_bps;
}

static void aimd_update(hk_bwe_t *b, int64_t now_us)
{
    hk_bwe_usage_t usage = b->usage;
    if (usage == HK_BWE_OVERUSE && !time_to_reduce_further(b, now_us))
        return;
    switch (usage) {
    case HK_BWE_OVERUSE:
        b->rate_state = RATE_DECREASE;
        break;
    case HK_BWE_UNDERUSE:
        b->rate_state = RATE_HOLD;
        break;
    default:
        if (b->rate_state == RATE_HOLD) {
            b->rate_state = RATE_INCREASE;
            b->last_change_us = now_us;
        }
        break;
    }
    if (b->last_change_us < 0)
        b->last_change_us = now_us;
    double acked = b->acked_bps;
    double rate = b->delay_bps;
    if (b->rate_state == RATE_INCREASE) {
        if (b->have_link && rate > (b->link_kbps + 3 * link_deviation(b)) * 1000.0)
            b->have_link = false; /* well above the last congestion point: forget it */
        double dt_s = fmin((double)(now_us - b->last_change_us) / 1e6, 1.0);
        if (b->have_link) {
            rate += near_max_increase_bps_per_s(b) * dt_s;
        } else {
            rate += fmax(rate * (pow(AIMD_INCREASE, dt_s) - 1.0), AIMD_MIN_INCREASE * dt_s);
        }
        /* Never far above what actually gets through. */
        double cap = 1.5 * acked + 10000.0;
        if (acked > 0 && rate > b->delay_bps && rate > cap)
            rate = fmax(b->delay_bps, cap);
        b->last_change_us = now_us;
    } else if (b->rate_state == RATE_DECREASE) {
        double base = acked > 0 ? acked : b->delay_bps;
        rate = AIMD_BETA * base;
        if (rate > b->delay_bps) {
            if (b->have_link)
                rate = AIMD_BETA * b->link_kbps * 1000.0;
            if (rate > b->delay_bps)
                rate = b->delay_bps;
        }
        if (acked > 0) {
            if (b->have_link && acked / 1000.0 < b->link_kbps - 3 * link_deviation(b))
                b->have_link = false; /* far below the last congestion point */
            link_update(b, acked);
        }
        b->rate_state = RATE_HOLD;
        b->last_change_us = now_us;
    }
    b->delay_bps = clamp(rate, (double)b->config.min_bps, (double)b->config.max_bps);
}

/* ---- loss-based ---- */

/* What was sent over the acknowledged-throughput window before now, from the history
 * (read back from the latest packet; only when loss is high, so not per packet). */
static double send_rate(const hk_bwe_t *b, int64_t now_us)
{
    if (!b->have_sent)
        return 0;
    uint64_t bytes = 0;
    uint16_t seq = b->last_sent_seq;
    for (int i = 0; i < HK_BWE_HISTORY; i++, seq--) {
        const sent_t *s = &b->sent[seq % HK_BWE_HISTORY];
        if (s->state == SLOT_FREE || s->seq != seq || now_us - s->send_us > ACKED_WINDOW_US)
            break;
        bytes += s->size;
    }
    return (double)bytes * 8e6 / ACKED_WINDOW_US;
}

static void loss_update(hk_bwe_t *b, int64_t now_us)
{
    /* Minimum of the last second (a monotonic deque). */
    while (b->min_len > 0 && now_us - b->min_history[b->min_head].time_us > LOSS_HISTORY_US) {
        b->min_head = (b->min_head + 1) % LOSS_HISTORY;
        b->min_len--;
    }
    double rate = b->loss_bps;
    if (b->have_loss_report) {
        if (b->loss_ratio <= LOSS_LOW) {
            double base = b->min_len ? b->min_history[b->min_head].bps : rate;
            double up = base * LOSS_INCREASE + 1000.0;
            if (up > rate)
                rate = up;
        } else if (b->loss_ratio > LOSS_HIGH) {
            if (!b->have_decrease || now_us - b->last_decrease_us >= LOSS_DECREASE_US + b->rtt_us) {
                b->have_decrease = true;
                b->last_decrease_us = now_us;
                rate = rate * (1.0 - 0.5 * b->loss_ratio);
                /* Heavy loss, and much less arriving than was sent: the link narrowed
                 * below the sending rate, and carries about what arrives. GoogCC's step
                 * alone takes seconds to come down that far (each step at most halves,
                 * one per 300 ms + RTT); random loss does not cut the arrival rate so. */
                if (b->acked_bps > 0 && rate > AIMD_BETA * b->acked_bps &&
                    b->acked_bps < LOSS_NARROWED * send_rate(b, now_us))
                    rate = AIMD_BETA * b->acked_bps;
            }
        }
    }
    if (rate > b->delay_bps)
        rate = b->delay_bps;
    rate = clamp(rate, (double)b->config.min_bps, (double)b->config.max_bps);
    b->loss_bps = rate;
    while (b->min_len > 0 &&
           b->min_history[(b->min_head + b->min_len - 1) % LOSS_HISTORY].bps >= rate)
        b->min_len--;
    if (b->min_len == LOSS_HISTORY) {
        b->min_head = (b->min_head + 1) % LOSS_HISTORY;
        b->min_len--;
    }
    b->min_history[(b->min_head + b->min_len) % LOSS_HISTORY] = (history_t){now_us, rate};
    b->min_len++;
}

/* ---- feedback ---- */

static int by_arrival(const void *a, const void *b)
{
    const acked_t *x = a, *y = b;
    if (x->arrival_us != y->arrival_us)
        return x->arrival_us < y->arrival_us ? -1 : 1;
    return x->send_us < y->send_us ? -1 : x->send_us > y->send_us;
}

static void process_received(hk_bwe_t *b, size_t n, int64_t now_us)
{
    qsort(b->scratch, n, sizeof b->scratch[0], by_arrival);
    for (size_t i = 0; i < n; i++) {
        inter_arrival(b, b->scratch[i].send_us, b->scratch[i].arrival_us, now_us);
        acked_add(b, b->scratch[i].arrival_us, b->scratch[i].size);
    }
}

/* What one feedback contributed so far. */
typedef struct {
    size_t used;
    size_t pending;
    int64_t min_rtt_us;
    uint32_t lost, expected, recovered;
} batch_t;

static void ingest(hk_bwe_t *b, batch_t *batch, uint16_t seq, bool received, int64_t arrival_us,
                   int64_t now_us)
{
    if (b->record)
        recordf(b, "p %u %lld", seq, received ? (long long)arrival_us : -1LL);
    sent_t *s = &b->sent[seq % HK_BWE_HISTORY];
    if (s->state == SLOT_FREE || s->seq != seq || s->send_us > now_us) {
        b->counters.feedback_unknown++;
        return;
    }
    batch->used++;
    probe_t *p = &b->probe;
    bool in_probe = s->cluster && s->cluster == p->id && !p->done;
    if (in_probe && s->state == SLOT_SENT)
        p->reported++;
    if (!received) {
        if (s->state == SLOT_SENT) {
            s->state = SLOT_LOST;
            batch->expected++;
            batch->lost++;
            b->counters.packets_lost++;
        }
        return;
    }
    if (s->state == SLOT_RECEIVED)
        return;
    if (s->state == SLOT_LOST) {
        batch->recovered++;
        b->counters.packets_lost--;
    } else {
        batch->expected++;
    }
    s->state = SLOT_RECEIVED;
    b->counters.packets_acked++;
    if (in_probe) {
        if (p->received++ == 0 || arrival_us < p->first_arrival_us)
            p->first_arrival_us = arrival_us;
        if (p->received == 1 || arrival_us > p->last_arrival_us)
            p->last_arrival_us = arrival_us;
        p->recv_bytes += s->size;
        int64_t delay = arrival_us - s->send_us;
        if (p->received == 1 || s->send_us < p->first_sent_us) {
            p->first_sent_us = s->send_us;
            p->first_delay_us = delay;
        }
        if (p->received == 1 || s->send_us >= p->last_sent_us) {
            p->last_sent_us = s->send_us;
            p->last_delay_us = delay;
        }
    }
    int64_t rtt = now_us - s->send_us;
    if (batch->min_rtt_us < 0 || rtt < batch->min_rtt_us)
        batch->min_rtt_us = rtt;
    if (batch->pending == SCRATCH) {
        process_received(b, batch->pending, now_us);
        batch->pending = 0;
    }
    b->scratch[batch->pending++] = (acked_t){s->send_us, arrival_us, s->size};
}

/* A finished cluster whose packets were all reported (or that timed out): what the link
 * carried during it, as libwebrtc's ProbeBitrateEstimator measures it. The send rate and
 * the receive rate each leave out one packet (the span between n packets covers n - 1 of
 * them); the result is the smaller, or 95 % of the receive rate when that is clearly
 * below the send rate (the probe filled the link). A result above the estimate becomes
 * the estimate: that is how the estimate climbs faster than AIMD's 8 % a second. */
static void probe_evaluate(hk_bwe_t *b, int64_t now_us)
{
    probe_t *p = &b->probe;
    if (!p->id || p->sending || p->done)
        return;
    bool complete = p->reported >= p->sent;
    if (!complete && now_us - p->end_us < PROBE_TIMEOUT_US)
        return;
    p->done = true;
    int64_t send_span = p->last_send_us - p->first_send_us;
    int64_t recv_span = p->last_arrival_us - p->first_arrival_us;
    if (p->received < PROBE_MIN_PACKETS || p->received * 100 < p->sent * PROBE_MIN_RECEIVED_PCT ||
        send_span < PROBE_MIN_SPAN_US || recv_span < PROBE_MIN_SPAN_US) {
        b->counters.probes_failed++;
        return;
    }
    double send_bps = (double)p->sent_bytes * (p->sent - 1) / p->sent * 8e6 / (double)send_span;
    double recv_bps =
        (double)p->recv_bytes * (p->received - 1) / p->received * 8e6 / (double)recv_span;
    double result = fmin(send_bps, recv_bps);
    if (recv_bps < PROBE_RECV_FRACTION * send_bps)
        result = PROBE_UTILIZATION * recv_bps;
    result = clamp(result, (double)b->config.min_bps, (double)b->config.max_bps);
    b->counters.probe_bps = (uint64_t)result;
    if (p->last_delay_us - p->first_delay_us > PROBE_MAX_DELAY_GROWTH_US) {
        b->counters.probes_queued++;
        return;
    }
    if (result <= (double)hk_bwe_estimate(b))
        return;
    b->counters.probes_raised++;
    b->delay_bps = result;
    if (b->loss_bps < result)
        b->loss_bps = result;
    b->have_link = false;
    b->rate_state = RATE_HOLD;
    b->last_change_us = now_us;
}

static size_t finish(hk_bwe_t *b, batch_t *batch, int64_t now_us)
{
    if (b->record)
        recordf(b, "f %lld", (long long)now_us);
    if (batch->pending)
        process_received(b, batch->pending, now_us);
    if (batch->min_rtt_us >= 0 && !b->rtt_external)
        b->rtt_us = (b->rtt_us * 7 + batch->min_rtt_us) / 8;
    if (batch->used == 0)
        return 0;
    /* Loss: a late arrival takes back one loss of the window it was counted in (or of
     * this one). */
    b->expected_acc += batch->expected;
    b->lost_acc += batch->lost;
    b->lost_acc = b->lost_acc > batch->recovered ? b->lost_acc - batch->recovered : 0;
    if (b->expected_acc >= LOSS_MIN_EXPECTED) {
        b->loss_ratio = (double)b->lost_acc / (double)b->expected_acc;
        if (b->loss_ratio > 1)
            b->loss_ratio = 1;
        b->have_loss_report = true;
        b->expected_acc = 0;
        b->lost_acc = 0;
    }
    aimd_update(b, now_us);
    loss_update(b, now_us);
    probe_evaluate(b, now_us);
    return batch->used;
}

size_t hk_bwe_on_feedback(hk_bwe_t *bwe, const hk_bwe_feedback_t *results, size_t n, int64_t now_us)
{
    batch_t batch = {0, 0, -1, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        ingest(bwe, &batch, results[i].seq, results[i].received, results[i].arrival_us, now_us);
    return finish(bwe, &batch, now_us);
}

size_t hk_bwe_on_twcc(hk_bwe_t *bwe, const hk_rtcp_twcc_packet_t *pkts, size_t n, int64_t now_us)
{
    batch_t batch = {0, 0, -1, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        ingest(bwe, &batch, pkts[i].seq, pkts[i].received, pkts[i].arrival_us, now_us);
    return finish(bwe, &batch, now_us);
}

bool hk_bwe_congested(const hk_bwe_t *bwe)
{
    return bwe->loss_ratio > LOSS_HIGH || bwe->usage == HK_BWE_OVERUSE;
}

uint64_t hk_bwe_estimate(const hk_bwe_t *bwe)
{
    double e = bwe->loss_bps < bwe->delay_bps ? bwe->loss_bps : bwe->delay_bps;
    return (uint64_t)clamp(e, (double)bwe->config.min_bps, (double)bwe->config.max_bps);
}

uint64_t hk_bwe_acked(const hk_bwe_t *bwe)
{
    return (uint64_t)bwe->acked_bps;
}

void hk_bwe_get_stats(const hk_bwe_t *bwe, hk_bwe_stats_t *out)
{
    *out = bwe->counters;
    out->estimate_bps = hk_bwe_estimate(bwe);
    out->delay_based_bps = (uint64_t)bwe->delay_bps;
    out->loss_based_bps = (uint64_t)bwe->loss_bps;
    out->acked_bps = (uint64_t)bwe->acked_bps;
    out->loss_ratio = bwe->loss_ratio;
    out->usage = bwe->usage;
    out->trend = bwe->trend;
    out->threshold_ms = bwe->threshold_ms;
    out->rtt_us = bwe->rtt_us;
}

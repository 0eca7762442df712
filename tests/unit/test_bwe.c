#include <math.h>
#include <unistd.h>

#include "common/error.h"
#include "server/proto/rtcp.h"
#include "server/rtc/bwe.h"
#include "tests/unit/unit.h"

/* A simulated subscriber link: the sender paces 1200-byte packets at the estimate (up to
 * max_send_bps), a bottleneck of capacity_bps with a drop-tail queue of queue_limit_us,
 * optional random loss before the bottleneck and random extra delay after it (which
 * reorders packets), prop_us each way. Every 50 ms the receiver sends transport-cc
 * feedback, built and parsed by server/proto/rtcp.c, for every packet up to the highest
 * arrived one; packets it reported missing that arrive later are reported again, as
 * received, in the next feedback. Deterministic (fixed random seed). */

#define SIM_PACKETS (1 << 18)
#define PACKET_SIZE 1200

typedef struct {
    hk_bwe_t *bwe;
    double capacity_bps;
    int64_t prop_us;
    int64_t queue_limit_us;
    double loss;
    int64_t jitter_us;
    double max_send_bps;
    double probe_bps;    /* while now_us < probe_until_us: send at this rate, as a cluster */
    double bucket_bytes; /* > 0: the bottleneck is a policer instead (a token bucket of
                            capacity_bps with this burst: no queue, what exceeds it is dropped) */
    double bucket;
    int64_t bucket_us;
    int64_t probe_until_us;

    int64_t now_us;
    int64_t link_free_us;
    double tokens;
    uint32_t next_seq;
    int64_t *arrival; /* -1: lost */
    uint32_t fb_base;
    uint32_t late[4096];
    size_t late_len;
    int64_t next_fb_us;
    uint8_t fb_count;
    uint64_t rng;
    uint64_t feedbacks;
} sim_t;

static double sim_random(sim_t *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (double)(s->rng >> 11) / (double)(1ull << 53);
}

static sim_t *sim_new(double capacity_bps, uint64_t start_bps)
{
    sim_t *s = calloc(1, sizeof *s);
    CHECK(s);
    hk_bwe_config_t cfg = {start_bps, 30000, 20000000};
    s->bwe = hk_bwe_new(&cfg);
    CHECK(s->bwe);
    s->capacity_bps = capacity_bps;
    s->prop_us = 20000;
    s->queue_limit_us = 300000;
    s->max_send_bps = 20e6;
    s->arrival = malloc(SIM_PACKETS * sizeof *s->arrival);
    CHECK(s->arrival);
    s->now_us = 1000000;
    s->next_fb_us = s->now_us + 50000;
    s->rng = 0x9e3779b97f4a7c15ull;
    return s;
}

static void sim_free(sim_t *s)
{
    hk_bwe_free(s->bwe);
    free(s->arrival);
    free(s);
}

/* Sends statuses (ascending seqs, at least one received) as one TWCC packet through the
 * RTCP builder and parser, and feeds the result to the estimator. */
static void sim_deliver(sim_t *s, const hk_rtcp_twcc_packet_t *pkts, size_t n)
{
    static uint8_t buf[8192];
    static hk_rtcp_twcc_packet_t parsed[2048];
    int len = hk_rtcp_build_twcc(buf, sizeof buf, 1, 2, s->fb_count++, pkts, n);
    CHECK(len > 0);
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    hk_rtcp_fb_t fb;
    hk_rtcp_twcc_t hdr;
    CHECK_INT_EQ(hk_rtcp_next(buf, (size_t)len, &off, &pkt, NULL), 1);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    int count = hk_rtcp_parse_twcc(&fb, &hdr, parsed, 2048, NULL);
    CHECK_INT_EQ(count, (int)n);
    hk_bwe_on_twcc(s->bwe, parsed, (size_t)count, s->now_us);
    s->feedbacks++;
}

static void sim_feedback(sim_t *s)
{
    static hk_rtcp_twcc_packet_t pkts[2048];
    int64_t at_receiver = s->now_us - s->prop_us;
    /* Late arrivals reported lost earlier: one feedback of their own. */
    size_t n = 0, keep = 0;
    for (size_t i = 0; i < s->late_len; i++) {
        uint32_t q = s->late[i];
        if (s->arrival[q] <= at_receiver && n < 2048)
            pkts[n++] = (hk_rtcp_twcc_packet_t){(uint16_t)q, true, 0, s->arrival[q]};
        else
            s->late[keep++] = q;
    }
    s->late_len = keep;
    if (n)
        sim_deliver(s, pkts, n); /* few, and sorted well enough for the builder */
    uint32_t high = s->fb_base;
    bool any = false;
    for (uint32_t q = s->fb_base; q < s->next_seq && q < s->fb_base + 2000; q++)
        if (s->arrival[q] >= 0 && s->arrival[q] <= at_receiver) {
            high = q;
            any = true;
        }
    if (!any)
        return;
    n = 0;
    for (uint32_t q = s->fb_base; q <= high; q++) {
        bool got = s->arrival[q] >= 0 && s->arrival[q] <= at_receiver;
        pkts[n++] = (hk_rtcp_twcc_packet_t){(uint16_t)q, got, 0, got ? s->arrival[q] : 0};
        if (!got && s->arrival[q] >= 0 && s->late_len < 4096)
            s->late[s->late_len++] = q;
    }
    s->fb_base = high + 1;
    sim_deliver(s, pkts, n);
}

static void sim_send(sim_t *s)
{
    double rate = (double)hk_bwe_estimate(s->bwe);
    if (rate > s->max_send_bps)
        rate = s->max_send_bps;
    if (s->probe_until_us) {
        if (s->now_us < s->probe_until_us) {
            rate = s->probe_bps;
        } else {
            hk_bwe_probe_end(s->bwe, s->now_us);
            s->probe_until_us = 0;
        }
    }
    s->tokens += rate / 1000.0; /* one millisecond */
    if (s->tokens > 4 * PACKET_SIZE * 8)
        s->tokens = 4 * PACKET_SIZE * 8;
    while (s->tokens >= PACKET_SIZE * 8) {
        s->tokens -= PACKET_SIZE * 8;
        uint32_t q = s->next_seq++;
        CHECK(q < SIM_PACKETS);
        hk_bwe_on_sent(s->bwe, (uint16_t)q, PACKET_SIZE, s->now_us);
        s->arrival[q] = -1;
        if (s->loss > 0 && sim_random(s) < s->loss)
            continue;
        if (s->bucket_bytes > 0) {
            s->bucket += (double)(s->now_us - s->bucket_us) * s->capacity_bps / 8e6;
            s->bucket = s->bucket > s->bucket_bytes ? s->bucket_bytes : s->bucket;
            s->bucket_us = s->now_us;
            if (s->bucket < PACKET_SIZE)
                continue; /* policed */
            s->bucket -= PACKET_SIZE;
            s->arrival[q] = s->now_us + s->prop_us;
            continue;
        }
        int64_t start = s->link_free_us > s->now_us ? s->link_free_us : s->now_us;
        if (start - s->now_us > s->queue_limit_us)
            continue; /* tail drop */
        int64_t depart = start + (int64_t)(PACKET_SIZE * 8 * 1e6 / s->capacity_bps);
        s->link_free_us = depart;
        int64_t extra = s->jitter_us ? (int64_t)(sim_random(s) * (double)s->jitter_us) : 0;
        s->arrival[q] = depart + s->prop_us + extra;
    }
}

/* Runs for ms milliseconds; returns the mean estimate over that time. */
static double sim_run(sim_t *s, int ms)
{
    double sum = 0;
    for (int i = 0; i < ms; i++) {
        s->now_us += 1000;
        if (s->now_us >= s->next_fb_us) {
            sim_feedback(s);
            s->next_fb_us += 50000;
        }
        sim_send(s);
        sum += (double)hk_bwe_estimate(s->bwe);
    }
    return sum / ms;
}

/* Runs until the estimate is at or above bps (up) or at or below it (!up), at most ms
 * milliseconds; returns the milliseconds taken (ms + 1 if never). */
static int sim_until(sim_t *s, double bps, bool up, int ms)
{
    for (int i = 0; i <= ms; i++) {
        double e = (double)hk_bwe_estimate(s->bwe);
        if (up ? e >= bps : e <= bps)
            return i;
        sim_run(s, 1);
    }
    return ms + 1;
}

static void print_stats(const char *what, sim_t *s)
{
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    fprintf(stderr,
            "  %s t=%.1fs est %.0f delay %.0f loss-based %.0f acked %.0f loss %.3f thr %.1f "
            "rtt %lld ms\n",
            what, (double)s->now_us / 1e6 - 1, (double)st.estimate_bps, (double)st.delay_based_bps,
            (double)st.loss_based_bps, (double)st.acked_bps, st.loss_ratio, st.threshold_ms,
            (long long)(st.rtt_us / 1000));
}

TEST(bwe_config_and_bookkeeping)
{
    hk_bwe_config_t bad[] = {
        {300000, 0, 1000000}, {300000, 500000, 400000}, {10, 30000, 1000000}, {2e6, 30000, 1e6}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(hk_bwe_new(&bad[i]) == NULL);
    CHECK(hk_bwe_new(NULL) == NULL);
    hk_bwe_config_t cfg = {300000, 30000, 5000000};
    hk_bwe_t *b = hk_bwe_new(&cfg);
    CHECK(b);
    CHECK_INT_EQ(hk_bwe_estimate(b), 300000);

    for (int i = 0; i < 10; i++)
        hk_bwe_on_sent(b, (uint16_t)(65530 + i), 1000, 1000000 + i * 1000);
    hk_bwe_feedback_t fb[] = {
        {65530, true, 5000000}, {65531, false, 0},
        {65532, true, 5002000}, {7, true, 5003000}, /* never sent (yet) */
        {65530, true, 5000000},                     /* reported twice */
    };
    CHECK_INT_EQ(hk_bwe_on_feedback(b, fb, 5, 1100000), 4);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(b, &st);
    CHECK_INT_EQ(st.packets_sent, 10);
    CHECK_INT_EQ(st.packets_acked, 2);
    CHECK_INT_EQ(st.packets_lost, 1);
    CHECK_INT_EQ(st.feedback_unknown, 1);
    /* The lost one arrives after all: counted as received, no longer lost. */
    hk_bwe_feedback_t late[] = {{65531, true, 5004000}, {65531, false, 0}};
    CHECK_INT_EQ(hk_bwe_on_feedback(b, late, 2, 1110000), 2);
    hk_bwe_get_stats(b, &st);
    CHECK_INT_EQ(st.packets_acked, 3);
    CHECK_INT_EQ(st.packets_lost, 0);
    /* After HK_BWE_HISTORY more packets the sequence number means another packet: a
     * feedback with the old one's number still finds the new one, a stale entry whose slot
     * was reused by another number is unknown. */
    hk_bwe_on_sent(b, (uint16_t)(65533 + HK_BWE_HISTORY), 1000, 1200000);
    hk_bwe_feedback_t stale[] = {{65533, true, 5005000}};
    CHECK_INT_EQ(hk_bwe_on_feedback(b, stale, 1, 1300000), 0);
    hk_bwe_get_stats(b, &st);
    CHECK_INT_EQ(st.feedback_unknown, 2);
    /* An external RTT replaces the feedback-derived one. */
    hk_bwe_on_rtt(b, 42000);
    hk_bwe_get_stats(b, &st);
    CHECK_INT_EQ(st.rtt_us, 42000);
    hk_bwe_free(b);
}

/* A 2 Mbit/s link from a 300 kbit/s start: the estimate climbs to the capacity and stays
 * near it without building a standing queue. */
TEST(bwe_steady_link)
{
    sim_t *s = sim_new(2e6, 300000);
    int ms = sim_until(s, 1.5e6, true, 30000);
    print_stats("reached 1.5M", s);
    CHECK(ms < 30000);
    double mean = sim_run(s, 20000);
    print_stats("after 20 s more", s);
    CHECK(!hk_bwe_congested(s->bwe));
    fprintf(stderr, "  mean %.0f\n", mean);
    CHECK(mean > 0.7 * 2e6 && mean < 1.15 * 2e6);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    CHECK(st.rtt_us < 200000); /* no standing queue: 40 ms path + feedback interval */
    sim_free(s);
}

/* Runs 30 s on a link of `from` bit/s, then changes it to `to`: the estimate must cross
 * `cross` (downwards when the link shrinks, upwards when it grows) within max_ms, then
 * average between lo and hi times `to` over the next 20 s. */
static void capacity_step(double from, double to, uint64_t start, double cross, int max_ms,
                          double lo, double hi)
{
    sim_t *s = sim_new(from, start);
    sim_run(s, 30000);
    print_stats("before", s);
    CHECK(hk_bwe_estimate(s->bwe) > 0.7 * from && hk_bwe_estimate(s->bwe) < 1.2 * from);
    s->capacity_bps = to;
    int ms = sim_until(s, cross, to > from, max_ms + 10000);
    print_stats("crossed", s);
    fprintf(stderr, "  took %d ms\n", ms);
    CHECK(ms <= max_ms);
    double mean = sim_run(s, 20000);
    print_stats("after", s);
    fprintf(stderr, "  mean %.0f\n", mean);
    CHECK(mean > lo * to && mean < hi * to);
    sim_free(s);
}

/* Capacity halves (4 -> 2 Mbit/s): the estimate is under the new capacity within 3 s
 * (it takes 0.6 s) and then follows it. */
TEST(bwe_step_down)
{
    capacity_step(4e6, 2e6, 1000000, 2e6, 3000, 0.6, 1.1);
}

/* Capacity grows (1 -> 3 Mbit/s): the estimate passes 2 Mbit/s within 20 s (8 % a
 * second without probing: about 12 s) and then follows it. */
TEST(bwe_step_up)
{
    capacity_step(1e6, 3e6, 300000, 2e6, 20000, 0.7, 1.1);
}

/* 20 % random loss for 4 s on an uncongested link: the loss-based estimate backs off;
 * once the loss stops the estimate recovers. 1 % loss is ignored. */
TEST(bwe_loss_burst)
{
    sim_t *s = sim_new(2e6, 1000000);
    sim_run(s, 30000);
    double before = (double)hk_bwe_estimate(s->bwe);
    print_stats("before", s);
    s->loss = 0.2;
    sim_run(s, 4000);
    print_stats("after 4 s of 20 % loss", s);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    CHECK(st.loss_ratio > 0.05); /* the last window of 20 packets */
    CHECK((double)hk_bwe_estimate(s->bwe) < 0.6 * before);
    CHECK(st.loss_based_bps < st.delay_based_bps);
    s->loss = 0;
    int ms = sim_until(s, 0.8 * before, true, 30000);
    print_stats("recovered", s);
    fprintf(stderr, "  took %d ms\n", ms);
    CHECK(ms <= 20000);

    s->loss = 0.01;
    sim_run(s, 5000);
    double low = sim_run(s, 15000);
    print_stats("1 % loss", s);
    fprintf(stderr, "  mean %.0f\n", low);
    CHECK(low > 0.7 * 2e6);
    sim_free(s);
}

/* Up to 15 ms of random extra delay per packet reorders arrivals: packets first reported
 * missing come in later and are not counted lost, and the estimate stays near capacity. */
TEST(bwe_reordering)
{
    sim_t *s = sim_new(2e6, 1000000);
    s->jitter_us = 15000;
    sim_run(s, 10000);
    double mean = sim_run(s, 20000);
    print_stats("jitter", s);
    fprintf(stderr, "  mean %.0f\n", mean);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    CHECK(st.loss_ratio < 0.02);
    CHECK(st.packets_lost < 10); /* those still in flight at the last feedback */
    CHECK(mean > 0.6 * 2e6 && mean < 1.15 * 2e6);
    sim_free(s);
}

/* Application-limited: a subscriber that only gets 500 kbit/s of media on a 5 Mbit/s
 * link. The estimate stays within 1.5 x the acknowledged rate + 10 kbit/s (GoogCC's
 * cap): finding more headroom needs probing (padding), not this estimator alone. */
TEST(bwe_application_limited)
{
    sim_t *s = sim_new(5e6, 300000);
    s->max_send_bps = 500000;
    sim_run(s, 30000);
    print_stats("app-limited", s);
    uint64_t e = hk_bwe_estimate(s->bwe);
    CHECK(e >= 500000);
    CHECK(e <= 1.5 * 510000 + 10000);
    sim_free(s);
}

/* Starts a 100 ms cluster at bps (the sender pads up to it). */
static void sim_probe(sim_t *s, double bps)
{
    hk_bwe_probe_begin(s->bwe, s->now_us);
    s->probe_bps = bps;
    s->probe_until_us = s->now_us + 100000;
}

/* An application-limited sender (500 kbit/s of media on a 5 Mbit/s link) probes at twice
 * its estimate each second: the estimate doubles with each cluster, up to the link's
 * rate, in seconds instead of AIMD's tens of seconds, and never far above the link. */
TEST(bwe_probe_climbs_to_the_link)
{
    sim_t *s = sim_new(5e6, 300000);
    s->max_send_bps = 500000;
    sim_run(s, 10000);
    uint64_t before = hk_bwe_estimate(s->bwe);
    print_stats("app-limited", s);
    CHECK(before < 800000);
    uint64_t prev = before;
    int rounds = 0;
    while (rounds < 10 && hk_bwe_estimate(s->bwe) < 4e6) {
        sim_probe(s, 2.0 * (double)hk_bwe_estimate(s->bwe));
        sim_run(s, 1000);
        print_stats("after probe", s);
        uint64_t now = hk_bwe_estimate(s->bwe);
        if (rounds < 2)
            CHECK(now > prev * 17 / 10); /* below the link: each cluster nearly doubles it */
        prev = now;
        rounds++;
    }
    fprintf(stderr, "  %d clusters\n", rounds);
    CHECK(rounds <= 4);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    CHECK(st.probes == (uint64_t)rounds);
    CHECK(st.probes_raised >= 3);
    /* Probing over the link's rate measures the link, not the probe. */
    sim_probe(s, 10e6);
    sim_run(s, 1500);
    print_stats("over the link", s);
    CHECK(hk_bwe_estimate(s->bwe) <= 5.5e6);
    sim_free(s);
}

/* A probe through a 1 Mbit/s bottleneck that the estimate already fills: the cluster
 * arrives at the link's rate, so the estimate stays near 1 Mbit/s. */
TEST(bwe_probe_at_the_limit)
{
    sim_t *s = sim_new(1e6, 300000);
    sim_run(s, 30000);
    print_stats("steady", s);
    sim_probe(s, 3e6);
    sim_run(s, 1500);
    print_stats("after probe", s);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    CHECK(st.probes == 1);
    CHECK(st.probe_bps > 0 && st.probe_bps < 1.2e6);
    CHECK(hk_bwe_estimate(s->bwe) < 1.2e6);
    sim_free(s);
}

/* A policer (a token bucket of 1 Mbit/s with 16 KB of burst, as hisoka-load's --capped
 * or a mobile network's): the burst lets a cluster's first packets through at its rate,
 * then the policer drops what exceeds its own. A cluster at three times the estimate for
 * 300 ms loses about half of its packets; measured, the half that passed would lift the
 * estimate above the policer's rate. A cluster that lost more than a fifth is not taken
 * (libwebrtc's rule). */
TEST(bwe_probe_through_a_policer)
{
    sim_t *s = sim_new(1e6, 300000);
    s->bucket_bytes = 16384;
    s->max_send_bps = 600000; /* application-limited below the policer */
    sim_run(s, 20000);
    print_stats("steady", s);
    sim_probe(s, 3.0 * (double)hk_bwe_estimate(s->bwe));
    s->probe_until_us = s->now_us + 300000;
    sim_run(s, 1500);
    print_stats("after the probe", s);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    fprintf(stderr, "  probes %llu raised %llu failed %llu\n", (unsigned long long)st.probes,
            (unsigned long long)st.probes_raised, (unsigned long long)st.probes_failed);
    CHECK(st.probes == 1 && st.probes_failed == 1 && st.probes_raised == 0);
    CHECK(hk_bwe_estimate(s->bwe) < 1.1e6);
    sim_free(s);
}

/* A cluster whose packets are all lost cannot be measured: given up, no change. */
TEST(bwe_probe_lost)
{
    sim_t *s = sim_new(5e6, 300000);
    s->max_send_bps = 500000;
    sim_run(s, 5000);
    uint64_t before = hk_bwe_estimate(s->bwe);
    s->loss = 1.0;
    sim_probe(s, 2e6);
    sim_run(s, 100);
    s->loss = 0;
    sim_run(s, 2000);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    CHECK(st.probes_failed == 1);
    CHECK(st.probes_raised == 0);
    CHECK(!hk_bwe_probing(s->bwe));
    CHECK(hk_bwe_estimate(s->bwe) <= before * 12 / 10);
    sim_free(s);
}

/* The link narrows to a quarter (4 -> 1 Mbit/s) behind a short drop-tail queue (30 ms), so
 * loss shows before the delay does: the estimate is under 1.2 Mbit/s within 1.5 s, from
 * the arrival rate (AIMD's and the loss rule's steps alone take several seconds). */
TEST(bwe_narrowing_with_loss)
{
    sim_t *s = sim_new(4e6, 1000000);
    s->queue_limit_us = 30000;
    sim_run(s, 30000);
    print_stats("before", s);
    CHECK(hk_bwe_estimate(s->bwe) > 0.6 * 4e6);
    s->capacity_bps = 1e6;
    int ms = sim_until(s, 1.2e6, false, 10000);
    print_stats("crossed", s);
    fprintf(stderr, "  took %d ms\n", ms);
    CHECK(ms <= 1500);
    double mean = sim_run(s, 20000);
    print_stats("after", s);
    CHECK(mean > 0.5 * 1e6 && mean < 1.1 * 1e6);
    sim_free(s);
}

/* ---- recorded traces ---------------------------------------------------------------- */

/* Replays a trace the server recorded (HISOKA_BWE_TRACE, made a fixture by
 * tools/bwe-fixture.mjs; tests/unit/fixtures/bwe/README.md) into a new estimator with the
 * server's configuration (sfu/endpoint.h), and measures how the estimate followed the
 * link changes the trace's "m" lines mark. */
typedef struct {
    int64_t mark_us[4];
    uint64_t mark_kbps[4];
    int marks;
    uint64_t min_bps[4], max_bps[4]; /* over each phase (before the first mark: phase 0),
                                        from its 5th second on */
    int64_t reached_us[4];           /* phase i >= 1: when the estimate first came within
                                        [0.5, 1.2] x the new link rate (-1: never) */
    uint64_t feedbacks;
    uint64_t sent;
    uint64_t final_bps;
} replay_t;

static void replay(const char *path, const hk_bwe_config_t *cfg, replay_t *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 4; i++) {
        r->min_bps[i] = UINT64_MAX;
        r->reached_us[i] = -1;
    }
    size_t len;
    char *text = hk_test_read_file(path, &len);
    CHECK(text);
    if (!text)
        return;
    hk_bwe_t *bwe = hk_bwe_new(cfg);
    static hk_bwe_feedback_t fb[4096];
    size_t n = 0;
    int64_t phase_start = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long long a = 0, b = 0, c = 0;
        int got = sscanf(line + 1, "%lld %lld %lld", &a, &b, &c);
        switch (line[0]) {
        case 's':
            CHECK_INT_EQ(got, 3);
            hk_bwe_on_sent(bwe, (uint16_t)b, (size_t)c, a);
            r->sent++;
            break;
        case 'p':
            CHECK_INT_EQ(got, 2);
            CHECK(n < sizeof fb / sizeof fb[0]);
            fb[n++] = (hk_bwe_feedback_t){(uint16_t)a, b >= 0, b >= 0 ? b : 0};
            break;
        case 'f': {
            CHECK_INT_EQ(got, 1);
            hk_bwe_on_feedback(bwe, fb, n, a);
            n = 0;
            r->feedbacks++;
            uint64_t e = hk_bwe_estimate(bwe);
            int phase = r->marks;
            if (a - phase_start >= 5000000) {
                r->min_bps[phase] = e < r->min_bps[phase] ? e : r->min_bps[phase];
                r->max_bps[phase] = e > r->max_bps[phase] ? e : r->max_bps[phase];
            }
            if (phase > 0 && r->reached_us[phase] < 0) {
                uint64_t link = r->mark_kbps[phase - 1] * 1000;
                if (e >= link / 2 && e <= link + link / 5)
                    r->reached_us[phase] = a - phase_start;
            }
            break;
        }
        case 'b':
            hk_bwe_probe_begin(bwe, a);
            break;
        case 'e':
            hk_bwe_probe_end(bwe, a);
            break;
        case 'r':
            hk_bwe_on_rtt(bwe, a);
            break;
        case 'm':
            CHECK_INT_EQ(got, 2);
            CHECK(r->marks < 3);
            if (r->marks < 3) {
                r->mark_us[r->marks] = a;
                r->mark_kbps[r->marks] = (uint64_t)b;
                r->marks++;
                phase_start = a;
            }
            break;
        default:
            CHECK(!"unknown line in a bwe trace");
        }
    }
    r->final_bps = hk_bwe_estimate(bwe);
    hk_bwe_free(bwe);
    free(text);
}

TEST(bwe_recorded_chromium_1_5_1_mbit)
{
    /* A Chromium subscriber (E2EE channel, three simulcast senders) behind a veth with a
     * tbf of 1 Mbit/s, then 5, then 1 again: tests/browser/adaptive.test.mjs. */
    replay_t r;
    hk_bwe_config_t server = {1000000, 50000, 100000000}; /* sfu/endpoint.h's */
    replay("tests/unit/fixtures/bwe/chromium-1-5-1mbit.bwe", &server, &r);
    printf("  %llu sent, %llu feedbacks; 1 Mbit/s from 5 s: %llu..%llu; 5 Mbit/s after "
           "%lld ms (then %llu..%llu); 1 Mbit/s after %lld ms (then %llu..%llu)\n",
           (unsigned long long)r.sent, (unsigned long long)r.feedbacks,
           (unsigned long long)r.min_bps[0], (unsigned long long)r.max_bps[0],
           (long long)r.reached_us[1] / 1000, (unsigned long long)r.min_bps[1],
           (unsigned long long)r.max_bps[1], (long long)r.reached_us[2] / 1000,
           (unsigned long long)r.min_bps[2], (unsigned long long)r.max_bps[2]);
    CHECK_INT_EQ(r.marks, 2);
    CHECK_INT_EQ(r.mark_kbps[0], 5000);
    CHECK_INT_EQ(r.mark_kbps[1], 1000);
    /* Every input was a packet the estimator knew of: nothing lost in the recording. */
    CHECK(r.sent > 5000 && r.feedbacks > 500);
    /* At 1 Mbit/s (the media used about 550 kbit/s of it): within 0.5..1.2 x the link. */
    CHECK(r.min_bps[0] >= 500000 && r.max_bps[0] <= 1200000);
    /* Up to 5 Mbit/s: within 0.5..1.2 x the new link in under 10 s (the bound for
     * the layers, which follow the estimate), and never above 1.2 x. */
    CHECK(r.reached_us[1] >= 0 && r.reached_us[1] < 10000000);
    CHECK(r.max_bps[1] <= 6000000);
    /* Down to 1 Mbit/s: within 0.5..1.2 x in under 1.5 s (the layers have 3 s). */
    CHECK(r.reached_us[2] >= 0 && r.reached_us[2] < 1500000);
    CHECK(r.min_bps[2] >= 500000 && r.max_bps[2] <= 1200000);
}

static void record_line(void *user, const char *line)
{
    fprintf(user, "%s\n", line);
}

TEST(bwe_recorder_replays_to_the_same_estimate)
{
    /* The simulated link, 4 -> 1 Mbit/s with probes, recorded; the replay of the record
     * gives the same estimate and counts. */
    char path[] = "/tmp/hisoka-bwe-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    CHECK(f);
    sim_t *s = sim_new(4e6, 1000000);
    hk_bwe_set_recorder(s->bwe, record_line, f);
    s->max_send_bps = 2e6;
    sim_run(s, 5000);
    s->probe_bps = 4e6;
    s->probe_until_us = s->now_us + 200000;
    hk_bwe_probe_begin(s->bwe, s->now_us);
    sim_run(s, 5000); /* the cluster ends after 200 ms */
    s->capacity_bps = 1e6;
    sim_run(s, 5000);
    hk_bwe_on_rtt(s->bwe, 45000);
    sim_run(s, 1000);
    fclose(f);
    hk_bwe_stats_t st;
    hk_bwe_get_stats(s->bwe, &st);
    hk_bwe_config_t cfg = {1000000, 30000, 20000000}; /* sim_new's */
    replay_t r;
    replay(path, &cfg, &r);
    unlink(path);
    fprintf(stderr, "  %llu sent, %llu feedbacks, estimate %llu, replayed %llu\n",
            (unsigned long long)r.sent, (unsigned long long)r.feedbacks,
            (unsigned long long)hk_bwe_estimate(s->bwe), (unsigned long long)r.final_bps);
    CHECK_INT_EQ(r.sent, st.packets_sent);
    CHECK_INT_EQ(r.feedbacks, s->feedbacks);
    CHECK(st.probes == 1);
    CHECK_INT_EQ(r.final_bps, hk_bwe_estimate(s->bwe));
    sim_free(s);
}

/* Congestion as the estimator reports it: a feedback that lost half of 40 packets, then
 * one that lost none. */
TEST(bwe_congested)
{
    hk_bwe_config_t cfg = {1000000, 30000, 20000000};
    hk_bwe_t *bwe = hk_bwe_new(&cfg);
    hk_bwe_feedback_t fb[40];
    int64_t t = 1000000;
    for (uint16_t round = 0; round < 2; round++) {
        for (uint16_t i = 0; i < 40; i++) {
            uint16_t seq = (uint16_t)(round * 40 + i);
            hk_bwe_on_sent(bwe, seq, 1200, t + i * 1000);
            fb[i] = (hk_bwe_feedback_t){seq, round == 1 || i % 2 == 0, t + 20000 + i * 1000};
        }
        t += 100000;
        hk_bwe_on_feedback(bwe, fb, 40, t);
        CHECK(hk_bwe_congested(bwe) == (round == 0));
    }
    hk_bwe_free(bwe);
}

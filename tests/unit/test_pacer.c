#include <arpa/inet.h>

#include "common/bytes.h"
#include "common/error.h"
#include "server/rtc/cert.h"
#include "server/rtc/host.h"
#include "server/rtc/srtp.h"
#include "server/rtc/transport.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"
#include "server/rtc/pacer.h"
#include "tests/unit/unit.h"

#define PACKET 1200

/* A plain RTP packet of len bytes: payload type pt, sequence number seq, and a one-byte
 * extension block with the transport-wide sequence number twcc (id HK_EXT_TRANSPORT_CC). */
static size_t packet(uint8_t *buf, size_t len, uint8_t pt, uint16_t seq, uint16_t twcc)
{
    memset(buf, 0xab, len);
    buf[0] = 0x90; /* V=2, X */
    buf[1] = pt;
    hk_wr16(buf + 2, seq);
    hk_wr32(buf + 4, 1000);
    hk_wr32(buf + 8, 0x11223344);
    hk_wr16(buf + 12, HK_RTP_EXT_ONE_BYTE);
    hk_wr16(buf + 14, 1); /* one word */
    buf[16] = (HK_EXT_TRANSPORT_CC << 4) | 1;
    hk_wr16(buf + 17, twcc);
    buf[19] = 0;
    return len;
}

static uint16_t seq_of(const hk_pacer_entry_t *e)
{
    return hk_rd16(e->data + 2);
}

/* The transport's use of a pacer, without the transport: a packet goes out at once when
 * the pacer allows it, otherwise it waits; then whatever is due goes. Send times and
 * sequence numbers are recorded in order. */
typedef struct {
    hk_pacer_t pacer;
    uint64_t sent_us[256];
    uint16_t sent_seq[256];
    size_t sent_len[256];
    int n_sent;
} sender_t;

static void record(sender_t *s, uint16_t seq, size_t len, uint64_t now_us)
{
    CHECK(s->n_sent < 256);
    s->sent_us[s->n_sent] = now_us;
    s->sent_seq[s->n_sent] = seq;
    s->sent_len[s->n_sent] = len;
    s->n_sent++;
    hk_pacer_on_sent(&s->pacer, len);
}

static void drain(sender_t *s, uint64_t now_us)
{
    const hk_pacer_entry_t *e;
    while ((e = hk_pacer_due(&s->pacer, now_us))) {
        uint16_t seq = seq_of(e);
        size_t len = e->len;
        hk_pacer_pop(&s->pacer, now_us);
        record(s, seq, len, now_us);
    }
}

static void offer(sender_t *s, uint8_t pt, uint16_t seq, size_t len, uint64_t now_us)
{
    uint8_t buf[HK_PACER_PACKET_MAX];
    packet(buf, len, pt, seq, seq);
    if (hk_pacer_may_send(&s->pacer, now_us)) {
        record(s, seq, len, now_us);
        return;
    }
    CHECK_INT_EQ(hk_pacer_push(&s->pacer, buf, len, now_us), 0);
    drain(s, now_us);
}

/* A pacer at estimate_bps from time 0, with a pool of its own. */
static void start(hk_pacer_pool_t *pool, hk_pacer_t *p, size_t entries, uint64_t estimate_bps)
{
    hk_pacer_pool_init(pool, entries);
    hk_pacer_init(p, pool, estimate_bps, 0);
}

/* Closes it: every entry is back in the pool, which is freed. */
static void finish(hk_pacer_pool_t *pool, hk_pacer_t *p)
{
    hk_pacer_clear(p);
    CHECK_INT_EQ(pool->used, 0);
    hk_pacer_pool_free(pool);
}

TEST(pacer_budget_refills_at_the_rate)
{
    hk_pacer_pool_t pool;
    hk_pacer_pool_init(&pool, 64);
    hk_pacer_t p;
    hk_pacer_init(&p, &pool, 1000000, 1000000);
    CHECK_INT_EQ(p.rate_bps, 2500000); /* 2.5 x the estimate */
    /* A full budget: 5 ms at 2.5 Mbit/s, 1562 bytes; a packet leaves while it is positive. */
    CHECK(hk_pacer_may_send(&p, 1000000));
    hk_pacer_on_sent(&p, PACKET);
    CHECK(hk_pacer_may_send(&p, 1000000));
    hk_pacer_on_sent(&p, PACKET);
    CHECK(!hk_pacer_may_send(&p, 1000000));
    /* 838 bytes of debt take 2680 us at 2.5 Mbit/s. */
    CHECK(!hk_pacer_may_send(&p, 1001000));
    CHECK(!hk_pacer_may_send(&p, 1002680));
    CHECK(hk_pacer_may_send(&p, 1002681));
    /* An idle second refills only the burst, not a second's worth. */
    CHECK(hk_pacer_may_send(&p, 2002681));
    hk_pacer_on_sent(&p, PACKET);
    hk_pacer_on_sent(&p, PACKET);
    CHECK(!hk_pacer_may_send(&p, 2002681));
    /* A huge send (a probe's padding) leaves at most HK_PACER_INTERVAL_US of debt. */
    hk_pacer_on_sent(&p, 1000000);
    CHECK(!hk_pacer_may_send(&p, 2002681 + HK_PACER_INTERVAL_US));
    CHECK(hk_pacer_may_send(&p, 2002681 + HK_PACER_INTERVAL_US + 1000));
    /* The estimate falls: the rate follows, down to its floor. */
    hk_pacer_set_rate(&p, 20000);
    CHECK_INT_EQ(p.rate_bps, HK_PACER_MIN_BPS);
    finish(&pool, &p);
}

/* A 20-packet key frame at 1 Mbit/s of estimate: the first 5 ms of budget at once, the
 * rest spread at 2.5 Mbit/s, ~68 ms for the frame, whether it is drained every
 * millisecond or only from 20 ms ticks. */
static void key_frame(uint64_t step_us)
{
    hk_pacer_pool_t pool;
    sender_t s = {0};
    start(&pool, &s.pacer, 64, 1000000);
    for (uint16_t i = 0; i < 20; i++)
        offer(&s, HK_PT_VP8, i, PACKET, 0);
    CHECK_INT_EQ(s.n_sent, 2);
    CHECK_INT_EQ(s.pacer.packets, 18);
    for (uint64_t now = step_us; now <= 200000; now += step_us)
        drain(&s, now);
    CHECK_INT_EQ(s.n_sent, 20);
    CHECK_INT_EQ(s.pacer.packets, 0);
    /* (24000 - 1562 - 1200) bytes at 2.5 Mbit/s: 68 ms, up to a step later. */
    uint64_t last = s.sent_us[19];
    CHECK(last >= 67000 && last <= 68000 + step_us);
    /* No 20 ms window carries more than its budget, the burst and one packet. */
    for (int i = 0; i < 20; i++) {
        size_t bytes = 0;
        for (int j = i; j < 20 && s.sent_us[j] < s.sent_us[i] + 20000; j++)
            bytes += s.sent_len[j];
        CHECK(bytes <= 2500000 / 8 / 50 + 1562 + PACKET);
    }
    /* In order, and each one's wait in the histogram. */
    for (int i = 0; i < 20; i++)
        CHECK_INT_EQ(s.sent_seq[i], i);
    CHECK_INT_EQ(pool.counters.queued, 18);
    CHECK_INT_EQ(pool.counters.delay_count, 18);
    CHECK(s.pacer.max_delay_us == last);
    finish(&pool, &s.pacer);
}

TEST(pacer_spreads_a_key_frame_at_the_rate)
{
    key_frame(1000);
    key_frame(20000);
}

TEST(pacer_sends_audio_first_each_kind_in_order)
{
    hk_pacer_pool_t pool;
    hk_pacer_t p;
    start(&pool, &p, 64, 1000000);
    hk_pacer_on_sent(&p, 100000); /* in debt */
    uint8_t buf[HK_PACER_PACKET_MAX];
    /* Video 0..5 with audio 100, 101 among them; the writer gave each the same
     * transport-wide number (the next to leave), 7. */
    for (uint16_t i = 0; i < 6; i++) {
        CHECK_INT_EQ(hk_pacer_push(&p, buf, packet(buf, PACKET, HK_PT_VP8, i, 7), 0), 0);
        if (i == 2 || i == 4)
            CHECK_INT_EQ(
                hk_pacer_push(&p, buf, packet(buf, 100, HK_PT_OPUS, (uint16_t)(99 + i / 2), 7), 0),
                0);
    }
    CHECK_INT_EQ(p.packets, 8);
    CHECK_INT_EQ(p.bytes, 6 * PACKET + 200);
    CHECK(hk_pacer_due(&p, 0) == NULL); /* the budget is spent */
    static const uint16_t order[] = {100, 101, 0, 1, 2, 3, 4, 5};
    uint64_t now = 0;
    for (int i = 0; i < 8; i++) {
        const hk_pacer_entry_t *e;
        while (!(e = hk_pacer_due(&p, now)))
            now += 1000;
        CHECK_INT_EQ(seq_of(e), order[i]);
        /* Where the transport writes the number due at release. */
        CHECK_INT_EQ(e->twcc_offset, 17);
        CHECK_INT_EQ(hk_rd16(e->data + e->twcc_offset), 7);
        hk_pacer_on_sent(&p, e->len);
        hk_pacer_pop(&p, now);
    }
    CHECK(!hk_pacer_waiting(&p));
    CHECK_INT_EQ(p.bytes, 0);
    CHECK_INT_EQ(pool.used, 0);
    finish(&pool, &p);
}

TEST(pacer_drops_the_oldest_video_over_its_bound)
{
    hk_pacer_pool_t pool;
    hk_pacer_t p;
    start(&pool, &p, 1024, 50000); /* the floor: 250 kbit/s, 15625 bytes in 500 ms */
    CHECK_INT_EQ(p.max_bytes, 15625);
    hk_pacer_on_sent(&p, 100000);
    uint8_t buf[HK_PACER_PACKET_MAX];
    for (uint16_t i = 0; i < 5; i++)
        CHECK_INT_EQ(hk_pacer_push(&p, buf, packet(buf, 100, HK_PT_OPUS, 100 + i, 0), 0), 0);
    for (uint16_t i = 0; i < 30; i++)
        CHECK_INT_EQ(hk_pacer_push(&p, buf, packet(buf, PACKET, HK_PT_VP8, i, 0), 0), 0);
    /* 5 x 100 + 12 x 1200 fit; the oldest 18 video packets went. */
    CHECK(p.bytes <= p.max_bytes);
    CHECK_INT_EQ(p.packets, 17);
    CHECK_INT_EQ(p.dropped, 18);
    CHECK_INT_EQ(pool.counters.dropped, 18);
    CHECK_INT_EQ(pool.used, 17);
    for (int i = 0; i < 17; i++) {
        const hk_pacer_entry_t *e = hk_pacer_head(&p, 0);
        CHECK_INT_EQ(seq_of(e), i < 5 ? 100 + i : 18 + (i - 5));
        hk_pacer_pop(&p, 0);
    }
    /* The bound follows the rate: at 5 Mbit/s of estimate, 781250 bytes. */
    hk_pacer_set_rate(&p, 5000000);
    CHECK_INT_EQ(p.max_bytes, 781250);
    finish(&pool, &p);
}

TEST(pacer_drops_what_waited_too_long)
{
    hk_pacer_pool_t pool;
    hk_pacer_t p;
    start(&pool, &p, 64, 1000000);
    uint8_t buf[HK_PACER_PACKET_MAX];
    CHECK_INT_EQ(hk_pacer_push(&p, buf, packet(buf, PACKET, HK_PT_VP8, 1, 0), 0), 0);
    CHECK_INT_EQ(hk_pacer_push(&p, buf, packet(buf, 100, HK_PT_OPUS, 2, 0), 100000), 0);
    CHECK_INT_EQ(hk_pacer_push(&p, buf, packet(buf, PACKET, HK_PT_VP8, 3, 0), 200000), 0);
    /* (A transport that could not send for 0.55 s.) */
    const hk_pacer_entry_t *e = hk_pacer_due(&p, 550000);
    CHECK(e != NULL);
    CHECK_INT_EQ(seq_of(e), 2);
    CHECK_INT_EQ(p.dropped, 1);
    hk_pacer_pop(&p, 550000);
    e = hk_pacer_due(&p, 550000);
    CHECK(e != NULL);
    CHECK_INT_EQ(seq_of(e), 3);
    CHECK_INT_EQ(hk_pacer_due(&p, 800000) == NULL, 1); /* 600 ms old: dropped as well */
    CHECK_INT_EQ(p.dropped, 2);
    CHECK_INT_EQ(pool.used, 0);
    /* Both waits (450 and 350 ms) in the histogram's 500 ms bucket. */
    CHECK_INT_EQ(pool.counters.delay_bucket[HK_PACER_DELAY_BUCKETS - 2], 1);
    finish(&pool, &p);
}

TEST(pacer_pool_ceiling_and_clear_leak_nothing)
{
    hk_pacer_pool_t pool;
    hk_pacer_pool_init(&pool, 10); /* a slab at least: 64 */
    CHECK_INT_EQ(pool.max_entries, HK_PACER_SLAB);
    CHECK_INT_EQ(pool.entries, 0);
    hk_pacer_t a, b;
    hk_pacer_init(&a, &pool, 100000000, 0); /* a bound far above the pool's */
    hk_pacer_init(&b, &pool, 100000000, 0);
    hk_pacer_on_sent(&a, 1000000);
    hk_pacer_on_sent(&b, 1000000);
    uint8_t buf[HK_PACER_PACKET_MAX];
    for (uint16_t i = 0; i < HK_PACER_SLAB; i++)
        CHECK_INT_EQ(hk_pacer_push(&a, buf, packet(buf, PACKET, HK_PT_VP8, i, 0), 0), 0);
    CHECK_INT_EQ(pool.entries, HK_PACER_SLAB);
    CHECK_INT_EQ(pool.used, HK_PACER_SLAB);
    /* The pool is at its ceiling: b has nothing of its own to drop, its packet goes. */
    CHECK_INT_EQ(hk_pacer_push(&b, buf, packet(buf, PACKET, HK_PT_VP8, 0, 0), 0), HK_ENOMEM);
    CHECK_INT_EQ(b.dropped, 1);
    /* a makes room with its own oldest. */
    CHECK_INT_EQ(hk_pacer_push(&a, buf, packet(buf, PACKET, HK_PT_VP8, 1000, 0), 0), 0);
    CHECK_INT_EQ(a.dropped, 1);
    CHECK_INT_EQ(seq_of(hk_pacer_head(&a, 0)), 1);
    /* a closes with 64 packets waiting: all return to the pool, b may have them. */
    hk_pacer_clear(&a);
    CHECK_INT_EQ(pool.used, 0);
    CHECK(a.pool == NULL);
    CHECK_INT_EQ(hk_pacer_push(&b, buf, packet(buf, PACKET, HK_PT_VP8, 0, 0), 0), 0);
    CHECK_INT_EQ(pool.entries, HK_PACER_SLAB); /* reused, not allocated */
    hk_pacer_clear(&b);
    CHECK_INT_EQ(pool.used, 0);
    hk_pacer_pool_free(&pool);
}

TEST(pacer_refuses_what_is_no_rtp)
{
    hk_pacer_pool_t pool;
    hk_pacer_t p;
    start(&pool, &p, 64, 1000000);
    uint8_t buf[HK_PACER_PACKET_MAX + 1];
    packet(buf, sizeof buf, HK_PT_VP8, 1, 0);
    CHECK_INT_EQ(hk_pacer_push(&p, buf, sizeof buf, 0), HK_EINVAL); /* too long */
    buf[0] = 0x40;                                                  /* version 1 */
    CHECK_INT_EQ(hk_pacer_push(&p, buf, PACKET, 0), HK_EINVAL);
    CHECK_INT_EQ(hk_pacer_push(&p, buf, 8, 0), HK_EINVAL); /* under a header */
    CHECK_INT_EQ(p.dropped, 3);
    CHECK_INT_EQ(p.packets, 0);
    CHECK_INT_EQ(pool.used, 0);
    /* Without the transport-wide number: queued, nothing rewritten at release. */
    packet(buf, PACKET, HK_PT_VP8, 1, 0);
    buf[0] = 0x80; /* no extension */
    hk_pacer_on_sent(&p, 100000);
    CHECK_INT_EQ(hk_pacer_push(&p, buf, PACKET, 0), 0);
    CHECK_INT_EQ(hk_pacer_head(&p, 0)->twcc_offset, 0);
    finish(&pool, &p);
}

/* ---- through a transport: the transport-wide numbers on the wire ----------------------- */

/* A link that keeps every datagram committed, with the host's time then. */
typedef struct {
    hk_link_t link;
    uint8_t slot[HK_TX_BUF_SIZE];
    uint8_t sent[64][64]; /* the first bytes of each */
    uint64_t sent_us[64];
    int n_sent;
    const uint64_t *now_us;
} wire_t;

static uint8_t *wire_slot(hk_link_t *link, const hk_tuple_t *to)
{
    (void)to;
    return ((wire_t *)link)->slot;
}

static void wire_commit(hk_link_t *link, size_t len)
{
    wire_t *w = (wire_t *)link;
    CHECK(len >= 64 && w->n_sent < 64);
    memcpy(w->sent[w->n_sent], w->slot, 64);
    w->sent_us[w->n_sent++] = *w->now_us;
}

/* The transport-wide number in a sent packet's one-byte extension block (in the clear
 * under SRTP); -1 without one. */
static int twcc_of(const uint8_t *d)
{
    size_t end = 16 + 4u * hk_rd16(d + 14);
    CHECK(hk_rd16(d + 12) == HK_RTP_EXT_ONE_BYTE && end <= 64);
    for (size_t at = 16; at < end;) {
        int id = d[at] >> 4;
        size_t len = (size_t)(d[at] & 15) + 1;
        if (id == 0) {
            at++;
            continue;
        }
        if (id == HK_EXT_TRANSPORT_CC)
            return hk_rd16(d + at + 1);
        at += 1 + len;
    }
    return -1;
}

static const hk_link_ops_t wire_ops = {.slot = wire_slot, .commit = wire_commit};

static void ignore_failure(void *user, int code, const char *reason)
{
    (void)user, (void)code, (void)reason;
}

static const hk_transport_events_t quiet_events = {.on_failed = ignore_failure};

/* Writes a forwarded packet into the transport's slot the way sfu/consumer.c does (the
 * transport-wide number is t->twcc_out_seq) and hands it over. */
static void forward(hk_transport_t *t, uint8_t pt, uint16_t seq, size_t len)
{
    uint8_t *slot = hk_transport_slot(t);
    CHECK(slot != NULL);
    hk_transport_send_slot(t, slot, packet(slot, len, pt, seq, t->twcc_out_seq));
}

TEST(pacer_in_a_transport_keeps_transport_wide_order)
{
    CHECK_INT_EQ(hk_srtp_global_init(), 0);
    hk_config_t config;
    memset(&config, 0, sizeof config);
    config.consent_timeout_ms = 30000;
    config.max_connections = 10;
    hk_cert_t cert;
    CHECK_INT_EQ(hk_cert_generate(&cert), 0);
    hk_rtc_host_t host;
    CHECK_INT_EQ(hk_rtc_host_init(&host, &config, &cert), 0);
    host.now_us = 1000000;
    wire_t wire = {.link.ops = &wire_ops, .now_us = &host.now_us};
    struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(50000)};
    hk_transport_t *t = hk_transport_create(&host, &quiet_events, NULL, "t", 1000);
    CHECK(t != NULL);
    /* What ICE and DTLS would have done. */
    hk_srtp_keys_t keys = {.profile = HK_SRTP_AES128_CM_SHA1_80, .key_len = 16, .salt_len = 14};
    t->srtp = hk_srtp_create(&keys);
    CHECK(t->srtp != NULL);
    t->ready = true;
    t->selected = hk_tuple_udp4(&wire.link, &client);
    t->has_selected = true;
    CHECK_INT_EQ(hk_transport_enable_bwe(t, 1000000, 50000, 100000000), 0);
    CHECK(t->pacer.pool == &host.pacer_pool);
    hk_transport_set_padding(t, 0x5eed, HK_PT_VP8_RTX, 0, "1");

    /* A key frame with an audio packet in its middle: two leave at once (the burst), the
     * rest waits; the audio goes first when the budget allows. */
    for (uint16_t i = 0; i < 20; i++) {
        forward(t, HK_PT_VP8, i, PACKET);
        if (i == 9)
            forward(t, HK_PT_OPUS, 500, 100);
    }
    CHECK_INT_EQ(wire.n_sent, 2);
    CHECK_INT_EQ(t->twcc_out_seq, 2); /* numbers are taken when packets leave */
    CHECK_INT_EQ(t->pacer.packets, 19);
    CHECK(t->timer.scheduled && t->timer.deadline_ms <= 1001);
    /* Ticks every 5 ms for 30 ms, then a probe cluster while media still waits: the
     * waiting media leaves first, then padding tops the cluster up. */
    for (int ms = 5; ms <= 30; ms += 5) {
        host.now_us = 1000000 + (uint64_t)ms * 1000;
        hk_transport_on_timer(t, host.now_us / 1000);
    }
    CHECK(hk_pacer_waiting(&t->pacer));
    int before_probe = wire.n_sent;
    CHECK(hk_transport_probe(t, 5000000, 100));
    CHECK(wire.n_sent > before_probe);
    for (int ms = 35; ms <= 60; ms += 5) {
        host.now_us = 1000000 + (uint64_t)ms * 1000;
        hk_transport_on_timer(t, host.now_us / 1000);
    }
    CHECK(!hk_pacer_waiting(&t->pacer));
    CHECK(host.counters.padding_packets > 0);
    CHECK_INT_EQ(wire.n_sent, 21 + (int)host.counters.padding_packets);
    /* On the wire: transport-wide numbers 0, 1, 2, ... whatever left when; the audio
     * first among the waiting; video in its own order; padding only after the media. */
    uint16_t next_video = 0;
    for (int i = 0; i < wire.n_sent; i++) {
        const uint8_t *d = wire.sent[i];
        CHECK_INT_EQ(twcc_of(d), i);
        uint8_t pt = d[1] & 0x7f;
        if (i == 2)
            CHECK_INT_EQ(pt, HK_PT_OPUS);
        if (pt == HK_PT_VP8)
            CHECK_INT_EQ(hk_rd16(d + 2), next_video++);
        if (i >= 21)
            CHECK_INT_EQ(pt, HK_PT_VP8_RTX);
        else
            CHECK(pt != HK_PT_VP8_RTX);
        if (i > 2 && i < before_probe) /* paced: no faster than the rate and a packet */
            CHECK((wire.sent_us[i] - wire.sent_us[2]) * 2500000 / 8000000 + 2 * PACKET >=
                  (uint64_t)(i - 2) * PACKET);
    }
    CHECK_INT_EQ(next_video, 20);
    CHECK_INT_EQ(host.counters.forwarded_packets, 21);
    CHECK_INT_EQ(host.pacer_pool.counters.queued, 19);

    /* It closes with packets waiting: the entries return to the pool. */
    hk_transport_probe_stop(t);
    for (uint16_t i = 20; i < 30; i++)
        forward(t, HK_PT_VP8, i, PACKET);
    CHECK(hk_pacer_waiting(&t->pacer));
    CHECK(host.pacer_pool.used > 0);
    hk_transport_destroy(t);
    CHECK_INT_EQ(host.pacer_pool.used, 0);
    hk_rtc_host_free(&host);
    hk_cert_free(&cert);
}

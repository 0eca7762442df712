/* sfu/relay: a producer's packets to another worker's mirror, in one thread here (the
 * two inboxes stand for the two workers; their wakes are counted). */
#include <stdlib.h>
#include <string.h>

#include "server/rtc/host.h"
#include "server/sfu/endpoint.h"
#include "server/sfu/relay.h"
#include "tests/unit/unit.h"

typedef struct {
    hk_rtc_host_t host; /* only its counters */
    hk_relay_inbox_t inbox;
    int wakes;
} fake_worker_t;

static void count_wake(void *user)
{
    ((fake_worker_t *)user)->wakes++;
}

static void fake_worker_init(fake_worker_t *w)
{
    memset(w, 0, sizeof *w);
    w->inbox.wake = count_wake;
    w->inbox.wake_user = w;
    w->inbox.host = &w->host;
}

/* A 12-byte RTP header and a payload of `size` bytes. */
static size_t rtp_packet(uint8_t *buf, uint16_t seq, uint32_t ssrc, size_t size)
{
    memset(buf, 0, 12 + size);
    buf[0] = 0x80;
    buf[1] = 96;
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    buf[8] = (uint8_t)(ssrc >> 24);
    buf[9] = (uint8_t)(ssrc >> 16);
    buf[10] = (uint8_t)(ssrc >> 8);
    buf[11] = (uint8_t)ssrc;
    for (size_t i = 0; i < size; i++)
        buf[12 + i] = (uint8_t)(seq + i);
    return 12 + size;
}

/* Pushes a packet as hk_producer_forward does: with the source's parse of it. */
static void push(hk_relay_t *r, const uint8_t *buf, size_t len)
{
    hk_rtp_header_t hdr = {0};
    const char *err = NULL;
    if (len <= HK_RELAY_PACKET_MAX)
        CHECK_INT_EQ(hk_rtp_parse(buf, len, &hdr, &err), 0);
    hk_relay_push(r, 0, buf, len, &hdr);
}

static int owner_tag;

/* Two workers, a publisher's live video on a and its relay to b. */
typedef struct {
    fake_worker_t a, b;
    hk_endpoint_t e;
    hk_producer_t *p;
    hk_relay_t *r;
} fixture_t;

static int fixture_init(fixture_t *f)
{
    fake_worker_init(&f->a);
    fake_worker_init(&f->b);
    hk_endpoint_init(&f->e, NULL, &owner_tag);
    f->p = &f->e.producers[HK_MEDIA_VIDEO];
    f->p->live = true;
    f->r = hk_relay_create(f->p, &f->a.inbox, &f->b.inbox);
    if (!f->r)
        return -1;
    hk_relay_set_wanted(f->r, true); /* as when a consumer attaches to the mirror */
    return 0;
}

TEST(relay_carries_packets_to_the_mirror_in_order)
{
    static fixture_t f;
    CHECK_INT_EQ(fixture_init(&f), 0);
    CHECK_INT_EQ(f.p->n_taps, 1);
    CHECK(f.r->mirror.live && f.r->mirror.kind == HK_MEDIA_VIDEO && f.r->mirror.relay == f.r);
    CHECK(f.r->mirror.endpoint->owner == &owner_tag); /* the publisher, for notifies and stats */

    uint8_t buf[1500];
    for (uint16_t seq = 100; seq < 110; seq++)
        push(f.r, buf, rtp_packet(buf, seq, 0x1234, 200));
    CHECK_INT_EQ(f.b.wakes, 1); /* scheduled once until drained */
    CHECK_INT_EQ(f.a.host.counters.relay_packets, 10);
    hk_relay_inbox_drain(&f.b.inbox, 1000);
    CHECK_INT_EQ(f.r->forwarded, 10);
    CHECK_INT_EQ(f.r->streams[0].packets, 10);
    CHECK_INT_EQ(f.r->streams[0].ssrc, 0x1234);
    CHECK(hk_producer_stream(&f.r->mirror, 0) == &f.r->streams[0]);
    /* The mirror's cache answers NACKs on the target worker, bytes unchanged. */
    const uint8_t *cached;
    size_t cached_len;
    CHECK_INT_EQ(hk_nack_cache_get(f.r->streams[0].cache, 105, 1000, 1000, &cached, &cached_len),
                 0);
    rtp_packet(buf, 105, 0x1234, 200);
    CHECK_INT_EQ(cached_len, 212);
    CHECK_MEM_EQ(cached, buf, 212);
    /* Drained: the next packet wakes the target again. */
    push(f.r, buf, rtp_packet(buf, 110, 0x1234, 200));
    CHECK_INT_EQ(f.b.wakes, 2);
    hk_relay_inbox_drain(&f.b.inbox, 1001);
    CHECK_INT_EQ(f.r->forwarded, 11);

    hk_relay_destroy(f.r);
    CHECK_INT_EQ(f.p->n_taps, 0);
    hk_endpoint_clear(&f.e);
}

TEST(relay_full_ring_drops_and_counts)
{
    static fixture_t f;
    CHECK_INT_EQ(fixture_init(&f), 0);
    uint8_t buf[1500];
    for (int i = 0; i < HK_RELAY_SLOTS_VIDEO + 20; i++)
        push(f.r, buf, rtp_packet(buf, (uint16_t)i, 7, 100));
    CHECK_INT_EQ(f.a.host.counters.relay_packets, HK_RELAY_SLOTS_VIDEO);
    CHECK_INT_EQ(f.a.host.counters.relay_dropped, 20);
    hk_relay_inbox_drain(&f.b.inbox, 5);
    CHECK_INT_EQ(f.r->forwarded, HK_RELAY_SLOTS_VIDEO);
    /* Room again. */
    push(f.r, buf, rtp_packet(buf, 9, 7, 100));
    CHECK_INT_EQ(f.a.host.counters.relay_dropped, 20);
    /* A packet over the slot size is dropped, never cut. */
    static uint8_t big[HK_RELAY_PACKET_MAX + 1];
    push(f.r, big, sizeof big);
    CHECK_INT_EQ(f.a.host.counters.relay_dropped, 21);
    hk_relay_destroy(f.r);
    hk_relay_inbox_drain(&f.b.inbox, 6); /* frees it: it was still on the ready stack */
    hk_endpoint_clear(&f.e);
}

TEST(relay_keyframe_requests_go_to_the_source_worker)
{
    static fixture_t f;
    CHECK_INT_EQ(fixture_init(&f), 0);
    /* A consumer of the mirror asks: the bit waits for the source's worker, woken once. */
    hk_producer_request_keyframe(&f.r->mirror, 0, 10);
    hk_producer_request_keyframe(&f.r->mirror, 2, 10);
    CHECK_INT_EQ(f.a.wakes, 1);
    CHECK_INT_EQ(f.b.wakes, 0);
    CHECK_INT_EQ(atomic_load(&f.r->keyframe_layers), 0x5);
    /* The source is not live here (no transport to send a PLI on): the bits are taken. */
    f.p->live = false;
    hk_relay_inbox_drain(&f.a.inbox, 11);
    CHECK_INT_EQ(atomic_load(&f.r->keyframe_layers), 0);
    CHECK(!atomic_load(&f.r->keyframe_scheduled));
    /* A relay destroyed while a request waits is freed by the drain, which asks nothing. */
    hk_producer_request_keyframe(&f.r->mirror, 1, 12);
    CHECK_INT_EQ(f.a.wakes, 2);
    f.r->mirror.live = false; /* as hk_relay_destroy leaves it */
    hk_relay_destroy(f.r);
    hk_relay_inbox_drain(&f.a.inbox, 13);
    hk_endpoint_clear(&f.e);
}

TEST(relay_without_consumers_copies_nothing)
{
    static fixture_t f;
    CHECK_INT_EQ(fixture_init(&f), 0);
    CHECK(!atomic_load(&f.r->scheduled));
    /* The mirror's consumers decide: the first attach wants packets, the last detach not. */
    static hk_consumer_t c1, c2;
    CHECK_INT_EQ(hk_producer_attach(&f.r->mirror, &c1), 0);
    CHECK_INT_EQ(hk_producer_attach(&f.r->mirror, &c2), 0);
    hk_producer_detach(&f.r->mirror, &c1);
    CHECK(atomic_load(&f.r->wanted));
    hk_producer_detach(&f.r->mirror, &c2);
    CHECK(!atomic_load(&f.r->wanted));
    uint8_t buf[1500];
    push(f.r, buf, rtp_packet(buf, 1, 7, 100));
    CHECK_INT_EQ(f.a.host.counters.relay_packets, 0);
    CHECK_INT_EQ(f.a.host.counters.relay_dropped, 0);
    CHECK_INT_EQ(f.b.wakes, 0);
    CHECK_INT_EQ(hk_producer_attach(&f.r->mirror, &c1), 0);
    push(f.r, buf, rtp_packet(buf, 2, 7, 100));
    CHECK_INT_EQ(f.a.host.counters.relay_packets, 1);
    CHECK_INT_EQ(f.b.wakes, 1);
    hk_relay_destroy(f.r);
    hk_relay_inbox_drain(&f.b.inbox, 1);
    hk_endpoint_clear(&f.e);
}

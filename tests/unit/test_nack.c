#include "common/error.h"
#include "server/proto/nack.h"
#include "tests/unit/unit.h"

static void fill_packet(uint8_t *buf, size_t len, uint16_t seq)
{
    memset(buf, 0, len);
    buf[0] = 0x80;
    buf[1] = 96;
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    for (size_t i = 12; i < len; i++)
        buf[i] = (uint8_t)(seq + i);
}

TEST(nack_cache_create_rejects_bad_sizes)
{
    CHECK(hk_nack_cache_create(0) == NULL);
    CHECK(hk_nack_cache_create(500) == NULL);
    CHECK(hk_nack_cache_create(65536) == NULL);
    hk_nack_cache_t *c = hk_nack_cache_create(1);
    CHECK(c != NULL);
    hk_nack_cache_destroy(c);
    hk_nack_cache_destroy(NULL);
}

TEST(nack_cache_put_get)
{
    hk_nack_cache_t *c = hk_nack_cache_create(512);
    CHECK(c != NULL);
    uint8_t pkt[HK_NACK_PACKET_MAX + 1];
    const uint8_t *got;
    size_t len;
    CHECK_INT_EQ(hk_nack_cache_get(c, 0, 0, 1000, &got, &len), HK_ENOENT);
    fill_packet(pkt, 100, 10);
    CHECK_INT_EQ(hk_nack_cache_put(c, 10, pkt, 100, 5000), 0);
    CHECK_INT_EQ(hk_nack_cache_get(c, 10, 5500, 1000, &got, &len), 0);
    CHECK_INT_EQ(len, 100);
    CHECK_MEM_EQ(got, pkt, 100);
    CHECK_INT_EQ(hk_nack_cache_get(c, 11, 5500, 1000, &got, &len), HK_ENOENT);
    CHECK_INT_EQ(hk_nack_cache_get(c, 10 + 512, 5500, 1000, &got, &len), HK_ENOENT);
    /* Too old. */
    CHECK_INT_EQ(hk_nack_cache_get(c, 10, 6000, 1000, &got, &len), 0);
    CHECK_INT_EQ(hk_nack_cache_get(c, 10, 6001, 1000, &got, &len), HK_ENOENT);
    /* Sizes. */
    fill_packet(pkt, sizeof pkt, 11);
    CHECK_INT_EQ(hk_nack_cache_put(c, 11, pkt, HK_NACK_PACKET_MAX, 5000), 0);
    CHECK_INT_EQ(hk_nack_cache_get(c, 11, 5000, 1000, &got, &len), 0);
    CHECK_INT_EQ(len, HK_NACK_PACKET_MAX);
    CHECK_INT_EQ(hk_nack_cache_put(c, 12, pkt, HK_NACK_PACKET_MAX + 1, 5000), HK_EINVAL);
    CHECK_INT_EQ(hk_nack_cache_put(c, 12, pkt, 0, 5000), HK_EINVAL);
    hk_nack_cache_destroy(c);
}

TEST(nack_cache_overwrite_and_wrap)
{
    hk_nack_cache_t *c = hk_nack_cache_create(512);
    uint8_t pkt[200];
    const uint8_t *got;
    size_t len;
    /* 65000 .. 65535, 0 .. 600: wraps, and the ring turns over. */
    uint16_t s = 65000;
    for (int i = 0; i < 1137; i++, s++) {
        fill_packet(pkt, 50 + (size_t)(i % 100), s);
        CHECK_INT_EQ(hk_nack_cache_put(c, s, pkt, 50 + (size_t)(i % 100), 1000 + (uint64_t)i), 0);
    }
    /* The newest 512 are there, with their own bytes. */
    for (uint16_t q = (uint16_t)(s - 512); q != s; q++) {
        CHECK_INT_EQ(hk_nack_cache_get(c, q, 2200, 10000, &got, &len), 0);
        CHECK_INT_EQ(got[2], q >> 8);
        CHECK_INT_EQ(got[3], q & 0xff);
    }
    /* Older ones were overwritten by a newer seq in the same slot. */
    CHECK_INT_EQ(hk_nack_cache_get(c, (uint16_t)(s - 513), 2200, 10000, &got, &len), HK_ENOENT);
    CHECK_INT_EQ(hk_nack_cache_get(c, 65535, 2200, 10000, &got, &len), HK_ENOENT);
    CHECK_INT_EQ(hk_nack_cache_get(c, 0, 2200, 10000, &got, &len), HK_ENOENT);
    /* A late packet does not evict the newer one in its slot. */
    uint16_t late = (uint16_t)(s - 600);
    fill_packet(pkt, 60, late);
    CHECK_INT_EQ(hk_nack_cache_put(c, late, pkt, 60, 2300), HK_ERANGE);
    CHECK_INT_EQ(hk_nack_cache_get(c, (uint16_t)(late + 512), 2300, 10000, &got, &len), 0);
    /* The same seq again (a duplicate) replaces it. */
    uint16_t last = (uint16_t)(s - 1);
    fill_packet(pkt, 70, last);
    CHECK_INT_EQ(hk_nack_cache_put(c, last, pkt, 70, 2400), 0);
    CHECK_INT_EQ(hk_nack_cache_get(c, last, 2400, 10, &got, &len), 0);
    CHECK_INT_EQ(len, 70);
    /* After a long silence far-away sequence numbers still get stored. */
    fill_packet(pkt, 60, 40000);
    CHECK_INT_EQ(hk_nack_cache_put(c, 40000, pkt, 60, 9000), 0);
    CHECK_INT_EQ(hk_nack_cache_get(c, 40000, 9000, 10, &got, &len), 0);
    hk_nack_cache_destroy(c);
}

static const hk_nack_tracker_config_t config = {
    .max_retries = 3,
    .retry_interval_ms = 100,
    .max_age_ms = 1000,
};

TEST(nack_tracker_gap_reorder_retry)
{
    static hk_nack_tracker_t t;
    uint16_t out[300];
    hk_nack_tracker_init(&t, &config);
    hk_nack_tracker_received(&t, 100, 0);
    hk_nack_tracker_received(&t, 101, 0);
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 0, out, 300), 0);
    hk_nack_tracker_received(&t, 105, 10); /* 102, 103, 104 missing */
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 3);
    hk_nack_tracker_received(&t, 103, 12); /* reordered */
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 2);
    hk_nack_tracker_received(&t, 103, 12); /* duplicate: no change */
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 2);
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 20, out, 300), 2);
    CHECK_INT_EQ(out[0], 102);
    CHECK_INT_EQ(out[1], 104);
    /* Not again before the retry interval. */
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 119, out, 300), 0);
    hk_nack_tracker_received(&t, 102, 119); /* the retransmission */
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 120, out, 300), 1);
    CHECK_INT_EQ(out[0], 104);
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 220, out, 300), 1);
    /* Three retries, then given up. */
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 320, out, 300), 0);
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 0);
}

TEST(nack_tracker_bounded_output_and_age)
{
    static hk_nack_tracker_t t;
    uint16_t out[4];
    hk_nack_tracker_init(&t, &config);
    hk_nack_tracker_received(&t, 0, 0);
    hk_nack_tracker_received(&t, 11, 0); /* 1..10 missing */
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 0, out, 4), 4);
    CHECK_INT_EQ(out[0], 1);
    CHECK_INT_EQ(out[3], 4);
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 1, out, 4), 4);
    CHECK_INT_EQ(out[0], 5);
    /* Too old: dropped without being sent. */
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 1001, out, 4), 0);
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 0);
}

TEST(nack_tracker_wrap_around)
{
    static hk_nack_tracker_t t;
    uint16_t out[16];
    hk_nack_tracker_init(&t, &config);
    hk_nack_tracker_received(&t, 65533, 0);
    hk_nack_tracker_received(&t, 1, 0); /* 65534, 65535, 0 missing */
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 0, out, 16), 3);
    CHECK_INT_EQ(out[0], 65534);
    CHECK_INT_EQ(out[1], 65535);
    CHECK_INT_EQ(out[2], 0);
    hk_nack_tracker_received(&t, 65535, 5);
    hk_nack_tracker_received(&t, 2, 5);
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 2);
    CHECK_INT_EQ(t.highest, 2);
}

TEST(nack_tracker_huge_jump_is_a_restart)
{
    static hk_nack_tracker_t t;
    uint16_t out[300];
    hk_nack_tracker_init(&t, &config);
    hk_nack_tracker_received(&t, 10, 0);
    hk_nack_tracker_received(&t, 12, 0);
    hk_nack_tracker_received(&t, 10 + 1 + HK_NACK_MAX_JUMP + 2, 0); /* forward jump */
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 0);
    CHECK_INT_EQ(t.resets, 1);
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 0, out, 300), 0);
    hk_nack_tracker_received(&t, 30000, 0); /* far away either way */
    hk_nack_tracker_received(&t, 30002, 0);
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 1);
    hk_nack_tracker_received(&t, 20000, 0); /* backward jump */
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), 0);
    CHECK_INT_EQ(t.resets, 3);
    /* A jump of exactly HK_NACK_MAX_JUMP is a loss, bounded to the newest entries. */
    hk_nack_tracker_received(&t, 20000 + HK_NACK_MAX_JUMP, 0);
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), HK_NACK_MAX_MISSING);
    CHECK_INT_EQ(hk_nack_tracker_collect(&t, 0, out, 300), HK_NACK_MAX_MISSING);
    CHECK_INT_EQ(out[0], 20000 + HK_NACK_MAX_JUMP - HK_NACK_MAX_MISSING);
    CHECK_INT_EQ(out[HK_NACK_MAX_MISSING - 1], 20000 + HK_NACK_MAX_JUMP - 1);
    /* More losses push the oldest out. */
    hk_nack_tracker_received(&t, 20000 + HK_NACK_MAX_JUMP + 3, 0);
    CHECK_INT_EQ(hk_nack_tracker_missing(&t), HK_NACK_MAX_MISSING);
    CHECK_INT_EQ(t.missing[HK_NACK_MAX_MISSING - 1].seq, 20000 + HK_NACK_MAX_JUMP + 2);
    CHECK_INT_EQ(t.missing[0].seq, 20000 + HK_NACK_MAX_JUMP - HK_NACK_MAX_MISSING + 2);
}

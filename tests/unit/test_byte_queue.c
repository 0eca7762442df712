/* The ICE-TCP send queue (io/byte_queue): bounded, all-or-nothing pushes, order kept
 * across the wrap, and the iovecs a writev would take. */
#include "common/error.h"
#include "server/io/byte_queue.h"
#include "tests/unit/unit.h"

/* Drains q into out through its iovecs, at most max bytes; returns the bytes taken. */
static size_t drain(hk_byte_queue_t *q, uint8_t *out, size_t max)
{
    struct iovec iov[2];
    int n = hk_byte_queue_iov(q, iov);
    size_t taken = 0;
    for (int i = 0; i < n && taken < max; i++) {
        size_t k = iov[i].iov_len < max - taken ? iov[i].iov_len : max - taken;
        memcpy(out + taken, iov[i].iov_base, k);
        taken += k;
    }
    hk_byte_queue_consume(q, taken);
    return taken;
}

TEST(byte_queue_pushes_whole_or_nothing)
{
    hk_byte_queue_t q;
    CHECK_INT_EQ(hk_byte_queue_init(&q, 10), 0);
    const uint8_t hdr[2] = {0, 4};
    CHECK_INT_EQ(hk_byte_queue_push(&q, hdr, 2, (const uint8_t *)"abcd", 4), 0);
    CHECK_INT_EQ(hk_byte_queue_used(&q), 6);
    /* 6 more do not fit in the 4 left: refused, nothing queued */
    CHECK_INT_EQ(hk_byte_queue_push(&q, hdr, 2, (const uint8_t *)"efgh", 4), HK_ENOSPC);
    CHECK_INT_EQ(hk_byte_queue_used(&q), 6);
    CHECK_INT_EQ(hk_byte_queue_push(&q, hdr, 2, (const uint8_t *)"ef", 2), 0); /* exactly full */
    CHECK_INT_EQ(hk_byte_queue_used(&q), 10);
    CHECK_INT_EQ(hk_byte_queue_push(&q, (const uint8_t *)"x", 1, NULL, 0), HK_ENOSPC);
    uint8_t out[16];
    CHECK_INT_EQ(drain(&q, out, sizeof out), 10);
    CHECK_MEM_EQ(out, "\0\4abcd\0\4ef", 10);
    CHECK_INT_EQ(hk_byte_queue_used(&q), 0);
    hk_byte_queue_free(&q);
}

TEST(byte_queue_keeps_order_across_the_wrap)
{
    hk_byte_queue_t q;
    CHECK_INT_EQ(hk_byte_queue_init(&q, 8), 0);
    uint8_t out[8];
    CHECK_INT_EQ(hk_byte_queue_push(&q, (const uint8_t *)"012345", 6, NULL, 0), 0);
    CHECK_INT_EQ(drain(&q, out, 4), 4); /* a partial write: "45" stays, at offset 4 */
    CHECK_MEM_EQ(out, "0123", 4);
    CHECK_INT_EQ(hk_byte_queue_push(&q, (const uint8_t *)"ab", 2, (const uint8_t *)"cdef", 4), 0);
    struct iovec iov[2];
    CHECK_INT_EQ(hk_byte_queue_iov(&q, iov), 2); /* "45ab" to the end, then "cdef" */
    CHECK_INT_EQ(iov[0].iov_len, 4);
    CHECK_INT_EQ(iov[1].iov_len, 4);
    CHECK_INT_EQ(drain(&q, out, sizeof out), 8);
    CHECK_MEM_EQ(out, "45abcdef", 8);
    CHECK_INT_EQ(hk_byte_queue_iov(&q, iov), 0);
    hk_byte_queue_free(&q);
}

TEST(byte_queue_many_rounds_stay_bounded)
{
    hk_byte_queue_t q;
    CHECK_INT_EQ(hk_byte_queue_init(&q, 1000), 0);
    uint8_t frame[97], out[1000];
    uint32_t next_in = 0, next_out = 0;
    int refused = 0;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof frame; i++)
            frame[i] = (uint8_t)(next_in + i);
        if (hk_byte_queue_push(&q, frame, sizeof frame, NULL, 0) == 0)
            next_in += sizeof frame;
        else
            refused++;
        CHECK(hk_byte_queue_used(&q) <= 1000);
        size_t n = drain(&q, out, (size_t)(round % 3) * 40); /* a reader slower than the writer */
        for (size_t i = 0; i < n; i++)
            CHECK_INT_EQ(out[i], (uint8_t)(next_out + i)); /* byte k of the stream is k */
        next_out += (uint32_t)n;
    }
    CHECK(refused > 0);
    hk_byte_queue_free(&q);
}

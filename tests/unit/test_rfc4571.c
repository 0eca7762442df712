/* RFC 4571 framing (proto/rfc4571): annotated streams -> frames -> headers written back. */
#include "common/error.h"
#include "server/proto/rfc4571.h"
#include "tests/unit/unit.h"

TEST(rfc4571_decode_frames_in_a_stream)
{
    static const uint8_t stream[] = {
        0x00, 0x03, 'a', 'b', 'c', /* LENGTH 3, then 3 bytes */
        0x00, 0x00,                /* LENGTH 0: an empty frame */
        0x00, 0x01, 'z',           /* LENGTH 1 */
        0x00, 0x05, '1', '2',      /* LENGTH 5, only 2 bytes so far */
    };
    size_t at = 0, n = 0;
    CHECK_INT_EQ(hk_rfc4571_decode(stream + at, sizeof stream - at, 1600, &n), 5);
    CHECK_INT_EQ(n, 3);
    CHECK_MEM_EQ(stream + at + HK_RFC4571_HEADER, "abc", 3);
    at += 5;
    CHECK_INT_EQ(hk_rfc4571_decode(stream + at, sizeof stream - at, 1600, &n), 2);
    CHECK_INT_EQ(n, 0);
    at += 2;
    CHECK_INT_EQ(hk_rfc4571_decode(stream + at, sizeof stream - at, 1600, &n), 3);
    CHECK_INT_EQ(n, 1);
    at += 3;
    CHECK_INT_EQ(hk_rfc4571_decode(stream + at, sizeof stream - at, 1600, &n), HK_EINCOMPLETE);
    CHECK_INT_EQ(hk_rfc4571_decode(stream + at, 1, 1600, &n), HK_EINCOMPLETE); /* half a header */
    CHECK_INT_EQ(hk_rfc4571_decode(stream, 0, 1600, &n), HK_EINCOMPLETE);
}

TEST(rfc4571_decode_refuses_lengths_over_the_limit_before_the_payload)
{
    size_t n = 99;
    static const uint8_t over[] = {0x06, 0x41}; /* 1601: no payload needed to refuse */
    CHECK_INT_EQ(hk_rfc4571_decode(over, sizeof over, 1600, &n), HK_ERANGE);
    static const uint8_t max[] = {0xff, 0xff}; /* 65535, the largest the field holds */
    CHECK_INT_EQ(hk_rfc4571_decode(max, sizeof max, 1600, &n), HK_ERANGE);
    CHECK_INT_EQ(hk_rfc4571_decode(max, sizeof max, 65535, &n), HK_EINCOMPLETE);
    static const uint8_t at_limit[] = {0x06, 0x40}; /* 1600: accepted, incomplete */
    CHECK_INT_EQ(hk_rfc4571_decode(at_limit, sizeof at_limit, 1600, &n), HK_EINCOMPLETE);
    CHECK_INT_EQ(n, 99); /* untouched on errors */
}

TEST(rfc4571_header_round_trip)
{
    uint8_t frame[HK_RFC4571_HEADER + 300];
    memset(frame, 0x5a, sizeof frame);
    hk_rfc4571_write_header(frame, 300);
    CHECK_INT_EQ(frame[0], 0x01);
    CHECK_INT_EQ(frame[1], 0x2c);
    size_t n = 0;
    CHECK_INT_EQ(hk_rfc4571_decode(frame, sizeof frame, 1600, &n), (int)sizeof frame);
    CHECK_INT_EQ(n, 300);
    uint8_t again[HK_RFC4571_HEADER];
    hk_rfc4571_write_header(again, n);
    CHECK_MEM_EQ(again, frame, sizeof again);
}

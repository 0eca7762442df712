#include "common/error.h"
#include "server/sfu/forward.h"
#include "server/proto/sdp.h"
#include "tests/unit/unit.h"

/* A Chromium-like video packet: one-byte extensions mid "1", abs-send-time and
 * transport-wide seq 0x0102, then a 4-byte payload. */
static const uint8_t video_packet[] = {
    0x90, 0x60, 0x12, 0x34, /* V=2 X=1, PT 96, seq 0x1234 */
    0x00, 0x00, 0x10, 0x00, /* timestamp */
    0xde, 0xad, 0xbe, 0xef, /* SSRC */
    0xbe, 0xde, 0x00, 0x03, /* one-byte form, 3 words */
    0x10, '1',              /* id 1 (mid) L=0: "1" */
    0x22, 0x01, 0x02, 0x03, /* id 2 (abs-send-time) L=2 */
    0x31, 0x01, 0x02,       /* id 3 (transport-wide cc) L=1: 0x0102 */
    0x00, 0x00, 0x00,       /* padding */
    0xca, 0xfe, 0xba, 0xbe, /* payload (ciphertext to us) */
};

TEST(forward_rewrite_one_byte_mid_and_twcc)
{
    hk_rtp_header_t hdr;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(video_packet, sizeof video_packet, &hdr, &err), 0);
    uint8_t out[128];
    int n = hk_forward_rewrite(video_packet, sizeof video_packet, &hdr, out, sizeof out, "17", 2,
                               true, 0xabcd, NULL);
    static const uint8_t expected[] = {
        0x90, 0x60, 0x12, 0x34, 0x00, 0x00, 0x10, 0x00,
        0xde, 0xad, 0xbe, 0xef, 0xbe, 0xde, 0x00, 0x03, /* 3 words */
        0x11, '1',  '7',                                /* mid "17" first */
        0x31, 0xab, 0xcd,                               /* this leg's transport-wide seq */
        0x22, 0x01, 0x02, 0x03,                         /* abs-send-time copied */
        0x00, 0x00,                                     /* padding to a word */
        0xca, 0xfe, 0xba, 0xbe,                         /* payload untouched */
    };
    CHECK_INT_EQ(n, sizeof expected);
    CHECK_MEM_EQ(out, expected, sizeof expected);
    /* The result parses and carries the new values. */
    hk_rtp_header_t h2;
    CHECK_INT_EQ(hk_rtp_parse(out, (size_t)n, &h2, &err), 0);
    CHECK_INT_EQ(h2.payload_len, 4);
    CHECK_INT_EQ(h2.seq, 0x1234);
    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(out, &h2, HK_EXT_MID, &off, &len), 0);
    CHECK_INT_EQ(len, 2);
    CHECK_MEM_EQ(out + off, "17", 2);
}

TEST(forward_rewrite_adds_extension_when_absent)
{
    static const uint8_t plain[] = {0x80, 0x6f, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa, 0xbb};
    hk_rtp_header_t hdr;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(plain, sizeof plain, &hdr, &err), 0);
    uint8_t out[64];
    int n = hk_forward_rewrite(plain, sizeof plain, &hdr, out, sizeof out, "3", 1, false, 9, NULL);
    static const uint8_t expected[] = {0x90, 0x6f, 0x00, 0x01, 0,    0,    0,    1,
                                       0,    0,    0,    2,    0xbe, 0xde, 0x00, 0x01,
                                       0x10, '3',  0x00, 0x00, 0xaa, 0xbb};
    CHECK_INT_EQ(n, sizeof expected);
    CHECK_MEM_EQ(out, expected, sizeof expected);
    /* With set_twcc, the transport-wide sequence number is added too. */
    n = hk_forward_rewrite(plain, sizeof plain, &hdr, out, sizeof out, "3", 1, true, 0x0109, NULL);
    static const uint8_t with_twcc[] = {0x90, 0x6f, 0x00, 0x01, 0,    0,    0,    1,    0,
                                        0,    0,    2,    0xbe, 0xde, 0x00, 0x02, 0x10, '3',
                                        0x31, 0x01, 0x09, 0x00, 0x00, 0x00, 0xaa, 0xbb};
    CHECK_INT_EQ(n, sizeof with_twcc);
    CHECK_MEM_EQ(out, with_twcc, sizeof with_twcc);
}

TEST(forward_rewrite_two_byte_form_and_padding)
{
    /* Two-byte form (0x1000) with mid "ab" and an unknown element id 20; RTP padding of
     * 4 bytes at the end is carried over unchanged. */
    static const uint8_t pkt[] = {
        0xb0, 0x60, 0x00, 0x02, 0,    0,    0,    3,
        0,    0,    0,    4,    0x10, 0x00, 0x00, 0x02, /* two-byte form, 2 words */
        0x01, 0x02, 'a',  'b',                          /* id 1 len 2 */
        0x14, 0x01, 0x7f, 0x00,                         /* id 20 len 1, then a padding byte */
        0x01, 0x02, 0x00, 0x00, 0x00, 0x04              /* 2 payload bytes + 4 padding (count 4) */
    };
    hk_rtp_header_t hdr;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(pkt, sizeof pkt, &hdr, &err), 0);
    uint8_t out[64];
    hk_forward_layout_t at;
    int n = hk_forward_rewrite(pkt, sizeof pkt, &hdr, out, sizeof out, "xyz", 3, true, 1, &at);
    static const uint8_t expected[] = {
        0xb0, 0x60, 0x00, 0x02, 0,    0,    0, 3, 0, 0, 0, 4, 0x10, 0x00, 0x00, 0x03, /* 3 words */
        0x01, 0x03, 'x',  'y',  'z', /* mid first */
        0x03, 0x02, 0x00, 0x01,      /* transport-wide seq 1 */
        0x14, 0x01, 0x7f,            /* id 20 copied: 3 words exactly */
        0x01, 0x02, 0x00, 0x00, 0x00, 0x04,
    };
    CHECK_INT_EQ(n, sizeof expected);
    CHECK_MEM_EQ(out, expected, sizeof expected);
    /* The layout points at the payload without its padding; no dependency descriptor. */
    CHECK_INT_EQ(at.payload_offset, 28);
    CHECK_INT_EQ(at.payload_len, 2);
    CHECK_INT_EQ(at.dd_len, 0);
}

TEST(forward_rewrite_reports_where_the_dependency_descriptor_went)
{
    /* One-byte form: abs-send-time (id 2), then a dependency descriptor (id 5, 3 bytes),
     * then a 2-byte payload. The rewrite puts mid and the sequence number first, so the
     * descriptor moves; the layout says where, as a parse of the result finds it. */
    static const uint8_t pkt[] = {
        0x90, 0x60, 0x00, 0x07, 0,    0,    0,    8,    0,    0,    0,    9,    0xbe,
        0xde, 0x00, 0x02, 0x22, 0x01, 0x02, 0x03, 0x52, 0x80, 0x12, 0x34, 0x9d, 0x01,
    };
    hk_rtp_header_t hdr, h2;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(pkt, sizeof pkt, &hdr, &err), 0);
    uint8_t out[64];
    hk_forward_layout_t at;
    int n = hk_forward_rewrite(pkt, sizeof pkt, &hdr, out, sizeof out, "1", 1, true, 7, &at);
    CHECK(n > 0);
    CHECK_INT_EQ(hk_rtp_parse(out, (size_t)n, &h2, &err), 0);
    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(out, &h2, HK_EXT_DEPENDENCY_DESCRIPTOR, &off, &len), 0);
    CHECK_INT_EQ(at.dd_offset, off);
    CHECK_INT_EQ(at.dd_len, 3);
    CHECK_MEM_EQ(out + at.dd_offset, "\x80\x12\x34", 3);
    CHECK_INT_EQ(at.payload_offset, h2.payload_offset);
    CHECK_INT_EQ(at.payload_len, 2);
    CHECK_MEM_EQ(out + at.payload_offset, "\x9d\x01", 2);
}

TEST(forward_rewrite_refuses)
{
    hk_rtp_header_t hdr;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(video_packet, sizeof video_packet, &hdr, &err), 0);
    uint8_t out[128];
    /* Every buffer shorter than the result is refused, never overrun. */
    for (size_t cap = 0; cap < 32; cap++) {
        uint8_t guard[160];
        memset(guard, 0x5a, sizeof guard);
        int n = hk_forward_rewrite(video_packet, sizeof video_packet, &hdr, guard, cap, "17", 2,
                                   true, 1, NULL);
        CHECK_INT_EQ(n, HK_ENOSPC);
        for (size_t i = cap; i < sizeof guard; i++)
            CHECK(guard[i] == 0x5a);
    }
    CHECK_INT_EQ(hk_forward_rewrite(video_packet, sizeof video_packet, &hdr, out, sizeof out, "", 0,
                                    true, 1, NULL),
                 HK_EINVAL);
    CHECK_INT_EQ(hk_forward_rewrite(video_packet, sizeof video_packet, &hdr, out, sizeof out,
                                    "01234567890123456", 17, true, 1, NULL),
                 HK_EINVAL);
}

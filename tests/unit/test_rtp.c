#include "common/error.h"
#include "server/proto/rtp.h"
#include "tests/unit/unit.h"

/* A Chromium-style VP8 packet with one-byte header extensions:
 * mid (id 1) "1", abs-send-time (id 2, 3 bytes), transport-cc (id 3, 2 bytes). */
static const uint8_t vp8_one_byte[] = {
    0x90, 0xe0,             /* V=2 P=0 X=1 CC=0, M=1 PT=96 */
    0x12, 0x34,             /* seq 0x1234 */
    0x00, 0x01, 0xe2, 0x40, /* timestamp 123456 */
    0xde, 0xad, 0xbe, 0xef, /* SSRC */
    0xbe, 0xde, 0x00, 0x03, /* one-byte profile, 3 words */
    0x10, '1',              /* id 1 L=0: mid "1" */
    0x22, 0x11, 0x22, 0x33, /* id 2 L=2: abs-send-time */
    0x31, 0x00, 0x05,       /* id 3 L=1: transport seq 5 */
    0x00, 0x00, 0x00,       /* padding */
    0xaa, 0xbb, 0xcc, 0xdd, /* payload */
};

TEST(rtp_parse_one_byte_extensions)
{
    hk_rtp_header_t h;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(vp8_one_byte, sizeof vp8_one_byte, &h, &err), 0);
    CHECK_INT_EQ(h.version, 2);
    CHECK(!h.padding);
    CHECK(h.extension);
    CHECK(h.marker);
    CHECK_INT_EQ(h.pt, 96);
    CHECK_INT_EQ(h.seq, 0x1234);
    CHECK_INT_EQ(h.timestamp, 123456);
    CHECK_INT_EQ(h.ssrc, 0xdeadbeef);
    CHECK_INT_EQ(h.csrc_count, 0);
    CHECK_INT_EQ(h.ext_profile, HK_RTP_EXT_ONE_BYTE);
    CHECK_INT_EQ(h.ext_offset, 16);
    CHECK_INT_EQ(h.ext_len, 12);
    CHECK_INT_EQ(h.header_len, 28);
    CHECK_INT_EQ(h.payload_offset, 28);
    CHECK_INT_EQ(h.payload_len, 4);

    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(vp8_one_byte, &h, 1, &off, &len), 0);
    CHECK_INT_EQ(off, 17);
    CHECK_INT_EQ(len, 1);
    CHECK_INT_EQ(hk_rtp_ext_find(vp8_one_byte, &h, 2, &off, &len), 0);
    CHECK_INT_EQ(off, 19);
    CHECK_INT_EQ(len, 3);
    CHECK_INT_EQ(hk_rtp_ext_find(vp8_one_byte, &h, 3, &off, &len), 0);
    CHECK_INT_EQ(off, 23);
    CHECK_INT_EQ(len, 2);
    CHECK_INT_EQ(hk_rtp_ext_find(vp8_one_byte, &h, 4, &off, &len), HK_ENOENT);
    CHECK_INT_EQ(hk_rtp_ext_find(vp8_one_byte, &h, 0, &off, &len), HK_ENOENT);
    CHECK_INT_EQ(hk_rtp_ext_find(vp8_one_byte, &h, 15, &off, &len), HK_ENOENT);

    /* Serialize the header again: identical bytes. */
    uint8_t out[64];
    int n = hk_rtp_write_header(out, sizeof out, &h, vp8_one_byte + h.ext_offset);
    CHECK_INT_EQ(n, 28);
    CHECK_MEM_EQ(out, vp8_one_byte, 28);
    CHECK_INT_EQ(hk_rtp_write_header(out, 27, &h, vp8_one_byte + h.ext_offset), HK_ENOSPC);
}

TEST(rtp_rewrite_mid_and_transport_seq)
{
    uint8_t pkt[sizeof vp8_one_byte];
    memcpy(pkt, vp8_one_byte, sizeof pkt);
    hk_rtp_header_t h;
    CHECK_INT_EQ(hk_rtp_parse(pkt, sizeof pkt, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_ext_rewrite_mid(pkt, &h, 1, "7", 1), 0);
    CHECK_INT_EQ(pkt[17], '7');
    CHECK_INT_EQ(hk_rtp_ext_rewrite_mid(pkt, &h, 1, "77", 2), HK_ENOSPC);
    CHECK_INT_EQ(pkt[17], '7');
    CHECK_INT_EQ(pkt[18], 0x22);
    CHECK_INT_EQ(hk_rtp_ext_rewrite_mid(pkt, &h, 9, "7", 1), HK_ENOENT);
    CHECK_INT_EQ(hk_rtp_ext_set_u16(pkt, &h, 3, 0xfffe), 0);
    CHECK_INT_EQ(pkt[23], 0xff);
    CHECK_INT_EQ(pkt[24], 0xfe);
    CHECK_INT_EQ(hk_rtp_ext_set_u16(pkt, &h, 2, 1), HK_EINVAL); /* 3-byte value */
    CHECK_INT_EQ(hk_rtp_ext_set_u16(pkt, &h, 5, 1), HK_ENOENT);
    /* Everything else is untouched. */
    CHECK_MEM_EQ(pkt, vp8_one_byte, 17);
    CHECK_MEM_EQ(pkt + 18, vp8_one_byte + 18, 5);
    CHECK_MEM_EQ(pkt + 25, vp8_one_byte + 25, sizeof pkt - 25);
}

/* Two-byte form (RFC 8285 §4.3), a CSRC, padding and an empty element. */
static const uint8_t two_byte_csrc_padding[] = {
    0xb1, 0x6f,             /* V=2 P=1 X=1 CC=1, M=0 PT=111 */
    0xff, 0xff,             /* seq 65535 */
    0x00, 0x00, 0x00, 0x10, /* timestamp 16 */
    0x01, 0x02, 0x03, 0x04, /* SSRC */
    0x0a, 0x0b, 0x0c, 0x0d, /* CSRC */
    0x10, 0x00, 0x00, 0x03, /* two-byte profile, appbits 0, 3 words */
    0x01, 0x02, 'a',  'b',  /* id 1 len 2: mid "ab" */
    0x00,                   /* padding byte */
    0x20, 0x00,             /* id 32 len 0 */
    0x03, 0x02, 0x00, 0x07, /* id 3 len 2: transport seq 7 */
    0x00,                   /* padding */
    0x11, 0x22, 0x33,       /* payload */
    0x00, 0x00, 0x03,       /* 3 padding bytes */
};

TEST(rtp_parse_two_byte_csrc_padding)
{
    hk_rtp_header_t h;
    CHECK_INT_EQ(hk_rtp_parse(two_byte_csrc_padding, sizeof two_byte_csrc_padding, &h, NULL), 0);
    CHECK(h.padding);
    CHECK(!h.marker);
    CHECK_INT_EQ(h.pt, 111);
    CHECK_INT_EQ(h.seq, 65535);
    CHECK_INT_EQ(h.csrc_count, 1);
    CHECK_INT_EQ(h.csrcs[0], 0x0a0b0c0d);
    CHECK_INT_EQ(h.ext_profile, 0x1000);
    CHECK_INT_EQ(h.ext_offset, 20);
    CHECK_INT_EQ(h.ext_len, 12);
    CHECK_INT_EQ(h.header_len, 32);
    CHECK_INT_EQ(h.payload_len, 3);
    CHECK_INT_EQ(h.padding_len, 3);

    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(two_byte_csrc_padding, &h, 1, &off, &len), 0);
    CHECK_INT_EQ(off, 22);
    CHECK_INT_EQ(len, 2);
    CHECK_INT_EQ(hk_rtp_ext_find(two_byte_csrc_padding, &h, 32, &off, &len), 0);
    CHECK_INT_EQ(len, 0);
    CHECK_INT_EQ(hk_rtp_ext_find(two_byte_csrc_padding, &h, 3, &off, &len), 0);
    CHECK_INT_EQ(off, 29);
    CHECK_INT_EQ(len, 2);
    CHECK_INT_EQ(hk_rtp_ext_find(two_byte_csrc_padding, &h, 200, &off, &len), HK_ENOENT);

    uint8_t pkt[sizeof two_byte_csrc_padding];
    memcpy(pkt, two_byte_csrc_padding, sizeof pkt);
    CHECK_INT_EQ(hk_rtp_ext_rewrite_mid(pkt, &h, 1, "zz", 2), 0);
    CHECK_INT_EQ(pkt[22], 'z');
    CHECK_INT_EQ(hk_rtp_ext_set_u16(pkt, &h, 3, 0x0102), 0);
    CHECK_INT_EQ(pkt[29], 1);
    CHECK_INT_EQ(pkt[30], 2);

    uint8_t out[64];
    CHECK_INT_EQ(hk_rtp_write_header(out, sizeof out, &h, two_byte_csrc_padding + h.ext_offset),
                 32);
    CHECK_MEM_EQ(out, two_byte_csrc_padding, 32);
}

TEST(rtp_one_byte_id15_stops_scan)
{
    static const uint8_t pkt[] = {
        0x90, 0x60, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, /* X=1 */
        0xbe, 0xde, 0x00, 0x02,                         /* 2 words */
        0xf0, 0x00, 0x00, 0x00,                         /* id 15: stop */
        0x30, 0x00, 0x09, 0x00,                         /* id 3 never reached */
    };
    hk_rtp_header_t h;
    CHECK_INT_EQ(hk_rtp_parse(pkt, sizeof pkt, &h, NULL), 0);
    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(pkt, &h, 3, &off, &len), HK_ENOENT);
}

TEST(rtp_unknown_profile_has_no_elements)
{
    static const uint8_t pkt[] = {
        0x90, 0x60, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0x12, 0x34, 0x00, 0x01, 0x10, 'x', 0, 0,
    };
    hk_rtp_header_t h;
    CHECK_INT_EQ(hk_rtp_parse(pkt, sizeof pkt, &h, NULL), 0);
    CHECK_INT_EQ(h.ext_profile, 0x1234);
    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(pkt, &h, 1, &off, &len), HK_ENOENT);
}

TEST(rtp_element_past_extension_block)
{
    /* docs/threats.md 6: a mid longer than its buffer. */
    static const uint8_t one[] = {
        0x90, 0x60, 0x00, 0x01, 0,    0,    0,   0,   0,   0, 0,
        1,    0xbe, 0xde, 0x00, 0x01, 0x1f, 'a', 'b', 'c', /* id 1 L=15: 16 bytes claimed, 3 present
                                                            */
        'd',  'e',  'f',  'g', /* payload: must not be read as extension */
    };
    static const uint8_t two[] = {
        0x90, 0x60, 0x00, 0x01, 0,    0,    0,    0,    0,   0,
        0,    1,    0x10, 0x00, 0x00, 0x01, 0x01, 0xff, 'a', 'b', /* id 1 len 255 */
    };
    static const uint8_t two_cut[] = {
        0x90, 0x60, 0x00, 0x01, 0,    0,    0,    0,    0,    0, 0,
        1,    0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, /* padding, then id 5 without its
                                                                 length byte */
    };
    hk_rtp_header_t h;
    size_t off, len;
    CHECK_INT_EQ(hk_rtp_parse(one, sizeof one, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_ext_find(one, &h, 1, &off, &len), HK_EINVAL);
    CHECK_INT_EQ(hk_rtp_ext_find(one, &h, 2, &off, &len), HK_EINVAL);
    CHECK_INT_EQ(hk_rtp_parse(two, sizeof two, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_ext_find(two, &h, 1, &off, &len), HK_EINVAL);
    CHECK_INT_EQ(hk_rtp_parse(two_cut, sizeof two_cut, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_ext_find(two_cut, &h, 5, &off, &len), HK_EINVAL);
}

TEST(rtp_refuses_truncated_and_lying_headers)
{
    uint8_t pkt[128];
    hk_rtp_header_t h;
    const char *err = NULL;
    memset(pkt, 0, sizeof pkt);
    pkt[0] = 0x80;
    /* docs/threats.md 1: zero length, < 12 bytes. */
    CHECK_INT_EQ(hk_rtp_parse(pkt, 0, &h, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_rtp_parse(pkt, 11, &h, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_rtp_parse(pkt, 12, &h, &err), 0);
    CHECK_INT_EQ(h.payload_len, 0);
    /* Version 1. */
    pkt[0] = 0x40;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 12, &h, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTP version is not 2");
    /* docs/threats.md 2: CSRC count past the end. */
    pkt[0] = 0x8f;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 12 + 14 * 4, &h, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTP CSRC list past the end");
    CHECK_INT_EQ(hk_rtp_parse(pkt, 12 + 15 * 4, &h, &err), 0);
    /* Extension header itself past the end, then its length. */
    pkt[0] = 0x90;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 14, &h, &err), HK_EINVAL);
    pkt[12] = 0xbe;
    pkt[13] = 0xde;
    pkt[14] = 0x00;
    pkt[15] = 0x02;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 23, &h, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTP extension length past the end");
    CHECK_INT_EQ(hk_rtp_parse(pkt, 24, &h, &err), 0);
    pkt[14] = 0xff;
    pkt[15] = 0xff;
    CHECK_INT_EQ(hk_rtp_parse(pkt, sizeof pkt, &h, &err), HK_EINVAL);
    /* Padding larger than the payload, and padding 0. */
    pkt[0] = 0xa0;
    pkt[19] = 8;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 20, &h, &err), 0);
    CHECK_INT_EQ(h.payload_len, 0);
    pkt[19] = 9;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 20, &h, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTP padding count larger than the payload");
    pkt[19] = 0;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 20, &h, &err), HK_EINVAL);
    /* Padding byte inside the header: 12-byte packet with P=1 and count 1. */
    pkt[0] = 0xa0;
    pkt[11] = 1;
    CHECK_INT_EQ(hk_rtp_parse(pkt, 12, &h, &err), HK_EINVAL);
}

TEST(rtp_rtx_original_seq)
{
    static const uint8_t rtx[] = {
        0x80, 0x61, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 2, /* PT 97 */
        0xab, 0xcd,                                     /* OSN */
        0x01,                                           /* original payload */
    };
    hk_rtp_header_t h;
    uint16_t seq = 0;
    CHECK_INT_EQ(hk_rtp_parse(rtx, sizeof rtx, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_rtx_original_seq(rtx, &h, &seq), 0);
    CHECK_INT_EQ(seq, 0xabcd);
    /* docs/threats.md 4: under 2 payload bytes. */
    CHECK_INT_EQ(hk_rtp_parse(rtx, 13, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_rtx_original_seq(rtx, &h, &seq), HK_EINVAL);
    CHECK_INT_EQ(hk_rtp_parse(rtx, 12, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_rtx_original_seq(rtx, &h, &seq), HK_EINVAL);
    /* OSN hidden in the padding does not count. */
    static const uint8_t padded[] = {0xa0, 0x61, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 2, 0xab, 0x02};
    CHECK_INT_EQ(hk_rtp_parse(padded, sizeof padded, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_rtx_original_seq(padded, &h, &seq), HK_EINVAL);
}

TEST(rtp_is_rtcp)
{
    static const uint8_t sr[] = {0x80, 200, 0x00, 0x06};
    static const uint8_t rtp[] = {0x80, 0x60, 0x00, 0x06};
    static const uint8_t rtp_marker[] = {0x80, 0xe0, 0x00, 0x06}; /* M=1 PT=96: 224 */
    static const uint8_t low[] = {0x80, 191};
    static const uint8_t high[] = {0x80, 223};
    static const uint8_t v1[] = {0x40, 200};
    CHECK(hk_rtp_is_rtcp(sr, sizeof sr));
    CHECK(!hk_rtp_is_rtcp(rtp, sizeof rtp));
    CHECK(!hk_rtp_is_rtcp(rtp_marker, sizeof rtp_marker));
    CHECK(!hk_rtp_is_rtcp(low, sizeof low));
    CHECK(hk_rtp_is_rtcp(high, sizeof high));
    CHECK(!hk_rtp_is_rtcp(v1, sizeof v1));
    CHECK(!hk_rtp_is_rtcp(sr, 1));
    CHECK(!hk_rtp_is_rtcp(sr, 0));
}

TEST(rtp_write_header_round_trip)
{
    hk_rtp_header_t h;
    memset(&h, 0, sizeof h);
    h.marker = true;
    h.pt = 111;
    h.seq = 7;
    h.timestamp = 0xfedcba98;
    h.ssrc = 42;
    h.csrc_count = 2;
    h.csrcs[0] = 1;
    h.csrcs[1] = 0xffffffff;
    h.extension = true;
    h.ext_profile = HK_RTP_EXT_ONE_BYTE;
    h.ext_len = 4;
    static const uint8_t ext[4] = {0x10, 'm', 0x00, 0x00};
    uint8_t buf[64];
    int n = hk_rtp_write_header(buf, sizeof buf, &h, ext);
    CHECK_INT_EQ(n, 12 + 8 + 4 + 4);
    hk_rtp_header_t p;
    CHECK_INT_EQ(hk_rtp_parse(buf, (size_t)n, &p, NULL), 0);
    CHECK(p.marker);
    CHECK_INT_EQ(p.pt, 111);
    CHECK_INT_EQ(p.seq, 7);
    CHECK_INT_EQ(p.timestamp, 0xfedcba98);
    CHECK_INT_EQ(p.ssrc, 42);
    CHECK_INT_EQ(p.csrc_count, 2);
    CHECK_INT_EQ(p.csrcs[1], 0xffffffff);
    CHECK_INT_EQ(p.header_len, (size_t)n);
    size_t off, len;
    CHECK_INT_EQ(hk_rtp_ext_find(buf, &p, 1, &off, &len), 0);
    CHECK_INT_EQ(buf[off], 'm');
    h.ext_len = 3;
    CHECK_INT_EQ(hk_rtp_write_header(buf, sizeof buf, &h, ext), HK_EINVAL);
    h.pt = 128;
    CHECK_INT_EQ(hk_rtp_write_header(buf, sizeof buf, &h, ext), HK_EINVAL);
}

TEST(rtp_rtx_unwrap)
{
    /* RTX (PT 97, SSRC 2, seq 0x10, marker, one-byte extension) carrying OSN 0xabcd and a
     * 3-byte payload, then 2 bytes of padding. */
    static const uint8_t rtx[] = {
        0xb0, 0xe1, 0x00, 0x10, 0,    0,    0x30, 0x39, 0, 0, 0, 2, /* P, X, M, PT 97 */
        0xbe, 0xde, 0x00, 0x01, 0x10, 0x31, 0x00, 0x00,             /* mid "1" */
        0xab, 0xcd,                                                 /* OSN */
        0x07, 0x08, 0x09,                                           /* original payload */
        0x00, 0x02,                                                 /* padding */
    };
    static const uint8_t want[] = {
        0x90, 0xe0, 0xab, 0xcd, 0,    0,    0x30, 0x39, 0x11, 0x22, 0x33, 0x44, /* M, PT 96 */
        0xbe, 0xde, 0x00, 0x01, 0x10, 0x31, 0x00, 0x00, 0x07, 0x08, 0x09,
    };
    hk_rtp_header_t h;
    uint8_t out[64];
    CHECK_INT_EQ(hk_rtp_parse(rtx, sizeof rtx, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_rtx_unwrap(rtx, &h, 0x11223344, 96, out, sizeof out), sizeof want);
    CHECK_MEM_EQ(out, want, sizeof want);
    hk_rtp_header_t o;
    CHECK_INT_EQ(hk_rtp_parse(out, sizeof want, &o, NULL), 0);
    CHECK_INT_EQ(o.seq, 0xabcd);
    CHECK_INT_EQ(o.pt, 96);
    CHECK_INT_EQ(o.payload_len, 3);
    CHECK_INT_EQ(hk_rtp_rtx_unwrap(rtx, &h, 1, 96, out, sizeof want - 1), HK_ENOSPC);
    /* docs/threats.md 4: a payload too short for the OSN */
    static const uint8_t short_rtx[] = {0x80, 0x61, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 2, 0xab};
    CHECK_INT_EQ(hk_rtp_parse(short_rtx, sizeof short_rtx, &h, NULL), 0);
    CHECK_INT_EQ(hk_rtp_rtx_unwrap(short_rtx, &h, 1, 96, out, sizeof out), HK_EINVAL);
}

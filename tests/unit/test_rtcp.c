#include "common/error.h"
#include "server/proto/rtcp.h"
#include "tests/unit/unit.h"

/* Iterates buf expecting exactly one packet; returns it. */
static hk_rtcp_packet_t only_packet(const uint8_t *buf, size_t len)
{
    hk_rtcp_packet_t pkt;
    size_t off = 0;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtcp_next(buf, len, &off, &pkt, &err), 1);
    CHECK_INT_EQ(off, len);
    CHECK_INT_EQ(hk_rtcp_next(buf, len, &off, &pkt, &err), 0);
    return pkt;
}

/* A Chromium-style compound: SR without report blocks, then SDES with a CNAME. */
static const uint8_t sr_sdes[] = {
    /* SR */
    0x80, 0xc8, 0x00, 0x06, /* V=2 P=0 RC=0, PT=200, length 6 (28 bytes) */
    0x5c, 0x8e, 0x0d, 0x6b, /* SSRC of sender */
    0xe8, 0x2b, 0x43, 0x1a, /* NTP timestamp, most significant word */
    0x4f, 0x5c, 0x28, 0xf5, /* NTP timestamp, least significant word */
    0x2a, 0x1f, 0x0c, 0x40, /* RTP timestamp */
    0x00, 0x00, 0x04, 0xd2, /* sender's packet count 1234 */
    0x00, 0x0f, 0x42, 0x40, /* sender's octet count 1000000 */
    /* SDES */
    0x81, 0xca, 0x00, 0x06, /* V=2 P=0 SC=1, PT=202, length 6 (28 bytes) */
    0x5c, 0x8e, 0x0d, 0x6b, /* SSRC */
    0x01, 0x10,             /* CNAME, 16 bytes */
    'q', 'U', '7', 'x', 'B', 'm', '3', 'v', 'K', '9', 'p', 'L', 'a', '2', 'Z', 'e', 0x00,
    0x00, /* end of items, padding to 32 bits */
};

TEST(rtcp_compound_sr_sdes)
{
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtcp_next(sr_sdes, sizeof sr_sdes, &off, &pkt, &err), 1);
    CHECK_INT_EQ(pkt.type, HK_RTCP_SR);
    CHECK_INT_EQ(pkt.len, 28);
    hk_rtcp_report_t sr;
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &sr, &err), 0);
    CHECK(sr.has_sender_info);
    CHECK_INT_EQ(sr.ssrc, 0x5c8e0d6b);
    CHECK_INT_EQ(sr.ntp_sec, 0xe82b431a);
    CHECK_INT_EQ(sr.ntp_frac, 0x4f5c28f5);
    CHECK_INT_EQ(sr.rtp_timestamp, 0x2a1f0c40);
    CHECK_INT_EQ(sr.packet_count, 1234);
    CHECK_INT_EQ(sr.octet_count, 1000000);
    CHECK_INT_EQ(sr.report_count, 0);
    uint8_t out[64];
    CHECK_INT_EQ(hk_rtcp_build_sr(out, sizeof out, &sr), 28);
    CHECK_MEM_EQ(out, sr_sdes, 28);
    CHECK_INT_EQ(hk_rtcp_build_sr(out, 27, &sr), HK_ENOSPC);

    CHECK_INT_EQ(hk_rtcp_next(sr_sdes, sizeof sr_sdes, &off, &pkt, &err), 1);
    CHECK_INT_EQ(pkt.type, HK_RTCP_SDES);
    CHECK_INT_EQ(pkt.count, 1);
    uint32_t ssrc;
    CHECK_INT_EQ(hk_rtcp_parse_sdes(&pkt, &ssrc, &err), 0);
    CHECK_INT_EQ(ssrc, 0x5c8e0d6b);
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &sr, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_rtcp_next(sr_sdes, sizeof sr_sdes, &off, &pkt, &err), 0);
    CHECK_INT_EQ(off, sizeof sr_sdes);
}

static const uint8_t rr_one_block[] = {
    0x81, 0xc9, 0x00, 0x07, /* V=2 RC=1, PT=201, length 7 (32 bytes) */
    0x00, 0x00, 0x00, 0x01, /* SSRC of packet sender */
    0x5c, 0x8e, 0x0d, 0x6b, /* SSRC_1 */
    0x19,                   /* fraction lost 25/256 */
    0xff, 0xff, 0xfe,       /* cumulative lost -2 (duplicates) */
    0x00, 0x01, 0x30, 0x39, /* extended highest seq: cycle 1, seq 12345 */
    0x00, 0x00, 0x00, 0x2a, /* jitter 42 */
    0x43, 0x1a, 0x4f, 0x5c, /* LSR */
    0x00, 0x01, 0x80, 0x00, /* DLSR 1.5 s */
};

TEST(rtcp_rr_round_trip)
{
    hk_rtcp_packet_t pkt = only_packet(rr_one_block, sizeof rr_one_block);
    hk_rtcp_report_t rr;
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &rr, NULL), 0);
    CHECK(!rr.has_sender_info);
    CHECK_INT_EQ(rr.ssrc, 1);
    CHECK_INT_EQ(rr.report_count, 1);
    CHECK_INT_EQ(rr.reports[0].ssrc, 0x5c8e0d6b);
    CHECK_INT_EQ(rr.reports[0].fraction_lost, 25);
    CHECK_INT_EQ(rr.reports[0].cumulative_lost, -2);
    CHECK_INT_EQ(rr.reports[0].highest_seq, 0x00013039);
    CHECK_INT_EQ(rr.reports[0].jitter, 42);
    CHECK_INT_EQ(rr.reports[0].lsr, 0x431a4f5c);
    CHECK_INT_EQ(rr.reports[0].dlsr, 0x00018000);
    uint8_t out[64];
    CHECK_INT_EQ(hk_rtcp_build_rr(out, sizeof out, rr.ssrc, rr.reports, 1), 32);
    CHECK_MEM_EQ(out, rr_one_block, 32);
    CHECK_INT_EQ(hk_rtcp_build_rr(out, 31, rr.ssrc, rr.reports, 1), HK_ENOSPC);

    /* An empty RR (8 bytes) and an SR with blocks. */
    CHECK_INT_EQ(hk_rtcp_build_rr(out, sizeof out, 7, NULL, 0), 8);
    pkt = only_packet(out, 8);
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &rr, NULL), 0);
    CHECK_INT_EQ(rr.ssrc, 7);
    CHECK_INT_EQ(rr.report_count, 0);

    hk_rtcp_report_t sr;
    memset(&sr, 0, sizeof sr);
    sr.ssrc = 9;
    sr.report_count = 2;
    sr.reports[0].ssrc = 10;
    sr.reports[0].cumulative_lost = 0x7fffffff; /* clamped to 24 bits */
    sr.reports[1].ssrc = 11;
    sr.reports[1].cumulative_lost = -8388608;
    uint8_t big[128];
    int n = hk_rtcp_build_sr(big, sizeof big, &sr);
    CHECK_INT_EQ(n, 28 + 48);
    pkt = only_packet(big, (size_t)n);
    hk_rtcp_report_t back;
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &back, NULL), 0);
    CHECK_INT_EQ(back.report_count, 2);
    CHECK_INT_EQ(back.reports[0].cumulative_lost, 0x7fffff);
    CHECK_INT_EQ(back.reports[1].ssrc, 11);
    CHECK_INT_EQ(back.reports[1].cumulative_lost, -8388608);
}

static const uint8_t nack[] = {
    0x81, 0xcd, 0x00, 0x04, /* V=2 FMT=1, PT=205 RTPFB, length 4 (20 bytes) */
    0x00, 0x00, 0x00, 0x01, /* SSRC of packet sender */
    0x5c, 0x8e, 0x0d, 0x6b, /* SSRC of media source */
    0x03, 0xe8, 0x80, 0x05, /* PID 1000, BLP: +1, +3, +16 */
    0xff, 0xff, 0x00, 0x01, /* PID 65535, BLP: +1 (wraps to 0) */
};

TEST(rtcp_nack_round_trip)
{
    hk_rtcp_packet_t pkt = only_packet(nack, sizeof nack);
    hk_rtcp_fb_t fb;
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(fb.fmt, HK_RTCP_FMT_NACK);
    CHECK_INT_EQ(fb.sender_ssrc, 1);
    CHECK_INT_EQ(fb.media_ssrc, 0x5c8e0d6b);
    uint16_t seqs[16];
    CHECK_INT_EQ(hk_rtcp_parse_nack(&fb, seqs, 16, NULL), 6);
    CHECK_INT_EQ(seqs[0], 1000);
    CHECK_INT_EQ(seqs[1], 1001);
    CHECK_INT_EQ(seqs[2], 1003);
    CHECK_INT_EQ(seqs[3], 1016);
    CHECK_INT_EQ(seqs[4], 65535);
    CHECK_INT_EQ(seqs[5], 0);
    uint8_t out[64];
    CHECK_INT_EQ(hk_rtcp_build_nack(out, sizeof out, 1, 0x5c8e0d6b, seqs, 6), 20);
    CHECK_MEM_EQ(out, nack, 20);
    CHECK_INT_EQ(hk_rtcp_build_nack(out, 19, 1, 0x5c8e0d6b, seqs, 6), HK_ENOSPC);
    CHECK_INT_EQ(hk_rtcp_build_nack(out, sizeof out, 1, 2, seqs, 0), HK_EINVAL);

    /* Bounded expansion: only 2 stored, all 6 counted. */
    uint16_t two[2] = {0, 0};
    CHECK_INT_EQ(hk_rtcp_parse_nack(&fb, two, 2, NULL), 6);
    CHECK_INT_EQ(two[1], 1001);
    CHECK_INT_EQ(hk_rtcp_parse_nack(&fb, NULL, 0, NULL), 6);

    /* 16 apart shares the pair, 17 apart starts a new one; duplicates are folded. */
    uint16_t list[] = {5, 5, 21, 22, 40};
    int n = hk_rtcp_build_nack(out, sizeof out, 1, 2, list, 5);
    CHECK_INT_EQ(n, 24);
    pkt = only_packet(out, (size_t)n);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(hk_rtcp_parse_nack(&fb, seqs, 16, NULL), 4);
    CHECK_INT_EQ(seqs[1], 21);
    CHECK_INT_EQ(seqs[3], 40);
}

static const uint8_t pli[] = {
    0x81, 0xce, 0x00, 0x02, /* FMT=1 PLI, PT=206 PSFB, length 2 */
    0x00, 0x00, 0x00, 0x01, /* sender */
    0x5c, 0x8e, 0x0d, 0x6b, /* media source */
};

static const uint8_t fir[] = {
    0x84, 0xce, 0x00, 0x04, /* FMT=4 FIR, PT=206, length 4 */
    0x00, 0x00, 0x00, 0x01, /* sender */
    0x00, 0x00, 0x00, 0x00, /* media source: unused */
    0x5c, 0x8e, 0x0d, 0x6b, /* FCI: SSRC */
    0x07, 0x00, 0x00, 0x00, /* seq nr 7, reserved */
};

TEST(rtcp_pli_fir_round_trip)
{
    hk_rtcp_packet_t pkt = only_packet(pli, sizeof pli);
    hk_rtcp_fb_t fb;
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(pkt.type, HK_RTCP_PSFB);
    CHECK_INT_EQ(fb.fmt, HK_RTCP_FMT_PLI);
    CHECK_INT_EQ(fb.media_ssrc, 0x5c8e0d6b);
    CHECK_INT_EQ(fb.fci_len, 0);
    uint8_t out[32];
    CHECK_INT_EQ(hk_rtcp_build_pli(out, sizeof out, 1, 0x5c8e0d6b), 12);
    CHECK_MEM_EQ(out, pli, 12);
    CHECK_INT_EQ(hk_rtcp_build_pli(out, 11, 1, 0x5c8e0d6b), HK_ENOSPC);

    pkt = only_packet(fir, sizeof fir);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(fb.fmt, HK_RTCP_FMT_FIR);
    hk_rtcp_fir_entry_t e[2];
    CHECK_INT_EQ(hk_rtcp_parse_fir(&fb, e, 2, NULL), 1);
    CHECK_INT_EQ(e[0].ssrc, 0x5c8e0d6b);
    CHECK_INT_EQ(e[0].seq, 7);
    CHECK_INT_EQ(hk_rtcp_build_fir(out, sizeof out, 1, e[0].ssrc, e[0].seq), 20);
    CHECK_MEM_EQ(out, fir, 20);
    CHECK_INT_EQ(hk_rtcp_build_fir(out, 19, 1, 2, 3), HK_ENOSPC);
}

static const uint8_t remb[] = {
    0x8f, 0xce, 0x00, 0x05, /* FMT=15 AFB, PT=206, length 5 (24 bytes) */
    0x00, 0x00, 0x00, 0x01, /* sender */
    0x00, 0x00, 0x00, 0x00, /* media source 0 */
    'R',  'E',  'M',  'B',  /* unique identifier */
    0x01,                   /* num SSRC 1 */
    0x0b, 0xd0, 0x90,       /* exp 2, mantissa 0x3d090 = 250000: 1 Mbit/s */
    0x5c, 0x8e, 0x0d, 0x6b, /* SSRC feedback */
};

TEST(rtcp_remb_round_trip)
{
    hk_rtcp_packet_t pkt = only_packet(remb, sizeof remb);
    hk_rtcp_fb_t fb;
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(fb.fmt, HK_RTCP_FMT_AFB);
    hk_rtcp_remb_t r;
    CHECK_INT_EQ(hk_rtcp_parse_remb(&fb, &r, NULL), 0);
    CHECK_INT_EQ(r.bitrate, 1000000);
    CHECK_INT_EQ(r.ssrc_count, 1);
    CHECK_INT_EQ(r.ssrcs[0], 0x5c8e0d6b);
    uint8_t out[64];
    CHECK_INT_EQ(hk_rtcp_build_remb(out, sizeof out, 1, r.bitrate, r.ssrcs, 1), 24);
    CHECK_MEM_EQ(out, remb, 24);
    CHECK_INT_EQ(hk_rtcp_build_remb(out, 23, 1, r.bitrate, r.ssrcs, 1), HK_ENOSPC);

    /* Large bitrates lose low bits but keep the magnitude; huge exponents saturate. */
    int n = hk_rtcp_build_remb(out, sizeof out, 1, UINT64_MAX, NULL, 0);
    CHECK_INT_EQ(n, 20);
    pkt = only_packet(out, (size_t)n);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(hk_rtcp_parse_remb(&fb, &r, NULL), 0);
    CHECK(r.bitrate > UINT64_MAX - (UINT64_MAX >> 17));
    out[17] = 0xff; /* exp 63, mantissa top bits set */
    CHECK_INT_EQ(hk_rtcp_parse_remb(&fb, &r, NULL), 0);
    CHECK(r.bitrate == UINT64_MAX);
    out[12] = 'X';
    CHECK_INT_EQ(hk_rtcp_parse_remb(&fb, &r, NULL), HK_ENOENT);
}

/* Transport-wide feedback with all three chunk kinds, small, large and negative deltas,
 * and RTCP padding (as libwebrtc writes it). */
static const uint8_t twcc[] = {
    0xaf, 0xcd, 0x00, 0x10, /* V=2 P=1 FMT=15, PT=205, length 16 (68 bytes) */
    0xfa, 0x17, 0xfa, 0x17, /* sender */
    0x11, 0x22, 0x33, 0x44, /* media source */
    0x00, 0x64,             /* base seq 100 */
    0x00, 0x29,             /* status count 41 */
    0x00, 0x12, 0x34,       /* reference time 0x1234 * 64 ms */
    0x07,                   /* fb pkt count 7 */
    0xb7, 0xff,             /* 1-bit vector, seq 100..113: 11011111111111 */
    0xe4, 0x55,             /* 2-bit vector, seq 114..120: L S - S S S S */
    0x20, 0x14,             /* run length, small delta x 20: seq 121..140 */
    0x04, 0x00, 0xff,       /* deltas 100, 101, 103 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 104..113 */
    0xfe, 0x0c,                                                 /* 114: -500 (-125 ms) */
    0x08,                                                       /* 115 */
    0x04, 0x04, 0x04, 0x04,                                     /* 117..120 */
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, /* 121..130 */
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, /* 131..140 */
    0x00, 0x02,                                                 /* RTCP padding: 2 bytes */
};

TEST(rtcp_twcc_round_trip)
{
    hk_rtcp_packet_t pkt = only_packet(twcc, sizeof twcc);
    CHECK(pkt.padding);
    CHECK_INT_EQ(pkt.body_len, 62);
    hk_rtcp_fb_t fb;
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(fb.fmt, HK_RTCP_FMT_TWCC);
    hk_rtcp_twcc_t h;
    hk_rtcp_twcc_packet_t p[64];
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), 41);
    CHECK_INT_EQ(h.base_seq, 100);
    CHECK_INT_EQ(h.status_count, 41);
    CHECK_INT_EQ(h.reference_time, 0x1234);
    CHECK_INT_EQ(h.fb_count, 7);
    int64_t ref = 0x1234 * 64000LL;
    CHECK_INT_EQ(p[0].seq, 100);
    CHECK(p[0].received);
    CHECK_INT_EQ(p[0].delta, 4);
    CHECK_INT_EQ(p[0].arrival_us, ref + 1000);
    CHECK_INT_EQ(p[1].delta, 0);
    CHECK(!p[2].received);
    CHECK_INT_EQ(p[3].delta, 255);
    CHECK_INT_EQ(p[3].arrival_us, ref + 1000 + 255 * 250);
    CHECK_INT_EQ(p[14].seq, 114);
    CHECK_INT_EQ(p[14].delta, -500);
    CHECK(!p[16].received);
    CHECK_INT_EQ(p[40].seq, 140);
    CHECK_INT_EQ(p[40].delta, 1);
    int64_t sum = 4 + 0 + 255 + 10 * 4 - 500 + 8 + 4 * 4 + 20 * 1;
    CHECK_INT_EQ(p[40].arrival_us, ref + sum * 250);

    uint8_t out[128];
    CHECK_INT_EQ(hk_rtcp_build_twcc(out, sizeof out, 0xfa17fa17, 0x11223344, 7, p, 41),
                 (int)sizeof twcc);
    CHECK_MEM_EQ(out, twcc, sizeof twcc);
    CHECK_INT_EQ(hk_rtcp_build_twcc(out, sizeof twcc - 1, 0xfa17fa17, 0x11223344, 7, p, 41),
                 HK_ENOSPC);

    /* Only received packets listed: the gaps become "not received" again. */
    hk_rtcp_twcc_packet_t recv[64];
    size_t n = 0;
    for (size_t i = 0; i < 41; i++)
        if (p[i].received)
            recv[n++] = p[i];
    CHECK_INT_EQ(hk_rtcp_build_twcc(out, sizeof out, 0xfa17fa17, 0x11223344, 7, recv, n),
                 (int)sizeof twcc);
    CHECK_MEM_EQ(out, twcc, sizeof twcc);

    /* Bounded fill. */
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 3, &err), 41);
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, NULL, 0, &err), 41);
}

TEST(rtcp_twcc_build_parse_wrap_and_long_gaps)
{
    hk_rtcp_twcc_packet_t in[40];
    size_t n = 0;
    /* Starts at 65530 and wraps; a 300-packet loss; arrivals not on the 250 us grid;
     * a late arrival (negative delta) and a 5 s jump (large delta). */
    int64_t t = 5000000123LL;
    for (uint16_t s = 65530; s != 10; s++) {
        t += 1100;
        in[n++] = (hk_rtcp_twcc_packet_t){.seq = s, .received = true, .arrival_us = t};
    }
    in[n++] = (hk_rtcp_twcc_packet_t){.seq = 310, .received = true, .arrival_us = t - 20000};
    in[n++] = (hk_rtcp_twcc_packet_t){.seq = 311, .received = true, .arrival_us = t + 5000000};
    in[n++] = (hk_rtcp_twcc_packet_t){.seq = 312, .received = false};
    in[n++] = (hk_rtcp_twcc_packet_t){.seq = 313, .received = true, .arrival_us = t + 5000100};

    uint8_t buf[256];
    int len = hk_rtcp_build_twcc(buf, sizeof buf, 1, 2, 0, in, n);
    CHECK(len > 0);
    CHECK_INT_EQ(len % 4, 0);
    hk_rtcp_packet_t pkt = only_packet(buf, (size_t)len);
    hk_rtcp_fb_t fb;
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    hk_rtcp_twcc_t h;
    static hk_rtcp_twcc_packet_t out[400];
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, out, 400, NULL), 320);
    CHECK_INT_EQ(h.base_seq, 65530);
    size_t j = 0;
    for (size_t i = 0; i < 320; i++) {
        CHECK_INT_EQ(out[i].seq, (uint16_t)(65530 + i));
        if (j < n && in[j].seq == out[i].seq) {
            CHECK_INT_EQ(out[i].received, in[j].received);
            if (in[j].received) {
                int64_t diff = out[i].arrival_us - in[j].arrival_us;
                CHECK(diff >= -125 && diff <= 125);
            }
            j++;
        } else {
            CHECK(!out[i].received);
        }
    }
    CHECK_INT_EQ(j, n);

    /* A delta over 16 bits (8.2 s) cannot be encoded. */
    in[n - 1].arrival_us = t + 5000000 + 8200000;
    CHECK_INT_EQ(hk_rtcp_build_twcc(buf, sizeof buf, 1, 2, 0, in, n), HK_ERANGE);
    /* Not ascending, nothing received, empty. */
    hk_rtcp_twcc_packet_t bad[2] = {{.seq = 5, .received = true}, {.seq = 5, .received = true}};
    CHECK_INT_EQ(hk_rtcp_build_twcc(buf, sizeof buf, 1, 2, 0, bad, 2), HK_EINVAL);
    bad[0].received = bad[1].received = false;
    bad[1].seq = 6;
    CHECK_INT_EQ(hk_rtcp_build_twcc(buf, sizeof buf, 1, 2, 0, bad, 2), HK_EINVAL);
    CHECK_INT_EQ(hk_rtcp_build_twcc(buf, sizeof buf, 1, 2, 0, bad, 0), HK_EINVAL);
}

TEST(rtcp_bye_and_sdes)
{
    static const uint8_t bye[] = {
        0x82, 0xcb, 0x00, 0x03,                         /* SC=2, PT=203, length 3 */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, /* SSRCs */
        0x03, 'b',  'y',  'e',                          /* reason "bye" */
    };
    hk_rtcp_packet_t pkt = only_packet(bye, sizeof bye);
    uint32_t ssrcs[4];
    size_t n = 0;
    CHECK_INT_EQ(hk_rtcp_parse_bye(&pkt, ssrcs, 4, &n, NULL), 0);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(ssrcs[1], 2);
    uint8_t lie[sizeof bye];
    memcpy(lie, bye, sizeof lie);
    lie[12] = 16; /* reason longer than the packet */
    pkt = only_packet(lie, sizeof lie);
    CHECK_INT_EQ(hk_rtcp_parse_bye(&pkt, ssrcs, 4, &n, NULL), HK_EINVAL);
    lie[0] = 0x9f; /* 31 SSRCs */
    pkt = only_packet(lie, sizeof lie);
    CHECK_INT_EQ(hk_rtcp_parse_bye(&pkt, ssrcs, 4, &n, NULL), HK_EINVAL);

    static const uint8_t sdes_lie[] = {
        0x82, 0xca, 0x00, 0x02, /* SC=2 but one chunk */
        0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 'x', 0x00,
    };
    uint32_t first;
    pkt = only_packet(sdes_lie, sizeof sdes_lie);
    CHECK_INT_EQ(hk_rtcp_parse_sdes(&pkt, &first, NULL), HK_EINVAL);
    static const uint8_t sdes_item_lie[] = {
        0x81, 0xca, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x09, 'x', 0x00,
    };
    pkt = only_packet(sdes_item_lie, sizeof sdes_item_lie);
    CHECK_INT_EQ(hk_rtcp_parse_sdes(&pkt, &first, NULL), HK_EINVAL);
    static const uint8_t sdes_no_end[] = {
        0x81, 0xca, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 'x', 'y',
    };
    pkt = only_packet(sdes_no_end, sizeof sdes_no_end);
    CHECK_INT_EQ(hk_rtcp_parse_sdes(&pkt, &first, NULL), HK_EINVAL);
}

TEST(rtcp_refuses_truncated_and_lying_lengths)
{
    hk_rtcp_packet_t pkt;
    size_t off = 0;
    const char *err = NULL;
    /* docs/threats.md 1: zero length and < 8 bytes. */
    CHECK_INT_EQ(hk_rtcp_next(pli, 0, &off, &pkt, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_rtcp_next(pli, 7, &off, &pkt, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP compound shorter than 8 bytes");
    /* docs/threats.md 2: length*4+4 past the end. */
    CHECK_INT_EQ(hk_rtcp_next(pli, 11, &off, &pkt, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP length past the end");
    CHECK_INT_EQ(off, 0);
    /* Trailing bytes after a whole packet. */
    uint8_t two[16];
    memcpy(two, pli, 12);
    memcpy(two + 12, pli, 4);
    CHECK_INT_EQ(hk_rtcp_next(two, 14, &off, &pkt, &err), 1);
    CHECK_INT_EQ(hk_rtcp_next(two, 14, &off, &pkt, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP trailing bytes shorter than a header");
    /* Version 1. */
    uint8_t v1[12];
    memcpy(v1, pli, 12);
    v1[0] = 0x41;
    off = 0;
    CHECK_INT_EQ(hk_rtcp_next(v1, 12, &off, &pkt, &err), HK_EINVAL);
    /* Padding larger than the packet. */
    uint8_t padded[12];
    memcpy(padded, pli, 12);
    padded[0] |= 0x20;
    padded[11] = 9;
    off = 0;
    CHECK_INT_EQ(hk_rtcp_next(padded, 12, &off, &pkt, &err), HK_EINVAL);
    padded[11] = 8;
    CHECK_INT_EQ(hk_rtcp_next(padded, 12, &off, &pkt, &err), 1);
    CHECK_INT_EQ(pkt.body_len, 0);
}

TEST(rtcp_length_zero_loop_terminates)
{
    /* docs/threats.md 5: every header says length 0: three 4-byte packets, then the end. */
    static const uint8_t zeros[] = {0x80, 0xc9, 0, 0, 0x80, 0xc9, 0, 0, 0x80, 0xcd, 0, 0};
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    int packets = 0, rc;
    while ((rc = hk_rtcp_next(zeros, sizeof zeros, &off, &pkt, NULL)) == 1) {
        CHECK_INT_EQ(pkt.len, 4);
        CHECK_INT_EQ(pkt.body_len, 0);
        hk_rtcp_report_t r;
        hk_rtcp_fb_t fb;
        if (pkt.type == HK_RTCP_RR)
            CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &r, NULL), HK_EINVAL);
        else
            CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), HK_EINVAL);
        packets++;
        CHECK(packets <= 3);
    }
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(packets, 3);
}

TEST(rtcp_refuses_lying_counts)
{
    hk_rtcp_packet_t pkt;
    const char *err = NULL;
    /* docs/threats.md 3: report-block count larger than the packet. */
    uint8_t rr[sizeof rr_one_block];
    memcpy(rr, rr_one_block, sizeof rr);
    rr[0] = 0x82;
    pkt = only_packet(rr, sizeof rr);
    hk_rtcp_report_t r;
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &r, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP report block count past the end");
    uint8_t sr[28];
    memcpy(sr, sr_sdes, 28);
    sr[0] = 0x9f;
    pkt = only_packet(sr, sizeof sr);
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &r, &err), HK_EINVAL);
    sr[0] = 0x80;
    sr[3] = 0x05; /* SR shorter than its sender info */
    pkt = only_packet(sr, 24);
    CHECK_INT_EQ(hk_rtcp_parse_report(&pkt, &r, &err), HK_EINVAL);

    /* NACK FCI not a multiple of 4 / empty. */
    hk_rtcp_fb_t fb;
    static const uint8_t nack_empty[] = {0x81, 0xcd, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2};
    pkt = only_packet(nack_empty, sizeof nack_empty);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    uint16_t seqs[4];
    CHECK_INT_EQ(hk_rtcp_parse_nack(&fb, seqs, 4, &err), HK_EINVAL);
    fb.fci_len = 6;
    CHECK_INT_EQ(hk_rtcp_parse_nack(&fb, seqs, 4, &err), HK_EINVAL);

    /* REMB with 2 SSRCs claimed, 1 present. */
    uint8_t rb[sizeof remb];
    memcpy(rb, remb, sizeof rb);
    rb[16] = 2;
    pkt = only_packet(rb, sizeof rb);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    hk_rtcp_remb_t rm;
    CHECK_INT_EQ(hk_rtcp_parse_remb(&fb, &rm, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP REMB SSRC count past the end");
    fb.fci_len = 7;
    CHECK_INT_EQ(hk_rtcp_parse_remb(&fb, &rm, &err), HK_EINVAL);

    /* FIR entry cut short. */
    pkt = only_packet(fir, sizeof fir);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    hk_rtcp_fir_entry_t e;
    fb.fci_len = 4;
    CHECK_INT_EQ(hk_rtcp_parse_fir(&fb, &e, 1, &err), HK_EINVAL);
}

TEST(rtcp_twcc_refuses_lying_counts)
{
    hk_rtcp_packet_t pkt;
    hk_rtcp_fb_t fb;
    hk_rtcp_twcc_t h;
    hk_rtcp_twcc_packet_t p[64];
    const char *err = NULL;
    uint8_t b[sizeof twcc];

    /* Status count larger than the chunks cover. */
    memcpy(b, twcc, sizeof b);
    b[15] = 0xff;
    pkt = only_packet(b, sizeof b);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), HK_EINVAL);
    /* Run length of 8191 large deltas: delta bytes past the end. */
    memcpy(b, twcc, sizeof b);
    b[14] = 0x20;
    b[15] = 0x00; /* status count 8192 */
    b[24] = 0x5f;
    b[25] = 0xff; /* run length, large, 8191 */
    pkt = only_packet(b, sizeof b);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), HK_EINVAL);
    /* Reserved symbol in a 2-bit vector. */
    memcpy(b, twcc, sizeof b);
    b[22] = 0xf4;
    pkt = only_packet(b, sizeof b);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP TWCC reserved status symbol");
    /* Deltas cut short. */
    pkt = only_packet(twcc, sizeof twcc);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    fb.fci_len -= 1;
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "RTCP TWCC receive deltas past the end");
    fb.fci_len = 7;
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), HK_EINVAL);
    /* Zero-length run chunks only: no progress, yet bounded by the packet. */
    memcpy(b, twcc, sizeof b);
    for (size_t i = 20; i < 66; i++)
        b[i] = 0;
    pkt = only_packet(b, sizeof b);
    CHECK_INT_EQ(hk_rtcp_parse_fb(&pkt, &fb, NULL), 0);
    CHECK_INT_EQ(hk_rtcp_parse_twcc(&fb, &h, p, 64, &err), HK_EINVAL);
}

/* What a receiver reports: arrivals sorted from the next unreported number (across the
 * wrap), each once, with that number first reported lost when it did not arrive. */
TEST(rtcp_twcc_report_list)
{
    hk_rtcp_twcc_packet_t in[5] = {
        {3, true, 0, 300}, {65535, true, 0, 100}, {1, true, 0, 200},
        {1, true, 0, 201}, {2, true, 0, 250},
    };
    hk_rtcp_twcc_packet_t out[6];
    uint16_t next = 65534;
    size_t n = hk_rtcp_twcc_report(in, 5, &next, out);
    CHECK_INT_EQ(n, 5);
    static const uint16_t seqs[5] = {65534, 65535, 1, 2, 3};
    for (size_t i = 0; i < n; i++)
        CHECK_INT_EQ(out[i].seq, seqs[i]);
    CHECK(!out[0].received);
    CHECK(out[1].received && out[1].arrival_us == 100);
    CHECK_INT_EQ(out[2].arrival_us, 200);
    CHECK_INT_EQ(next, 4);
    /* The next one arrived: nothing reported lost; nothing arrived: nothing to report. */
    hk_rtcp_twcc_packet_t again[1] = {{4, true, 0, 400}};
    CHECK_INT_EQ(hk_rtcp_twcc_report(again, 1, &next, out), 1);
    CHECK(out[0].received);
    CHECK_INT_EQ(next, 5);
    CHECK_INT_EQ(hk_rtcp_twcc_report(again, 0, &next, out), 0);
    CHECK_INT_EQ(next, 5);
}

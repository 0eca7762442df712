#include "server/proto/demux.h"
#include "tests/unit/unit.h"

/* Classifies a datagram of `len` bytes whose first two bytes are b0, b1. */
static hk_pkt_type_t classify2(uint8_t b0, uint8_t b1, size_t len, hk_demux_drop_t *reason)
{
    static uint8_t buf[HK_DEMUX_MAX_DATAGRAM + 2];
    memset(buf, 0, sizeof buf);
    buf[0] = b0;
    if (len > 1)
        buf[1] = b1;
    return hk_demux_classify(buf, len, reason);
}

TEST(demux_first_byte_boundaries)
{
    /* RFC 7983 §7 ranges, each edge on both sides; 200 bytes fit every minimum. */
    static const struct {
        uint8_t first;
        hk_pkt_type_t type;
    } cases[] = {
        {0, HK_PKT_STUN},  {3, HK_PKT_STUN},  {4, HK_PKT_DROP},   {19, HK_PKT_DROP},
        {20, HK_PKT_DTLS}, {63, HK_PKT_DTLS}, {64, HK_PKT_DROP},  {127, HK_PKT_DROP},
        {128, HK_PKT_RTP}, {191, HK_PKT_RTP}, {192, HK_PKT_DROP}, {255, HK_PKT_DROP},
        {16, HK_PKT_DROP}, /* ZRTP */
        {79, HK_PKT_DROP}, /* TURN channel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hk_demux_drop_t reason = HK_DEMUX_DROP_COUNT;
        hk_pkt_type_t t = classify2(cases[i].first, 96, 200, &reason);
        if (t != cases[i].type)
            fprintf(stderr, "first byte %u\n", cases[i].first);
        CHECK_INT_EQ(t, cases[i].type);
        CHECK_INT_EQ(reason, t == HK_PKT_DROP ? HK_DEMUX_DROP_UNKNOWN_FIRST : HK_DEMUX_DROP_NONE);
    }
}

TEST(demux_rtp_rtcp_second_byte)
{
    /* RFC 5761 §4: second byte 192..223 is an RTCP packet type. */
    CHECK_INT_EQ(classify2(0x80, 191, 100, NULL), HK_PKT_RTP);  /* M=1, PT 63 */
    CHECK_INT_EQ(classify2(0x80, 192, 100, NULL), HK_PKT_RTCP); /* FIR (RFC 2032) */
    CHECK_INT_EQ(classify2(0x80, 200, 100, NULL), HK_PKT_RTCP); /* SR */
    CHECK_INT_EQ(classify2(0x81, 201, 100, NULL), HK_PKT_RTCP); /* RR, RC=1 */
    CHECK_INT_EQ(classify2(0x8f, 206, 100, NULL), HK_PKT_RTCP); /* PSFB, FMT 15 */
    CHECK_INT_EQ(classify2(0x80, 223, 100, NULL), HK_PKT_RTCP);
    CHECK_INT_EQ(classify2(0x80, 224, 100, NULL), HK_PKT_RTP); /* M=1, PT 96 */
    CHECK_INT_EQ(classify2(0x80, 111, 100, NULL), HK_PKT_RTP); /* Opus */
    CHECK_INT_EQ(classify2(0xbf, 0, 100, NULL), HK_PKT_RTP);   /* V=2 P X CC=15 */
}

TEST(demux_minimum_lengths)
{
    static const struct {
        uint8_t b0, b1;
        size_t min;
        hk_pkt_type_t type;
    } cases[] = {
        {0x00, 0x01, HK_DEMUX_STUN_MIN, HK_PKT_STUN}, /* Binding request */
        {0x01, 0x01, HK_DEMUX_STUN_MIN, HK_PKT_STUN}, /* Binding success */
        {22, 0xfe, HK_DEMUX_DTLS_MIN, HK_PKT_DTLS},   /* handshake, DTLS 1.2 */
        {23, 0xfe, HK_DEMUX_DTLS_MIN, HK_PKT_DTLS},   /* application data */
        {0x80, 96, HK_DEMUX_RTP_MIN, HK_PKT_RTP},     {0x80, 200, HK_DEMUX_RTCP_MIN, HK_PKT_RTCP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t len = 1; len < cases[i].min; len++) {
            hk_demux_drop_t reason = HK_DEMUX_DROP_NONE;
            CHECK_INT_EQ(classify2(cases[i].b0, cases[i].b1, len, &reason), HK_PKT_DROP);
            CHECK_INT_EQ(reason, HK_DEMUX_DROP_TOO_SHORT);
        }
        hk_demux_drop_t reason = HK_DEMUX_DROP_COUNT;
        CHECK_INT_EQ(classify2(cases[i].b0, cases[i].b1, cases[i].min, &reason), cases[i].type);
        CHECK_INT_EQ(reason, HK_DEMUX_DROP_NONE);
    }
}

TEST(demux_empty_and_too_long)
{
    hk_demux_drop_t reason = HK_DEMUX_DROP_NONE;
    CHECK_INT_EQ(hk_demux_classify(NULL, 0, &reason), HK_PKT_DROP);
    CHECK_INT_EQ(reason, HK_DEMUX_DROP_TOO_SHORT);
    uint8_t one = 0x80;
    CHECK_INT_EQ(hk_demux_classify(&one, 0, &reason), HK_PKT_DROP);
    CHECK_INT_EQ(reason, HK_DEMUX_DROP_TOO_SHORT);

    /* 1500 is the cap and passes; 1501 is dropped whatever it looks like. */
    CHECK_INT_EQ(classify2(0x80, 96, HK_DEMUX_MAX_DATAGRAM, &reason), HK_PKT_RTP);
    CHECK_INT_EQ(reason, HK_DEMUX_DROP_NONE);
    CHECK_INT_EQ(classify2(0x80, 96, HK_DEMUX_MAX_DATAGRAM + 1, &reason), HK_PKT_DROP);
    CHECK_INT_EQ(reason, HK_DEMUX_DROP_TOO_LONG);
    CHECK_INT_EQ(classify2(0x00, 0x01, HK_DEMUX_MAX_DATAGRAM + 1, &reason), HK_PKT_DROP);
    CHECK_INT_EQ(reason, HK_DEMUX_DROP_TOO_LONG);
    CHECK_INT_EQ(classify2(200, 0, HK_DEMUX_MAX_DATAGRAM + 1, &reason), HK_PKT_DROP);
    CHECK_INT_EQ(reason, HK_DEMUX_DROP_TOO_LONG);
}

TEST(demux_reason_may_be_null)
{
    CHECK_INT_EQ(classify2(0x00, 0x01, 5, NULL), HK_PKT_DROP);
    CHECK_INT_EQ(classify2(100, 0, 50, NULL), HK_PKT_DROP);
    CHECK_INT_EQ(classify2(22, 0xfe, 13, NULL), HK_PKT_DTLS);
}

TEST(demux_names)
{
    CHECK_STR_EQ(hk_demux_type_name(HK_PKT_STUN), "stun");
    CHECK_STR_EQ(hk_demux_type_name(HK_PKT_DTLS), "dtls");
    CHECK_STR_EQ(hk_demux_type_name(HK_PKT_RTP), "rtp");
    CHECK_STR_EQ(hk_demux_type_name(HK_PKT_RTCP), "rtcp");
    CHECK_STR_EQ(hk_demux_type_name(HK_PKT_DROP), "drop");
    CHECK_STR_EQ(hk_demux_drop_name(HK_DEMUX_DROP_TOO_SHORT), "too_short");
    CHECK_STR_EQ(hk_demux_drop_name(HK_DEMUX_DROP_TOO_LONG), "too_long");
    CHECK_STR_EQ(hk_demux_drop_name(HK_DEMUX_DROP_UNKNOWN_FIRST), "unknown_first_byte");
}

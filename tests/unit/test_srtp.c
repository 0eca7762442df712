/* server/srtp: protect with one session, unprotect with its mirror (keys swapped), for
 * both profiles; tampering, replay, repeated transmission, short buffers. Protected
 * packets live in malloc'ed buffers of the exact size so ASan catches any overrun. */
#include "common/error.h"
#include "server/rtc/srtp.h"
#include "tests/unit/unit.h"

/* RFC 3550 §5.1 RTP fixed header + 20 bytes of payload. */
static const uint8_t rtp_packet[] = {0x80, 0x6f,             /* V=2 P=0 X=0 CC=0 | M=0 PT=111 */
                                     0x12, 0x34,             /* sequence number 0x1234 */
                                     0x00, 0x01, 0xe2, 0x40, /* timestamp 123456 */
                                     0xde, 0xad, 0xbe, 0xef, /* SSRC 0xdeadbeef */
                                     /* payload (20 bytes) */
                                     0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                                     0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13};

/* RFC 3550 §6.4.2 receiver report with one report block (32 bytes). */
static const uint8_t rtcp_rr[] = {
    0x81, 0xc9, 0x00, 0x07, /* V=2 P=0 RC=1 | PT=201 RR | length 7 (32 bytes) */
    0x11, 0x22, 0x33, 0x44, /* SSRC of packet sender */
    0xde, 0xad, 0xbe, 0xef, /* SSRC_1 (source being reported) */
    0x00, 0x00, 0x00, 0x05, /* fraction lost 0 | cumulative lost 5 */
    0x00, 0x00, 0x12, 0x34, /* extended highest sequence number */
    0x00, 0x00, 0x00, 0x10, /* interarrival jitter */
    0x00, 0x00, 0x00, 0x00, /* LSR */
    0x00, 0x00, 0x00, 0x00, /* DLSR */
};

static hk_srtp_keys_t make_keys(hk_srtp_profile_t profile)
{
    hk_srtp_keys_t k;
    memset(&k, 0, sizeof k);
    k.profile = profile;
    k.key_len = HK_SRTP_KEY_LEN;
    k.salt_len = profile == HK_SRTP_AEAD_AES_128_GCM ? HK_SRTP_GCM_SALT_LEN : HK_SRTP_CM_SALT_LEN;
    for (size_t i = 0; i < sizeof k.local_key; i++) {
        k.local_key[i] = (uint8_t)(0x10 + i);
        k.remote_key[i] = (uint8_t)(0xa0 + i);
    }
    return k;
}

static hk_srtp_keys_t swapped(const hk_srtp_keys_t *k)
{
    hk_srtp_keys_t s = *k;
    memcpy(s.local_key, k->remote_key, sizeof s.local_key);
    memcpy(s.remote_key, k->local_key, sizeof s.remote_key);
    return s;
}

/* A pair of sessions: a sends to b. */
typedef struct {
    hk_srtp_t *a;
    hk_srtp_t *b;
} pair_t;

static pair_t make_pair(hk_srtp_profile_t profile)
{
    CHECK_INT_EQ(hk_srtp_global_init(), 0);
    hk_srtp_keys_t k = make_keys(profile);
    hk_srtp_keys_t s = swapped(&k);
    pair_t p = {hk_srtp_create(&k), hk_srtp_create(&s)};
    CHECK(p.a && p.b);
    hk_srtp_keys_wipe(&k);
    hk_srtp_keys_wipe(&s);
    for (size_t i = 0; i < sizeof k; i++)
        CHECK(((uint8_t *)&k)[i] == 0);
    return p;
}

static void free_pair(pair_t *p)
{
    hk_srtp_destroy(p->a);
    hk_srtp_destroy(p->b);
    hk_srtp_global_shutdown();
}

/* Copies src into a new buffer of exactly len + extra bytes. */
static uint8_t *dup_with_room(const uint8_t *src, size_t len, size_t extra)
{
    uint8_t *buf = malloc(len + extra);
    CHECK(buf);
    memcpy(buf, src, len);
    return buf;
}

static void roundtrip(hk_srtp_profile_t profile, size_t tag_len)
{
    pair_t p = make_pair(profile);
    CHECK_INT_EQ(hk_srtp_rtp_overhead(p.a), tag_len);
    CHECK_INT_EQ(hk_srtp_rtcp_overhead(p.a), tag_len + 4);
    CHECK(hk_srtp_rtp_overhead(p.a) <= HK_SRTP_MAX_TRAILER);
    CHECK(hk_srtp_rtcp_overhead(p.a) <= HK_SRTP_MAX_TRAILER);

    /* RTP: header stays readable, payload is encrypted, tag appended. */
    size_t len = sizeof rtp_packet;
    uint8_t *buf = dup_with_room(rtp_packet, len, tag_len);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof rtp_packet + tag_len), 0);
    CHECK_INT_EQ(len, sizeof rtp_packet + tag_len);
    CHECK_MEM_EQ(buf, rtp_packet, 12);
    CHECK(memcmp(buf + 12, rtp_packet + 12, sizeof rtp_packet - 12) != 0);
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), 0);
    CHECK_INT_EQ(len, sizeof rtp_packet);
    CHECK_MEM_EQ(buf, rtp_packet, sizeof rtp_packet);
    free(buf);

    /* RTCP: first 8 bytes stay, E|index and tag appended. */
    len = sizeof rtcp_rr;
    buf = dup_with_room(rtcp_rr, len, tag_len + 4);
    CHECK_INT_EQ(hk_srtp_protect_rtcp(p.a, buf, &len, sizeof rtcp_rr + tag_len + 4), 0);
    CHECK_INT_EQ(len, sizeof rtcp_rr + tag_len + 4);
    CHECK_MEM_EQ(buf, rtcp_rr, 8);
    CHECK(memcmp(buf + 8, rtcp_rr + 8, sizeof rtcp_rr - 8) != 0);
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(p.b, buf, &len), 0);
    CHECK_INT_EQ(len, sizeof rtcp_rr);
    CHECK_MEM_EQ(buf, rtcp_rr, sizeof rtcp_rr);
    free(buf);

    /* The other direction uses the other key. */
    len = sizeof rtp_packet;
    buf = dup_with_room(rtp_packet, len, tag_len);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.b, buf, &len, sizeof rtp_packet + tag_len), 0);
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.a, buf, &len), 0);
    CHECK_MEM_EQ(buf, rtp_packet, sizeof rtp_packet);
    free(buf);

    free_pair(&p);
}

TEST(srtp_roundtrip_aes_cm_sha1_80)
{
    roundtrip(HK_SRTP_AES128_CM_SHA1_80, 10);
}

TEST(srtp_roundtrip_aead_aes_128_gcm)
{
    roundtrip(HK_SRTP_AEAD_AES_128_GCM, 16);
}

static void auth_failure(hk_srtp_profile_t profile)
{
    pair_t p = make_pair(profile);
    uint8_t buf[sizeof rtp_packet + HK_SRTP_MAX_TRAILER];
    size_t len = sizeof rtp_packet;
    memcpy(buf, rtp_packet, len);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), 0);
    buf[20] ^= 0x01; /* one payload bit */
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), HK_SRTP_EAUTH);

    /* A tampered header (sequence number) fails too. */
    len = sizeof rtp_packet;
    memcpy(buf, rtp_packet, len);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), 0);
    buf[3] ^= 0x80;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), HK_SRTP_EAUTH);

    /* A packet from someone with the wrong key (a's own inbound key) fails. */
    len = sizeof rtp_packet;
    memcpy(buf, rtp_packet, len);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), 0);
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.a, buf, &len), HK_SRTP_EAUTH);

    uint8_t rtcp[sizeof rtcp_rr + HK_SRTP_MAX_TRAILER];
    len = sizeof rtcp_rr;
    memcpy(rtcp, rtcp_rr, len);
    CHECK_INT_EQ(hk_srtp_protect_rtcp(p.a, rtcp, &len, sizeof rtcp), 0);
    rtcp[len - 1] ^= 0x40; /* last tag byte */
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(p.b, rtcp, &len), HK_SRTP_EAUTH);
    free_pair(&p);
}

TEST(srtp_auth_failure_cm)
{
    auth_failure(HK_SRTP_AES128_CM_SHA1_80);
}

TEST(srtp_auth_failure_gcm)
{
    auth_failure(HK_SRTP_AEAD_AES_128_GCM);
}

static void replay(hk_srtp_profile_t profile)
{
    pair_t p = make_pair(profile);
    uint8_t protected_rtp[sizeof rtp_packet + HK_SRTP_MAX_TRAILER], buf[sizeof protected_rtp];
    size_t plen = sizeof rtp_packet, len;
    memcpy(protected_rtp, rtp_packet, plen);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, protected_rtp, &plen, sizeof protected_rtp), 0);

    memcpy(buf, protected_rtp, plen);
    len = plen;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), 0);
    memcpy(buf, protected_rtp, plen);
    len = plen;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), HK_SRTP_EREPLAY);

    uint8_t protected_rtcp[sizeof rtcp_rr + HK_SRTP_MAX_TRAILER];
    plen = sizeof rtcp_rr;
    memcpy(protected_rtcp, rtcp_rr, plen);
    CHECK_INT_EQ(hk_srtp_protect_rtcp(p.a, protected_rtcp, &plen, sizeof protected_rtcp), 0);
    memcpy(buf, protected_rtcp, plen);
    len = plen;
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(p.b, buf, &len), 0);
    memcpy(buf, protected_rtcp, plen);
    len = plen;
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(p.b, buf, &len), HK_SRTP_EREPLAY);
    free_pair(&p);
}

TEST(srtp_replay_cm)
{
    replay(HK_SRTP_AES128_CM_SHA1_80);
}

TEST(srtp_replay_gcm)
{
    replay(HK_SRTP_AEAD_AES_128_GCM);
}

/* Old packets beyond the replay window (1024) are refused; reordering within it is fine. */
TEST(srtp_replay_window)
{
    pair_t p = make_pair(HK_SRTP_AEAD_AES_128_GCM);
    uint8_t first[sizeof rtp_packet + HK_SRTP_MAX_TRAILER];
    uint8_t buf[sizeof first];
    size_t first_len = sizeof rtp_packet;
    memcpy(first, rtp_packet, first_len);
    first[2] = 0x00, first[3] = 0x10; /* seq 16 */
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, first, &first_len, sizeof first), 0);

    /* seq 17..(16 + 1100) delivered; then seq 16 arrives 1100 packets late. */
    for (unsigned seq = 17; seq <= 16 + 1100; seq++) {
        size_t len = sizeof rtp_packet;
        memcpy(buf, rtp_packet, len);
        buf[2] = (uint8_t)(seq >> 8), buf[3] = (uint8_t)seq;
        CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), 0);
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), 0);
    }
    size_t len = first_len;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, first, &len), HK_SRTP_EREPLAY);

    /* seq 1117..1120 with 1118 delivered last (reordering within the window). */
    uint8_t late[sizeof buf];
    size_t late_len = 0;
    for (unsigned seq = 1117; seq <= 1120; seq++) {
        len = sizeof rtp_packet;
        memcpy(buf, rtp_packet, len);
        buf[2] = (uint8_t)(seq >> 8), buf[3] = (uint8_t)seq;
        CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), 0);
        if (seq == 1118) {
            memcpy(late, buf, len);
            late_len = len;
            continue;
        }
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), 0);
    }
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, late, &late_len), 0);
    CHECK_MEM_EQ(late + 12, rtp_packet + 12, sizeof rtp_packet - 12);
    free_pair(&p);
}

/* allow_repeat_tx: a NACKed packet is protected again with the same (SSRC, seq). */
TEST(srtp_repeat_tx)
{
    hk_srtp_profile_t profiles[] = {HK_SRTP_AES128_CM_SHA1_80, HK_SRTP_AEAD_AES_128_GCM};
    for (size_t i = 0; i < 2; i++) {
        pair_t p = make_pair(profiles[i]);
        uint8_t one[sizeof rtp_packet + HK_SRTP_MAX_TRAILER], two[sizeof one];
        size_t one_len = sizeof rtp_packet, two_len = sizeof rtp_packet;
        memcpy(one, rtp_packet, one_len);
        memcpy(two, rtp_packet, two_len);
        CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, one, &one_len, sizeof one), 0);
        CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, two, &two_len, sizeof two), 0);
        CHECK_INT_EQ(one_len, two_len);
        CHECK_MEM_EQ(one, two, one_len);
        /* The receiver takes the first copy; the second is then a replay. */
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, one, &one_len), 0);
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, two, &two_len), HK_SRTP_EREPLAY);
        free_pair(&p);
    }
}

TEST(srtp_cap_too_small)
{
    pair_t p = make_pair(HK_SRTP_AEAD_AES_128_GCM);
    uint8_t buf[sizeof rtcp_rr + HK_SRTP_MAX_TRAILER + 8];

    /* RTP needs 16 more bytes: cap = len + 15 is refused and nothing is written. */
    memset(buf, 0xcc, sizeof buf);
    memcpy(buf, rtp_packet, sizeof rtp_packet);
    size_t len = sizeof rtp_packet;
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof rtp_packet + 15), HK_ENOSPC);
    CHECK_INT_EQ(len, sizeof rtp_packet);
    CHECK_MEM_EQ(buf, rtp_packet, sizeof rtp_packet);
    for (size_t i = sizeof rtp_packet; i < sizeof buf; i++)
        CHECK(buf[i] == 0xcc);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof rtp_packet - 1), HK_ENOSPC);
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof rtp_packet + 16), 0);
    CHECK_INT_EQ(len, sizeof rtp_packet + 16);

    /* RTCP needs 20 more. */
    memset(buf, 0xcc, sizeof buf);
    memcpy(buf, rtcp_rr, sizeof rtcp_rr);
    len = sizeof rtcp_rr;
    CHECK_INT_EQ(hk_srtp_protect_rtcp(p.a, buf, &len, sizeof rtcp_rr + 19), HK_ENOSPC);
    CHECK_INT_EQ(len, sizeof rtcp_rr);
    CHECK_MEM_EQ(buf, rtcp_rr, sizeof rtcp_rr);
    for (size_t i = sizeof rtcp_rr; i < sizeof buf; i++)
        CHECK(buf[i] == 0xcc);
    CHECK_INT_EQ(hk_srtp_protect_rtcp(p.a, buf, &len, sizeof rtcp_rr + 20), 0);
    CHECK_INT_EQ(len, sizeof rtcp_rr + 20);
    free_pair(&p);
}

TEST(srtp_malformed_input)
{
    pair_t p = make_pair(HK_SRTP_AES128_CM_SHA1_80);
    uint8_t buf[64];
    size_t len;

    /* Shorter than a header plus tag. */
    memcpy(buf, rtp_packet, sizeof rtp_packet);
    len = 21;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), HK_EINVAL);
    len = 0;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), HK_EINVAL);
    len = 11;
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), HK_EINVAL);
    len = 21;
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(p.b, buf, &len), HK_EINVAL);
    len = 7;
    CHECK_INT_EQ(hk_srtp_protect_rtcp(p.a, buf, &len, sizeof buf), HK_EINVAL);

    /* Not version 2. */
    buf[0] = 0x40;
    len = sizeof rtp_packet;
    CHECK_INT_EQ(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf), HK_EINVAL);
    len = 40;
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(p.b, buf, &len), HK_EINVAL);

    /* A header that claims 15 CSRCs (60 bytes) in a 32-byte packet. */
    memcpy(buf, rtp_packet, sizeof rtp_packet);
    buf[0] = 0x8f;
    len = sizeof rtp_packet;
    CHECK(hk_srtp_protect_rtp(p.a, buf, &len, sizeof buf) < 0);
    len = 32;
    CHECK(hk_srtp_unprotect_rtp(p.b, buf, &len) < 0);

    /* A header extension whose length runs past the end. */
    memcpy(buf, rtp_packet, sizeof rtp_packet);
    buf[0] = 0x90;
    buf[12] = 0xbe, buf[13] = 0xde, buf[14] = 0x00, buf[15] = 0xff; /* 255 words */
    len = 32;
    CHECK(hk_srtp_unprotect_rtp(p.b, buf, &len) < 0);
    free_pair(&p);
}

TEST(srtp_create_refuses_bad_keys)
{
    CHECK_INT_EQ(hk_srtp_global_init(), 0);
    hk_srtp_keys_t k = make_keys(HK_SRTP_AEAD_AES_128_GCM);
    k.salt_len = 14; /* GCM wants 12 */
    CHECK(hk_srtp_create(&k) == NULL);
    k = make_keys(HK_SRTP_AES128_CM_SHA1_80);
    k.key_len = 32;
    CHECK(hk_srtp_create(&k) == NULL);
    k = make_keys(HK_SRTP_AES128_CM_SHA1_80);
    k.profile = (hk_srtp_profile_t)7;
    CHECK(hk_srtp_create(&k) == NULL);
    hk_srtp_global_shutdown();
}

/* server/srtp_gcm: libsrtp2's self-test of the OpenSSL AES-128-GCM cipher, and
 * byte-for-byte agreement with libsrtp2's own (NSS) AES-GCM on SRTP and SRTCP: sessions
 * created before the replacement keep NSS, so both live in one process. */
#include <srtp2/srtp.h>

#include "common/error.h"
#include "server/rtc/srtp.h"
#include "server/rtc/srtp_gcm.h"
#include "tests/unit/unit.h"

TEST(srtp_gcm_passes_libsrtp_self_test)
{
    CHECK(srtp_init() == srtp_err_status_ok);
    CHECK(srtp_cipher_type_self_test(&hk_srtp_gcm_128) == srtp_err_status_ok);
    srtp_cipher_t *c = NULL;
    CHECK(srtp_cipher_type_alloc(&hk_srtp_gcm_128, &c, 30, 16) == srtp_err_status_bad_param);
    CHECK(srtp_cipher_type_alloc(&hk_srtp_gcm_128, &c, SRTP_AES_GCM_128_KEY_LEN_WSALT, 12) ==
          srtp_err_status_bad_param);
    CHECK_INT_EQ(hk_srtp_gcm_register(), 0);
    srtp_shutdown();
}

static hk_srtp_keys_t gcm_keys(int swap)
{
    hk_srtp_keys_t k;
    memset(&k, 0, sizeof k);
    k.profile = HK_SRTP_AEAD_AES_128_GCM;
    k.key_len = HK_SRTP_KEY_LEN;
    k.salt_len = HK_SRTP_GCM_SALT_LEN;
    for (size_t i = 0; i < sizeof k.local_key; i++) {
        k.local_key[i] = (uint8_t)((swap ? 0xa0 : 0x10) + i * 3);
        k.remote_key[i] = (uint8_t)((swap ? 0x10 : 0xa0) + i * 3);
    }
    return k;
}

typedef struct {
    hk_srtp_t *tx, *rx; /* tx sends to rx */
} pair_t;

static pair_t make_pair(void)
{
    hk_srtp_keys_t k = gcm_keys(0), s = gcm_keys(1);
    pair_t p = {hk_srtp_create(&k), hk_srtp_create(&s)};
    CHECK(p.tx && p.rx);
    return p;
}

/* An RTP packet with a header extension (part of the AAD) and `payload` bytes. */
static size_t rtp(uint8_t *b, uint16_t seq, size_t payload)
{
    static const uint8_t hdr[] = {0x90, 0x60, 0,    0,    0,    0,    0x30, 0x39, 0x11, 0x22,
                                  0x33, 0x44, 0xbe, 0xde, 0x00, 0x01, 0x10, 0x31, 0x00, 0x00};
    memcpy(b, hdr, sizeof hdr);
    b[2] = (uint8_t)(seq >> 8);
    b[3] = (uint8_t)seq;
    for (size_t i = 0; i < payload; i++)
        b[sizeof hdr + i] = (uint8_t)(seq + i * 7);
    return sizeof hdr + payload;
}

static size_t rtcp_rr(uint8_t *b)
{
    static const uint8_t rr[] = {0x81, 0xc9, 0x00, 0x07, 0x11, 0x22, 0x33, 0x44, 0xde, 0xad, 0xbe,
                                 0xef, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00,
                                 0x00, 0x10, 0,    0,    0,    0,    0,    0,    0,    0};
    memcpy(b, rr, sizeof rr);
    return sizeof rr;
}

TEST(srtp_gcm_matches_libsrtp_nss_both_ways)
{
    CHECK(srtp_init() == srtp_err_status_ok); /* libsrtp2's own AES-GCM (NSS) */
    pair_t nss = make_pair();
    CHECK_INT_EQ(hk_srtp_gcm_register(), 0);
    pair_t ossl = make_pair();
    uint8_t a[1600], b[1600], plain[1600];
    const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1200};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint16_t seq = (uint16_t)(1000 + i);
        size_t n = rtp(plain, seq, sizes[i]), la = n, lb = n;
        memcpy(a, plain, n);
        memcpy(b, plain, n);
        CHECK_INT_EQ(hk_srtp_protect_rtp(nss.tx, a, &la, sizeof a), 0);
        CHECK_INT_EQ(hk_srtp_protect_rtp(ossl.tx, b, &lb, sizeof b), 0);
        CHECK_INT_EQ(la, n + 16);
        CHECK_INT_EQ(lb, la);
        CHECK_MEM_EQ(a, b, la); /* same key, same IV: the same ciphertext and tag */
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(ossl.rx, a, &la), 0); /* NSS -> OpenSSL */
        CHECK_INT_EQ(la, n);
        CHECK_MEM_EQ(a, plain, n);
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(nss.rx, b, &lb), 0); /* OpenSSL -> NSS */
        CHECK_MEM_EQ(b, plain, n);
    }
    /* A flipped bit in the payload, the header (AAD) or the tag fails authentication. */
    const size_t flips[] = {25, 3, 12 + 8 + 100 + 15};
    for (size_t i = 0; i < 3; i++) {
        size_t n = rtp(plain, (uint16_t)(2000 + i), 100), l = n;
        memcpy(a, plain, n);
        CHECK_INT_EQ(hk_srtp_protect_rtp(nss.tx, a, &l, sizeof a), 0);
        a[flips[i]] ^= 0x01;
        CHECK_INT_EQ(hk_srtp_unprotect_rtp(ossl.rx, a, &l), HK_SRTP_EAUTH);
    }
    /* SRTCP */
    size_t n = rtcp_rr(plain), la = n, lb = n;
    memcpy(a, plain, n);
    memcpy(b, plain, n);
    CHECK_INT_EQ(hk_srtp_protect_rtcp(nss.tx, a, &la, sizeof a), 0);
    CHECK_INT_EQ(hk_srtp_protect_rtcp(ossl.tx, b, &lb, sizeof b), 0);
    CHECK_INT_EQ(lb, la);
    CHECK_MEM_EQ(a, b, la);
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(ossl.rx, a, &la), 0);
    CHECK_INT_EQ(la, n);
    CHECK_MEM_EQ(a, plain, n);
    CHECK_INT_EQ(hk_srtp_unprotect_rtcp(nss.rx, b, &lb), 0);
    CHECK_MEM_EQ(b, plain, n);
    hk_srtp_destroy(nss.tx);
    hk_srtp_destroy(nss.rx);
    hk_srtp_destroy(ossl.tx);
    hk_srtp_destroy(ossl.rx);
    srtp_shutdown();
}

/* The replacement takes effect for sessions created after it: a wrapper type that
 * counts allocations and hands them to hk_srtp_gcm_128 sees hisoka's sessions. */
static int wrapped_allocs;

static srtp_err_status_t counting_alloc(srtp_cipher_pointer_t *cp, int key_len, int tag_len)
{
    wrapped_allocs++;
    return hk_srtp_gcm_128.alloc(cp, key_len, tag_len);
}

TEST(srtp_gcm_replacement_is_used_by_new_sessions)
{
    CHECK_INT_EQ(hk_srtp_global_init(), 0);
    srtp_cipher_type_t counting = hk_srtp_gcm_128;
    counting.alloc = counting_alloc;
    CHECK(srtp_replace_cipher_type(&counting, SRTP_AES_GCM_128) == srtp_err_status_ok);
    int after_self_test = wrapped_allocs;
    pair_t p = make_pair();
    /* two directions x (RTP + RTCP) x two peers */
    CHECK_INT_EQ(wrapped_allocs - after_self_test, 8);
    hk_srtp_destroy(p.tx);
    hk_srtp_destroy(p.rx);
    srtp_shutdown();
}

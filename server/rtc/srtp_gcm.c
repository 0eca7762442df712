#include "server/rtc/srtp_gcm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <srtp2/srtp.h>
#include <stdlib.h>

#include "common/error.h"

#define GCM_KEY_LEN 16 /* AES-128; libsrtp2 passes key || 12-byte salt, the salt unused */
#define GCM_IV_LEN  12 /* RFC 7714 §8.1 */

typedef struct {
    EVP_CIPHER_CTX *ctx;
    int tag_len;   /* 16 (or 8, which libsrtp2 also defines) */
    int direction; /* srtp_direction_t of the current packet, -1 before set_iv */
} gcm_state_t;

/* The cipher object and its state in one allocation (per session, never per packet). */
typedef struct {
    srtp_cipher_t cipher;
    gcm_state_t state;
} gcm_alloc_t;

static srtp_err_status_t gcm_alloc(srtp_cipher_pointer_t *cp, int key_len, int tag_len)
{
    if (key_len != SRTP_AES_GCM_128_KEY_LEN_WSALT || (tag_len != 16 && tag_len != 8))
        return srtp_err_status_bad_param;
    gcm_alloc_t *a = calloc(1, sizeof *a);
    if (!a)
        return srtp_err_status_alloc_fail;
    a->state.ctx = EVP_CIPHER_CTX_new();
    if (!a->state.ctx) {
        free(a);
        return srtp_err_status_alloc_fail;
    }
    a->state.tag_len = tag_len;
    a->state.direction = -1;
    a->cipher.type = &hk_srtp_gcm_128;
    a->cipher.state = &a->state;
    a->cipher.key_len = key_len;
    a->cipher.algorithm = SRTP_AES_GCM_128;
    *cp = &a->cipher;
    return srtp_err_status_ok;
}

static srtp_err_status_t gcm_dealloc(srtp_cipher_pointer_t c)
{
    gcm_alloc_t *a = (gcm_alloc_t *)c;
    EVP_CIPHER_CTX_free(a->state.ctx); /* wipes the key schedule */
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
    return srtp_err_status_ok;
}

/* Expands the key once; every packet then only sets its IV. */
static srtp_err_status_t gcm_init(void *sv, const uint8_t *key)
{
    gcm_state_t *s = sv;
    s->direction = -1;
    if (EVP_CipherInit_ex(s->ctx, EVP_aes_128_gcm(), NULL, key, NULL, 1) != 1)
        return srtp_err_status_init_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t gcm_set_iv(void *sv, uint8_t *iv, srtp_cipher_direction_t direction)
{
    gcm_state_t *s = sv;
    if (direction != srtp_direction_encrypt && direction != srtp_direction_decrypt)
        return srtp_err_status_bad_param;
    if (EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, iv, direction == srtp_direction_encrypt) != 1)
        return srtp_err_status_init_fail;
    s->direction = (int)direction;
    return srtp_err_status_ok;
}

static srtp_err_status_t gcm_set_aad(void *sv, const uint8_t *aad, uint32_t aad_len)
{
    gcm_state_t *s = sv;
    int out;
    if (s->direction < 0 || aad_len > INT32_MAX)
        return srtp_err_status_bad_param;
    if (EVP_CipherUpdate(s->ctx, NULL, &out, aad, (int)aad_len) != 1)
        return srtp_err_status_algo_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t gcm_encrypt(void *sv, uint8_t *buf, unsigned int *len)
{
    gcm_state_t *s = sv;
    int out;
    if (s->direction != srtp_direction_encrypt || *len > INT32_MAX)
        return srtp_err_status_bad_param;
    if (EVP_CipherUpdate(s->ctx, buf, &out, buf, (int)*len) != 1)
        return srtp_err_status_algo_fail;
    return srtp_err_status_ok;
}

/* Writes the tag of the packet just encrypted (the caller leaves room for it). */
static srtp_err_status_t gcm_get_tag(void *sv, uint8_t *tag, uint32_t *len)
{
    gcm_state_t *s = sv;
    uint8_t none[16];
    int out;
    if (s->direction != srtp_direction_encrypt)
        return srtp_err_status_bad_param;
    if (EVP_CipherFinal_ex(s->ctx, none, &out) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, s->tag_len, tag) != 1)
        return srtp_err_status_algo_fail;
    *len = (uint32_t)s->tag_len;
    return srtp_err_status_ok;
}

/* *len covers the ciphertext and its tag; on success it is cut to the plaintext. */
static srtp_err_status_t gcm_decrypt(void *sv, uint8_t *buf, unsigned int *len)
{
    gcm_state_t *s = sv;
    uint8_t none[16];
    int out;
    if (s->direction != srtp_direction_decrypt || *len < (unsigned)s->tag_len || *len > INT32_MAX)
        return srtp_err_status_bad_param;
    int body = (int)*len - s->tag_len;
    if (EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG, s->tag_len, buf + body) != 1 ||
        EVP_CipherUpdate(s->ctx, buf, &out, buf, body) != 1)
        return srtp_err_status_algo_fail;
    if (EVP_CipherFinal_ex(s->ctx, none, &out) != 1)
        return srtp_err_status_auth_fail;
    *len = (unsigned)body;
    return srtp_err_status_ok;
}

/* The GCM specification's test case 4 (McGrew & Viega, "The Galois/Counter Mode of
 * Operation", appendix B): 60-byte plaintext, 20-byte AAD, 96-bit IV. libsrtp2's
 * self-test encrypts and decrypts it; the key is followed by 12 unused salt bytes. */
static const uint8_t tc4_key[SRTP_AES_GCM_128_KEY_LEN_WSALT] = {
    0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30,
    0x83, 0x08, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b};
static uint8_t tc4_iv[GCM_IV_LEN] = {0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce,
                                     0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};
static const uint8_t tc4_plain[60] = {
    0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26,
    0x9a, 0x86, 0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31,
    0x8a, 0x72, 0x1c, 0x3c, 0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49,
    0xa6, 0xb5, 0x25, 0xb1, 0x6a, 0xed, 0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39};
static const uint8_t tc4_aad[20] = {0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed,
                                    0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xab, 0xad, 0xda, 0xd2};
static const uint8_t tc4_cipher_tag[60 + 16] = {
    0x42, 0x83, 0x1e, 0xc2, 0x21, 0x77, 0x74, 0x24, 0x4b, 0x72, 0x21, 0xb7, 0x84, 0xd0, 0xd4, 0x9c,
    0xe3, 0xaa, 0x21, 0x2f, 0x2c, 0x02, 0xa4, 0xe0, 0x35, 0xc1, 0x7e, 0x23, 0x29, 0xac, 0xa1, 0x2e,
    0x21, 0xd5, 0x14, 0xb2, 0x54, 0x66, 0x93, 0x1c, 0x7d, 0x8f, 0x6a, 0x5a, 0xac, 0x84, 0xaa, 0x05,
    0x1b, 0xa3, 0x0b, 0x39, 0x6a, 0x0a, 0xac, 0x97, 0x3d, 0x58, 0xe0, 0x91,
    /* tag */
    0x5b, 0xc9, 0x4f, 0xbc, 0x32, 0x21, 0xa5, 0xdb, 0x94, 0xfa, 0xe9, 0x5a, 0xe7, 0x12, 0x1a, 0x47};

static const srtp_cipher_test_case_t tc4 = {
    .key_length_octets = SRTP_AES_GCM_128_KEY_LEN_WSALT,
    .key = tc4_key,
    .idx = tc4_iv,
    .plaintext_length_octets = sizeof tc4_plain,
    .plaintext = tc4_plain,
    .ciphertext_length_octets = sizeof tc4_cipher_tag,
    .ciphertext = tc4_cipher_tag,
    .aad_length_octets = sizeof tc4_aad,
    .aad = tc4_aad,
    .tag_length_octets = 16,
    .next_test_case = NULL,
};

const srtp_cipher_type_t hk_srtp_gcm_128 = {
    .alloc = gcm_alloc,
    .dealloc = gcm_dealloc,
    .init = gcm_init,
    .set_aad = gcm_set_aad,
    .encrypt = gcm_encrypt,
    .decrypt = gcm_decrypt,
    .set_iv = gcm_set_iv,
    .get_tag = gcm_get_tag,
    .description = "AES-128-GCM (hisoka, OpenSSL EVP)",
    .test_data = &tc4,
    .id = SRTP_AES_GCM_128,
};

int hk_srtp_gcm_register(void)
{
    return srtp_replace_cipher_type(&hk_srtp_gcm_128, SRTP_AES_GCM_128) == srtp_err_status_ok
               ? 0
               : HK_EIO;
}

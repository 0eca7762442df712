/* Shared helpers of the load generator and the raw relay: synthetic E2EE frames, the raw
 * relay's fixed keys, percentiles. See load.h for the formats. */
#include "tests/load/load.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/bytes.h"

static const uint8_t frame_salt[12] = {0x5a, 0x11, 0xc3, 0x07, 0x9e, 0x42,
                                       0x6b, 0xd0, 0x38, 0xa4, 0x1f, 0x77};

uint64_t hk_load_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The frame key of publisher kid: a fixed pattern with the kid mixed in. */
static void frame_key(uint32_t kid, uint8_t key[16])
{
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(0xa5 ^ (i * 29));
    hk_wr32(key, hk_rd32(key) ^ kid);
    hk_wr32(key + 8, hk_rd32(key + 8) ^ (kid * 2654435761u));
}

static void frame_nonce(uint32_t ctr, uint8_t nonce[12])
{
    memcpy(nonce, frame_salt, 12);
    hk_wr32(nonce + 8, hk_rd32(nonce + 8) ^ ctr);
}

static uint8_t filler(uint32_t ctr, size_t i)
{
    return (uint8_t)(ctr * 31u + i * 7u + (i >> 8));
}

int hk_load_frame_encrypt(uint32_t kid, uint32_t ctr, uint64_t send_us, uint8_t *out,
                          size_t frame_len)
{
    if (frame_len < HK_LOAD_SFRAME_HDR + HK_LOAD_PLAIN_HDR + HK_LOAD_TAG ||
        frame_len > HK_LOAD_MAX_FRAME)
        return -1;
    size_t plain_len = frame_len - HK_LOAD_SFRAME_HDR - HK_LOAD_TAG;
    uint8_t *hdr = out;
    hdr[0] = 0xBB;
    hk_wr32(hdr + 1, kid);
    hk_wr32(hdr + 5, ctr);
    uint8_t *plain = out + HK_LOAD_SFRAME_HDR;
    memcpy(plain, "HKLD", 4);
    hk_wr32(plain + 4, kid);
    hk_wr32(plain + 8, ctr);
    hk_wr32(plain + 12, (uint32_t)(send_us >> 32));
    hk_wr32(plain + 16, (uint32_t)send_us);
    hk_wr32(plain + 20, (uint32_t)plain_len);
    for (size_t i = HK_LOAD_PLAIN_HDR; i < plain_len; i++)
        plain[i] = filler(ctr, i);

    uint8_t key[16], nonce[12];
    frame_key(kid, key);
    frame_nonce(ctr, nonce);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) == 1;
    int n = 0;
    ok = ok && EVP_EncryptUpdate(c, NULL, &n, hdr, HK_LOAD_SFRAME_HDR) == 1;
    ok = ok && EVP_EncryptUpdate(c, plain, &n, plain, (int)plain_len) == 1;
    ok = ok && EVP_EncryptFinal_ex(c, plain + n, &n) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, HK_LOAD_TAG, plain + plain_len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? (int)frame_len : -1;
}

int hk_load_frame_verify(const uint8_t *frame, size_t len, uint64_t *send_us)
{
    if (len < HK_LOAD_SFRAME_HDR + HK_LOAD_PLAIN_HDR + HK_LOAD_TAG || len > HK_LOAD_MAX_FRAME ||
        frame[0] != 0xBB)
        return -1;
    uint32_t kid = hk_rd32(frame + 1), ctr = hk_rd32(frame + 5);
    size_t plain_len = len - HK_LOAD_SFRAME_HDR - HK_LOAD_TAG;
    uint8_t *plain = malloc(plain_len);
    if (!plain)
        return -1;
    uint8_t key[16], nonce[12];
    frame_key(kid, key);
    frame_nonce(ctr, nonce);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c && EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) == 1;
    int n = 0;
    ok = ok && EVP_DecryptUpdate(c, NULL, &n, frame, HK_LOAD_SFRAME_HDR) == 1;
    ok = ok && EVP_DecryptUpdate(c, plain, &n, frame + HK_LOAD_SFRAME_HDR, (int)plain_len) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, HK_LOAD_TAG,
                                   (void *)(frame + HK_LOAD_SFRAME_HDR + plain_len)) == 1;
    ok = ok && EVP_DecryptFinal_ex(c, plain + n, &n) == 1;
    EVP_CIPHER_CTX_free(c);
    ok = ok && memcmp(plain, "HKLD", 4) == 0 && hk_rd32(plain + 4) == kid &&
         hk_rd32(plain + 8) == ctr && hk_rd32(plain + 20) == plain_len;
    for (size_t i = HK_LOAD_PLAIN_HDR; ok && i < plain_len; i++)
        ok = plain[i] == filler(ctr, i);
    if (ok)
        *send_us = (uint64_t)hk_rd32(plain + 12) << 32 | hk_rd32(plain + 16);
    free(plain);
    return ok ? 0 : -1;
}

void hk_load_raw_keys(uint32_t peer_id, bool relay_side, hk_srtp_keys_t *out)
{
    memset(out, 0, sizeof *out);
    out->profile = HK_SRTP_AEAD_AES_128_GCM;
    out->key_len = HK_SRTP_KEY_LEN;
    out->salt_len = HK_SRTP_GCM_SALT_LEN;
    uint8_t up[HK_SRTP_KEY_LEN + HK_SRTP_GCM_SALT_LEN], down[sizeof up];
    for (size_t i = 0; i < sizeof up; i++) {
        up[i] = (uint8_t)(0x3c + i * 13 + peer_id * 7 + (peer_id >> 8));
        down[i] = (uint8_t)(0xc3 + i * 11 + peer_id * 5 + (peer_id >> 8));
    }
    /* up: generator -> relay, down: relay -> generator. */
    memcpy(out->local_key, relay_side ? down : up, sizeof up);
    memcpy(out->remote_key, relay_side ? up : down, sizeof up);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void hk_load_sort(uint64_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_u64);
}

uint64_t hk_load_percentile(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

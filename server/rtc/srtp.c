/* SRTP sessions on top of libsrtp2: one inbound and one outbound srtp_t per peer, both
 * keyed from DTLS-SRTP (RFC 5764). */
#include "server/rtc/srtp.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <srtp2/srtp.h>
#include <stdlib.h>
#include <string.h>

#include "server/rtc/srtp_gcm.h"

#define REPLAY_WINDOW 1024

#define RTP_HEADER_LEN  12 /* RFC 3550 §5.1 fixed header */
#define RTCP_HEADER_LEN 8  /* RFC 3550 §6.4.1: V|P|RC|PT|length|SSRC */
#define SRTCP_INDEX_LEN 4  /* RFC 3711 §3.4: E|SRTCP index */

struct hk_srtp_s {
    srtp_t inbound;
    srtp_t outbound;
    size_t tag_len;
};

int hk_srtp_global_init(void)
{
    if (srtp_init() != srtp_err_status_ok)
        return HK_EIO;
    return hk_srtp_gcm_register();
}

void hk_srtp_global_shutdown(void)
{
    srtp_shutdown();
}

void hk_srtp_keys_wipe(hk_srtp_keys_t *keys)
{
    OPENSSL_cleanse(keys, sizeof *keys);
}

/* Fills the crypto policies for a profile; returns the auth tag length or 0. */
static size_t set_policy(hk_srtp_profile_t profile, srtp_policy_t *policy)
{
    switch (profile) {
    case HK_SRTP_AES128_CM_SHA1_80:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
        return 10;
    case HK_SRTP_AEAD_AES_128_GCM:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtcp);
        return 16;
    }
    return 0;
}

static int create_session(srtp_t *session, const hk_srtp_keys_t *keys, int inbound)
{
    srtp_policy_t policy;
    unsigned char key[sizeof keys->local_key];

    memset(&policy, 0, sizeof policy);
    if (set_policy(keys->profile, &policy) == 0)
        return HK_EINVAL;
    memcpy(key, inbound ? keys->remote_key : keys->local_key, sizeof key);
    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    policy.key = key;
    policy.window_size = REPLAY_WINDOW;
    policy.allow_repeat_tx = inbound ? 0 : 1;
    policy.next = NULL;
    srtp_err_status_t status = srtp_create(session, &policy);
    OPENSSL_cleanse(key, sizeof key);
    return status == srtp_err_status_ok ? 0 : HK_EIO;
}

hk_srtp_t *hk_srtp_create(const hk_srtp_keys_t *keys)
{
    size_t salt_len;
    switch (keys->profile) {
    case HK_SRTP_AES128_CM_SHA1_80:
        salt_len = HK_SRTP_CM_SALT_LEN;
        break;
    case HK_SRTP_AEAD_AES_128_GCM:
        salt_len = HK_SRTP_GCM_SALT_LEN;
        break;
    default:
        return NULL;
    }
    if (keys->key_len != HK_SRTP_KEY_LEN || keys->salt_len != salt_len)
        return NULL;

    hk_srtp_t *srtp = calloc(1, sizeof *srtp);
    if (!srtp)
        return NULL;
    srtp->tag_len = keys->profile == HK_SRTP_AEAD_AES_128_GCM ? 16 : 10;
    if (create_session(&srtp->inbound, keys, 1) != 0)
        goto fail;
    if (create_session(&srtp->outbound, keys, 0) != 0)
        goto fail;
    return srtp;

fail:
    hk_srtp_destroy(srtp);
    return NULL;
}

void hk_srtp_destroy(hk_srtp_t *srtp)
{
    if (!srtp)
        return;
    if (srtp->inbound)
        srtp_dealloc(srtp->inbound);
    if (srtp->outbound)
        srtp_dealloc(srtp->outbound);
    free(srtp);
}

size_t hk_srtp_rtp_overhead(const hk_srtp_t *srtp)
{
    return srtp->tag_len;
}

size_t hk_srtp_rtcp_overhead(const hk_srtp_t *srtp)
{
    return srtp->tag_len + SRTCP_INDEX_LEN;
}

static int map_status(srtp_err_status_t status)
{
    switch (status) {
    case srtp_err_status_ok:
        return 0;
    case srtp_err_status_auth_fail:
        return HK_SRTP_EAUTH;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
        return HK_SRTP_EREPLAY;
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
        return HK_EINVAL;
    default:
        return HK_EIO;
    }
}

/* RFC 3550: both RTP and RTCP start with V=2 in the top two bits. */
static int version_ok(const uint8_t *buf)
{
    return (buf[0] >> 6) == 2;
}

int hk_srtp_unprotect_rtp(hk_srtp_t *srtp, uint8_t *buf, size_t *len)
{
    if (*len < RTP_HEADER_LEN + srtp->tag_len || *len > INT_MAX || !version_ok(buf))
        return HK_EINVAL;
    int n = (int)*len;
    int err = map_status(srtp_unprotect(srtp->inbound, buf, &n));
    if (err == 0)
        *len = (size_t)n;
    return err;
}

int hk_srtp_unprotect_rtcp(hk_srtp_t *srtp, uint8_t *buf, size_t *len)
{
    if (*len < RTCP_HEADER_LEN + SRTCP_INDEX_LEN + srtp->tag_len || *len > INT_MAX ||
        !version_ok(buf))
        return HK_EINVAL;
    int n = (int)*len;
    int err = map_status(srtp_unprotect_rtcp(srtp->inbound, buf, &n));
    if (err == 0)
        *len = (size_t)n;
    return err;
}

int hk_srtp_protect_rtp(hk_srtp_t *srtp, uint8_t *buf, size_t *len, size_t cap)
{
    if (*len < RTP_HEADER_LEN || !version_ok(buf))
        return HK_EINVAL;
    if (cap < *len || cap - *len < hk_srtp_rtp_overhead(srtp))
        return HK_ENOSPC;
    if (*len > INT_MAX - HK_SRTP_MAX_TRAILER)
        return HK_EINVAL;
    int n = (int)*len;
    int err = map_status(srtp_protect(srtp->outbound, buf, &n));
    if (err == 0)
        *len = (size_t)n;
    return err;
}

int hk_srtp_protect_rtcp(hk_srtp_t *srtp, uint8_t *buf, size_t *len, size_t cap)
{
    if (*len < RTCP_HEADER_LEN || !version_ok(buf))
        return HK_EINVAL;
    if (cap < *len || cap - *len < hk_srtp_rtcp_overhead(srtp))
        return HK_ENOSPC;
    if (*len > INT_MAX - HK_SRTP_MAX_TRAILER)
        return HK_EINVAL;
    int n = (int)*len;
    int err = map_status(srtp_protect_rtcp(srtp->outbound, buf, &n));
    if (err == 0)
        *len = (size_t)n;
    return err;
}

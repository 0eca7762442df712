/* SRTP/SRTCP (RFC 3711, RFC 7714) for one peer connection: an inbound libsrtp2 session
 * keyed with the client's key and an outbound one keyed with the server's key.
 *
 * Packets that arrive before the DTLS handshake has produced keys are the caller's
 * business: it must not create an hk_srtp_t before hk_dtls_srtp_keys() succeeded, and
 * it drops (and counts) media received before that. */
#ifndef HK_SRTP_H
#define HK_SRTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The DTLS-SRTP protection profiles hisoka negotiates (RFC 5764 §4.1.2, RFC 7714 §14.2). */
typedef enum { HK_SRTP_AES128_CM_SHA1_80 = 1, HK_SRTP_AEAD_AES_128_GCM = 2 } hk_srtp_profile_t;

#define HK_SRTP_KEY_LEN      16
#define HK_SRTP_CM_SALT_LEN  14 /* AES128_CM_SHA1_80 */
#define HK_SRTP_GCM_SALT_LEN 12 /* AEAD_AES_128_GCM */

/* Bytes protect may append: RTP adds the auth tag (10 for CM_SHA1_80, 16 for GCM), SRTCP
 * adds the tag plus the 4-byte E|index word. No MKI is ever used. */
#define HK_SRTP_MAX_TRAILER 20

/* Reasons an unprotect fails, for the drop counters (aliases of HK_E* codes). */
#define HK_SRTP_EAUTH   HK_EPERM  /* authentication tag did not verify */
#define HK_SRTP_EREPLAY HK_ERANGE /* replayed, or older than the replay window */
/* HK_EINVAL: too short or not RTP/RTCP version 2; HK_EIO: any other libsrtp failure. */

/* Master key || master salt for each direction. local_key protects what the server
 * sends, remote_key unprotects what the client sends. The key material is secret: wipe
 * it with hk_srtp_keys_wipe() once the session is created. */
typedef struct {
    hk_srtp_profile_t profile;
    uint8_t local_key[HK_SRTP_KEY_LEN + HK_SRTP_CM_SALT_LEN];
    uint8_t remote_key[HK_SRTP_KEY_LEN + HK_SRTP_CM_SALT_LEN];
    size_t key_len;  /* 16 */
    size_t salt_len; /* 14 for CM, 12 for GCM */
} hk_srtp_keys_t;

typedef struct hk_srtp_s hk_srtp_t;

/* Initialises libsrtp (srtp_init) and makes it compute AES-GCM with OpenSSL
 * (server/rtc/srtp_gcm.h). Call once at start-up, before any worker thread exists; calling
 * it again is harmless. Returns 0 or HK_EIO. */
int hk_srtp_global_init(void);

/* Releases libsrtp's global state (srtp_shutdown); only after every hk_srtp_t is gone. */
void hk_srtp_global_shutdown(void);

/* Zeroes a key structure (not optimised away). */
void hk_srtp_keys_wipe(hk_srtp_keys_t *keys);

/* Creates the inbound session (remote key, any inbound SSRC, replay window of 1024
 * packets) and the outbound session (local key, any outbound SSRC, allow_repeat_tx so
 * NACKed packets can be re-sent). keys is only read; the caller still owns and wipes it.
 * Returns NULL when the profile or lengths are inconsistent or libsrtp fails.
 * Free with hk_srtp_destroy. */
hk_srtp_t *hk_srtp_create(const hk_srtp_keys_t *keys);

/* Frees both sessions; NULL is fine. */
void hk_srtp_destroy(hk_srtp_t *srtp);

/* Bytes protect appends for this session's profile: 10 or 16 for RTP, 14 or 20 for RTCP. */
size_t hk_srtp_rtp_overhead(const hk_srtp_t *srtp);
size_t hk_srtp_rtcp_overhead(const hk_srtp_t *srtp);

/* Unprotects an SRTP / SRTCP packet in place; on success *len is the plain length.
 * Returns 0, HK_SRTP_EAUTH, HK_SRTP_EREPLAY, HK_EINVAL or HK_EIO. On error the buffer
 * content is unspecified and the packet must be dropped. */
int hk_srtp_unprotect_rtp(hk_srtp_t *srtp, uint8_t *buf, size_t *len);
int hk_srtp_unprotect_rtcp(hk_srtp_t *srtp, uint8_t *buf, size_t *len);

/* Protects an RTP / RTCP packet in place; cap is the capacity of buf, which must be at
 * least *len + the overhead above (HK_SRTP_MAX_TRAILER always suffices), otherwise
 * HK_ENOSPC and nothing is written. On success *len is the protected length.
 * Protecting the same (SSRC, sequence number) again is allowed (retransmissions) and
 * must carry the same payload. Returns 0, HK_ENOSPC, HK_EINVAL or HK_EIO. */
int hk_srtp_protect_rtp(hk_srtp_t *srtp, uint8_t *buf, size_t *len, size_t cap);
int hk_srtp_protect_rtcp(hk_srtp_t *srtp, uint8_t *buf, size_t *len, size_t cap);

#endif

/* DTLS-SRTP (RFC 5764, RFC 6347) server side for one peer connection, on OpenSSL.
 *
 * No sockets: the UDP/ICE code hands each received DTLS datagram (first byte 20..63,
 * RFC 7983) to hk_dtls_handle() and gets every outgoing datagram through the send
 * callback, one DTLS datagram per call and never larger than the context's MTU.
 * Retransmissions are driven by the caller's timer: hk_dtls_timeout_ms() says when,
 * hk_dtls_on_timeout() does it.
 *
 * Ownership: the context is owned by the worker and must outlive every hk_dtls_t made
 * from it. Nothing here is thread-safe; a context and its connections belong to one loop.
 * The send callback may be called from inside hk_dtls_handle(), hk_dtls_on_timeout()
 * and hk_dtls_close(); it must not destroy the hk_dtls_t. */
#ifndef HK_DTLS_H
#define HK_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "server/rtc/cert.h"
#include "server/rtc/srtp.h"

/* hk_dtls_handle() results (>= 0); errors are negative HK_E* codes. */
#define HK_DTLS_HANDSHAKING 0 /* handshake in progress, nothing to do */
#define HK_DTLS_CONNECTED   1 /* handshake completed in this call: fetch the SRTP keys */
#define HK_DTLS_IDLE        2 /* connected already; the datagram needed nothing from us */
#define HK_DTLS_CLOSED      3 /* the peer sent close_notify */

#define HK_DTLS_DEFAULT_MTU 1200 /* largest datagram we send */
#define HK_DTLS_MIN_MTU     256
#define HK_DTLS_MAX_MTU     1500

/* Retransmission defaults (RFC 6347 §4.2.4.1 timer, doubled each time, capped): an
 * unanswered flight is given up about 30 s after it was first sent. */
#define HK_DTLS_DEFAULT_INITIAL_TIMEOUT_MS 500
#define HK_DTLS_DEFAULT_MAX_TIMEOUT_MS     4000
#define HK_DTLS_DEFAULT_MAX_RETRANSMITS    8

typedef struct hk_dtls_context_s hk_dtls_context_t; /* one per worker */
typedef struct hk_dtls_s hk_dtls_t;                 /* one per peer connection */

/* Called once for each outgoing datagram; datagram is only valid during the call. */
typedef void (*hk_dtls_send_fn)(void *arg, const uint8_t *datagram, size_t len);

/* Creates a DTLS 1.2 server context with the server's certificate: SRTP profiles
 * SRTP_AEAD_AES_128_GCM then SRTP_AES128_CM_SHA1_80 (server preference), ECDHE-ECDSA
 * AES-GCM cipher suites only, a client certificate required (any self-signed one: the real check is
 * the fingerprint from the client's SDP), no session resumption, no renegotiation.
 * The context takes its own references to cert->x509 and cert->key, so the caller may
 * free cert afterwards. Returns NULL on failure. */
hk_dtls_context_t *hk_dtls_context_create(const hk_cert_t *cert);

/* Frees the context; every hk_dtls_t made from it must be destroyed first. NULL is fine. */
void hk_dtls_context_destroy(hk_dtls_context_t *ctx);

/* Sets the MTU (HK_DTLS_MIN_MTU..HK_DTLS_MAX_MTU) for connections created afterwards.
 * Returns 0 or HK_ERANGE. */
int hk_dtls_context_set_mtu(hk_dtls_context_t *ctx, size_t mtu);

/* Sets the retransmission timer for connections created afterwards: the first timeout,
 * the cap of the doubling, and how many retransmissions of one flight are allowed before
 * hk_dtls_on_timeout() gives up. Returns 0 or HK_ERANGE (0 values, initial > max). */
int hk_dtls_context_set_timers(hk_dtls_context_t *ctx, unsigned initial_ms, unsigned max_ms,
                               unsigned max_retransmits);

/* Creates a connection in the server role. fp_algorithm is the hash function name of the
 * client's a=fingerprint ("sha-256"; "sha-1", "sha-224", "sha-384", "sha-512" accepted,
 * case-insensitive) and fp/fp_len the raw digest bytes. send/send_arg receive every
 * outgoing datagram. Returns NULL for an unknown algorithm, a digest of the wrong length
 * or an allocation failure. Free with hk_dtls_destroy. */
hk_dtls_t *hk_dtls_create(hk_dtls_context_t *ctx, const char *fp_algorithm, const uint8_t *fp,
                          size_t fp_len, hk_dtls_send_fn send, void *send_arg);

/* Frees the connection without sending anything (see hk_dtls_close). NULL is fine. */
void hk_dtls_destroy(hk_dtls_t *dtls);

/* Feeds one received DTLS datagram and sends whatever it calls for. Returns:
 *   HK_DTLS_HANDSHAKING  still handshaking (also for datagrams that are dropped: garbage,
 *                        duplicates, empty datagrams, records OpenSSL discards, and the
 *                        two kinds of forged record OpenSSL 3.0 would die of, which are
 *                        screened out first: epoch-0 application data and protected
 *                        records too short for the AES-GCM nonce and tag);
 *   HK_DTLS_CONNECTED    the handshake completed during this call, the client's
 *                        certificate matches the expected fingerprint and an SRTP
 *                        profile was negotiated;
 *   HK_DTLS_IDLE         already connected and nothing to report (application data is
 *                        discarded; a retransmitted client flight is answered; invalid
 *                        records are dropped);
 *   HK_DTLS_CLOSED       the peer sent close_notify (also on every later call);
 *   HK_EPERM             the client's certificate does not match the fingerprint;
 *   HK_EINVAL            fatal handshake failure: no use_srtp offered, no common SRTP
 *                        profile, malformed handshake message, a fatal alert from the
 *                        peer (alerts in epoch 0 are unauthenticated: anyone who can
 *                        spoof the client's address can end a handshake this way);
 *   HK_ELIMIT / HK_EIO   gave up retransmitting / internal failure.
 * After an error the connection is dead: every later call returns the same error and
 * hk_dtls_error() tells why. The SRTP keys, once fetched, do not depend on it. */
int hk_dtls_handle(hk_dtls_t *dtls, const uint8_t *buf, size_t len);

/* Milliseconds until hk_dtls_on_timeout() should be called (0: now), or -1 when no
 * retransmission timer is running (not started, connected, closed or failed). Re-read it
 * after every hk_dtls_handle() and hk_dtls_on_timeout(). */
long hk_dtls_timeout_ms(hk_dtls_t *dtls);

/* Retransmits the last flight if the timer has expired. Returns 1 when it retransmitted,
 * 0 when there was nothing to do yet, or a negative code when the handshake failed for
 * good (HK_ELIMIT: too many retransmissions), after which the connection is dead. */
int hk_dtls_on_timeout(hk_dtls_t *dtls);

/* Sends close_notify if connected (once). The caller destroys the connection after. */
void hk_dtls_close(hk_dtls_t *dtls);

/* Why the connection failed (or was closed), "" if it did not. Never NULL. */
const char *hk_dtls_error(const hk_dtls_t *dtls);

/* After HK_DTLS_CONNECTED: the negotiated profile and the keys from
 * SSL_export_keying_material("EXTRACTOR-dtls_srtp") (RFC 5764 §4.2): local_key is the
 * server's write key||salt, remote_key the client's. The caller wipes *out after
 * hk_srtp_create (hk_srtp_keys_wipe). Returns 0, HK_ESTATE (not connected) or HK_EIO. */
int hk_dtls_srtp_keys(hk_dtls_t *dtls, hk_srtp_keys_t *out);

#endif

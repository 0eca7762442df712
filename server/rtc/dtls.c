/* DTLS-SRTP server (RFC 5764 over DTLS 1.2, RFC 6347) on OpenSSL, without sockets.
 *
 * Each connection's SSL reads and writes through one custom BIO:
 *
 *   hk_dtls_handle(buf) --> in/in_len --read--> SSL --write--> out[] --> send()
 *
 * The read side hands OpenSSL the current datagram once, then reports "retry". The
 * write side packs records into out[] (at most mtu bytes) and hands the datagram to
 * send() when the next record would not fit and at the end of every public call.
 * BIO_CTRL_WPENDING reports the bytes already packed, so OpenSSL's own fragmenting
 * (dtls1_do_write) sizes each handshake fragment to fit the rest of the datagram. */
#include "server/rtc/dtls.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

/* Server preference order: GCM first (RFC 7714), then the mandatory CM_SHA1_80. */
#define SRTP_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
/* Our certificate is ECDSA, so only ECDHE-ECDSA suites can be chosen; AES-GCM is what
 * every WebRTC browser offers, and with it alone every protected record has at least
 * MIN_PROTECTED_RECORD bytes (see screen_datagram). */
#define CIPHERS              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
#define MIN_PROTECTED_RECORD (8 + 16) /* RFC 5288 explicit nonce + GCM tag */
#define GROUPS               "X25519:P-256:P-384"
#define EXPORTER_LABEL       "EXTRACTOR-dtls_srtp" /* RFC 5764 §4.2 */
#define MAX_CERT_LIST        16384                 /* bytes of client certificate chain we accept */
#define MAX_TIMEOUT_MS       60000
#define DTLS_RECORD_HEADER   13

struct hk_dtls_context_s {
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
    size_t mtu;
    unsigned initial_ms;
    unsigned max_ms;
    unsigned max_retransmits;
};

typedef enum { STATE_HANDSHAKING, STATE_CONNECTED, STATE_CLOSED, STATE_FAILED } state_t;

struct hk_dtls_s {
    SSL *ssl; /* owns the BIO */
    hk_dtls_send_fn send;
    void *send_arg;
    state_t state;
    int failure;    /* the HK_E code returned forever once FAILED */
    int verdict;    /* set by the OpenSSL callbacks: why they aborted the handshake */
    int bio_failed; /* our BIO refused a write */
    hk_srtp_profile_t profile;

    const EVP_MD *md;
    const char *md_name;
    uint8_t fp[EVP_MAX_MD_SIZE];
    size_t fp_len;

    size_t mtu;
    unsigned initial_ms;
    unsigned max_ms;
    unsigned max_retransmits;
    unsigned retransmits; /* of the current flight */

    const uint8_t *in; /* the datagram being handled, until OpenSSL reads it */
    size_t in_len;
    size_t out_len;
    uint8_t out[HK_DTLS_MAX_MTU];
    char error[512];
};

/* ---- fingerprints (RFC 8122 §5) ------------------------------------------------------ */

static const EVP_MD *md_by_name(const char *name, const char **canonical)
{
    static const struct {
        const char *name;
        const EVP_MD *(*md)(void);
    } table[] = {
        {"sha-1", EVP_sha1},     {"sha-224", EVP_sha224}, {"sha-256", EVP_sha256},
        {"sha-384", EVP_sha384}, {"sha-512", EVP_sha512},
    };
    for (size_t i = 0; name && i < sizeof table / sizeof table[0]; i++) {
        if (strcasecmp(name, table[i].name) == 0) {
            *canonical = table[i].name;
            return table[i].md();
        }
    }
    return NULL;
}

/* Writes "sha-256 AB:CD:..." (the SDP form) into out, truncating if needed. */
static void format_fingerprint(char *out, size_t size, const char *name, const uint8_t *md,
                               size_t len)
{
    size_t pos = (size_t)snprintf(out, size, "%s ", name);
    for (size_t i = 0; i < len && pos + 3 < size; i++)
        pos += (size_t)snprintf(out + pos, size - pos, i ? ":%02X" : "%02X", md[i]);
}

/* Returns 0 when cert's digest is the expected one; otherwise records why. */
static int check_fingerprint(hk_dtls_t *d, X509 *cert)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (!X509_digest(cert, d->md, md, &md_len)) {
        d->verdict = HK_EIO;
        snprintf(d->error, sizeof d->error, "cannot digest the client certificate");
        return -1;
    }
    if (md_len == d->fp_len && CRYPTO_memcmp(md, d->fp, md_len) == 0)
        return 0;
    char expected[200], got[200];
    format_fingerprint(expected, sizeof expected, d->md_name, d->fp, d->fp_len);
    format_fingerprint(got, sizeof got, d->md_name, md, md_len);
    d->verdict = HK_EPERM;
    snprintf(d->error, sizeof d->error,
             "client certificate fingerprint mismatch: expected %s, got %s", expected, got);
    return -1;
}

/* ---- failure bookkeeping -------------------------------------------------------------- */

/* Marks the connection dead with code. The first reason wins: a callback's precise
 * reason is kept; otherwise fmt plus OpenSSL's last error. */
static int fail(hk_dtls_t *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(hk_dtls_t *d, int code, const char *fmt, ...)
{
    if (d->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(d->error, sizeof d->error, fmt, ap);
        va_end(ap);
        unsigned long e = ERR_peek_last_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        if (reason && n > 0 && (size_t)n < sizeof d->error)
            snprintf(d->error + n, sizeof d->error - (size_t)n, ": %s", reason);
    }
    ERR_clear_error();
    d->state = STATE_FAILED;
    d->failure = code;
    return code;
}

/* ---- the BIO ------------------------------------------------------------------------- */

static void flush_out(hk_dtls_t *d)
{
    if (d->out_len == 0)
        return;
    size_t n = d->out_len;
    d->out_len = 0;
    d->send(d->send_arg, d->out, n);
}

static int bio_write(BIO *bio, const char *data, int len)
{
    hk_dtls_t *d = BIO_get_data(bio);
    if (len <= 0)
        return 0;
    if ((size_t)len > d->mtu) {
        snprintf(d->error, sizeof d->error, "outgoing DTLS record of %d bytes exceeds the MTU",
                 len);
        d->bio_failed = 1;
        return -1;
    }
    if (d->out_len + (size_t)len > d->mtu)
        flush_out(d);
    memcpy(d->out + d->out_len, data, (size_t)len);
    d->out_len += (size_t)len;
    return len;
}

static int bio_read(BIO *bio, char *out, int size)
{
    hk_dtls_t *d = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (!d->in || d->in_len == 0 || size <= 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    /* A datagram larger than the reader's buffer is truncated, like recvfrom(). */
    size_t n = d->in_len < (size_t)size ? d->in_len : (size_t)size;
    memcpy(out, d->in, n);
    d->in = NULL;
    d->in_len = 0;
    return (int)n;
}

static int bio_puts(BIO *bio, const char *str)
{
    return bio_write(bio, str, (int)strlen(str));
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    hk_dtls_t *d = BIO_get_data(bio);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        /* Deferred: every public entry point flushes on return, so records of one call
         * share datagrams (OpenSSL flushes after each retransmitted message). If OpenSSL
         * sized a record assuming an empty datagram, bio_write starts a new one. */
        return 1;
    case BIO_CTRL_WPENDING:
        return (long)d->out_len;
    case BIO_CTRL_PENDING:
        return (long)d->in_len;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return (long)d->mtu;
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
        return 1;
    default:
        return 0; /* includes BIO_CTRL_DGRAM_MTU_EXCEEDED: never */
    }
}

/* ---- OpenSSL callbacks ----------------------------------------------------------------- */

/* Any chain is acceptable as long as its end-entity certificate has the fingerprint the
 * client put in its SDP answer (RFC 8122 §5, RFC 8827 §6.5): self-signed is the norm. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    hk_dtls_t *d = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get0_cert(store);
    if (!d || !cert)
        return 0;
    if (check_fingerprint(d, cert) != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

/* RFC 5764 §4.1.1, the use_srtp extension data:
 *
 *   uint8 SRTPProtectionProfile[2];
 *   struct {
 *      SRTPProtectionProfile SRTPProtectionProfiles<2..2^16-1>;   (2-byte length)
 *      opaque srtp_mki<0..255>;                                     (1-byte length)
 *   } UseSRTPData;
 *
 * Refuses a ClientHello without the extension or without a profile we support, so the
 * client gets a handshake_failure alert instead of a connection that cannot carry media. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    hk_dtls_t *d = SSL_get_app_data(ssl);
    const unsigned char *ext = NULL;
    size_t ext_len = 0;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_use_srtp, &ext, &ext_len)) {
        d->verdict = HK_EINVAL;
        snprintf(d->error, sizeof d->error, "client offered no use_srtp extension (RFC 5764)");
        *alert = SSL_AD_HANDSHAKE_FAILURE;
        return SSL_CLIENT_HELLO_ERROR;
    }
    size_t list_len = ext_len >= 2 ? (size_t)ext[0] << 8 | ext[1] : 0;
    if (ext_len < 2 || list_len < 2 || list_len % 2 != 0 || list_len > ext_len - 2) {
        d->verdict = HK_EINVAL;
        snprintf(d->error, sizeof d->error, "malformed use_srtp extension");
        *alert = SSL_AD_DECODE_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    for (size_t i = 0; i < list_len; i += 2) {
        unsigned id = (unsigned)ext[2 + i] << 8 | ext[3 + i];
        if (id == SRTP_AES128_CM_SHA1_80 || id == SRTP_AEAD_AES_128_GCM)
            return SSL_CLIENT_HELLO_SUCCESS;
    }
    d->verdict = HK_EINVAL;
    snprintf(d->error, sizeof d->error, "no common SRTP profile (we support " SRTP_PROFILES ")");
    *alert = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
}

/* Retransmission timer: timer_us is 0 when a new flight starts its timer, else the
 * duration that just expired. */
static unsigned int timer_cb(SSL *ssl, unsigned int timer_us)
{
    hk_dtls_t *d = SSL_get_app_data(ssl);
    if (timer_us == 0) {
        d->retransmits = 0;
        return d->initial_ms * 1000u;
    }
    d->retransmits++;
    unsigned long next = 2ul * timer_us;
    if (next > d->max_ms * 1000ul)
        next = d->max_ms * 1000ul;
    return (unsigned int)next;
}

/* ---- context --------------------------------------------------------------------------- */

hk_dtls_context_t *hk_dtls_context_create(const hk_cert_t *cert)
{
    hk_dtls_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->mtu = HK_DTLS_DEFAULT_MTU;
    ctx->initial_ms = HK_DTLS_DEFAULT_INITIAL_TIMEOUT_MS;
    ctx->max_ms = HK_DTLS_DEFAULT_MAX_TIMEOUT_MS;
    ctx->max_retransmits = HK_DTLS_DEFAULT_MAX_RETRANSMITS;

    SSL_CTX *s = ctx->ssl_ctx = SSL_CTX_new(DTLS_server_method());
    if (!s || !cert || !cert->x509 || !cert->key)
        goto fail;
    if (!SSL_CTX_set_min_proto_version(s, DTLS1_2_VERSION) ||
        SSL_CTX_use_certificate(s, cert->x509) != 1 || SSL_CTX_use_PrivateKey(s, cert->key) != 1 ||
        SSL_CTX_check_private_key(s) != 1 || SSL_CTX_set_cipher_list(s, CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(s, GROUPS) != 1)
        goto fail;
    if (SSL_CTX_set_tlsext_use_srtp(s, SRTP_PROFILES) != 0) /* 0 is success here */
        goto fail;
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_verify_depth(s, 4);
    SSL_CTX_set_client_hello_cb(s, client_hello_cb, NULL);
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_max_cert_list(s, MAX_CERT_LIST);

    int type = BIO_get_new_index();
    ctx->bio_method = BIO_meth_new(type > 0 ? (type | BIO_TYPE_SOURCE_SINK) : BIO_TYPE_SOURCE_SINK,
                                   "hisoka dtls datagram");
    if (!ctx->bio_method || !BIO_meth_set_write(ctx->bio_method, bio_write) ||
        !BIO_meth_set_read(ctx->bio_method, bio_read) ||
        !BIO_meth_set_puts(ctx->bio_method, bio_puts) ||
        !BIO_meth_set_ctrl(ctx->bio_method, bio_ctrl))
        goto fail;
    ERR_clear_error();
    return ctx;

fail:
    ERR_clear_error();
    hk_dtls_context_destroy(ctx);
    return NULL;
}

void hk_dtls_context_destroy(hk_dtls_context_t *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    BIO_meth_free(ctx->bio_method);
    free(ctx);
}

int hk_dtls_context_set_mtu(hk_dtls_context_t *ctx, size_t mtu)
{
    if (mtu < HK_DTLS_MIN_MTU || mtu > HK_DTLS_MAX_MTU)
        return HK_ERANGE;
    ctx->mtu = mtu;
    return 0;
}

int hk_dtls_context_set_timers(hk_dtls_context_t *ctx, unsigned initial_ms, unsigned max_ms,
                               unsigned max_retransmits)
{
    if (initial_ms == 0 || initial_ms > max_ms || max_ms > MAX_TIMEOUT_MS || max_retransmits == 0)
        return HK_ERANGE;
    ctx->initial_ms = initial_ms;
    ctx->max_ms = max_ms;
    ctx->max_retransmits = max_retransmits;
    return 0;
}

/* ---- connection ------------------------------------------------------------------------ */

hk_dtls_t *hk_dtls_create(hk_dtls_context_t *ctx, const char *fp_algorithm, const uint8_t *fp,
                          size_t fp_len, hk_dtls_send_fn send, void *send_arg)
{
    const char *md_name = NULL;
    const EVP_MD *md = md_by_name(fp_algorithm, &md_name);
    if (!ctx || !md || !fp || !send || fp_len != (size_t)EVP_MD_get_size(md))
        return NULL;

    hk_dtls_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->send = send;
    d->send_arg = send_arg;
    d->state = STATE_HANDSHAKING;
    d->md = md;
    d->md_name = md_name;
    memcpy(d->fp, fp, fp_len);
    d->fp_len = fp_len;
    d->mtu = ctx->mtu;
    d->initial_ms = ctx->initial_ms;
    d->max_ms = ctx->max_ms;
    d->max_retransmits = ctx->max_retransmits;

    d->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = BIO_new(ctx->bio_method);
    if (!d->ssl || !bio) {
        BIO_free(bio);
        goto fail;
    }
    BIO_set_data(bio, d);
    BIO_set_init(bio, 1);
    SSL_set_bio(d->ssl, bio, bio); /* the SSL owns the BIO from here on */
    SSL_set_app_data(d->ssl, d);
    SSL_set_accept_state(d->ssl);
    if (SSL_set_mtu(d->ssl, (long)d->mtu) <= 0)
        goto fail;
    DTLS_set_timer_cb(d->ssl, timer_cb);
    ERR_clear_error();
    return d;

fail:
    ERR_clear_error();
    hk_dtls_destroy(d);
    return NULL;
}

void hk_dtls_destroy(hk_dtls_t *d)
{
    if (!d)
        return;
    SSL_free(d->ssl);
    OPENSSL_cleanse(d, sizeof *d);
    free(d);
}

/* RFC 6347 §4.1 record header:
 *
 *    0        1        2        3        4        5 .. 10     11       12
 *  +--------+--------+--------+--------+--------+-----------+--------+--------+
 *  |  type  |     version     |      epoch      | seq (48)  |     length      |
 *  +--------+--------+--------+--------+--------+-----------+--------+--------+
 *
 * OpenSSL 3.0 drops most invalid records silently, as DTLS should, but two kinds kill the
 * connection with a fatal alert, and anyone able to spoof the client's address could send
 * them: application data (type 23) in epoch 0 during the handshake ("unexpected record"),
 * and a protected record (epoch >= 1) too short to hold the AES-GCM explicit nonce and
 * tag ("internal error"). No real peer sends either, so a datagram carrying one is
 * dropped before OpenSSL sees it. Returns the reason, or NULL when the datagram may go on. */
static const char *screen_datagram(const hk_dtls_t *d, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    while (len - pos >= DTLS_RECORD_HEADER) {
        const uint8_t *r = buf + pos;
        unsigned epoch = (unsigned)r[3] << 8 | r[4];
        size_t length = (size_t)r[11] << 8 | r[12];
        if (epoch == 0 && r[0] == 23 && d->state == STATE_HANDSHAKING)
            return "application data in epoch 0";
        if (epoch != 0 && length < MIN_PROTECTED_RECORD)
            return "protected record too short";
        pos += DTLS_RECORD_HEADER + length;
        if (pos > len)
            break;
    }
    return NULL;
}

/* OpenSSL drops an invalid record (bad tag, unknown epoch, replay) silently, but may then
 * return -1 with SSL_ERROR_SYSCALL and no retry flag instead of WANT_READ. That is only
 * "dropped" if the SSL is not in its error state and our BIO did not fail. */
static int silently_dropped(hk_dtls_t *d, int err)
{
    return err == SSL_ERROR_SYSCALL && !d->bio_failed && ERR_peek_error() == 0 &&
           strcmp(SSL_state_string(d->ssl), "SSLERR") != 0 &&
           !(SSL_get_shutdown(d->ssl) & SSL_RECEIVED_SHUTDOWN);
}

static int finish_handshake(hk_dtls_t *d)
{
    X509 *peer = SSL_get0_peer_certificate(d->ssl);
    if (!peer)
        return fail(d, HK_EPERM, "client sent no certificate");
    if (check_fingerprint(d, peer) != 0)
        return fail(d, d->verdict, "fingerprint");

    SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
    if (!p)
        return fail(d, HK_EINVAL, "no SRTP profile negotiated");
    switch (p->id) {
    case SRTP_AES128_CM_SHA1_80:
        d->profile = HK_SRTP_AES128_CM_SHA1_80;
        break;
    case SRTP_AEAD_AES_128_GCM:
        d->profile = HK_SRTP_AEAD_AES_128_GCM;
        break;
    default:
        return fail(d, HK_EINVAL, "unexpected SRTP profile %s", p->name);
    }
    d->state = STATE_CONNECTED;
    return HK_DTLS_CONNECTED;
}

static int do_handshake(hk_dtls_t *d)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(d->ssl);
    if (ret == 1) {
        ret = finish_handshake(d);
        if (ret < 0)
            SSL_shutdown(d->ssl); /* tell the client with close_notify */
        return ret;
    }
    int err = SSL_get_error(d->ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE || silently_dropped(d, err))
        return HK_DTLS_HANDSHAKING;
    if (d->verdict)
        return fail(d, d->verdict, "DTLS handshake failed");
    return fail(d, err == SSL_ERROR_SSL && !d->bio_failed ? HK_EINVAL : HK_EIO,
                "DTLS handshake failed");
}

static int do_read(hk_dtls_t *d)
{
    uint8_t scratch[2048];
    for (;;) {
        ERR_clear_error();
        int ret = SSL_read(d->ssl, scratch, sizeof scratch);
        if (ret > 0)
            continue; /* no data channels: application data is discarded */
        int err = SSL_get_error(d->ssl, ret);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE || silently_dropped(d, err))
            return HK_DTLS_IDLE;
        if (err == SSL_ERROR_ZERO_RETURN) {
            d->state = STATE_CLOSED;
            snprintf(d->error, sizeof d->error, "peer sent close_notify");
            SSL_shutdown(d->ssl); /* answer with ours */
            ERR_clear_error();
            return HK_DTLS_CLOSED;
        }
        return fail(d, d->bio_failed ? HK_EIO : HK_EINVAL, "DTLS connection failed");
    }
}

int hk_dtls_handle(hk_dtls_t *d, const uint8_t *buf, size_t len)
{
    switch (d->state) {
    case STATE_FAILED:
        return d->failure;
    case STATE_CLOSED:
        return HK_DTLS_CLOSED;
    case STATE_HANDSHAKING:
    case STATE_CONNECTED:
        break;
    }
    if (!buf || len == 0)
        return d->state == STATE_CONNECTED ? HK_DTLS_IDLE : HK_DTLS_HANDSHAKING;
    if (screen_datagram(d, buf, len))
        return d->state == STATE_CONNECTED ? HK_DTLS_IDLE : HK_DTLS_HANDSHAKING;

    d->in = buf;
    d->in_len = len;
    int ret = d->state == STATE_HANDSHAKING ? do_handshake(d) : do_read(d);
    d->in = NULL;
    d->in_len = 0;
    flush_out(d);
    return ret;
}

long hk_dtls_timeout_ms(hk_dtls_t *d)
{
    struct timeval tv;
    if (d->state != STATE_HANDSHAKING || DTLSv1_get_timeout(d->ssl, &tv) != 1)
        return -1;
    return (long)tv.tv_sec * 1000 + (long)(tv.tv_usec + 999) / 1000;
}

int hk_dtls_on_timeout(hk_dtls_t *d)
{
    if (d->state == STATE_FAILED)
        return d->failure;
    if (d->state != STATE_HANDSHAKING)
        return 0;
    struct timeval tv;
    if (DTLSv1_get_timeout(d->ssl, &tv) != 1 || tv.tv_sec > 0 || tv.tv_usec > 0)
        return 0;
    if (d->retransmits >= d->max_retransmits)
        return fail(d, HK_ELIMIT, "DTLS handshake timed out after %u retransmissions",
                    d->retransmits);
    ERR_clear_error();
    int ret = DTLSv1_handle_timeout(d->ssl);
    flush_out(d);
    if (ret < 0)
        return fail(d, HK_ELIMIT, "DTLS retransmission failed");
    return ret > 0 ? 1 : 0;
}

void hk_dtls_close(hk_dtls_t *d)
{
    if (d->state == STATE_CONNECTED) {
        ERR_clear_error();
        SSL_shutdown(d->ssl);
        ERR_clear_error();
        flush_out(d);
    }
    if (d->state != STATE_FAILED && d->state != STATE_CLOSED) {
        d->state = STATE_CLOSED;
        snprintf(d->error, sizeof d->error, "closed locally");
    }
}

const char *hk_dtls_error(const hk_dtls_t *d)
{
    return d->error;
}

int hk_dtls_srtp_keys(hk_dtls_t *d, hk_srtp_keys_t *out)
{
    if (d->state != STATE_CONNECTED)
        return HK_ESTATE;
    size_t key_len = HK_SRTP_KEY_LEN;
    size_t salt_len =
        d->profile == HK_SRTP_AEAD_AES_128_GCM ? HK_SRTP_GCM_SALT_LEN : HK_SRTP_CM_SALT_LEN;
    uint8_t material[2 * (HK_SRTP_KEY_LEN + HK_SRTP_CM_SALT_LEN)];
    size_t total = 2 * (key_len + salt_len);

    ERR_clear_error();
    if (SSL_export_keying_material(d->ssl, material, total, EXPORTER_LABEL, strlen(EXPORTER_LABEL),
                                   NULL, 0, 0) != 1) {
        ERR_clear_error();
        OPENSSL_cleanse(material, sizeof material);
        return HK_EIO;
    }
    /* RFC 5764 §4.2:
     *   client_write_SRTP_master_key[key_len] | server_write_SRTP_master_key[key_len] |
     *   client_write_SRTP_master_salt[salt_len] | server_write_SRTP_master_salt[salt_len]
     * We are the server: local = server's, remote = client's. */
    memset(out, 0, sizeof *out);
    out->profile = d->profile;
    out->key_len = key_len;
    out->salt_len = salt_len;
    memcpy(out->remote_key, material, key_len);
    memcpy(out->remote_key + key_len, material + 2 * key_len, salt_len);
    memcpy(out->local_key, material + key_len, key_len);
    memcpy(out->local_key + key_len, material + 2 * key_len + salt_len, salt_len);
    OPENSSL_cleanse(material, sizeof material);
    return 0;
}

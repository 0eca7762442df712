/* A test-only DTLS client (OpenSSL, memory BIOs) and a datagram queue, shared by the
 * unit tests that need the client side of a DTLS-SRTP handshake (test_dtls.c,
 * test_router.c). */
#include "tests/unit/dtls_client.h"

#include <openssl/err.h>
#include <openssl/srtp.h>

#include "tests/unit/unit.h"

void queue_push(queue_t *q, const uint8_t *buf, size_t len)
{
    CHECK(q->n < MAX_DGRAMS);
    CHECK(len > 0 && len <= sizeof q->d[0].data);
    memcpy(q->d[q->n].data, buf, len);
    q->d[q->n].len = len;
    q->n++;
    q->total++;
}

/* ---- the test client ------------------------------------------------------------------ */

static int accept_any(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

/* profiles NULL: no use_srtp extension at all. */
void client_init(client_t *c, const char *profiles)
{
    memset(c, 0, sizeof *c);
    CHECK_INT_EQ(hk_cert_generate(&c->cert), 0);
    c->ctx = SSL_CTX_new(DTLS_client_method());
    CHECK(c->ctx);
    CHECK(SSL_CTX_use_certificate(c->ctx, c->cert.x509) == 1);
    CHECK(SSL_CTX_use_PrivateKey(c->ctx, c->cert.key) == 1);
    if (profiles)
        CHECK(SSL_CTX_set_tlsext_use_srtp(c->ctx, profiles) == 0);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, accept_any);
    c->ssl = SSL_new(c->ctx);
    CHECK(c->ssl);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    CHECK(c->rbio && c->wbio);
    BIO_set_mem_eof_return(c->rbio, -1);
    BIO_set_mem_eof_return(c->wbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    SSL_set_options(c->ssl, SSL_OP_NO_QUERY_MTU);
    CHECK(SSL_set_mtu(c->ssl, 1200) > 0);
}

void client_free(client_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    hk_cert_free(&c->cert);
}

void client_fingerprint(client_t *c, uint8_t fp[32])
{
    unsigned len = 0;
    CHECK(X509_digest(c->cert.x509, EVP_sha256(), fp, &len) == 1);
    CHECK_INT_EQ(len, 32);
}

/* Moves what the client wrote into datagrams: whole records packed up to 1200 bytes, or
 * one record per datagram. */
void client_drain(client_t *c, queue_t *to_server)
{
    uint8_t buf[16384];
    int n = BIO_read(c->wbio, buf, sizeof buf);
    if (n <= 0)
        return;
    CHECK(BIO_ctrl_pending(c->wbio) == 0);
    size_t pos = 0, start = 0;
    while (pos < (size_t)n) {
        CHECK((size_t)n - pos >= DTLS_HEADER);
        size_t rec = DTLS_HEADER + ((size_t)buf[pos + 11] << 8 | buf[pos + 12]);
        CHECK(pos + rec <= (size_t)n);
        if (pos > start && (c->one_record_per_datagram || pos + rec - start > 1200)) {
            queue_push(to_server, buf + start, pos - start);
            start = pos;
        }
        pos += rec;
    }
    queue_push(to_server, buf + start, pos - start);
}

/* Advances the client's handshake (or reads, once connected) and drains its output. */
void client_step(client_t *c, queue_t *to_server)
{
    ERR_clear_error();
    if (!c->connected && !c->failed) {
        int ret = SSL_do_handshake(c->ssl);
        if (ret == 1) {
            c->connected = 1;
        } else {
            int err = SSL_get_error(c->ssl, ret);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
                c->failed = 1;
        }
    } else if (c->connected) {
        uint8_t buf[2048];
        while (SSL_read(c->ssl, buf, sizeof buf) > 0)
            ;
    }
    ERR_clear_error();
    client_drain(c, to_server);
}

void client_receive(client_t *c, const dgram_t *d, queue_t *to_server)
{
    CHECK(BIO_write(c->rbio, d->data, (int)d->len) == (int)d->len);
    client_step(c, to_server);
}

/* Exported keying material as the client sees it (RFC 5764 §4.2 layout). */
void client_export(client_t *c, uint8_t *out, size_t len)
{
    CHECK(SSL_export_keying_material(c->ssl, out, len, "EXTRACTOR-dtls_srtp", 19, NULL, 0, 0) == 1);
}

/* A test-only DTLS client (OpenSSL, memory BIOs) and a datagram queue. */
#ifndef HK_TEST_DTLS_CLIENT_H
#define HK_TEST_DTLS_CLIENT_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "server/rtc/cert.h"
#include "server/rtc/dtls.h"

#define BOTH_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
#define MAX_DGRAMS    64
#define DTLS_HEADER   13 /* RFC 6347 §4.1: type, version, epoch, sequence, length */

typedef struct {
    uint8_t data[HK_DTLS_MAX_MTU + 512];
    size_t len;
} dgram_t;

typedef struct {
    dgram_t d[MAX_DGRAMS];
    size_t n;
    size_t mtu;   /* every datagram must be at most this long */
    size_t total; /* datagrams ever queued */
} queue_t;

typedef struct {
    hk_cert_t cert;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    int connected;
    int failed;
    int one_record_per_datagram;
} client_t;

void queue_push(queue_t *q, const uint8_t *buf, size_t len);

/* profiles NULL: no use_srtp extension at all. */
void client_init(client_t *c, const char *profiles);
void client_free(client_t *c);
/* The SHA-256 fingerprint of the client's certificate. */
void client_fingerprint(client_t *c, uint8_t fp[32]);
/* Moves what the client wrote into datagrams: whole records packed up to 1200 bytes, or
 * one record per datagram. */
void client_drain(client_t *c, queue_t *to_server);
/* Advances the client's handshake (or reads, once connected) and drains its output. */
void client_step(client_t *c, queue_t *to_server);
void client_receive(client_t *c, const dgram_t *d, queue_t *to_server);
/* Exported keying material as the client sees it (RFC 5764 §4.2 layout). */
void client_export(client_t *c, uint8_t *out, size_t len);

#endif

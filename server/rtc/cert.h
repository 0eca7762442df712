/* The server's DTLS certificate: ECDSA P-256, self-signed, generated at start-up. */
#ifndef HK_CERT_H
#define HK_CERT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct hk_cert_s {
    X509 *x509;
    EVP_PKEY *key;
    char fingerprint[128]; /* "sha-256 AB:CD:..." as written in SDP */
} hk_cert_t;

/* Generates a key pair and a self-signed certificate valid for 30 days.
 * Returns 0 or HK_EIO. Release with hk_cert_free. */
int hk_cert_generate(hk_cert_t *cert);

/* Writes "sha-256 XX:XX:..." of x509's DER into out. Returns 0 or HK_EIO/HK_ENOSPC. */
int hk_cert_fingerprint(X509 *x509, char *out, size_t size);

void hk_cert_free(hk_cert_t *cert);

#endif

#include "server/rtc/cert.h"

#include <openssl/ec.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

int hk_cert_fingerprint(X509 *x509, char *out, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!X509_digest(x509, EVP_sha256(), md, &md_len))
        return HK_EIO;
    if (size < 8 + md_len * 3)
        return HK_ENOSPC;
    char *p = out + sprintf(out, "sha-256 ");
    for (unsigned int i = 0; i < md_len; i++)
        p += sprintf(p, i ? ":%02X" : "%02X", md[i]);
    return 0;
}

int hk_cert_generate(hk_cert_t *cert)
{
    memset(cert, 0, sizeof *cert);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (!pctx || EVP_PKEY_keygen_init(pctx) <= 0 ||
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(pctx, NID_X9_62_prime256v1) <= 0 ||
        EVP_PKEY_keygen(pctx, &cert->key) <= 0)
        goto fail;
    EVP_PKEY_CTX_free(pctx);
    pctx = NULL;

    cert->x509 = X509_new();
    if (!cert->x509)
        goto fail;
    X509_set_version(cert->x509, 2);
    unsigned char serial[8];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn)
        goto fail;
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert->x509));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert->x509), -86400);
    X509_gmtime_adj(X509_getm_notAfter(cert->x509), 30L * 86400);
    X509_NAME *name = X509_get_subject_name(cert->x509);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"hisoka", -1, -1,
                               0);
    X509_set_issuer_name(cert->x509, name);
    if (!X509_set_pubkey(cert->x509, cert->key) || !X509_sign(cert->x509, cert->key, EVP_sha256()))
        goto fail;
    if (hk_cert_fingerprint(cert->x509, cert->fingerprint, sizeof cert->fingerprint) != 0)
        goto fail;
    return 0;

fail:
    EVP_PKEY_CTX_free(pctx);
    hk_cert_free(cert);
    return HK_EIO;
}

void hk_cert_free(hk_cert_t *cert)
{
    X509_free(cert->x509);
    EVP_PKEY_free(cert->key);
    cert->x509 = NULL;
    cert->key = NULL;
}

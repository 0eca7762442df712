/* AES-128-GCM for libsrtp2 on OpenSSL's EVP (AES-NI + carry-less multiply).
 *
 * Debian's libsrtp2 computes AES-GCM through NSS, and NSS's PK11_Encrypt/PK11_Decrypt
 * build and tear down a PKCS#11 context (malloc, locks, key schedule) for every packet:
 * measured ~1.3 us per 100-byte packet on this project's bench machine, most of it
 * that overhead. libsrtp2 lets a program replace the implementation of a cipher type
 * (srtp_replace_cipher_type, cipher.h); this one keeps one EVP context per libsrtp
 * cipher, keyed once, so a packet costs an IV set, the AAD, the payload and the tag.
 * libsrtp2 still does everything SRTP: key derivation, replay protection, packet
 * layout, SRTCP. Sessions created before hk_srtp_gcm_register keep NSS. */
#ifndef HK_SRTP_GCM_H
#define HK_SRTP_GCM_H

#include <srtp2/cipher.h>

/* The cipher type (libsrtp2's self-test runs it against the GCM specification's test
 * case 4 and random round trips). */
extern const srtp_cipher_type_t hk_srtp_gcm_128;

/* Makes hk_srtp_gcm_128 libsrtp2's SRTP_AES_GCM_128, after srtp_init(). Returns 0, or
 * HK_EIO if libsrtp2 refused it (its self-test failed): NSS stays in use then. */
int hk_srtp_gcm_register(void);

#endif

/* Connection ids: 128 random bits in Crockford Base32, exactly 26 characters. */
#ifndef HK_ID_H
#define HK_ID_H

#include <stddef.h>
#include <stdint.h>

#define HK_ID_LEN 26

/* Writes a new random id and a terminating NUL into out. Returns 0 or HK_EIO. */
int hk_id_generate(char out[HK_ID_LEN + 1]);

/* Encodes 16 bytes as 26 Crockford Base32 characters plus NUL (pure). */
void hk_id_encode(const uint8_t bytes[16], char out[HK_ID_LEN + 1]);

/* Returns 1 when s[0..len) is a well-formed id (26 chars of the Crockford alphabet,
 * upper case, first char 0-7 since 128 bits fill 130 bit positions), else 0. */
int hk_id_valid(const char *s, size_t len);

/* Fills buf with len cryptographically random bytes. Returns 0 or HK_EIO. */
int hk_random_bytes(void *buf, size_t len);

#endif

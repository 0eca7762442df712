#include "common/id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "common/error.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int hk_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return HK_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 128 bits are written as 26 digits of 5 bits, most significant first; the first
 * digit carries only the top 3 bits (2 leading zero bits of padding), like ULID. */
void hk_id_encode(const uint8_t bytes[16], char out[HK_ID_LEN + 1])
{
    for (int digit = 0; digit < HK_ID_LEN; digit++) {
        int bit = digit * 5 - 2; /* position of the digit's top bit in the 128 bits */
        unsigned v = 0;
        for (int i = 0; i < 5; i++, bit++) {
            v <<= 1;
            if (bit >= 0)
                v |= (bytes[bit / 8] >> (7 - bit % 8)) & 1u;
        }
        out[digit] = alphabet[v];
    }
    out[HK_ID_LEN] = '\0';
}

int hk_id_generate(char out[HK_ID_LEN + 1])
{
    uint8_t bytes[16];
    if (hk_random_bytes(bytes, sizeof bytes) != 0)
        return HK_EIO;
    hk_id_encode(bytes, out);
    return 0;
}

int hk_id_valid(const char *s, size_t len)
{
    if (len != HK_ID_LEN)
        return 0;
    if (s[0] < '0' || s[0] > '7')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || !strchr(alphabet, s[i]))
            return 0;
    return 1;
}

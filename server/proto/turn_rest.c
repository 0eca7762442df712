#include "server/proto/turn_rest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/error.h"

int hk_turn_rest_credential(const char *secret, uint64_t expiry_unix, const char *id,
                            char username[HK_TURN_USERNAME_MAX],
                            char credential[HK_TURN_CREDENTIAL_MAX])
{
    username[0] = credential[0] = '\0';
    if (!secret || !secret[0] || !id)
        return HK_EINVAL;
    int n = snprintf(username, HK_TURN_USERNAME_MAX, "%" PRIu64 ":%s", expiry_unix, id);
    if (n < 0 || n >= HK_TURN_USERNAME_MAX) {
        username[0] = '\0';
        return HK_EINVAL;
    }
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const uint8_t *)username, (size_t)n, mac,
              &mac_len) ||
        mac_len != 20) {
        username[0] = '\0';
        return HK_EINVAL;
    }
    EVP_EncodeBlock((uint8_t *)credential, mac, (int)mac_len);
    return 0;
}

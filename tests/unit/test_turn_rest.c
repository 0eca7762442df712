/* TURN REST credentials (proto/turn_rest): the username and the HMAC-SHA1 coturn's
 * use-auth-secret recomputes (vector computed independently with Python's hmac). */
#include "common/error.h"
#include "server/proto/turn_rest.h"
#include "tests/unit/unit.h"

TEST(turn_rest_credential_vector)
{
    char user[HK_TURN_USERNAME_MAX], cred[HK_TURN_CREDENTIAL_MAX];
    CHECK_INT_EQ(hk_turn_rest_credential("north", 1700000000, "abc", user, cred), 0);
    CHECK_STR_EQ(user, "1700000000:abc");
    /* base64(HMAC-SHA1("north", "1700000000:abc")) */
    CHECK_STR_EQ(cred, "g5HTmCBrPDhYXFpM/1dHUtfE+c4=");
}

TEST(turn_rest_credential_refusals)
{
    char user[HK_TURN_USERNAME_MAX], cred[HK_TURN_CREDENTIAL_MAX];
    CHECK_INT_EQ(hk_turn_rest_credential("", 1, "abc", user, cred), HK_EINVAL);
    CHECK_STR_EQ(user, "");
    char long_id[HK_TURN_USERNAME_MAX];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CHECK_INT_EQ(hk_turn_rest_credential("s", 1, long_id, user, cred), HK_EINVAL);
    CHECK_STR_EQ(user, "");
    CHECK_STR_EQ(cred, "");
}

#include "common/error.h"
#include "common/id.h"
#include "tests/unit/unit.h"

TEST(id_encode_zero_and_ones)
{
    uint8_t zero[16] = {0};
    uint8_t ones[16];
    memset(ones, 0xff, sizeof ones);
    char out[HK_ID_LEN + 1];
    hk_id_encode(zero, out);
    CHECK_STR_EQ(out, "00000000000000000000000000");
    hk_id_encode(ones, out);
    /* 128 one bits: the first digit holds 3 bits (7), the other 25 hold 5 (Z). */
    CHECK_STR_EQ(out, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
}

TEST(id_encode_bit_positions)
{
    uint8_t b[16] = {0};
    char out[HK_ID_LEN + 1];
    b[15] = 0x01; /* lowest bit -> last digit 1 */
    hk_id_encode(b, out);
    CHECK_STR_EQ(out, "00000000000000000000000001");
    memset(b, 0, sizeof b);
    b[0] = 0x80; /* highest bit -> first digit 4 (100) */
    hk_id_encode(b, out);
    CHECK_STR_EQ(out, "40000000000000000000000000");
}

TEST(id_generate_is_valid_and_random)
{
    char a[HK_ID_LEN + 1], b[HK_ID_LEN + 1];
    CHECK_INT_EQ(hk_id_generate(a), 0);
    CHECK_INT_EQ(hk_id_generate(b), 0);
    CHECK_INT_EQ(strlen(a), 26);
    CHECK(hk_id_valid(a, strlen(a)));
    CHECK(strcmp(a, b) != 0);
}

TEST(id_valid_rejects)
{
    CHECK(!hk_id_valid("", 0));
    CHECK(!hk_id_valid("0000000000000000000000000", 25));
    CHECK(!hk_id_valid("80000000000000000000000000", 26)); /* over 128 bits */
    CHECK(!hk_id_valid("0000000000000000000000000I", 26)); /* I not in alphabet */
    CHECK(!hk_id_valid("0000000000000000000000000u", 26)); /* lower case */
    CHECK(hk_id_valid("0123456789ABCDEFGHJKMNPQRS", 26));
}

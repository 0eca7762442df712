/* E2EE binary key messages (docs/protocol.md §3, diagram in server/proto/keyrelay.h): annotated
 * messages of each type -> parse -> check fields -> write back -> memcmp, and every
 * refusal with its reason. Parsing happens on exact-size heap copies so that ASan sees
 * any read past the end. */
#include "common/error.h"
#include "common/id.h"
#include "server/proto/keyrelay.h"
#include "tests/unit/unit.h"

/* clang-format off */
/* "01ARZ3NDEKTSV4RRFFQ69G5FAV" */
#define SRC_ID '0', '1', 'A', 'R', 'Z', '3', 'N', 'D', 'E', 'K', 'T', 'S', 'V', \
               '4', 'R', 'R', 'F', 'F', 'Q', '6', '9', 'G', '5', 'F', 'A', 'V'
/* "7ZZZZZZZZZZZZZZZZZZZZZZZZZ": the largest id */
#define DST_ID '7', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', \
               'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z'
/* clang-format on */
static const char src_text[] = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
static const char dst_text[] = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ";

#define OFFSET_SRC  4
#define OFFSET_DST  30
#define OFFSET_BODY 56

/* clang-format off */

/* Type 0 PreKey: 120 bytes. */
static const uint8_t prekey_msg[] = {
    0x00,                   /* Type 0 (PreKey) */
    0x00,                   /* Reserved */
    0x00, 0x00,             /* CiphertextLength 0 */
    SRC_ID,                 /* SrcConnectionId, offset 4 */
    DST_ID,                 /* DstConnectionId, offset 30 */
    /* IdentityKey (32 bytes), offset 56 */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    /* EphemeralKey (32 bytes), offset 88 */
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
};

/* Type 1 Cipher with a 5-byte ciphertext: 4 + 52 + 32 + 4 + 4 + 5 = 101 bytes. */
static const uint8_t cipher_msg[] = {
    0x01,                   /* Type 1 (Cipher) */
    0x00,                   /* Reserved */
    0x00, 0x05,             /* CiphertextLength 5 */
    SRC_ID,                 /* SrcConnectionId */
    DST_ID,                 /* DstConnectionId */
    /* RatchetPub (32 bytes) */
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
    0x00, 0x00, 0x00, 0x02, /* PN 2 */
    0x00, 0x00, 0x01, 0x07, /* N 263 */
    0xde, 0xad, 0xbe, 0xef, 0x42, /* Ciphertext (5 bytes) */
};

/* Type 2 wrapped sender key with a 3-byte ciphertext: 4 + 52 + 3 = 59 bytes. */
static const uint8_t wrapped_msg[] = {
    0x02,                   /* Type 2 (wrapped sender key) */
    0x00,                   /* Reserved */
    0x00, 0x03,             /* CiphertextLength 3 */
    SRC_ID,                 /* SrcConnectionId */
    DST_ID,                 /* DstConnectionId */
    0xaa, 0xbb, 0xcc,       /* Ciphertext (3 bytes) */
};

/* clang-format on */

/* Parses a heap copy of exactly len bytes; the output's ids are rebased onto buf so the
 * caller can compare them with its own buffer. */
static int parse_copy(const uint8_t *buf, size_t len, hk_keymsg_t *msg, const char **err)
{
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    if (len)
        memcpy(copy, buf, len);
    *err = NULL;
    memset(msg, 0, sizeof *msg);
    int rc = hk_keymsg_parse(copy, len, msg, err);
    if (rc == 0) {
        CHECK(msg->src_id == (const char *)copy + OFFSET_SRC);
        CHECK(msg->dst_id == (const char *)copy + OFFSET_DST);
        msg->src_id = (const char *)buf + OFFSET_SRC;
        msg->dst_id = (const char *)buf + OFFSET_DST;
    }
    free(copy);
    return rc;
}

/* Writes a message from parsed fields and a body; returns its length. */
static size_t write_keymsg(uint8_t *out, const hk_keymsg_t *msg, const uint8_t *body,
                           size_t body_len)
{
    out[0] = msg->type;
    out[1] = 0;
    out[2] = (uint8_t)(msg->ciphertext_length >> 8);
    out[3] = (uint8_t)(msg->ciphertext_length & 0xff);
    memcpy(out + OFFSET_SRC, msg->src_id, HK_ID_LEN);
    memcpy(out + OFFSET_DST, msg->dst_id, HK_ID_LEN);
    memcpy(out + OFFSET_BODY, body, body_len);
    return OFFSET_BODY + body_len;
}

/* Parses an annotated message, checks its fields, writes it back and compares. */
static void check_valid(const uint8_t *buf, size_t len, uint8_t type, uint16_t ciphertext_length)
{
    hk_keymsg_t msg;
    const char *err;
    int rc = parse_copy(buf, len, &msg, &err);
    if (rc != 0)
        fprintf(stderr, "refused: %s\n", err);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(msg.type, type);
    CHECK_INT_EQ(msg.ciphertext_length, ciphertext_length);
    CHECK_MEM_EQ(msg.src_id, src_text, HK_ID_LEN);
    CHECK_MEM_EQ(msg.dst_id, dst_text, HK_ID_LEN);

    uint8_t out[HK_KEYMSG_MAX_LEN];
    size_t out_len = write_keymsg(out, &msg, buf + OFFSET_BODY, len - OFFSET_BODY);
    CHECK_INT_EQ(out_len, len);
    CHECK_MEM_EQ(out, buf, len);
}

static void check_refused(const uint8_t *buf, size_t len, const char *reason)
{
    hk_keymsg_t msg;
    const char *err;
    int rc = parse_copy(buf, len, &msg, &err);
    if (rc == 0)
        fprintf(stderr, "accepted a %zu-byte message\n", len);
    CHECK_INT_EQ(rc, HK_EINVAL);
    CHECK_STR_EQ(err, reason);
    /* err may be NULL. */
    CHECK_INT_EQ(hk_keymsg_parse(buf, len, &msg, NULL), HK_EINVAL);
}

static const char too_short[] = "key message shorter than its header";
static const char bad_length[] = "key message length does not match its type";

/* Builds a message of the given type with valid ids and a body of body_len bytes. */
static size_t build(uint8_t *out, uint8_t type, uint16_t ciphertext_length, size_t body_len)
{
    hk_keymsg_t msg = {
        .type = type,
        .ciphertext_length = ciphertext_length,
        .src_id = src_text,
        .dst_id = dst_text,
    };
    static uint8_t body[4096];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7 + 1);
    return write_keymsg(out, &msg, body, body_len);
}

TEST(keyrelay_prekey_valid)
{
    CHECK_INT_EQ(sizeof prekey_msg, 120);
    check_valid(prekey_msg, sizeof prekey_msg, HK_KEYMSG_PREKEY, 0);
}

TEST(keyrelay_cipher_valid)
{
    CHECK_INT_EQ(sizeof cipher_msg, 4 + 52 + 32 + 4 + 4 + 5);
    check_valid(cipher_msg, sizeof cipher_msg, HK_KEYMSG_CIPHER, 5);

    /* The smallest and the largest ciphertext that fit HK_KEYMSG_MAX_LEN. */
    uint8_t buf[HK_KEYMSG_MAX_LEN];
    size_t len = build(buf, HK_KEYMSG_CIPHER, 1, 40 + 1);
    check_valid(buf, len, HK_KEYMSG_CIPHER, 1);
    uint16_t largest = HK_KEYMSG_MAX_LEN - (4 + 52 + 40);
    len = build(buf, HK_KEYMSG_CIPHER, largest, 40 + (size_t)largest);
    CHECK_INT_EQ(len, HK_KEYMSG_MAX_LEN);
    check_valid(buf, len, HK_KEYMSG_CIPHER, largest);
}

TEST(keyrelay_wrapped_valid)
{
    CHECK_INT_EQ(sizeof wrapped_msg, 4 + 52 + 3);
    check_valid(wrapped_msg, sizeof wrapped_msg, HK_KEYMSG_WRAPPED, 3);

    uint8_t buf[HK_KEYMSG_MAX_LEN];
    size_t len = build(buf, HK_KEYMSG_WRAPPED, 1, 1);
    check_valid(buf, len, HK_KEYMSG_WRAPPED, 1);
    len = build(buf, HK_KEYMSG_WRAPPED, HK_KEYMSG_WRAPPED_MAX, HK_KEYMSG_WRAPPED_MAX);
    CHECK_INT_EQ(len, 4 + 52 + 1024);
    check_valid(buf, len, HK_KEYMSG_WRAPPED, HK_KEYMSG_WRAPPED_MAX);
}

/* src_id and dst_id point into the caller's buffer, at offsets 4 and 30. */
TEST(keyrelay_ids_point_into_buffer)
{
    hk_keymsg_t msg;
    const char *err = NULL;
    CHECK_INT_EQ(hk_keymsg_parse(prekey_msg, sizeof prekey_msg, &msg, &err), 0);
    CHECK(err == NULL);
    CHECK(msg.src_id == (const char *)prekey_msg + 4);
    CHECK(msg.dst_id == (const char *)prekey_msg + 30);
    CHECK(hk_id_valid(msg.src_id, HK_ID_LEN));
    CHECK(hk_id_valid(msg.dst_id, HK_ID_LEN));

    CHECK_INT_EQ(hk_keymsg_parse(wrapped_msg, sizeof wrapped_msg, &msg, &err), 0);
    CHECK(msg.src_id == (const char *)wrapped_msg + 4);
    CHECK(msg.dst_id == (const char *)wrapped_msg + 30);
}

TEST(keyrelay_refuse_short_and_long)
{
    check_refused(prekey_msg, 0, too_short);
    check_refused(prekey_msg, 1, too_short);
    check_refused(prekey_msg, HK_KEYMSG_HEADER_LEN, too_short);
    check_refused(prekey_msg, HK_KEYMSG_HEADER_LEN + HK_KEYMSG_IDS_LEN - 1, too_short);
    /* Header and ids but no body. */
    check_refused(prekey_msg, HK_KEYMSG_HEADER_LEN + HK_KEYMSG_IDS_LEN, bad_length);

    static uint8_t big[HK_KEYMSG_MAX_LEN + 2];
    size_t len =
        build(big, HK_KEYMSG_CIPHER, HK_KEYMSG_MAX_LEN + 1 - 96, HK_KEYMSG_MAX_LEN + 1 - 56);
    CHECK_INT_EQ(len, HK_KEYMSG_MAX_LEN + 1);
    check_refused(big, len, "key message too long");
    check_refused(big, sizeof big, "key message too long");
}

TEST(keyrelay_refuse_reserved_and_type)
{
    uint8_t buf[sizeof prekey_msg];
    memcpy(buf, prekey_msg, sizeof buf);
    buf[1] = 0x01;
    check_refused(buf, sizeof buf, "reserved byte not zero");
    buf[1] = 0x80;
    check_refused(buf, sizeof buf, "reserved byte not zero");

    memcpy(buf, prekey_msg, sizeof buf);
    buf[0] = 3;
    check_refused(buf, sizeof buf, "unknown key message type");
    buf[0] = 255;
    check_refused(buf, sizeof buf, "unknown key message type");
    buf[0] = 0x80;
    check_refused(buf, sizeof buf, "unknown key message type");
}

TEST(keyrelay_refuse_prekey_lengths)
{
    uint8_t buf[256];
    /* A PreKey that carries a CiphertextLength. */
    memcpy(buf, prekey_msg, sizeof prekey_msg);
    buf[3] = 0x01;
    check_refused(buf, sizeof prekey_msg, "prekey message with a ciphertext length");
    buf[2] = 0xff;
    buf[3] = 0x00;
    check_refused(buf, sizeof prekey_msg, "prekey message with a ciphertext length");

    /* 119 and 121 bytes. */
    check_refused(prekey_msg, sizeof prekey_msg - 1, bad_length);
    memcpy(buf, prekey_msg, sizeof prekey_msg);
    buf[sizeof prekey_msg] = 0x00;
    check_refused(buf, sizeof prekey_msg + 1, bad_length);
}

TEST(keyrelay_refuse_cipher_lengths)
{
    uint8_t buf[HK_KEYMSG_MAX_LEN + 64];
    /* CiphertextLength 0, with and without a ciphertext behind it. */
    size_t len = build(buf, HK_KEYMSG_CIPHER, 0, 40);
    check_refused(buf, len, "cipher message without ciphertext");
    len = build(buf, HK_KEYMSG_CIPHER, 0, 45);
    check_refused(buf, len, "cipher message without ciphertext");

    /* The header says one byte more, then one byte less, than the message holds. */
    memcpy(buf, cipher_msg, sizeof cipher_msg);
    buf[3] = 6;
    check_refused(buf, sizeof cipher_msg, bad_length);
    buf[3] = 4;
    check_refused(buf, sizeof cipher_msg, bad_length);
    /* A length that would reach far past the end. */
    buf[2] = 0xff;
    buf[3] = 0xff;
    check_refused(buf, sizeof cipher_msg, bad_length);
    len = build(buf, HK_KEYMSG_CIPHER, 0xffff, HK_KEYMSG_MAX_LEN - 56);
    CHECK_INT_EQ(len, HK_KEYMSG_MAX_LEN);
    check_refused(buf, len, bad_length);
    /* Without room for RatchetPub, PN and N. */
    len = build(buf, HK_KEYMSG_CIPHER, 5, 5);
    check_refused(buf, len, bad_length);
    /* The right total with a truncated buffer. */
    check_refused(cipher_msg, sizeof cipher_msg - 1, bad_length);
}

TEST(keyrelay_refuse_wrapped_lengths)
{
    static const char out_of_range[] = "wrapped key length out of range";
    uint8_t buf[HK_KEYMSG_MAX_LEN];
    size_t len = build(buf, HK_KEYMSG_WRAPPED, 0, 0);
    check_refused(buf, len, out_of_range);
    len = build(buf, HK_KEYMSG_WRAPPED, 0, 10);
    check_refused(buf, len, out_of_range);
    len = build(buf, HK_KEYMSG_WRAPPED, HK_KEYMSG_WRAPPED_MAX + 1, HK_KEYMSG_WRAPPED_MAX + 1);
    check_refused(buf, len, out_of_range);
    len = build(buf, HK_KEYMSG_WRAPPED, 0xffff, HK_KEYMSG_MAX_LEN - 56);
    check_refused(buf, len, out_of_range);

    /* Disagreement in both directions. */
    memcpy(buf, wrapped_msg, sizeof wrapped_msg);
    buf[3] = 4;
    check_refused(buf, sizeof wrapped_msg, bad_length);
    buf[3] = 2;
    check_refused(buf, sizeof wrapped_msg, bad_length);
}

/* Replaces one character of the id at offset and checks the refusal. */
static void check_bad_id(size_t offset, size_t index, char c, const char *reason)
{
    uint8_t buf[sizeof prekey_msg];
    memcpy(buf, prekey_msg, sizeof buf);
    buf[offset + index] = (uint8_t)c;
    check_refused(buf, sizeof buf, reason);
}

TEST(keyrelay_refuse_malformed_ids)
{
    static const struct {
        size_t offset;
        const char *reason;
    } ids[] = {
        {OFFSET_SRC, "malformed source connection id"},
        {OFFSET_DST, "malformed destination connection id"},
    };
    for (size_t i = 0; i < 2; i++) {
        size_t at = ids[i].offset;
        const char *why = ids[i].reason;
        check_bad_id(at, 5, 'a', why); /* lower case */
        check_bad_id(at, 5, 'z', why);
        check_bad_id(at, 5, 'U', why);  /* not in Crockford's alphabet */
        check_bad_id(at, 25, 'I', why); /* idem, last position */
        check_bad_id(at, 1, 'L', why);
        check_bad_id(at, 1, 'O', why);
        check_bad_id(at, 0, '8', why); /* 128 bits: the first digit is 0-7 */
        check_bad_id(at, 0, 'Z', why);
        check_bad_id(at, 10, '\0', why);
        check_bad_id(at, 10, ' ', why);
        check_bad_id(at, 10, '-', why);
        check_bad_id(at, 10, (char)0xc3, why);
    }
    /* Both malformed: the source is reported. */
    uint8_t buf[sizeof prekey_msg];
    memcpy(buf, prekey_msg, sizeof buf);
    buf[OFFSET_SRC] = '8';
    buf[OFFSET_DST] = '8';
    check_refused(buf, sizeof buf, "malformed source connection id");
}

/* Every type byte and every length from 0 to HK_KEYMSG_MAX_LEN + 1: only the documented
 * combinations are accepted. */
TEST(keyrelay_exhaustive_type_and_length)
{
    static uint8_t buf[HK_KEYMSG_MAX_LEN + 1];
    int accepted = 0;
    for (int type = 0; type < 256; type++) {
        for (size_t len = 0; len <= HK_KEYMSG_MAX_LEN + 1; len += (len < 200 ? 1 : 61)) {
            size_t body = len > 56 ? len - 56 : 0;
            uint16_t ciphertext_length = type == HK_KEYMSG_CIPHER && body >= 40
                                             ? (uint16_t)(body - 40)
                                             : (type == HK_KEYMSG_PREKEY ? 0 : (uint16_t)body);
            build(buf, (uint8_t)type, ciphertext_length, body);
            hk_keymsg_t msg;
            const char *err = NULL;
            int rc = hk_keymsg_parse(buf, len, &msg, &err);
            int expected = len >= 56 && len <= HK_KEYMSG_MAX_LEN &&
                           ((type == 0 && len == 120) || (type == 1 && body > 40) ||
                            (type == 2 && body >= 1 && body <= HK_KEYMSG_WRAPPED_MAX));
            if (rc == 0)
                accepted++;
            if ((rc == 0) != expected)
                fprintf(stderr, "type %d len %zu: %s\n", type, len, err ? err : "accepted");
            CHECK_INT_EQ(rc == 0, expected);
            CHECK(rc == 0 || err != NULL);
        }
    }
    CHECK(accepted > 0);
}

/* E2EE binary key messages (docs/protocol.md §3): pure validation of the envelope.
 * The server routes them unchanged; it never reads the keys inside.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |     Type      |   Reserved    |       CiphertextLength        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |        SrcConnectionId (26 bytes, ASCII Crockford Base32)     |
 *  |        DstConnectionId (26 bytes, ASCII Crockford Base32)     |
 *  |        Body (depends on Type)                                 |
 *
 *  Type 0 PreKey : body = IdentityKey(32) EphemeralKey(32); CiphertextLength 0; 120 bytes.
 *  Type 1 Cipher : body = RatchetPub(32) PN(4) N(4) Ciphertext(CiphertextLength).
 *  Type 2 Wrapped sender key (hisoka's own client, docs/protocol.md §4.3):
 *                  body = Ciphertext(CiphertextLength), 1..1024 bytes.
 */
#ifndef HK_KEYRELAY_H
#define HK_KEYRELAY_H

#include <stddef.h>
#include <stdint.h>

#define HK_KEYMSG_HEADER_LEN  4
#define HK_KEYMSG_IDS_LEN     52
#define HK_KEYMSG_PREKEY      0
#define HK_KEYMSG_CIPHER      1
#define HK_KEYMSG_WRAPPED     2
#define HK_KEYMSG_MAX_LEN     2048
#define HK_KEYMSG_WRAPPED_MAX 1024

typedef struct {
    uint8_t type;
    uint16_t ciphertext_length;
    const char *src_id; /* points into the message, 26 bytes, not NUL-terminated */
    const char *dst_id; /* idem */
} hk_keymsg_t;

/* Validates a key message: known type, exact length for that type, ids well formed.
 * Returns 0, or HK_EINVAL with *err set to a static reason. */
int hk_keymsg_parse(const uint8_t *buf, size_t len, hk_keymsg_t *out, const char **err);

#endif

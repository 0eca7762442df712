#include "server/proto/keyrelay.h"

#include "common/error.h"
#include "common/id.h"

int hk_keymsg_parse(const uint8_t *buf, size_t len, hk_keymsg_t *out, const char **err)
{
    if (len < HK_KEYMSG_HEADER_LEN + HK_KEYMSG_IDS_LEN)
        return hk_fail(err, "key message shorter than its header");
    if (len > HK_KEYMSG_MAX_LEN)
        return hk_fail(err, "key message too long");
    out->type = buf[0];
    out->ciphertext_length = (uint16_t)((buf[2] << 8) | buf[3]);
    out->src_id = (const char *)buf + HK_KEYMSG_HEADER_LEN;
    out->dst_id = out->src_id + HK_ID_LEN;
    if (buf[1] != 0)
        return hk_fail(err, "reserved byte not zero");

    size_t fixed = HK_KEYMSG_HEADER_LEN + HK_KEYMSG_IDS_LEN;
    size_t expected;
    switch (out->type) {
    case HK_KEYMSG_PREKEY:
        if (out->ciphertext_length != 0)
            return hk_fail(err, "prekey message with a ciphertext length");
        expected = fixed + 64;
        break;
    case HK_KEYMSG_CIPHER:
        if (out->ciphertext_length == 0)
            return hk_fail(err, "cipher message without ciphertext");
        expected = fixed + 32 + 4 + 4 + out->ciphertext_length;
        break;
    case HK_KEYMSG_WRAPPED:
        if (out->ciphertext_length == 0 || out->ciphertext_length > HK_KEYMSG_WRAPPED_MAX)
            return hk_fail(err, "wrapped key length out of range");
        expected = fixed + out->ciphertext_length;
        break;
    default:
        return hk_fail(err, "unknown key message type");
    }
    if (len != expected)
        return hk_fail(err, "key message length does not match its type");
    if (!hk_id_valid(out->src_id, HK_ID_LEN))
        return hk_fail(err, "malformed source connection id");
    if (!hk_id_valid(out->dst_id, HK_ID_LEN))
        return hk_fail(err, "malformed destination connection id");
    return 0;
}

/* libFuzzer target `keymsg`: feeds the input to hk_keymsg_parse. An accepted message must
 * have the exact length its type requires, well-formed ids at offsets 4 and 30, and must
 * be byte-identical to one written back from the parsed fields; a refusal must give a
 * reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/id.h"
#include "server/proto/keyrelay.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hk_keymsg_t msg;
    const char *err = NULL;
    int rc = hk_keymsg_parse(data, size, &msg, &err);
    if (rc != 0) {
        require(rc == HK_EINVAL && err != NULL && err[0] != '\0');
        require(hk_keymsg_parse(data, size, &msg, NULL) == HK_EINVAL);
        return 0;
    }

    const size_t fixed = HK_KEYMSG_HEADER_LEN + HK_KEYMSG_IDS_LEN;
    require(size >= fixed && size <= HK_KEYMSG_MAX_LEN);
    require(msg.src_id == (const char *)data + 4 && msg.dst_id == (const char *)data + 30);
    require(hk_id_valid(msg.src_id, HK_ID_LEN) && hk_id_valid(msg.dst_id, HK_ID_LEN));
    switch (msg.type) {
    case HK_KEYMSG_PREKEY:
        require(msg.ciphertext_length == 0 && size == 120);
        break;
    case HK_KEYMSG_CIPHER:
        require(msg.ciphertext_length >= 1 && size == fixed + 40 + msg.ciphertext_length);
        break;
    case HK_KEYMSG_WRAPPED:
        require(msg.ciphertext_length >= 1 && msg.ciphertext_length <= HK_KEYMSG_WRAPPED_MAX &&
                size == fixed + msg.ciphertext_length);
        break;
    default:
        abort();
    }

    uint8_t out[HK_KEYMSG_MAX_LEN];
    out[0] = msg.type;
    out[1] = 0;
    out[2] = (uint8_t)(msg.ciphertext_length >> 8);
    out[3] = (uint8_t)msg.ciphertext_length;
    memcpy(out + 4, msg.src_id, HK_ID_LEN);
    memcpy(out + 30, msg.dst_id, HK_ID_LEN);
    memcpy(out + fixed, data + fixed, size - fixed);
    require(memcmp(out, data, size) == 0);
    return 0;
}

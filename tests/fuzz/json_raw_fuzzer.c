/* libFuzzer target `json_raw`: hk_json_raw_member on any bytes must not read past the input;
 * when the input is a JSON object that jansson accepts and has the member "m", the raw
 * value must be found, and it must parse to the same JSON value jansson read. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/json_raw.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char *out = malloc(size + 1);
    require(out != NULL);
    size_t len = 0;
    int rc = hk_json_raw_member(text, size, "m", out, size + 1, &len);
    require(rc == HK_OK || rc == HK_EINVAL || rc == HK_ENOENT);
    json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *value = json_is_object(root) ? json_object_get(root, "m") : NULL;
    if (value) {
        require(rc == HK_OK && len <= size && strlen(out) == len);
        json_t *again = json_loadb(out, len, JSON_DECODE_ANY, NULL);
        require(again != NULL && json_equal(again, value));
        json_decref(again);
    } else if (json_is_object(root)) {
        require(rc == HK_ENOENT);
    }
    json_decref(root);
    free(out);
    return 0;
}

#include "server/proto/json_raw.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "common/error.h"

/* JSON whitespace, and NUL, which jansson skips between tokens too. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
}

static size_t skip_space(const char *t, size_t len, size_t i)
{
    while (i < len && is_space(t[i]))
        i++;
    return i;
}

/* Just past the string that starts at t[i] ('"'), or 0 when it does not end. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (t[i] == '\\')
            i++;
        else if (t[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Just past the value that starts at t[i], or 0 when it is malformed. Objects and arrays
 * are skipped by counting brackets outside strings: no recursion, whatever the depth. */
static size_t skip_value(const char *t, size_t len, size_t i)
{
    if (i >= len)
        return 0;
    if (t[i] == '"')
        return skip_string(t, len, i);
    if (t[i] == '{' || t[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char c = t[i];
            if (c == '"') {
                i = skip_string(t, len, i);
                if (i == 0)
                    return 0;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return 0;
    }
    size_t start = i; /* number, true, false, null */
    while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' && !is_space(t[i]))
        i++;
    return i > start ? i : 0;
}

static bool key_equals(const char *t, size_t start, size_t end, const char *key)
{
    size_t n = end - start - 2; /* without the quotes */
    if (!memchr(t + start + 1, '\\', n))
        return n == strlen(key) && memcmp(t + start + 1, key, n) == 0;
    json_t *s = json_loadb(t + start, end - start, JSON_DECODE_ANY, NULL);
    bool equal = json_is_string(s) && strcmp(json_string_value(s), key) == 0;
    json_decref(s);
    return equal;
}

int hk_json_raw_member(const char *text, size_t len, const char *key, char *out, size_t cap,
                       size_t *out_len)
{
    size_t i = skip_space(text, len, 0), value = 0, value_end = 0;
    if (cap == 0)
        return HK_ENOSPC;
    if (i >= len || text[i] != '{')
        return HK_EINVAL;
    i = skip_space(text, len, i + 1);
    if (i < len && text[i] == '}')
        return HK_ENOENT;
    for (;;) {
        if (i >= len || text[i] != '"')
            return HK_EINVAL;
        size_t key_end = skip_string(text, len, i);
        if (key_end == 0)
            return HK_EINVAL;
        size_t colon = skip_space(text, len, key_end);
        if (colon >= len || text[colon] != ':')
            return HK_EINVAL;
        size_t start = skip_space(text, len, colon + 1);
        size_t end = skip_value(text, len, start);
        if (end == 0)
            return HK_EINVAL;
        if (key_equals(text, i, key_end, key)) {
            value = start;
            value_end = end;
        }
        i = skip_space(text, len, end);
        if (i < len && text[i] == ',') {
            i = skip_space(text, len, i + 1);
            continue;
        }
        if (i < len && text[i] == '}')
            break;
        return HK_EINVAL;
    }
    if (value_end == 0)
        return HK_ENOENT;
    size_t n = 0;
    for (size_t j = value; j < value_end; j++) {
        if (text[j] == '"') {
            size_t e = skip_string(text, value_end, j);
            if (e == 0 || n + (e - j) >= cap)
                return e == 0 ? HK_EINVAL : HK_ENOSPC;
            memcpy(out + n, text + j, e - j);
            n += e - j;
            j = e - 1;
        } else if (!is_space(text[j])) {
            if (n + 1 >= cap)
                return HK_ENOSPC;
            out[n++] = text[j];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return HK_OK;
}

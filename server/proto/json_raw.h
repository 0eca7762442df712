/* The bytes of one member of a JSON object as the client wrote them, minified: for
 * relaying signaling_notify_metadata without re-serializing it (a re-serialized number or
 * string can be several times longer than what the client sent, docs/threats.md 19). */
#ifndef HK_JSON_RAW_H
#define HK_JSON_RAW_H

#include <stddef.h>

/* Finds the value of the top-level member `key` of the JSON object in text (the last one
 * when the key repeats, as jansson keeps the last; keys are compared after unescaping)
 * and writes it to out with the whitespace between tokens removed: strings and numbers
 * keep their bytes. text must be valid JSON (parse it first): malformed input gets
 * HK_EINVAL, never a read past len. Returns 0 and sets *out_len (out is NUL-terminated),
 * HK_ENOENT when the key is absent, HK_ENOSPC when out (cap bytes) is too small. Pure. */
int hk_json_raw_member(const char *text, size_t len, const char *key, char *out, size_t cap,
                       size_t *out_len);

#endif

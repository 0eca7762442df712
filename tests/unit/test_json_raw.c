/* hk_json_raw_member: one member of a JSON object as the client wrote it, minified. */
#include <string.h>

#include "common/error.h"
#include "server/proto/json_raw.h"
#include "server/proto/sora_msg.h"
#include "tests/unit/unit.h"

static int raw(const char *text, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    int rc = hk_json_raw_member(text, strlen(text), key, out, cap, &n);
    if (rc == 0)
        CHECK_INT_EQ(n, strlen(out));
    return rc;
}

TEST(json_raw_keeps_numbers_and_strings_as_written)
{
    char out[256];
    /* Numbers and escapes that jansson would rewrite longer (1e-7 as
     * 9.9999999999999995e-08, \u00e9 as UTF-8) stay as they are; whitespace goes. */
    CHECK_INT_EQ(
        raw("{ \"type\" : \"connect\",\n \"m\" : { \"n\" : 1e-7 , \"s\" : \"a \\u00e9\\\"}\" ,"
            " \"l\" : [ 1 , 2.50 , true , null ] } }",
            "m", out, sizeof out),
        HK_OK);
    CHECK_STR_EQ(out, "{\"n\":1e-7,\"s\":\"a \\u00e9\\\"}\",\"l\":[1,2.50,true,null]}");
    CHECK_INT_EQ(raw("{\"a\":1,\"b\":\"x\"}", "b", out, sizeof out), HK_OK);
    CHECK_STR_EQ(out, "\"x\"");
}

TEST(json_raw_last_key_wins_and_escaped_keys)
{
    char out[64];
    CHECK_INT_EQ(raw("{\"m\":1,\"m\":{\"x\":2}}", "m", out, sizeof out), HK_OK);
    CHECK_STR_EQ(out, "{\"x\":2}");
    /* "\u006d" is "m" once unescaped, as jansson reads it. */
    CHECK_INT_EQ(raw("{\"\\u006d\":[3]}", "m", out, sizeof out), HK_OK);
    CHECK_STR_EQ(out, "[3]");
    /* A key inside a nested object is not a top-level member. */
    CHECK_INT_EQ(raw("{\"o\":{\"m\":1}}", "m", out, sizeof out), HK_ENOENT);
    CHECK_INT_EQ(raw("{}", "m", out, sizeof out), HK_ENOENT);
}

TEST(json_raw_refuses_malformed_and_small_buffers)
{
    char out[8];
    static const char *bad[] = {"",          "[1]",          "{",         "{\"m\"",
                                "{\"m\":",   "{\"m\":\"abc", "{\"m\":1",  "{\"m\":{\"x\":1}",
                                "{\"m\" 1}", "{m:1}",        "{\"m\":1,}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(raw(bad[i], "m", out, sizeof out) != HK_OK);
    CHECK_INT_EQ(raw("{\"m\":\"0123456789\"}", "m", out, sizeof out), HK_ENOSPC);
    CHECK_INT_EQ(raw("{\"m\":\"0123\"}", "m", out, 0), HK_ENOSPC);
    /* Every prefix of a valid text fails cleanly (no read past len). */
    const char *text = "{\"a\":[1,{\"b\":\"}]\"}],\"m\":{\"c\":\"\\\\\"}}";
    char big[64];
    for (size_t n = 0; n < strlen(text); n++) {
        size_t len = 0;
        CHECK(hk_json_raw_member(text, n, "m", big, sizeof big, &len) != HK_OK);
    }
    CHECK_INT_EQ(raw(text, "m", big, sizeof big), HK_OK);
    CHECK_STR_EQ(big, "{\"c\":\"\\\\\"}");
}

TEST(json_raw_connect_keeps_notify_metadata_bytes)
{
    const char *text = "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"c\","
                       "\"signaling_notify_metadata\": {\"n\": 1e-7, \"s\": \"\\u00e9\"}}";
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(hk_sora_parse_connect(text, strlen(text), &msg, &err), 0);
    CHECK_STR_EQ(msg.notify_metadata_raw, "{\"n\":1e-7,\"s\":\"\\u00e9\"}");
    CHECK_INT_EQ(msg.notify_metadata_raw_len, strlen(msg.notify_metadata_raw));
    /* Relayed as those bytes in notify, in the event and in the joiner's list. */
    hk_notify_conn_t c = {.role = HK_ROLE_SENDRECV,
                          .client_id = "x",
                          .connection_id = "0123456789ABCDEFGHJKMNPQRS",
                          .metadata = msg.signaling_notify_metadata,
                          .metadata_raw = msg.notify_metadata_raw};
    hk_channel_counts_t counts = {.connections = 2, .sendrecv = 2};
    char *notify = hk_sora_build_notify("connection.created", "c", &c, &counts, true, &c, 1, false);
    CHECK(notify != NULL);
    const char *first = strstr(notify, "\"metadata\":{\"n\":1e-7,\"s\":\"\\u00e9\"}");
    CHECK(first != NULL);
    CHECK(first && strstr(first + 1, "\"metadata\":{\"n\":1e-7,\"s\":\"\\u00e9\"}") != NULL);
    CHECK(strstr(notify, "hk-raw-") == NULL);
    free(notify);
    hk_connect_msg_clear(&msg);
}

/* Sora signaling messages (docs/protocol.md §1): connect validation with every refusal's close
 * code and reason, the messages accepted after connect, and the exact JSON the builders
 * write. Ownership of the json_t members is checked through their reference counts; run
 * the ASan build with ASAN_OPTIONS=detect_leaks=1 to see leaks. */
#include "common/error.h"
#include "server/proto/sora_msg.h"
#include "tests/unit/unit.h"

/* ---- connect ------------------------------------------------------------------------ */

static int parse_connect(const char *text, size_t len, hk_connect_msg_t *msg, hk_sora_error_t *err)
{
    err->close_code = 0;
    err->reason = NULL;
    return hk_sora_parse_connect(text, len, msg, err);
}

/* Parses a NUL-terminated text that must be refused with code and reason; on refusal no
 * json_t may be left behind in the output. */
static void check_connect_refused(const char *text, size_t len, int code, const char *reason)
{
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    int rc = parse_connect(text, len, &msg, &err);
    if (rc != HK_EINVAL)
        fprintf(stderr, "accepted: %.200s\n", text);
    CHECK_INT_EQ(rc, HK_EINVAL);
    CHECK_INT_EQ(err.close_code, code);
    CHECK_STR_EQ(err.reason, reason);
    CHECK(msg.metadata == NULL);
    CHECK(msg.signaling_notify_metadata == NULL);
    hk_connect_msg_clear(&msg); /* harmless after a refusal */
}

#define CONNECT_REFUSED(text, reason)                                                              \
    check_connect_refused((text), strlen(text), HK_CLOSE_BAD_REQUEST, (reason))

/* A connect with the mandatory members followed by extra members (text starting with a
 * comma, or ""). */
#define CONNECT_WITH(extra)                                                                        \
    "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\"" extra "}"

static const char not_json[] = "message is not valid JSON";
static const char bad_type[] = "first message must be type \"connect\"";
static const char missing_role[] = "MISSING-ROLE: role must be a string";
static const char invalid_role[] = "INVALID-ROLE: role must be sendrecv, sendonly or recvonly";
static const char missing_channel[] = "MISSING-CHANNEL-ID: channel_id must be a string";
static const char invalid_channel[] =
    "INVALID-CHANNEL-ID: channel_id must be 1 to 255 printable ASCII characters";
static const char invalid_client[] =
    "INVALID-CLIENT-ID: client_id must be 1 to 255 printable ASCII characters";
static const char not_bool[] = "e2ee, redirect, multistream and simulcast must be booleans";
static const char bad_video_codec[] = "video.codec_type must be one of VP8, VP9, H264, AV1";

TEST(sora_msg_connect_minimal)
{
    static const char text[] = "{\"type\":\"connect\",\"role\":\"sendonly\",\"channel_id\":\"r1\"}";
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(text, sizeof text - 1, &msg, &err), 0);
    CHECK_INT_EQ(msg.role, HK_ROLE_SENDONLY);
    CHECK_STR_EQ(msg.channel_id, "r1");
    CHECK_STR_EQ(msg.client_id, "");
    CHECK(!msg.e2ee);
    CHECK(msg.audio);
    CHECK(msg.video);
    CHECK_STR_EQ(msg.video_codec, "VP8");
    CHECK(!msg.redirect);
    CHECK(msg.metadata == NULL);
    CHECK(msg.signaling_notify_metadata == NULL);
    hk_connect_msg_clear(&msg);
}

TEST(sora_msg_connect_roles)
{
    static const struct {
        const char *text;
        hk_role_t role;
    } cases[] = {
        {"{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"c\"}", HK_ROLE_SENDRECV},
        {"{\"type\":\"connect\",\"role\":\"sendonly\",\"channel_id\":\"c\"}", HK_ROLE_SENDONLY},
        {"{\"type\":\"connect\",\"role\":\"recvonly\",\"channel_id\":\"c\"}", HK_ROLE_RECVONLY},
        /* Member order does not matter. */
        {"{\"channel_id\":\"c\",\"role\":\"recvonly\",\"type\":\"connect\"}", HK_ROLE_RECVONLY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hk_connect_msg_t msg;
        hk_sora_error_t err;
        CHECK_INT_EQ(parse_connect(cases[i].text, strlen(cases[i].text), &msg, &err), 0);
        CHECK_INT_EQ(msg.role, cases[i].role);
        CHECK_STR_EQ(msg.channel_id, "c");
        hk_connect_msg_clear(&msg);
    }
    CHECK_STR_EQ(hk_role_name(HK_ROLE_SENDRECV), "sendrecv");
    CHECK_STR_EQ(hk_role_name(HK_ROLE_SENDONLY), "sendonly");
    CHECK_STR_EQ(hk_role_name(HK_ROLE_RECVONLY), "recvonly");
}

/* What sora-js-sdk sends for an E2EE sendrecv connection, plus members hisoka ignores. */
static const char sdk_connect[] =
    "{\"type\":\"connect\","
    "\"role\":\"sendrecv\","
    "\"channel_id\":\"sora-devtools_room-01\","
    "\"client_id\":\"alice@example.com\","
    "\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n\","
    "\"sora_client\":\"Sora JavaScript SDK 2026.1.0\","
    "\"environment\":\"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0\","
    "\"sora_ice_candidate_policy\":\"all\","
    "\"audio\":{\"codec_type\":\"OPUS\",\"bit_rate\":64,"
    "\"opus_params\":{\"channels\":2,\"stereo\":true,\"usedtx\":false}},"
    "\"video\":{\"codec_type\":\"VP9\",\"bit_rate\":1500,\"vp9_params\":{\"profile_id\":0}},"
    "\"metadata\":{\"access_token\":\"xyz\",\"n\":[1,2,{\"deep\":null}]},"
    "\"signaling_notify_metadata\":{\"name\":\"Alice\",\"pre_key_bundle\":{"
    "\"identityKey\":\"aWRlbnRpdHk=\",\"signedPreKey\":\"c2lnbmVk\","
    "\"preKeySignature\":\"c2lnbmF0dXJl\"}},"
    "\"e2ee\":true,"
    "\"multistream\":true,"
    "\"simulcast\":false,"
    "\"spotlight\":false,"
    "\"spotlight_number\":1,"
    "\"data_channel_signaling\":true,"
    "\"ignore_disconnect_websocket\":false,"
    "\"data_channels\":[{\"label\":\"#sora-devtools\",\"direction\":\"sendrecv\"}],"
    "\"forwarding_filter\":{\"action\":\"block\",\"rules\":[]},"
    "\"redirect\":true,"
    "\"bundle_id\":\"b1\","
    "\"future_member\":{\"x\":[true,false]}}";

TEST(sora_msg_connect_sdk_full)
{
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(sdk_connect, sizeof sdk_connect - 1, &msg, &err), 0);
    CHECK_INT_EQ(msg.role, HK_ROLE_SENDRECV);
    CHECK_STR_EQ(msg.channel_id, "sora-devtools_room-01");
    CHECK_STR_EQ(msg.client_id, "alice@example.com");
    CHECK(msg.e2ee);
    CHECK(msg.audio);
    CHECK(msg.video);
    CHECK_STR_EQ(msg.video_codec, "VP9");
    CHECK(msg.redirect);

    json_t *expected =
        json_loads("{\"access_token\":\"xyz\",\"n\":[1,2,{\"deep\":null}]}", 0, NULL);
    CHECK(expected != NULL);
    CHECK(json_equal(msg.metadata, expected));
    json_decref(expected);

    CHECK(json_is_object(msg.signaling_notify_metadata));
    CHECK_STR_EQ(json_string_value(json_object_get(msg.signaling_notify_metadata, "name")),
                 "Alice");
    json_t *bundle = json_object_get(msg.signaling_notify_metadata, "pre_key_bundle");
    CHECK_STR_EQ(json_string_value(json_object_get(bundle, "identityKey")), "aWRlbnRpdHk=");
    CHECK_STR_EQ(json_string_value(json_object_get(bundle, "signedPreKey")), "c2lnbmVk");
    CHECK_STR_EQ(json_string_value(json_object_get(bundle, "preKeySignature")), "c2lnbmF0dXJl");
    hk_connect_msg_clear(&msg);
}

/* The output owns exactly one reference to each json_t member (the parsed root is gone),
 * and hk_connect_msg_clear gives them back. */
TEST(sora_msg_connect_json_ownership)
{
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(sdk_connect, sizeof sdk_connect - 1, &msg, &err), 0);
    json_t *metadata = msg.metadata;
    json_t *notify_metadata = msg.signaling_notify_metadata;
    CHECK_INT_EQ(metadata->refcount, 1);
    CHECK_INT_EQ(notify_metadata->refcount, 1);

    json_incref(metadata);
    json_incref(notify_metadata);
    hk_connect_msg_clear(&msg);
    CHECK(msg.metadata == NULL);
    CHECK(msg.signaling_notify_metadata == NULL);
    CHECK_INT_EQ(metadata->refcount, 1);
    CHECK_INT_EQ(notify_metadata->refcount, 1);
    hk_connect_msg_clear(&msg); /* a second clear is harmless */
    json_decref(metadata);
    json_decref(notify_metadata);

    /* Metadata that is not an object (any JSON is allowed) is owned the same way. */
    static const char scalar[] = CONNECT_WITH(",\"metadata\":\"token-123\"");
    CHECK_INT_EQ(parse_connect(scalar, sizeof scalar - 1, &msg, &err), 0);
    CHECK_STR_EQ(json_string_value(msg.metadata), "token-123");
    CHECK_INT_EQ(msg.metadata->refcount, 1);
    hk_connect_msg_clear(&msg);

    /* jansson's true/false/null are static values; metadata may be one of them. */
    static const char boolean[] = CONNECT_WITH(",\"metadata\":true");
    CHECK_INT_EQ(parse_connect(boolean, sizeof boolean - 1, &msg, &err), 0);
    CHECK(json_is_true(msg.metadata));
    hk_connect_msg_clear(&msg);
    CHECK(msg.metadata == NULL);

    /* A refusal found after both members were taken releases them (LeakSanitizer would
     * report them otherwise). */
    CONNECT_REFUSED(CONNECT_WITH(",\"metadata\":{\"a\":[1]},"
                                 "\"signaling_notify_metadata\":{\"b\":{}},\"sdp\":1"),
                    "sdp must be a string");
}

TEST(sora_msg_connect_null_members_are_absent)
{
    static const char text[] =
        CONNECT_WITH(",\"client_id\":null,\"e2ee\":null,\"redirect\":null,\"multistream\":null,"
                     "\"audio\":null,\"video\":null,\"metadata\":null,"
                     "\"signaling_notify_metadata\":null,\"sdp\":null");
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(text, sizeof text - 1, &msg, &err), 0);
    CHECK_STR_EQ(msg.client_id, "");
    CHECK(!msg.e2ee);
    CHECK(!msg.redirect);
    CHECK(msg.audio);
    CHECK(msg.video);
    CHECK_STR_EQ(msg.video_codec, "VP8");
    CHECK(msg.metadata == NULL);
    CHECK(msg.signaling_notify_metadata == NULL);
    hk_connect_msg_clear(&msg);
}

TEST(sora_msg_connect_audio_video_forms)
{
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    static const char off[] = CONNECT_WITH(",\"audio\":false,\"video\":false");
    CHECK_INT_EQ(parse_connect(off, sizeof off - 1, &msg, &err), 0);
    CHECK(!msg.audio);
    CHECK(!msg.video);
    hk_connect_msg_clear(&msg);

    static const char on[] = CONNECT_WITH(",\"audio\":true,\"video\":true");
    CHECK_INT_EQ(parse_connect(on, sizeof on - 1, &msg, &err), 0);
    CHECK(msg.audio);
    CHECK(msg.video);
    hk_connect_msg_clear(&msg);

    /* Objects without codec_type keep the defaults. */
    static const char empty[] = CONNECT_WITH(",\"audio\":{},\"video\":{\"bit_rate\":300}");
    CHECK_INT_EQ(parse_connect(empty, sizeof empty - 1, &msg, &err), 0);
    CHECK(msg.audio);
    CHECK(msg.video);
    CHECK_STR_EQ(msg.video_codec, "VP8");
    hk_connect_msg_clear(&msg);

    static const char *const codecs[] = {"VP8", "VP9", "H264", "AV1"};
    for (size_t i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof text, CONNECT_WITH(",\"video\":{\"codec_type\":\"%s\"}"), codecs[i]);
        CHECK_INT_EQ(parse_connect(text, strlen(text), &msg, &err), 0);
        CHECK_STR_EQ(msg.video_codec, codecs[i]);
        hk_connect_msg_clear(&msg);
    }
}

TEST(sora_msg_connect_channel_and_client_id_limits)
{
    /* 255 characters (every printable ASCII character from '!' to '~' is allowed). */
    char id[300];
    for (int i = 0; i < 255; i++)
        id[i] = (char)('!' + i % ('~' - '!' + 1));
    id[255] = '\0';
    CHECK(strchr(id, '"') && strchr(id, '\\'));

    /* Escape '"' and '\\' for JSON. */
    char escaped[600];
    size_t n = 0;
    for (int i = 0; i < 255; i++) {
        if (id[i] == '"' || id[i] == '\\')
            escaped[n++] = '\\';
        escaped[n++] = id[i];
    }
    escaped[n] = '\0';

    char text[1400];
    snprintf(
        text, sizeof text,
        "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"%s\",\"client_id\":\"%s\"}",
        escaped, escaped);
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(text, strlen(text), &msg, &err), 0);
    CHECK_STR_EQ(msg.channel_id, id);
    CHECK_STR_EQ(msg.client_id, id);
    hk_connect_msg_clear(&msg);

    /* 256 characters. */
    memset(id, 'a', 256);
    id[256] = '\0';
    snprintf(text, sizeof text,
             "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"%s\"}", id);
    CONNECT_REFUSED(text, invalid_channel);
    snprintf(text, sizeof text, CONNECT_WITH(",\"client_id\":\"%s\""), id);
    CONNECT_REFUSED(text, invalid_client);
}

TEST(sora_msg_connect_refusals_not_an_object)
{
    CONNECT_REFUSED("", not_json);
    CONNECT_REFUSED("connect", not_json);
    CONNECT_REFUSED("{\"type\":\"connect\"", not_json);
    CONNECT_REFUSED("{\"type\":\"connect\",}", not_json);
    CONNECT_REFUSED("{'type':'connect'}", not_json);
    CONNECT_REFUSED(CONNECT_WITH("") " {}", not_json); /* trailing data */
    /* Top-level scalars are not JSON texts for json_loadb without JSON_DECODE_ANY. */
    CONNECT_REFUSED("\"connect\"", not_json);
    CONNECT_REFUSED("42", not_json);
    CONNECT_REFUSED("null", not_json);
    CONNECT_REFUSED("[]", "message is not a JSON object");
    CONNECT_REFUSED("[{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\"}]",
                    "message is not a JSON object");
    /* Invalid UTF-8 inside a string. */
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"\xff\"}",
                    not_json);

    /* A NUL byte inside the buffer: the length given is honoured, the text is not JSON. */
    static const char with_nul[] = "{\"type\":\"connect\",\0\"role\":\"sendrecv\"}";
    check_connect_refused(with_nul, sizeof with_nul - 1, HK_CLOSE_BAD_REQUEST, not_json);
    /* A valid message cut short by the length. */
    static const char valid[] = CONNECT_WITH("");
    check_connect_refused(valid, sizeof valid - 2, HK_CLOSE_BAD_REQUEST, not_json);
}

TEST(sora_msg_connect_refusals_type)
{
    CONNECT_REFUSED("{}", bad_type);
    CONNECT_REFUSED("{\"role\":\"sendrecv\",\"channel_id\":\"room\"}", bad_type);
    CONNECT_REFUSED("{\"type\":\"answer\",\"sdp\":\"v=0\\r\\n\"}", bad_type);
    CONNECT_REFUSED("{\"type\":\"Connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\"}",
                    bad_type);
    CONNECT_REFUSED("{\"type\":1,\"role\":\"sendrecv\",\"channel_id\":\"room\"}", bad_type);
    CONNECT_REFUSED("{\"type\":null,\"role\":\"sendrecv\",\"channel_id\":\"room\"}", bad_type);
    CONNECT_REFUSED("{\"type\":[\"connect\"],\"role\":\"sendrecv\",\"channel_id\":\"room\"}",
                    bad_type);
}

TEST(sora_msg_connect_refusals_role)
{
    CONNECT_REFUSED("{\"type\":\"connect\",\"channel_id\":\"room\"}", missing_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":1,\"channel_id\":\"room\"}", missing_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":null,\"channel_id\":\"room\"}", missing_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":true,\"channel_id\":\"room\"}", missing_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"\",\"channel_id\":\"room\"}", invalid_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"SENDRECV\",\"channel_id\":\"room\"}",
                    invalid_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"upstream\",\"channel_id\":\"room\"}",
                    invalid_role);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv \",\"channel_id\":\"room\"}",
                    invalid_role);
}

TEST(sora_msg_connect_refusals_channel_id)
{
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\"}", missing_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":1}",
                    missing_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":null}",
                    missing_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":{}}",
                    missing_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"my room\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\" room\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\\t\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"a\\u0001b\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"a\\u007fb\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"caf\\u00e9\"}",
                    invalid_channel);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"caf\xc3\xa9\"}",
                    invalid_channel);
    /* jansson refuses \u0000 unless JSON_ALLOW_NUL is given, so an embedded NUL (which
     * would truncate the id in C) never reaches the validation. */
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\\u0000x\"}",
                    not_json);
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"\\u0000\"}",
                    not_json);
}

TEST(sora_msg_connect_refusals_client_id)
{
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":1"), invalid_client);
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":false"), invalid_client);
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":[]"), invalid_client);
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":\"\""), invalid_client);
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":\"a b\""), invalid_client);
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":\"a\\nb\""), invalid_client);
    CONNECT_REFUSED(CONNECT_WITH(",\"client_id\":\"a\\u0000b\""), not_json);
}

TEST(sora_msg_connect_refusals_booleans)
{
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":\"true\""), not_bool);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":1"), not_bool);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":{}"), not_bool);
    CONNECT_REFUSED(CONNECT_WITH(",\"redirect\":1"), not_bool);
    CONNECT_REFUSED(CONNECT_WITH(",\"multistream\":\"yes\""), not_bool);
    CONNECT_REFUSED(CONNECT_WITH(",\"multistream\":false"), "multistream false is not supported");
}

/* docs/protocol.md §6.5: e2ee_protocol "mls", only with e2ee true; null is absent. */
TEST(sora_msg_connect_e2ee_protocol)
{
    static const char mls[] = CONNECT_WITH(",\"e2ee\":true,\"e2ee_protocol\":\"mls\"");
    static const char absent[] = CONNECT_WITH(",\"e2ee\":true,\"e2ee_protocol\":null");
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(mls, sizeof mls - 1, &msg, &err), 0);
    CHECK(msg.e2ee && msg.e2ee_mls);
    hk_connect_msg_clear(&msg);
    CHECK_INT_EQ(parse_connect(absent, sizeof absent - 1, &msg, &err), 0);
    CHECK(msg.e2ee && !msg.e2ee_mls);
    hk_connect_msg_clear(&msg);
    static const char value[] = "INVALID-E2EE-PROTOCOL: e2ee_protocol must be \"mls\" when present";
    static const char needs[] = "INVALID-E2EE-PROTOCOL: e2ee_protocol needs \"e2ee\": true";
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee_protocol\":\"mls\""), needs);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":false,\"e2ee_protocol\":\"mls\""), needs);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":true,\"e2ee_protocol\":\"MLS\""), value);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":true,\"e2ee_protocol\":\"mls\\u0000\""), not_json);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":true,\"e2ee_protocol\":1"), value);
    CONNECT_REFUSED(CONNECT_WITH(",\"e2ee\":true,\"e2ee_protocol\":\"\""), value);
}

TEST(sora_msg_connect_refusals_audio_video)
{
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":1"), "audio must be a boolean or an object");
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":\"OPUS\""), "audio must be a boolean or an object");
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":[]"), "audio must be a boolean or an object");
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":{\"codec_type\":\"AAC\"}"),
                    "audio.codec_type must be \"OPUS\"");
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":{\"codec_type\":\"opus\"}"),
                    "audio.codec_type must be \"OPUS\"");
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":{\"codec_type\":111}"),
                    "audio.codec_type must be \"OPUS\"");
    CONNECT_REFUSED(CONNECT_WITH(",\"audio\":{\"codec_type\":null}"),
                    "audio.codec_type must be \"OPUS\"");
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":0"), "video must be a boolean or an object");
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":\"VP8\""), "video must be a boolean or an object");
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":\"H265\"}"), bad_video_codec);
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":\"vp8\"}"), bad_video_codec);
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":\"VP8 \"}"), bad_video_codec);
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":\"\"}"), bad_video_codec);
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":8}"), bad_video_codec);
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":null}"), bad_video_codec);
    CONNECT_REFUSED(CONNECT_WITH(",\"video\":{\"codec_type\":\"VP8VP8VP8VP8\"}"), bad_video_codec);
}

TEST(sora_msg_connect_refusals_metadata_and_sdp)
{
    static const char not_object[] = "signaling_notify_metadata must be an object";
    CONNECT_REFUSED(CONNECT_WITH(",\"signaling_notify_metadata\":\"x\""), not_object);
    CONNECT_REFUSED(CONNECT_WITH(",\"signaling_notify_metadata\":[]"), not_object);
    CONNECT_REFUSED(CONNECT_WITH(",\"signaling_notify_metadata\":1"), not_object);
    CONNECT_REFUSED(CONNECT_WITH(",\"signaling_notify_metadata\":true"), not_object);
    CONNECT_REFUSED(CONNECT_WITH(",\"sdp\":1"), "sdp must be a string");
    CONNECT_REFUSED(CONNECT_WITH(",\"sdp\":{\"type\":\"offer\"}"), "sdp must be a string");
    CONNECT_REFUSED(CONNECT_WITH(",\"metadata\":{\"a\":1},\"sdp\":false"), "sdp must be a string");
}

TEST(sora_msg_connect_refusals_duplicate_keys)
{
    CONNECT_REFUSED("{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"a\","
                    "\"channel_id\":\"b\"}",
                    not_json);
    CONNECT_REFUSED("{\"type\":\"connect\",\"type\":\"connect\",\"role\":\"sendrecv\","
                    "\"channel_id\":\"a\"}",
                    not_json);
    /* Duplicates are refused at any depth. */
    CONNECT_REFUSED(CONNECT_WITH(",\"metadata\":{\"k\":1,\"k\":2}"), not_json);
}

/* 10,000 levels of arrays inside metadata: jansson's parser stops at 2048 levels, so the
 * message is refused as invalid JSON without exhausting the stack. */
TEST(sora_msg_connect_deep_nesting)
{
    const size_t depth = 10000;
    static const char head[] =
        "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\","
        "\"metadata\":";
    size_t len = strlen(head) + 2 * depth + 1;
    char *text = malloc(len + 1);
    CHECK(text != NULL);
    char *p = text;
    memcpy(p, head, strlen(head));
    p += strlen(head);
    memset(p, '[', depth);
    p += depth;
    memset(p, ']', depth);
    p += depth;
    *p++ = '}';
    *p = '\0';
    CHECK_INT_EQ((size_t)(p - text), len);
    CONNECT_REFUSED(text, not_json);

    /* The same nesting left unclosed. */
    text[strlen(head) + depth] = '\0';
    CONNECT_REFUSED(text, not_json);
    free(text);

    /* 1000 levels are within jansson's limit: accepted, owned and released. */
    const size_t ok_depth = 1000;
    len = strlen(head) + 2 * ok_depth + 1;
    text = malloc(len + 1);
    CHECK(text != NULL);
    p = text;
    memcpy(p, head, strlen(head));
    p += strlen(head);
    memset(p, '[', ok_depth);
    p += ok_depth;
    memset(p, ']', ok_depth);
    p += ok_depth;
    *p++ = '}';
    *p = '\0';
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(text, len, &msg, &err), 0);
    CHECK(json_is_array(msg.metadata));
    hk_connect_msg_clear(&msg);
    free(text);
}

/* A 1 MiB string: the parser accepts it (the WebSocket layer enforces size limits). */
TEST(sora_msg_connect_huge_string)
{
    const size_t big = 1024 * 1024;
    static const char head[] =
        "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"room\","
        "\"metadata\":{\"blob\":\"";
    static const char tail[] = "\"}}";
    size_t len = strlen(head) + big + strlen(tail);
    char *text = malloc(len);
    CHECK(text != NULL);
    memcpy(text, head, strlen(head));
    memset(text + strlen(head), 'x', big);
    memcpy(text + strlen(head) + big, tail, strlen(tail));

    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(text, len, &msg, &err), 0);
    json_t *blob = json_object_get(msg.metadata, "blob");
    CHECK_INT_EQ(json_string_length(blob), big);
    hk_connect_msg_clear(&msg);

    /* A 1 MiB channel_id is refused by its length check. */
    static const char head2[] = "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"";
    static const char tail2[] = "\"}";
    len = strlen(head2) + big + strlen(tail2);
    free(text);
    text = malloc(len);
    CHECK(text != NULL);
    memcpy(text, head2, strlen(head2));
    memset(text + strlen(head2), 'x', big);
    memcpy(text + strlen(head2) + big, tail2, strlen(tail2));
    check_connect_refused(text, len, HK_CLOSE_BAD_REQUEST, invalid_channel);
    free(text);
}

/* ---- messages after connect --------------------------------------------------------- */

static int parse_message(const char *text, hk_sora_msg_t *msg, hk_sora_error_t *err)
{
    err->close_code = 0;
    err->reason = NULL;
    return hk_sora_parse_message(text, strlen(text), msg, err);
}

static void check_message_refused(const char *text, const char *reason)
{
    hk_sora_msg_t msg;
    hk_sora_error_t err;
    int rc = parse_message(text, &msg, &err);
    if (rc != HK_EINVAL)
        fprintf(stderr, "accepted: %.200s\n", text);
    CHECK_INT_EQ(rc, HK_EINVAL);
    CHECK_INT_EQ(err.close_code, HK_CLOSE_BAD_REQUEST);
    CHECK_STR_EQ(err.reason, reason);
    CHECK(msg.root == NULL);
    CHECK(msg.sdp == NULL);
    hk_sora_msg_clear(&msg);
}

static void check_message_type(const char *text, hk_msg_type_t type)
{
    hk_sora_msg_t msg;
    hk_sora_error_t err;
    int rc = parse_message(text, &msg, &err);
    if (rc != 0)
        fprintf(stderr, "refused: %.200s: %s\n", text, err.reason);
    CHECK_INT_EQ(rc, 0);
    CHECK_INT_EQ(msg.type, type);
    CHECK(msg.root != NULL);
    hk_sora_msg_clear(&msg);
    CHECK(msg.root == NULL);
}

TEST(sora_msg_answer_sdp)
{
    static const struct {
        const char *text;
        hk_msg_type_t type;
    } cases[] = {
        {"{\"type\":\"answer\",\"sdp\":\"v=0\\r\\na=mid:0\\r\\n\"}", HK_MSG_ANSWER},
        {"{\"type\":\"re-answer\",\"sdp\":\"v=0\\r\\na=mid:0\\r\\n\"}", HK_MSG_RE_ANSWER},
        {"{\"sdp\":\"v=0\\r\\na=mid:0\\r\\n\",\"type\":\"update\"}", HK_MSG_RE_ANSWER},
    };
    static const char sdp[] = "v=0\r\na=mid:0\r\n";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hk_sora_msg_t msg;
        hk_sora_error_t err;
        CHECK_INT_EQ(parse_message(cases[i].text, &msg, &err), 0);
        CHECK_INT_EQ(msg.type, cases[i].type);
        CHECK(msg.sdp != NULL);
        CHECK_INT_EQ(msg.sdp_len, sizeof sdp - 1);
        CHECK_MEM_EQ(msg.sdp, sdp, sizeof sdp);
        /* sdp lives in root. */
        CHECK(msg.sdp == json_string_value(json_object_get(msg.root, "sdp")));
        CHECK(msg.reason == NULL);
        hk_sora_msg_clear(&msg);
        CHECK(msg.root == NULL && msg.sdp == NULL && msg.sdp_len == 0);
    }
}

TEST(sora_msg_answer_refusals)
{
    static const char no_sdp[] = "answer without a string sdp";
    check_message_refused("{\"type\":\"answer\"}", no_sdp);
    check_message_refused("{\"type\":\"answer\",\"sdp\":\"\"}", no_sdp);
    check_message_refused("{\"type\":\"answer\",\"sdp\":1}", no_sdp);
    check_message_refused("{\"type\":\"answer\",\"sdp\":null}", no_sdp);
    check_message_refused("{\"type\":\"answer\",\"sdp\":[\"v=0\"]}", no_sdp);
    check_message_refused("{\"type\":\"re-answer\",\"sdp\":\"\"}", no_sdp);
    check_message_refused("{\"type\":\"re-answer\",\"sdp\":{}}", no_sdp);
    check_message_refused("{\"type\":\"update\"}", no_sdp);
    check_message_refused("{\"type\":\"answer\",\"sdp\":\"v=0\\u0000\"}", not_json);
}

TEST(sora_msg_candidate)
{
    /* sora-js-sdk form, C++ SDK form, end-of-candidates forms. */
    check_message_type("{\"type\":\"candidate\",\"candidate\":\"candidate:1 1 udp 2122260223 "
                       "192.0.2.1 54321 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,"
                       "\"usernameFragment\":\"abcd\"}",
                       HK_MSG_CANDIDATE);
    check_message_type("{\"type\":\"candidate\",\"candidate\":\"candidate:1 1 udp 1 192.0.2.1 9 "
                       "typ host\"}",
                       HK_MSG_CANDIDATE);
    check_message_type("{\"type\":\"candidate\",\"candidate\":\"\"}", HK_MSG_CANDIDATE);
    check_message_type("{\"type\":\"candidate\"}", HK_MSG_CANDIDATE);
    check_message_type("{\"type\":\"candidate\",\"candidate\":null}", HK_MSG_CANDIDATE);
    check_message_refused("{\"type\":\"candidate\",\"candidate\":1}", "candidate must be a string");
    check_message_refused("{\"type\":\"candidate\",\"candidate\":{\"candidate\":\"x\"}}",
                          "candidate must be a string");
}

TEST(sora_msg_pong_stats_disconnect)
{
    check_message_type("{\"type\":\"pong\"}", HK_MSG_PONG);
    check_message_type("{\"type\":\"pong\",\"stats\":[{\"type\":\"inbound-rtp\",\"ssrc\":1}]}",
                       HK_MSG_PONG);
    check_message_type("{\"type\":\"stats\",\"reports\":[]}", HK_MSG_STATS);

    hk_sora_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_message("{\"type\":\"disconnect\",\"reason\":\"NO-ERROR\"}", &msg, &err), 0);
    CHECK_INT_EQ(msg.type, HK_MSG_DISCONNECT);
    CHECK_STR_EQ(msg.reason, "NO-ERROR");
    hk_sora_msg_clear(&msg);
    CHECK(msg.reason == NULL);

    CHECK_INT_EQ(parse_message("{\"type\":\"disconnect\"}", &msg, &err), 0);
    CHECK_INT_EQ(msg.type, HK_MSG_DISCONNECT);
    CHECK(msg.reason == NULL);
    hk_sora_msg_clear(&msg);

    CHECK_INT_EQ(parse_message("{\"type\":\"disconnect\",\"reason\":42}", &msg, &err), 0);
    CHECK_INT_EQ(msg.type, HK_MSG_DISCONNECT);
    CHECK(msg.reason == NULL);
    hk_sora_msg_clear(&msg);
}

TEST(sora_msg_message_refusals)
{
    check_message_refused(sdk_connect, "connect was already received");
    check_message_refused(CONNECT_WITH(""), "connect was already received");
    check_message_refused("{\"type\":\"connect\"}", "connect was already received");
    check_message_refused("{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}", "unknown message type");
    check_message_refused("{\"type\":\"re-offer\",\"sdp\":\"v=0\\r\\n\"}", "unknown message type");
    check_message_refused("{\"type\":\"ping\"}", "unknown message type");
    check_message_refused("{\"type\":\"\"}", "unknown message type");
    check_message_refused("{\"type\":\"PONG\"}", "unknown message type");
    check_message_refused("{}", "message has no string \"type\"");
    check_message_refused("{\"type\":1}", "message has no string \"type\"");
    check_message_refused("{\"type\":null}", "message has no string \"type\"");
    check_message_refused("{\"type\":[\"pong\"]}", "message has no string \"type\"");
    check_message_refused("", not_json);
    check_message_refused("pong", not_json);
    check_message_refused("{\"type\":\"pong\",\"type\":\"pong\"}", not_json);
    check_message_refused("[{\"type\":\"pong\"}]", "message is not a JSON object");
}

/* ---- builders ----------------------------------------------------------------------- */

/* Checks that text is the exact expected JSON and that it parses back to an object. */
static void check_json_text(char *text, const char *expected)
{
    CHECK(text != NULL);
    CHECK_STR_EQ(text, expected);
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    CHECK(json_is_object(root));
    json_decref(root);
    free(text);
}

static const char offer_sdp[] = "v=0\r\no=hisoka 1 1 IN IP4 0.0.0.0\r\ns=-\r\n";
#define OFFER_SDP_JSON "v=0\\r\\no=hisoka 1 1 IN IP4 0.0.0.0\\r\\ns=-\\r\\n"
#define CONN_A         "0123456789ABCDEFGHJKMNPQRS"
#define CONN_B         "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
#define CONN_C         "01ARZ3NDEKTSV4RRFFQ69G5FAV"

TEST(sora_msg_build_offer)
{
    hk_offer_msg_t offer = {
        .sdp = offer_sdp,
        .client_id = "alice",
        .connection_id = CONN_A,
        .channel_id = "room",
        .audio_mid = "0",
        .video_mid = "1",
        .authn_metadata = NULL,
    };
    check_json_text(hk_sora_build_offer(&offer),
                    "{\"type\":\"offer\",\"sdp\":\"" OFFER_SDP_JSON "\",\"client_id\":\"alice\","
                    "\"connection_id\":\"" CONN_A "\",\"channel_id\":\"room\","
                    "\"multistream\":true,\"simulcast\":false,\"spotlight\":false,"
                    "\"config\":{\"iceServers\":[],\"iceTransportPolicy\":\"all\"},"
                    "\"mid\":{\"audio\":\"0\",\"video\":\"1\"}}");

    /* A recvonly connection sends nothing: mid is an empty object. */
    offer.audio_mid = NULL;
    offer.video_mid = NULL;
    check_json_text(hk_sora_build_offer(&offer),
                    "{\"type\":\"offer\",\"sdp\":\"" OFFER_SDP_JSON "\",\"client_id\":\"alice\","
                    "\"connection_id\":\"" CONN_A "\",\"channel_id\":\"room\","
                    "\"multistream\":true,\"simulcast\":false,\"spotlight\":false,"
                    "\"config\":{\"iceServers\":[],\"iceTransportPolicy\":\"all\"},"
                    "\"mid\":{}}");

    /* Video only, with authn metadata (copied: the caller's value is untouched). */
    json_t *authn = json_pack("{s:s,s:[i,b]}", "user", "alice", "groups", 7, 1);
    CHECK(authn != NULL);
    offer.video_mid = "v0";
    offer.authn_metadata = authn;
    check_json_text(hk_sora_build_offer(&offer),
                    "{\"type\":\"offer\",\"sdp\":\"" OFFER_SDP_JSON "\",\"client_id\":\"alice\","
                    "\"connection_id\":\"" CONN_A "\",\"channel_id\":\"room\","
                    "\"multistream\":true,\"simulcast\":false,\"spotlight\":false,"
                    "\"metadata\":{\"user\":\"alice\",\"groups\":[7,true]},"
                    "\"config\":{\"iceServers\":[],\"iceTransportPolicy\":\"all\"},"
                    "\"mid\":{\"video\":\"v0\"}}");
    CHECK_INT_EQ(authn->refcount, 1);

    /* Audio only. */
    offer.audio_mid = "a";
    offer.video_mid = NULL;
    offer.authn_metadata = NULL;
    char *text = hk_sora_build_offer(&offer);
    CHECK(text != NULL);
    json_t *root = json_loads(text, 0, NULL);
    CHECK(root != NULL);
    json_t *mid = json_object_get(root, "mid");
    CHECK_INT_EQ(json_object_size(mid), 1);
    CHECK_STR_EQ(json_string_value(json_object_get(mid, "audio")), "a");
    CHECK(json_object_get(root, "metadata") == NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(root, "sdp")), offer_sdp);
    json_decref(root);
    free(text);
    json_decref(authn);
}

TEST(sora_msg_build_reoffer_and_ping)
{
    check_json_text(hk_sora_build_reoffer(offer_sdp),
                    "{\"type\":\"re-offer\",\"sdp\":\"" OFFER_SDP_JSON "\"}");
    /* Characters JSON must escape. */
    check_json_text(hk_sora_build_reoffer("a\"b\\c\td"),
                    "{\"type\":\"re-offer\",\"sdp\":\"a\\\"b\\\\c\\td\"}");
    CHECK(hk_sora_build_reoffer(NULL) == NULL);
    check_json_text(hk_sora_build_ping(), "{\"type\":\"ping\",\"stats\":false}");
}

TEST(sora_msg_build_notify_created_with_data)
{
    json_t *alice_meta = json_pack("{s:s}", "name", "Alice");
    json_t *alice_authn = json_pack("{s:i}", "uid", 1);
    json_t *bob_meta =
        json_pack("{s:s,s:{s:s}}", "name", "Bob", "pre_key_bundle", "identityKey", "aWQ=");
    CHECK(alice_meta && alice_authn && bob_meta);

    hk_notify_conn_t self = {
        .role = HK_ROLE_SENDRECV,
        .client_id = "alice",
        .connection_id = CONN_A,
        .audio = true,
        .video = false,
        .minutes = 0,
        .metadata = alice_meta,
        .authn_metadata = alice_authn,
    };
    hk_notify_conn_t existing[2] = {
        {
            .role = HK_ROLE_SENDONLY,
            .client_id = "bob",
            .connection_id = CONN_B,
            .audio = true,
            .video = true,
            .minutes = 3,
            .metadata = bob_meta,
            .authn_metadata = NULL,
        },
        {
            .role = HK_ROLE_RECVONLY,
            .client_id = CONN_C,
            .connection_id = CONN_C,
            .metadata = NULL,
            .authn_metadata = NULL,
        },
    };
    hk_channel_counts_t counts = {.connections = 3, .sendrecv = 1, .sendonly = 1, .recvonly = 1};

#define BOB_ENTRY                                                                                  \
    "{\"connection_id\":\"" CONN_B "\",\"client_id\":\"bob\","                                     \
    "\"metadata\":{\"name\":\"Bob\",\"pre_key_bundle\":{\"identityKey\":\"aWQ=\"}}}"
#define CAROL_ENTRY                                                                                \
    "{\"connection_id\":\"" CONN_C "\",\"client_id\":\"" CONN_C "\","                              \
    "\"metadata\":null}"

    char *text = hk_sora_build_notify("connection.created", "room", &self, &counts, true, existing,
                                      2, false);
    check_json_text(text, "{\"type\":\"notify\",\"event_type\":\"connection.created\","
                          "\"role\":\"sendrecv\",\"client_id\":\"alice\","
                          "\"connection_id\":\"" CONN_A "\",\"channel_id\":\"room\","
                          "\"audio\":true,\"video\":false,\"minutes\":0,"
                          "\"channel_connections\":3,\"channel_sendrecv_connections\":1,"
                          "\"channel_sendonly_connections\":1,\"channel_recvonly_connections\":1,"
                          "\"metadata\":{\"name\":\"Alice\"},\"authn_metadata\":{\"uid\":1},"
                          "\"data\":[" BOB_ENTRY "," CAROL_ENTRY "]}");
    /* One list only: a legacy client gets it as metadata_list. */
    text =
        hk_sora_build_notify("connection.created", "room", &self, &counts, true, existing, 2, true);
    CHECK(strstr(text, "\"metadata_list\":[" BOB_ENTRY "," CAROL_ENTRY "]}") != NULL);
    CHECK(strstr(text, "\"data\"") == NULL);
    free(text);

    /* The first joiner: data and metadata_list are present and empty. */
    counts = (hk_channel_counts_t){.connections = 1, .sendrecv = 1};
    text =
        hk_sora_build_notify("connection.created", "room", &self, &counts, true, &self, 0, false);
    check_json_text(text, "{\"type\":\"notify\",\"event_type\":\"connection.created\","
                          "\"role\":\"sendrecv\",\"client_id\":\"alice\","
                          "\"connection_id\":\"" CONN_A "\",\"channel_id\":\"room\","
                          "\"audio\":true,\"video\":false,\"minutes\":0,"
                          "\"channel_connections\":1,\"channel_sendrecv_connections\":1,"
                          "\"channel_sendonly_connections\":0,\"channel_recvonly_connections\":0,"
                          "\"metadata\":{\"name\":\"Alice\"},\"authn_metadata\":{\"uid\":1},"
                          "\"data\":[]}");

    /* The builder copies: the callers' values keep their single reference. */
    CHECK_INT_EQ(alice_meta->refcount, 1);
    CHECK_INT_EQ(alice_authn->refcount, 1);
    CHECK_INT_EQ(bob_meta->refcount, 1);
    json_decref(alice_meta);
    json_decref(alice_authn);
    json_decref(bob_meta);
#undef BOB_ENTRY
#undef CAROL_ENTRY
}

TEST(sora_msg_build_notify_destroyed_and_updated)
{
    json_t *meta = json_pack("{s:s}", "name", "Bob");
    CHECK(meta != NULL);
    hk_notify_conn_t bob = {
        .role = HK_ROLE_SENDONLY,
        .client_id = "bob",
        .connection_id = CONN_B,
        .audio = false,
        .video = true,
        .minutes = 125,
        .metadata = meta,
        .authn_metadata = NULL,
    };
    hk_channel_counts_t counts = {.connections = 2, .sendrecv = 2, .sendonly = 0, .recvonly = 0};

    /* destroyed: metadata; no authn_metadata key when the webhook gave none (never null:
     * sora-js-sdk would look for the E2EE pre_key_bundle in it); no data. */
    check_json_text(
        hk_sora_build_notify("connection.destroyed", "room", &bob, &counts, true, NULL, 0, false),
        "{\"type\":\"notify\",\"event_type\":\"connection.destroyed\","
        "\"role\":\"sendonly\",\"client_id\":\"bob\","
        "\"connection_id\":\"" CONN_B "\",\"channel_id\":\"room\","
        "\"audio\":false,\"video\":true,\"minutes\":125,"
        "\"channel_connections\":2,\"channel_sendrecv_connections\":2,"
        "\"channel_sendonly_connections\":0,\"channel_recvonly_connections\":0,"
        "\"metadata\":{\"name\":\"Bob\"}}");

    /* include_metadata false (signaling_notify_metadata = false in the config, or
     * connection.updated): neither key appears. */
    check_json_text(
        hk_sora_build_notify("connection.created", "room", &bob, &counts, false, NULL, 0, false),
        "{\"type\":\"notify\",\"event_type\":\"connection.created\","
        "\"role\":\"sendonly\",\"client_id\":\"bob\","
        "\"connection_id\":\"" CONN_B "\",\"channel_id\":\"room\","
        "\"audio\":false,\"video\":true,\"minutes\":125,"
        "\"channel_connections\":2,\"channel_sendrecv_connections\":2,"
        "\"channel_sendonly_connections\":0,\"channel_recvonly_connections\":0}");

    char *text =
        hk_sora_build_notify("connection.updated", "room", &bob, &counts, false, NULL, 0, false);
    CHECK(text != NULL);
    json_t *root = json_loads(text, 0, NULL);
    CHECK(root != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(root, "event_type")), "connection.updated");
    CHECK(json_object_get(root, "metadata") == NULL);
    CHECK(json_object_get(root, "authn_metadata") == NULL);
    CHECK(json_object_get(root, "data") == NULL);
    CHECK(json_object_get(root, "metadata_list") == NULL);
    CHECK_INT_EQ(json_object_size(root), 13);
    json_decref(root);
    free(text);

    /* No metadata at all: metadata is null, authn_metadata absent. */
    bob.metadata = NULL;
    text =
        hk_sora_build_notify("connection.destroyed", "room", &bob, &counts, true, NULL, 0, false);
    CHECK(text != NULL);
    root = json_loads(text, 0, NULL);
    CHECK(json_is_null(json_object_get(root, "metadata")));
    CHECK(json_object_get(root, "authn_metadata") == NULL);
    json_decref(root);
    free(text);

    CHECK_INT_EQ(meta->refcount, 1);
    json_decref(meta);
}

/* A connect parsed from a client feeds the builders: its metadata round-trips into the
 * offer and the notify unchanged. */
TEST(sora_msg_connect_metadata_round_trip)
{
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(parse_connect(sdk_connect, sizeof sdk_connect - 1, &msg, &err), 0);

    hk_offer_msg_t offer = {
        .sdp = offer_sdp,
        .client_id = msg.client_id,
        .connection_id = CONN_A,
        .channel_id = msg.channel_id,
        .audio_mid = "0",
        .video_mid = "1",
        .authn_metadata = msg.metadata,
    };
    char *text = hk_sora_build_offer(&offer);
    CHECK(text != NULL);
    json_t *root = json_loads(text, 0, NULL);
    CHECK(json_equal(json_object_get(root, "metadata"), msg.metadata));
    CHECK_STR_EQ(json_string_value(json_object_get(root, "client_id")), "alice@example.com");
    CHECK_STR_EQ(json_string_value(json_object_get(root, "channel_id")), "sora-devtools_room-01");
    json_decref(root);
    free(text);

    hk_notify_conn_t conn = {
        .role = msg.role,
        .client_id = msg.client_id,
        .connection_id = CONN_A,
        .audio = msg.audio,
        .video = msg.video,
        .metadata = msg.signaling_notify_metadata,
        .authn_metadata = msg.metadata,
    };
    hk_channel_counts_t counts = {.connections = 1, .sendrecv = 1};
    text = hk_sora_build_notify("connection.created", msg.channel_id, &conn, &counts, true, &conn,
                                0, false);
    CHECK(text != NULL);
    root = json_loads(text, 0, NULL);
    CHECK(json_equal(json_object_get(root, "metadata"), msg.signaling_notify_metadata));
    CHECK(json_equal(json_object_get(root, "authn_metadata"), msg.metadata));
    json_decref(root);
    free(text);

    CHECK_INT_EQ(msg.metadata->refcount, 1);
    CHECK_INT_EQ(msg.signaling_notify_metadata->refcount, 1);
    hk_connect_msg_clear(&msg);
}

/* ---- legacy renegotiation: update instead of re-offer -------------------------------- */

TEST(sora_msg_sora_client_uses_update)
{
    /* The sora_client strings of sora-js-sdk 2020.6.2 (dist/sora.mjs createSignalingMessage),
     * older SDKs, and the SDKs that know re-offer (2023.1.0 and 2026.1.0 handle both). */
    CHECK(hk_sora_client_uses_update("Sora JavaScript SDK 2020.6.2"));
    CHECK(hk_sora_client_uses_update("Sora JavaScript SDK 2020.1.3"));
    CHECK(hk_sora_client_uses_update("Sora JavaScript SDK 1.16.0"));
    CHECK(hk_sora_client_uses_update("Sora JavaScript SDK 2020.6.2-dev"));
    CHECK(hk_sora_client_uses_update("Sora iOS SDK 2020.7.1 (3f2e1a)"));
    CHECK(hk_sora_client_uses_update("Sora Android SDK 2.3.0"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK 2023.1.0"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK 2021.1.0"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK 2026.1.0"));
    CHECK(!hk_sora_client_uses_update("Sora C++ SDK 2024.8.0 (m128)"));
    /* Not a Sora SDK, or no readable version: the default, re-offer. */
    CHECK(!hk_sora_client_uses_update(NULL));
    CHECK(!hk_sora_client_uses_update(""));
    CHECK(!hk_sora_client_uses_update("hisoka 1.0"));
    CHECK(!hk_sora_client_uses_update("WebRTC Native Client Momo 2020.1 (x)"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK "));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK 2020"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK v2020.6.2"));
    CHECK(!hk_sora_client_uses_update("Sora JavaScript SDK 99999999999999999999.1"));
    CHECK(!hk_sora_client_uses_update("sora javascript sdk 2020.6.2"));
}

TEST(sora_msg_connect_legacy_update)
{
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    static const char old[] =
        CONNECT_WITH(",\"sora_client\":\"Sora JavaScript SDK 2020.6.2\",\"e2ee\":true");
    CHECK_INT_EQ(parse_connect(old, sizeof old - 1, &msg, &err), 0);
    CHECK(msg.legacy_update);
    hk_connect_msg_clear(&msg);

    CHECK_INT_EQ(parse_connect(sdk_connect, sizeof sdk_connect - 1, &msg, &err), 0);
    CHECK(!msg.legacy_update);
    hk_connect_msg_clear(&msg);

    /* Absent, null or not a string: ignored, like every field hisoka does not need. */
    static const char *const others[] = {
        CONNECT_WITH(""),
        CONNECT_WITH(",\"sora_client\":null"),
        CONNECT_WITH(",\"sora_client\":2020"),
        CONNECT_WITH(",\"sora_client\":[\"Sora JavaScript SDK 2020.6.2\"]"),
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        CHECK_INT_EQ(parse_connect(others[i], strlen(others[i]), &msg, &err), 0);
        CHECK(!msg.legacy_update);
        hk_connect_msg_clear(&msg);
    }
}

TEST(sora_msg_build_update_and_its_answer)
{
    check_json_text(hk_sora_build_update("v=0\r\n"), "{\"type\":\"update\",\"sdp\":\"v=0\\r\\n\"}");
    CHECK(hk_sora_build_update(NULL) == NULL);

    /* The legacy client answers an update with an update: taken as a re-answer. */
    static const char answer[] = "{\"type\":\"update\",\"sdp\":\"v=0\\r\\n\"}";
    hk_sora_msg_t msg;
    hk_sora_error_t err;
    CHECK_INT_EQ(hk_sora_parse_message(answer, sizeof answer - 1, &msg, &err), 0);
    CHECK_INT_EQ(msg.type, HK_MSG_RE_ANSWER);
    CHECK_INT_EQ(msg.sdp_len, 5);
    CHECK_MEM_EQ(msg.sdp, "v=0\r\n", 5);
    hk_sora_msg_clear(&msg);
}

/* ---- authn_metadata in notify (Sora Gen-2 E2EE) --------------------------------------- */

/* What sora-js-sdk 2020.6.2 and 2023.1.0 do with a notify (getSignalingNotifyAuthnMetadata,
 * getPreKeyBundle): authn_metadata when the key is present, else metadata; then its
 * pre_key_bundle member, if it is an object that has one. */
static const json_t *sdk_pre_key_bundle(const json_t *notify)
{
    json_t *source = json_object_get(notify, "authn_metadata");
    if (!source)
        source = json_object_get(notify, "metadata");
    return json_is_object(source) ? json_object_get(source, "pre_key_bundle") : NULL;
}

static json_t *notify_json(const hk_notify_conn_t *conn)
{
    hk_channel_counts_t counts = {.connections = 2, .sendrecv = 2};
    char *text =
        hk_sora_build_notify("connection.created", "room", conn, &counts, true, conn, 1, false);
    CHECK(text != NULL);
    json_t *root = json_loads(text, 0, NULL);
    CHECK(root != NULL);
    free(text);
    return root;
}

TEST(sora_msg_notify_authn_metadata_and_pre_key_bundle)
{
    json_t *bundle = json_pack("{s:s,s:s,s:s}", "identityKey", "aWQ=", "signedPreKey", "c3Br",
                               "preKeySignature", "c2ln");
    json_t *meta = json_pack("{s:s,s:O}", "name", "Alice", "pre_key_bundle", bundle);
    json_t *authn_object = json_pack("{s:s,s:i}", "user", "alice", "level", 3);
    json_t *authn_string = json_string("alice");
    json_t *authn_own_bundle = json_pack("{s:s,s:{s:s}}", "user", "alice", "pre_key_bundle",
                                         "identityKey", "dm91Y2hlZA==");
    CHECK(bundle && meta && authn_object && authn_string && authn_own_bundle);
    hk_notify_conn_t conn = {
        .role = HK_ROLE_SENDRECV,
        .client_id = "alice",
        .connection_id = CONN_A,
        .audio = true,
        .video = true,
        .e2ee = true,
        .metadata = meta,
    };

    /* 1. No authn_metadata: the key is absent in the event and in its data entry, and
     * the SDK finds the bundle in metadata. */
    json_t *root = notify_json(&conn);
    json_t *entry = json_array_get(json_object_get(root, "data"), 0);
    CHECK(json_object_get(root, "authn_metadata") == NULL);
    CHECK(json_object_get(entry, "authn_metadata") == NULL);
    CHECK(json_equal(sdk_pre_key_bundle(root), bundle));
    CHECK(json_equal(sdk_pre_key_bundle(entry), bundle));
    CHECK(hk_sora_notify_authn_metadata(&conn) == NULL);
    json_decref(root);

    /* 2. An object from the webhook: its members plus the client's pre_key_bundle. */
    conn.authn_metadata = authn_object;
    root = notify_json(&conn);
    entry = json_array_get(json_object_get(root, "data"), 0);
    json_t *expected =
        json_pack("{s:s,s:i,s:O}", "user", "alice", "level", 3, "pre_key_bundle", bundle);
    CHECK(json_equal(json_object_get(root, "authn_metadata"), expected));
    CHECK(json_equal(json_object_get(entry, "authn_metadata"), expected));
    CHECK(json_equal(sdk_pre_key_bundle(root), bundle));
    CHECK(json_equal(sdk_pre_key_bundle(entry), bundle));
    CHECK(json_equal(json_object_get(root, "metadata"), meta));
    json_decref(expected);
    json_decref(root);
    /* The webhook's value itself is not changed. */
    CHECK(json_object_get(authn_object, "pre_key_bundle") == NULL);
    CHECK_INT_EQ(json_object_size(authn_object), 2);

    /* 3. A webhook that sets pre_key_bundle itself vouches for it: kept as it is. */
    conn.authn_metadata = authn_own_bundle;
    root = notify_json(&conn);
    CHECK(json_equal(json_object_get(root, "authn_metadata"), authn_own_bundle));
    CHECK_STR_EQ(json_string_value(json_object_get(sdk_pre_key_bundle(root), "identityKey")),
                 "dm91Y2hlZA==");
    json_decref(root);

    /* 4. Not an object: it cannot carry the bundle, so it is left out of notify and the
     * SDK reads metadata. */
    conn.authn_metadata = authn_string;
    root = notify_json(&conn);
    entry = json_array_get(json_object_get(root, "data"), 0);
    CHECK(json_object_get(root, "authn_metadata") == NULL);
    CHECK(json_object_get(entry, "authn_metadata") == NULL);
    CHECK(json_equal(sdk_pre_key_bundle(root), bundle));
    json_decref(root);

    /* 5. Without E2EE, or without a bundle, authn_metadata is relayed as it is. */
    conn.e2ee = false;
    root = notify_json(&conn);
    CHECK(json_equal(json_object_get(root, "authn_metadata"), authn_string));
    json_decref(root);
    conn.authn_metadata = authn_object;
    root = notify_json(&conn);
    CHECK(json_equal(json_object_get(root, "authn_metadata"), authn_object));
    json_decref(root);
    conn.e2ee = true;
    conn.metadata = NULL;
    root = notify_json(&conn);
    CHECK(json_equal(json_object_get(root, "authn_metadata"), authn_object));
    CHECK(json_is_null(json_object_get(root, "metadata")));
    json_decref(root);

    /* Nothing kept a reference. */
    CHECK_INT_EQ(meta->refcount, 1);
    CHECK_INT_EQ(bundle->refcount, 2); /* its own and meta's */
    CHECK_INT_EQ(authn_object->refcount, 1);
    CHECK_INT_EQ(authn_string->refcount, 1);
    CHECK_INT_EQ(authn_own_bundle->refcount, 1);
    json_decref(meta);
    json_decref(bundle);
    json_decref(authn_object);
    json_decref(authn_string);
    json_decref(authn_own_bundle);
}

/* PROTOCOL.md §5: simulcast, simulcast_rid and simulcast_request_rid (which wins). */
TEST(sora_msg_connect_simulcast)
{
    static const struct {
        const char *with;
        bool simulcast;
        int want;
    } ok[] = {
        {"", false, -2},
        {",\"simulcast\":true", true, -2},
        {",\"simulcast_rid\":\"r1\"", false, 1},
        {",\"simulcast_rid\":null", false, -2},
        {",\"simulcast_request_rid\":\"none\"", false, -1},
        {",\"simulcast_rid\":\"r0\",\"simulcast_request_rid\":\"r2\"", false, 2},
    };
    char text[512];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text,
                 "{\"type\":\"connect\",\"role\":\"sendrecv\",\"channel_id\":\"c\"%s}", ok[i].with);
        hk_connect_msg_t msg;
        hk_sora_error_t err;
        CHECK_INT_EQ(parse_connect(text, strlen(text), &msg, &err), 0);
        CHECK_INT_EQ(msg.simulcast, ok[i].simulcast);
        CHECK_INT_EQ(msg.simulcast_want, ok[i].want);
        hk_connect_msg_clear(&msg);
    }
    static const char rid[] = "INVALID-SIMULCAST-RID: simulcast_rid must be r0, r1 or r2";
    static const char request[] =
        "INVALID-SIMULCAST-RID: simulcast_request_rid must be none, r0, r1 or r2";
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast\":1"), not_bool);
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast_rid\":\"r3\""), rid);
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast_rid\":\"none\""), rid);
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast_rid\":2"), rid);
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast_rid\":\"r1\\u0000\""), not_json);
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast_request_rid\":\"auto\""), request);
    CONNECT_REFUSED(CONNECT_WITH(",\"simulcast_request_rid\":\"\""), request);
}

/* The offer of a simulcast publisher, the encodings check and the notify. */
TEST(sora_msg_simulcast_offer_encodings_and_notify)
{
    json_t *encodings = hk_sora_default_encodings();
    const char *why = NULL;
    CHECK_INT_EQ(hk_sora_check_encodings(encodings, &why), 0x7);
    hk_offer_msg_t offer = {.sdp = "v=0",
                            .connection_id = "c",
                            .channel_id = "room",
                            .video_mid = "1",
                            .encodings = encodings};
    char *text = hk_sora_build_offer(&offer);
    json_t *root = json_loads(text, 0, NULL);
    CHECK(json_is_true(json_object_get(root, "simulcast")));
    CHECK(json_is_false(json_object_get(root, "simulcast_multicodec")));
    json_t *got = json_object_get(root, "encodings");
    CHECK(json_equal(got, encodings));
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(got, 0), "rid")), "r0");
    CHECK(json_real_value(json_object_get(json_array_get(got, 0), "scaleResolutionDownBy")) == 4.0);
    CHECK(json_is_true(json_object_get(json_array_get(got, 2), "active")));
    json_decref(root);
    free(text);
    json_decref(encodings);

    static const struct {
        const char *json;
        int rids;
    } cases[] = {
        {"[{\"rid\":\"r0\"},{\"rid\":\"r2\",\"maxBitrate\":900000}]", 0x5},
        {"[{\"rid\":\"r1\",\"active\":false}]", 0x2},
        {"[]", HK_EINVAL},
        {"{}", HK_EINVAL},
        {"[{\"rid\":\"r0\"},{\"rid\":\"r0\"}]", HK_EINVAL},
        {"[{\"rid\":\"r3\"}]", HK_EINVAL},
        {"[{\"rid\":\"none\"}]", HK_EINVAL},
        {"[{}]", HK_EINVAL},
        {"[1]", HK_EINVAL},
        {"[{\"rid\":\"r0\"},{\"rid\":\"r1\"},{\"rid\":\"r2\"},{\"rid\":\"r1\"}]", HK_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *e = json_loads(cases[i].json, 0, NULL);
        CHECK(e != NULL);
        why = NULL;
        CHECK_INT_EQ(hk_sora_check_encodings(e, &why), cases[i].rids);
        CHECK((cases[i].rids < 0) == (why != NULL));
        json_decref(e);
    }

    CHECK_STR_EQ(hk_sora_rid_name(0), "r0");
    CHECK_STR_EQ(hk_sora_rid_name(2), "r2");
    CHECK_STR_EQ(hk_sora_rid_name(-1), "none");
    CHECK_STR_EQ(hk_sora_rid_name(-2), "auto");
    CHECK_STR_EQ(hk_sora_rid_name(3), "none");
    CHECK_INT_EQ(hk_sora_parse_rid("r1", false), 1);
    CHECK_INT_EQ(hk_sora_parse_rid("none", false), -3);
    CHECK_INT_EQ(hk_sora_parse_rid("none", true), -1);
    CHECK_INT_EQ(hk_sora_parse_rid("r12", true), -3);
    CHECK_INT_EQ(hk_sora_parse_rid(NULL, true), -3);

    hk_simulcast_switched_t n = {.channel_id = "room",
                                 .sender_connection_id = "S",
                                 .trigger = "rpc",
                                 .request_rid = "r2",
                                 .current_rid = "r2",
                                 .previous_rid = "r0"};
    check_json_text(hk_sora_build_simulcast_switched(&n),
                    "{\"type\":\"notify\",\"event_type\":\"simulcast.switched\","
                    "\"channel_id\":\"room\",\"sender_connection_id\":\"S\",\"trigger\":\"rpc\","
                    "\"request_rid\":\"r2\",\"current_rid\":\"r2\",\"previous_rid\":\"r0\"}");
}

#include "server/proto/sora_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/id.h"
#include "config/config.h"
#include "server/proto/json_raw.h"
#include "server/proto/sdp.h"

static int fail(hk_sora_error_t *err, int code, const char *reason)
{
    if (err) {
        err->close_code = code;
        err->reason = reason;
    }
    return HK_EINVAL;
}

const char *hk_role_name(hk_role_t role)
{
    switch (role) {
    case HK_ROLE_SENDRECV:
        return "sendrecv";
    case HK_ROLE_SENDONLY:
        return "sendonly";
    case HK_ROLE_RECVONLY:
        return "recvonly";
    }
    return "?";
}

/* Parses text as one JSON object. Depth is bounded by jansson (2048 levels). */
static json_t *load_object(const char *text, size_t len, hk_sora_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        fail(err, HK_CLOSE_BAD_REQUEST, "message is not valid JSON");
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fail(err, HK_CLOSE_BAD_REQUEST, "message is not a JSON object");
        return NULL;
    }
    return root;
}

/* 1..max printable ASCII characters, no spaces at either end. */
static int valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* Reads an optional boolean member: 0 ok (absent leaves *out), -1 wrong type. */
static int optional_bool(json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

void hk_connect_msg_clear(hk_connect_msg_t *msg)
{
    json_decref(msg->metadata);
    json_decref(msg->signaling_notify_metadata);
    free(msg->notify_metadata_raw);
    msg->metadata = NULL;
    msg->signaling_notify_metadata = NULL;
    msg->notify_metadata_raw = NULL;
    msg->notify_metadata_raw_len = 0;
}

int hk_sora_parse_connect(const char *text, size_t len, hk_connect_msg_t *out, hk_sora_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->audio = true;
    out->video = true;
    strcpy(out->video_codec, "VP8");

    json_t *root = load_object(text, len, err);
    if (!root)
        return HK_EINVAL;
    int rc = HK_EINVAL;

    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type || strcmp(type, "connect") != 0) {
        fail(err, HK_CLOSE_BAD_REQUEST, "first message must be type \"connect\"");
        goto done;
    }

    const char *role = json_string_value(json_object_get(root, "role"));
    if (!role) {
        fail(err, HK_CLOSE_BAD_REQUEST, "MISSING-ROLE: role must be a string");
        goto done;
    }
    if (strcmp(role, "sendrecv") == 0)
        out->role = HK_ROLE_SENDRECV;
    else if (strcmp(role, "sendonly") == 0)
        out->role = HK_ROLE_SENDONLY;
    else if (strcmp(role, "recvonly") == 0)
        out->role = HK_ROLE_RECVONLY;
    else {
        fail(err, HK_CLOSE_BAD_REQUEST,
             "INVALID-ROLE: role must be sendrecv, sendonly or recvonly");
        goto done;
    }

    json_t *channel = json_object_get(root, "channel_id");
    if (!json_is_string(channel)) {
        fail(err, HK_CLOSE_BAD_REQUEST, "MISSING-CHANNEL-ID: channel_id must be a string");
        goto done;
    }
    if (!valid_name(json_string_value(channel), HK_CHANNEL_ID_MAX) ||
        json_string_length(channel) != strlen(json_string_value(channel))) {
        fail(err, HK_CLOSE_BAD_REQUEST,
             "INVALID-CHANNEL-ID: channel_id must be 1 to 255 printable ASCII characters");
        goto done;
    }
    strcpy(out->channel_id, json_string_value(channel));

    json_t *client = json_object_get(root, "client_id");
    if (client && !json_is_null(client)) {
        if (!json_is_string(client) || !valid_name(json_string_value(client), HK_CLIENT_ID_MAX) ||
            json_string_length(client) != strlen(json_string_value(client))) {
            fail(err, HK_CLOSE_BAD_REQUEST,
                 "INVALID-CLIENT-ID: client_id must be 1 to 255 printable ASCII characters");
            goto done;
        }
        strcpy(out->client_id, json_string_value(client));
    }

    bool multistream = true;
    if (optional_bool(root, "e2ee", &out->e2ee) ||
        optional_bool(root, "redirect", &out->redirect) ||
        optional_bool(root, "multistream", &multistream) ||
        optional_bool(root, "simulcast", &out->simulcast)) {
        fail(err, HK_CLOSE_BAD_REQUEST,
             "e2ee, redirect, multistream and simulcast must be booleans");
        goto done;
    }
    /* PROTOCOL.md §5: simulcast_request_rid (newer) wins over simulcast_rid. */
    out->simulcast_want = -2;
    static const char *const rid_keys[] = {"simulcast_rid", "simulcast_request_rid"};
    for (int k = 0; k < 2; k++) {
        json_t *rid = json_object_get(root, rid_keys[k]);
        if (!rid || json_is_null(rid))
            continue;
        int layer = hk_sora_parse_rid(json_string_value(rid), k == 1);
        if (layer < -1 || json_string_length(rid) != 2 + 2 * (layer == -1)) {
            fail(err, HK_CLOSE_BAD_REQUEST,
                 k == 0 ? "INVALID-SIMULCAST-RID: simulcast_rid must be r0, r1 or r2"
                        : "INVALID-SIMULCAST-RID: simulcast_request_rid must be none, r0, r1 "
                          "or r2");
            goto done;
        }
        out->simulcast_want = layer;
    }
    if (!multistream) {
        fail(err, HK_CLOSE_BAD_REQUEST, "multistream false is not supported");
        goto done;
    }

    /* docs/protocol.md §6.5: an MLS channel (hisoka as delivery service). */
    json_t *protocol = json_object_get(root, "e2ee_protocol");
    if (protocol && !json_is_null(protocol)) {
        if (!json_is_string(protocol) || strcmp(json_string_value(protocol), "mls") != 0 ||
            json_string_length(protocol) != 3) {
            fail(err, HK_CLOSE_BAD_REQUEST,
                 "INVALID-E2EE-PROTOCOL: e2ee_protocol must be \"mls\" when present");
            goto done;
        }
        if (!out->e2ee) {
            fail(err, HK_CLOSE_BAD_REQUEST,
                 "INVALID-E2EE-PROTOCOL: e2ee_protocol needs \"e2ee\": true");
            goto done;
        }
        out->e2ee_mls = true;
    }

    json_t *audio = json_object_get(root, "audio");
    if (audio && !json_is_null(audio)) {
        if (json_is_boolean(audio))
            out->audio = json_is_true(audio);
        else if (!json_is_object(audio)) {
            fail(err, HK_CLOSE_BAD_REQUEST, "audio must be a boolean or an object");
            goto done;
        } else {
            json_t *codec = json_object_get(audio, "codec_type");
            if (codec &&
                !(json_is_string(codec) && strcmp(json_string_value(codec), "OPUS") == 0)) {
                fail(err, HK_CLOSE_BAD_REQUEST, "audio.codec_type must be \"OPUS\"");
                goto done;
            }
        }
    }

    json_t *video = json_object_get(root, "video");
    if (video && !json_is_null(video)) {
        if (json_is_boolean(video))
            out->video = json_is_true(video);
        else if (!json_is_object(video)) {
            fail(err, HK_CLOSE_BAD_REQUEST, "video must be a boolean or an object");
            goto done;
        } else {
            json_t *codec = json_object_get(video, "codec_type");
            if (codec) {
                const char *c = json_string_value(codec);
                if (!c || (strcmp(c, "VP8") != 0 && strcmp(c, "VP9") != 0 &&
                           strcmp(c, "H264") != 0 && strcmp(c, "AV1") != 0)) {
                    fail(err, HK_CLOSE_BAD_REQUEST,
                         "video.codec_type must be one of VP8, VP9, H264, AV1");
                    goto done;
                }
                strcpy(out->video_codec, c);
            }
        }
    }

    json_t *metadata = json_object_get(root, "metadata");
    if (metadata && !json_is_null(metadata))
        out->metadata = json_incref(metadata);

    json_t *notify_metadata = json_object_get(root, "signaling_notify_metadata");
    if (notify_metadata && !json_is_null(notify_metadata)) {
        if (!json_is_object(notify_metadata)) {
            fail(err, HK_CLOSE_BAD_REQUEST, "signaling_notify_metadata must be an object");
            goto done;
        }
        out->signaling_notify_metadata = json_incref(notify_metadata);
        /* Kept as the client wrote it: re-serializing can make it several times longer. */
        out->notify_metadata_raw = malloc(len + 1);
        if (!out->notify_metadata_raw ||
            hk_json_raw_member(text, len, "signaling_notify_metadata", out->notify_metadata_raw,
                               len + 1, &out->notify_metadata_raw_len) != 0) {
            free(out->notify_metadata_raw);
            out->notify_metadata_raw = json_dumps(notify_metadata, JSON_COMPACT);
            out->notify_metadata_raw_len =
                out->notify_metadata_raw ? strlen(out->notify_metadata_raw) : 0;
        }
    }

    json_t *sdp = json_object_get(root, "sdp");
    if (sdp && !json_is_null(sdp) && !json_is_string(sdp)) {
        fail(err, HK_CLOSE_BAD_REQUEST, "sdp must be a string");
        goto done;
    }
    out->legacy_update =
        hk_sora_client_uses_update(json_string_value(json_object_get(root, "sora_client")));
    rc = 0;

done:
    if (rc != 0)
        hk_connect_msg_clear(out);
    json_decref(root);
    return rc;
}

bool hk_sora_client_uses_update(const char *sora_client)
{
    if (!sora_client || strncmp(sora_client, "Sora ", 5) != 0)
        return false;
    const char *sdk = strstr(sora_client + 5, " SDK ");
    if (!sdk)
        return false;
    const char *p = sdk + 5;
    unsigned long major = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
        major = major * 10 + (unsigned long)(*p - '0');
    /* "2020.6.2", "1.16.0": a number, then a dot. */
    if (digits == 0 || *p != '.')
        return false;
    return major < 2021;
}

void hk_sora_msg_clear(hk_sora_msg_t *msg)
{
    json_decref(msg->root);
    memset(msg, 0, sizeof *msg);
}

int hk_sora_parse_message(const char *text, size_t len, hk_sora_msg_t *out, hk_sora_error_t *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = load_object(text, len, err);
    if (!root)
        return HK_EINVAL;
    out->root = root;

    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type) {
        hk_sora_msg_clear(out);
        return fail(err, HK_CLOSE_BAD_REQUEST, "message has no string \"type\"");
    }
    if (strcmp(type, "answer") == 0 || strcmp(type, "re-answer") == 0 ||
        strcmp(type, "update") == 0) {
        out->type = strcmp(type, "answer") == 0 ? HK_MSG_ANSWER : HK_MSG_RE_ANSWER;
        json_t *sdp = json_object_get(root, "sdp");
        if (!json_is_string(sdp) || json_string_length(sdp) == 0) {
            hk_sora_msg_clear(out);
            return fail(err, HK_CLOSE_BAD_REQUEST, "answer without a string sdp");
        }
        out->sdp = json_string_value(sdp);
        out->sdp_len = json_string_length(sdp);
        return 0;
    }
    if (strcmp(type, "candidate") == 0) {
        json_t *candidate = json_object_get(root, "candidate");
        if (candidate && !json_is_string(candidate) && !json_is_null(candidate)) {
            hk_sora_msg_clear(out);
            return fail(err, HK_CLOSE_BAD_REQUEST, "candidate must be a string");
        }
        out->type = HK_MSG_CANDIDATE;
        return 0;
    }
    if (strcmp(type, "pong") == 0) {
        out->type = HK_MSG_PONG;
        return 0;
    }
    if (strcmp(type, "stats") == 0) {
        out->type = HK_MSG_STATS;
        return 0;
    }
    if (strcmp(type, "disconnect") == 0) {
        out->type = HK_MSG_DISCONNECT;
        out->reason = json_string_value(json_object_get(root, "reason"));
        return 0;
    }
    /* type points into root: decide before releasing it. */
    const char *reason =
        strcmp(type, "connect") == 0 ? "connect was already received" : "unknown message type";
    hk_sora_msg_clear(out);
    return fail(err, HK_CLOSE_BAD_REQUEST, reason);
}

static char *dump(json_t *obj)
{
    if (!obj)
        return NULL;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

/* json_object_set_new tolerates a NULL value by failing; keep the object consistent. */
static void set_string(json_t *obj, const char *key, const char *value)
{
    if (value)
        json_object_set_new(obj, key, json_string(value));
}

static void set_json(json_t *obj, const char *key, const json_t *value)
{
    json_object_set_new(obj, key, value ? json_deep_copy(value) : json_null());
}

/* {"iceServers":[…],"iceTransportPolicy":"all"}, an RTCConfiguration (PROTOCOL.md §7):
 * the C++ SDK wants urls, username and credential in every entry. */
static json_t *ice_config(const hk_offer_msg_t *offer)
{
    json_t *servers = json_array();
    json_t *urls = json_array();
    size_t n;
    const char *cursor = offer->turn_urls ? offer->turn_urls : "";
    for (const char *u; (u = hk_config_list_next(&cursor, &n));)
        json_array_append_new(urls, json_stringn(u, n));
    if (json_array_size(urls) > 0 && offer->turn_username && offer->turn_credential)
        json_array_append_new(servers, json_pack("{s:o,s:s,s:s}", "urls", urls, "username",
                                                 offer->turn_username, "credential",
                                                 offer->turn_credential));
    else
        json_decref(urls);
    return json_pack("{s:o,s:s}", "iceServers", servers, "iceTransportPolicy", "all");
}

int hk_sora_parse_rid(const char *rid, bool allow_none)
{
    if (!rid)
        return -3;
    if (allow_none && strcmp(rid, "none") == 0)
        return -1;
    if (rid[0] == 'r' && rid[1] >= '0' && rid[1] < '0' + HK_SIMULCAST_MAX_LAYERS && rid[2] == '\0')
        return rid[1] - '0';
    return -3;
}

int hk_sora_check_encodings(const json_t *encodings, const char **why)
{
    size_t n = json_array_size(encodings);
    if (!json_is_array(encodings) || n < 1 || n > HK_SIMULCAST_MAX_LAYERS) {
        *why = "simulcast_encodings must be an array of 1 to 3 encodings";
        return HK_EINVAL;
    }
    int rids = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *rid = json_object_get(json_array_get(encodings, i), "rid");
        int layer = hk_sora_parse_rid(json_string_value(rid), false);
        if (layer < 0 || json_string_length(rid) != 2 || (rids & (1 << layer))) {
            *why = "each simulcast encoding needs a distinct rid r0, r1 or r2";
            return HK_EINVAL;
        }
        rids |= 1 << layer;
    }
    return rids;
}

json_t *hk_sora_default_encodings(void)
{
    return json_pack("[{s:s,s:b,s:f},{s:s,s:b,s:f},{s:s,s:b,s:f}]", "rid", "r0", "active", 1,
                     "scaleResolutionDownBy", 4.0, "rid", "r1", "active", 1,
                     "scaleResolutionDownBy", 2.0, "rid", "r2", "active", 1,
                     "scaleResolutionDownBy", 1.0);
}

char *hk_sora_build_offer(const hk_offer_msg_t *offer)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    json_object_set_new(obj, "type", json_string("offer"));
    set_string(obj, "sdp", offer->sdp);
    set_string(obj, "client_id", offer->client_id);
    set_string(obj, "connection_id", offer->connection_id);
    set_string(obj, "channel_id", offer->channel_id);
    json_object_set_new(obj, "multistream", json_true());
    json_object_set_new(obj, "simulcast", json_boolean(offer->encodings != NULL));
    if (offer->encodings) {
        json_object_set_new(obj, "simulcast_multicodec", json_false());
        set_json(obj, "encodings", offer->encodings);
    }
    json_object_set_new(obj, "spotlight", json_false());
    if (offer->authn_metadata)
        set_json(obj, "metadata", offer->authn_metadata);
    json_object_set_new(obj, "config", ice_config(offer));
    json_t *mid = json_object();
    set_string(mid, "audio", offer->audio_mid);
    set_string(mid, "video", offer->video_mid);
    json_object_set_new(obj, "mid", mid);
    return dump(obj);
}

const char *hk_sora_rid_name(int layer)
{
    static const char *const names[] = {"r0", "r1", "r2"};
    if (layer >= 0 && layer < HK_SIMULCAST_MAX_LAYERS)
        return names[layer];
    return layer == -2 ? "auto" : "none";
}

char *hk_sora_build_simulcast_switched(const hk_simulcast_switched_t *s)
{
    return dump(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", "notify", "event_type",
                          "simulcast.switched", "channel_id", s->channel_id, "sender_connection_id",
                          s->sender_connection_id, "trigger", s->trigger, "request_rid",
                          s->request_rid, "current_rid", s->current_rid, "previous_rid",
                          s->previous_rid));
}

char *hk_sora_build_reoffer(const char *sdp)
{
    return dump(json_pack("{s:s,s:s}", "type", "re-offer", "sdp", sdp));
}

char *hk_sora_build_update(const char *sdp)
{
    return dump(json_pack("{s:s,s:s}", "type", "update", "sdp", sdp));
}

char *hk_sora_build_ping(void)
{
    return dump(json_pack("{s:s,s:b}", "type", "ping", "stats", 0));
}

json_t *hk_sora_notify_authn_metadata(const hk_notify_conn_t *conn)
{
    const json_t *authn = conn->authn_metadata;
    if (!authn || json_is_null(authn))
        return NULL;
    json_t *bundle = conn->e2ee && json_is_object(conn->metadata)
                         ? json_object_get(conn->metadata, "pre_key_bundle")
                         : NULL;
    if (!bundle)
        return json_deep_copy(authn);
    if (!json_is_object(authn))
        return NULL; /* cannot carry the bundle: the clients read it from metadata */
    json_t *copy = json_deep_copy(authn);
    if (copy && !json_object_get(copy, "pre_key_bundle"))
        json_object_set_new(copy, "pre_key_bundle", json_deep_copy(bundle));
    return copy;
}

/* Sets authn_metadata by hk_sora_notify_authn_metadata, or leaves it out. */
static void set_authn_metadata(json_t *obj, const hk_notify_conn_t *c)
{
    json_t *authn = hk_sora_notify_authn_metadata(c);
    if (authn)
        json_object_set_new(obj, "authn_metadata", authn);
}

/* Raw metadata is spliced into the dump: the object gets a placeholder string naming it
 * by index, with a random per-process tag no client can guess. */
#define RAW_MAX 2048 /* metadata placeholders in one notify: the members listed, + 1 */
typedef struct {
    const char *raw[RAW_MAX];
    size_t n;
} raw_list_t;

static raw_list_t *raw_list; /* of the notify being built (one at a time, one thread) */

static const char *raw_tag(void)
{
    static char tag[33];
    if (!tag[0]) {
        uint8_t r[16];
        hk_random_bytes(r, sizeof r);
        for (int i = 0; i < 16; i++)
            snprintf(tag + 2 * i, 3, "%02x", r[i]);
    }
    return tag;
}

static void set_metadata(json_t *obj, const hk_notify_conn_t *c)
{
    if (c->metadata_raw && raw_list && raw_list->n < RAW_MAX) {
        char placeholder[64];
        snprintf(placeholder, sizeof placeholder, "hk-raw-%s-%zu", raw_tag(), raw_list->n);
        raw_list->raw[raw_list->n++] = c->metadata_raw;
        json_object_set_new(obj, "metadata", json_string(placeholder));
        return;
    }
    set_json(obj, "metadata", c->metadata);
}

/* text with each "\"hk-raw-TAG-N\"" replaced by raw->raw[N]; frees text. */
static char *splice_raw(char *text, const raw_list_t *raw)
{
    if (!text || raw->n == 0)
        return text;
    char prefix[48];
    int prefix_len = snprintf(prefix, sizeof prefix, "\"hk-raw-%s-", raw_tag());
    size_t total = strlen(text) + 1;
    for (size_t i = 0; i < raw->n; i++)
        total += strlen(raw->raw[i]);
    char *out = malloc(total);
    if (!out) {
        free(text);
        return NULL;
    }
    size_t n = 0;
    for (const char *p = text; *p;) {
        const char *hit = strstr(p, prefix);
        if (!hit) {
            size_t rest = strlen(p);
            memcpy(out + n, p, rest);
            n += rest;
            break;
        }
        memcpy(out + n, p, (size_t)(hit - p));
        n += (size_t)(hit - p);
        char *end;
        unsigned long index = strtoul(hit + prefix_len, &end, 10);
        if (*end != '"' || index >= raw->n) { /* not ours: copy as it is */
            memcpy(out + n, hit, (size_t)prefix_len);
            n += (size_t)prefix_len;
            p = hit + prefix_len;
            continue;
        }
        size_t len = strlen(raw->raw[index]);
        memcpy(out + n, raw->raw[index], len);
        n += len;
        p = end + 1;
    }
    out[n] = '\0';
    free(text);
    return out;
}

static json_t *existing_entry(const hk_notify_conn_t *c)
{
    json_t *e = json_object();
    set_string(e, "connection_id", c->connection_id);
    set_string(e, "client_id", c->client_id);
    set_metadata(e, c);
    set_authn_metadata(e, c);
    return e;
}

char *hk_sora_build_notify(const char *event_type, const char *channel_id,
                           const hk_notify_conn_t *conn, const hk_channel_counts_t *counts,
                           bool include_metadata, const hk_notify_conn_t *existing,
                           size_t n_existing, bool legacy_list)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    static raw_list_t raws;
    raws.n = 0;
    raw_list = &raws;
    json_object_set_new(obj, "type", json_string("notify"));
    set_string(obj, "event_type", event_type);
    set_string(obj, "role", hk_role_name(conn->role));
    set_string(obj, "client_id", conn->client_id);
    set_string(obj, "connection_id", conn->connection_id);
    set_string(obj, "channel_id", channel_id);
    json_object_set_new(obj, "audio", json_boolean(conn->audio));
    json_object_set_new(obj, "video", json_boolean(conn->video));
    json_object_set_new(obj, "minutes", json_integer(conn->minutes));
    json_object_set_new(obj, "channel_connections", json_integer(counts->connections));
    json_object_set_new(obj, "channel_sendrecv_connections", json_integer(counts->sendrecv));
    json_object_set_new(obj, "channel_sendonly_connections", json_integer(counts->sendonly));
    json_object_set_new(obj, "channel_recvonly_connections", json_integer(counts->recvonly));
    if (include_metadata) {
        set_metadata(obj, conn);
        set_authn_metadata(obj, conn);
    }
    if (existing) {
        json_t *list = json_array();
        for (size_t i = 0; i < n_existing; i++)
            json_array_append_new(list, existing_entry(&existing[i]));
        json_object_set_new(obj, legacy_list ? "metadata_list" : "data", list);
    }
    char *text = splice_raw(dump(obj), &raws);
    raw_list = NULL;
    return text;
}

char *hk_sora_build_redirect(const char *location)
{
    return dump(json_pack("{s:s,s:s}", "type", "redirect", "location", location));
}

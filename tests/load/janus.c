/* Janus API messages for hisoka-load --mode janus; see janus.h.
 *
 * Janus API over WebSocket (Janus docs, "The Janus API" and "VideoRoom plugin", 1.x):
 *
 *   -> {"janus":"create","transaction":"7"}
 *   <- {"janus":"success","transaction":"7","data":{"id":SESSION}}
 *   -> {"janus":"attach","session_id":SESSION,"plugin":"janus.plugin.videoroom",...}
 *   <- {"janus":"success","session_id":SESSION,"transaction":"8","data":{"id":HANDLE}}
 *   -> {"janus":"message","session_id":S,"handle_id":H,"transaction":"9",
 *       "body":{"request":"join",...},"jsep":{"type":"offer","sdp":"...","e2ee":true}}
 *   <- {"janus":"ack","transaction":"9"}
 *   <- {"janus":"event","sender":H,"transaction":"9",
 *       "plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"joined",
 *       "id":FEED,...}},"jsep":{"type":"answer","sdp":"..."}}
 *   <- {"janus":"webrtcup"|"media"|"hangup"|"slowlink",...}
 *   -> {"janus":"message",...,"body":{"request":"configure",
 *       "streams":[{"mid":"1","substream":0},...]}}   (a subscriber's simulcast target)
 *
 * Plugin errors arrive as events whose data carries "error_code" and "error". */
#include "tests/load/janus.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "server/proto/sdp.h"

static json_t *jsep_object(const hk_janus_request_t *r)
{
    if (!r->jsep_type || !r->sdp)
        return NULL;
    json_t *j = json_pack("{s:s,s:s}", "type", r->jsep_type, "sdp", r->sdp);
    if (j && r->e2ee)
        json_object_set_new(j, "e2ee", json_true());
    return j;
}

static json_t *streams_array(const hk_janus_request_t *r)
{
    if (!r->feeds || r->n_feeds == 0 || r->n_feeds > HK_JANUS_MAX_FEEDS)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_feeds; i++)
        json_array_append_new(a, json_pack("{s:I}", "feed", (json_int_t)r->feeds[i]));
    return a;
}

/* configure's streams: every mid given gets the same substream target. */
static json_t *configure_streams(const hk_janus_request_t *r)
{
    if (!r->mids || r->n_mids == 0 || r->n_mids > HK_JANUS_MAX_FEEDS || r->substream < 0 ||
        r->substream > 2)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_mids; i++) {
        if (!r->mids[i]) {
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a,
                              json_pack("{s:s,s:i}", "mid", r->mids[i], "substream", r->substream));
    }
    return a;
}

/* The plugin message body of r, or NULL when r is not a plugin message or is incomplete. */
static json_t *message_body(const hk_janus_request_t *r)
{
    json_t *streams;
    switch (r->kind) {
    case HK_JANUS_JOIN_PUBLISHER:
        if (!r->publisher_id)
            return NULL;
        return json_pack("{s:s,s:s,s:I,s:I,s:s}", "request", "join", "ptype", "publisher", "room",
                         (json_int_t)r->room, "id", (json_int_t)r->publisher_id, "display",
                         r->display ? r->display : "hisoka-load");
    case HK_JANUS_JOIN_SUBSCRIBER:
        if (!(streams = streams_array(r)))
            return NULL;
        return json_pack("{s:s,s:s,s:I,s:o}", "request", "join", "ptype", "subscriber", "room",
                         (json_int_t)r->room, "streams", streams);
    case HK_JANUS_SUBSCRIBE:
        if (!(streams = streams_array(r)))
            return NULL;
        return json_pack("{s:s,s:o}", "request", "subscribe", "streams", streams);
    case HK_JANUS_START:
        return json_pack("{s:s}", "request", "start");
    case HK_JANUS_CONFIGURE:
        if (!(streams = configure_streams(r)))
            return NULL;
        return json_pack("{s:s,s:o}", "request", "configure", "streams", streams);
    default:
        return NULL;
    }
}

int hk_janus_write_request(const hk_janus_request_t *r, char *out, size_t size)
{
    char tx[24];
    snprintf(tx, sizeof tx, "%llu", (unsigned long long)r->transaction);
    json_t *m = NULL;
    switch (r->kind) {
    case HK_JANUS_CREATE:
        m = json_pack("{s:s,s:s}", "janus", "create", "transaction", tx);
        break;
    case HK_JANUS_ATTACH:
        if (!r->session_id)
            return HK_EINVAL;
        m = json_pack("{s:s,s:I,s:s,s:s}", "janus", "attach", "session_id",
                      (json_int_t)r->session_id, "plugin", HK_JANUS_PLUGIN, "transaction", tx);
        break;
    case HK_JANUS_KEEPALIVE:
        if (!r->session_id)
            return HK_EINVAL;
        m = json_pack("{s:s,s:I,s:s}", "janus", "keepalive", "session_id",
                      (json_int_t)r->session_id, "transaction", tx);
        break;
    case HK_JANUS_TRICKLE_DONE:
        if (!r->session_id || !r->handle_id)
            return HK_EINVAL;
        m = json_pack("{s:s,s:I,s:I,s:s,s:{s:b}}", "janus", "trickle", "session_id",
                      (json_int_t)r->session_id, "handle_id", (json_int_t)r->handle_id,
                      "transaction", tx, "candidate", "completed", 1);
        break;
    case HK_JANUS_JOIN_PUBLISHER:
    case HK_JANUS_JOIN_SUBSCRIBER:
    case HK_JANUS_SUBSCRIBE:
    case HK_JANUS_START:
    case HK_JANUS_CONFIGURE: {
        bool needs_jsep = r->kind == HK_JANUS_JOIN_PUBLISHER || r->kind == HK_JANUS_START;
        if (!r->session_id || !r->handle_id || (needs_jsep && (!r->jsep_type || !r->sdp)))
            return HK_EINVAL;
        json_t *body = message_body(r);
        if (!body)
            return HK_EINVAL;
        m = json_pack("{s:s,s:I,s:I,s:s,s:o}", "janus", "message", "session_id",
                      (json_int_t)r->session_id, "handle_id", (json_int_t)r->handle_id,
                      "transaction", tx, "body", body);
        json_t *jsep = needs_jsep ? jsep_object(r) : NULL;
        if (m && jsep)
            json_object_set_new(m, "jsep", jsep);
        else
            json_decref(jsep);
        break;
    }
    default:
        return HK_EINVAL;
    }
    if (!m)
        return HK_ENOMEM;
    size_t n = json_dumpb(m, out, size, JSON_COMPACT);
    json_decref(m);
    if (n == 0 || n >= size)
        return HK_ENOSPC;
    out[n] = '\0';
    return (int)n;
}

/* Janus ids are JSON integers (string_ids off); transactions are our decimal strings. */
static uint64_t get_id(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static uint64_t get_transaction(json_t *root)
{
    const char *s = json_string_value(json_object_get(root, "transaction"));
    if (!s || !*s || strlen(s) > 20)
        return 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    return end && *end == '\0' ? (uint64_t)v : 0;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    if (!src)
        src = "";
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int hk_janus_parse_event(const char *text, size_t len, hk_janus_event_t *ev, const char **err)
{
    memset(ev, 0, sizeof *ev);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return hk_fail(err, "not a JSON object");
    }
    const char *janus = json_string_value(json_object_get(root, "janus"));
    if (!janus) {
        json_decref(root);
        return hk_fail(err, "no \"janus\" member");
    }
    ev->transaction = get_transaction(root);
    ev->session_id = get_id(root, "session_id");
    ev->sender = get_id(root, "sender");
    if (!strcmp(janus, "ack")) {
        ev->kind = HK_JANUS_EV_ACK;
    } else if (!strcmp(janus, "success")) {
        ev->kind = HK_JANUS_EV_SUCCESS;
        ev->id = get_id(json_object_get(root, "data"), "id");
    } else if (!strcmp(janus, "error")) {
        json_t *e = json_object_get(root, "error");
        ev->kind = HK_JANUS_EV_ERROR;
        ev->error_code = (int)json_integer_value(json_object_get(e, "code"));
        copy_text(ev->reason, sizeof ev->reason, json_string_value(json_object_get(e, "reason")));
        if (!ev->error_code)
            ev->error_code = -1;
    } else if (!strcmp(janus, "webrtcup")) {
        ev->kind = HK_JANUS_EV_WEBRTCUP;
    } else if (!strcmp(janus, "hangup")) {
        ev->kind = HK_JANUS_EV_HANGUP;
        copy_text(ev->reason, sizeof ev->reason,
                  json_string_value(json_object_get(root, "reason")));
    } else if (!strcmp(janus, "event")) {
        ev->kind = HK_JANUS_EV_EVENT;
        json_t *data = json_object_get(json_object_get(root, "plugindata"), "data");
        copy_text(ev->videoroom, sizeof ev->videoroom,
                  json_string_value(json_object_get(data, "videoroom")));
        ev->id = get_id(data, "id");
        json_t *code = json_object_get(data, "error_code");
        if (json_is_integer(code)) {
            ev->error_code = (int)json_integer_value(code);
            if (!ev->error_code)
                ev->error_code = -1;
            copy_text(ev->reason, sizeof ev->reason,
                      json_string_value(json_object_get(data, "error")));
        }
    } else {
        ev->kind = HK_JANUS_EV_OTHER;
    }
    json_t *jsep = json_object_get(root, "jsep");
    const char *type = json_string_value(json_object_get(jsep, "type"));
    json_t *sdp = json_object_get(jsep, "sdp");
    if (type && json_is_string(sdp) && (!strcmp(type, "offer") || !strcmp(type, "answer"))) {
        copy_text(ev->jsep_type, sizeof ev->jsep_type, type);
        ev->sdp = json_string_value(sdp);
        ev->sdp_len = json_string_length(sdp);
    }
    ev->json = root;
    return 0;
}

void hk_janus_event_clear(hk_janus_event_t *ev)
{
    json_decref(ev->json);
    memset(ev, 0, sizeof *ev);
}

/* Appends to out[size] at *pos; returns -1 once out is full. */
static int append(char *out, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *out, size_t size, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *pos, size - *pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *pos)
        return -1;
    *pos += (size_t)n;
    return 0;
}

/* The publisher offer. RFC 8843 (BUNDLE) §7.1, RFC 5763 §5 (a=setup), RFC 8858
 * (rtcp-mux), RFC 8285 (extmap), RFC 4588 (RTX, FID group of RFC 5576 §4). */
int hk_janus_write_offer(const hk_janus_offer_t *o, char *out, size_t size)
{
    if ((!o->audio && !o->video) || !o->ice_ufrag || !o->ice_pwd || !o->fingerprint || !o->cname ||
        size == 0)
        return HK_EINVAL;
    size_t pos = 0;
    int rc = append(out, size, &pos,
                    "v=0\r\no=- %u 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE%s%s\r\n"
                    "a=msid-semantic: WMS %s\r\n",
                    o->session_id, o->audio ? " 0" : "", o->video ? " 1" : "", o->cname);
    for (int video = 0; video < 2 && rc == 0; video++) {
        if (video ? !o->video : !o->audio)
            continue;
        rc |= append(out, size, &pos,
                     "m=%s 9 UDP/TLS/RTP/SAVPF %s\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\n"
                     "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:%s\r\na=setup:active\r\n"
                     "a=rtcp-mux\r\na=sendonly\r\n"
                     "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
                     "a=extmap:3 http://www.ietf.org/id/"
                     "draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
                     "a=msid:%s %s-track\r\n",
                     video ? "video" : "audio", video ? "96 97" : "111", video, o->ice_ufrag,
                     o->ice_pwd, o->fingerprint, o->cname, video ? "video" : "audio");
        if (!video) {
            rc |= append(out, size, &pos,
                         "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n"
                         "a=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:%u cname:%s\r\n",
                         o->ssrc_audio, o->cname);
            continue;
        }
        rc |= append(out, size, &pos,
                     "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 transport-cc\r\n"
                     "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
                     "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n");
        if (o->simulcast)
            /* RFC 8851 (rid), RFC 8853 (simulcast), RFC 8852 (rtp-stream-id) */
            rc |= append(out, size, &pos,
                         "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
                         "a=rid:r2 send\r\na=rid:r1 send\r\na=rid:r0 send\r\n"
                         "a=simulcast:send r2;r1;r0\r\n",
                         HK_EXT_RID);
        else
            rc |=
                append(out, size, &pos,
                       "a=ssrc-group:FID %u %u\r\na=ssrc:%u cname:%s\r\na=ssrc:%u cname:%s\r\n",
                       o->ssrc_video, o->ssrc_rtx, o->ssrc_video, o->cname, o->ssrc_rtx, o->cname);
    }
    if (rc != 0)
        return HK_ENOSPC;
    return (int)pos;
}

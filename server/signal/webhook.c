#include "server/signal/webhook.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/proto/sora_msg.h"

#define RESPONSE_MAX (64 * 1024)

struct hk_webhook_s {
    struct lws *wsi;
    hk_peer_t *peer; /* NULL once cancelled */
    hk_webhook_done_fn done;
    char *body;
    size_t body_len;
    bool body_sent;
    unsigned status;
    char *response;
    size_t response_len;
    bool overflow;
    bool finished; /* the callback was called */
    bool started;  /* lws_client_connect_via_info returned: lws owns the request */
};

static void finish(hk_webhook_t *r, bool allowed, json_t *authn, json_t *encodings,
                   const char *reason)
{
    if (r->finished)
        return;
    r->finished = true;
    if (!r->peer) {
        json_decref(authn);
        json_decref(encodings);
        return;
    }
    hk_webhook_result_t result = {
        .allowed = allowed, .authn_metadata = authn, .simulcast_encodings = encodings};
    snprintf(result.reason, sizeof result.reason, "%s", reason ? reason : "");
    hk_peer_t *peer = r->peer;
    r->peer = NULL;
    r->done(peer, &result);
}

/* Decides from the status and body once the response is complete. */
static void decide(hk_webhook_t *r)
{
    if (r->status < 200 || r->status > 299) {
        char reason[120];
        snprintf(reason, sizeof reason, "AUTH-WEBHOOK-FAILED: the webhook answered HTTP %u",
                 r->status);
        finish(r, false, NULL, NULL, reason);
        return;
    }
    if (r->overflow) {
        finish(r, false, NULL, NULL, "AUTH-WEBHOOK-FAILED: the webhook's answer is too large");
        return;
    }
    json_error_t jerr;
    json_t *root = r->response ? json_loadb(r->response, r->response_len, 0, &jerr) : NULL;
    json_t *allowed = json_object_get(root, "allowed");
    if (!json_is_object(root) || !json_is_boolean(allowed)) {
        json_decref(root);
        finish(r, false, NULL, NULL,
               "AUTH-WEBHOOK-FAILED: the webhook's answer is not JSON with a boolean allowed");
        return;
    }
    json_t *encodings = json_object_get(root, "simulcast_encodings");
    const char *why = NULL;
    if (json_is_true(allowed) && encodings && !json_is_null(encodings) &&
        hk_sora_check_encodings(encodings, &why) < 0) {
        char text[120];
        snprintf(text, sizeof text, "AUTH-WEBHOOK-FAILED: %s", why);
        finish(r, false, NULL, NULL, text);
    } else if (json_is_true(allowed)) {
        json_t *authn = json_object_get(root, "authn_metadata");
        finish(r, true, authn && !json_is_null(authn) ? json_incref(authn) : NULL,
               encodings && !json_is_null(encodings) ? json_incref(encodings) : NULL, NULL);
    } else {
        const char *reason = json_string_value(json_object_get(root, "reason"));
        char text[120];
        snprintf(text, sizeof text, "AUTH-REFUSED: %s", reason ? reason : "not allowed");
        finish(r, false, NULL, NULL, text);
    }
    json_decref(root);
}

static void free_request(hk_webhook_t *r)
{
    free(r->body);
    free(r->response);
    free(r);
}

int hk_webhook_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    hk_webhook_t *r = lws_get_opaque_user_data(wsi);
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!r)
            return -1;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        char length[24];
        snprintf(length, sizeof length, "%zu", r->body_len);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)"application/json", 16, p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)length, (int)strlen(length), p,
                                         end))
            return -1;
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r || r->body_sent)
            return 0;
        unsigned char *buf = malloc(LWS_PRE + r->body_len);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, r->body, r->body_len);
        int n = lws_write(wsi, buf + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        r->body_sent = true;
        lws_client_http_body_pending(wsi, 0);
        return n < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (r)
            r->status = lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (!r)
            return -1;
        if (r->response_len + len > RESPONSE_MAX) {
            r->overflow = true;
            return 0;
        }
        {
            char *grown = realloc(r->response, r->response_len + len + 1);
            if (!grown)
                return -1;
            r->response = grown;
            memcpy(r->response + r->response_len, in, len);
            r->response_len += len;
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buffer[4096 + LWS_PRE];
        char *px = buffer + LWS_PRE;
        int lenx = sizeof(buffer) - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r)
            decide(r);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r && r->started) {
            char reason[120];
            snprintf(reason, sizeof reason, "AUTH-WEBHOOK-FAILED: %s",
                     in ? (const char *)in : "cannot reach the webhook");
            finish(r, false, NULL, NULL, reason);
            lws_set_opaque_user_data(wsi, NULL);
            free_request(r);
        }
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (r && r->started) {
            finish(r, false, NULL, NULL, "AUTH-WEBHOOK-FAILED: the webhook closed the connection");
            lws_set_opaque_user_data(wsi, NULL);
            free_request(r);
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

hk_webhook_t *hk_webhook_start(struct lws_context *context, struct lws_vhost *vhost,
                               const char *url, const char *body, hk_peer_t *peer,
                               hk_webhook_done_fn done)
{
    hk_webhook_t *r = calloc(1, sizeof *r);
    char *copy = strdup(url);
    if (!r || !copy)
        goto fail;
    r->peer = peer;
    r->done = done;
    r->body = strdup(body);
    if (!r->body)
        goto fail;
    r->body_len = strlen(body);

    const char *scheme, *address, *path;
    int port;
    if (lws_parse_uri(copy, &scheme, &address, &port, &path) != 0)
        goto fail;
    char fullpath[1024];
    snprintf(fullpath, sizeof fullpath, "/%s", path);
    struct lws_client_connect_info info;
    memset(&info, 0, sizeof info);
    info.context = context;
    struct lws_vhost *client = lws_get_vhost_by_name(context, HK_WEBHOOK_VHOST);
    info.vhost = client ? client : vhost;
    info.address = address;
    info.port = port;
    info.path = fullpath;
    info.host = address;
    info.origin = address;
    info.method = "POST";
    info.local_protocol_name = HK_WEBHOOK_PROTOCOL;
    info.opaque_user_data = r;
    info.pwsi = &r->wsi;
    if (strcmp(scheme, "https") == 0)
        info.ssl_connection = LCCSCF_USE_SSL;
    else if (strcmp(scheme, "http") != 0)
        goto fail;
    if (!lws_client_connect_via_info(&info)) {
        /* Failed at once: callbacks made meanwhile ignored r (not started). */
        free(copy);
        free_request(r);
        return NULL;
    }
    r->started = true;
    free(copy);
    return r;
fail:
    free(copy);
    if (r)
        free_request(r);
    return NULL;
}

void hk_webhook_cancel(hk_webhook_t *r)
{
    if (!r)
        return;
    r->peer = NULL;
    r->finished = true;
    if (r->wsi)
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

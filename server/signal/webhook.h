/* The auth webhook (like Sora's auth_webhook_url): before a `connect` is accepted, a JSON
 * description of it is POSTed to the configured URL with libwebsockets' HTTP client on
 * the sig's loop. {"allowed": true, "authn_metadata": ...} admits the connection (with
 * "simulcast_encodings": [...] a simulcast publisher's encodings, PROTOCOL.md §5);
 * {"allowed": false, "reason": "..."} refuses it with that reason; a timeout, a transport
 * error, a non-2xx status or a body that is not such JSON refuses it too.
 *
 * Ownership: a request belongs to the HTTP client connection and is freed when that
 * closes. The peer that started it may go away first: hk_webhook_cancel detaches it. */
#ifndef HK_WEBHOOK_H
#define HK_WEBHOOK_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stdbool.h>

typedef struct hk_webhook_s hk_webhook_t;
typedef struct hk_peer_s hk_peer_t;

/* The decision: allowed, or refused with a reason (static or in reason_buf). */
typedef struct {
    bool allowed;
    json_t *authn_metadata; /* owned by the callee when allowed; may be NULL */
    /* simulcast_encodings, checked by hk_sora_check_encodings; owned by the callee when
     * allowed; NULL when absent */
    json_t *simulcast_encodings;
    char reason[120];
} hk_webhook_result_t;

/* Called once per request with the decision (never after hk_webhook_cancel). */
typedef void (*hk_webhook_done_fn)(hk_peer_t *peer, hk_webhook_result_t *result);

/* POSTs body (JSON, copied) to url for peer. Returns the request, or NULL when it
 * could not be started (the caller refuses the connection). */
hk_webhook_t *hk_webhook_start(struct lws_context *context, struct lws_vhost *vhost,
                               const char *url, const char *body, hk_peer_t *peer,
                               hk_webhook_done_fn done);

/* The peer is going away or gave up waiting: never call it back; close the request. */
void hk_webhook_cancel(hk_webhook_t *request);

/* The lws protocol (add it to the vhost the requests are made from). */
int hk_webhook_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);

#define HK_WEBHOOK_PROTOCOL "hisoka-webhook"
/* The client-only vhost the requests go out on (made by the sig): its TLS context
 * checks the webhook's certificate against auth_webhook_ca_file. */
#define HK_WEBHOOK_VHOST "webhook-client"

#endif

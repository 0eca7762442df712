/* Where a channel lives when several nodes form one service (README "Cluster").
 * signal/ asks, app/cluster.c answers (through Redis): the interface is a table of
 * function pointers that app/ gives signaling in hk_signal_t.placement before
 * hk_signal_start. Without a cluster the pointer is NULL and every channel is local.
 *
 * A `connect` for a channel that is live on this node never asks: it joins here, Redis
 * or not. Any other waits, as for the auth webhook, in HK_PEER_WAIT_AUTH with
 * peer->placing set, and then joins here, is sent Sora's `redirect`, or is refused. */
#ifndef HK_SIGNAL_PLACEMENT_H
#define HK_SIGNAL_PLACEMENT_H

#include <jansson.h>
#include <stdbool.h>

#include "server/proto/sora_msg.h"

typedef struct hk_peer_s hk_peer_t;
typedef struct hk_signal_s hk_signal_t;

typedef enum {
    HK_PLACE_LOCAL = 0, /* the channel is (now) this node's: join here */
    HK_PLACE_REDIRECT,  /* another node owns it: send `redirect` to location */
    HK_PLACE_REFUSE,    /* close with close_code and reason */
} hk_place_verdict_t;

typedef struct {
    hk_place_verdict_t verdict;
    const char *location; /* REDIRECT: the owner's signaling URL */
    int close_code;       /* REFUSE */
    const char *reason;   /* REFUSE: the WebSocket close reason */
} hk_place_result_t;

typedef struct hk_place_request_s hk_place_request_t;
typedef void (*hk_place_done_fn)(void *arg, const hk_place_result_t *result);

typedef struct {
    void *impl;
    /* Places channel_id, which is not live here; redirected: the client's connect had
     * "redirect": true. Returns 1 with *now filled when it decides at once (never calling
     * done), or 0 with *request set: done(arg, result) is called once, later, unless
     * cancel(request) is called first. The result's strings live until done returns. */
    int (*start)(void *impl, const char *channel_id, bool redirected, hk_place_done_fn done,
                 void *arg, hk_place_request_t **request, hk_place_result_t *now);
    /* Forgets a request whose peer is gone: done is never called for it. */
    void (*cancel)(void *impl, hk_place_request_t *request);
    /* The last member left channel_id on this node. */
    void (*channel_ended)(void *impl, const char *channel_id);
    /* /health: an object for its "cluster" field (new reference); *degraded when the node
     * cannot place new channels (Redis unreachable). */
    json_t *(*health)(void *impl, bool *degraded);
    /* /metrics: Prometheus text (malloc'd) or NULL. */
    char *(*metrics)(void *impl);
} hk_placement_t;

/* True when a connect for msg must be placed first: a cluster is configured and the
 * channel is not live on this node. */
bool hk_placement_needed(const hk_signal_t *sig, const hk_connect_msg_t *msg);

/* Starts placing peer's connect (msg's JSON references are taken): the peer waits in
 * HK_PEER_WAIT_AUTH; then it goes on with hk_peer_connect_placed, gets `redirect` and is
 * closed, or is refused. */
void hk_placement_start(hk_peer_t *peer, hk_connect_msg_t *msg);

/* Called by hk_peer_destroy for a peer still waiting for its placement. */
void hk_placement_cancel(hk_peer_t *peer);

/* Called when a channel's last member left. */
void hk_placement_channel_ended(hk_signal_t *sig, const char *channel_id);

#endif

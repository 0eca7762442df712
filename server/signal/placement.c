#include "server/signal/placement.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/signal/channel.h"
#include "server/signal/peer.h"

bool hk_placement_needed(const hk_signal_t *sig, const hk_connect_msg_t *msg)
{
    if (!sig->placement)
        return false;
    for (const hk_channel_t *c = sig->channels; c; c = c->next)
        if (strcmp(c->id, msg->channel_id) == 0)
            return false;
    return true;
}

/* Sora's cluster (PROTOCOL.md §7): `redirect` before authentication; the client closes
 * and sends its connect to location with "redirect": true. hisoka closes too, once the
 * message is written, in case the client does not. */
static void finish(hk_peer_t *peer, const hk_place_result_t *result)
{
    hk_connect_msg_t *msg = peer->pending_connect;
    peer->pending_connect = NULL;
    switch (result->verdict) {
    case HK_PLACE_LOCAL:
        hk_peer_connect_placed(peer, msg);
        break;
    case HK_PLACE_REDIRECT:
        HK_LOG(HK_LOG_INFO, "cluster", peer->connection_id, "channel %s: redirect to %s",
               msg ? msg->channel_id : "?", result->location);
        hk_peer_send_json(peer, hk_sora_build_redirect(result->location));
        hk_peer_close(peer, HK_CLOSE_NORMAL, "REDIRECT");
        break;
    case HK_PLACE_REFUSE:
        hk_peer_close(peer, result->close_code, result->reason);
        break;
    }
    if (msg) {
        hk_connect_msg_clear(msg);
        free(msg);
    }
}

static void on_placed(void *arg, const hk_place_result_t *result)
{
    hk_peer_t *peer = arg;
    peer->placing = NULL;
    finish(peer, result);
}

void hk_placement_start(hk_peer_t *peer, hk_connect_msg_t *msg)
{
    hk_signal_t *sig = peer->sig;
    const hk_placement_t *pl = sig->placement;
    hk_connect_msg_t *pending = malloc(sizeof *pending);
    if (!pending) {
        sig->counters.refused_out_of_memory++;
        hk_peer_close(peer, HK_CLOSE_INTERNAL, "out of memory");
        return;
    }
    *pending = *msg; /* takes the JSON references */
    memset(msg, 0, sizeof *msg);
    peer->pending_connect = pending;
    peer->state = HK_PEER_WAIT_AUTH;
    peer->auth_started_ms = hk_signal_now_ms(sig);
    hk_place_result_t now = {0};
    hk_place_request_t *request = NULL;
    if (pl->start(pl->impl, pending->channel_id, pending->redirect, on_placed, peer, &request,
                  &now) == 0)
        peer->placing = request;
    else
        finish(peer, &now);
}

void hk_placement_cancel(hk_peer_t *peer)
{
    const hk_placement_t *pl = peer->sig->placement;
    if (pl && peer->placing)
        pl->cancel(pl->impl, peer->placing);
    peer->placing = NULL;
}

void hk_placement_channel_ended(hk_signal_t *sig, const char *channel_id)
{
    if (sig->placement)
        sig->placement->channel_ended(sig->placement->impl, channel_id);
}

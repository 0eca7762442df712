#include "server/signal/peer.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "server/proto/turn_rest.h"
#include "server/signal/channel.h"
#include "server/signal/placement.h"
#include "server/rtc/transport.h"
#include "server/sfu/relay.h"
#include "server/signal/webhook.h"

#define TX_QUEUE_LIMIT (4u << 20) /* bytes queued for a client that does not read */
#define CLOSE_GRACE_S  5          /* a closing peer that does not drain is cut */

bool hk_role_sends(hk_role_t role)
{
    return role == HK_ROLE_SENDRECV || role == HK_ROLE_SENDONLY;
}

bool hk_role_receives(hk_role_t role)
{
    return role == HK_ROLE_SENDRECV || role == HK_ROLE_RECVONLY;
}

/* The endpoint's events come from its media worker's thread (or from the main thread
 * while it holds the worker). They read only what never changes in a peer (sig, serial,
 * connection_id) and what belongs to the worker, and post the rest to signaling's
 * mailbox, where the peer is looked up again: it may be gone by then. */
typedef enum { PEER_EVENT_FAILED, PEER_EVENT_SWITCHED } peer_event_kind_t;

typedef struct {
    hk_message_t m;
    hk_signal_t *sig;
    uint64_t serial;
    peer_event_kind_t kind;
    int code; /* FAILED: close code and reason */
    char reason[120];
    char sender[HK_ID_LEN + 1]; /* SWITCHED: whose layer, what was asked, what moved */
    bool from_api;
    int want, previous, current;
} peer_event_t;

static void run_peer_event(hk_message_t *m)
{
    peer_event_t *e = (peer_event_t *)m;
    hk_peer_t *peer = hk_map_get(&e->sig->peer_serials, e->serial);
    if (!peer || peer->state == HK_PEER_CLOSING) {
        free(e);
        return;
    }
    if (e->kind == PEER_EVENT_FAILED) {
        hk_peer_close(peer, e->code, e->reason);
    } else if (peer->channel) {
        /* A simulcast layer it receives changed: it is told which (PROTOCOL.md §5). */
        HK_LOG(HK_LOG_INFO, "sfu", peer->connection_id, "receives %s of %s (was %s)",
               hk_sora_rid_name(e->current), e->sender, hk_sora_rid_name(e->previous));
        hk_simulcast_switched_t notify = {
            .channel_id = peer->channel->id,
            .sender_connection_id = e->sender,
            .trigger = e->from_api ? "rpc" : "auto",
            .request_rid = hk_sora_rid_name(e->want),
            .current_rid = hk_sora_rid_name(e->current),
            .previous_rid = hk_sora_rid_name(e->previous),
        };
        hk_peer_send_json(peer, hk_sora_build_simulcast_switched(&notify));
    }
    free(e);
}

static void post_event(const hk_peer_t *peer, peer_event_t *e)
{
    e->m.run = run_peer_event;
    e->sig = peer->sig;
    e->serial = peer->serial;
    if (!hk_mailbox_post(&peer->sig->events, &e->m))
        free(e); /* shutting down */
}

/* Its transport failed (consent, ICE, DTLS): the client is told why. */
static void on_media_failed(void *owner, int code, const char *reason)
{
    const hk_peer_t *peer = owner;
    peer_event_t *e = calloc(1, sizeof *e);
    if (!e) {
        HK_LOG(HK_LOG_ERROR, "media", peer->connection_id,
               "out of memory: cannot report a failed transport (%s)", reason);
        return;
    }
    e->kind = PEER_EVENT_FAILED;
    e->code = code;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    post_event(peer, e);
}

static void on_layer_switched(void *owner, hk_consumer_t *c, int previous, int current)
{
    const hk_peer_t *peer = owner;
    if (!c->producer)
        return;
    const hk_peer_t *sender = c->producer->endpoint->owner;
    peer_event_t *e = calloc(1, sizeof *e);
    if (!e)
        return; /* the notify is lost; the media is not */
    e->kind = PEER_EVENT_SWITCHED;
    snprintf(e->sender, sizeof e->sender, "%s", sender->connection_id);
    e->from_api = c->want_from_api;
    e->want = c->want;
    e->previous = previous;
    e->current = current;
    c->want_from_api = false; /* reported: later switches are the sender's doing */
    post_event(peer, e);
}

static const hk_endpoint_owner_t endpoint_owner = {
    .on_failed = on_media_failed,
    .on_layer_switched = on_layer_switched,
};

/* Holds its media worker: its transport, producers and consumers may be touched until
 * the current callback returns to the loop. */
static void hold_media(hk_peer_t *peer)
{
    if (peer->worker >= 0)
        hk_signal_media(peer->sig, peer->worker);
}

void hk_peer_drop_relays(hk_peer_t *peer)
{
    hk_signal_t *sig = peer->sig;
    for (int k = 0; k < 2; k++) {
        for (int w = 0; w < sig->n_workers; w++) {
            if (peer->relays[k][w]) {
                hold_media(peer);
                hk_signal_media(sig, w);
                hk_relay_destroy(peer->relays[k][w]);
                peer->relays[k][w] = NULL;
            }
        }
    }
}

hk_peer_t *hk_peer_create(hk_signal_t *sig, struct lws *wsi)
{
    hk_peer_t *peer = calloc(1, sizeof *peer);
    if (!peer)
        return NULL;
    hk_endpoint_init(&peer->endpoint, &endpoint_owner, peer);
    peer->sig = sig;
    peer->wsi = wsi;
    peer->worker = -1;
    peer->serial = ++sig->next_serial;
    peer->state = HK_PEER_WAIT_CONNECT;
    peer->created_ms = hk_signal_now_ms(sig);
    uint64_t session_id = 0;
    if (hk_id_generate(peer->connection_id) != 0 ||
        hk_random_bytes(&session_id, sizeof session_id) != 0) {
        free(peer);
        return NULL;
    }
    peer->session_id = session_id >> 2; /* keeps it a positive 63-bit number */
    if (hk_map_put(&sig->peer_serials, peer->serial, peer) != 0) {
        free(peer);
        return NULL;
    }
    peer->next = sig->peers;
    if (sig->peers)
        sig->peers->prev = peer;
    sig->peers = peer;
    return peer;
}

static void free_queue(hk_peer_t *peer)
{
    hk_out_t *out = peer->tx_head;
    while (out) {
        hk_out_t *next = out->next;
        free(out);
        out = next;
    }
    peer->tx_head = peer->tx_tail = NULL;
    peer->tx_bytes = 0;
}

void hk_peer_destroy(hk_peer_t *peer)
{
    hk_signal_t *sig = peer->sig;
    peer->state = HK_PEER_CLOSING;
    if (peer->channel) {
        hk_channel_leave(peer);
        sig->n_connections--;
    }
    hold_media(peer);
    hk_peer_drop_relays(peer);
    hk_endpoint_clear(&peer->endpoint);
    if (peer->transport) {
        hk_transport_destroy(peer->transport);
        sig->workers[peer->worker].connections--;
    }
    hk_map_remove(&sig->peer_serials, peer->serial);
    if (peer->webhook)
        hk_webhook_cancel(peer->webhook);
    hk_placement_cancel(peer);
    if (peer->pending_connect) {
        hk_connect_msg_clear(peer->pending_connect);
        free(peer->pending_connect);
    }
    if (peer->prev)
        peer->prev->next = peer->next;
    else
        sig->peers = peer->next;
    if (peer->next)
        peer->next->prev = peer->prev;
    free_queue(peer);
    free(peer->rx);
    free(peer->sections);
    json_decref(peer->metadata);
    json_decref(peer->notify_metadata);
    free(peer->reoffer_text);
    free(peer->notify_metadata_raw);
    json_decref(peer->authn_metadata);
    json_decref(peer->simulcast_encodings);
    json_decref(peer->webhook_encodings);
    free(peer);
}

int hk_peer_send(hk_peer_t *peer, const void *buf, size_t len, bool binary)
{
    if (peer->state == HK_PEER_CLOSING)
        return HK_ESTATE;
    if (peer->tx_bytes + len > TX_QUEUE_LIMIT) {
        peer->sig->counters.slow_reader_disconnects++;
        HK_LOG(HK_LOG_WARN, "signaling", peer->connection_id,
               "client does not read its WebSocket: %zu bytes queued, closing", peer->tx_bytes);
        free_queue(peer);
        hk_peer_close(peer, HK_CLOSE_LIMIT, "send queue overflow: client is not reading");
        return HK_ELIMIT;
    }
    hk_out_t *out = malloc(sizeof *out + LWS_PRE + len);
    if (!out)
        return HK_ENOMEM;
    out->next = NULL;
    out->len = len;
    out->binary = binary;
    memcpy(out->buf + LWS_PRE, buf, len);
    if (peer->tx_tail)
        peer->tx_tail->next = out;
    else
        peer->tx_head = out;
    peer->tx_tail = out;
    peer->tx_bytes += len;
    peer->sig->counters.messages_out++;
    lws_callback_on_writable(peer->wsi);
    return 0;
}

int hk_peer_send_json(hk_peer_t *peer, char *text)
{
    if (!text)
        return HK_ENOMEM;
    int rc = hk_peer_send(peer, text, strlen(text), false);
    free(text);
    return rc;
}

void hk_peer_close(hk_peer_t *peer, int code, const char *reason)
{
    if (peer->state == HK_PEER_CLOSING)
        return;
    HK_LOG(code == HK_CLOSE_NORMAL ? HK_LOG_INFO : HK_LOG_WARN, "signaling", peer->connection_id,
           "closing: %d %s", code, reason);
    peer->state = HK_PEER_CLOSING;
    peer->close_code = code;
    snprintf(peer->close_reason, sizeof peer->close_reason, "%s", reason);
    lws_set_timeout(peer->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
    lws_callback_on_writable(peer->wsi);
}

/* --- offers ---------------------------------------------------------------------- */

/* A slot the client has seen rejected, to take a new mid and track (JSEP 5.2.2), so the
 * offer does not grow with every publisher that came and went; NULL when none. Not while
 * an offer is out: its answer must find the mids it was sent. */
static hk_sdp_section_t *recyclable_section(hk_peer_t *peer)
{
    if (peer->offer_outstanding || peer->no_recycle)
        return NULL;
    for (size_t i = 0; i < peer->n_sections; i++)
        if (peer->sections[i].type == HK_SECTION_CLOSED && peer->sections[i].recyclable)
            return &peer->sections[i];
    return NULL;
}

static hk_sdp_section_t *add_section(hk_peer_t *peer, hk_section_type_t type, hk_media_kind_t kind)
{
    hk_sdp_section_t *s = recyclable_section(peer);
    bool recycled = s != NULL;
    if (!s) {
        if (peer->n_sections == HK_SDP_MAX_MEDIA)
            return NULL;
        if (peer->n_sections == peer->cap_sections) {
            size_t cap = peer->cap_sections ? peer->cap_sections * 2 : 8;
            hk_sdp_section_t *grown = realloc(peer->sections, cap * sizeof *grown);
            if (!grown)
                return NULL;
            peer->sections = grown;
            peer->cap_sections = cap;
        }
        s = &peer->sections[peer->n_sections++];
    }
    memset(s, 0, sizeof *s);
    s->type = type;
    s->kind = kind;
    s->recycled = recycled;
    s->mid_len = (uint8_t)snprintf(s->mid, sizeof s->mid, "%u", peer->next_mid++);
    return s;
}

/* The producer peer's consumer of publisher's `kind` attaches to, with peer's worker held:
 * the publisher's own on the same worker, else its relay's mirror on peer's worker (made
 * now if it is the first there, with both workers held). NULL on ENOMEM. */
static hk_producer_t *source_of(hk_peer_t *peer, hk_peer_t *publisher, hk_media_kind_t kind)
{
    hk_signal_t *sig = peer->sig;
    hold_media(peer);
    hk_producer_t *own = &publisher->endpoint.producers[kind];
    if (publisher->worker == peer->worker)
        return own;
    hk_relay_t **relay = &publisher->relays[kind][peer->worker];
    if (!*relay) {
        hold_media(publisher);
        *relay = hk_relay_create(own, sig->workers[publisher->worker].relays,
                                 sig->workers[peer->worker].relays);
        if (*relay)
            HK_LOG(HK_LOG_INFO, "sfu", publisher->connection_id,
                   "relays its %s from worker %d to worker %d",
                   kind == HK_MEDIA_AUDIO ? "audio" : "video", publisher->worker, peer->worker);
    }
    return *relay ? &(*relay)->mirror : NULL;
}

static void add_forward(hk_peer_t *peer, hk_peer_t *publisher, hk_media_kind_t kind,
                        const hk_track_t *track)
{
    if (!publisher->endpoint.producers[kind].live)
        return; /* it does not publish this kind (its answer, or hk_peer_publish_early) */
    /* Reuse an idle placeholder of the same kind before appending. */
    hk_sdp_section_t *s = NULL;
    for (size_t i = 0; i < peer->n_sections; i++) {
        hk_sdp_section_t *c = &peer->sections[i];
        if (c->type == HK_SECTION_FORWARD && c->kind == kind && c->stream_id[0] == '\0') {
            s = c;
            break;
        }
    }
    if (!s)
        s = add_section(peer, HK_SECTION_FORWARD, kind);
    if (!s) {
        HK_LOG(HK_LOG_WARN, "sdp", peer->connection_id, "too many m-sections, track not sent");
        return;
    }
    /* Its own SSRC and sequence numbers, and no packet before the client answered. */
    hk_producer_t *producer = source_of(peer, publisher, kind);
    hk_consumer_t *c = producer ? hk_endpoint_consume(&peer->endpoint, producer, s->mid) : NULL;
    if (!c) {
        HK_LOG(HK_LOG_ERROR, "sfu", peer->connection_id, "out of memory: track not sent");
        s->type = HK_SECTION_CLOSED;
        s->offered = s->answered = s->recyclable = false;
        return;
    }
    hk_consumer_set_want(c, peer->simulcast_want, false);
    s->offered = s->answered = false;
    snprintf(s->stream_id, sizeof s->stream_id, "%s", publisher->connection_id);
    /* Its publisher's track id; without one (no msid, or offered before its answer),
     * one unique in the channel: browsers take it for the track's id. */
    if (track->track_id[0])
        snprintf(s->track_id, sizeof s->track_id, "%s", track->track_id);
    else
        snprintf(s->track_id, sizeof s->track_id, "%s-%s",
                 kind == HK_MEDIA_AUDIO ? "audio" : "video", publisher->connection_id);
    snprintf(s->cname, sizeof s->cname, "%s", publisher->connection_id);
    s->ssrc = c->ssrc;
    /* Retransmissions go in the consumer's own SSRC; its RTX SSRC carries only the
     * padding of bandwidth probes. */
    s->rtx_ssrc = c->rtx_ssrc;
}

static hk_video_codec_t codec_from_name(const char *name)
{
    if (strcmp(name, "VP9") == 0)
        return HK_VIDEO_VP9;
    if (strcmp(name, "H264") == 0)
        return HK_VIDEO_H264;
    if (strcmp(name, "AV1") == 0)
        return HK_VIDEO_AV1;
    return HK_VIDEO_VP8;
}

/* Writes the current offer; the caller frees it. NULL on error (logged). */
static char *write_offer(hk_peer_t *peer)
{
    hk_signal_t *sig = peer->sig;
    hk_sdp_offer_t offer = {
        .session_id = peer->session_id,
        .session_version = ++peer->session_version,
        .ice_ufrag = peer->transport->ice_ufrag,
        .ice_pwd = peer->transport->ice_pwd,
        .fingerprint = sig->cert->fingerprint,
        .n_candidates = sig->n_candidates,
        .media_port = (uint16_t)sig->workers[peer->worker].media_port,
        .media_tcp_port = (uint16_t)sig->workers[peer->worker].media_tcp_port,
        .e2ee = peer->e2ee,
        .preferred_video = peer->video_codec,
        .sections = peer->sections,
        .n_sections = peer->n_sections,
    };
    for (size_t i = 0; i < sig->n_candidates; i++)
        offer.candidate_addresses[i] = sig->candidate_addresses[i];
    size_t size = 4096 + peer->n_sections * 3072;
    char *sdp = malloc(size);
    if (!sdp)
        return NULL;
    int n = hk_sdp_write_offer(&offer, sdp, size);
    peer->offered_sections = peer->n_sections;
    for (size_t i = 0; i < peer->n_sections; i++)
        peer->sections[i].offered = true;
    if (n < 0) {
        HK_LOG(HK_LOG_ERROR, "sdp", peer->connection_id, "cannot write offer: %s", hk_strerror(n));
        free(sdp);
        return NULL;
    }
    return sdp;
}

static void send_reoffer(hk_peer_t *peer)
{
    char *sdp = write_offer(peer);
    if (!sdp) {
        hk_peer_close(peer, HK_CLOSE_INTERNAL, "cannot write re-offer");
        return;
    }
    peer->offer_outstanding = true;
    peer->reoffer_pending = false;
    peer->sig->counters.reoffers++;
    char *text = peer->legacy_update ? hk_sora_build_update(sdp) : hk_sora_build_reoffer(sdp);
    free(sdp);
    free(peer->reoffer_text);
    peer->reoffer_text = text ? strdup(text) : NULL;
    peer->reoffer_sent_ms = hk_signal_now_ms(peer->sig);
    peer->reoffer_sends = 1;
    hk_peer_send_json(peer, text);
}

/* The set of forwarded tracks changed: re-offer now, or after the outstanding one. */
static void offer_changed(hk_peer_t *peer)
{
    if (peer->state == HK_PEER_CLOSING)
        return;
    if (peer->offer_outstanding)
        peer->reoffer_pending = true;
    else
        send_reoffer(peer);
}

bool hk_peer_publish_early(hk_peer_t *peer)
{
    if (peer->state != HK_PEER_WAIT_ANSWER || peer->tracks_early || !hk_role_sends(peer->role) ||
        peer->simulcast_rids || (!peer->audio && !peer->video))
        return false;
    hold_media(peer);
    hk_endpoint_set_producers(&peer->endpoint, peer->audio, peer->video, 0);
    peer->tracks_early = true;
    return true;
}

void hk_peer_add_publisher(hk_peer_t *peer, hk_peer_t *publisher)
{
    add_forward(peer, publisher, HK_MEDIA_AUDIO, &publisher->audio_track);
    add_forward(peer, publisher, HK_MEDIA_VIDEO, &publisher->video_track);
    offer_changed(peer);
}

void hk_peer_remove_publisher(hk_peer_t *peer, const char *publisher_id)
{
    bool changed = false;
    for (size_t i = 0; i < peer->n_sections; i++) {
        hk_sdp_section_t *s = &peer->sections[i];
        if (s->type == HK_SECTION_FORWARD && strcmp(s->stream_id, publisher_id) == 0) {
            hold_media(peer);
            hk_consumer_t *c = hk_endpoint_consumer(&peer->endpoint, s->ssrc);
            if (c)
                hk_endpoint_unconsume(&peer->endpoint, c);
            s->type = HK_SECTION_CLOSED;
            s->offered = s->answered = s->recyclable = false;
            changed = true;
        }
    }
    if (!changed)
        return;
    /* A BUNDLE group needs one section that is not rejected: a viewer whose last publisher
     * left keeps one as an idle placeholder (a=inactive), else browsers refuse the offer. */
    bool any_open = false;
    for (size_t i = 0; i < peer->n_sections && !any_open; i++)
        any_open = peer->sections[i].type != HK_SECTION_CLOSED;
    for (size_t i = 0; i < peer->n_sections && !any_open; i++) {
        hk_sdp_section_t *s = &peer->sections[i];
        if (strcmp(s->stream_id, publisher_id) == 0) {
            s->type = HK_SECTION_FORWARD;
            s->stream_id[0] = s->track_id[0] = s->cname[0] = '\0';
            s->ssrc = s->rtx_ssrc = 0;
            any_open = true;
        }
    }
    offer_changed(peer);
}

/* --- messages ------------------------------------------------------------------------ */

static void refuse(hk_peer_t *peer, const hk_sora_error_t *err)
{
    hk_peer_close(peer, err->close_code, err->reason);
}

static void admit(hk_peer_t *peer, hk_connect_msg_t *msg_in);

/* The auth webhook decided (server/signal/webhook.h). */
static void on_webhook(hk_peer_t *peer, hk_webhook_result_t *result)
{
    hk_connect_msg_t *msg = peer->pending_connect;
    peer->webhook = NULL;
    peer->pending_connect = NULL;
    if (!result->allowed) {
        peer->sig->counters.refused_auth++;
        hk_peer_close(peer, HK_CLOSE_UNAUTHORIZED, result->reason);
    } else {
        peer->authn_metadata = result->authn_metadata;
        result->authn_metadata = NULL;
        peer->webhook_encodings = result->simulcast_encodings;
        result->simulcast_encodings = NULL;
        admit(peer, msg);
    }
    if (msg) {
        hk_connect_msg_clear(msg);
        free(msg);
    }
}

/* Starts the auth webhook for a valid connect; the peer waits in WAIT_AUTH. */
static void ask_webhook(hk_peer_t *peer, hk_connect_msg_t *msg)
{
    hk_signal_t *sig = peer->sig;
    char address[64] = "";
    lws_get_peer_simple(peer->wsi, address, sizeof address);
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "channel_id", msg->channel_id,
                             "connection_id", peer->connection_id, "client_id",
                             msg->client_id[0] ? msg->client_id : peer->connection_id, "role",
                             hk_role_name(msg->role), "e2ee", msg->e2ee, "remote_address", address);
    json_object_set(body, "metadata", msg->metadata ? msg->metadata : json_null());
    if (msg->e2ee_mls) /* the scheme it asked for (absent: round 1's or Sora's) */
        json_object_set_new(body, "e2ee_protocol", json_string("mls"));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    hk_connect_msg_t *pending = text ? malloc(sizeof *pending) : NULL;
    if (pending) {
        *pending = *msg; /* takes the JSON references */
        memset(msg, 0, sizeof *msg);
        peer->pending_connect = pending;
        peer->state = HK_PEER_WAIT_AUTH;
        peer->auth_started_ms = hk_signal_now_ms(sig);
        peer->webhook = hk_webhook_start(sig->lws, lws_get_vhost(peer->wsi),
                                         sig->config->auth_webhook_url, text, peer, on_webhook);
    }
    free(text);
    if (!peer->webhook) {
        sig->counters.refused_auth++;
        hk_peer_close(peer, HK_CLOSE_UNAUTHORIZED,
                      "AUTH-WEBHOOK-FAILED: cannot reach the auth webhook");
    }
}

static void on_connect(hk_peer_t *peer, const char *text, size_t len)
{
    hk_signal_t *sig = peer->sig;
    const hk_config_t *config = sig->config;
    hk_connect_msg_t msg;
    hk_sora_error_t err;
    if (hk_sora_parse_connect(text, len, &msg, &err) != 0) {
        sig->counters.refused_bad_request++;
        refuse(peer, &err);
        return;
    }
    if (msg.e2ee && !config->e2ee) {
        sig->counters.refused_e2ee_mismatch++;
        hk_peer_close(peer, HK_CLOSE_FORBIDDEN,
                      "E2EE-DISABLED: e2ee is not enabled on this server");
    } else if (hk_placement_needed(sig, &msg)) {
        hk_placement_start(peer, &msg); /* then hk_peer_connect_placed */
    } else if (config->auth_webhook_url[0]) {
        ask_webhook(peer, &msg);
    } else {
        admit(peer, &msg);
    }
    hk_connect_msg_clear(&msg);
}

/* Admits a validated (and, with a webhook, approved) connect: joins the channel and
 * sends the offer. msg's JSON references are taken. */
static void admit(hk_peer_t *peer, hk_connect_msg_t *msg_in)
{
    hk_signal_t *sig = peer->sig;
    const hk_config_t *config = sig->config;
    hk_connect_msg_t msg = *msg_in;
    memset(msg_in, 0, sizeof *msg_in);
    hk_sora_error_t err;
    if (peer->state == HK_PEER_CLOSING)
        goto done;
    if (sig->n_connections >= config->max_connections) {
        sig->counters.refused_server_full++;
        hk_peer_close(peer, HK_CLOSE_LIMIT, "SERVER-FULL: too many connections on this server");
        goto done;
    }
    if (hk_channel_join(sig, peer, &msg, &err) != 0) {
        refuse(peer, &err);
        goto done;
    }
    sig->n_connections++;
    sig->counters.connections_total++;
    peer->worker = hk_channel_member_worker(peer->channel);
    peer->channel->members_on[peer->worker]++;
    peer->transport =
        hk_transport_create(hk_signal_media(sig, peer->worker), &hk_endpoint_transport_events,
                            &peer->endpoint, peer->connection_id, hk_signal_now_ms(sig));
    peer->endpoint.transport = peer->transport;
    if (peer->transport)
        sig->workers[peer->worker].connections++;
    if (!peer->transport) {
        sig->counters.refused_out_of_memory++;
        hk_peer_close(peer, HK_CLOSE_INTERNAL, "out of memory");
        goto done;
    }
    peer->role = msg.role;
    peer->e2ee = msg.e2ee;
    peer->audio = msg.audio;
    peer->video = msg.video;
    peer->video_codec = codec_from_name(msg.video_codec);
    peer->simulcast_want = (int8_t)(msg.simulcast_want == -2 ? HK_LAYER_AUTO : msg.simulcast_want);
    if (msg.simulcast && peer->video && hk_role_sends(peer->role)) {
        /* PROTOCOL.md §5: the webhook's encodings, else r0 /4, r1 /2, r2 /1. */
        peer->simulcast_encodings = peer->webhook_encodings ? json_incref(peer->webhook_encodings)
                                                            : hk_sora_default_encodings();
        const char *why = NULL;
        int rids = hk_sora_check_encodings(peer->simulcast_encodings, &why);
        if (rids <= 0) {
            hk_peer_close(peer, HK_CLOSE_INTERNAL, "cannot offer simulcast encodings");
            goto done;
        }
        peer->simulcast_rids = (uint8_t)rids;
    }
    peer->legacy_update = msg.legacy_update;
    snprintf(peer->client_id, sizeof peer->client_id, "%s",
             msg.client_id[0] ? msg.client_id : peer->connection_id);
    peer->metadata = msg.metadata;
    peer->notify_metadata = msg.signaling_notify_metadata;
    peer->notify_metadata_raw = msg.notify_metadata_raw;
    msg.metadata = msg.signaling_notify_metadata = NULL;
    msg.notify_metadata_raw = NULL;

    if (hk_role_sends(peer->role)) {
        if (peer->audio) {
            hk_sdp_section_t *s = add_section(peer, HK_SECTION_RECV, HK_MEDIA_AUDIO);
            snprintf(peer->audio_mid, sizeof peer->audio_mid, "%s", s->mid);
        }
        if (peer->video) {
            hk_sdp_section_t *s = add_section(peer, HK_SECTION_RECV, HK_MEDIA_VIDEO);
            s->simulcast_rids = peer->simulcast_rids;
            snprintf(peer->video_mid, sizeof peer->video_mid, "%s", s->mid);
        }
    }
    if (hk_role_receives(peer->role)) {
        for (hk_peer_t *m = peer->channel->members; m; m = m->channel_next) {
            if (m != peer && (m->announced || m->tracks_early) && hk_role_sends(m->role)) {
                add_forward(peer, m, HK_MEDIA_AUDIO, &m->audio_track);
                add_forward(peer, m, HK_MEDIA_VIDEO, &m->video_track);
            }
        }
    }
    if (peer->n_sections == 0) {
        /* Nothing to send or receive yet: idle placeholders keep one transport up;
         * they are filled when a publisher arrives. */
        add_section(peer, HK_SECTION_FORWARD, HK_MEDIA_AUDIO);
        add_section(peer, HK_SECTION_FORWARD, HK_MEDIA_VIDEO);
    }

    char *sdp = write_offer(peer);
    if (!sdp) {
        hk_peer_close(peer, HK_CLOSE_INTERNAL, "cannot write offer");
        goto done;
    }
    hk_offer_msg_t offer = {
        .sdp = sdp,
        .client_id = peer->client_id,
        .connection_id = peer->connection_id,
        .channel_id = peer->channel->id,
        .audio_mid = peer->audio_mid[0] ? peer->audio_mid : NULL,
        .video_mid = peer->video_mid[0] ? peer->video_mid : NULL,
        .authn_metadata = peer->authn_metadata,
        .encodings = peer->simulcast_encodings,
    };
    char turn_username[HK_TURN_USERNAME_MAX], turn_credential[HK_TURN_CREDENTIAL_MAX];
    if (config->turn_urls[0] &&
        hk_turn_rest_credential(config->turn_secret,
                                (uint64_t)time(NULL) + config->turn_credential_ttl_ms / 1000,
                                peer->connection_id, turn_username, turn_credential) == 0) {
        offer.turn_urls = config->turn_urls;
        offer.turn_username = turn_username;
        offer.turn_credential = turn_credential;
    }
    peer->state = HK_PEER_WAIT_ANSWER;
    peer->offer_outstanding = true;
    peer->next_ping_ms = hk_signal_now_ms(sig) + config->ping_interval_ms;
    sig->counters.offers++;
    HK_LOG(HK_LOG_INFO, "signaling", peer->connection_id, "connect: channel %s role %s%s%s",
           peer->channel->id, hk_role_name(peer->role), peer->e2ee ? " e2ee" : "",
           peer->legacy_update ? " (legacy client: renegotiates with update)" : "");
    hk_peer_send_json(peer, hk_sora_build_offer(&offer));
    free(sdp);
    /* MLS channel: it owes a key package from now on (docs/protocol.md §6.3). */
    if (hk_channel_mls_join(peer) != 0) {
        sig->counters.refused_channel_full++;
        hk_peer_close(peer, HK_CLOSE_LIMIT, "CHANNEL-FULL: the channel's MLS group is full");
    }
done:
    hk_connect_msg_clear(&msg);
}

static void take_track(const hk_sdp_answer_t *answer, const char *mid, uint8_t offered_rids,
                       hk_track_t *track)
{
    memset(track, 0, sizeof *track);
    if (!mid[0])
        return;
    const hk_sdp_media_t *m = hk_sdp_answer_find(answer, mid);
    if (!m || m->rejected || (m->direction != HK_DIR_SENDONLY && m->direction != HK_DIR_SENDRECV))
        return;
    track->simulcast_rids = m->simulcast_rids & offered_rids;
    track->ssrc = track->simulcast_rids ? 0 : m->ssrc;
    track->rtx_ssrc = track->simulcast_rids ? 0 : m->rtx_ssrc;
    snprintf(track->track_id, sizeof track->track_id, "%s", m->track_id);
}

/* Parses and checks an answer. Returns 0, or closes the peer and returns an error. */
static int accept_answer(hk_peer_t *peer, const char *sdp, size_t len, bool first)
{
    hk_sdp_answer_t *answer = malloc(sizeof *answer);
    if (!answer) {
        hk_peer_close(peer, HK_CLOSE_INTERNAL, "out of memory");
        return HK_ENOMEM;
    }
    const char *why = NULL;
    int rc = hk_sdp_parse_answer(sdp, len, peer->sig->config->max_message_size, answer, &why);
    if (rc == 0 && strcmp(answer->setup, "active") != 0) {
        why = "a=setup must be active (hisoka is the DTLS server)";
        rc = HK_EINVAL;
    }
    if (rc == 0) {
        /* Only what was offered: sections added since (a publisher that joined while
         * this offer was out) go into the next re-offer. */
        for (size_t i = 0; i < peer->offered_sections && rc == 0; i++)
            if (peer->sections[i].type != HK_SECTION_CLOSED &&
                !hk_sdp_answer_find(answer, peer->sections[i].mid)) {
                why = "answer lacks an m-section of the offer";
                rc = HK_EINVAL;
            }
    }
    if (rc != 0) {
        char reason[120];
        snprintf(reason, sizeof reason, "INVALID-SDP: %s", why ? why : "malformed answer");
        peer->sig->counters.bad_answers++;
        hk_peer_close(peer, HK_CLOSE_BAD_REQUEST, reason);
        free(answer);
        return rc;
    }
    /* What the client has now seen: tracks it accepted may get media, rejected slots may
     * be recycled. Sections changed after that offer was written wait for the next. */
    hold_media(peer);
    char moved[HK_SDP_MAX_MEDIA / 8][HK_SDP_ID_LEN];
    hk_media_kind_t moved_kind[HK_SDP_MAX_MEDIA / 8];
    size_t n_moved = 0;
    for (size_t i = 0; i < peer->offered_sections; i++) {
        hk_sdp_section_t *s = &peer->sections[i];
        if (!s->offered)
            continue;
        const hk_sdp_media_t *m = hk_sdp_answer_find(answer, s->mid);
        if (s->type == HK_SECTION_CLOSED) {
            s->recyclable = true;
            continue;
        }
        if (s->type != HK_SECTION_FORWARD || !s->stream_id[0] || !m || m->rejected)
            continue;
        hk_consumer_t *c = hk_endpoint_consumer(&peer->endpoint, s->ssrc);
        if (m->direction == HK_DIR_RECVONLY || m->direction == HK_DIR_SENDRECV) {
            s->answered = true;
            if (c)
                hk_endpoint_activate(&peer->endpoint, c);
            continue;
        }
        /* Declined (inactive): nothing goes there. A client that declines a track in a
         * recycled slot mishandles recycling (aiortc 1.4.0 matches transceivers by m-line
         * index): the track moves to a new section, and this client's slots are not
         * recycled again. */
        s->answered = false;
        if (c)
            c->active = false;
        if (s->recycled && n_moved < sizeof moved / sizeof moved[0]) {
            HK_LOG(HK_LOG_INFO, "sdp", peer->connection_id,
                   "track declined in a recycled m-section (mid %s): offered again in a new one; "
                   "no recycling for this client",
                   s->mid);
            peer->no_recycle = true;
            snprintf(moved[n_moved], sizeof moved[0], "%s", s->stream_id);
            moved_kind[n_moved++] = s->kind;
            if (c)
                hk_endpoint_unconsume(&peer->endpoint, c);
            s->type = HK_SECTION_CLOSED;
            s->offered = s->recyclable = false;
            s->stream_id[0] = s->track_id[0] = s->cname[0] = '\0';
            s->ssrc = 0;
        }
    }
    for (size_t i = 0; i < n_moved && peer->channel; i++) {
        hk_peer_t *publisher = hk_channel_find(peer->channel, moved[i], strlen(moved[i]));
        if (publisher)
            add_forward(peer, publisher, moved_kind[i],
                        moved_kind[i] == HK_MEDIA_AUDIO ? &publisher->audio_track
                                                        : &publisher->video_track);
    }
    if (n_moved)
        offer_changed(peer);
    if (first) {
        take_track(answer, peer->audio_mid, 0, &peer->audio_track);
        take_track(answer, peer->video_mid, peer->simulcast_rids, &peer->video_track);
        hk_transport_set_remote(peer->transport, answer->ice_ufrag, answer->ice_pwd,
                                answer->fingerprint_algorithm, answer->fingerprint,
                                answer->fingerprint_len);
        const hk_track_t *video = &peer->video_track;
        hk_transport_set_streams(peer->transport, peer->audio_track.ssrc, video->ssrc,
                                 video->rtx_ssrc);
        hk_transport_set_simulcast(peer->transport, video->simulcast_rids);
        if (peer->simulcast_rids && !video->simulcast_rids && video->ssrc)
            HK_LOG(HK_LOG_INFO, "sdp", peer->connection_id,
                   "simulcast offered, answered with one stream");
        bool audio = peer->audio_track.ssrc != 0;
        bool has_video = video->ssrc != 0 || video->simulcast_rids;
        /* Tracks offered to the members before this answer that it did not confirm are
         * taken back; the announcement offers what it answered. (An early publisher was
         * offered no simulcast, so its answer has none.) */
        if (peer->tracks_early && (audio != peer->endpoint.producers[HK_MEDIA_AUDIO].live ||
                                   has_video != peer->endpoint.producers[HK_MEDIA_VIDEO].live))
            hk_channel_take_back_early(peer);
        hk_endpoint_set_producers(&peer->endpoint, audio, has_video, video->simulcast_rids);
    }
    free(answer);
    return 0;
}

void hk_peer_on_text(hk_peer_t *peer, const char *text, size_t len)
{
    if (peer->state == HK_PEER_CLOSING)
        return;
    peer->sig->counters.messages_in++;
    if (peer->state == HK_PEER_WAIT_CONNECT) {
        on_connect(peer, text, len);
        return;
    }
    if (peer->state == HK_PEER_WAIT_AUTH)
        return; /* nothing is expected before the offer */
    hk_sora_msg_t msg;
    hk_sora_error_t err;
    if (hk_sora_parse_message(text, len, &msg, &err) != 0) {
        refuse(peer, &err);
        return;
    }
    switch (msg.type) {
    case HK_MSG_ANSWER:
        if (peer->state != HK_PEER_WAIT_ANSWER) {
            hk_peer_close(peer, HK_CLOSE_BAD_REQUEST, "answer was already received");
            break;
        }
        if (accept_answer(peer, msg.sdp, msg.sdp_len, true) != 0)
            break;
        peer->state = HK_PEER_ACTIVE;
        peer->offer_outstanding = false;
        hk_channel_announce(peer);
        if (peer->reoffer_pending)
            send_reoffer(peer);
        break;
    case HK_MSG_RE_ANSWER:
        if (peer->state != HK_PEER_ACTIVE || !peer->offer_outstanding) {
            hk_peer_close(peer, HK_CLOSE_BAD_REQUEST, "re-answer without a re-offer");
            break;
        }
        if (accept_answer(peer, msg.sdp, msg.sdp_len, false) != 0)
            break;
        peer->offer_outstanding = false;
        /* New tracks are known to the browser now: get it a keyframe of each. */
        hold_media(peer);
        hk_endpoint_request_keyframes(&peer->endpoint, hk_signal_now_ms(peer->sig));
        if (peer->reoffer_pending)
            send_reoffer(peer);
        break;
    case HK_MSG_PONG:
        peer->missed_pongs = 0;
        break;
    case HK_MSG_DISCONNECT:
        hk_peer_close(peer, HK_CLOSE_NORMAL, "NO-ERROR");
        break;
    case HK_MSG_CANDIDATE: /* ICE-lite: the client's address comes from its checks */
    case HK_MSG_STATS:
        break;
    }
    hk_sora_msg_clear(&msg);
}

void hk_peer_on_binary(hk_peer_t *peer, const uint8_t *buf, size_t len)
{
    if (peer->state == HK_PEER_CLOSING)
        return;
    peer->sig->counters.messages_in++;
    if (peer->state == HK_PEER_WAIT_CONNECT || peer->state == HK_PEER_WAIT_AUTH) {
        hk_peer_close(peer, HK_CLOSE_BAD_REQUEST, "binary message before the offer");
        return;
    }
    /* docs/protocol.md §6.5: 0x10..0x1f are MLS envelopes (only in MLS channels); an MLS
     * channel takes nothing else. */
    if (len >= 1 && buf[0] >= 0x10 && buf[0] <= 0x1f) {
        hk_channel_relay_mls(peer, buf, len);
    } else if (peer->channel && peer->channel->mls) {
        peer->sig->counters.key_messages_dropped++;
        HK_LOG(HK_LOG_DEBUG, "keyrelay", peer->connection_id,
               "key message dropped: type %u in an MLS channel", len ? buf[0] : 0);
    } else {
        hk_channel_relay_key(peer, buf, len);
    }
}

void hk_peer_tick(hk_peer_t *peer, uint64_t now_ms)
{
    const hk_config_t *config = peer->sig->config;
    if (peer->state == HK_PEER_CLOSING)
        return;
    if (peer->state == HK_PEER_WAIT_AUTH && peer->placing)
        return; /* the cluster answers or gives up by itself */
    if (peer->state == HK_PEER_WAIT_AUTH) {
        if (now_ms - peer->auth_started_ms >= config->auth_webhook_timeout_ms) {
            hk_webhook_cancel(peer->webhook);
            peer->webhook = NULL;
            peer->sig->counters.refused_auth++;
            hk_peer_close(peer, HK_CLOSE_UNAUTHORIZED,
                          "AUTH-WEBHOOK-TIMEOUT: the auth webhook did not answer in time");
        }
        return;
    }
    if (peer->state == HK_PEER_WAIT_CONNECT) {
        if (now_ms - peer->created_ms >= config->connect_timeout_ms) {
            peer->sig->counters.timeouts_connect++;
            hk_peer_close(peer, HK_CLOSE_TIMEOUT, "CONNECT-TIMEOUT: no connect message in time");
        }
        return;
    }
    /* An unanswered re-offer is sent once more, then the client is closed: it would
     * otherwise never hear of anyone who joins later. Changes meanwhile wait in
     * reoffer_pending and go out with the next re-offer. */
    if (peer->state == HK_PEER_ACTIVE && peer->offer_outstanding && peer->reoffer_text &&
        now_ms - peer->reoffer_sent_ms >= config->reoffer_timeout_ms) {
        if (peer->reoffer_sends >= 2) {
            peer->sig->counters.timeouts_reoffer++;
            hk_peer_close(peer, HK_CLOSE_TIMEOUT,
                          "RE-OFFER-TIMEOUT: no re-answer to the re-offer, sent twice");
            return;
        }
        HK_LOG(HK_LOG_INFO, "signaling", peer->connection_id,
               "no re-answer in %u ms: sending the re-offer again", config->reoffer_timeout_ms);
        peer->reoffer_sends++;
        peer->reoffer_sent_ms = now_ms;
        hk_peer_send(peer, peer->reoffer_text, strlen(peer->reoffer_text), false);
    }
    if (now_ms < peer->next_ping_ms)
        return;
    if (peer->missed_pongs >= config->max_missed_pongs) {
        peer->sig->counters.timeouts_pong++;
        hk_peer_close(peer, HK_CLOSE_TIMEOUT, "PING-TIMEOUT: no pong received");
        return;
    }
    peer->missed_pongs++;
    peer->next_ping_ms = now_ms + config->ping_interval_ms;
    hk_peer_send_json(peer, hk_sora_build_ping());
}

/* The cluster placed the channel here (server/signal/placement.c): the connect goes on as
 * if it had just arrived. msg's JSON references are taken. */
void hk_peer_connect_placed(hk_peer_t *peer, hk_connect_msg_t *msg)
{
    if (peer->sig->config->auth_webhook_url[0])
        ask_webhook(peer, msg);
    else
        admit(peer, msg);
}

#include "server/signal/channel.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/proto/keyrelay.h"
#include "server/proto/mls_frame.h"
#include "server/rtc/transport.h"
#include "server/signal/placement.h"

static hk_channel_t *find_channel(hk_signal_t *sig, const char *id)
{
    for (hk_channel_t *c = sig->channels; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static int refuse(hk_sora_error_t *err, int code, const char *reason, uint64_t *counter)
{
    err->close_code = code;
    err->reason = reason;
    (*counter)++;
    return HK_ELIMIT;
}

/* --- MLS: the channel's delivery service (docs/protocol.md §6.5) -------------------- */

static void mls_send(void *user, const char *conn_id, const uint8_t *msg, size_t len)
{
    hk_channel_t *channel = user;
    hk_peer_t *peer = hk_channel_find(channel, conn_id, strlen(conn_id));
    if (peer)
        hk_peer_send(peer, msg, len, true);
}

/* hk_peer_close only marks the peer and waits for its queue to drain: the peer leaves the
 * channel (and the DS, which has forgotten it already) later, from its WebSocket's close,
 * never from inside this callback. */
static void mls_close(void *user, const char *conn_id, const char *reason)
{
    hk_channel_t *channel = user;
    hk_peer_t *peer = hk_channel_find(channel, conn_id, strlen(conn_id));
    if (!peer)
        return;
    bool bad_input = strcmp(reason, "MLS-MALFORMED") == 0 || strcmp(reason, "MLS-INVALID") == 0;
    const char *sentence =
        strcmp(reason, "MLS-MALFORMED") == 0        ? "too many malformed MLS messages"
        : strcmp(reason, "MLS-INVALID") == 0        ? "reported too many MLS messages as invalid"
        : strcmp(reason, "MLS-NO-KEY-PACKAGE") == 0 ? "no MLS key package in time"
        : strcmp(reason, "MLS-UNRESPONSIVE") == 0   ? "missed too many MLS commit deadlines"
                                                    : "closed by the MLS delivery service";
    char text[120];
    snprintf(text, sizeof text, "%s: %s", reason, sentence);
    hk_peer_close(peer, bad_input ? HK_CLOSE_BAD_REQUEST : HK_CLOSE_TIMEOUT, text);
}

static const hk_mls_ds_callbacks_t mls_callbacks = {.send = mls_send, .close = mls_close};

static void on_mls_deadline(uv_timer_t *timer);

/* Arms the channel's timer at the DS's next deadline (the 1 s signaling tick is too
 * coarse for a 2 s commit deadline). */
static void mls_arm(hk_channel_t *channel)
{
    uint64_t next = hk_mls_ds_next_deadline(channel->mls_ds);
    if (next == UINT64_MAX) {
        uv_timer_stop(&channel->mls_timer);
        return;
    }
    uint64_t now = hk_signal_now_ms(channel->sig);
    uv_timer_start(&channel->mls_timer, on_mls_deadline, next > now ? next - now : 0, 0);
}

static void on_mls_deadline(uv_timer_t *timer)
{
    hk_channel_t *channel = timer->data;
    hk_mls_ds_tick(channel->mls_ds, hk_signal_now_ms(channel->sig));
    mls_arm(channel);
}

static void free_channel(uv_handle_t *handle)
{
    free(handle->data);
}

static void retire_stats(hk_signal_t *sig, const hk_mls_ds_stats_t *s)
{
    hk_mls_ds_stats_t *t = &sig->mls_retired;
    t->proposals_sent += s->proposals_sent;
    t->revokes_sent += s->revokes_sent;
    t->commits_accepted += s->commits_accepted;
    t->commits_refused += s->commits_refused;
    t->welcomes_sent += s->welcomes_sent;
    t->malformed += s->malformed;
    t->rate_limited += s->rate_limited;
    t->resets += s->resets;
    t->closes += s->closes;
}

/* Frees an empty channel: at once, or (MLS) once its timer has closed. */
static void destroy_channel(hk_channel_t *channel)
{
    if (!channel->mls) {
        free(channel);
        return;
    }
    if (channel->mls_ds) {
        retire_stats(channel->sig, hk_mls_ds_stats(channel->mls_ds));
        hk_mls_ds_free(channel->mls_ds);
        channel->mls_ds = NULL;
    }
    uv_timer_stop(&channel->mls_timer);
    uv_close((uv_handle_t *)&channel->mls_timer, free_channel);
}

int hk_channel_mls_join(hk_peer_t *peer)
{
    hk_channel_t *channel = peer->channel;
    if (!channel || !channel->mls)
        return 0;
    int rc = hk_mls_ds_join(channel->mls_ds, peer->connection_id, hk_signal_now_ms(peer->sig));
    if (rc == 0)
        mls_arm(channel);
    return rc;
}

void hk_channel_relay_mls(hk_peer_t *peer, const uint8_t *buf, size_t len)
{
    hk_channel_t *channel = peer->channel;
    hk_signal_t *sig = peer->sig;
    if (!channel || !channel->mls) {
        sig->counters.key_messages_dropped++;
        HK_LOG(HK_LOG_DEBUG, "mls", peer->connection_id,
               "MLS message dropped: the channel does not use MLS");
        return;
    }
    sig->counters.mls_messages_in++;
    const char *why = NULL;
    int rc = hk_mls_ds_receive(channel->mls_ds, peer->connection_id, buf, len,
                               hk_signal_now_ms(sig), &why);
    if (rc != 0) {
        sig->counters.mls_messages_dropped++;
        HK_LOG(HK_LOG_DEBUG, "mls", peer->connection_id, "MLS message type 0x%02x dropped: %s",
               len ? buf[0] : 0, why ? why : hk_strerror(rc));
    } else if (buf[0] == HK_MLS_KEY_PACKAGE && peer->state != HK_PEER_CLOSING) {
        /* Its Add is on its way to the group: the members' renegotiation for its tracks
         * starts now, alongside its own setup, rather than after its answer. */
        hk_channel_offer_early(peer);
    }
    /* The peer may have been closed by the DS: it is still a member until its socket
     * goes, and the channel lives until then. */
    mls_arm(channel);
}

int hk_channel_join(hk_signal_t *sig, hk_peer_t *peer, const hk_connect_msg_t *msg,
                    hk_sora_error_t *err)
{
    const hk_config_t *config = sig->config;
    size_t metadata = msg->notify_metadata_raw_len;
    if (metadata > config->max_notify_metadata_size)
        return refuse(err, HK_CLOSE_TOO_LARGE,
                      "METADATA-TOO-LARGE: signaling_notify_metadata is over "
                      "max_notify_metadata_size",
                      &sig->counters.refused_too_large);
    hk_channel_t *channel = find_channel(sig, msg->channel_id);
    if (!channel) {
        if (sig->n_channels >= config->max_channels)
            return refuse(err, HK_CLOSE_LIMIT, "SERVER-FULL: too many channels on this server",
                          &sig->counters.refused_server_full);
        channel = calloc(1, sizeof *channel);
        if (!channel)
            return refuse(err, HK_CLOSE_INTERNAL, "out of memory",
                          &sig->counters.refused_out_of_memory);
        channel->sig = sig;
        channel->e2ee = msg->e2ee;
        if (msg->e2ee_mls) {
            channel->mls_ds = hk_mls_ds_new(&sig->mls_config, &mls_callbacks, channel);
            if (!channel->mls_ds || uv_timer_init(sig->loop, &channel->mls_timer) != 0) {
                hk_mls_ds_free(channel->mls_ds);
                free(channel);
                return refuse(err, HK_CLOSE_INTERNAL, "out of memory",
                              &sig->counters.refused_out_of_memory);
            }
            channel->mls = true;
            channel->mls_timer.data = channel;
        }
        snprintf(channel->id, sizeof channel->id, "%s", msg->channel_id);
        channel->worker = hk_signal_place(sig);
        sig->workers[channel->worker].channels++;
        channel->next = sig->channels;
        if (sig->channels)
            sig->channels->prev = channel;
        sig->channels = channel;
        sig->n_channels++;
    } else if (channel->e2ee != msg->e2ee) {
        return refuse(err, HK_CLOSE_FORBIDDEN,
                      channel->e2ee ? "E2EE-MISMATCH: this channel requires e2ee"
                                    : "E2EE-MISMATCH: this channel does not use e2ee",
                      &sig->counters.refused_e2ee_mismatch);
    } else if (channel->mls != msg->e2ee_mls) {
        return refuse(err, HK_CLOSE_FORBIDDEN,
                      channel->mls ? "E2EE-MISMATCH: this channel uses MLS"
                                   : "E2EE-MISMATCH: this channel does not use MLS",
                      &sig->counters.refused_e2ee_mismatch);
    } else if (channel->n_members >= config->max_connections_per_channel) {
        return refuse(err, HK_CLOSE_LIMIT, "CHANNEL-FULL: the channel has too many connections",
                      &sig->counters.refused_channel_full);
    } else if (channel->metadata_bytes + metadata > config->max_channel_notify_metadata_size) {
        return refuse(err, HK_CLOSE_LIMIT,
                      "CHANNEL-FULL: the members' signaling_notify_metadata is over "
                      "max_channel_notify_metadata_size",
                      &sig->counters.refused_channel_full);
    }
    channel->metadata_bytes += metadata;
    peer->metadata_charge = metadata;
    /* Append, so members stay in join order. */
    peer->channel = channel;
    peer->channel_next = NULL;
    peer->channel_prev = NULL;
    if (!channel->members) {
        channel->members = peer;
    } else {
        hk_peer_t *last = channel->members;
        while (last->channel_next)
            last = last->channel_next;
        last->channel_next = peer;
        peer->channel_prev = last;
    }
    channel->n_members++;
    return 0;
}

hk_channel_counts_t hk_channel_counts(const hk_channel_t *channel)
{
    hk_channel_counts_t counts = {0};
    for (const hk_peer_t *m = channel->members; m; m = m->channel_next) {
        if (!m->announced)
            continue;
        counts.connections++;
        if (m->role == HK_ROLE_SENDRECV)
            counts.sendrecv++;
        else if (m->role == HK_ROLE_SENDONLY)
            counts.sendonly++;
        else
            counts.recvonly++;
    }
    return counts;
}

static hk_notify_conn_t describe(const hk_peer_t *peer, uint64_t now_ms)
{
    hk_notify_conn_t c = {
        .role = peer->role,
        .client_id = peer->client_id,
        .connection_id = peer->connection_id,
        .audio = peer->audio && hk_role_sends(peer->role),
        .video = peer->video && hk_role_sends(peer->role),
        .minutes = peer->joined_ms ? (long)((now_ms - peer->joined_ms) / 60000) : 0,
        .e2ee = peer->e2ee,
        .metadata = peer->notify_metadata,
        .metadata_raw = peer->notify_metadata_raw,
        .authn_metadata = peer->authn_metadata,
    };
    return c;
}

/* Sends one notify about subject to every announced member except skip. */
static void notify_members(hk_channel_t *channel, const char *event, const hk_peer_t *subject,
                           const hk_peer_t *skip)
{
    hk_signal_t *sig = channel->sig;
    if (!sig->config->signaling_notify)
        return;
    hk_channel_counts_t counts = hk_channel_counts(channel);
    hk_notify_conn_t c = describe(subject, hk_signal_now_ms(sig));
    char *text = hk_sora_build_notify(event, channel->id, &c, &counts,
                                      sig->config->signaling_notify_metadata, NULL, 0, false);
    if (!text)
        return;
    for (hk_peer_t *m = channel->members; m; m = m->channel_next) {
        if (m == skip || !m->announced || m->state == HK_PEER_CLOSING)
            continue;
        hk_peer_send(m, text, strlen(text), false);
        sig->counters.notifies++;
    }
    free(text);
}

/* Offers publisher's tracks to every receiving member. */
static void offer_tracks(hk_channel_t *channel, hk_peer_t *publisher)
{
    for (hk_peer_t *m = channel->members; m; m = m->channel_next)
        if (m != publisher && m->state != HK_PEER_CLOSING && m->state != HK_PEER_WAIT_CONNECT &&
            hk_role_receives(m->role))
            hk_peer_add_publisher(m, publisher);
}

void hk_channel_announce(hk_peer_t *peer)
{
    hk_channel_t *channel = peer->channel;
    hk_signal_t *sig = channel->sig;
    uint64_t now = hk_signal_now_ms(sig);
    peer->announced = true;
    peer->joined_ms = now;

    if (sig->config->signaling_notify) {
        /* The joiner's own event lists everyone already there. */
        hk_notify_conn_t *existing = calloc((size_t)channel->n_members, sizeof *existing);
        size_t n = 0;
        for (hk_peer_t *m = channel->members; m && existing; m = m->channel_next)
            if (m != peer && m->announced)
                existing[n++] = describe(m, now);
        hk_channel_counts_t counts = hk_channel_counts(channel);
        hk_notify_conn_t self = describe(peer, now);
        char *text = hk_sora_build_notify("connection.created", channel->id, &self, &counts,
                                          sig->config->signaling_notify_metadata,
                                          existing ? existing : &self, n, peer->legacy_update);
        free(existing);
        hk_peer_send_json(peer, text);
        sig->counters.notifies++;
        notify_members(channel, "connection.created", peer, peer);
    }

    if (!peer->tracks_early && hk_role_sends(peer->role) &&
        (peer->audio_track.ssrc || peer->video_track.ssrc || peer->video_track.simulcast_rids))
        offer_tracks(channel, peer);
}

void hk_channel_offer_early(hk_peer_t *peer)
{
    if (peer->channel && hk_peer_publish_early(peer)) { /* before its answer, so unannounced */
        HK_LOG(HK_LOG_DEBUG, "channel", peer->connection_id,
               "its tracks are offered to the members with its Add, before its answer");
        offer_tracks(peer->channel, peer);
    }
}

void hk_channel_take_back_early(hk_peer_t *peer)
{
    HK_LOG(HK_LOG_INFO, "channel", peer->connection_id,
           "its answer differs from the tracks offered before it: offered again as answered");
    for (hk_peer_t *m = peer->channel->members; m; m = m->channel_next)
        if (m != peer)
            hk_peer_remove_publisher(m, peer->connection_id);
    hk_peer_drop_relays(peer);
    peer->tracks_early = false;
}

void hk_channel_leave(hk_peer_t *peer)
{
    hk_channel_t *channel = peer->channel;
    hk_signal_t *sig = channel->sig;
    if (peer->channel_prev)
        peer->channel_prev->channel_next = peer->channel_next;
    else
        channel->members = peer->channel_next;
    if (peer->channel_next)
        peer->channel_next->channel_prev = peer->channel_prev;
    channel->n_members--;
    if (peer->worker >= 0)
        channel->members_on[peer->worker]--;
    channel->metadata_bytes -= peer->metadata_charge;
    peer->metadata_charge = 0;
    peer->channel = NULL;
    if (channel->mls) {
        hk_mls_ds_leave(channel->mls_ds, peer->connection_id, hk_signal_now_ms(sig));
        if (channel->n_members > 0)
            mls_arm(channel);
    }

    if (peer->announced)
        notify_members(channel, "connection.destroyed", peer, NULL);
    if ((peer->announced || peer->tracks_early) && hk_role_sends(peer->role))
        for (hk_peer_t *m = channel->members; m; m = m->channel_next)
            hk_peer_remove_publisher(m, peer->connection_id);
    HK_LOG(HK_LOG_INFO, "channel", peer->connection_id, "left channel %s (%d members left)",
           channel->id, channel->n_members);

    if (channel->n_members == 0) {
        if (channel->prev)
            channel->prev->next = channel->next;
        else
            sig->channels = channel->next;
        if (channel->next)
            channel->next->prev = channel->prev;
        sig->n_channels--;
        sig->workers[channel->worker].channels--;
        hk_placement_channel_ended(sig, channel->id);
        destroy_channel(channel);
    }
}

int hk_channel_member_worker(const hk_channel_t *channel)
{
    const hk_signal_t *sig = channel->sig;
    int threshold = sig->config->channel_spread_threshold;
    if (threshold == 0 || channel->members_on[channel->worker] < threshold)
        return channel->worker;
    int best = channel->worker;
    for (int i = 0; i < sig->n_workers; i++)
        if (channel->members_on[i] < channel->members_on[best])
            best = i;
    return best;
}

hk_peer_t *hk_channel_find(const hk_channel_t *channel, const char *connection_id, size_t len)
{
    if (len != HK_ID_LEN)
        return NULL;
    for (hk_peer_t *m = channel->members; m; m = m->channel_next)
        if (memcmp(m->connection_id, connection_id, HK_ID_LEN) == 0)
            return m;
    return NULL;
}

static void drop_key(hk_peer_t *peer, const char *why)
{
    hk_signal_t *sig = peer->sig;
    sig->counters.key_messages_dropped++;
    HK_LOG(HK_LOG_DEBUG, "keyrelay", peer->connection_id, "key message dropped: %s", why);
}

void hk_channel_relay_key(hk_peer_t *peer, const uint8_t *buf, size_t len)
{
    hk_channel_t *channel = peer->channel;
    const hk_config_t *config = peer->sig->config;
    if (!channel || !channel->e2ee) {
        drop_key(peer, "key message in a channel without e2ee");
        return;
    }
    uint64_t now = hk_signal_now_ms(peer->sig);
    if (now - peer->key_window_ms >= 1000) {
        peer->key_window_ms = now;
        peer->key_count = 0;
    }
    if (++peer->key_count > config->max_key_messages_per_second) {
        drop_key(peer, "key message rate limit");
        return;
    }
    hk_keymsg_t msg;
    const char *why = NULL;
    if (hk_keymsg_parse(buf, len, &msg, &why) != 0) {
        drop_key(peer, why);
        return;
    }
    if (memcmp(msg.src_id, peer->connection_id, HK_ID_LEN) != 0) {
        drop_key(peer, "source id is not the sender's own");
        return;
    }
    hk_peer_t *dst = hk_channel_find(channel, msg.dst_id, HK_ID_LEN);
    if (!dst || dst == peer || dst->state == HK_PEER_CLOSING ||
        dst->state == HK_PEER_WAIT_CONNECT) {
        drop_key(peer, "destination is not a live member of the channel");
        return;
    }
    if (hk_peer_send(dst, buf, len, true) != 0)
        return;
    peer->sig->counters.key_messages_relayed++;
    HK_LOG(HK_LOG_DEBUG, "keyrelay", peer->connection_id, "key message type %u relayed to %.*s",
           msg.type, HK_ID_LEN, dst->connection_id);
    /* dst will install peer's key, and a message to peer may acknowledge peer's key:
     * both publishers owe key frames (docs/protocol.md §3.4). */
    if (peer->transport) {
        hk_signal_media(peer->sig, peer->worker);
        hk_transport_keyframe_after_key(peer->transport, now);
    }
    if (dst->transport) {
        hk_signal_media(peer->sig, dst->worker);
        hk_transport_keyframe_after_key(dst->transport, now);
    }
}

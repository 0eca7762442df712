#include "server/sfu/consumer.h"

#include "common/bytes.h"
#include "common/error.h"
#include "common/log.h"
#include "server/proto/dd.h"
#include "server/proto/vcodec.h"
#include "server/rtc/srtp.h"
#include "server/rtc/transport.h"
#include "server/sfu/endpoint.h"
#include "server/sfu/forward.h"
#include "server/sfu/producer.h"

#define RETRANSMIT_AGE_MS    1000
#define SWITCH_GUARD_PACKETS 512 /* after a switch, older packets of the new layer are dropped */
#define SWITCH_REQUEST_MS    500 /* a missing key frame of the target is asked for again */
#define VIDEO_CLOCK_PER_MS   90  /* RTP video clock: 90 kHz */

/* Writes the producer's packet mapped to this consumer into slot, as its own sequence
 * number `own`. Returns the length, or a negative error (nothing to send). */
static int write_mapped(hk_consumer_t *c, hk_transport_t *t, uint8_t *slot, const uint8_t *buf,
                        size_t len, const hk_rtp_header_t *hdr, uint16_t own, uint8_t layer,
                        hk_forward_layout_t *layout)
{
    int n = hk_forward_rewrite(buf, len, hdr, slot, HK_TX_BUF_SIZE - HK_SRTP_MAX_TRAILER, c->mid,
                               c->mid_len, true, t->twcc_out_seq, layout);
    if (n < 0)
        return n;
    hk_wr16(slot + 2, own);
    hk_wr32(slot + 4, hdr->timestamp + c->ts_offset);
    hk_wr32(slot + 8, c->ssrc);
    if (c->history)
        c->history[own & (HK_CONSUMER_HISTORY - 1)] =
            (hk_consumer_sent_t){own, hdr->seq, layer, (uint8_t)c->switches, 0};
    c->last_pt = hdr->pt;
    return n;
}

static void send_written(hk_consumer_t *c, hk_transport_t *t, uint8_t *slot, int n)
{
    hk_transport_send_slot(t, slot, (size_t)n);
    c->packets++;
    c->bytes += (size_t)n;
}

static int map_seq(hk_consumer_t *c, uint16_t src, bool drop);
static void ask_keyframe(hk_consumer_t *c, int layer, uint64_t now_ms);

/* The producer's packet src as the cache of its stream holds it (stored less than
 * max_age_ms ago), parsed into *hdr. Returns 0 or a negative error. */
static int cached_packet(const hk_stream_t *stream, uint16_t src, uint64_t now_ms,
                         uint64_t max_age_ms, const uint8_t **pkt, size_t *len,
                         hk_rtp_header_t *hdr)
{
    const char *err = NULL;
    if (!stream || !stream->cache)
        return HK_ENOENT;
    int rc = hk_nack_cache_get(stream->cache, src, now_ms, max_age_ms, pkt, len);
    return rc != 0 ? rc : hk_rtp_parse(*pkt, *len, hdr, &err);
}

#ifdef HK_TEST_ATTACKS
/* --- test attack: replay (make attack-build, HISOKA_TEST_ATTACK=replay) ----------------- */

#define REPLAY_START_MS    5000 /* after the consumer's first packet */
#define REPLAY_DELAY_MS    1000 /* a recorded frame is sent again this much later, */
#define REPLAY_EVERY_MS    500  /* then again after this, */
#define REPLAY_TIMES       3    /* so many times in all; */
#define REPLAY_ROUNDS      4    /* then the next frame is recorded, so many in all */
#define REPLAY_MAX_PACKETS 16
#define REPLAY_AGE_MS      3000

/* Sends the recorded frame again after the packet just sent as own (the last of a
 * frame): its packets from the producer's cache, unchanged but for the own sequence
 * numbers after own (the following packets' move on by as many) and the own timestamp
 * after that frame's, so that the subscriber's jitter buffer takes it as a new frame and
 * only its E2EE (the SFrame counter) can tell. Returns the packets sent, 0 when the
 * cache no longer holds them all (fewer when the transport has no slot left). */
static int replay_frame(hk_consumer_t *c, const hk_rtp_header_t *after, uint16_t own,
                        uint64_t now_ms)
{
    hk_transport_t *t = c->transport;
    const hk_stream_t *stream = hk_producer_stream(c->producer, 0);
    int n = (uint16_t)(c->replay.to - c->replay.from) + 1;
    const uint8_t *pkt;
    size_t len;
    hk_rtp_header_t hdr;
    for (int i = 0; i < n; i++)
        if (cached_packet(stream, (uint16_t)(c->replay.from + i), now_ms, REPLAY_AGE_MS, &pkt, &len,
                          &hdr) != 0)
            return 0;
    int sent = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *slot = hk_transport_slot(t);
        if (!slot || cached_packet(stream, (uint16_t)(c->replay.from + i), now_ms, REPLAY_AGE_MS,
                                   &pkt, &len, &hdr) != 0)
            break;
        uint16_t seq = (uint16_t)(own + 1 + i);
        hdr.timestamp = after->timestamp + 1;
        int written = write_mapped(c, t, slot, pkt, len, &hdr, seq, 0, NULL);
        if (written < 0)
            break;
        if (c->history) /* not answered on NACK: the cache has it with its old timestamp */
            c->history[seq & (HK_CONSUMER_HISTORY - 1)].own = (uint16_t)(seq + 1);
        send_written(c, t, slot, written);
        sent++;
    }
    c->seq_offset = (uint16_t)(c->seq_offset + sent);
    return sent;
}

/* The hostile server of docs/threats.md replaying frames: called after each video packet
 * sent (as own). From REPLAY_START_MS on, a complete delta frame (one timestamp, up to
 * its marker) is recorded and sent again REPLAY_TIMES, each time after the end of a
 * genuine frame, then the next; REPLAY_ROUNDS frames in all. Each replay is logged with
 * the subscriber's connection id (the test counts them). A late packet of a frame sent
 * before a replay is mapped onto the replay's numbers: tests run on loopback. */
static void replay_attack(hk_consumer_t *c, const uint8_t *buf, const hk_rtp_header_t *hdr,
                          uint16_t own, uint64_t now_ms)
{
    if (!c->replay.start_ms)
        c->replay.start_ms = now_ms + REPLAY_START_MS;
    if (c->replay.seen && (int16_t)(hdr->seq - c->replay.newest) <= 0)
        return;
    c->replay.newest = hdr->seq;
    if (!c->replay.seen || hdr->timestamp != c->replay.ts) {
        c->replay.seen = true;
        c->replay.ts = hdr->timestamp;
        c->replay.first = hdr->seq;
        c->replay.key = hk_vcodec_keyframe_start(buf, hdr);
    }
    if (!hdr->marker || now_ms < c->replay.start_ms)
        return;
    if (c->replay.left) {
        if (now_ms < c->replay.next_ms)
            return;
        int n = replay_frame(c, hdr, own, now_ms);
        c->replay.left = n ? (uint8_t)(c->replay.left - 1) : 0;
        c->replay.next_ms = now_ms + REPLAY_EVERY_MS;
        if (n)
            HK_LOG(HK_LOG_WARN, "media", c->transport->log_id,
                   "test attack: replayed frame %u..%u (%d packets) on ssrc %u", c->replay.from,
                   c->replay.to, n, c->ssrc);
        return;
    }
    if (c->replay.rounds < REPLAY_ROUNDS && !c->replay.key &&
        (uint16_t)(hdr->seq - c->replay.first) < REPLAY_MAX_PACKETS) {
        c->replay.from = c->replay.first;
        c->replay.to = hdr->seq;
        c->replay.left = REPLAY_TIMES;
        c->replay.rounds++;
        c->replay.next_ms = now_ms + REPLAY_DELAY_MS;
    }
}
#endif

/* SVC: whether the consumer leaves out the packet at vl, a newer one than any before
 * (newest) or not. Its caps take effect at the start of a picture (a new timestamp): a
 * lower one at once, a higher spatial one at a key picture only (asked for until one
 * comes), a higher temporal one at a base-layer picture. */
static bool svc_drop(hk_consumer_t *c, const uint8_t *buf, const hk_rtp_header_t *hdr,
                     const hk_video_layer_t *vl, bool newest, uint64_t now_ms)
{
    if (newest && (!c->has_picture_ts || hdr->timestamp != c->picture_ts)) {
        c->has_picture_ts = true;
        c->picture_ts = hdr->timestamp;
        int cap = c->cap == HK_LAYER_AUTO ? INT8_MAX : c->cap; /* HK_LAYER_NONE: none */
        int now = c->max_sid == HK_LAYER_AUTO ? INT8_MAX : c->max_sid;
        if (cap < now) {
            c->max_sid = (int8_t)(cap == INT8_MAX ? HK_LAYER_AUTO : cap);
        } else if (cap > now) {
            if (hk_vcodec_keyframe_start(buf, hdr))
                c->max_sid = (int8_t)(cap == INT8_MAX ? HK_LAYER_AUTO : cap);
            else
                ask_keyframe(c, 0, now_ms);
        }
        int tnow = c->max_tid == HK_LAYER_AUTO ? INT8_MAX : c->max_tid;
        int tcap = c->tcap == HK_LAYER_AUTO ? INT8_MAX : c->tcap;
        if (vl->temporal == 0 || tcap < tnow)
            c->max_tid = c->tcap;
    }
    if (c->max_sid != HK_LAYER_AUTO && vl->spatial > c->max_sid)
        return true;
    if (c->max_sid == HK_LAYER_NONE)
        return true; /* paused */
    return c->max_tid != HK_LAYER_AUTO && vl->temporal > c->max_tid;
}

/* SVC: the last packet of the highest spatial layer forwarded ends the picture the
 * subscriber gets (the publisher marked the last of its top layer, left out). */
static void svc_mark(const hk_consumer_t *c, uint8_t *slot, const hk_video_layer_t *vl)
{
    if (c->max_sid != HK_LAYER_AUTO && vl->with_dd && vl->frame_end && vl->spatial == c->max_sid)
        slot[1] |= 0x80;
}

void hk_consumer_send(hk_consumer_t *c, const uint8_t *buf, size_t len, const hk_rtp_header_t *hdr,
                      const hk_video_layer_t *svc, uint64_t now_ms)
{
    if (!c->active)
        return;
    hk_transport_t *t = c->transport;
    if (!c->started) {
        c->started = true;
        c->seq_offset = (uint16_t)(c->seq_base - hdr->seq);
        c->ts_offset = c->ts_base - hdr->timestamp;
        c->last_src = hdr->seq;
    }
    uint16_t own = (uint16_t)(hdr->seq + c->seq_offset);
    if (svc) {
        bool newest = (int16_t)(hdr->seq - c->last_src) > 0;
        int mapped = map_seq(c, hdr->seq, newest && svc_drop(c, buf, hdr, svc, newest, now_ms));
        if (mapped < 0) {
            t->host->counters.layer_dropped++;
            return;
        }
        own = (uint16_t)mapped;
    }
    uint8_t *slot = hk_transport_slot(t);
    if (!slot)
        return;
    int n = write_mapped(c, t, slot, buf, len, hdr, own, 0, NULL);
    if (n <= 0)
        return;
    if (svc)
        svc_mark(c, slot, svc);
    send_written(c, t, slot, n);
#ifdef HK_TEST_ATTACKS
    if (t->host->attack_replay && c->kind == HK_MEDIA_VIDEO)
        replay_attack(c, buf, hdr, own, now_ms);
#endif
}

/* --- simulcast ------------------------------------------------------------------------ */

int hk_consumer_choose_layer(int want, uint8_t flowing, uint8_t offered)
{
    offered &= (1u << HK_SIMULCAST_MAX_LAYERS) - 1;
    flowing &= offered;
    if (want == HK_LAYER_NONE || !offered)
        return -1;
    int top = HK_SIMULCAST_MAX_LAYERS - 1;
    while (!(offered & (1u << top)))
        top--;
    if (want < 0 || want > top)
        want = top;
    if (!flowing) {
        /* Nothing flows yet: the wanted layer (or the offered one nearest below), whose key
         * frame is asked for. */
        while (want > 0 && !(offered & (1u << want)))
            want--;
        return (offered & (1u << want)) ? want : top;
    }
    for (int l = want; l >= 0; l--)
        if (flowing & (1u << l))
            return l;
    for (int l = want + 1; l < HK_SIMULCAST_MAX_LAYERS; l++)
        if (flowing & (1u << l))
            return l;
    return -1; /* not reached: flowing is not empty */
}

int hk_consumer_effective_want(int want, int cap)
{
    if (want == HK_LAYER_NONE || cap == HK_LAYER_NONE)
        return HK_LAYER_NONE;
    if (cap == HK_LAYER_AUTO)
        return want;
    if (want == HK_LAYER_AUTO || want > cap)
        return cap;
    return want;
}

void hk_consumer_set_want(hk_consumer_t *c, int want, bool from_api)
{
    c->want = (int8_t)want;
    c->want_from_api = from_api;
}

/* Asks for a key frame of the target layer, at most every SWITCH_REQUEST_MS for this
 * consumer (and the transport's throttle makes one PLI of many consumers' requests). */
static void ask_keyframe(hk_consumer_t *c, int layer, uint64_t now_ms)
{
    if (c->last_request_ms && now_ms - c->last_request_ms < SWITCH_REQUEST_MS)
        return;
    c->last_request_ms = now_ms;
    hk_producer_request_keyframe(c->producer, layer, now_ms);
}

static void switched(hk_consumer_t *c, int previous)
{
    c->switches++;
    const hk_endpoint_owner_t *owner = c->endpoint->owner_events;
    if (owner && owner->on_layer_switched)
        owner->on_layer_switched(c->endpoint->owner, c, previous, c->layer);
}

/* The picture offset for the producer's PictureID pid (of `bits` bits): the one before
 * the latest dropped frame for a late packet of a frame older than it. */
static uint16_t picture_offset_of(const hk_consumer_t *c, uint16_t pid, uint16_t mask)
{
    if (!c->dropping_picture)
        return c->picture_offset;
    uint16_t behind = (uint16_t)(c->picture_from - pid) & mask;
    return behind && behind <= mask / 2 ? c->picture_offset_before : c->picture_offset;
}

/* VP8's PictureID and TL0PICIDX in the written packet's payload, mapped like the frame
 * numbers below (RFC 7741 §4.2: the receiver's reference finder reads them); a resend
 * (picture >= 0) gets the PictureID it was first sent with. Returns the PictureID
 * written (0 without one). */
static uint16_t map_vp8_ids(hk_consumer_t *c, uint8_t *payload, size_t n, bool switching,
                            int picture)
{
    hk_vp8_ids_t ids;
    if (!hk_vcodec_vp8_ids(payload, n, &ids))
        return 0;
    if (ids.has_picture_id) {
        uint16_t mask = ids.picture_id_bits == 15 ? 0x7fff : 0x7f;
        if (switching) {
            c->picture_offset =
                c->has_picture_id ? (uint16_t)(c->last_picture + 1 - ids.picture_id) & mask : 0;
            c->dropping_picture = false;
        }
        uint16_t own =
            picture >= 0
                ? (uint16_t)picture & mask
                : (uint16_t)(ids.picture_id + picture_offset_of(c, ids.picture_id, mask)) & mask;
        uint16_t ahead = (uint16_t)(own - c->last_picture) & mask;
        if (switching || !c->has_picture_id || (ahead && ahead <= mask / 2)) {
            c->last_picture = own;
            c->has_picture_id = true;
        }
        ids.picture_id = own;
    }
    if (ids.has_tl0) {
        if (switching)
            c->tl0_offset = c->has_tl0 ? (uint8_t)(c->last_tl0 + 1 - ids.tl0_pic_idx) : 0;
        uint8_t own = (uint8_t)(ids.tl0_pic_idx + c->tl0_offset);
        if (switching || !c->has_tl0 || (int8_t)(own - c->last_tl0) > 0) {
            c->last_tl0 = own;
            c->has_tl0 = true;
        }
        ids.tl0_pic_idx = own;
    }
    hk_vcodec_vp8_set_ids(payload, &ids, ids.picture_id, ids.tl0_pic_idx);
    return ids.has_picture_id ? ids.picture_id : 0;
}

/* The layer identifiers receivers track across frames, in slot (a packet of payload type
 * pt written as `at` tells), mapped: at a switch the offsets are chosen so the own
 * numbers go on from the last ones. The dependency descriptor's frame number (a constant
 * offset between switches, so the descriptor's frame diffs stay right across dropped
 * frames), and VP8's picture numbering (picture: as for map_vp8_ids). Returns the VP8
 * PictureID written. */
static uint16_t map_frame_number(hk_consumer_t *c, uint8_t *slot, uint8_t pt,
                                 const hk_forward_layout_t *at, bool switching, int picture)
{
    uint16_t written = 0;
    if (hk_vcodec_of_pt(pt) == HK_VIDEO_VP8)
        written = map_vp8_ids(c, slot + at->payload_offset, at->payload_len, switching, picture);
    size_t offset = at->dd_offset, len = at->dd_len;
    if (len < 3)
        return written;
    uint16_t src = hk_rd16(slot + offset + 1);
    if (switching) {
        c->frame_offset = c->has_frame_number ? (uint16_t)(c->last_frame + 1 - src) : 0;
        c->has_frame_number = false; /* last_frame restarts below */
    }
    uint16_t own = (uint16_t)(src + c->frame_offset);
    hk_dd_set_frame_number(slot + offset, len, own);
    if (!c->has_frame_number || (int16_t)(own - c->last_frame) > 0) {
        c->last_frame = own;
        c->has_frame_number = true;
    }
    return written;
}

/* Whether the consumer leaves out this packet of temporal layer tid (-1: not said): one
 * above those it forwards. Which those are changes at the base layer's packets only:
 * base-layer frames refer to no higher layer, so each frame after one finds its
 * references whatever was dropped before. */
static bool drop_temporal(hk_consumer_t *c, int tid)
{
    if (tid == 0)
        c->max_tid = c->tcap;
    return tid > 0 && c->max_tid >= 0 && tid > c->max_tid;
}

#define DROP_CHOSEN -1 /* map_seq: left out, as asked */
#define DROP_STALE  -2 /* map_seq: a copy of one left out, or too late to place */

/* The own sequence number of the producer's packet src on the layer the consumer
 * receives, with `drop` asking to leave it out (taken only for the newest packet: a late
 * one has its number kept free, and is sent). Returns it, or DROP_CHOSEN / DROP_STALE. */
static int map_seq(hk_consumer_t *c, uint16_t src, bool drop)
{
    int16_t ahead = (int16_t)(src - c->last_src);
    if (ahead > 0) {
        c->dropped = ahead >= 64 ? 0 : c->dropped << ahead;
        c->last_src = src;
        if (drop) {
            c->dropped |= 1;
            c->seq_offset--;
            c->drops++;
            return DROP_CHOSEN;
        }
        return (uint16_t)(src + c->seq_offset);
    }
    unsigned back = (unsigned)-ahead;
    if (back >= 64)
        return c->drops ? DROP_STALE : (uint16_t)(src + c->seq_offset);
    if ((c->dropped >> back) & 1)
        return DROP_STALE;
    uint64_t after = c->dropped & ((1ull << back) - 1); /* drops of src + 1 .. last_src */
    return (uint16_t)(src + c->seq_offset + (uint16_t)__builtin_popcountll(after));
}

/* A dropped VP8 frame leaves a gap the receiver's PictureIDs must not show: the offset
 * moves back by one at each dropped frame's first packet seen. */
static void drop_picture(hk_consumer_t *c, const uint8_t *buf, const hk_rtp_header_t *hdr)
{
    hk_vp8_ids_t ids;
    if (hk_vcodec_of_pt(hdr->pt) != HK_VIDEO_VP8 ||
        !hk_vcodec_vp8_ids(buf + hdr->payload_offset, hdr->payload_len, &ids) ||
        !ids.has_picture_id)
        return;
    if (c->dropping_picture && c->dropped_picture == ids.picture_id)
        return; /* another packet of a frame already left out */
    c->dropping_picture = true;
    c->dropped_picture = ids.picture_id;
    c->picture_offset_before = c->picture_offset;
    c->picture_offset--;
    c->picture_from = (uint16_t)(ids.picture_id + 1);
}

/* Sends a packet of the layer the consumer receives (switching: the first, at which the
 * mapping was just chosen), unless its temporal layer tid is left out. */
static void send_layer_packet(hk_consumer_t *c, const uint8_t *buf, size_t len,
                              const hk_rtp_header_t *hdr, int layer, bool switching, int tid,
                              uint64_t now_ms)
{
    hk_transport_t *t = c->transport;
    if (switching) {
        c->last_src = hdr->seq;
        c->dropped = 0;
        c->drops = 0;
        c->max_tid = c->tcap;
    }
    int mapped = map_seq(c, hdr->seq, !switching && drop_temporal(c, tid));
    if (mapped < 0) {
        if (mapped == DROP_CHOSEN)
            drop_picture(c, buf, hdr);
        t->host->counters.layer_dropped++;
        return;
    }
    uint8_t *slot = hk_transport_slot(t);
    if (!slot)
        return;
    uint16_t own = (uint16_t)mapped;
    hk_forward_layout_t at;
    int n = write_mapped(c, t, slot, buf, len, hdr, own, (uint8_t)layer, &at);
    if (n < 0)
        return;
    uint16_t picture = map_frame_number(c, slot, hdr->pt, &at, switching, -1);
    if (c->history)
        c->history[own & (HK_CONSUMER_HISTORY - 1)].picture = picture;
    if (switching || (int16_t)(own - c->last_seq) > 0) {
        c->last_seq = own;
        c->last_ts = hdr->timestamp + c->ts_offset;
        c->last_sent_ms = now_ms;
    }
    send_written(c, t, slot, n);
}

/* Moves to `layer` at this packet (its key frame's first): its sequence numbers and
 * timestamps go on from the last ones sent (the timestamp advanced by the time since). */
static void switch_to(hk_consumer_t *c, const hk_rtp_header_t *hdr, int layer, uint64_t now_ms)
{
    uint16_t own_seq = c->started ? (uint16_t)(c->last_seq + 1) : c->seq_base;
    uint32_t own_ts = c->ts_base;
    if (c->started) {
        uint64_t elapsed = now_ms - c->last_sent_ms;
        own_ts = c->last_ts + (uint32_t)(elapsed ? elapsed * VIDEO_CLOCK_PER_MS : 1);
    }
    c->started = true;
    c->seq_offset = (uint16_t)(own_seq - hdr->seq);
    c->ts_offset = own_ts - hdr->timestamp;
    c->switch_seq = hdr->seq;
    c->switch_guard = SWITCH_GUARD_PACKETS;
    int previous = c->layer;
    c->layer = (int8_t)layer;
    switched(c, previous);
}

void hk_consumer_send_layer(hk_consumer_t *c, const uint8_t *buf, size_t len,
                            const hk_rtp_header_t *hdr, hk_layer_packet_t *packet)
{
    if (!c->active)
        return;
    uint64_t now_ms = packet->now_ms;
    int target = hk_consumer_choose_layer(hk_consumer_effective_want(c->want, c->cap),
                                          packet->flowing, c->producer->layers);
    if (target != c->target) {
        c->target = (int8_t)target;
        c->last_request_ms = 0; /* a new target: its key frame is asked for at once */
    }
    if (target < 0) {
        if (c->layer >= 0) {
            int previous = c->layer;
            c->layer = -1;
            switched(c, previous);
        }
        return;
    }
    int layer = packet->layer;
    if (layer == c->layer && target < layer && c->cap != HK_LAYER_AUTO && c->cap < layer) {
        /* Moving down because the subscriber's link does not carry this layer: more of it
         * would only delay the lower layer's key frame in the queue it fills. */
        ask_keyframe(c, target, now_ms);
        return;
    }
    if (layer == c->layer) {
        /* The layer it receives, until the target's key frame comes. */
        if (c->switch_guard) {
            c->switch_guard--;
            if ((int16_t)(hdr->seq - c->switch_seq) < 0)
                return; /* older than the key frame it started at */
        }
        send_layer_packet(c, buf, len, hdr, layer, false, packet->tid, now_ms);
        if (target != layer)
            ask_keyframe(c, target, now_ms);
        return;
    }
    if (layer != target)
        return;
    if (packet->keyframe < 0)
        packet->keyframe = hk_vcodec_keyframe_start(buf, hdr);
    if (!packet->keyframe) {
        ask_keyframe(c, target, now_ms);
        return;
    }
    switch_to(c, hdr, layer, now_ms);
    send_layer_packet(c, buf, len, hdr, layer, true, packet->tid, now_ms);
}

void hk_consumer_request_keyframe(hk_consumer_t *c, uint64_t now_ms)
{
    hk_producer_t *p = c->producer;
    if (!p)
        return;
    if (!p->layers) {
        hk_producer_request_keyframe(p, 0, now_ms);
        return;
    }
    int layer = c->layer >= 0 ? c->layer : c->target;
    if (layer < 0)
        layer = hk_consumer_choose_layer(hk_consumer_effective_want(c->want, c->cap),
                                         hk_producer_flowing(p, now_ms), p->layers);
    if (layer >= 0)
        hk_producer_request_keyframe(p, layer, now_ms);
}

/* --- feedback ------------------------------------------------------------------------- */

void hk_consumer_answer_nack(hk_consumer_t *c, const uint16_t *seqs, size_t n, uint64_t now_ms)
{
    hk_transport_t *t = c->transport;
    hk_media_counters_t *counters = &t->host->counters;
    hk_producer_t *p = c->producer;
    if (!c->active || !c->history || !p) {
        counters->retransmission_misses += n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const hk_consumer_sent_t *sent = &c->history[seqs[i] & (HK_CONSUMER_HISTORY - 1)];
        /* A packet of a layer it left was mapped with offsets it no longer has. */
        /* A packet sent before the last switch was mapped with offsets (timestamp, frame
         * and picture numbers) it no longer has, even on the layer it is back on. */
        bool mapped =
            sent->own == seqs[i] &&
            (!p->layers || (sent->layer == c->layer && sent->epoch == (uint8_t)c->switches));
        hk_stream_t *stream = mapped ? hk_producer_stream(p, sent->layer) : NULL;
        const uint8_t *pkt;
        size_t len;
        hk_rtp_header_t hdr;
        if (cached_packet(stream, sent->src, now_ms, RETRANSMIT_AGE_MS, &pkt, &len, &hdr) != 0) {
            counters->retransmission_misses++;
            continue;
        }
        uint8_t *slot = hk_transport_slot(t);
        if (!slot)
            return;
        hk_forward_layout_t at;
        uint16_t picture = sent->picture; /* write_mapped records the resend anew */
        int written = write_mapped(c, t, slot, pkt, len, &hdr, seqs[i], sent->layer, &at);
        if (written < 0)
            continue;
        if (p->layers) {
            c->history[seqs[i] & (HK_CONSUMER_HISTORY - 1)].picture =
                map_frame_number(c, slot, hdr.pt, &at, false, picture);
        } else if (p->svc) {
            /* Its place among the layers, from a copy of the templates (a cached key
             * frame's structure may be older than the stream's). */
            hk_dd_layers_t templates = p->dd_layers[0];
            hk_video_layer_t vl;
            hk_vcodec_layer(pkt, &hdr, &templates, &vl);
            svc_mark(c, slot, &vl);
        }
        send_written(c, t, slot, written);
        counters->retransmissions++;
    }
}

void hk_consumer_send_sender_report(hk_consumer_t *c, const hk_rtcp_report_t *sr)
{
    if (!c->active || !c->started)
        return;
    hk_rtcp_report_t mine = *sr;
    mine.ssrc = c->ssrc;
    mine.rtp_timestamp = sr->rtp_timestamp + c->ts_offset;
    mine.report_count = 0;
    uint8_t buf[64];
    int len = hk_rtcp_build_sr(buf, sizeof buf, &mine);
    if (len <= 0)
        return;
    hk_transport_t *t = c->transport;
    hk_transport_send_rtcp(t, buf, (size_t)len);
    t->host->counters.sender_reports_relayed++;
}

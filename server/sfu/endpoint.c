#include "server/sfu/endpoint.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/id.h"
#include "server/rtc/bwe.h"
#include "server/sfu/relay.h"

void hk_endpoint_init(hk_endpoint_t *e, const hk_endpoint_owner_t *owner_events, void *owner)
{
    memset(e, 0, sizeof *e);
    e->owner_events = owner_events;
    e->owner = owner;
    for (int k = 0; k < 2; k++) {
        e->producers[k].endpoint = e;
        e->producers[k].kind = (hk_media_kind_t)k;
    }
}

static void free_consumer(hk_consumer_t *c)
{
    if (c->producer)
        hk_producer_detach(c->producer, c);
    free(c->history);
    free(c);
}

static void free_alloc(hk_endpoint_t *e)
{
    free(e->alloc.consumers);
    free(e->alloc.in);
    free(e->alloc.out);
    free(e->alloc.order);
    memset(&e->alloc, 0, sizeof e->alloc);
}

/* The allocator's scratch holds at least n consumers. Returns 0 or HK_ENOMEM (the old
 * arrays kept). */
static int grow_alloc(hk_endpoint_t *e, size_t n)
{
    if (n <= e->alloc.cap)
        return 0;
    size_t cap = e->alloc.cap ? e->alloc.cap * 2 : 16;
    while (cap < n)
        cap *= 2;
    hk_consumer_t **consumers = malloc(cap * sizeof *consumers);
    hk_alloc_consumer_t *in = malloc(cap * sizeof *in);
    hk_alloc_result_t *out = malloc(cap * sizeof *out);
    size_t *order = malloc(cap * sizeof *order);
    if (!consumers || !in || !out || !order) {
        free(consumers);
        free(in);
        free(out);
        free(order);
        return HK_ENOMEM;
    }
    free_alloc(e);
    e->alloc.consumers = consumers;
    e->alloc.in = in;
    e->alloc.out = out;
    e->alloc.order = order;
    e->alloc.cap = cap;
    return 0;
}

void hk_endpoint_clear(hk_endpoint_t *e)
{
    free_alloc(e);
    for (int k = 0; k < 2; k++)
        hk_producer_close(&e->producers[k]);
    for (size_t i = 0; i < e->consumers.cap; i++) {
        hk_consumer_t *c = e->consumers.slots[i].value;
        if (c)
            free_consumer(c);
    }
    hk_map_free(&e->consumers);
}

void hk_endpoint_set_producers(hk_endpoint_t *e, bool audio, bool video, uint8_t video_layers)
{
    e->producers[HK_MEDIA_AUDIO].live = audio;
    e->producers[HK_MEDIA_VIDEO].live = video;
    e->producers[HK_MEDIA_VIDEO].layers = video ? video_layers : 0;
}

hk_consumer_t *hk_endpoint_consume(hk_endpoint_t *e, hk_producer_t *producer, const char *mid)
{
    if (!producer->live)
        return NULL;
    hk_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->endpoint = e;
    c->transport = e->transport;
    c->kind = producer->kind;
    c->want = c->cap = c->offered = HK_LAYER_AUTO;
    c->tcap = c->offered_temporal = c->max_tid = c->max_sid = HK_LAYER_AUTO;
    c->layer = c->target = -1;
    c->mid_len = (uint8_t)strnlen(mid, sizeof c->mid - 1);
    memcpy(c->mid, mid, c->mid_len);
    if (hk_random_bytes(&c->seq_base, sizeof c->seq_base) != 0 ||
        hk_random_bytes(&c->ts_base, sizeof c->ts_base) != 0)
        goto fail;
    /* An SSRC of its own: nonzero, and not one this subscriber receives already. */
    for (int tries = 0; !c->ssrc || hk_endpoint_consumer(e, c->ssrc); tries++)
        if (tries == 8 || hk_random_bytes(&c->ssrc, sizeof c->ssrc) != 0)
            goto fail;
    if (c->kind == HK_MEDIA_VIDEO) {
        c->history = calloc(HK_CONSUMER_HISTORY, sizeof *c->history);
        if (!c->history)
            goto fail;
        /* No own number is recorded yet: slot i must not claim to hold number i. */
        for (unsigned i = 0; i < HK_CONSUMER_HISTORY; i++)
            c->history[i].own = (uint16_t)(i + 1);
        for (int tries = 0;
             !c->rtx_ssrc || c->rtx_ssrc == c->ssrc || hk_endpoint_consumer(e, c->rtx_ssrc);
             tries++)
            if (tries == 8 || hk_random_bytes(&c->rtx_ssrc, sizeof c->rtx_ssrc) != 0 ||
                hk_random_bytes(&c->rtx_seq, sizeof c->rtx_seq) != 0)
                goto fail;
    }
    if (grow_alloc(e, e->consumers.count + 1) != 0 || hk_map_put(&e->consumers, c->ssrc, c) != 0)
        goto fail;
    if (hk_producer_attach(producer, c) != 0) {
        hk_map_remove(&e->consumers, c->ssrc);
        goto fail;
    }
    c->producer = producer;
    return c;
fail:
    free(c->history);
    free(c);
    return NULL;
}

hk_consumer_t *hk_endpoint_consumer(const hk_endpoint_t *e, uint32_t ssrc)
{
    return ssrc ? hk_map_get(&e->consumers, ssrc) : NULL;
}

void hk_endpoint_activate(hk_endpoint_t *e, hk_consumer_t *c)
{
    (void)e;
    c->active = c->producer != NULL;
}

void hk_endpoint_unconsume(hk_endpoint_t *e, hk_consumer_t *c)
{
    if (e->pad_consumer == c) {
        e->pad_consumer = NULL;
        if (e->transport)
            hk_transport_set_padding(e->transport, 0, 0, 0, NULL);
    }
    hk_map_remove(&e->consumers, c->ssrc);
    free_consumer(c);
}

/* --- downlink adaptation ---------------------------------------------------------------- */

/* The highest temporal layer of the producer's layer s that can be left out of: 0 when
 * its packets do not tell temporal layers apart. */
static int top_temporal(const hk_producer_t *p, int s)
{
    return p->tid_count[s] > 1 ? p->tid_count[s] - 1 : 0;
}

/* The allocator's steps for layer s in out[0..], returning how many: with temporal
 * layers, what each temporal cap costs (cumulative). The lowest flowing layer has every
 * step: fewer frames instead of a pause. A higher one has only its full frame rate: a
 * larger picture at a lower rate costs a key frame to reach and one to leave, for a
 * difference a subscriber can barely see, and the kbit/s it saves are what a link near
 * its limit has least of (in the 1 Mbit/s adaptive test, r1 at 15 fps fitted where r1 did
 * not, and the receiver moved up and back down again and again, a key frame each way).
 * Without temporal layers, the whole layer. Flowing but not measured yet: as good as free
 * until it is. */
static int layer_steps(const hk_producer_t *p, int s, bool lowest, uint64_t whole, uint64_t *out)
{
    int top = top_temporal(p, s);
    if (!top) {
        out[0] = whole ? whole : 1;
        return 1;
    }
    uint64_t sum = 0;
    for (int t = 0; t <= top && t < HK_ALLOC_MAX_TEMPORAL; t++) {
        sum += p->tid_bps[s][t];
        if (lowest || t == top)
            out[t] = sum ? sum : 1;
    }
    return top + 1;
}

/* SVC (one stream, spatial layers s with temporal layers each): the allocator's steps,
 * each what the subscriber receives with it (every lower spatial layer at the same
 * temporal cap, as the consumer forwards them), spatial layers above the lowest at their
 * full frame rate only, as for simulcast; and c's current layers. Returns the top's
 * bitrate. */
static uint64_t svc_steps(const hk_producer_t *p, const hk_consumer_t *c, hk_alloc_consumer_t *in)
{
    int spatial = p->sid_count ? p->sid_count : 1;
    uint64_t below[HK_ALLOC_MAX_TEMPORAL] = {0}; /* the lower layers' up to each cap */
    uint64_t top = 0;
    int top_t = 0;
    for (int s = 0; s < spatial && s < HK_ALLOC_MAX_SPATIAL; s++) {
        uint64_t whole = 0, row[HK_ALLOC_MAX_TEMPORAL] = {0};
        for (int t = 0; t < HK_MAX_TEMPORAL; t++)
            whole += p->tid_bps[s][t];
        int steps = layer_steps(p, s, true, whole, row);
        top_t = steps - 1;
        for (int t = 0; t < HK_ALLOC_MAX_TEMPORAL; t++) {
            uint64_t mine = row[t < steps ? t : steps - 1];
            if (t < steps && (s == 0 || t == steps - 1))
                in->bitrate[s][t] = below[t] + mine;
            below[t] += mine;
        }
        top = in->bitrate[s][steps - 1];
    }
    in->max_spatial = (uint8_t)(spatial - 1);
    in->max_temporal = HK_ALLOC_MAX_TEMPORAL - 1;
    if (c->max_sid != HK_LAYER_NONE) {
        in->current_spatial = (int8_t)(c->max_sid == HK_LAYER_AUTO ? spatial - 1 : c->max_sid);
        in->current_temporal =
            (int8_t)(c->max_tid == HK_LAYER_AUTO || c->max_tid > top_t ? top_t : c->max_tid);
    }
    return top;
}

/* Fills in one allocator entry for consumer c; false when it takes no part (inactive,
 * its producer gone, or its subscriber asked for nothing). Adds what it wants to *desired. */
static bool alloc_entry(hk_consumer_t *c, hk_alloc_consumer_t *in, uint64_t *desired,
                        uint64_t now_ms)
{
    hk_producer_t *p = c->producer;
    if (!c->active || !p || !p->live)
        return false;
    hk_producer_update_rates(p, now_ms);
    memset(in, 0, sizeof *in);
    in->current_spatial = in->current_temporal = -1;
    in->priority = 1;
    if (p->svc) {
        *desired += svc_steps(p, c, in);
        return true;
    }
    if (!p->layers) {
        /* One stream: it costs what it costs, and is never paused. */
        in->single = true;
        in->bitrate[0][0] = p->layer_bps[0];
        *desired += p->layer_bps[0];
        return true;
    }
    if (c->want == HK_LAYER_NONE)
        return false;
    uint8_t flowing = hk_producer_flowing(p, now_ms);
    in->max_spatial = c->want >= 0 ? (uint8_t)c->want : HK_SIMULCAST_MAX_LAYERS - 1;
    in->max_temporal = HK_ALLOC_MAX_TEMPORAL - 1;
    uint64_t top = 0;
    bool lowest = true;
    for (int s = 0; s < HK_SIMULCAST_MAX_LAYERS; s++) {
        if (!(flowing & (1u << s)))
            continue;
        int steps = layer_steps(p, s, lowest, p->layer_bps[s], in->bitrate[s]);
        lowest = false;
        if (s <= in->max_spatial)
            top = in->bitrate[s][steps - 1];
    }
    if (c->layer >= 0) {
        int highest = top_temporal(p, c->layer);
        in->current_spatial = c->layer;
        in->current_temporal =
            (int8_t)(c->tcap == HK_LAYER_AUTO || c->tcap > highest ? highest : c->tcap);
    }
    *desired += top;
    return true;
}

/* Padding needs an RTX SSRC the subscriber was offered: an active video consumer's, whose
 * forwarded payload type names the RTX payload type. False when there is none yet. */
static bool has_padding(hk_endpoint_t *e)
{
    for (size_t i = 0; i < e->consumers.cap && !e->pad_consumer; i++) {
        hk_consumer_t *c = e->consumers.slots[i].value;
        int pt = c && c->active && c->rtx_ssrc ? hk_sdp_rtx_pt(c->last_pt) : -1;
        if (pt < 0)
            continue;
        e->pad_consumer = c;
        hk_transport_set_padding(e->transport, c->rtx_ssrc, (uint8_t)pt, c->rtx_seq, c->mid);
    }
    return e->pad_consumer != NULL;
}

/* Probes when the consumers want more than the estimate allows: at twice the estimate
 * (never far above what is wanted), again a second after a probe that raised it, later
 * and later (up to HK_PROBE_AFTER_MISS_MAX_MS) after probes that did not. */
static void maybe_probe(hk_endpoint_t *e, uint64_t estimate, uint64_t now_ms)
{
    hk_transport_t *t = e->transport;
    uint64_t budget = estimate / 100 * HK_ALLOC_BUDGET_PCT;
    if (e->desired_bps <= budget)
        return;
    bool raised = e->probe_from_bps && estimate > e->probe_from_bps + e->probe_from_bps / 5;
    if (!e->probe_wait_ms)
        e->probe_wait_ms = HK_PROBE_AFTER_MISS_MS;
    uint64_t wait = raised ? HK_PROBE_AFTER_RAISE_MS : e->probe_wait_ms;
    if (e->last_probe_ms && now_ms - e->last_probe_ms < wait)
        return;
    if (e->last_probe_ms) {
        uint64_t doubled = e->probe_wait_ms * 2;
        e->probe_wait_ms = raised                                 ? HK_PROBE_AFTER_MISS_MS
                           : doubled > HK_PROBE_AFTER_MISS_MAX_MS ? HK_PROBE_AFTER_MISS_MAX_MS
                                                                  : doubled;
    }
    if (!has_padding(e))
        return;
    uint64_t target = 2 * estimate;
    uint64_t ceiling = e->desired_bps + e->desired_bps / 4;
    if (target > ceiling)
        target = ceiling > estimate + estimate / 4 ? ceiling : estimate + estimate / 4;
    /* A token bucket in the path passes a short burst at any rate: the cluster's excess
     * over the estimate should be larger than a typical bucket (32 KB). */
    uint64_t duration = 32 * 1024 * 8 * 1000 / (target - estimate + 1);
    duration = duration < HK_PROBE_DURATION_MS       ? HK_PROBE_DURATION_MS
               : duration > HK_PROBE_DURATION_MAX_MS ? HK_PROBE_DURATION_MAX_MS
                                                     : duration;
    if (hk_transport_probe(t, target, duration)) {
        e->last_probe_ms = now_ms;
        e->probe_from_bps = estimate;
    }
}

/* A cap (a layer and its temporal cap) as a rank: paused lowest, no cap highest. */
static int cap_rank(int cap, int tcap)
{
    if (cap == HK_LAYER_NONE)
        return -1;
    if (cap == HK_LAYER_AUTO)
        return HK_SIMULCAST_MAX_LAYERS * HK_MAX_TEMPORAL;
    return cap * HK_MAX_TEMPORAL +
           (tcap >= 0 && tcap < HK_MAX_TEMPORAL ? tcap : HK_MAX_TEMPORAL - 1);
}

void hk_endpoint_allocate(hk_endpoint_t *e, uint64_t now_ms)
{
    hk_transport_t *t = e->transport;
    if (!t || !t->bwe)
        return;
    e->last_alloc_ms = now_ms;
    size_t n = 0;
    uint64_t desired = 0;
    for (size_t i = 0; i < e->consumers.cap && n < e->alloc.cap; i++) {
        hk_consumer_t *c = e->consumers.slots[i].value;
        if (c && alloc_entry(c, &e->alloc.in[n], &desired, now_ms))
            e->alloc.consumers[n++] = c;
    }
    uint64_t estimate = hk_bwe_estimate(t->bwe);
    uint64_t budget = estimate / 100 * HK_ALLOC_BUDGET_PCT;
    e->alloc_estimate_bps = estimate;
    e->allocated_bps = hk_allocate(estimate, budget, e->alloc.in, n, e->alloc.out, e->alloc.order);
    e->desired_bps = desired;
    bool pending = false;
    for (size_t i = 0; i < n; i++) {
        hk_consumer_t *c = e->alloc.consumers[i];
        if (!c->producer->layers && !c->producer->svc)
            continue;
        const hk_alloc_result_t *r = &e->alloc.out[i];
        bool measured = false;
        for (int s = 0; s < HK_SIMULCAST_MAX_LAYERS; s++)
            for (int l = 0; l < HK_ALLOC_MAX_TEMPORAL; l++)
                measured |= e->alloc.in[i].bitrate[s][l] != 0;
        /* Nothing flows yet: no reason to hold it back. */
        int choice = !measured ? HK_LAYER_AUTO : r->paused ? HK_LAYER_NONE : (int)r->spatial;
        int temporal = choice < 0 || r->temporal >= top_temporal(c->producer, choice)
                           ? HK_LAYER_AUTO
                           : (int)r->temporal;
        hk_endpoint_apply_cap(e, c, choice, temporal, now_ms);
        /* an upgrade waits */
        pending |= cap_rank(c->offered, c->offered_temporal) > cap_rank(c->cap, c->tcap);
    }
    /* While an upgrade waits, the link carries what the allocation would send: padding
     * tops the traffic up to it, so that a link that cannot carry it shows congestion (the
     * estimate falls, the offer is withdrawn) before any key frame was asked for. */
    if (pending && !e->holding && has_padding(e)) {
        hk_transport_probe_stop(t);
        uint64_t rate = e->allocated_bps + e->allocated_bps / 5; /* key frames need room */
        e->holding = hk_transport_probe(t, rate, HK_UPGRADE_HOLD_MS + HK_ALLOC_INTERVAL_MS);
    } else if (!pending && e->holding) {
        hk_transport_probe_stop(t);
        e->holding = false;
    }
    if (e->holding && !t->bwe_probing)
        e->holding = false; /* the hold's cluster ran out */
    if (!e->holding)
        maybe_probe(e, estimate, now_ms);
}

void hk_endpoint_apply_cap(hk_endpoint_t *e, hk_consumer_t *c, int choice, int temporal,
                           uint64_t now_ms)
{
    int from = cap_rank(c->cap, c->tcap), to = cap_rank(choice, temporal);
    if (to == from) {
        c->offered = c->cap;
        c->offered_temporal = c->tcap;
        c->offered_ms = now_ms;
        return;
    }
    /* How long the allocation has asked for a move in this direction without a break:
     * offered is the smallest move asked for in that time. */
    int offered = cap_rank(c->offered, c->offered_temporal);
    bool same_way = offered != from && (offered > from) == (to > from);
    if (!same_way || (to > from ? to < offered : to > offered)) {
        c->offered = (int8_t)choice;
        c->offered_temporal = (int8_t)temporal;
        if (!same_way)
            c->offered_ms = now_ms;
    }
    uint64_t held = now_ms - c->offered_ms;
    if (to < from) {
        /* Down at once; to a pause only when even the lowest layer did not fit for
         * HK_PAUSE_HOLD_MS (meanwhile the lowest layer: its base temporal layer). */
        int8_t cap = (int8_t)choice, tcap = (int8_t)temporal;
        if (choice == HK_LAYER_NONE && held < HK_PAUSE_HOLD_MS)
            cap = tcap = 0;
        if (cap_rank(cap, tcap) < from) {
            if (c->cap != HK_LAYER_AUTO)
                e->last_down_ms = now_ms;
            c->cap = cap;
            c->tcap = tcap;
        }
        return;
    }
    /* Up: out of a pause at once; otherwise once offered for HK_UPGRADE_HOLD_MS, and not
     * soon after a move down. */
    if (c->cap == HK_LAYER_NONE ||
        (held >= HK_UPGRADE_HOLD_MS &&
         (!e->last_down_ms || now_ms - e->last_down_ms >= HK_UPGRADE_AFTER_DOWN_MS))) {
        c->cap = c->offered;
        c->tcap = c->offered_temporal;
    }
}

void hk_endpoint_request_keyframes(hk_endpoint_t *e, uint64_t now_ms)
{
    for (size_t i = 0; i < e->consumers.cap; i++) {
        hk_consumer_t *c = e->consumers.slots[i].value;
        if (c && c->active)
            hk_consumer_request_keyframe(c, now_ms);
    }
}

/* --- the transport's events ---------------------------------------------------------- */

static void on_ready(void *user, uint64_t now_ms)
{
    hk_endpoint_t *e = user;
    hk_endpoint_request_keyframes(e, now_ms);
    if (e->owner_events->on_ready)
        e->owner_events->on_ready(e->owner, now_ms);
}

static void on_failed(void *user, int code, const char *reason)
{
    hk_endpoint_t *e = user;
    e->owner_events->on_failed(e->owner, code, reason);
}

static void on_rtp(void *user, hk_stream_index_t stream, uint8_t *buf, size_t len,
                   const hk_rtp_header_t *hdr, uint64_t now_ms)
{
    hk_endpoint_t *e = user;
    if (stream == HK_STREAM_AUDIO)
        hk_producer_forward(&e->producers[HK_MEDIA_AUDIO], 0, buf, len, hdr, now_ms);
    else if (hk_stream_is_video(stream))
        hk_producer_forward(&e->producers[HK_MEDIA_VIDEO], stream - HK_STREAM_VIDEO, buf, len, hdr,
                            now_ms);
}

static void on_sender_report(void *user, hk_stream_index_t stream, const hk_rtcp_report_t *sr)
{
    hk_endpoint_t *e = user;
    if (stream != HK_STREAM_AUDIO && !hk_stream_is_video(stream))
        return;
    hk_producer_t *p = &e->producers[stream == HK_STREAM_AUDIO ? HK_MEDIA_AUDIO : HK_MEDIA_VIDEO];
    int layer = stream == HK_STREAM_AUDIO ? 0 : stream - HK_STREAM_VIDEO;
    for (size_t i = 0; i < p->n_consumers; i++)
        if (!p->layers || p->consumers[i]->layer == layer)
            hk_consumer_send_sender_report(p->consumers[i], sr);
    for (size_t i = 0; i < p->n_taps; i++)
        hk_relay_push_report(p->taps[i], layer, sr);
}

static void on_nack(hk_endpoint_t *e, const hk_rtcp_fb_t *fb, uint64_t now_ms)
{
    hk_media_counters_t *counters = &e->transport->host->counters;
    uint16_t seqs[128];
    const char *err = NULL;
    int n = hk_rtcp_parse_nack(fb, seqs, 128, &err);
    if (n < 0) {
        counters->rtcp_errors++;
        return;
    }
    if (n > 128)
        n = 128;
    counters->nacks_received += (uint64_t)n;
    hk_consumer_t *c = hk_endpoint_consumer(e, fb->media_ssrc);
    if (!c) {
        counters->retransmission_misses += (uint64_t)n;
        return;
    }
    uint32_t allowed = hk_transport_nack_budget(e->transport, (uint32_t)n, now_ms);
    hk_consumer_answer_nack(c, seqs, allowed, now_ms);
}

static void on_feedback(void *user, const hk_rtcp_packet_t *pkt, uint64_t now_ms)
{
    hk_endpoint_t *e = user;
    hk_media_counters_t *counters = &e->transport->host->counters;
    hk_rtcp_fb_t fb;
    const char *err = NULL;
    if (hk_rtcp_parse_fb(pkt, &fb, &err) != 0) {
        counters->rtcp_errors++;
        return;
    }
    if (pkt->type == HK_RTCP_RTPFB && fb.fmt == HK_RTCP_FMT_NACK) {
        on_nack(e, &fb, now_ms);
        return;
    }
    if (pkt->type == HK_RTCP_RTPFB && fb.fmt == HK_RTCP_FMT_TWCC) {
        /* The subscriber reports what arrived: its downlink estimate starts with the
         * first report (a subscriber that never sends one is never limited). */
        hk_transport_t *t = e->transport;
        if (!t->bwe &&
            hk_transport_enable_bwe(t, HK_BWE_START_BPS, HK_BWE_MIN_BPS, HK_BWE_MAX_BPS) != 0)
            return;
        hk_transport_on_twcc(t, &fb, now_ms);
        /* Every HK_ALLOC_INTERVAL_MS, and at once when the estimate fell by a quarter: a
         * link that narrowed is filling its queue with layers it cannot carry. */
        uint64_t estimate = hk_bwe_estimate(t->bwe);
        if (now_ms - e->last_alloc_ms >= HK_ALLOC_INTERVAL_MS ||
            estimate < e->alloc_estimate_bps / 4 * 3)
            hk_endpoint_allocate(e, now_ms);
        return;
    }
    if (pkt->type != HK_RTCP_PSFB)
        return;
    uint32_t ssrc = 0;
    if (fb.fmt == HK_RTCP_FMT_PLI) {
        ssrc = fb.media_ssrc;
    } else if (fb.fmt == HK_RTCP_FMT_FIR) {
        hk_rtcp_fir_entry_t entry;
        if (hk_rtcp_parse_fir(&fb, &entry, 1, &err) < 1) {
            counters->rtcp_errors++;
            return;
        }
        ssrc = entry.ssrc;
    } else {
        return;
    }
    counters->plis_received++;
    hk_consumer_t *c = hk_endpoint_consumer(e, ssrc);
    if (!c || !c->active)
        return;
    if (c->producer && c->producer->layers && c->layer > 0 && e->transport->bwe &&
        hk_bwe_congested(e->transport->bwe)) {
        /* Its link is losing packets: a key frame of this layer would be lost the same way,
         * and cost every subscriber of the publisher one. It moves down a layer instead
         * (whose key frame the switch asks for). */
        hk_endpoint_apply_cap(e, c, c->layer - 1, HK_LAYER_AUTO, now_ms);
        counters->plis_moved_down++;
        return;
    }
    hk_consumer_request_keyframe(c, now_ms);
}

const hk_transport_events_t hk_endpoint_transport_events = {
    .on_ready = on_ready,
    .on_failed = on_failed,
    .on_rtp = on_rtp,
    .on_sender_report = on_sender_report,
    .on_feedback = on_feedback,
};

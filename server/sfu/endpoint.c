#include "server/sfu/endpoint.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/id.h"

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

void hk_endpoint_clear(hk_endpoint_t *e)
{
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
    c->want = HK_LAYER_AUTO;
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
    }
    if (hk_map_put(&e->consumers, c->ssrc, c) != 0)
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
    hk_map_remove(&e->consumers, c->ssrc);
    free_consumer(c);
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
    if (pkt->type != HK_RTCP_PSFB)
        return; /* transport-wide feedback about our legs: not used yet */
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
    if (c && c->active)
        hk_consumer_request_keyframe(c, now_ms);
}

const hk_transport_events_t hk_endpoint_transport_events = {
    .on_ready = on_ready,
    .on_failed = on_failed,
    .on_rtp = on_rtp,
    .on_sender_report = on_sender_report,
    .on_feedback = on_feedback,
};

#include "server/sfu/producer.h"

#include <stdlib.h>

#include "common/error.h"
#include "server/proto/vcodec.h"
#include "server/sfu/consumer.h"
#include "server/sfu/endpoint.h"
#include "server/sfu/relay.h"

int hk_producer_attach(hk_producer_t *p, hk_consumer_t *c)
{
    if (p->n_consumers == p->cap_consumers) {
        size_t cap = p->cap_consumers ? p->cap_consumers * 2 : 8;
        hk_consumer_t **grown = realloc(p->consumers, cap * sizeof *grown);
        if (!grown)
            return HK_ENOMEM;
        p->consumers = grown;
        p->cap_consumers = cap;
    }
    p->consumers[p->n_consumers++] = c;
    if (p->relay)
        hk_relay_set_wanted(p->relay, true);
    return 0;
}

int hk_producer_tap(hk_producer_t *p, hk_relay_t *r)
{
    if (p->n_taps == p->cap_taps) {
        size_t cap = p->cap_taps ? p->cap_taps * 2 : 4;
        hk_relay_t **grown = realloc(p->taps, cap * sizeof *grown);
        if (!grown)
            return HK_ENOMEM;
        p->taps = grown;
        p->cap_taps = cap;
    }
    p->taps[p->n_taps++] = r;
    return 0;
}

void hk_producer_untap(hk_producer_t *p, hk_relay_t *r)
{
    for (size_t i = 0; i < p->n_taps; i++) {
        if (p->taps[i] == r) {
            p->taps[i] = p->taps[--p->n_taps];
            return;
        }
    }
}

void hk_producer_detach(hk_producer_t *p, hk_consumer_t *c)
{
    for (size_t i = 0; i < p->n_consumers; i++) {
        if (p->consumers[i] == c) {
            p->consumers[i] = p->consumers[--p->n_consumers];
            if (p->relay && p->n_consumers == 0)
                hk_relay_set_wanted(p->relay, false);
            return;
        }
    }
}

uint8_t hk_producer_flowing(const hk_producer_t *p, uint64_t now_ms)
{
    uint8_t flowing = 0;
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++)
        if ((p->layers & (1u << i)) && p->layer_last_ms[i] &&
            now_ms - p->layer_last_ms[i] < HK_LAYER_FLOWING_MS)
            flowing |= (uint8_t)(1u << i);
    return flowing;
}

/* How many layers a window's mask of ids seen shows: those from 0 up without a gap (at
 * most max); 0 or 1 when there is nothing to leave out. */
static uint8_t layers_from(uint8_t seen, uint8_t max)
{
    uint8_t n = 0;
    while ((seen & 1) && n < max) {
        n++;
        seen >>= 1;
    }
    return n > 1 ? n : 0;
}

void hk_producer_update_rates(hk_producer_t *p, uint64_t now_ms)
{
    if (!p->window_ms) {
        p->window_ms = now_ms;
        return;
    }
    uint64_t elapsed = now_ms - p->window_ms;
    if (elapsed < HK_RATE_WINDOW_MS)
        return;
    bool layered = false;
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++) {
        p->layer_bps[i] = (p->layer_bytes[i] - p->window_bytes[i]) * 8000 / elapsed;
        p->window_bytes[i] = p->layer_bytes[i];
        for (int t = 0; t < HK_MAX_TEMPORAL; t++) {
            p->tid_bps[i][t] = (p->tid_bytes[i][t] - p->tid_window_bytes[i][t]) * 8000 / elapsed;
            p->tid_window_bytes[i][t] = p->tid_bytes[i][t];
        }
        p->tid_count[i] = layers_from(p->tids_seen[i], HK_MAX_TEMPORAL);
        p->tids_seen[i] = 0;
        layered |= p->tid_count[i] > 1;
    }
    p->sid_count = layers_from(p->sids_seen, HK_SIMULCAST_MAX_LAYERS);
    p->sids_seen = 0;
    /* Only with the dependency descriptor, which Chromium's receivers then read for the
     * references (a dropped frame leaves gaps in the codec's own picture numbering, which
     * only the simulcast path closes, for VP8). */
    p->svc = !p->layers && p->kind == HK_MEDIA_VIDEO && p->dd_layers[0].known &&
             (layered || p->sid_count > 1);
    p->window_ms = now_ms;
}

/* Counts a video packet of layer `layer` at its place vl among the layers. */
static void count_layers(hk_producer_t *p, int layer, const hk_video_layer_t *vl, size_t len)
{
    int row = layer;
    if (!p->layers && vl->spatial >= 0) {
        row = vl->spatial < HK_SIMULCAST_MAX_LAYERS ? vl->spatial : HK_SIMULCAST_MAX_LAYERS - 1;
        p->sids_seen |= (uint8_t)(1u << row);
    }
    int t = vl->temporal < 0                 ? 0
            : vl->temporal < HK_MAX_TEMPORAL ? vl->temporal
                                             : HK_MAX_TEMPORAL - 1;
    p->tid_bytes[row][t] += len + HK_PACKET_OVERHEAD;
    if (vl->temporal >= 0)
        p->tids_seen[row] |= (uint8_t)(1u << t);
}

void hk_producer_forward(hk_producer_t *p, int layer, const uint8_t *buf, size_t len,
                         const hk_rtp_header_t *hdr, uint64_t now_ms)
{
    p->layer_bytes[layer] += len + HK_PACKET_OVERHEAD;
    hk_video_layer_t vl = HK_VIDEO_LAYER_UNKNOWN;
    if (p->kind == HK_MEDIA_VIDEO) {
        hk_vcodec_layer(buf, hdr, &p->dd_layers[layer], &vl);
        count_layers(p, layer, &vl, len);
    }
    for (size_t i = 0; i < p->n_taps; i++)
        hk_relay_push(p->taps[i], layer, buf, len, hdr);
    if (!p->layers) {
        const hk_video_layer_t *svc = p->svc ? &vl : NULL;
        for (size_t i = 0; i < p->n_consumers; i++)
            hk_consumer_send(p->consumers[i], buf, len, hdr, svc, now_ms);
        return;
    }
    p->layer_last_ms[layer] = now_ms;
    int tid = vl.temporal < HK_MAX_TEMPORAL ? vl.temporal : HK_MAX_TEMPORAL - 1;
    hk_layer_packet_t packet = {
        .layer = (int8_t)layer,
        .flowing = hk_producer_flowing(p, now_ms),
        .keyframe = -1,
        .tid = (int8_t)tid,
        .now_ms = now_ms,
    };
    for (size_t i = 0; i < p->n_consumers; i++)
        hk_consumer_send_layer(p->consumers[i], buf, len, hdr, &packet);
}

hk_stream_t *hk_producer_stream(const hk_producer_t *p, int layer)
{
    if (p->relay)
        return &p->relay->streams[p->kind == HK_MEDIA_AUDIO ? 0 : layer];
    int index = p->kind == HK_MEDIA_AUDIO ? HK_STREAM_AUDIO : HK_STREAM_VIDEO + layer;
    return &p->endpoint->transport->streams[index];
}

void hk_producer_request_keyframe(hk_producer_t *p, int layer, uint64_t now_ms)
{
    if (!p->live || p->kind != HK_MEDIA_VIDEO || layer < 0 || layer >= HK_SIMULCAST_MAX_LAYERS)
        return;
    if (p->relay)
        hk_relay_request_keyframe(p->relay, layer); /* asked on the publisher's worker */
    else
        hk_transport_request_keyframe(p->endpoint->transport, hk_producer_stream(p, layer), false,
                                      now_ms);
}

void hk_producer_close(hk_producer_t *p)
{
    for (size_t i = 0; i < p->n_consumers; i++)
        p->consumers[i]->producer = NULL;
    free(p->consumers);
    p->consumers = NULL;
    p->n_consumers = p->cap_consumers = 0;
    free(p->taps); /* its relays were destroyed first (signal/peer.c) */
    p->taps = NULL;
    p->n_taps = p->cap_taps = 0;
    p->live = false;
    p->layers = 0;
    p->svc = false;
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++) {
        p->layer_bps[i] = 0;
        p->tid_count[i] = 0;
        p->dd_layers[i].known = false;
        for (int t = 0; t < HK_MAX_TEMPORAL; t++)
            p->tid_bps[i][t] = 0;
    }
}

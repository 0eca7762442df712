#include "server/sfu/producer.h"

#include <stdlib.h>

#include "common/error.h"
#include "server/proto/vcodec.h"
#include "server/sfu/consumer.h"
#include "server/sfu/endpoint.h"

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
    return 0;
}

void hk_producer_detach(hk_producer_t *p, hk_consumer_t *c)
{
    for (size_t i = 0; i < p->n_consumers; i++) {
        if (p->consumers[i] == c) {
            p->consumers[i] = p->consumers[--p->n_consumers];
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

void hk_producer_update_rates(hk_producer_t *p, uint64_t now_ms)
{
    if (!p->window_ms) {
        p->window_ms = now_ms;
        return;
    }
    uint64_t elapsed = now_ms - p->window_ms;
    if (elapsed < HK_RATE_WINDOW_MS)
        return;
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++) {
        p->layer_bps[i] = (p->layer_bytes[i] - p->window_bytes[i]) * 8000 / elapsed;
        p->window_bytes[i] = p->layer_bytes[i];
        for (int t = 0; t < HK_MAX_TEMPORAL; t++) {
            p->tid_bps[i][t] = (p->tid_bytes[i][t] - p->tid_window_bytes[i][t]) * 8000 / elapsed;
            p->tid_window_bytes[i][t] = p->tid_bytes[i][t];
        }
        /* Temporal layers count only when the base layer was seen too. */
        uint8_t seen = p->tids_seen[i];
        p->tid_count[i] = 0;
        while ((seen & 1) && p->tid_count[i] < HK_MAX_TEMPORAL) {
            p->tid_count[i]++;
            seen >>= 1;
        }
        if (p->tid_count[i] == 1)
            p->tid_count[i] = 0; /* one temporal layer: nothing to drop */
        p->tids_seen[i] = 0;
    }
    p->window_ms = now_ms;
}

void hk_producer_forward(hk_producer_t *p, int layer, const uint8_t *buf, size_t len,
                         const hk_rtp_header_t *hdr, uint64_t now_ms)
{
    p->layer_bytes[layer] += len + HK_PACKET_OVERHEAD;
    if (!p->layers) {
        for (size_t i = 0; i < p->n_consumers; i++)
            hk_consumer_send(p->consumers[i], buf, len, hdr);
        return;
    }
    p->layer_last_ms[layer] = now_ms;
    int tid = hk_vcodec_temporal_id(buf, hdr, &p->dd_layers[layer]);
    int slot = tid < 0 ? 0 : tid < HK_MAX_TEMPORAL ? tid : HK_MAX_TEMPORAL - 1;
    p->tid_bytes[layer][slot] += len + HK_PACKET_OVERHEAD;
    if (tid >= 0)
        p->tids_seen[layer] |= (uint8_t)(1u << slot);
    hk_layer_packet_t packet = {
        .layer = (int8_t)layer,
        .flowing = hk_producer_flowing(p, now_ms),
        .keyframe = -1,
        .tid = (int8_t)(tid < 0 ? -1 : slot),
        .now_ms = now_ms,
    };
    for (size_t i = 0; i < p->n_consumers; i++)
        hk_consumer_send_layer(p->consumers[i], buf, len, hdr, &packet);
}

hk_stream_t *hk_producer_stream(const hk_producer_t *p, int layer)
{
    int index = p->kind == HK_MEDIA_AUDIO ? HK_STREAM_AUDIO : HK_STREAM_VIDEO + layer;
    return &p->endpoint->transport->streams[index];
}

void hk_producer_request_keyframe(hk_producer_t *p, int layer, uint64_t now_ms)
{
    if (p->live && p->kind == HK_MEDIA_VIDEO && layer >= 0 && layer < HK_SIMULCAST_MAX_LAYERS)
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
    p->live = false;
    p->layers = 0;
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++) {
        p->layer_bps[i] = 0;
        p->tid_count[i] = 0;
        p->dd_layers[i].known = false;
        for (int t = 0; t < HK_MAX_TEMPORAL; t++)
            p->tid_bps[i][t] = 0;
    }
}

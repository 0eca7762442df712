#include "server/sfu/producer.h"

#include <stdlib.h>

#include "common/error.h"
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

void hk_producer_forward(hk_producer_t *p, const uint8_t *buf, size_t len,
                         const hk_rtp_header_t *hdr)
{
    for (size_t i = 0; i < p->n_consumers; i++)
        hk_consumer_send(p->consumers[i], buf, len, hdr);
}

hk_stream_t *hk_producer_stream(const hk_producer_t *p)
{
    return &p->endpoint->transport->streams[p->stream];
}

void hk_producer_request_keyframe(hk_producer_t *p, uint64_t now_ms)
{
    if (p->ssrc && p->kind == HK_MEDIA_VIDEO)
        hk_transport_request_keyframe(p->endpoint->transport, hk_producer_stream(p), false, now_ms);
}

void hk_producer_close(hk_producer_t *p)
{
    for (size_t i = 0; i < p->n_consumers; i++)
        p->consumers[i]->producer = NULL;
    free(p->consumers);
    p->consumers = NULL;
    p->n_consumers = p->cap_consumers = 0;
    p->ssrc = 0;
}

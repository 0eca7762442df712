#include "server/sfu/relay.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/proto/nack.h"
#include "server/sfu/consumer.h"

#define RELAY_CACHE_SLOTS 512 /* the mirror's retransmission cache, as a publisher's stream's */

/* Each ready stack is linked through its own field of the relay. */
#define PUSH(stack, r, link)                                                                       \
    do {                                                                                           \
        hk_relay_t *top_ = atomic_load(stack);                                                     \
        do                                                                                         \
            (r)->link = top_;                                                                      \
        while (!atomic_compare_exchange_weak(stack, &top_, (r)));                                  \
    } while (0)

static void unref(hk_relay_t *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
}

static void free_buffers(hk_relay_t *r)
{
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++) {
        hk_nack_cache_destroy(r->streams[i].cache);
        r->streams[i].cache = NULL;
    }
    free(r->slots);
    r->slots = NULL;
}

hk_relay_t *hk_relay_create(hk_producer_t *source, hk_relay_inbox_t *source_inbox,
                            hk_relay_inbox_t *target_inbox)
{
    hk_relay_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    bool video = source->kind == HK_MEDIA_VIDEO;
    r->n_slots = video ? HK_RELAY_SLOTS_VIDEO : HK_RELAY_SLOTS_AUDIO;
    r->slots = malloc(r->n_slots * sizeof *r->slots);
    bool ok = r->slots != NULL;
    for (int i = 0; ok && video && i < HK_SIMULCAST_MAX_LAYERS; i++) {
        if (i == 0 || (source->layers & (1u << i))) {
            r->streams[i].kind = HK_MEDIA_VIDEO;
            r->streams[i].cache = hk_nack_cache_create(RELAY_CACHE_SLOTS);
            ok = r->streams[i].cache != NULL;
        }
    }
    if (!ok || hk_producer_tap(source, r) != 0) {
        free_buffers(r);
        free(r);
        return NULL;
    }
    r->source = source;
    r->source_counters = &source_inbox->host->counters;
    r->source_inbox = source_inbox;
    r->target_inbox = target_inbox;
    r->mirror_owner.owner = source->endpoint->owner;
    r->mirror.endpoint = &r->mirror_owner;
    r->mirror.kind = source->kind;
    r->mirror.live = source->live;
    r->mirror.layers = source->layers;
    r->mirror.relay = r;
    atomic_init(&r->refs, 1);
    return r;
}

void hk_relay_destroy(hk_relay_t *r)
{
    hk_producer_untap(r->source, r);
    hk_producer_close(&r->mirror);
    free_buffers(r);
    atomic_store(&r->dead, true);
    unref(r);
}

void hk_relay_set_wanted(hk_relay_t *r, bool wanted)
{
    atomic_store_explicit(&r->wanted, wanted, memory_order_relaxed);
}

static void schedule(hk_relay_t *r)
{
    if (atomic_exchange(&r->scheduled, true))
        return;
    atomic_fetch_add(&r->refs, 1);
    PUSH(&r->target_inbox->ready, r, next_ready);
    r->target_inbox->wake(r->target_inbox->wake_user);
}

static hk_relay_slot_t *claim(hk_relay_t *r, uint32_t *head)
{
    if (!atomic_load_explicit(&r->wanted, memory_order_relaxed))
        return NULL; /* nobody on the target: no copy */
    *head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (*head - tail >= r->n_slots) {
        r->source_counters->relay_dropped++;
        return NULL;
    }
    return &r->slots[*head & (r->n_slots - 1)];
}

static void publish(hk_relay_t *r, uint32_t head)
{
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    r->source_counters->relay_packets++;
    schedule(r);
}

void hk_relay_push(hk_relay_t *r, int layer, const uint8_t *buf, size_t len,
                   const hk_rtp_header_t *hdr)
{
    uint32_t head;
    if (len > HK_RELAY_PACKET_MAX) {
        if (atomic_load_explicit(&r->wanted, memory_order_relaxed))
            r->source_counters->relay_dropped++;
        return;
    }
    hk_relay_slot_t *slot = claim(r, &head);
    if (!slot)
        return;
    slot->len = (uint16_t)len;
    slot->layer = (uint8_t)layer;
    slot->sender_report = false;
    slot->hdr = *hdr;
    memcpy(slot->data, buf, len);
    publish(r, head);
}

void hk_relay_push_report(hk_relay_t *r, int layer, const hk_rtcp_report_t *sr)
{
    uint32_t head;
    hk_relay_slot_t *slot = claim(r, &head);
    if (!slot)
        return;
    _Static_assert(sizeof *sr <= HK_RELAY_PACKET_MAX, "a report fits a slot");
    slot->len = (uint16_t)sizeof *sr;
    slot->layer = (uint8_t)layer;
    slot->sender_report = true;
    memcpy(slot->data, sr, sizeof *sr);
    publish(r, head);
}

void hk_relay_request_keyframe(hk_relay_t *r, int layer)
{
    atomic_fetch_or(&r->keyframe_layers, 1u << layer);
    if (atomic_exchange(&r->keyframe_scheduled, true))
        return;
    atomic_fetch_add(&r->refs, 1);
    PUSH(&r->source_inbox->keyframes, r, next_keyframe);
    r->source_inbox->wake(r->source_inbox->wake_user);
}

/* Target: one slot to the mirror's consumers, as the publisher's endpoint does with what
 * its transport received. */
static void deliver(hk_relay_t *r, hk_relay_slot_t *slot, uint64_t now_ms)
{
    hk_producer_t *p = &r->mirror;
    int layer = slot->layer < HK_SIMULCAST_MAX_LAYERS ? slot->layer : 0;
    if (slot->sender_report) {
        hk_rtcp_report_t sr;
        memcpy(&sr, slot->data, sizeof sr);
        for (size_t i = 0; i < p->n_consumers; i++)
            if (!p->layers || p->consumers[i]->layer == layer)
                hk_consumer_send_sender_report(p->consumers[i], &sr);
        return;
    }
    const hk_rtp_header_t *hdr = &slot->hdr;
    hk_stream_t *s = &r->streams[layer];
    s->ssrc = hdr->ssrc;
    s->packets++;
    s->bytes += slot->len;
    if (s->cache)
        hk_nack_cache_put(s->cache, hdr->seq, slot->data, slot->len, now_ms);
    hk_producer_forward(p, layer, slot->data, slot->len, hdr, now_ms);
    r->forwarded++;
}

static void drain_ring(hk_relay_t *r, uint64_t now_ms)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    for (; tail != head; tail++) {
        deliver(r, &r->slots[tail & (r->n_slots - 1)], now_ms);
        atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    }
}

void hk_relay_inbox_drain(hk_relay_inbox_t *inbox, uint64_t now_ms)
{
    for (hk_relay_t *r = atomic_exchange(&inbox->ready, NULL), *next; r; r = next) {
        next = r->next_ready;
        /* Cleared first: a packet pushed from now on schedules it again. */
        atomic_store(&r->scheduled, false);
        if (!atomic_load(&r->dead))
            drain_ring(r, now_ms);
        unref(r);
    }
    for (hk_relay_t *r = atomic_exchange(&inbox->keyframes, NULL), *next; r; r = next) {
        next = r->next_keyframe;
        atomic_store(&r->keyframe_scheduled, false);
        uint32_t layers = atomic_exchange(&r->keyframe_layers, 0);
        for (int i = 0; !atomic_load(&r->dead) && i < HK_SIMULCAST_MAX_LAYERS; i++)
            if (layers & (1u << i))
                hk_producer_request_keyframe(r->source, i, now_ms);
        unref(r);
    }
}

/* An endpoint: the SFU side of one connection. It binds the connection's media
 * transport (rtc/) to the producers it publishes and the consumers it receives, and
 * routes what its transport reports: the publisher's RTP to its producer's consumers,
 * the subscriber's feedback (NACK, PLI, FIR) to the consumer it names by SSRC (one map
 * lookup), sender reports through the consumers.
 * Ownership: created and freed by the signaling session (signal/peer.c), which also
 * owns the transport and outlives both. */
#ifndef HK_ENDPOINT_H
#define HK_ENDPOINT_H

#include <stdint.h>

#include "common/map.h"
#include "server/rtc/transport.h"
#include "server/sfu/allocator.h"
#include "server/sfu/consumer.h"
#include "server/sfu/producer.h"

typedef struct {
    /* The transport failed: the owner closes the connection with this code and reason. */
    void (*on_failed)(void *owner, int close_code, const char *reason);
    /* Media flows (DTLS-SRTP up). */
    void (*on_ready)(void *owner, uint64_t now_ms);
    /* One of its consumers of a simulcast track moved from layer `previous` to `current`
     * (-1: none). Called from the forwarding path: it must not free the consumer. */
    void (*on_layer_switched)(void *owner, hk_consumer_t *c, int previous, int current);
} hk_endpoint_owner_t;

typedef struct hk_endpoint_s {
    hk_transport_t *transport;
    const hk_endpoint_owner_t *owner_events;
    void *owner;
    hk_producer_t producers[2]; /* by hk_media_kind_t */
    hk_map_t consumers;         /* own SSRC -> consumer (consumers.count: how many) */
    /* Downlink adaptation, once the subscriber sends transport-cc feedback: every
     * HK_ALLOC_INTERVAL_MS its estimate is split across its consumers (sfu/allocator.h),
     * which caps their simulcast layers; when the layers it wants need more than the
     * estimate, the transport probes. Scratch for the allocator, one entry per consumer: */
    struct {
        hk_consumer_t **consumers;
        hk_alloc_consumer_t *in;
        hk_alloc_result_t *out;
        size_t *order;
        size_t cap;
    } alloc;
    uint64_t last_alloc_ms;
    uint64_t desired_bps;        /* what its consumers' wanted layers need */
    uint64_t allocated_bps;      /* what the last allocation gave them */
    uint64_t alloc_estimate_bps; /* the estimate it was made from */
    uint64_t last_probe_ms;
    uint64_t probe_from_bps; /* the estimate when it last probed */
    uint64_t probe_wait_ms;  /* before the next probe when the last raised nothing */
    uint64_t last_down_ms;   /* a consumer was last moved down by the estimate */
    bool holding; /* its transport pads up to a pending upgrade's rate (hk_endpoint_apply_cap) */
    hk_consumer_t *pad_consumer; /* whose RTX SSRC carries the padding */
} hk_endpoint_t;

#define HK_ALLOC_INTERVAL_MS 250
#define HK_ALLOC_BUDGET_PCT  80 /* of the estimate, for media (key frames, RTCP, probes) */
/* A layer above the current one is taken only once the allocation has offered it this
 * long without a break, and not this soon after a move down: every switch costs a key
 * frame, and a simulcast encoder (VP8) makes one on every layer, for every subscriber. */
#define HK_UPGRADE_HOLD_MS         2000
#define HK_UPGRADE_AFTER_DOWN_MS   5000
#define HK_PAUSE_HOLD_MS           2000 /* a pause is taken only after this long */
#define HK_BWE_START_BPS           1000000
#define HK_BWE_MIN_BPS             50000
#define HK_BWE_MAX_BPS             100000000
#define HK_PROBE_DURATION_MS       100 /* at least; long enough to outlast a 32 KB burst allowance */
#define HK_PROBE_DURATION_MAX_MS   300
#define HK_PROBE_AFTER_RAISE_MS    1000 /* the last probe raised the estimate: the next soon */
#define HK_PROBE_AFTER_MISS_MS     2000 /* it did not: the link is likely full; doubling ... */
#define HK_PROBE_AFTER_MISS_MAX_MS 4000 /* ... up to this */

/* The transport's events (give them to hk_transport_create with the endpoint as user). */
extern const hk_transport_events_t hk_endpoint_transport_events;

void hk_endpoint_init(hk_endpoint_t *e, const hk_endpoint_owner_t *owner_events, void *owner);
/* Frees its consumers and detaches everyone consuming its producers. */
void hk_endpoint_clear(hk_endpoint_t *e);

/* The publisher answered: whether it sends audio and video, and its video's simulcast
 * layers (bit i: rid r<i>; 0: no simulcast). */
void hk_endpoint_set_producers(hk_endpoint_t *e, bool audio, bool video, uint8_t video_layers);

/* A consumer of producer (another endpoint's) with a fresh SSRC, inactive, wanting the
 * best simulcast layer. NULL on ENOMEM or when the producer has no track. */
hk_consumer_t *hk_endpoint_consume(hk_endpoint_t *e, hk_producer_t *producer, const char *mid);
hk_consumer_t *hk_endpoint_consumer(const hk_endpoint_t *e, uint32_t ssrc);
/* The subscriber answered an offer with it: packets flow from now on. */
void hk_endpoint_activate(hk_endpoint_t *e, hk_consumer_t *c);
/* Its section closed: freed. */
void hk_endpoint_unconsume(hk_endpoint_t *e, hk_consumer_t *c);

/* Splits the subscriber's downlink estimate across its consumers now, and probes when
 * they want more (the transport-cc feedback calls it every HK_ALLOC_INTERVAL_MS). */
void hk_endpoint_allocate(hk_endpoint_t *e, uint64_t now_ms);

/* The allocation chose `choice` (a layer, HK_LAYER_NONE or HK_LAYER_AUTO) and, within
 * it, the highest temporal layer `temporal` (HK_LAYER_AUTO: all) for simulcast consumer
 * c; caps are ordered by layer, then temporal layer. A lower cap takes effect at once (a
 * pause only after HK_PAUSE_HOLD_MS, the lowest layer's base temporal layer until then);
 * a higher one once it was offered for HK_UPGRADE_HOLD_MS and HK_UPGRADE_AFTER_DOWN_MS
 * have passed since the subscriber's last move down (out of a pause at once). */
void hk_endpoint_apply_cap(hk_endpoint_t *e, hk_consumer_t *c, int choice, int temporal,
                           uint64_t now_ms);

/* Key frames for every video this subscriber receives (it just connected, or just
 * learned of new tracks). */
void hk_endpoint_request_keyframes(hk_endpoint_t *e, uint64_t now_ms);

#endif

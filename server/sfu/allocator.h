/* Splits one subscriber's downlink estimate (rtc/bwe.h) across its consumers.
 *
 * A pure function, run whenever the estimate or a consumer's layers change:
 *   1. single-layer consumers (audio, video without simulcast) get their bitrate first,
 *      whatever the estimate (never starved);
 *   2. simulcast consumers, highest priority first (ties in array order), get their lowest
 *      layer if it fits; one that does not fit is paused. A consumer that receives a
 *      layer now keeps its lowest (and, when it receives the lowest spatial layer, the
 *      temporal layers it has of it) within keep_bps (the whole estimate); one that is
 *      paused or new needs room within budget_bps (the estimate less a reserve): a dip of
 *      the estimate, as after the link's queue drained, does not pause what it carried;
 *   3. then rounds of upgrades: each round, each consumer in priority order moves one
 *      step up its ladder (its layers ordered by spatial, then temporal id, up to its
 *      caps) if what is left of budget_bps covers the difference; a consumer whose next
 *      step does not fit stops there. Rounds end when nobody moved. Steps within a
 *      consumer's spatial layer (more frames) come first, until nobody moves; only then
 *      steps to higher spatial layers, so nobody's frame rate pays for another's larger
 *      picture.
 * Hysteresis: reaching a layer above the consumer's current one (or unpausing) costs
 * HK_ALLOC_UP_MARGIN_PCT percent more than the layer's bitrate, so a consumer keeps its
 * layer while the estimate wobbles around that layer's rate, and moves up only with
 * headroom. Moving down has no margin.
 *
 * No allocation, no state: the caller keeps each consumer's current layer and passes it
 * back, and gives the scratch space (n entries) for the priority order. (mediasoup's
 * Transport::DistributeAvailableOutgoingBitrate and LiveKit's stream allocator follow the same
 * order.) */
#ifndef HK_ALLOCATOR_H
#define HK_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_ALLOC_MAX_SPATIAL   4 /* dependency descriptor: spatial ids 0..3 */
#define HK_ALLOC_MAX_TEMPORAL  4 /* Chromium sends at most 3 temporal layers */
#define HK_ALLOC_UP_MARGIN_PCT 15

typedef struct {
    bool single;      /* one layer (audio, non-simulcast video): bitrate[0][0]; never paused */
    uint8_t priority; /* higher is served first */
    /* bps needed to forward layer (spatial, temporal): what the subscriber receives with
     * it, i.e. cumulative over the temporal layers below and, for SVC, the spatial
     * layers below; for simulcast, that encoding alone. 0: the layer is not available
     * (not sent, or inactive). */
    uint64_t bitrate[HK_ALLOC_MAX_SPATIAL][HK_ALLOC_MAX_TEMPORAL];
    uint8_t max_spatial; /* the subscriber's caps (e.g. simulcast_rid r1 -> 1) */
    uint8_t max_temporal;
    /* The layer forwarded now, for hysteresis; current_spatial < 0 when paused or new. */
    int8_t current_spatial;
    int8_t current_temporal;
} hk_alloc_consumer_t;

typedef struct {
    bool paused; /* video only: nothing forwarded (no layer fits, or none available) */
    uint8_t spatial;
    uint8_t temporal;
    uint64_t bitrate; /* the chosen layer's bitrate (0 when paused) */
} hk_alloc_result_t;

/* Chooses a layer for each of the n consumers within keep_bps and budget_bps (as above;
 * budget_bps <= keep_bps); out[i] is consumer i's; order: n entries of scratch. Returns
 * the total allocated (which exceeds keep_bps only by single-layer tracks). */
uint64_t hk_allocate(uint64_t keep_bps, uint64_t budget_bps, const hk_alloc_consumer_t *consumers,
                     size_t n, hk_alloc_result_t *out, size_t *order);

#endif

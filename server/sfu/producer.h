/* A producer: one track a publisher sends (its audio, or its video with RTX), as the
 * router sees it. A simulcast video has several layers (encodings r0 < r1 < r2), each its
 * own stream in the publisher's transport. It keeps the array of its consumers, changed
 * only when subscribers (re)negotiate; forwarding a packet is one loop over that array,
 * whatever the size of the channel.
 * Ownership: embedded in its publisher's endpoint (sfu/endpoint.h). */
#ifndef HK_PRODUCER_H
#define HK_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto/dd.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"
#include "server/rtc/transport.h"

typedef struct hk_endpoint_s hk_endpoint_t;
typedef struct hk_consumer_s hk_consumer_t;
typedef struct hk_relay_s hk_relay_t;

/* A layer counts as flowing while its latest packet is younger than this. */
#define HK_LAYER_FLOWING_MS 1000
/* Bitrates are measured over windows of this length ... */
#define HK_RATE_WINDOW_MS 1000
/* ... counting for each packet what the subscriber's leg adds (mid and transport-wide
 * extensions, SRTP tag) and the IP/UDP headers. */
#define HK_PACKET_OVERHEAD 50
/* Temporal layers told apart (Chromium sends at most 3); a packet of a higher temporal
 * id counts as the highest. */
#define HK_MAX_TEMPORAL 4

typedef struct hk_producer_s {
    hk_endpoint_t *endpoint; /* the publisher's */
    hk_media_kind_t kind;
    bool live;      /* the publisher sends this track */
    uint8_t layers; /* simulcast video: bit i for rid r<i>; 0: one stream */
    uint64_t layer_last_ms[HK_SIMULCAST_MAX_LAYERS]; /* simulcast: each layer's latest packet */
    /* What each layer (index 0 without simulcast) costs a subscriber, measured from what
     * arrives (hk_producer_update_rates): bytes so far with HK_PACKET_OVERHEAD per packet,
     * those at the window's start, and the rate over the last window. */
    uint64_t layer_bytes[HK_SIMULCAST_MAX_LAYERS];
    uint64_t window_bytes[HK_SIMULCAST_MAX_LAYERS];
    uint64_t window_ms;
    uint64_t layer_bps[HK_SIMULCAST_MAX_LAYERS];
    /* Video: the same per temporal layer of each simulcast layer, or, without simulcast,
     * per spatial (row) and temporal layer of its one stream (hk_vcodec_layer; a packet
     * that does not say counts as layer 0, a spatial or temporal id over the array's as
     * the highest); how many temporal layers each row had in the last window (0: its
     * packets do not say, or only one: nothing to leave out), and without simulcast how
     * many spatial layers. */
    uint64_t tid_bytes[HK_SIMULCAST_MAX_LAYERS][HK_MAX_TEMPORAL];
    uint64_t tid_window_bytes[HK_SIMULCAST_MAX_LAYERS][HK_MAX_TEMPORAL];
    uint64_t tid_bps[HK_SIMULCAST_MAX_LAYERS][HK_MAX_TEMPORAL];
    uint8_t tids_seen[HK_SIMULCAST_MAX_LAYERS]; /* this window: bit t for temporal id t */
    uint8_t tid_count[HK_SIMULCAST_MAX_LAYERS];
    uint8_t sids_seen; /* without simulcast, this window: bit s for spatial id s */
    uint8_t sid_count;
    /* Without simulcast: its stream has spatial or temporal layers (SVC, e.g. VP9 or AV1
     * L3T3 in one SSRC, or a single encoding's L1T3) that its dependency descriptors
     * tell: consumers may leave some out. */
    bool svc;
    hk_dd_layers_t dd_layers[HK_SIMULCAST_MAX_LAYERS]; /* each stream's templates */
    hk_consumer_t **consumers;
    size_t n_consumers, cap_consumers;
    /* Relays of this producer to other workers (sfu/relay.h): each packet is pushed to
     * them after the consumers. */
    hk_relay_t **taps;
    size_t n_taps, cap_taps;
    /* Set in a relay's mirror: its streams and key frame requests are the relay's. */
    hk_relay_t *relay;
} hk_producer_t;

/* Adds / removes a consumer of this producer. Returns 0 or HK_ENOMEM. */
int hk_producer_attach(hk_producer_t *p, hk_consumer_t *c);
void hk_producer_detach(hk_producer_t *p, hk_consumer_t *c);

/* Adds / removes a relay to another worker (sfu/relay.h). Returns 0 or HK_ENOMEM. */
int hk_producer_tap(hk_producer_t *p, hk_relay_t *r);
void hk_producer_untap(hk_producer_t *p, hk_relay_t *r);

/* A packet of this track's layer (0 without simulcast): to every active consumer that
 * receives that layer, or moves to it at this packet. */
void hk_producer_forward(hk_producer_t *p, int layer, const uint8_t *buf, size_t len,
                         const hk_rtp_header_t *hdr, uint64_t now_ms);

/* Closes the rate window when HK_RATE_WINDOW_MS passed: layer_bps is then the mean over
 * it (a layer that stopped reads 0). */
void hk_producer_update_rates(hk_producer_t *p, uint64_t now_ms);

/* The layers (bit i: layer i) that have sent a packet within HK_LAYER_FLOWING_MS. */
uint8_t hk_producer_flowing(const hk_producer_t *p, uint64_t now_ms);

/* The stream of one of its layers in the publisher's transport (a mirror's: the relay's). */
hk_stream_t *hk_producer_stream(const hk_producer_t *p, int layer);

/* Asks the publisher for a key frame of this layer (throttled per layer, so requests of
 * many subscribers make one). */
void hk_producer_request_keyframe(hk_producer_t *p, int layer, uint64_t now_ms);

/* Detaches every consumer (the producer goes away): they stay, receiving nothing. */
void hk_producer_close(hk_producer_t *p);

#endif

/* A producer: one track a publisher sends (its audio, or its video with RTX), as the
 * router sees it. It keeps the array of its consumers, changed only when subscribers
 * (re)negotiate; forwarding a packet is one loop over that array, whatever the size of
 * the channel.
 * Ownership: embedded in its publisher's endpoint (sfu/endpoint.h). */
#ifndef HK_PRODUCER_H
#define HK_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "server/proto/rtp.h"
#include "server/proto/sdp.h"
#include "server/rtc/transport.h"

typedef struct hk_endpoint_s hk_endpoint_t;
typedef struct hk_consumer_s hk_consumer_t;

typedef struct hk_producer_s {
    hk_endpoint_t *endpoint; /* the publisher's */
    hk_media_kind_t kind;
    hk_stream_index_t stream; /* its receive state in the publisher's transport */
    uint32_t ssrc;            /* 0: the publisher sends no such track */
    hk_consumer_t **consumers;
    size_t n_consumers, cap_consumers;
} hk_producer_t;

/* Adds / removes a consumer of this producer. Returns 0 or HK_ENOMEM. */
int hk_producer_attach(hk_producer_t *p, hk_consumer_t *c);
void hk_producer_detach(hk_producer_t *p, hk_consumer_t *c);

/* A packet of this track: to every active consumer. */
void hk_producer_forward(hk_producer_t *p, const uint8_t *buf, size_t len,
                         const hk_rtp_header_t *hdr);

/* Its stream in the publisher's transport. */
hk_stream_t *hk_producer_stream(const hk_producer_t *p);

/* Asks the publisher for a key frame of this track (throttled). */
void hk_producer_request_keyframe(hk_producer_t *p, uint64_t now_ms);

/* Detaches every consumer (the producer goes away): they stay, receiving nothing. */
void hk_producer_close(hk_producer_t *p);

#endif

/* A consumer: one subscriber's view of one producer. It owns what the subscriber sees
 * of that track: its own SSRC, sequence numbers and timestamps (mapped from the
 * producer's by offsets chosen at its first packet, and chosen again when it moves to
 * another simulcast layer, so the subscriber sees one continuous stream), its mid, and
 * the record of what it sent, keyed by its own sequence numbers, from which the
 * subscriber's NACKs are answered.
 *
 * Simulcast: it receives one layer at a time. The layer it should receive (its target)
 * follows what the subscriber asked for (want) and what the publisher sends: the wanted
 * layer, else the highest flowing layer below it, else the lowest above. It moves to the
 * target only at a key frame of the target layer (proto/vcodec.h), asked for with a PLI,
 * and keeps the old layer until then; the dependency descriptor's frame numbers are
 * rewritten to stay continuous too.
 * It receives packets only once active: after the subscriber answered an offer that
 * contained it (no media before negotiation).
 * Ownership: created and freed through its subscriber's endpoint. */
#ifndef HK_CONSUMER_H
#define HK_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto/rtcp.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"
#include "server/proto/vcodec.h"

typedef struct hk_endpoint_s hk_endpoint_t;
typedef struct hk_producer_s hk_producer_t;

#define HK_CONSUMER_HISTORY 512 /* sent packets remembered for NACKs (power of two) */

typedef struct {
    uint16_t own;     /* the consumer's sequence number */
    uint16_t src;     /* the producer's */
    uint8_t layer;    /* of this simulcast layer (0 without simulcast) */
    uint8_t epoch;    /* the consumer's switch count (mod 256) when it was sent: its offsets */
    uint16_t picture; /* simulcast VP8: the PictureID it was sent with (dropped temporal
                         layers move the mapping on, so a resend does not recompute it) */
} hk_consumer_sent_t;

/* What a subscriber asks of a simulcast track, besides a layer 0..2. */
#define HK_LAYER_NONE -1 /* nothing: the track is paused */
#define HK_LAYER_AUTO -2 /* the best the publisher sends */

/* One packet of a simulcast producer, as its consumers see it. */
typedef struct {
    int8_t layer;    /* the packet's */
    uint8_t flowing; /* hk_producer_flowing */
    int8_t keyframe; /* starts a key frame: -1 not looked at yet, 0, 1 */
    int8_t tid;      /* its temporal layer (hk_vcodec_temporal_id), -1: not said */
    uint64_t now_ms;
} hk_layer_packet_t;

typedef struct hk_consumer_s {
    hk_producer_t *producer;          /* NULL once the producer went away */
    hk_endpoint_t *endpoint;          /* the subscriber's */
    struct hk_transport_s *transport; /* the subscriber's (endpoint->transport, kept here
                                         for the fan-out loop) */
    hk_media_kind_t kind;
    uint32_t ssrc; /* its own, in the subscriber's offer */
    char mid[HK_SDP_MID_LEN];
    uint8_t mid_len;
    bool active; /* answered: packets flow */
    /* Mapping: own = producer's + offset (mod 2^16 / 2^32), fixed at the first packet. */
    bool started;
    uint16_t seq_base; /* random first own sequence number */
    uint32_t ts_base;  /* random first own timestamp */
    uint16_t seq_offset;
    uint32_t ts_offset;
    /* Video: for each own sequence number sent, the producer's (history[own % N], valid
     * when its own == own); one entry, one cache line, per packet. */
    hk_consumer_sent_t *history;
    uint64_t packets, bytes;
    /* Simulcast (the producer has layers). */
    int8_t want;    /* asked for: a layer, HK_LAYER_NONE or HK_LAYER_AUTO */
    int8_t layer;   /* receiving now, -1: none */
    int8_t target;  /* to move to at its next key frame, -1: none */
    int8_t cap;     /* the highest layer the subscriber's downlink estimate allows
                       (HK_LAYER_AUTO: no limit, HK_LAYER_NONE: paused) */
    int8_t tcap;    /* the highest temporal layer it allows (HK_LAYER_AUTO: all) */
    int8_t offered; /* the allocation's latest choice above cap (and its temporal
                       cap), ... */
    int8_t offered_temporal;
    uint64_t offered_ms;   /* ... made every time since then */
    bool want_from_api;    /* want was set through the API, and no switch was reported
                              since (the notify's trigger) */
    uint16_t last_seq;     /* highest own sequence number sent */
    uint32_t last_ts;      /* own timestamp of that packet */
    uint64_t last_sent_ms; /* when it was sent */
    /* Temporal layers: those above max_tid (tcap, taken at the base layer's next packet)
     * are dropped, and the sequence numbers of what follows leave them out: dropped has
     * bit i set when the producer's packet last_src - i was dropped, and a late packet is
     * mapped with the drops after it added back. */
    int8_t max_tid;
    /* SVC: the spatial layers forwarded (cap, taken at a picture's start; HK_LAYER_AUTO:
     * all, -1: none), and the producer's timestamp of the latest picture. */
    int8_t max_sid;
    bool has_picture_ts;
    uint32_t picture_ts;
    uint16_t last_src; /* the producer's highest number seen on the layer it receives */
    uint64_t dropped;
    uint32_t drops; /* since the last switch */
    /* VP8 PictureIDs leave dropped frames out too (receivers without the dependency
     * descriptor wait for missing pictures): picture_offset holds from the producer's
     * picture picture_from on, the offset before it for older (late) packets. */
    bool dropping_picture;
    uint16_t dropped_picture; /* the producer's PictureID of the latest dropped frame */
    uint16_t picture_from;
    uint16_t picture_offset_before;
    uint16_t switch_seq;   /* the producer's number of the key frame it moved at ... */
    uint16_t switch_guard; /* ... before which the new layer's packets are dropped, for this
                              many more packets */
    bool has_frame_number;
    uint16_t frame_offset;   /* dependency descriptor: own frame number = src + offset */
    uint16_t last_frame;     /* highest own frame number sent */
    bool has_picture_id;     /* VP8 payload descriptor, the same way: */
    uint16_t picture_offset; /* own PictureID = src + offset (mod its width) */
    uint16_t last_picture;   /* highest own PictureID sent */
    bool has_tl0;
    uint8_t tl0_offset; /* own TL0PICIDX = src + offset */
    uint8_t last_tl0;
    uint64_t last_request_ms; /* its last key-frame request for a switch */
    uint32_t switches;
    /* Video: its RTX SSRC in the subscriber's offer, which carries probe padding (the
     * transport numbers it from rtx_seq), and the payload type it forwards. */
    uint32_t rtx_ssrc;
    uint16_t rtx_seq;
    uint8_t last_pt;
#ifdef HK_TEST_ATTACKS
    /* Test builds only: the replay attack (hk_rtc_host_t.attack_replay, sfu/consumer.c). */
    struct {
        uint64_t start_ms; /* no replay before */
        bool seen;         /* the frame being sent: */
        bool key;          /* it starts a key frame */
        uint32_t ts;       /* its producer's timestamp */
        uint16_t first;    /* its producer's number of its first packet */
        uint16_t newest;   /* the producer's highest number sent */
        uint16_t from, to; /* the frame recorded to replay: its producer's numbers */
        uint8_t left;      /* replays of it left */
        uint8_t rounds;    /* frames recorded so far */
        uint64_t next_ms;  /* its next replay */
    } replay;
#endif
} hk_consumer_t;

/* Sends one of the producer's packets to the subscriber, mapped (not while inactive).
 * svc: the packet's place among the layers of a producer with SVC (hk_producer_t.svc),
 * NULL otherwise: the consumer then leaves out the layers above its caps (cap: spatial,
 * tcap: temporal), taken at the start of a picture, a higher spatial cap only at a key
 * picture (asked for). */
void hk_consumer_send(hk_consumer_t *c, const uint8_t *buf, size_t len, const hk_rtp_header_t *hdr,
                      const hk_video_layer_t *svc, uint64_t now_ms);

/* The same for a packet of a simulcast producer's layer: sent when the consumer receives
 * that layer or moves to it here; may ask the publisher for a key frame of its target. */
void hk_consumer_send_layer(hk_consumer_t *c, const uint8_t *buf, size_t len,
                            const hk_rtp_header_t *hdr, hk_layer_packet_t *packet);

/* The layer this consumer should receive, given its want and the flowing layers; -1 for
 * none. Pure. */
int hk_consumer_choose_layer(int want, uint8_t flowing, uint8_t offered);

/* What it asks for within its cap: the smaller of want and cap (either may be
 * HK_LAYER_AUTO, "no limit"; HK_LAYER_NONE in either pauses). Pure. */
int hk_consumer_effective_want(int want, int cap);

/* Sets what the subscriber asks for (from_api: through the HTTP API). */
void hk_consumer_set_want(hk_consumer_t *c, int want, bool from_api);

/* The subscriber lost its picture (PLI/FIR, or it just connected): a key frame of the
 * layer it receives, or moves to. */
void hk_consumer_request_keyframe(hk_consumer_t *c, uint64_t now_ms);

/* The subscriber NACKed these own sequence numbers: resends what the producer's cache
 * still holds, under the same own numbers. */
void hk_consumer_answer_nack(hk_consumer_t *c, const uint16_t *seqs, size_t n, uint64_t now_ms);

/* The producer's sender report (report blocks removed), mapped to this consumer. */
void hk_consumer_send_sender_report(hk_consumer_t *c, const hk_rtcp_report_t *sr);

#endif

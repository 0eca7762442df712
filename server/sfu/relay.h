/* A relay: one producer's packets carried to another worker of the same process, where a
 * mirror producer fans them out to that worker's consumers, as mediasoup's pipeToRouter
 * does between routers. A channel larger than one worker uses them (signal/channel.c).
 *
 *   source worker: producer --hk_relay_push--> ring (single producer, single consumer)
 *   target worker: inbox wake --hk_relay_inbox_drain--> mirror producer --> consumers
 *   key frame wanted by a consumer on the target: a bit per layer, taken on the source
 *
 * The ring is lock-free (C11 atomics): the source copies a packet into a preallocated
 * slot and the target reads it; nothing is allocated per packet, and a full ring drops
 * (counted in the source host's relay_dropped). While the mirror has no consumers (they
 * all left that worker), the source copies nothing. A relay with packets goes on its target
 * inbox's ready stack once (a flag), and the inbox's wake function (app/worker.c: an
 * uv_async_send) wakes the target: no scan of relays.
 *
 * Ownership: signaling creates and destroys a relay while it holds both workers
 * (signal/server.h); the ready stacks may still hold it after that, so it is freed by
 * whoever drops its last reference (hk_relay_destroy or a drain). */
#ifndef HK_RELAY_H
#define HK_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/rtc/host.h"
#include "server/rtc/transport.h"
#include "server/sfu/endpoint.h"
#include "server/sfu/producer.h"

#define HK_RELAY_PACKET_MAX  1500
#define HK_RELAY_SLOTS_VIDEO 512 /* a key frame burst of several layers */
#define HK_RELAY_SLOTS_AUDIO 128

typedef struct hk_relay_s hk_relay_t;

/* A worker's inbox of relays: those with packets for it (it is their target) and those
 * whose mirrors want key frames from it (it is their source). */
typedef struct {
    _Atomic(hk_relay_t *) ready;     /* packets to drain here */
    _Atomic(hk_relay_t *) keyframes; /* key frames to ask of the publishers here */
    void (*wake)(void *user);        /* from any thread: the inbox's worker drains soon */
    void *wake_user;
    hk_rtc_host_t *host; /* the worker's: the counters, the clock */
} hk_relay_inbox_t;

typedef struct {
    uint16_t len;
    uint8_t layer;
    bool sender_report;  /* data holds an hk_rtcp_report_t */
    hk_rtp_header_t hdr; /* the source's parse of data (its offsets hold in the copy) */
    uint8_t data[HK_RELAY_PACKET_MAX];
} hk_relay_slot_t;

struct hk_relay_s {
    hk_producer_t *source; /* on the source worker */
    hk_media_counters_t *source_counters;
    hk_relay_inbox_t *source_inbox;
    hk_relay_inbox_t *target_inbox;
    hk_producer_t mirror;       /* on the target: its consumers attach here */
    hk_endpoint_t mirror_owner; /* the mirror's endpoint: owner is the publisher's */
    hk_stream_t streams[HK_SIMULCAST_MAX_LAYERS]; /* the mirror's: SSRC, retransmission cache */
    hk_relay_slot_t *slots;
    uint32_t n_slots;                 /* a power of two */
    _Atomic uint32_t head;            /* written by the source */
    _Atomic uint32_t tail;            /* written by the target */
    _Atomic bool scheduled;           /* on the target inbox's ready stack */
    _Atomic bool keyframe_scheduled;  /* on the source inbox's keyframes stack */
    _Atomic uint32_t keyframe_layers; /* bit i: a consumer on the target wants one of layer i */
    _Atomic int refs;                 /* the owner's, and each stack's while on it */
    _Atomic bool dead;
    _Atomic bool wanted; /* the mirror has consumers: the source pushes only then */
    hk_relay_t *next_ready, *next_keyframe;
    uint64_t forwarded; /* packets the target fanned out (the target's) */
};

/* Creates a relay of `source` (its worker's inbox source_inbox) to the worker of
 * target_inbox, whose mirror is live with the source's kind and layers. Both workers
 * held. NULL on ENOMEM. */
hk_relay_t *hk_relay_create(hk_producer_t *source, hk_relay_inbox_t *source_inbox,
                            hk_relay_inbox_t *target_inbox);

/* Detaches it from the source and its consumers from the mirror (both workers held);
 * freed now or when the last stack lets it go. */
void hk_relay_destroy(hk_relay_t *r);

/* The mirror's consumers came or all went (hk_producer_attach / detach, with the target
 * held): while it has none, the source pushes nothing. */
void hk_relay_set_wanted(hk_relay_t *r, bool wanted);

/* Source worker, per packet of layer `layer` of its producer (hk_producer_forward). */
void hk_relay_push(hk_relay_t *r, int layer, const uint8_t *buf, size_t len,
                   const hk_rtp_header_t *hdr);
/* Source worker: a sender report of that layer (relayed to the mirror's consumers). */
void hk_relay_push_report(hk_relay_t *r, int layer, const hk_rtcp_report_t *sr);

/* Target worker: a consumer of the mirror wants a key frame of `layer`. */
void hk_relay_request_keyframe(hk_relay_t *r, int layer);

/* The inbox's worker, when woken: fans out what arrived for it and asks its publishers for
 * the key frames wanted elsewhere. now_ms: its clock. */
void hk_relay_inbox_drain(hk_relay_inbox_t *inbox, uint64_t now_ms);

#endif

/* A consumer: one subscriber's view of one producer. It owns what the subscriber sees
 * of that track: its own SSRC, sequence numbers and timestamps (mapped from the
 * producer's by offsets chosen at its first packet, so a later change of source can
 * keep them continuous), its mid, and the record of what it sent, keyed by its own
 * sequence numbers, from which the subscriber's NACKs are answered.
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

typedef struct hk_endpoint_s hk_endpoint_t;
typedef struct hk_producer_s hk_producer_t;

#define HK_CONSUMER_HISTORY 512 /* sent packets remembered for NACKs (power of two) */

typedef struct {
    uint16_t own; /* the consumer's sequence number */
    uint16_t src; /* the producer's */
} hk_consumer_sent_t;

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
} hk_consumer_t;

/* Sends one of the producer's packets to the subscriber, mapped (not while inactive). */
void hk_consumer_send(hk_consumer_t *c, const uint8_t *buf, size_t len, const hk_rtp_header_t *hdr);

/* The subscriber NACKed these own sequence numbers: resends what the producer's cache
 * still holds, under the same own numbers. */
void hk_consumer_answer_nack(hk_consumer_t *c, const uint16_t *seqs, size_t n, uint64_t now_ms);

/* The producer's sender report (report blocks removed), mapped to this consumer. */
void hk_consumer_send_sender_report(hk_consumer_t *c, const hk_rtcp_report_t *sr);

#endif

#include "server/sfu/consumer.h"

#include "common/bytes.h"
#include "server/rtc/srtp.h"
#include "server/rtc/transport.h"
#include "server/sfu/endpoint.h"
#include "server/sfu/forward.h"
#include "server/sfu/producer.h"

#define RETRANSMIT_AGE_MS 1000

/* Writes the producer's packet mapped to this consumer into slot and sends it as its
 * own sequence number `own`. */
static void send_as(hk_consumer_t *c, hk_transport_t *t, uint8_t *slot, const uint8_t *buf,
                    size_t len, const hk_rtp_header_t *hdr, uint16_t own)
{
    int n = hk_forward_rewrite(buf, len, hdr, slot, HK_TX_BUF_SIZE - HK_SRTP_MAX_TRAILER, c->mid,
                               c->mid_len, true, t->twcc_out_seq);
    if (n < 0)
        return;
    hk_wr16(slot + 2, own);
    hk_wr32(slot + 4, hdr->timestamp + c->ts_offset);
    hk_wr32(slot + 8, c->ssrc);
    if (c->history)
        c->history[own & (HK_CONSUMER_HISTORY - 1)] = (hk_consumer_sent_t){own, hdr->seq};
    hk_transport_send_slot(t, slot, (size_t)n);
    c->packets++;
    c->bytes += (size_t)n;
}

void hk_consumer_send(hk_consumer_t *c, const uint8_t *buf, size_t len, const hk_rtp_header_t *hdr)
{
    if (!c->active)
        return;
    hk_transport_t *t = c->transport;
    uint8_t *slot = hk_transport_slot(t);
    if (!slot)
        return;
    if (!c->started) {
        c->started = true;
        c->seq_offset = (uint16_t)(c->seq_base - hdr->seq);
        c->ts_offset = c->ts_base - hdr->timestamp;
    }
    send_as(c, t, slot, buf, len, hdr, (uint16_t)(hdr->seq + c->seq_offset));
}

void hk_consumer_answer_nack(hk_consumer_t *c, const uint16_t *seqs, size_t n, uint64_t now_ms)
{
    hk_transport_t *t = c->transport;
    hk_media_counters_t *counters = &t->host->counters;
    hk_stream_t *stream = c->producer ? hk_producer_stream(c->producer) : NULL;
    if (!c->active || !c->history || !stream || !stream->cache) {
        counters->retransmission_misses += n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned slot_index = seqs[i] & (HK_CONSUMER_HISTORY - 1);
        const uint8_t *pkt;
        size_t len;
        hk_rtp_header_t hdr;
        const char *err = NULL;
        if (c->history[slot_index].own != seqs[i] ||
            hk_nack_cache_get(stream->cache, c->history[slot_index].src, now_ms, RETRANSMIT_AGE_MS,
                              &pkt, &len) != 0 ||
            hk_rtp_parse(pkt, len, &hdr, &err) != 0) {
            counters->retransmission_misses++;
            continue;
        }
        uint8_t *slot = hk_transport_slot(t);
        if (!slot)
            return;
        send_as(c, t, slot, pkt, len, &hdr, seqs[i]);
        counters->retransmissions++;
    }
}

void hk_consumer_send_sender_report(hk_consumer_t *c, const hk_rtcp_report_t *sr)
{
    if (!c->active || !c->started)
        return;
    hk_rtcp_report_t mine = *sr;
    mine.ssrc = c->ssrc;
    mine.rtp_timestamp = sr->rtp_timestamp + c->ts_offset;
    mine.report_count = 0;
    uint8_t buf[64];
    int len = hk_rtcp_build_sr(buf, sizeof buf, &mine);
    if (len <= 0)
        return;
    hk_transport_t *t = c->transport;
    hk_transport_send_rtcp(t, buf, (size_t)len);
    t->host->counters.sender_reports_relayed++;
}

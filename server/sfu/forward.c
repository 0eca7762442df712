#include "server/sfu/forward.h"

#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/signal/channel.h"
#include "server/io/media.h"
#include "server/signal/peer.h"
#include "server/proto/rtcp.h"
#include "server/rtc/srtp.h"
#include "server/rtc/transport.h"

/* RFC 8285 §4.2 one-byte form (profile 0xBEDE): elements ID(4) L(4) then L+1 bytes;
 * ID 0 is a padding byte, ID 15 stops parsing.
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |       0xBE    |    0xDE       |           length              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  ID   |  L    |     data...   |  ID   |  L    |   data...
 * §4.3 two-byte form (profile 0x100X): elements ID(8) L(8) then L bytes; ID 0 pads. */
int hk_forward_rewrite(const uint8_t *src, size_t len, const hk_rtp_header_t *hdr, uint8_t *dst,
                       size_t cap, const char *mid, size_t mid_len, bool set_twcc,
                       uint16_t twcc_seq)
{
    if (mid_len == 0 || mid_len > 16)
        return HK_EINVAL;
    size_t fixed = HK_RTP_HEADER_MIN + 4u * hdr->csrc_count;
    bool two_byte = hdr->extension && (hdr->ext_profile & 0xfff0) == HK_RTP_EXT_TWO_BYTE;
    if (hdr->extension && !two_byte && hdr->ext_profile != HK_RTP_EXT_ONE_BYTE)
        return HK_EINVAL; /* an extension we do not know how to edit */
    if (fixed + 4 > cap || hdr->header_len > len)
        return HK_ENOSPC;
    memcpy(dst, src, fixed);
    dst[0] |= 0x10; /* X */
    size_t out = fixed + 4;
    uint16_t profile = two_byte ? hdr->ext_profile : HK_RTP_EXT_ONE_BYTE;
    dst[fixed] = (uint8_t)(profile >> 8);
    dst[fixed + 1] = (uint8_t)profile;

    /* Our mid first. */
    if (out + 2 + mid_len > cap)
        return HK_ENOSPC;
    if (two_byte) {
        dst[out++] = HK_EXT_MID;
        dst[out++] = (uint8_t)mid_len;
    } else {
        dst[out++] = (uint8_t)((HK_EXT_MID << 4) | (mid_len - 1));
    }
    memcpy(dst + out, mid, mid_len);
    out += mid_len;

    if (hdr->extension) {
        const uint8_t *p = src + hdr->ext_offset;
        const uint8_t *end = p + hdr->ext_len;
        while (p < end) {
            uint8_t id;
            size_t elen;
            size_t head = two_byte ? 2 : 1;
            if (two_byte) {
                id = p[0];
                if (id == 0) {
                    p++;
                    continue;
                }
                if (p + 2 > end)
                    return HK_EINVAL;
                elen = p[1];
            } else {
                id = p[0] >> 4;
                if (id == 0) {
                    p++;
                    continue;
                }
                if (id == 15)
                    break;
                elen = (size_t)(p[0] & 0x0f) + 1;
            }
            if (p + head + elen > end)
                return HK_EINVAL;
            if (id != HK_EXT_MID) {
                if (out + head + elen > cap)
                    return HK_ENOSPC;
                memcpy(dst + out, p, head + elen);
                if (id == HK_EXT_TRANSPORT_CC && set_twcc && elen == 2) {
                    dst[out + head] = (uint8_t)(twcc_seq >> 8);
                    dst[out + head + 1] = (uint8_t)twcc_seq;
                }
                out += head + elen;
            }
            p += head + elen;
        }
    }
    while ((out - fixed) % 4)
        if (out < cap)
            dst[out++] = 0;
        else
            return HK_ENOSPC;
    size_t words = (out - fixed - 4) / 4;
    dst[fixed + 2] = (uint8_t)(words >> 8);
    dst[fixed + 3] = (uint8_t)words;

    size_t rest = len - hdr->header_len; /* payload and padding, unchanged */
    if (out + rest > cap)
        return HK_ENOSPC;
    memcpy(dst + out, src + hdr->header_len, rest);
    return (int)(out + rest);
}

/* The FORWARD section of subscriber that carries ssrc, or NULL. */
static const hk_sdp_section_t *section_for(const hk_peer_t *subscriber, uint32_t ssrc)
{
    for (size_t i = 0; i < subscriber->n_sections; i++) {
        const hk_sdp_section_t *s = &subscriber->sections[i];
        if (s->type == HK_SECTION_FORWARD && s->answered &&
            (s->ssrc == ssrc || (s->rtx_ssrc == ssrc && ssrc != 0)))
            return s;
    }
    return NULL;
}

static bool can_send(const hk_peer_t *p)
{
    return p->transport && p->transport->ready && p->transport->has_selected &&
           p->state != HK_PEER_CLOSING;
}

static void send_leg(hk_peer_t *subscriber, const hk_sdp_section_t *s, const uint8_t *buf,
                     size_t len, const hk_rtp_header_t *hdr)
{
    hk_transport_t *t = subscriber->transport;
    hk_media_t *media = &subscriber->worker->media;
    uint8_t *slot = hk_udp_slot(&media->udp, &t->selected);
    int n = hk_forward_rewrite(buf, len, hdr, slot, HK_UDP_BUF_SIZE - HK_SRTP_MAX_TRAILER, s->mid,
                               s->mid_len, true, t->twcc_out_seq);
    if (n < 0)
        return;
    size_t out = (size_t)n;
    if (hk_srtp_protect_rtp(t->srtp, slot, &out, HK_UDP_BUF_SIZE) != 0) {
        media->counters.srtp_protect_errors++;
        return;
    }
    t->twcc_out_seq++;
    hk_udp_commit(&media->udp, out);
    media->counters.forwarded_packets++;
    media->counters.forwarded_bytes += out;
}

void hk_forward_rtp(hk_peer_t *publisher, const uint8_t *buf, size_t len,
                    const hk_rtp_header_t *hdr)
{
    if (!publisher->channel)
        return;
    for (hk_peer_t *m = publisher->channel->members; m; m = m->channel_next) {
        if (m == publisher || !can_send(m))
            continue;
        const hk_sdp_section_t *s = section_for(m, hdr->ssrc);
        if (s)
            send_leg(m, s, buf, len, hdr);
    }
}

/* Finds the member of from's channel publishing ssrc, and that stream. */
static hk_peer_t *publisher_of(hk_peer_t *from, uint32_t ssrc, hk_stream_t **stream)
{
    if (!from->channel || ssrc == 0)
        return NULL;
    for (hk_peer_t *m = from->channel->members; m; m = m->channel_next) {
        if (m == from || !m->transport)
            continue;
        hk_stream_t *s = hk_transport_stream(m->transport, ssrc);
        if (s) {
            *stream = s;
            return m;
        }
    }
    return NULL;
}

static void answer_nack(hk_peer_t *from, const hk_rtcp_fb_t *fb, uint64_t now_ms)
{
    hk_media_t *media = &from->worker->media;
    uint16_t seqs[128];
    const char *err = NULL;
    int n = hk_rtcp_parse_nack(fb, seqs, 128, &err);
    if (n < 0) {
        media->counters.rtcp_errors++;
        return;
    }
    if (n > 128)
        n = 128;
    media->counters.nacks_received += (uint64_t)n;
    hk_stream_t *stream = NULL;
    hk_peer_t *publisher = publisher_of(from, fb->media_ssrc, &stream);
    const hk_sdp_section_t *s = publisher ? section_for(from, fb->media_ssrc) : NULL;
    if (!s || !stream->cache || !can_send(from)) {
        media->counters.retransmission_misses += (uint64_t)n;
        return;
    }
    /* A NACK storm must not become a retransmission storm: each connection gets at
     * most max_nacks_per_second packets answered. */
    hk_transport_t *t = from->transport;
    if (now_ms - t->nack_window_ms >= 1000) {
        t->nack_window_ms = now_ms;
        t->nack_count = 0;
    }
    uint32_t allowed = (uint32_t)from->worker->config->max_nacks_per_second;
    uint32_t room = t->nack_count < allowed ? allowed - t->nack_count : 0;
    if ((uint32_t)n > room) {
        media->counters.nacks_rate_limited += (uint64_t)n - room;
        n = (int)room;
    }
    t->nack_count += (uint32_t)n;
    for (int i = 0; i < n; i++) {
        const uint8_t *pkt;
        size_t len;
        hk_rtp_header_t hdr;
        if (hk_nack_cache_get(stream->cache, seqs[i], now_ms, 1000, &pkt, &len) != 0 ||
            hk_rtp_parse(pkt, len, &hdr, &err) != 0) {
            media->counters.retransmission_misses++;
            continue;
        }
        send_leg(from, s, pkt, len, &hdr);
        media->counters.retransmissions++;
    }
}

void hk_forward_feedback(hk_peer_t *from, const uint8_t *data, size_t len, uint64_t now_ms)
{
    hk_media_t *media = &from->worker->media;
    size_t offset = 0;
    hk_rtcp_packet_t pkt;
    const char *err = NULL;
    int rc = hk_rtcp_next(data, len, &offset, &pkt, &err);
    if (rc <= 0)
        return;
    hk_rtcp_fb_t fb;
    if (hk_rtcp_parse_fb(&pkt, &fb, &err) != 0) {
        media->counters.rtcp_errors++;
        return;
    }
    if (pkt.type == HK_RTCP_RTPFB && fb.fmt == HK_RTCP_FMT_NACK) {
        answer_nack(from, &fb, now_ms);
        return;
    }
    if (pkt.type != HK_RTCP_PSFB)
        return; /* transport-wide feedback about our legs: not used yet */
    uint32_t ssrc = 0;
    if (fb.fmt == HK_RTCP_FMT_PLI) {
        ssrc = fb.media_ssrc;
    } else if (fb.fmt == HK_RTCP_FMT_FIR) {
        hk_rtcp_fir_entry_t entry;
        if (hk_rtcp_parse_fir(&fb, &entry, 1, &err) < 1) {
            media->counters.rtcp_errors++;
            return;
        }
        ssrc = entry.ssrc;
    } else {
        return;
    }
    media->counters.plis_received++;
    hk_stream_t *stream = NULL;
    hk_peer_t *publisher = publisher_of(from, ssrc, &stream);
    if (publisher)
        hk_transport_request_keyframe(publisher->transport, stream, false, now_ms);
}

void hk_forward_sender_report(hk_peer_t *publisher, uint32_t ssrc, const uint8_t *pkt, size_t len)
{
    hk_media_t *media = &publisher->worker->media;
    if (!publisher->channel)
        return;
    for (hk_peer_t *m = publisher->channel->members; m; m = m->channel_next) {
        if (m == publisher || !can_send(m) || !section_for(m, ssrc))
            continue;
        hk_transport_send_rtcp(m->transport, pkt, len);
        media->counters.sender_reports_relayed++;
    }
}

void hk_forward_request_keyframes(hk_peer_t *subscriber, uint64_t now_ms)
{
    for (size_t i = 0; i < subscriber->n_sections; i++) {
        const hk_sdp_section_t *s = &subscriber->sections[i];
        if (s->type != HK_SECTION_FORWARD || s->kind != HK_MEDIA_VIDEO || !s->ssrc)
            continue;
        hk_stream_t *stream = NULL;
        hk_peer_t *publisher = publisher_of(subscriber, s->ssrc, &stream);
        if (publisher)
            hk_transport_request_keyframe(publisher->transport, stream, false, now_ms);
    }
}

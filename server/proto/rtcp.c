/* RTCP compound parsing and packet building (RFC 3550 §6, RFC 4585 §6, RFC 5104 §4.3.1,
 * draft-alvestrand-rmcat-remb-03, draft-holmer-rmcat-transport-wide-cc-extensions-01). */
#include "server/proto/rtcp.h"

#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/error.h"

static int32_t sign_extend24(uint32_t v)
{
    return (v & 0x800000) ? (int32_t)v - 0x1000000 : (int32_t)v;
}

/* RFC 3550 §6.4.1 common header:
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|  RC/FMT |      PT       |             length            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * length: the packet's length in 32-bit words minus one, header included, so a packet
 * is (length + 1) * 4 bytes and the iterator always advances by at least 4. */
int hk_rtcp_next(const uint8_t *buf, size_t len, size_t *offset, hk_rtcp_packet_t *out,
                 const char **err)
{
    size_t off = *offset;
    if (off == 0 && len < 8)
        return hk_fail(err, "RTCP compound shorter than 8 bytes");
    if (off >= len)
        return 0;
    if (len - off < 4)
        return hk_fail(err, "RTCP trailing bytes shorter than a header");
    const uint8_t *p = buf + off;
    memset(out, 0, sizeof *out);
    out->version = p[0] >> 6;
    if (out->version != 2)
        return hk_fail(err, "RTCP version is not 2");
    out->padding = (p[0] & 0x20) != 0;
    out->count = p[0] & 0x1f;
    out->type = p[1];
    out->length_words = hk_rd16(p + 2);
    size_t plen = ((size_t)out->length_words + 1) * 4;
    if (plen > len - off)
        return hk_fail(err, "RTCP length past the end");
    out->data = p;
    out->len = plen;
    out->body = p + 4;
    out->body_len = plen - 4;
    if (out->padding) {
        uint8_t pad = p[plen - 1];
        if (pad == 0 || pad > out->body_len)
            return hk_fail(err, "RTCP padding count larger than the packet");
        out->body_len -= pad;
    }
    *offset = off + plen;
    return 1;
}

/* §6.4.1 report block (24 bytes):
 *
 * +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 * |                 SSRC_1 (SSRC of first source)                 |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | fraction lost |       cumulative number of packets lost       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           extended highest sequence number received           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      interarrival jitter                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         last SR (LSR)                         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   delay since last SR (DLSR)                  |
 * +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+ */
static void read_block(const uint8_t *p, hk_rtcp_report_block_t *b)
{
    b->ssrc = hk_rd32(p);
    b->fraction_lost = p[4];
    b->cumulative_lost = sign_extend24(hk_rd24(p + 5));
    b->highest_seq = hk_rd32(p + 8);
    b->jitter = hk_rd32(p + 12);
    b->lsr = hk_rd32(p + 16);
    b->dlsr = hk_rd32(p + 20);
}

static void write_block(uint8_t *p, const hk_rtcp_report_block_t *b)
{
    int32_t lost = b->cumulative_lost;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;
    hk_wr32(p, b->ssrc);
    p[4] = b->fraction_lost;
    hk_wr24(p + 5, (uint32_t)lost & 0xffffff);
    hk_wr32(p + 8, b->highest_seq);
    hk_wr32(p + 12, b->jitter);
    hk_wr32(p + 16, b->lsr);
    hk_wr32(p + 20, b->dlsr);
}

/* §6.4.1 SR: header, SSRC of sender, sender info (NTP timestamp msw/lsw, RTP timestamp,
 * sender's packet count, sender's octet count), then RC report blocks.
 * §6.4.2 RR: header, SSRC of packet sender, then RC report blocks. */
int hk_rtcp_parse_report(const hk_rtcp_packet_t *pkt, hk_rtcp_report_t *out, const char **err)
{
    if (pkt->type != HK_RTCP_SR && pkt->type != HK_RTCP_RR)
        return hk_fail(err, "RTCP packet is not an SR or RR");
    memset(out, 0, sizeof *out);
    const uint8_t *p = pkt->body;
    size_t fixed = pkt->type == HK_RTCP_SR ? 24 : 4;
    if (pkt->body_len < fixed)
        return hk_fail(err, "RTCP report shorter than its fixed part");
    if ((pkt->body_len - fixed) / 24 < pkt->count)
        return hk_fail(err, "RTCP report block count past the end");
    out->ssrc = hk_rd32(p);
    if (pkt->type == HK_RTCP_SR) {
        out->has_sender_info = true;
        out->ntp_sec = hk_rd32(p + 4);
        out->ntp_frac = hk_rd32(p + 8);
        out->rtp_timestamp = hk_rd32(p + 12);
        out->packet_count = hk_rd32(p + 16);
        out->octet_count = hk_rd32(p + 20);
    }
    out->report_count = pkt->count;
    for (uint8_t i = 0; i < pkt->count; i++)
        read_block(p + fixed + 24 * (size_t)i, &out->reports[i]);
    return 0;
}

/* §6.5 SDES: SC chunks, each an SSRC/CSRC followed by items (type, length, text) and
 * ended by one or more null octets up to the next 32-bit boundary. */
int hk_rtcp_parse_sdes(const hk_rtcp_packet_t *pkt, uint32_t *first_ssrc, const char **err)
{
    if (pkt->type != HK_RTCP_SDES)
        return hk_fail(err, "RTCP packet is not an SDES");
    const uint8_t *p = pkt->body;
    size_t n = pkt->body_len, i = 0;
    *first_ssrc = 0;
    for (uint8_t c = 0; c < pkt->count; c++) {
        if (n - i < 4)
            return hk_fail(err, "RTCP SDES chunk past the end");
        if (c == 0)
            *first_ssrc = hk_rd32(p + i);
        i += 4;
        for (;;) {
            if (i >= n)
                return hk_fail(err, "RTCP SDES chunk without terminator");
            if (p[i] == 0)
                break;
            if (n - i < 2 || n - i - 2 < p[i + 1])
                return hk_fail(err, "RTCP SDES item past the end");
            i += 2 + (size_t)p[i + 1];
        }
        i = (i + 1 + 3) & ~(size_t)3;
        if (i > n)
            return hk_fail(err, "RTCP SDES chunk padding past the end");
    }
    return 0;
}

/* §6.6 BYE: SC SSRC/CSRCs, then an optional reason (length octet + text). */
int hk_rtcp_parse_bye(const hk_rtcp_packet_t *pkt, uint32_t *ssrcs, size_t max, size_t *n,
                      const char **err)
{
    if (pkt->type != HK_RTCP_BYE)
        return hk_fail(err, "RTCP packet is not a BYE");
    if (pkt->body_len / 4 < pkt->count)
        return hk_fail(err, "RTCP BYE SSRC count past the end");
    for (size_t i = 0; i < pkt->count && i < max; i++)
        ssrcs[i] = hk_rd32(pkt->body + 4 * i);
    *n = pkt->count;
    size_t rest = pkt->body_len - 4 * (size_t)pkt->count;
    if (rest > 0 && rest - 1 < pkt->body[4 * (size_t)pkt->count])
        return hk_fail(err, "RTCP BYE reason past the end");
    return 0;
}

/* RFC 4585 §6.1:
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|   FMT   |       PT      |          length               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                  SSRC of packet sender                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                  SSRC of media source                         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * :            Feedback Control Information (FCI)                 :
 */
int hk_rtcp_parse_fb(const hk_rtcp_packet_t *pkt, hk_rtcp_fb_t *out, const char **err)
{
    if (pkt->type != HK_RTCP_RTPFB && pkt->type != HK_RTCP_PSFB)
        return hk_fail(err, "RTCP packet is not feedback");
    if (pkt->body_len < 8)
        return hk_fail(err, "RTCP feedback shorter than 12 bytes");
    out->fmt = pkt->count;
    out->sender_ssrc = hk_rd32(pkt->body);
    out->media_ssrc = hk_rd32(pkt->body + 4);
    out->fci = pkt->body + 8;
    out->fci_len = pkt->body_len - 8;
    return 0;
}

/* RFC 4585 §6.2.1 generic NACK FCI, one or more of:
 *
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            PID                |             BLP               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Bit i of BLP (least significant = 0) reports PID + i + 1 lost as well. */
int hk_rtcp_parse_nack(const hk_rtcp_fb_t *fb, uint16_t *seqs, size_t max, const char **err)
{
    if (fb->fci_len < 4 || fb->fci_len % 4 != 0)
        return hk_fail(err, "RTCP NACK FCI is not a list of PID/BLP pairs");
    size_t n = 0;
    for (size_t i = 0; i < fb->fci_len; i += 4) {
        uint16_t pid = hk_rd16(fb->fci + i);
        uint16_t blp = hk_rd16(fb->fci + i + 2);
        if (n < max)
            seqs[n] = pid;
        n++;
        for (unsigned b = 0; b < 16; b++) {
            if (!(blp & (1u << b)))
                continue;
            if (n < max)
                seqs[n] = (uint16_t)(pid + b + 1);
            n++;
        }
    }
    return (int)n;
}

/* RFC 5104 §4.3.1.1 FIR FCI entries (media SSRC field unused, 0):
 *
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                              SSRC                             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Seq nr.       |    Reserved                                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ */
int hk_rtcp_parse_fir(const hk_rtcp_fb_t *fb, hk_rtcp_fir_entry_t *entries, size_t max,
                      const char **err)
{
    if (fb->fci_len < 8 || fb->fci_len % 8 != 0)
        return hk_fail(err, "RTCP FIR FCI is not a list of 8-byte entries");
    size_t n = fb->fci_len / 8;
    for (size_t i = 0; i < n && i < max; i++) {
        entries[i].ssrc = hk_rd32(fb->fci + 8 * i);
        entries[i].seq = fb->fci[8 * i + 4];
    }
    return (int)n;
}

/* draft-alvestrand-rmcat-remb-03 §2.2 (PSFB FMT 15, media SSRC 0):
 *
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Unique identifier 'R' 'E' 'M' 'B'                            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Num SSRC     | BR Exp    |  BR Mantissa                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   SSRC feedback                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  ...                                                          |
 *
 * bitrate = mantissa (18 bits) * 2^exp (6 bits). */
int hk_rtcp_parse_remb(const hk_rtcp_fb_t *fb, hk_rtcp_remb_t *out, const char **err)
{
    if (fb->fci_len < 8)
        return hk_fail(err, "RTCP REMB shorter than 20 bytes");
    if (memcmp(fb->fci, "REMB", 4) != 0)
        return HK_ENOENT;
    memset(out, 0, sizeof *out);
    out->ssrc_count = fb->fci[4];
    unsigned exp = fb->fci[5] >> 2;
    uint64_t mantissa = ((uint64_t)(fb->fci[5] & 3) << 16) | hk_rd16(fb->fci + 6);
    if ((fb->fci_len - 8) / 4 < out->ssrc_count)
        return hk_fail(err, "RTCP REMB SSRC count past the end");
    out->bitrate = (exp > 0 && mantissa > (UINT64_MAX >> exp)) ? UINT64_MAX : mantissa << exp;
    for (size_t i = 0; i < out->ssrc_count && i < HK_RTCP_MAX_REMB_SSRC; i++)
        out->ssrcs[i] = hk_rd32(fb->fci + 8 + 4 * i);
    return 0;
}

/* draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1 (RTPFB FMT 15):
 *
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |      base sequence number     |      packet status count      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 reference time                | fb pkt. count |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          packet chunk         |         packet chunk          |
 * :             ...               :          recv delta  ...      :
 *
 * Packet chunks (16 bits), symbols 0 = not received, 1 = small delta (1 byte,
 * unsigned), 2 = large or negative delta (2 bytes, signed), 3 = reserved:
 *   run length:    |T=0| S (2) |       run length (13)        |
 *   status vector: |T=1|S=0| 14 one-bit symbols               |
 *                  |T=1|S=1| 7 two-bit symbols                |
 * Deltas are in 250 us ticks; the reference time in 64 ms. */
#define TWCC_HEADER_LEN 8

static unsigned chunk_capacity(uint16_t chunk)
{
    if (!(chunk & 0x8000))
        return chunk & 0x1fff;
    return (chunk & 0x4000) ? 7 : 14;
}

static unsigned chunk_symbol(uint16_t chunk, unsigned k)
{
    if (!(chunk & 0x8000))
        return (chunk >> 13) & 3;
    if (!(chunk & 0x4000))
        return (chunk >> (13 - k)) & 1;
    return (chunk >> (12 - 2 * k)) & 3;
}

/* Walks the chunks covering h->status_count statuses. Without pkts (the first pass)
 * it only counts delta bytes into *delta_bytes and the end of the chunks into
 * *deltas_at; with pkts it reads the deltas starting at *deltas_at. */
static int twcc_walk(const hk_rtcp_fb_t *fb, const hk_rtcp_twcc_t *h, size_t *deltas_at,
                     size_t *delta_bytes, hk_rtcp_twcc_packet_t *pkts, size_t max, bool emit,
                     const char **err)
{
    size_t pos = TWCC_HEADER_LEN, done = 0, dpos = emit ? *deltas_at : 0, need = 0;
    int64_t t = (int64_t)h->reference_time * 64000;
    while (done < h->status_count) {
        if (fb->fci_len - pos < 2)
            return hk_fail(err, "RTCP TWCC chunks past the end");
        uint16_t chunk = hk_rd16(fb->fci + pos);
        pos += 2;
        size_t take = chunk_capacity(chunk);
        if (take > h->status_count - done)
            take = h->status_count - done;
        for (size_t k = 0; k < take; k++, done++) {
            unsigned sym = chunk_symbol(chunk, (unsigned)k);
            if (sym == 3)
                return hk_fail(err, "RTCP TWCC reserved status symbol");
            if (!emit) {
                need += sym;
                continue;
            }
            hk_rtcp_twcc_packet_t p = {.seq = (uint16_t)(h->base_seq + done), .received = sym != 0};
            if (sym == 1)
                p.delta = fb->fci[dpos];
            else if (sym == 2)
                p.delta = (int16_t)hk_rd16(fb->fci + dpos);
            dpos += sym;
            if (sym) {
                t += (int64_t)p.delta * 250;
                p.arrival_us = t;
            }
            if (done < max)
                pkts[done] = p;
        }
    }
    if (!emit) {
        *deltas_at = pos;
        *delta_bytes = need;
    }
    return 0;
}

int hk_rtcp_parse_twcc(const hk_rtcp_fb_t *fb, hk_rtcp_twcc_t *out, hk_rtcp_twcc_packet_t *pkts,
                       size_t max, const char **err)
{
    if (fb->fci_len < TWCC_HEADER_LEN)
        return hk_fail(err, "RTCP TWCC shorter than its header");
    out->base_seq = hk_rd16(fb->fci);
    out->status_count = hk_rd16(fb->fci + 2);
    out->reference_time = sign_extend24(hk_rd24(fb->fci + 4));
    out->fb_count = fb->fci[7];
    size_t deltas_at = 0, delta_bytes = 0;
    int rc = twcc_walk(fb, out, &deltas_at, &delta_bytes, NULL, 0, false, err);
    if (rc != 0)
        return rc;
    if (fb->fci_len - deltas_at < delta_bytes)
        return hk_fail(err, "RTCP TWCC receive deltas past the end");
    if (max > 0) {
        rc = twcc_walk(fb, out, &deltas_at, &delta_bytes, pkts, max, true, err);
        if (rc != 0)
            return rc;
    }
    return out->status_count;
}

/* ---- builders ---- */

static void put_header(uint8_t *buf, bool padding, uint8_t count, uint8_t type, size_t len)
{
    buf[0] = (uint8_t)(0x80 | (padding ? 0x20 : 0) | (count & 0x1f));
    buf[1] = type;
    hk_wr16(buf + 2, (uint16_t)(len / 4 - 1));
}

int hk_rtcp_build_sr(uint8_t *buf, size_t cap, const hk_rtcp_report_t *report)
{
    if (report->report_count > HK_RTCP_MAX_REPORTS)
        return HK_EINVAL;
    size_t len = 28 + 24 * (size_t)report->report_count;
    if (cap < len)
        return HK_ENOSPC;
    put_header(buf, false, report->report_count, HK_RTCP_SR, len);
    hk_wr32(buf + 4, report->ssrc);
    hk_wr32(buf + 8, report->ntp_sec);
    hk_wr32(buf + 12, report->ntp_frac);
    hk_wr32(buf + 16, report->rtp_timestamp);
    hk_wr32(buf + 20, report->packet_count);
    hk_wr32(buf + 24, report->octet_count);
    for (size_t i = 0; i < report->report_count; i++)
        write_block(buf + 28 + 24 * i, &report->reports[i]);
    return (int)len;
}

int hk_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t ssrc, const hk_rtcp_report_block_t *blocks,
                     size_t n)
{
    if (n > HK_RTCP_MAX_REPORTS)
        return HK_EINVAL;
    size_t len = 8 + 24 * n;
    if (cap < len)
        return HK_ENOSPC;
    put_header(buf, false, (uint8_t)n, HK_RTCP_RR, len);
    hk_wr32(buf + 4, ssrc);
    for (size_t i = 0; i < n; i++)
        write_block(buf + 8 + 24 * i, &blocks[i]);
    return (int)len;
}

int hk_rtcp_build_pli(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc)
{
    if (cap < 12)
        return HK_ENOSPC;
    put_header(buf, false, HK_RTCP_FMT_PLI, HK_RTCP_PSFB, 12);
    hk_wr32(buf + 4, sender_ssrc);
    hk_wr32(buf + 8, media_ssrc);
    return 12;
}

int hk_rtcp_build_fir(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      uint8_t seq)
{
    if (cap < 20)
        return HK_ENOSPC;
    put_header(buf, false, HK_RTCP_FMT_FIR, HK_RTCP_PSFB, 20);
    hk_wr32(buf + 4, sender_ssrc);
    hk_wr32(buf + 8, 0);
    hk_wr32(buf + 12, media_ssrc);
    buf[16] = seq;
    hk_wr24(buf + 17, 0);
    return 20;
}

int hk_rtcp_build_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       const uint16_t *seqs, size_t n)
{
    if (n == 0)
        return HK_EINVAL;
    if (cap < 12)
        return HK_ENOSPC;
    size_t pos = 12;
    bool open = false;
    uint16_t pid = 0, blp = 0;
    for (size_t i = 0; i < n; i++) {
        if (open) {
            uint16_t d = (uint16_t)(seqs[i] - pid);
            if (d == 0)
                continue;
            if (d <= 16) {
                blp |= (uint16_t)(1u << (d - 1));
                hk_wr16(buf + pos - 2, blp);
                continue;
            }
        }
        if (cap - pos < 4 || pos + 4 > 4 * 65536)
            return HK_ENOSPC;
        pid = seqs[i];
        blp = 0;
        hk_wr16(buf + pos, pid);
        hk_wr16(buf + pos + 2, 0);
        pos += 4;
        open = true;
    }
    put_header(buf, false, HK_RTCP_FMT_NACK, HK_RTCP_RTPFB, pos);
    hk_wr32(buf + 4, sender_ssrc);
    hk_wr32(buf + 8, media_ssrc);
    return (int)pos;
}

int hk_rtcp_build_remb(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint64_t bitrate,
                       const uint32_t *ssrcs, size_t n)
{
    if (n > 255)
        return HK_EINVAL;
    size_t len = 20 + 4 * n;
    if (cap < len)
        return HK_ENOSPC;
    unsigned exp = 0;
    while ((bitrate >> exp) > 0x3ffff)
        exp++;
    uint32_t mantissa = (uint32_t)(bitrate >> exp);
    put_header(buf, false, HK_RTCP_FMT_AFB, HK_RTCP_PSFB, len);
    hk_wr32(buf + 4, sender_ssrc);
    hk_wr32(buf + 8, 0);
    memcpy(buf + 12, "REMB", 4);
    buf[16] = (uint8_t)n;
    buf[17] = (uint8_t)((exp << 2) | (mantissa >> 16));
    hk_wr16(buf + 18, (uint16_t)mantissa);
    for (size_t i = 0; i < n; i++)
        hk_wr32(buf + 20 + 4 * i, ssrcs[i]);
    return (int)len;
}

/* Walks the statuses base_seq .. base_seq + count - 1 over the caller's sparse list. */
typedef struct {
    const hk_rtcp_twcc_packet_t *pkts;
    size_t n;
    size_t idx;      /* next entry of pkts */
    uint32_t status; /* next status index */
    uint16_t base_seq;
    int64_t grid;   /* reference time in us */
    int64_t q_prev; /* quantized arrival of the previous received packet */
} twcc_cursor_t;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Returns the next status's symbol (0, 1, 2) and its delta, or HK_ERANGE. */
static int cursor_next(twcc_cursor_t *c, int32_t *delta)
{
    uint32_t st = c->status++;
    if (c->idx >= c->n || (uint16_t)(c->pkts[c->idx].seq - c->base_seq) != st)
        return 0;
    const hk_rtcp_twcc_packet_t *p = &c->pkts[c->idx++];
    if (!p->received)
        return 0;
    int64_t q = c->grid + 250 * floor_div(p->arrival_us - c->grid + 125, 250);
    int64_t d = (q - c->q_prev) / 250;
    c->q_prev = q;
    if (d < INT16_MIN || d > INT16_MAX)
        return HK_ERANGE;
    *delta = (int32_t)d;
    return (d >= 0 && d <= 255) ? 1 : 2;
}

int hk_rtcp_build_twcc(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint8_t fb_count, const hk_rtcp_twcc_packet_t *pkts, size_t n)
{
    if (n == 0)
        return HK_EINVAL;
    const hk_rtcp_twcc_packet_t *first = NULL;
    uint16_t base = pkts[0].seq;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (uint16_t)(pkts[i].seq - base) <= (uint16_t)(pkts[i - 1].seq - base))
            return HK_EINVAL; /* not ascending */
        if (pkts[i].received && !first)
            first = &pkts[i];
    }
    if (!first)
        return HK_EINVAL;
    uint32_t count = (uint32_t)(uint16_t)(pkts[n - 1].seq - base) + 1;
    if (count > 0xffff)
        return HK_ERANGE;
    int64_t ref = floor_div(first->arrival_us, 64000);
    twcc_cursor_t start = {pkts, n, 0, 0, base, ref * 64000, ref * 64000};

    twcc_cursor_t c = start;
    int32_t delta;
    while (c.status < count)
        if (cursor_next(&c, &delta) < 0)
            return HK_ERANGE;

    if (cap < 20)
        return HK_ENOSPC;
    hk_wr32(buf + 4, sender_ssrc);
    hk_wr32(buf + 8, media_ssrc);
    hk_wr16(buf + 12, base);
    hk_wr16(buf + 14, (uint16_t)count);
    hk_wr24(buf + 16, (uint32_t)ref & 0xffffff);
    buf[19] = fb_count;
    size_t pos = 20;

    /* Chunks (every delta fits: checked above). */
    c = start;
    while (c.status < count) {
        uint32_t remaining = count - c.status;
        twcc_cursor_t look = c;
        int sym0 = cursor_next(&look, &delta);
        uint32_t run = 1;
        bool has_large = sym0 == 2;
        while (run < remaining && run < 0x1fff) {
            if (cursor_next(&look, &delta) != sym0)
                break;
            run++;
        }
        uint16_t chunk;
        uint32_t take;
        if (run >= 14 || run == remaining) {
            chunk = (uint16_t)(((unsigned)sym0 << 13) | run);
            take = run;
        } else {
            look = c;
            uint32_t span = remaining < 14 ? remaining : 14;
            for (uint32_t k = 0; k < span; k++)
                if (cursor_next(&look, &delta) == 2)
                    has_large = true;
            look = c;
            if (!has_large) {
                chunk = 0x8000;
                take = span;
                for (uint32_t k = 0; k < take; k++)
                    chunk |= (uint16_t)(cursor_next(&look, &delta) << (13 - k));
            } else {
                chunk = 0xc000;
                take = remaining < 7 ? remaining : 7;
                for (uint32_t k = 0; k < take; k++)
                    chunk |= (uint16_t)(cursor_next(&look, &delta) << (12 - 2 * k));
            }
        }
        for (uint32_t k = 0; k < take; k++)
            cursor_next(&c, &delta);
        if (cap - pos < 2)
            return HK_ENOSPC;
        hk_wr16(buf + pos, chunk);
        pos += 2;
    }

    /* Receive deltas. */
    c = start;
    while (c.status < count) {
        int s = cursor_next(&c, &delta);
        if (s == 0)
            continue;
        if (cap - pos < (size_t)s)
            return HK_ENOSPC;
        if (s == 1)
            buf[pos] = (uint8_t)delta;
        else
            hk_wr16(buf + pos, (uint16_t)(int16_t)delta);
        pos += (size_t)s;
    }

    size_t pad = (4 - pos % 4) % 4;
    if (cap - pos < pad || pos + pad > 4 * 65536)
        return HK_ENOSPC;
    memset(buf + pos, 0, pad);
    pos += pad;
    if (pad)
        buf[pos - 1] = (uint8_t)pad;
    put_header(buf, pad != 0, HK_RTCP_FMT_TWCC, HK_RTCP_RTPFB, pos);
    return (int)pos;
}

static int cmp_twcc_from(const void *a, const void *b, void *from)
{
    uint16_t base = *(const uint16_t *)from;
    uint16_t x = (uint16_t)(((const hk_rtcp_twcc_packet_t *)a)->seq - base);
    uint16_t y = (uint16_t)(((const hk_rtcp_twcc_packet_t *)b)->seq - base);
    return (x > y) - (x < y);
}

size_t hk_rtcp_twcc_report(hk_rtcp_twcc_packet_t *arrivals, size_t n, uint16_t *next,
                           hk_rtcp_twcc_packet_t *out)
{
    if (n == 0)
        return 0;
    qsort_r(arrivals, n, sizeof *arrivals, cmp_twcc_from, next);
    size_t k = 0;
    if (arrivals[0].seq != *next)
        out[k++] = (hk_rtcp_twcc_packet_t){.seq = *next, .received = false};
    for (size_t i = 0; i < n; i++)
        if (i == 0 || arrivals[i].seq != arrivals[i - 1].seq)
            out[k++] = arrivals[i];
    *next = (uint16_t)(out[k - 1].seq + 1);
    return k;
}

/* Fuzz target `rtcp`: iterate a compound packet, run every typed parser on each packet
 * (NACK and TWCC expanded into bounded arrays, REMB, FIR, SR/RR, SDES, BYE), and check
 * that NACK, TWCC, SR/RR, PLI and REMB survive build -> parse unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/rtcp.h"

#define MAX_ITEMS 64

static void check_report(const hk_rtcp_packet_t *pkt)
{
    hk_rtcp_report_t r, back;
    if (hk_rtcp_parse_report(pkt, &r, NULL) != 0)
        return;
    uint8_t buf[1024];
    int n = pkt->type == HK_RTCP_SR
                ? hk_rtcp_build_sr(buf, sizeof buf, &r)
                : hk_rtcp_build_rr(buf, sizeof buf, r.ssrc, r.reports, r.report_count);
    if (n < 0)
        abort();
    size_t off = 0;
    hk_rtcp_packet_t again;
    if (hk_rtcp_next(buf, (size_t)n, &off, &again, NULL) != 1 ||
        hk_rtcp_parse_report(&again, &back, NULL) != 0 || memcmp(&r, &back, sizeof r) != 0)
        abort();
}

static void check_nack(const hk_rtcp_fb_t *fb)
{
    uint16_t seqs[MAX_ITEMS], again_seqs[MAX_ITEMS * 17];
    int n = hk_rtcp_parse_nack(fb, seqs, MAX_ITEMS, NULL);
    if (n <= 0)
        return;
    size_t stored = n < MAX_ITEMS ? (size_t)n : MAX_ITEMS;
    uint8_t buf[12 + 4 * MAX_ITEMS];
    int len = hk_rtcp_build_nack(buf, sizeof buf, fb->sender_ssrc, fb->media_ssrc, seqs, stored);
    if (len < 0)
        abort();
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    hk_rtcp_fb_t fb2;
    if (hk_rtcp_next(buf, (size_t)len, &off, &pkt, NULL) != 1 ||
        hk_rtcp_parse_fb(&pkt, &fb2, NULL) != 0)
        abort();
    int m = hk_rtcp_parse_nack(&fb2, again_seqs, MAX_ITEMS * 17, NULL);
    if (m <= 0)
        abort();
    /* Every listed seq comes back (duplicates may be folded). */
    for (size_t i = 0; i < stored; i++) {
        int found = 0;
        for (int j = 0; j < m && !found; j++)
            found = again_seqs[j] == seqs[i];
        if (!found)
            abort();
    }
}

static void check_twcc(const hk_rtcp_fb_t *fb)
{
    hk_rtcp_twcc_t h, h2;
    hk_rtcp_twcc_packet_t p[MAX_ITEMS], p2[MAX_ITEMS];
    int n = hk_rtcp_parse_twcc(fb, &h, p, MAX_ITEMS, NULL);
    if (n <= 0 || n > MAX_ITEMS)
        return;
    int received = 0;
    for (int i = 0; i < n; i++)
        received |= p[i].received;
    uint8_t buf[1024];
    int len = hk_rtcp_build_twcc(buf, sizeof buf, fb->sender_ssrc, fb->media_ssrc, h.fb_count, p,
                                 (size_t)n);
    if (!received) {
        if (len != HK_EINVAL)
            abort();
        return;
    }
    if (len < 0)
        abort();
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    hk_rtcp_fb_t fb2;
    if (hk_rtcp_next(buf, (size_t)len, &off, &pkt, NULL) != 1 ||
        hk_rtcp_parse_fb(&pkt, &fb2, NULL) != 0 ||
        hk_rtcp_parse_twcc(&fb2, &h2, p2, MAX_ITEMS, NULL) != n)
        abort();
    /* Arrival times are reported modulo the 24-bit reference time. */
    const int64_t wrap = (int64_t)64000 << 24;
    for (int i = 0; i < n; i++) {
        if (p2[i].seq != p[i].seq || p2[i].received != p[i].received)
            abort();
        if (p[i].received && ((p2[i].arrival_us - p[i].arrival_us) % wrap) != 0)
            abort();
    }
}

static void check_psfb(const hk_rtcp_fb_t *fb)
{
    uint8_t buf[128];
    if (fb->fmt == HK_RTCP_FMT_PLI) {
        if (hk_rtcp_build_pli(buf, sizeof buf, fb->sender_ssrc, fb->media_ssrc) != 12)
            abort();
    } else if (fb->fmt == HK_RTCP_FMT_FIR) {
        hk_rtcp_fir_entry_t e[4];
        if (hk_rtcp_parse_fir(fb, e, 4, NULL) > 0 &&
            hk_rtcp_build_fir(buf, sizeof buf, fb->sender_ssrc, e[0].ssrc, e[0].seq) != 20)
            abort();
    } else if (fb->fmt == HK_RTCP_FMT_AFB) {
        hk_rtcp_remb_t r, r2;
        if (hk_rtcp_parse_remb(fb, &r, NULL) != 0)
            return;
        size_t n = r.ssrc_count < HK_RTCP_MAX_REMB_SSRC ? r.ssrc_count : HK_RTCP_MAX_REMB_SSRC;
        int len = hk_rtcp_build_remb(buf, sizeof buf, fb->sender_ssrc, r.bitrate, r.ssrcs, n);
        size_t off = 0;
        hk_rtcp_packet_t pkt;
        hk_rtcp_fb_t fb2;
        if (len < 0 || hk_rtcp_next(buf, (size_t)len, &off, &pkt, NULL) != 1 ||
            hk_rtcp_parse_fb(&pkt, &fb2, NULL) != 0 || hk_rtcp_parse_remb(&fb2, &r2, NULL) != 0)
            abort();
        /* Bitrates that need more than 18 significant bits lose their low bits. */
        if (r2.bitrate > r.bitrate || (r.bitrate < (1u << 18) && r2.bitrate != r.bitrate))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    const char *err = NULL;
    int rc, packets = 0;
    while ((rc = hk_rtcp_next(data, size, &off, &pkt, &err)) == 1) {
        if (++packets > (int)(size / 4))
            abort(); /* the loop must advance by at least 4 bytes */
        if (pkt.body + pkt.body_len > data + size)
            abort();
        hk_rtcp_fb_t fb;
        switch (pkt.type) {
        case HK_RTCP_SR:
        case HK_RTCP_RR:
            check_report(&pkt);
            break;
        case HK_RTCP_SDES: {
            uint32_t ssrc;
            (void)hk_rtcp_parse_sdes(&pkt, &ssrc, NULL);
            break;
        }
        case HK_RTCP_BYE: {
            uint32_t ssrcs[4];
            size_t n;
            (void)hk_rtcp_parse_bye(&pkt, ssrcs, 4, &n, NULL);
            break;
        }
        case HK_RTCP_RTPFB:
            if (hk_rtcp_parse_fb(&pkt, &fb, NULL) != 0)
                break;
            if (fb.fmt == HK_RTCP_FMT_NACK)
                check_nack(&fb);
            else if (fb.fmt == HK_RTCP_FMT_TWCC)
                check_twcc(&fb);
            break;
        case HK_RTCP_PSFB:
            if (hk_rtcp_parse_fb(&pkt, &fb, NULL) == 0)
                check_psfb(&fb);
            break;
        default:
            break;
        }
    }
    if (rc < 0 && !err)
        abort();
    return 0;
}

/* Fuzz target `bwe`: drives one estimator with an input-chosen sequence of sent packets,
 * transport-cc results (any sequence numbers, arrival times, lost or received, repeated,
 * reordered), RTTs and clock steps. The estimate must stay within [min, max], finite,
 * and the counters consistent. Also runs each input's tail as a TWCC packet through
 * hk_rtcp_parse_twcc into hk_bwe_on_twcc. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/proto/rtcp.h"
#include "server/rtc/bwe.h"

static uint32_t take(const uint8_t **data, size_t *size, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i<n && * size> 0; i++, (*data)++, (*size)--)
        v = v << 8 | **data;
    return v;
}

static void check(const hk_bwe_t *b, const hk_bwe_config_t *cfg)
{
    hk_bwe_stats_t st;
    hk_bwe_get_stats(b, &st);
    if (st.estimate_bps < cfg->min_bps || st.estimate_bps > cfg->max_bps ||
        st.delay_based_bps > cfg->max_bps || st.loss_based_bps > cfg->max_bps ||
        !isfinite(st.trend) || !isfinite(st.threshold_ms) || st.threshold_ms < 6 ||
        st.threshold_ms > 600 || st.loss_ratio < 0 || st.loss_ratio > 1 ||
        st.packets_acked + st.packets_lost > st.packets_sent)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hk_bwe_config_t cfg = {300000, 30000, 10000000};
    hk_bwe_t *b = hk_bwe_new(&cfg);
    if (!b)
        return 0;
    int64_t now = 1000000, arrival = 5000000;
    hk_bwe_feedback_t fb[32];
    while (size > 1) {
        uint8_t op = (uint8_t)take(&data, &size, 1);
        switch (op & 3) {
        case 0: { /* send a run of packets */
            uint16_t seq = (uint16_t)take(&data, &size, 2);
            unsigned count = 1 + (op >> 2);
            for (unsigned i = 0; i < count; i++) {
                now += take(&data, &size, 1) * 100;
                hk_bwe_on_sent(b, (uint16_t)(seq + i), 100 + (op >> 2) * 20, now);
            }
            break;
        }
        case 1: { /* a feedback */
            size_t n = 1 + (op >> 3);
            uint16_t seq = (uint16_t)take(&data, &size, 2);
            for (size_t i = 0; i < n; i++) {
                uint8_t f = (uint8_t)take(&data, &size, 1);
                seq = (uint16_t)(seq + (f & 3) - 1);
                int64_t step = (int64_t)(int8_t)take(&data, &size, 1) * 250;
                if (f & 0x80)
                    step *= 4000; /* jumps of up to +-128 s */
                arrival += step;
                fb[i] = (hk_bwe_feedback_t){seq, (f & 4) != 0, arrival};
            }
            now += 1000 * (op >> 2 & 1);
            hk_bwe_on_feedback(b, fb, n, now);
            break;
        }
        case 2:
            hk_bwe_on_rtt(b, (int64_t)take(&data, &size, 2) * 100 - 1000);
            break;
        default:
            now += (int64_t)take(&data, &size, 2) * 100;
            break;
        }
        check(b, &cfg);
    }
    /* Whatever is left as a TWCC feedback's FCI. */
    uint8_t pkt[1024] = {0x8f, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2};
    size_t fci = size < sizeof pkt - 12 ? size : sizeof pkt - 12;
    fci &= ~(size_t)3;
    memcpy(pkt + 12, data, fci);
    size_t total = 12 + fci;
    pkt[2] = (uint8_t)((total / 4 - 1) >> 8);
    pkt[3] = (uint8_t)(total / 4 - 1);
    size_t off = 0;
    hk_rtcp_packet_t p;
    hk_rtcp_fb_t f;
    hk_rtcp_twcc_t h;
    hk_rtcp_twcc_packet_t pkts[256];
    if (hk_rtcp_next(pkt, total, &off, &p, NULL) == 1 && hk_rtcp_parse_fb(&p, &f, NULL) == 0) {
        int n = hk_rtcp_parse_twcc(&f, &h, pkts, 256, NULL);
        if (n > 0)
            hk_bwe_on_twcc(b, pkts, n < 256 ? (size_t)n : 256, now + 1000);
    }
    check(b, &cfg);
    hk_bwe_free(b);
    return 0;
}

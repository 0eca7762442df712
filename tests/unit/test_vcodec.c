/* Where key frames start (server/proto/vcodec.h): from the dependency descriptor of real
 * Chromium simulcast packets (agreeing with the full DD parser), and from each codec's
 * payload header when there is no descriptor. */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "server/proto/dd.h"
#include "server/proto/vcodec.h"
#include "tests/unit/unit.h"

/* An RTP packet of payload type pt with one extension element (two-byte form, so a
 * descriptor of any length fits) and the payload; returns its length. */
static size_t packet(uint8_t *buf, uint8_t pt, uint8_t ext_id, const uint8_t *ext, size_t ext_len,
                     const uint8_t *payload, size_t payload_len)
{
    memset(buf, 0, 12);
    buf[0] = 0x80;
    buf[1] = pt;
    hk_wr16(buf + 2, 1);
    hk_wr32(buf + 8, 0x1234);
    size_t n = 12;
    if (ext_id) {
        buf[0] |= 0x10;
        size_t words = (2 + ext_len + 3) / 4;
        hk_wr16(buf + 12, 0x1000);
        hk_wr16(buf + 14, (uint16_t)words);
        memset(buf + 16, 0, 4 * words);
        buf[16] = ext_id;
        buf[17] = (uint8_t)ext_len;
        if (ext_len)
            memcpy(buf + 18, ext, ext_len);
        n = 16 + 4 * words;
    }
    if (payload_len) /* payload may be NULL then: memcpy's arguments must not be */
        memcpy(buf + n, payload, payload_len);
    return n + payload_len;
}

static bool key_start(uint8_t pt, const uint8_t *payload, size_t len)
{
    uint8_t buf[256];
    size_t n = packet(buf, pt, 0, NULL, 0, payload, len);
    hk_rtp_header_t hdr;
    const char *err = NULL;
    CHECK_INT_EQ(hk_rtp_parse(buf, n, &hdr, &err), 0);
    return hk_vcodec_keyframe_start(buf, &hdr);
}

TEST(vcodec_vp8_payload_header)
{
    /* S=1, PID 0, then the payload header: P=0 key, P=1 delta. */
    CHECK(key_start(HK_PT_VP8, (const uint8_t[]){0x10, 0x00, 0x01}, 3));
    CHECK(!key_start(HK_PT_VP8, (const uint8_t[]){0x10, 0x01, 0x01}, 3));
    /* Not the partition's first packet (S=0, or PID 1). */
    CHECK(!key_start(HK_PT_VP8, (const uint8_t[]){0x00, 0x00, 0x01}, 3));
    CHECK(!key_start(HK_PT_VP8, (const uint8_t[]){0x11, 0x00, 0x01}, 3));
    /* X with I (15-bit picture id), L and T: 1 + 1 + 2 + 1 + 1 bytes before the header. */
    CHECK(key_start(HK_PT_VP8, (const uint8_t[]){0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x9c}, 7));
    CHECK(!key_start(HK_PT_VP8, (const uint8_t[]){0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x9d}, 7));
    /* X with I (7-bit) only. */
    CHECK(key_start(HK_PT_VP8, (const uint8_t[]){0x90, 0x80, 0x12, 0x00}, 4));
    /* Truncated: cannot tell, so not a key frame. */
    CHECK(!key_start(HK_PT_VP8, (const uint8_t[]){0x90, 0xe0, 0x81, 0x23}, 4));
    CHECK(!key_start(HK_PT_VP8, (const uint8_t[]){0x10}, 1));
}

TEST(vcodec_vp9_h264_av1_payload_headers)
{
    /* VP9: B (start) without P; with L, only spatial layer 0. */
    CHECK(key_start(HK_PT_VP9, (const uint8_t[]){0x08, 0x00}, 2));
    CHECK(!key_start(HK_PT_VP9, (const uint8_t[]){0x48, 0x00}, 2)); /* P: inter */
    CHECK(!key_start(HK_PT_VP9, (const uint8_t[]){0x00, 0x00}, 2)); /* not B */
    CHECK(key_start(HK_PT_VP9, (const uint8_t[]){0xa8, 0x85, 0x12, 0x00}, 4));
    CHECK(!key_start(HK_PT_VP9, (const uint8_t[]){0xa8, 0x85, 0x12, 0x02}, 4)); /* SID 1 */
    /* H.264: an IDR or SPS NAL unit, in a STAP-A, or an FU-A's first fragment of an IDR. */
    CHECK(key_start(HK_PT_H264, (const uint8_t[]){0x65, 0x88}, 2));
    CHECK(key_start(HK_PT_H264, (const uint8_t[]){0x67, 0x42}, 2));
    CHECK(!key_start(HK_PT_H264, (const uint8_t[]){0x41, 0x9a}, 2));
    CHECK(key_start(HK_PT_H264, (const uint8_t[]){0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68},
                    8));
    CHECK(!key_start(HK_PT_H264, (const uint8_t[]){0x78, 0x00, 0x02, 0x41, 0x42}, 5));
    CHECK(!key_start(HK_PT_H264, (const uint8_t[]){0x78, 0x00, 0x09, 0x67}, 4)); /* lies */
    CHECK(key_start(HK_PT_H264, (const uint8_t[]){0x7c, 0x85, 0x00}, 3));
    CHECK(!key_start(HK_PT_H264, (const uint8_t[]){0x7c, 0x05, 0x00}, 3)); /* not first */
    CHECK(!key_start(HK_PT_H264, (const uint8_t[]){0x7c, 0x81, 0x00}, 3)); /* non-IDR */
    /* AV1: N, not a continuation (Z). */
    CHECK(key_start(HK_PT_AV1, (const uint8_t[]){0x18, 0x00}, 2));
    CHECK(!key_start(HK_PT_AV1, (const uint8_t[]){0x10, 0x00}, 2));
    CHECK(!key_start(HK_PT_AV1, (const uint8_t[]){0x98, 0x00}, 2));
    /* Audio or an unknown payload type: never. */
    CHECK(!key_start(HK_PT_OPUS, (const uint8_t[]){0x10, 0x00, 0x00}, 3));
    CHECK(!key_start(HK_PT_VP8, NULL, 0));
    CHECK_INT_EQ(hk_vcodec_of_pt(HK_PT_VP8_RTX), -1);
}

/* One line of a capture (tests/unit/fixtures/dd/NAME.dd: SSRC, sequence number, timestamp,
 * marker, payload type, descriptor in hex): the payload type and the descriptor (dd,
 * 255 bytes) are set; returns the index of its SSRC in ssrcs (4 entries, 0 free). */
static int fixture_packet(const char *line, uint32_t *ssrcs, uint8_t *pt, uint8_t *dd, size_t *len)
{
    unsigned ssrc, seq, marker, type;
    unsigned long ts;
    char hex[600];
    CHECK(sscanf(line, "%x %u %lu %u %u %599s", &ssrc, &seq, &ts, &marker, &type, hex) == 6);
    *pt = (uint8_t)type;
    *len = strlen(hex) / 2;
    CHECK(*len <= 255);
    for (size_t i = 0; i < *len; i++) {
        unsigned byte;
        CHECK(sscanf(hex + 2 * i, "%2x", &byte) == 1);
        dd[i] = (uint8_t)byte;
    }
    int k = 0;
    while (k < 4 && ssrcs[k] && ssrcs[k] != ssrc)
        k++;
    CHECK(k < 4);
    ssrcs[k] = ssrc;
    return k;
}

/* Chromium 156's three VP8 simulcast encodings (tests/unit/fixtures/dd/vp8-simulcast.dd):
 * for every packet, the descriptor says "key frame starts here" exactly when the full
 * parser (per-SSRC state) sees the first packet of a key frame; the payload (encrypted
 * under E2EE, here a VP8 delta header) is not consulted. */
TEST(vcodec_descriptor_of_chromium_simulcast)
{
    char *text = hk_test_read_file("tests/unit/fixtures/dd/vp8-simulcast.dd", NULL);
    static hk_dd_state_t states[4];
    uint32_t ssrcs[4] = {0};
    int keys = 0, packets = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        uint8_t dd[255], pt;
        size_t len;
        int k = fixture_packet(line, ssrcs, &pt, dd, &len);
        hk_dd_t d;
        const char *err = NULL;
        bool want = hk_dd_parse(&states[k], dd, len, &d, &err) == 0 && hk_dd_is_keyframe(&d);
        uint8_t buf[400];
        size_t n = packet(buf, pt, HK_EXT_DEPENDENCY_DESCRIPTOR, dd, len,
                          (const uint8_t[]){0x10, 0x01, 0xaa}, 3);
        hk_rtp_header_t hdr;
        CHECK_INT_EQ(hk_rtp_parse(buf, n, &hdr, &err), 0);
        CHECK_INT_EQ(hk_vcodec_keyframe_start(buf, &hdr), want);
        keys += want;
        packets++;
    }
    free(text);
    CHECK(packets > 100);
    CHECK(keys >= 3); /* at least one per encoding */
}

/* VP8 picture numbering (RFC 7741 §4.2): read with a 15-bit and a 7-bit PictureID, with
 * and without TL0PICIDX, written back in place (masked to the field), and refused when
 * truncated. */
TEST(vcodec_vp8_picture_ids)
{
    /* X=1 S=1 | I=1 L=1 T=1 | M=1 PictureID 0x1234 | TL0PICIDX 0x56 | TID.. | payload */
    uint8_t a[] = {0x90, 0xe0, 0x80 | 0x12, 0x34, 0x56, 0x40, 0x00, 0x9d, 0x01};
    hk_vp8_ids_t ids;
    CHECK(hk_vcodec_vp8_ids(a, sizeof a, &ids));
    CHECK(ids.has_picture_id && ids.picture_id_bits == 15 && ids.picture_id == 0x1234);
    CHECK(ids.has_tl0 && ids.tl0_pic_idx == 0x56);
    hk_vcodec_vp8_set_ids(a, &ids, 0x8001 /* masked to 15 bits */, 0x07);
    CHECK_INT_EQ(a[2], 0x80);
    CHECK_INT_EQ(a[3], 0x01);
    CHECK_INT_EQ(a[4], 0x07);
    CHECK_INT_EQ(a[5], 0x40); /* the rest untouched */
    CHECK_INT_EQ(a[7], 0x9d);
    /* 7-bit PictureID, no TL0PICIDX. */
    uint8_t b[] = {0x90, 0x80, 0x7f, 0x00};
    CHECK(hk_vcodec_vp8_ids(b, sizeof b, &ids));
    CHECK(ids.picture_id_bits == 7 && ids.picture_id == 0x7f && !ids.has_tl0);
    hk_vcodec_vp8_set_ids(b, &ids, 0x180, 0);
    CHECK_INT_EQ(b[2], 0x00);
    CHECK_INT_EQ(b[3], 0x00);
    /* No extension byte: nothing to map. */
    uint8_t c[] = {0x10, 0x00};
    CHECK(hk_vcodec_vp8_ids(c, sizeof c, &ids));
    CHECK(!ids.has_picture_id && !ids.has_tl0);
    /* Truncated. */
    CHECK(!hk_vcodec_vp8_ids(a, 3, &ids));
    CHECK(!hk_vcodec_vp8_ids(a, 1, &ids));
    CHECK(!hk_vcodec_vp8_ids(a, 0, &ids));
    uint8_t d[] = {0x90, 0x40};
    CHECK(!hk_vcodec_vp8_ids(d, sizeof d, &ids));
}

/* The layers of each packet of a Chromium capture (tests/unit/fixtures/dd/NAME.dd), from
 * the templates alone (hk_dd_layers_t, one per SSRC), agree with the full parser wherever
 * that resolves the frame; before a stream's first structure they are unknown. Returns the
 * highest temporal id seen, the highest spatial id in *spatial. */
static int check_layer_ids(const char *name, int *spatial)
{
    *spatial = -1;
    char path[128];
    snprintf(path, sizeof path, "tests/unit/fixtures/dd/%s.dd", name);
    char *text = hk_test_read_file(path, NULL);
    static hk_dd_state_t states[4];
    memset(states, 0, sizeof states);
    hk_dd_layers_t layers[4];
    memset(layers, 0, sizeof layers);
    uint32_t ssrcs[4] = {0};
    int highest = -1, packets = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        uint8_t dd[255], pt;
        size_t len;
        int k = fixture_packet(line, ssrcs, &pt, dd, &len);
        hk_dd_t d;
        int rc = hk_dd_parse(&states[k], dd, len, &d, NULL);
        uint8_t buf[400];
        size_t n = packet(buf, pt, HK_EXT_DEPENDENCY_DESCRIPTOR, dd, len,
                          (const uint8_t[]){0x10, 0x01, 0xaa}, 3);
        hk_rtp_header_t hdr;
        CHECK_INT_EQ(hk_rtp_parse(buf, n, &hdr, NULL), 0);
        hk_video_layer_t vl;
        hk_vcodec_layer(buf, &hdr, &layers[k], &vl);
        CHECK_INT_EQ(vl.temporal, rc == 0 ? d.temporal_id : -1);
        CHECK_INT_EQ(vl.spatial, rc == 0 ? d.spatial_id : -1);
        CHECK(vl.with_dd);
        CHECK_INT_EQ(vl.frame_start, d.start_of_frame);
        CHECK_INT_EQ(vl.frame_end, d.end_of_frame);
        if (vl.temporal > highest)
            highest = vl.temporal;
        if (vl.spatial > *spatial)
            *spatial = vl.spatial;
        packets++;
    }
    free(text);
    CHECK(packets > 100);
    return highest;
}

/* Chromium's VP8 simulcast encodings have three temporal layers each (L1T3), as do its
 * VP8 and AV1 L1T3 streams; VP9 L2T2 has two of each, VP9 L3T3_KEY and AV1 L3T3 three. */
TEST(vcodec_layer_ids_of_chromium_streams)
{
    int spatial;
    CHECK_INT_EQ(check_layer_ids("vp8-simulcast", &spatial), 2);
    CHECK_INT_EQ(spatial, 0);
    CHECK_INT_EQ(check_layer_ids("vp8-l1t3", &spatial), 2);
    CHECK_INT_EQ(spatial, 0);
    CHECK_INT_EQ(check_layer_ids("av1-l1t3", &spatial), 2);
    CHECK_INT_EQ(check_layer_ids("vp9-l2t2", &spatial), 1);
    CHECK_INT_EQ(spatial, 1);
    CHECK_INT_EQ(check_layer_ids("vp9-l3t3-key", &spatial), 2);
    CHECK_INT_EQ(spatial, 2);
    CHECK_INT_EQ(check_layer_ids("av1-l3t3", &spatial), 2);
    CHECK_INT_EQ(spatial, 2);
}

/* The temporal id of a packet without a descriptor (its spatial id in *spatial). */
static int payload_layer(uint8_t pt, const uint8_t *payload, size_t len, int *spatial)
{
    uint8_t buf[64];
    size_t n = packet(buf, pt, 0, NULL, 0, payload, len);
    hk_rtp_header_t hdr;
    CHECK_INT_EQ(hk_rtp_parse(buf, n, &hdr, NULL), 0);
    hk_dd_layers_t layers = {0};
    hk_video_layer_t vl;
    hk_vcodec_layer(buf, &hdr, &layers, &vl);
    CHECK(!vl.with_dd);
    *spatial = vl.spatial;
    return vl.temporal;
}

static int payload_tid(uint8_t pt, const uint8_t *payload, size_t len)
{
    int spatial;
    int tid = payload_layer(pt, payload, len, &spatial);
    CHECK_INT_EQ(spatial, -1);
    return tid;
}

/* Without a dependency descriptor: VP8's TID (RFC 7741 §4.2, after the PictureID and
 * TL0PICIDX when present; only with the T bit);
 * nothing for other codecs or truncated descriptors. */
TEST(vcodec_layer_from_payload_descriptors)
{
    /* X; I (15-bit), L, T: TID 2 (0x80 | Y). */
    CHECK_INT_EQ(
        payload_tid(HK_PT_VP8, (const uint8_t[]){0x90, 0xe0, 0x81, 0x23, 0x07, 0xa0, 0x00}, 7), 2);
    /* X; T only: TID 1. */
    CHECK_INT_EQ(payload_tid(HK_PT_VP8, (const uint8_t[]){0x90, 0x20, 0x40, 0x00}, 4), 1);
    /* X; I (7-bit), K only (no T): not said. */
    CHECK_INT_EQ(payload_tid(HK_PT_VP8, (const uint8_t[]){0x90, 0x90, 0x05, 0x1f, 0x00}, 5), -1);
    /* No X: not said. Truncated before the TID byte: not said. */
    CHECK_INT_EQ(payload_tid(HK_PT_VP8, (const uint8_t[]){0x10, 0x00}, 2), -1);
    CHECK_INT_EQ(payload_tid(HK_PT_VP8, (const uint8_t[]){0x90, 0xe0, 0x81, 0x23, 0x07}, 5), -1);
    /* VP9 without the descriptor: not said, though its own descriptor has the ids (I, L:
     * TID 3, SID 0). */
    CHECK_INT_EQ(payload_tid(HK_PT_VP9, (const uint8_t[]){0xa8, 0x11, 0x60, 0x00}, 4), -1);
    CHECK_INT_EQ(payload_tid(HK_PT_H264, (const uint8_t[]){0x65, 0x00}, 2), -1);
}

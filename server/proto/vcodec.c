#include "server/proto/vcodec.h"

#include <stddef.h>

int hk_vcodec_of_pt(uint8_t pt)
{
    switch (pt) {
    case HK_PT_VP8:
        return HK_VIDEO_VP8;
    case HK_PT_VP9:
        return HK_VIDEO_VP9;
    case HK_PT_H264:
        return HK_VIDEO_H264;
    case HK_PT_AV1:
        return HK_VIDEO_AV1;
    default:
        return -1;
    }
}

/* RFC 7741 §4.2: X R N S R PID(3); with X: I L T K RSV(4); I: M + 7 or 15 bits of picture
 * id; L: TL0PICIDX; T or K: TID(2) Y KEYIDX(5); then the payload header. Where each field
 * is in a VP8 payload of n bytes (0: absent, since byte 0 is always the first descriptor
 * byte); false when it is truncated. */
typedef struct {
    size_t picture_id, tl0, tid_keyidx, header;
    uint8_t picture_id_bits;
    bool has_tid; /* the T bit: tid_keyidx's TID is meaningful */
} vp8_layout_t;

static bool vp8_layout(const uint8_t *p, size_t n, vp8_layout_t *out)
{
    *out = (vp8_layout_t){0};
    if (n < 1)
        return false;
    size_t off = 1;
    if (p[0] & 0x80) {
        if (n < 2)
            return false;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) {
            if (off >= n)
                return false;
            out->picture_id = off;
            out->picture_id_bits = (p[off] & 0x80) ? 15 : 7;
            off += out->picture_id_bits == 15 ? 2 : 1;
        }
        if (x & 0x40)
            out->tl0 = off++;
        if (x & 0x30) {
            out->tid_keyidx = off++;
            out->has_tid = x & 0x20;
        }
        if (off > n)
            return false;
    }
    out->header = off;
    return true;
}

bool hk_vcodec_vp8_ids(const uint8_t *p, size_t n, hk_vp8_ids_t *out)
{
    *out = (hk_vp8_ids_t){0};
    vp8_layout_t at;
    if (!vp8_layout(p, n, &at))
        return false;
    if (at.picture_id) {
        out->has_picture_id = true;
        out->picture_id_offset = at.picture_id;
        out->picture_id_bits = at.picture_id_bits;
        out->picture_id = at.picture_id_bits == 15
                              ? (uint16_t)(((p[at.picture_id] & 0x7f) << 8) | p[at.picture_id + 1])
                              : p[at.picture_id] & 0x7f;
    }
    if (at.tl0) {
        out->has_tl0 = true;
        out->tl0_offset = at.tl0;
        out->tl0_pic_idx = p[at.tl0];
    }
    return true;
}

void hk_vcodec_vp8_set_ids(uint8_t *p, const hk_vp8_ids_t *ids, uint16_t picture_id,
                           uint8_t tl0_pic_idx)
{
    if (ids->has_picture_id) {
        size_t o = ids->picture_id_offset;
        if (ids->picture_id_bits == 15) {
            p[o] = (uint8_t)(0x80 | ((picture_id >> 8) & 0x7f));
            p[o + 1] = (uint8_t)picture_id;
        } else {
            p[o] = (uint8_t)(picture_id & 0x7f);
        }
    }
    if (ids->has_tl0)
        p[ids->tl0_offset] = tl0_pic_idx;
}

/* RFC 7741 §4.3: the payload header's bit 0 (P) is 0 on a key frame, present on the
 * partition's first packet (S = 1, PID = 0). */
static bool vp8_keyframe_start(const uint8_t *p, size_t n)
{
    vp8_layout_t at;
    if (n < 1 || !(p[0] & 0x10) || (p[0] & 0x07) != 0 || !vp8_layout(p, n, &at))
        return false;
    return at.header < n && !(p[at.header] & 0x01);
}

/* RFC 9628 §4.2: I P L F B E V Z; P = inter-picture predicted, B = start of a frame;
 * I: M + 7 or 15 bits of picture id; L: TID(3) U SID(3) D. A key picture starts at its
 * spatial layer 0. */
static bool vp9_keyframe_start(const uint8_t *p, size_t n)
{
    if (n < 1 || (p[0] & 0x40) || !(p[0] & 0x08))
        return false;
    size_t off = 1;
    if (p[0] & 0x80) {
        if (off >= n)
            return false;
        off += (p[off] & 0x80) ? 2 : 1;
    }
    if (p[0] & 0x20) {
        if (off >= n)
            return false;
        return ((p[off] >> 1) & 0x07) == 0;
    }
    return true;
}

static bool h264_key_nal(uint8_t type)
{
    return type == 5 || type == 7; /* IDR slice, SPS */
}

/* RFC 6184 §5.4: a single NAL unit (types 1-23), STAP-A (24: 16-bit sizes, then NAL
 * units), FU-A (28: FU indicator, FU header S E R TYPE(5)). */
static bool h264_keyframe_start(const uint8_t *p, size_t n)
{
    if (n < 1)
        return false;
    uint8_t type = p[0] & 0x1f;
    if (type >= 1 && type <= 23)
        return h264_key_nal(type);
    if (type == 24) {
        size_t off = 1;
        while (off + 2 < n) {
            size_t size = (size_t)p[off] << 8 | p[off + 1];
            if (size == 0 || off + 2 + size > n)
                return false;
            if (h264_key_nal(p[off + 2] & 0x1f))
                return true;
            off += 2 + size;
        }
        return false;
    }
    if (type == 28)
        return n >= 2 && (p[1] & 0x80) && h264_key_nal(p[1] & 0x1f);
    return false;
}

/* AV1 RTP §4.4, the aggregation header: Z Y W(2) N; N = the first packet of a coded video
 * sequence (a key frame), Z = continues an OBU of the previous packet. */
static bool av1_keyframe_start(const uint8_t *p, size_t n)
{
    return n >= 1 && (p[0] & 0x08) && !(p[0] & 0x80);
}

bool hk_vcodec_keyframe_start(const uint8_t *buf, const hk_rtp_header_t *hdr)
{
    size_t offset, len;
    if (hk_rtp_ext_find(buf, hdr, HK_EXT_DEPENDENCY_DESCRIPTOR, &offset, &len) == 0) {
        /* A.2: start_of_frame is the first bit; A.3: after the 3 mandatory bytes, the first
         * extended bit is template_dependency_structure_present_flag. */
        return len > 3 && (buf[offset] & 0x80) && (buf[offset + 3] & 0x80);
    }
    const uint8_t *p = buf + hdr->payload_offset;
    size_t n = hdr->payload_len;
    switch (hk_vcodec_of_pt(hdr->pt)) {
    case HK_VIDEO_VP8:
        return vp8_keyframe_start(p, n);
    case HK_VIDEO_VP9:
        return vp9_keyframe_start(p, n);
    case HK_VIDEO_H264:
        return h264_keyframe_start(p, n);
    case HK_VIDEO_AV1:
        return av1_keyframe_start(p, n);
    default:
        return false;
    }
}

static int vp8_temporal_id(const uint8_t *p, size_t n)
{
    vp8_layout_t at;
    if (!vp8_layout(p, n, &at) || !at.has_tid)
        return -1;
    return p[at.tid_keyidx] >> 6;
}

void hk_vcodec_layer(const uint8_t *buf, const hk_rtp_header_t *hdr, hk_dd_layers_t *layers,
                     hk_video_layer_t *out)
{
    *out = (hk_video_layer_t)HK_VIDEO_LAYER_UNKNOWN;
    size_t offset, len;
    if (hk_rtp_ext_find(buf, hdr, HK_EXT_DEPENDENCY_DESCRIPTOR, &offset, &len) == 0 &&
        len >= HK_DD_MANDATORY_LEN) {
        out->with_dd = true;
        out->frame_start = buf[offset] & 0x80;
        out->frame_end = buf[offset] & 0x40;
        int spatial = -1;
        int tid = hk_dd_layer_ids(layers, buf + offset, len, &spatial);
        if (tid >= 0) {
            out->temporal = (int8_t)tid;
            out->spatial = (int8_t)spatial;
            return;
        }
    }
    if (hk_vcodec_of_pt(hdr->pt) == HK_VIDEO_VP8)
        out->temporal = (int8_t)vp8_temporal_id(buf + hdr->payload_offset, hdr->payload_len);
}

/* What a forwarder may read of a video packet to switch layers: whether it starts a key
 * frame (PROTOCOL.md §6). A simulcast subscriber can move to another encoding only
 * there, since each encoding is decoded on its own.
 *
 * The dependency descriptor, when the packet has one, decides: its first packet of a
 * frame that carries the template structure starts a key frame (as libwebrtc reads it).
 * In an E2EE channel it is the only clear source. Without it the codec's payload header
 * decides: VP8's P bit (RFC 7741 §4.3), VP9's P bit (RFC 9628 §4.2), H.264's IDR or SPS
 * NAL unit (RFC 6184 §5), AV1's N bit (AV1 RTP §4.4). E2EE clients leave that header in
 * clear (PROTOCOL.md §6).
 *
 * Pure: no I/O, no globals; reads at most the header and the first bytes of the payload. */
#ifndef HK_VCODEC_H
#define HK_VCODEC_H

#include <stdbool.h>
#include <stdint.h>

#include "server/proto/dd.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"

/* The codec of one of the fixed video payload types (proto/sdp.h), or -1. */
int hk_vcodec_of_pt(uint8_t pt);

/* True when the packet buf (parsed as hdr) is the first packet of a key frame; false
 * when it is not, or cannot tell (unknown payload type, truncated payload). */
bool hk_vcodec_keyframe_start(const uint8_t *buf, const hk_rtp_header_t *hdr);

/* Where a video packet sits among its stream's layers, which a forwarder may leave out
 * for a subscriber whose link carries less: a frame of temporal id t refers only to frames
 * of ids <= t, and of spatial id s (SVC, one SSRC) only to spatial ids <= s. The
 * dependency descriptor decides when it can (its templates are learnt into *layers, one
 * per stream); without it, VP8's TID (RFC 7741 §4.2, the T bit), whose PictureIDs a
 * forwarder can keep without gaps. Nothing else without it: VP9's descriptor has layer
 * ids too, but its receivers find references through picture ids and the scalability
 * structure, which dropped frames would contradict. */
typedef struct {
    int8_t spatial;  /* -1: not said */
    int8_t temporal; /* -1: not said */
    /* The dependency descriptor's frame boundaries (A.2): the packet starts / ends its
     * frame (one per spatial layer of a picture); with_dd false without a descriptor. */
    bool with_dd, frame_start, frame_end;
} hk_video_layer_t;

/* A packet whose layers are not known (audio, or nothing said). */
#define HK_VIDEO_LAYER_UNKNOWN                                                                     \
    {                                                                                              \
        -1, -1, false, false, false                                                                \
    }

void hk_vcodec_layer(const uint8_t *buf, const hk_rtp_header_t *hdr, hk_dd_layers_t *layers,
                     hk_video_layer_t *out);

/* The picture numbering of a VP8 payload descriptor (RFC 7741 §4.2), which receivers
 * without a dependency descriptor use to find each frame's references. Each simulcast
 * encoding numbers its own pictures: a forwarder that moves a subscriber to another
 * encoding rewrites them to go on from the last ones it sent (as it does sequence
 * numbers), or the receiver takes the new pictures for old ones. */
typedef struct {
    bool has_picture_id;
    uint8_t picture_id_bits; /* 7 or 15 */
    uint16_t picture_id;
    bool has_tl0;
    uint8_t tl0_pic_idx;
    size_t picture_id_offset; /* in the payload */
    size_t tl0_offset;
} hk_vp8_ids_t;

/* Reads them from a VP8 payload of n bytes. Returns false when it is truncated. */
bool hk_vcodec_vp8_ids(const uint8_t *payload, size_t n, hk_vp8_ids_t *out);

/* Writes picture_id (masked to the field's width) and tl0_pic_idx where `ids` found them. */
void hk_vcodec_vp8_set_ids(uint8_t *payload, const hk_vp8_ids_t *ids, uint16_t picture_id,
                           uint8_t tl0_pic_idx);

#endif

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

/* The temporal layer of a video packet, which a forwarder may drop for a subscriber
 * whose link carries fewer frames per second (a frame of temporal id t refers only to
 * frames of ids <= t). The dependency descriptor decides when it can (its templates are
 * learnt into *layers, one per stream); without it, the codec's payload descriptor: VP8's
 * TID (RFC 7741 §4.2, the T bit), VP9's (RFC 9628 §4.2, the L bit). -1 when the packet
 * does not say. */
int hk_vcodec_temporal_id(const uint8_t *buf, const hk_rtp_header_t *hdr, hk_dd_layers_t *layers);

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

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

#include "server/proto/rtp.h"
#include "server/proto/sdp.h"

/* The codec of one of the fixed video payload types (proto/sdp.h), or -1. */
int hk_vcodec_of_pt(uint8_t pt);

/* True when the packet buf (parsed as hdr) is the first packet of a key frame; false
 * when it is not, or cannot tell (unknown payload type, truncated payload). */
bool hk_vcodec_keyframe_start(const uint8_t *buf, const hk_rtp_header_t *hdr);

#endif

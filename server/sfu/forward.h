/* Forwarding: a publisher's RTP to every subscriber of its channel, retransmissions,
 * and the routing of subscribers' feedback (PLI/FIR to the publisher, NACK answered from
 * the cache). The payload is never read: only the RTP header and its extensions. */
#ifndef HK_FORWARD_H
#define HK_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto/rtp.h"
#include "server/proto/sdp.h"

typedef struct hk_peer_s hk_peer_t;

/* Copies a plain RTP packet into dst while rewriting what is per leg (RFC 8285): the
 * mid extension gets this subscriber's mid (added when absent), and the transport-wide
 * sequence number extension gets twcc_seq (when set_twcc and present). One- and
 * two-byte extension forms are kept as they came. Pure.
 * Returns the length written, HK_ENOSPC when cap is too small, HK_EINVAL for a malformed
 * extension block or a mid of 0 or more than 16 bytes. */
int hk_forward_rewrite(const uint8_t *src, size_t len, const hk_rtp_header_t *hdr, uint8_t *dst,
                       size_t cap, const char *mid, size_t mid_len, bool set_twcc,
                       uint16_t twcc_seq);

/* Sends a publisher's (plain) packet to every subscriber that receives its SSRC. */
void hk_forward_rtp(hk_peer_t *publisher, const uint8_t *buf, size_t len,
                    const hk_rtp_header_t *hdr);

/* Handles one feedback packet (RTPFB/PSFB) received from `from`. */
void hk_forward_feedback(hk_peer_t *from, const uint8_t *pkt, size_t len, uint64_t now_ms);

/* Relays a publisher's sender report (without report blocks) to its subscribers. */
void hk_forward_sender_report(hk_peer_t *publisher, uint32_t ssrc, const uint8_t *pkt, size_t len);

/* Asks the publishers of every track `subscriber` receives for a keyframe. */
void hk_forward_request_keyframes(hk_peer_t *subscriber, uint64_t now_ms);

#endif

/* The per-leg rewrite of a forwarded RTP packet's header extensions (sfu/consumer.c
 * uses it for each subscriber). The payload is never read: only the RTP header and its
 * extensions. */
#ifndef HK_FORWARD_H
#define HK_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto/rtp.h"
#include "server/proto/sdp.h"

/* Where the parts a consumer edits after the copy landed in the written packet. */
typedef struct {
    size_t payload_offset;
    size_t payload_len; /* without padding */
    size_t dd_offset;   /* the dependency descriptor's data; dd_len 0 when absent */
    size_t dd_len;
} hk_forward_layout_t;

/* Copies a plain RTP packet into dst while rewriting what is per leg (RFC 8285): the
 * mid extension gets this subscriber's mid (added when absent), and, when set_twcc, the
 * transport-wide sequence number extension gets twcc_seq (added when absent). One- and
 * two-byte extension forms are kept as they came. Pure. layout, when not NULL, gets where
 * the payload and the dependency descriptor are in dst (no reparse for the edits).
 * Returns the length written, HK_ENOSPC when cap is too small, HK_EINVAL for a malformed
 * extension block or a mid of 0 or more than 16 bytes. */
int hk_forward_rewrite(const uint8_t *src, size_t len, const hk_rtp_header_t *hdr, uint8_t *dst,
                       size_t cap, const char *mid, size_t mid_len, bool set_twcc,
                       uint16_t twcc_seq, hk_forward_layout_t *layout);

#endif

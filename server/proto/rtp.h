/* RTP fixed header (RFC 3550 §5.1) and header extensions (RFC 8285): parse, locate and
 * rewrite in place. Pure: no I/O, no globals, no allocation. The payload is never read
 * (the RTX original sequence number aside, which sits in front of the payload). */
#ifndef HK_RTP_H
#define HK_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HK_RTP_HEADER_MIN   12
#define HK_RTP_MAX_CSRC     15
#define HK_RTP_EXT_ONE_BYTE 0xBEDE /* RFC 8285 §4.2 */
#define HK_RTP_EXT_TWO_BYTE 0x1000 /* RFC 8285 §4.3: 0x100X, X = appbits */

/* A parsed RTP header. Offsets are from the start of the packet buffer. */
typedef struct {
    uint8_t version;
    bool padding;
    bool extension;
    bool marker;
    uint8_t pt;
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    uint8_t csrc_count;
    uint32_t csrcs[HK_RTP_MAX_CSRC];
    size_t header_len;     /* offset of the payload: fixed header + CSRCs + extension */
    uint16_t ext_profile;  /* "defined by profile" word; 0 when extension is false */
    size_t ext_offset;     /* first byte of the extension elements (after the 4-byte header) */
    size_t ext_len;        /* bytes of extension elements (a multiple of 4) */
    size_t payload_offset; /* == header_len */
    size_t payload_len;    /* without padding */
    uint8_t padding_len;   /* 0 when padding is false */
} hk_rtp_header_t;

/* Parses the header of the RTP packet buf[0..len). Refuses len < 12, version != 2,
 * CSRCs or an extension past the end, and a padding count of 0 or larger than the
 * payload. Returns 0, or HK_EINVAL with *err (if err is not NULL) set to a static
 * description. */
int hk_rtp_parse(const uint8_t *buf, size_t len, hk_rtp_header_t *out, const char **err);

/* Finds extension element `id` (1..14 in the one-byte form, 1..255 in the two-byte
 * form) in a packet parsed by hk_rtp_parse. Padding bytes are skipped; in the one-byte
 * form id 15 ends the scan. Sets *offset (from the start of buf) and *len of the
 * element's value. Returns 0, HK_ENOENT if absent (or the profile is not RFC 8285), or
 * HK_EINVAL if an element runs past the extension block. */
int hk_rtp_ext_find(const uint8_t *buf, const hk_rtp_header_t *hdr, uint8_t id, size_t *offset,
                    size_t *len);

/* Overwrites the value of the mid extension `mid_id` with mid[0..mid_len) in place.
 * Returns 0, HK_ENOENT if the packet carries no such element, HK_ENOSPC if mid_len
 * differs from the current value's length (the packet is left unchanged). */
int hk_rtp_ext_rewrite_mid(uint8_t *buf, const hk_rtp_header_t *hdr, uint8_t mid_id,
                           const char *mid, size_t mid_len);

/* Writes a 16-bit big-endian value (e.g. the transport-wide sequence number) into
 * extension element `id` in place. Returns 0, HK_ENOENT if absent, HK_EINVAL if the
 * element's value is not 2 bytes long. */
int hk_rtp_ext_set_u16(uint8_t *buf, const hk_rtp_header_t *hdr, uint8_t id, uint16_t value);

/* Writes one extension element at p, which has room for it: in the one-byte form (id
 * 1..14, 1..16 bytes of data) or the two-byte form (id 1..255, 0..255 bytes). Returns
 * the bytes written: a 1- or 2-byte head, then data[0..len). */
static inline size_t hk_rtp_ext_put(uint8_t *p, bool two_byte, uint8_t id, const void *data,
                                    size_t len)
{
    size_t head = 1;
    if (two_byte) {
        p[0] = id;
        p[1] = (uint8_t)len;
        head = 2;
    } else {
        p[0] = (uint8_t)((id << 4) | (len - 1));
    }
    if (len)
        memcpy(p + head, data, len);
    return head + len;
}

/* RFC 5761 §4: true when buf looks like RTCP multiplexed with RTP (version 2 and a
 * second byte of 192..223, i.e. RTCP packet types 192..223). */
bool hk_rtp_is_rtcp(const uint8_t *buf, size_t len);

/* RFC 4588 §4: reads the original sequence number at the start of an RTX payload.
 * Returns 0, or HK_EINVAL if the payload is shorter than 2 bytes. */
int hk_rtp_rtx_original_seq(const uint8_t *buf, const hk_rtp_header_t *hdr, uint16_t *seq);

/* RFC 4588 §4: rebuilds into out the packet an RTX packet carries: the RTX header (CSRCs,
 * extensions and marker kept) with the original sequence number, the given SSRC and
 * payload type, then the payload after the OSN; any padding is dropped. Returns the
 * length, HK_EINVAL (payload under 2 bytes) or HK_ENOSPC (over cap). */
int hk_rtp_rtx_unwrap(const uint8_t *buf, const hk_rtp_header_t *hdr, uint32_t ssrc, uint8_t pt,
                      uint8_t *out, size_t cap);

/* Writes the header described by hdr (version 2; padding, marker, pt, seq, timestamp,
 * ssrc, csrc_count + csrcs, and when hdr->extension is set ext_profile and the
 * hdr->ext_len bytes at ext) into buf[0..cap). hdr->ext_len must be a multiple of 4.
 * Offsets and lengths in hdr are ignored otherwise. Returns the header length, HK_EINVAL
 * for an invalid hdr, or HK_ENOSPC. */
int hk_rtp_write_header(uint8_t *buf, size_t cap, const hk_rtp_header_t *hdr, const uint8_t *ext);

/* Writes a padding-only packet (P set, no payload, pad bytes of padding: 1..255) with
 * one-byte extensions mid (id mid_id, 1..16 bytes) and a transport-wide sequence number
 * (id twcc_id): what a sender probes the path with, on an RTX SSRC so that no decoder
 * sees it. Timestamp 0. Returns the length, HK_EINVAL or HK_ENOSPC. */
int hk_rtp_build_padding(uint8_t *buf, size_t cap, uint8_t pt, uint16_t seq, uint32_t ssrc,
                         uint8_t mid_id, const char *mid, size_t mid_len, uint8_t twcc_id,
                         uint16_t twcc_seq, size_t pad);

#endif

/* RFC 4571 framing of RTP, RTCP, STUN and DTLS on a TCP connection (used by ICE-TCP,
 * RFC 6544 §3): each packet is preceded by its length as a 16-bit big-endian number.
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    -----------------------------------------------------------------
 *    |             LENGTH            |  STUN, DTLS, RTP or RTCP ...  |
 *    -----------------------------------------------------------------
 *
 * Pure: no I/O, no state beyond the arguments. The stream's bytes are kept by the
 * caller; hk_rfc4571_decode looks at the front of them. */
#ifndef HK_RFC4571_H
#define HK_RFC4571_H

#include <stddef.h>
#include <stdint.h>

#define HK_RFC4571_HEADER 2

/* Decodes the frame at the front of buf[0..len). A frame longer than max_frame is an
 * error whatever follows it (the length field is read before any payload).
 * Returns the bytes the frame takes (header included, > 0) with its payload at
 * buf + HK_RFC4571_HEADER and *frame_len set (0 for an empty frame, which the caller
 * skips); HK_EINCOMPLETE when buf holds less than the header or the whole frame;
 * HK_ERANGE when the length field is over max_frame (the stream cannot be
 * resynchronised: close it). */
int hk_rfc4571_decode(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_len);

/* Writes the 2-byte header of a frame of len bytes (len <= 65535). */
static inline void hk_rfc4571_write_header(uint8_t out[HK_RFC4571_HEADER], size_t len)
{
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
}

#endif

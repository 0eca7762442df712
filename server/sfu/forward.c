#include "server/sfu/forward.h"

#include <string.h>

#include "common/error.h"

/* RFC 8285 §4.2 one-byte form (profile 0xBEDE): elements ID(4) L(4) then L+1 bytes;
 * ID 0 is a padding byte, ID 15 stops parsing.
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |       0xBE    |    0xDE       |           length              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  ID   |  L    |     data...   |  ID   |  L    |   data...
 * §4.3 two-byte form (profile 0x100X): elements ID(8) L(8) then L bytes; ID 0 pads. */
int hk_forward_rewrite(const uint8_t *src, size_t len, const hk_rtp_header_t *hdr, uint8_t *dst,
                       size_t cap, const char *mid, size_t mid_len, bool set_twcc,
                       uint16_t twcc_seq, hk_forward_layout_t *layout)
{
    hk_forward_layout_t where = {0};
    if (mid_len == 0 || mid_len > 16)
        return HK_EINVAL;
    size_t fixed = HK_RTP_HEADER_MIN + 4u * hdr->csrc_count;
    bool two_byte = hdr->extension && (hdr->ext_profile & 0xfff0) == HK_RTP_EXT_TWO_BYTE;
    if (hdr->extension && !two_byte && hdr->ext_profile != HK_RTP_EXT_ONE_BYTE)
        return HK_EINVAL; /* an extension we do not know how to edit */
    if (fixed + 4 > cap || hdr->header_len > len)
        return HK_ENOSPC;
    memcpy(dst, src, fixed);
    dst[0] |= 0x10; /* X */
    size_t out = fixed + 4;
    uint16_t profile = two_byte ? hdr->ext_profile : HK_RTP_EXT_ONE_BYTE;
    dst[fixed] = (uint8_t)(profile >> 8);
    dst[fixed + 1] = (uint8_t)profile;

    /* Our mid first. */
    if (out + 2 + mid_len > cap)
        return HK_ENOSPC;
    out += hk_rtp_ext_put(dst + out, two_byte, HK_EXT_MID, mid, mid_len);
    /* Then this leg's transport-wide sequence number: every packet to the subscriber
     * carries one, so its feedback covers all we send (the downlink estimate). */
    if (set_twcc) {
        if (out + 4 > cap)
            return HK_ENOSPC;
        uint8_t seq_be[2] = {(uint8_t)(twcc_seq >> 8), (uint8_t)twcc_seq};
        out += hk_rtp_ext_put(dst + out, two_byte, HK_EXT_TRANSPORT_CC, seq_be, sizeof seq_be);
    }

    if (hdr->extension) {
        const uint8_t *p = src + hdr->ext_offset;
        const uint8_t *end = p + hdr->ext_len;
        while (p < end) {
            uint8_t id;
            size_t elen;
            size_t head = two_byte ? 2 : 1;
            if (two_byte) {
                id = p[0];
                if (id == 0) {
                    p++;
                    continue;
                }
                if (p + 2 > end)
                    return HK_EINVAL;
                elen = p[1];
            } else {
                id = p[0] >> 4;
                if (id == 0) {
                    p++;
                    continue;
                }
                if (id == 15)
                    break;
                elen = (size_t)(p[0] & 0x0f) + 1;
            }
            if (p + head + elen > end)
                return HK_EINVAL;
            if (id != HK_EXT_MID && !(id == HK_EXT_TRANSPORT_CC && set_twcc)) {
                if (out + head + elen > cap)
                    return HK_ENOSPC;
                memcpy(dst + out, p, head + elen);
                if (id == HK_EXT_DEPENDENCY_DESCRIPTOR) {
                    where.dd_offset = out + head;
                    where.dd_len = elen;
                }
                out += head + elen;
            }
            p += head + elen;
        }
    }
    while ((out - fixed) % 4)
        if (out < cap)
            dst[out++] = 0;
        else
            return HK_ENOSPC;
    size_t words = (out - fixed - 4) / 4;
    dst[fixed + 2] = (uint8_t)(words >> 8);
    dst[fixed + 3] = (uint8_t)words;

    size_t rest = len - hdr->header_len; /* payload and padding, unchanged */
    if (out + rest > cap)
        return HK_ENOSPC;
    memcpy(dst + out, src + hdr->header_len, rest);
    if (layout) {
        where.payload_offset = out;
        where.payload_len = hdr->payload_len;
        *layout = where;
    }
    return (int)(out + rest);
}

/* RTP header parse and in-place rewrite (RFC 3550 §5.1, RFC 8285, RFC 5761, RFC 4588). */
#include "server/proto/rtp.h"

#include <string.h>

#include "common/bytes.h"
#include "common/error.h"

/* RFC 3550 §5.1:
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           timestamp                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           synchronization source (SSRC) identifier            |
 * +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 * |            contributing source (CSRC) identifiers             |
 * |                             ....                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * §5.3.1 header extension (when X = 1), length in 32-bit words:
 *
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |      defined by profile       |           length              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        header extension                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * With P = 1 the last byte of the packet counts the padding bytes, itself included. */
int hk_rtp_parse(const uint8_t *buf, size_t len, hk_rtp_header_t *out, const char **err)
{
    if (len < HK_RTP_HEADER_MIN)
        return hk_fail(err, "RTP packet shorter than 12 bytes");
    memset(out, 0, sizeof *out);
    out->version = buf[0] >> 6;
    if (out->version != 2)
        return hk_fail(err, "RTP version is not 2");
    out->padding = (buf[0] & 0x20) != 0;
    out->extension = (buf[0] & 0x10) != 0;
    out->csrc_count = buf[0] & 0x0f;
    out->marker = (buf[1] & 0x80) != 0;
    out->pt = buf[1] & 0x7f;
    out->seq = hk_rd16(buf + 2);
    out->timestamp = hk_rd32(buf + 4);
    out->ssrc = hk_rd32(buf + 8);

    size_t off = HK_RTP_HEADER_MIN;
    if ((len - off) / 4 < out->csrc_count)
        return hk_fail(err, "RTP CSRC list past the end");
    for (uint8_t i = 0; i < out->csrc_count; i++, off += 4)
        out->csrcs[i] = hk_rd32(buf + off);

    if (out->extension) {
        if (len - off < 4)
            return hk_fail(err, "RTP extension header past the end");
        out->ext_profile = hk_rd16(buf + off);
        size_t words = hk_rd16(buf + off + 2);
        off += 4;
        if ((len - off) / 4 < words)
            return hk_fail(err, "RTP extension length past the end");
        out->ext_offset = off;
        out->ext_len = words * 4;
        off += out->ext_len;
    }
    out->header_len = off;
    out->payload_offset = off;
    out->payload_len = len - off;

    if (out->padding) {
        uint8_t pad = buf[len - 1];
        if (pad == 0)
            return hk_fail(err, "RTP padding count is 0");
        if (pad > out->payload_len)
            return hk_fail(err, "RTP padding count larger than the payload");
        out->padding_len = pad;
        out->payload_len -= pad;
    }
    return 0;
}

/* RFC 8285 §4.2 one-byte form (profile 0xBEDE), L = length - 1:
 *
 *  0 1 2 3 4 5 6 7
 * +-+-+-+-+-+-+-+-+
 * |  ID   |  L    |  data (L + 1 bytes) ...
 * +-+-+-+-+-+-+-+-+
 *
 * ID 0 is a padding byte; ID 15 ends the scan (§4.2: stop processing).
 *
 * §4.3 two-byte form (profile 0x100X), L = length (0..255):
 *
 *  0                   1
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |       ID      |     length    |  data (length bytes) ...
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * ID 0 is a padding byte. */
int hk_rtp_ext_find(const uint8_t *buf, const hk_rtp_header_t *hdr, uint8_t id, size_t *offset,
                    size_t *len)
{
    if (!hdr->extension || id == 0)
        return HK_ENOENT;
    bool one_byte = hdr->ext_profile == HK_RTP_EXT_ONE_BYTE;
    bool two_byte = (hdr->ext_profile & 0xfff0) == HK_RTP_EXT_TWO_BYTE;
    if (!one_byte && !two_byte)
        return HK_ENOENT;
    if (one_byte && id >= 15)
        return HK_ENOENT;

    const uint8_t *p = buf + hdr->ext_offset;
    size_t n = hdr->ext_len, i = 0;
    while (i < n) {
        uint8_t elem_id;
        size_t elem_len;
        if (one_byte) {
            elem_id = p[i] >> 4;
            if (elem_id == 0) {
                i++;
                continue;
            }
            if (elem_id == 15)
                return HK_ENOENT;
            elem_len = (size_t)(p[i] & 0x0f) + 1;
            i++;
        } else {
            elem_id = p[i];
            if (elem_id == 0) {
                i++;
                continue;
            }
            if (n - i < 2)
                return HK_EINVAL;
            elem_len = p[i + 1];
            i += 2;
        }
        if (n - i < elem_len)
            return HK_EINVAL;
        if (elem_id == id) {
            *offset = hdr->ext_offset + i;
            *len = elem_len;
            return 0;
        }
        i += elem_len;
    }
    return HK_ENOENT;
}

int hk_rtp_ext_rewrite_mid(uint8_t *buf, const hk_rtp_header_t *hdr, uint8_t mid_id,
                           const char *mid, size_t mid_len)
{
    size_t off, len;
    int rc = hk_rtp_ext_find(buf, hdr, mid_id, &off, &len);
    if (rc != 0)
        return rc;
    if (len != mid_len)
        return HK_ENOSPC;
    memcpy(buf + off, mid, mid_len);
    return 0;
}

int hk_rtp_ext_set_u16(uint8_t *buf, const hk_rtp_header_t *hdr, uint8_t id, uint16_t value)
{
    size_t off, len;
    int rc = hk_rtp_ext_find(buf, hdr, id, &off, &len);
    if (rc != 0)
        return rc;
    if (len != 2)
        return HK_EINVAL;
    hk_wr16(buf + off, value);
    return 0;
}

/* RFC 5761 §4: RTCP packet types 200..204 (and the RTCP range 192..223 as a whole) have
 * the marker bit set and an RTP payload type of 64..95 when read as RTP. */
bool hk_rtp_is_rtcp(const uint8_t *buf, size_t len)
{
    if (len < 2 || (buf[0] >> 6) != 2)
        return false;
    return buf[1] >= 192 && buf[1] <= 223;
}

/* RFC 4588 §4: an RTX payload starts with the 16-bit original sequence number (OSN). */
int hk_rtp_rtx_original_seq(const uint8_t *buf, const hk_rtp_header_t *hdr, uint16_t *seq)
{
    if (hdr->payload_len < 2)
        return HK_EINVAL;
    *seq = hk_rd16(buf + hdr->payload_offset);
    return 0;
}

int hk_rtp_rtx_unwrap(const uint8_t *buf, const hk_rtp_header_t *hdr, uint32_t ssrc, uint8_t pt,
                      uint8_t *out, size_t cap)
{
    uint16_t osn;
    if (hk_rtp_rtx_original_seq(buf, hdr, &osn) != 0)
        return HK_EINVAL;
    size_t body = hdr->payload_len - 2;
    size_t len = hdr->payload_offset + body;
    if (len > cap)
        return HK_ENOSPC;
    memcpy(out, buf, hdr->payload_offset);
    memcpy(out + hdr->payload_offset, buf + hdr->payload_offset + 2, body);
    out[0] &= (uint8_t)~0x20; /* no padding */
    out[1] = (uint8_t)((out[1] & 0x80) | (pt & 0x7f));
    hk_wr16(out + 2, osn);
    hk_wr32(out + 8, ssrc);
    return (int)len;
}

int hk_rtp_build_padding(uint8_t *buf, size_t cap, uint8_t pt, uint16_t seq, uint32_t ssrc,
                         uint8_t mid_id, const char *mid, size_t mid_len, uint8_t twcc_id,
                         uint16_t twcc_seq, size_t pad)
{
    if (mid_len == 0 || mid_len > 16 || pad == 0 || pad > 255 || !mid_id || mid_id > 14 ||
        !twcc_id || twcc_id > 14)
        return HK_EINVAL;
    uint8_t ext[24] = {0};
    uint8_t seq_be[2];
    hk_wr16(seq_be, twcc_seq);
    size_t e = hk_rtp_ext_put(ext, false, mid_id, mid, mid_len);
    e += hk_rtp_ext_put(ext + e, false, twcc_id, seq_be, sizeof seq_be);
    hk_rtp_header_t hdr = {
        .padding = true,
        .pt = pt,
        .seq = seq,
        .ssrc = ssrc,
        .extension = true,
        .ext_profile = HK_RTP_EXT_ONE_BYTE,
        .ext_len = (e + 3) / 4 * 4,
    };
    int n = hk_rtp_write_header(buf, cap, &hdr, ext);
    if (n < 0)
        return n;
    if ((size_t)n + pad > cap)
        return HK_ENOSPC;
    memset(buf + n, 0, pad - 1);
    buf[(size_t)n + pad - 1] = (uint8_t)pad;
    return n + (int)pad;
}

int hk_rtp_write_header(uint8_t *buf, size_t cap, const hk_rtp_header_t *hdr, const uint8_t *ext)
{
    if (hdr->csrc_count > HK_RTP_MAX_CSRC || hdr->pt > 127)
        return HK_EINVAL;
    size_t need = HK_RTP_HEADER_MIN + 4 * (size_t)hdr->csrc_count;
    if (hdr->extension) {
        if (hdr->ext_len % 4 != 0 || hdr->ext_len / 4 > 0xffff || (hdr->ext_len && !ext))
            return HK_EINVAL;
        need += 4 + hdr->ext_len;
    }
    if (cap < need)
        return HK_ENOSPC;
    buf[0] =
        (uint8_t)(0x80 | (hdr->padding ? 0x20 : 0) | (hdr->extension ? 0x10 : 0) | hdr->csrc_count);
    buf[1] = (uint8_t)((hdr->marker ? 0x80 : 0) | hdr->pt);
    hk_wr16(buf + 2, hdr->seq);
    hk_wr32(buf + 4, hdr->timestamp);
    hk_wr32(buf + 8, hdr->ssrc);
    size_t off = HK_RTP_HEADER_MIN;
    for (uint8_t i = 0; i < hdr->csrc_count; i++, off += 4)
        hk_wr32(buf + off, hdr->csrcs[i]);
    if (hdr->extension) {
        hk_wr16(buf + off, hdr->ext_profile);
        hk_wr16(buf + off + 2, (uint16_t)(hdr->ext_len / 4));
        off += 4;
        if (hdr->ext_len)
            memcpy(buf + off, ext, hdr->ext_len);
        off += hdr->ext_len;
    }
    return (int)off;
}

/* Fuzz target `rtp`: parse, look up every extension id, rewrite mid and transport
 * sequence number on a copy, read the RTX OSN and unwrap the RTX packet, check that the header
 * writer reproduces the parsed header byte for byte, and look for a key frame's start
 * (proto/vcodec.h) as every video payload type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/rtp.h"
#include "server/proto/vcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)hk_rtp_is_rtcp(data, size);
    hk_rtp_header_t h;
    const char *err = NULL;
    if (hk_rtp_parse(data, size, &h, &err) != 0) {
        if (!err)
            abort();
        return 0;
    }
    if (h.header_len > size || h.payload_offset + h.payload_len + h.padding_len != size)
        abort();

    (void)hk_vcodec_keyframe_start(data, &h);
    static const uint8_t video_pts[] = {HK_PT_VP8, HK_PT_VP9, HK_PT_H264, HK_PT_AV1};
    for (size_t i = 0; i < sizeof video_pts; i++) {
        hk_rtp_header_t as = h;
        as.pt = video_pts[i];
        (void)hk_vcodec_keyframe_start(data, &as);
    }

    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    for (unsigned id = 0; id < 256; id++) {
        size_t off = 0, len = 0;
        int rc = hk_rtp_ext_find(data, &h, (uint8_t)id, &off, &len);
        if (rc == 0) {
            if (off < h.ext_offset || off + len > h.ext_offset + h.ext_len)
                abort();
            char mid[256];
            memset(mid, 'm', sizeof mid);
            if (hk_rtp_ext_rewrite_mid(copy, &h, (uint8_t)id, mid, len) != 0)
                abort();
            if (hk_rtp_ext_rewrite_mid(copy, &h, (uint8_t)id, mid, len + 1) != HK_ENOSPC)
                abort();
            rc = hk_rtp_ext_set_u16(copy, &h, (uint8_t)id, 0xbeef);
            if (rc != 0 && len == 2)
                abort();
        } else if (rc != HK_ENOENT && rc != HK_EINVAL) {
            abort();
        }
    }
    /* The fixed header, CSRCs and extension header must be untouched by rewrites. */
    size_t fixed = h.extension ? h.ext_offset : h.header_len;
    if (memcmp(copy, data, fixed) != 0 ||
        memcmp(copy + h.header_len, data + h.header_len, size - h.header_len) != 0)
        abort();
    free(copy);

    uint16_t osn;
    int rc = hk_rtp_rtx_original_seq(data, &h, &osn);
    if ((rc == 0) != (h.payload_len >= 2))
        abort();
    /* The unwrapped packet parses, carries the OSN and is the payload minus the OSN. */
    static uint8_t orig[65536];
    int ulen = hk_rtp_rtx_unwrap(data, &h, 0x01020304, 96, orig, sizeof orig);
    if ((ulen >= 0) != (rc == 0))
        abort();
    if (ulen >= 0) {
        hk_rtp_header_t u;
        if (hk_rtp_parse(orig, (size_t)ulen, &u, NULL) != 0 || u.seq != osn || u.pt != 96 ||
            u.ssrc != 0x01020304 || u.payload_len != h.payload_len - 2 || u.padding_len != 0)
            abort();
    }

    static uint8_t big[12 + 60 + 4 + 4 * 65535];
    int n = hk_rtp_write_header(big, sizeof big, &h, data + h.ext_offset);
    if (n < 0 || (size_t)n != h.header_len || memcmp(big, data, h.header_len) != 0)
        abort();
    return 0;
}

#include "server/proto/rfc4571.h"

#include "common/error.h"

int hk_rfc4571_decode(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_len)
{
    if (len < HK_RFC4571_HEADER)
        return HK_EINCOMPLETE;
    size_t n = (size_t)buf[0] << 8 | buf[1];
    if (n > max_frame || n > 65535)
        return HK_ERANGE;
    if (len - HK_RFC4571_HEADER < n)
        return HK_EINCOMPLETE;
    *frame_len = n;
    return (int)(n + HK_RFC4571_HEADER);
}

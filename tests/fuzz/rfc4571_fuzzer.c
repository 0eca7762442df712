/* libFuzzer target `rfc4571`: the ICE-TCP framer over any byte stream, as io/tcp_ice
 * uses it: frames decoded from the front of a receive buffer fed in chunks whose sizes
 * come from the input. Checks the decoder's contract: a frame never reaches past the
 * bytes given nor over the limit, consumption always advances, an error is final, and
 * re-framing the decoded frames gives the consumed bytes back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/rfc4571.h"

#define MAX_FRAME 1600

static void require(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1; /* bytes per read() */
    data++, size--;
    uint8_t rx[HK_RFC4571_HEADER + MAX_FRAME];
    uint8_t *rebuilt = malloc(size + 1);
    require(rebuilt != NULL);
    size_t rx_len = 0, fed = 0, consumed = 0, rebuilt_len = 0;
    int failed = 0;
    while (fed < size && !failed) {
        size_t room = sizeof rx - rx_len;
        size_t n = size - fed < chunk ? size - fed : chunk;
        if (n > room)
            n = room;
        require(n > 0); /* a partial frame always leaves room */
        memcpy(rx + rx_len, data + fed, n);
        rx_len += n;
        fed += n;
        size_t at = 0;
        for (;;) {
            size_t frame_len = 0;
            int used = hk_rfc4571_decode(rx + at, rx_len - at, MAX_FRAME, &frame_len);
            if (used == HK_EINCOMPLETE)
                break;
            if (used < 0) {
                require(used == HK_ERANGE);
                failed = 1;
                break;
            }
            require(used >= HK_RFC4571_HEADER && (size_t)used <= rx_len - at);
            require(frame_len == (size_t)used - HK_RFC4571_HEADER && frame_len <= MAX_FRAME);
            hk_rfc4571_write_header(rebuilt + rebuilt_len, frame_len);
            memcpy(rebuilt + rebuilt_len + HK_RFC4571_HEADER, rx + at + HK_RFC4571_HEADER,
                   frame_len);
            rebuilt_len += (size_t)used;
            at += (size_t)used;
        }
        consumed += at;
        memmove(rx, rx + at, rx_len - at);
        rx_len -= at;
    }
    require(rebuilt_len == consumed && memcmp(rebuilt, data, consumed) == 0);
    free(rebuilt);
    return 0;
}

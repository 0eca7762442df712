/* libFuzzer target: the client's SDP answer (docs/threats.md item 7). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hk_sdp_answer_t answer;
    const char *err = NULL;
    /* An exact-size copy so ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    int rc = hk_sdp_parse_answer(copy, size, 64 * 1024, &answer, &err);
    if (rc == 0) {
        if (answer.n_media == 0 || answer.n_media > HK_SDP_MAX_MEDIA || answer.ice_ufrag[0] == 0 ||
            answer.fingerprint_len == 0 || err != NULL)
            abort();
        for (size_t i = 0; i < answer.n_media; i++) {
            const hk_sdp_media_t *m = &answer.media[i];
            if (memchr(m->mid, 0, sizeof m->mid) == NULL ||
                memchr(m->stream_id, 0, sizeof m->stream_id) == NULL ||
                memchr(m->track_id, 0, sizeof m->track_id) == NULL || m->payload_type > 127)
                abort();
            if (m->mid[0] && hk_sdp_answer_find(&answer, m->mid) != m)
                abort();
        }
    } else if (rc != HK_EINVAL || err == NULL) {
        abort();
    }
    free(copy);
    return 0;
}

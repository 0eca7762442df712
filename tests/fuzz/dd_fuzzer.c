/* Fuzz target `dd`: the input is a stream of dependency descriptors, each preceded by a
 * length byte, parsed in order against one stream state (so later descriptors use the
 * structures of earlier ones). Each parsed descriptor must respect the header's bounds,
 * and writing it back and parsing the result again (from the state before it) must
 * give the same descriptor and the same state. Each frame is also run through the frame
 * tracker (decodable, chain intact for every decode target, marked). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/dd.h"

static hk_dd_state_t state, before, again;
static hk_dd_frames_t frames;

static void check(const hk_dd_t *d)
{
    const hk_dd_structure_t *s = &state.structure;
    if (d->spatial_id > HK_DD_MAX_SPATIAL_ID || d->temporal_id > HK_DD_MAX_TEMPORAL_ID ||
        d->fdiff_count > HK_DD_MAX_FDIFFS || d->decode_target_count < 1 ||
        d->decode_target_count > HK_DD_MAX_DECODE_TARGETS ||
        d->chain_count > d->decode_target_count || s->template_count < 1 ||
        s->template_count > HK_DD_MAX_TEMPLATES)
        abort();
    for (unsigned i = 0; i < d->fdiff_count; i++)
        if (d->fdiffs[i] < 1 || d->fdiffs[i] > 4096)
            abort();
    for (unsigned dt = 0; dt < s->decode_target_count; dt++) {
        if (s->chain_count && s->protected_by[dt] >= s->chain_count)
            abort();
        int found = hk_dd_decode_target(s, s->dt_spatial_id[dt], s->dt_temporal_id[dt]);
        if (found < 0 || found > (int)dt)
            abort();
    }
    (void)hk_dd_is_keyframe(d);
    (void)hk_dd_frames_decodable(&frames, d);
    for (int dt = -1; dt <= d->decode_target_count; dt++)
        (void)hk_dd_chain_intact(&frames, s, d, dt);
    hk_dd_frames_mark(&frames, d->frame_number);
    /* Marked, unless it was too far behind the newest to be recorded. */
    if (!hk_dd_frames_has(&frames, d->frame_number) &&
        (int16_t)(d->frame_number - frames.newest) > -HK_DD_FRAME_WINDOW)
        abort();
    (void)hk_dd_can_switch_to(d, d->decode_target_count - 1);

    uint8_t buf[1024];
    int n = hk_dd_write(s, d, buf, sizeof buf);
    if (n < HK_DD_MANDATORY_LEN)
        abort();
    hk_dd_t d2;
    memcpy(&again, &before, sizeof again);
    if (hk_dd_parse(&again, buf, (size_t)n, &d2, NULL) != 0 || memcmp(d, &d2, sizeof d2) != 0 ||
        again.has_structure != state.has_structure ||
        again.active_decode_targets != state.active_decode_targets ||
        memcmp(&again.structure, &state.structure, sizeof again.structure) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&state, 0, sizeof state);
    hk_dd_frames_reset(&frames);
    while (size > 0) {
        size_t len = data[0];
        data++;
        size--;
        if (len > size)
            len = size;
        memcpy(&before, &state, sizeof before);
        hk_dd_t d;
        const char *err = NULL;
        int rc = hk_dd_parse(&state, data, len, &d, &err);
        if (rc == 0) {
            check(&d);
        } else {
            if ((rc != HK_EINVAL && rc != HK_ESTATE) || !err ||
                memcmp(&before, &state, sizeof state) != 0)
                abort();
        }
        uint8_t copy[256];
        memcpy(copy, data, len);
        if (hk_dd_set_frame_number(copy, len, 0x1234) != (len < 3 ? HK_EINVAL : 0))
            abort();
        data += len;
        size -= len;
    }
    return 0;
}

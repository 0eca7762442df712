#include "server/proto/keyframe.h"

#include <string.h>

void hk_keyframe_schedule_trigger(hk_keyframe_schedule_t *s, uint64_t now_ms)
{
    if (!s->active || s->sent > 0) {
        s->active = true;
        s->sent = 0;
        s->burst_start_ms = now_ms;
        s->first_request_ms = 0;
        s->due_ms = now_ms + HK_KEYFRAME_AFTER_KEY_DELAY_MS;
        return;
    }
    uint64_t due = now_ms + HK_KEYFRAME_AFTER_KEY_DELAY_MS;
    uint64_t latest = s->burst_start_ms + HK_KEYFRAME_AFTER_KEY_MAX_WAIT_MS;
    s->due_ms = due < latest ? due : latest;
}

bool hk_keyframe_schedule_due(const hk_keyframe_schedule_t *s, uint64_t now_ms)
{
    return s->active && now_ms >= s->due_ms;
}

void hk_keyframe_schedule_sent(hk_keyframe_schedule_t *s, uint64_t now_ms)
{
    if (!s->active)
        return;
    if (s->sent == 0)
        s->first_request_ms = now_ms;
    s->sent++;
    if (s->sent >= HK_KEYFRAME_AFTER_KEY_REQUESTS) {
        hk_keyframe_schedule_cancel(s);
        return;
    }
    s->due_ms = s->first_request_ms + (s->sent == 1 ? HK_KEYFRAME_AFTER_KEY_REPEAT_1_MS
                                                    : HK_KEYFRAME_AFTER_KEY_REPEAT_2_MS);
}

void hk_keyframe_schedule_cancel(hk_keyframe_schedule_t *s)
{
    memset(s, 0, sizeof *s);
}

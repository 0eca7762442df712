/* Key frames after E2EE key deliveries (docs/protocol.md §3.4).
 *
 * A Sora Gen-2 receiver can decrypt a sender's frames only once it has installed that
 * sender's key; a key frame that arrives earlier is replaced by a 160x90 black frame, the
 * frames after it fail too, and the SDK never asks for another key frame. The server
 * relays every key message, so it knows when a key went out: for each publisher it keeps
 * this schedule of key-frame requests, started by each key message the publisher sends
 * or receives (a message to it may be the acknowledgement that its own key arrived).
 *
 * Timeline of one schedule (t = the first key message of a burst):
 *   first request: DELAY after the burst's last message, at most MAX_WAIT after t;
 *   then two more: REPEAT_1 and REPEAT_2 after the first request.
 * A message that arrives while the first request is pending postpones it (within
 * MAX_WAIT); one that arrives after it starts a new schedule.
 *
 * Pure: driven by the caller's clock, no I/O. The caller sends the request (and may hold
 * it back, e.g. until the publisher's video flows) and then calls _sent.
 *
 * SPACING: a due request waits until this long after the last key-frame request the
 * publisher was sent for any reason. libwebrtc ignores a request that arrives within
 * 300 ms of the last one it acted on (EncoderRtcpFeedback, kMinKeyframeSendIntervalMs),
 * and the key frame that earlier request produced may have preceded the key. */
#ifndef HK_KEYFRAME_H
#define HK_KEYFRAME_H

#include <stdbool.h>
#include <stdint.h>

#define HK_KEYFRAME_AFTER_KEY_DELAY_MS    100
#define HK_KEYFRAME_AFTER_KEY_MAX_WAIT_MS 500
#define HK_KEYFRAME_AFTER_KEY_REPEAT_1_MS 1000
#define HK_KEYFRAME_AFTER_KEY_REPEAT_2_MS 3000
#define HK_KEYFRAME_AFTER_KEY_REQUESTS    3
#define HK_KEYFRAME_AFTER_KEY_SPACING_MS  400

/* Zero-initialised: idle. */
typedef struct {
    bool active;
    uint8_t sent;              /* requests sent in this schedule */
    uint64_t burst_start_ms;   /* first key message of the current burst */
    uint64_t first_request_ms; /* when the first request went out */
    uint64_t due_ms;           /* when the next request is due */
} hk_keyframe_schedule_t;

/* A key message from or to the publisher was relayed at now_ms. */
void hk_keyframe_schedule_trigger(hk_keyframe_schedule_t *s, uint64_t now_ms);

/* True when a request is due at now_ms. */
bool hk_keyframe_schedule_due(const hk_keyframe_schedule_t *s, uint64_t now_ms);

/* The due request was sent at now_ms: schedules the next, or ends the schedule. */
void hk_keyframe_schedule_sent(hk_keyframe_schedule_t *s, uint64_t now_ms);

/* Ends the schedule (the publisher has no video). */
void hk_keyframe_schedule_cancel(hk_keyframe_schedule_t *s);

#endif

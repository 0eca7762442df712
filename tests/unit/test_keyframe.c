/* The key-frame schedule after E2EE key deliveries (server/proto/keyframe.h): debounce of a
 * burst, its bound, the two repeats, restarts, and holding a due request back. */
#include "server/proto/keyframe.h"
#include "tests/unit/unit.h"

#define DELAY    HK_KEYFRAME_AFTER_KEY_DELAY_MS
#define MAX_WAIT HK_KEYFRAME_AFTER_KEY_MAX_WAIT_MS
#define REPEAT_1 HK_KEYFRAME_AFTER_KEY_REPEAT_1_MS
#define REPEAT_2 HK_KEYFRAME_AFTER_KEY_REPEAT_2_MS

/* The times at which requests go out when the caller sends each as soon as it is due,
 * polling every tick_ms from start to end. Returns how many were written. */
static int run(hk_keyframe_schedule_t *s, uint64_t start, uint64_t end, uint64_t tick_ms,
               uint64_t *out, int cap)
{
    int n = 0;
    for (uint64_t now = start; now <= end; now += tick_ms) {
        if (hk_keyframe_schedule_due(s, now)) {
            CHECK(n < cap);
            out[n++] = now;
            hk_keyframe_schedule_sent(s, now);
        }
    }
    return n;
}

TEST(keyframe_schedule_idle)
{
    hk_keyframe_schedule_t s = {0};
    CHECK(!hk_keyframe_schedule_due(&s, 0));
    CHECK(!hk_keyframe_schedule_due(&s, UINT64_MAX));
    hk_keyframe_schedule_sent(&s, 5); /* nothing to do */
    CHECK(!s.active);
}

TEST(keyframe_schedule_one_message)
{
    hk_keyframe_schedule_t s = {0};
    hk_keyframe_schedule_trigger(&s, 1000);
    CHECK(!hk_keyframe_schedule_due(&s, 1000));
    CHECK(!hk_keyframe_schedule_due(&s, 1000 + DELAY - 1));
    CHECK(hk_keyframe_schedule_due(&s, 1000 + DELAY));
    uint64_t at[8];
    int n = run(&s, 1000, 10000, 1, at, 8);
    CHECK_INT_EQ(n, HK_KEYFRAME_AFTER_KEY_REQUESTS);
    CHECK_INT_EQ(at[0], 1000 + DELAY);
    CHECK_INT_EQ(at[1], 1000 + DELAY + REPEAT_1);
    CHECK_INT_EQ(at[2], 1000 + DELAY + REPEAT_2);
    CHECK(!s.active);
}

TEST(keyframe_schedule_burst_is_debounced)
{
    /* A PreKey and a Cipher message, then the receiver's reply 60 ms later: one first
     * request, DELAY after the reply. */
    hk_keyframe_schedule_t s = {0};
    hk_keyframe_schedule_trigger(&s, 0);
    hk_keyframe_schedule_trigger(&s, 0);
    hk_keyframe_schedule_trigger(&s, 60);
    CHECK(!hk_keyframe_schedule_due(&s, DELAY));
    CHECK(hk_keyframe_schedule_due(&s, 60 + DELAY));
    uint64_t at[8];
    CHECK_INT_EQ(run(&s, 0, 5000, 1, at, 8), 3);
    CHECK_INT_EQ(at[0], 60 + DELAY);
    CHECK_INT_EQ(at[1], 60 + DELAY + REPEAT_1);
}

TEST(keyframe_schedule_debounce_is_bounded)
{
    /* Messages every 50 ms forever: the first request still goes out MAX_WAIT after the
     * first message. */
    hk_keyframe_schedule_t s = {0};
    for (uint64_t now = 0; now < MAX_WAIT; now += 50) {
        hk_keyframe_schedule_trigger(&s, now);
        CHECK(!hk_keyframe_schedule_due(&s, now));
    }
    hk_keyframe_schedule_trigger(&s, MAX_WAIT - 1);
    CHECK(hk_keyframe_schedule_due(&s, MAX_WAIT));
}

TEST(keyframe_schedule_message_after_first_request_restarts)
{
    hk_keyframe_schedule_t s = {0};
    hk_keyframe_schedule_trigger(&s, 0);
    CHECK(hk_keyframe_schedule_due(&s, DELAY));
    hk_keyframe_schedule_sent(&s, DELAY);
    /* A late acknowledgement 400 ms later: a new first request DELAY after it, and the
     * repeats count from that one. */
    hk_keyframe_schedule_trigger(&s, 500);
    CHECK_INT_EQ(s.sent, 0);
    uint64_t at[8];
    CHECK_INT_EQ(run(&s, 500, 10000, 1, at, 8), 3);
    CHECK_INT_EQ(at[0], 500 + DELAY);
    CHECK_INT_EQ(at[1], 500 + DELAY + REPEAT_1);
    CHECK_INT_EQ(at[2], 500 + DELAY + REPEAT_2);
}

TEST(keyframe_schedule_held_back_request)
{
    /* The caller holds the first request back (the publisher's video is not flowing yet)
     * until 2000: it goes out then, and the repeats count from when it went out. */
    hk_keyframe_schedule_t s = {0};
    hk_keyframe_schedule_trigger(&s, 0);
    for (uint64_t now = DELAY; now < 2000; now += 20)
        CHECK(hk_keyframe_schedule_due(&s, now));
    /* A message meanwhile keeps it due (the bound has passed). */
    hk_keyframe_schedule_trigger(&s, 1500);
    CHECK(hk_keyframe_schedule_due(&s, 1500));
    hk_keyframe_schedule_sent(&s, 2000);
    CHECK(!hk_keyframe_schedule_due(&s, 2000 + REPEAT_1 - 1));
    CHECK(hk_keyframe_schedule_due(&s, 2000 + REPEAT_1));
}

TEST(keyframe_schedule_cancel)
{
    hk_keyframe_schedule_t s = {0};
    hk_keyframe_schedule_trigger(&s, 10);
    hk_keyframe_schedule_cancel(&s);
    CHECK(!hk_keyframe_schedule_due(&s, 10000));
    /* A 20 ms tick (the media tick) and a message at time 0 (a fresh clock) still work. */
    hk_keyframe_schedule_trigger(&s, 0);
    uint64_t at[8];
    CHECK_INT_EQ(run(&s, 0, 10000, 20, at, 8), 3);
    CHECK_INT_EQ(at[0], DELAY);
}

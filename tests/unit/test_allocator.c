#include "server/sfu/allocator.h"
#include "tests/unit/unit.h"

static size_t order[16]; /* hk_allocate's scratch */

/* A simulcast video consumer like Chromium's 720p three-encoding VP8, L1T3 each:
 * r0 (320x180) 60/100/150 kbps, r1 (640x360) 200/320/500, r2 1000/1600/2500. */
static hk_alloc_consumer_t video(uint8_t priority)
{
    hk_alloc_consumer_t c = {0};
    static const uint64_t rates[3][3] = {
        {60000, 100000, 150000}, {200000, 320000, 500000}, {1000000, 1600000, 2500000}};
    for (int s = 0; s < 3; s++)
        for (int t = 0; t < 3; t++)
            c.bitrate[s][t] = rates[s][t];
    c.priority = priority;
    c.max_spatial = 2;
    c.max_temporal = 2;
    c.current_spatial = -1;
    c.current_temporal = -1;
    return c;
}

static hk_alloc_consumer_t audio(void)
{
    hk_alloc_consumer_t c = {0};
    c.single = true;
    c.bitrate[0][0] = 40000;
    c.current_spatial = -1;
    return c;
}

#define LAYER(r, s, t) ((r).spatial == (s) && (r).temporal == (t) && !(r).paused)

TEST(allocator_plenty_gives_everyone_the_top)
{
    hk_alloc_consumer_t c[3] = {audio(), video(1), video(1)};
    hk_alloc_result_t r[3];
    CHECK_INT_EQ(hk_allocate(100000000, 100000000, c, 3, r, order), 40000 + 2 * 2500000);
    CHECK(!r[0].paused);
    CHECK_INT_EQ(r[0].bitrate, 40000);
    CHECK(LAYER(r[1], 2, 2));
    CHECK(LAYER(r[2], 2, 2));
    /* Caps: a subscriber that asked for r1 (simulcast_rid) at 15 fps. */
    c[2].max_spatial = 1;
    c[2].max_temporal = 1;
    hk_allocate(100000000, 100000000, c, 3, r, order);
    CHECK(LAYER(r[2], 1, 1));
    CHECK_INT_EQ(r[2].bitrate, 320000);
}

TEST(allocator_lowest_first_then_upgrades_by_priority)
{
    /* 1 Mbit/s for audio and three videos: everyone gets r0, then the rounds climb. */
    hk_alloc_consumer_t c[4] = {video(1), video(3), audio(), video(2)};
    hk_alloc_result_t r[4];
    int64_t total = hk_allocate(1000000, 1000000, c, 4, r, order);
    CHECK(total <= 1000000);
    for (int i = 0; i < 4; i++)
        CHECK(!r[i].paused);
    /* Round-robin steps in priority order 3, 2, 1; the highest priority is never below
     * a lower one. */
    CHECK(r[1].bitrate >= r[3].bitrate);
    CHECK(r[3].bitrate >= r[0].bitrate);
    CHECK(r[0].bitrate >= 60000);
    /* Nothing left that one more step would fit in (with the margin). */
    uint64_t left = 1000000 - (uint64_t)total;
    CHECK(left < 200000 * 115 / 100);

    /* With budget for one upgrade beyond everyone's r0 T2, priority 3 gets it: moving
     * from r0 (150k) to r1 (200k) costs 50k, and needs 230k - 150k = 80k with the margin;
     * 100k leaves 50k, short of the next one's 80k. */
    uint64_t base = 40000 + 3 * 150000;
    total = hk_allocate(base + 100000, base + 100000, c, 4, r, order);
    CHECK_INT_EQ(total, base + 50000);
    CHECK(LAYER(r[1], 1, 0));
    CHECK(LAYER(r[3], 0, 2));
    CHECK(LAYER(r[0], 0, 2));
}

TEST(allocator_pauses_when_lowest_does_not_fit_and_never_starves_audio)
{
    hk_alloc_consumer_t c[3] = {audio(), video(1), video(2)};
    hk_alloc_result_t r[3];
    /* 150 kbit/s: audio 40k, then only one r0 (60k, 69k with the margin to unpause). */
    CHECK_INT_EQ(hk_allocate(150000, 150000, c, 3, r, order), 40000 + 60000);
    CHECK(!r[0].paused);
    CHECK(LAYER(r[2], 0, 0)); /* the higher priority */
    CHECK(r[1].paused);
    CHECK_INT_EQ(r[1].bitrate, 0);
    /* Nothing at all: audio still gets its rate, all video paused. */
    CHECK_INT_EQ(hk_allocate(1000, 1000, c, 3, r, order), 40000);
    CHECK(!r[0].paused && r[0].bitrate == 40000);
    CHECK(r[1].paused && r[2].paused);
    /* A consumer with no layer available (publisher sent nothing yet) is paused. */
    hk_alloc_consumer_t none = video(5);
    memset(none.bitrate, 0, sizeof none.bitrate);
    CHECK_INT_EQ(hk_allocate(10000000, 10000000, &none, 1, r, order), 0);
    CHECK(r[0].paused);
}

TEST(allocator_hysteresis)
{
    hk_alloc_consumer_t c = video(1);
    hk_alloc_result_t r;
    /* Exactly r1 T2's rate: a consumer already there keeps it ... */
    c.current_spatial = 1;
    c.current_temporal = 2;
    hk_allocate(500000, 500000, &c, 1, &r, order);
    CHECK(LAYER(r, 1, 2));
    /* ... one below does not move up to it (needs 15 % more) ... */
    c.current_temporal = 1;
    hk_allocate(500000, 500000, &c, 1, &r, order);
    CHECK(LAYER(r, 1, 1));
    hk_allocate(500000 * 115 / 100, 500000 * 115 / 100, &c, 1, &r, order);
    CHECK(LAYER(r, 1, 2));
    /* ... and one above it goes down without margin. */
    c.current_spatial = 2;
    c.current_temporal = 0;
    hk_allocate(999999, 999999, &c, 1, &r, order);
    CHECK(LAYER(r, 1, 2));
    /* Unpausing needs the margin too; staying on the lowest does not. */
    c.current_spatial = -1;
    hk_allocate(65000, 65000, &c, 1, &r, order);
    CHECK(r.paused);
    c.current_spatial = 0;
    c.current_temporal = 0;
    hk_allocate(65000, 65000, &c, 1, &r, order);
    CHECK(LAYER(r, 0, 0));
    /* A skipped layer (r1 inactive): the ladder goes from r0 to r2. */
    hk_alloc_consumer_t g = video(1);
    for (int t = 0; t < 3; t++)
        g.bitrate[1][t] = 0;
    hk_allocate(1200000, 1200000, &g, 1, &r, order);
    CHECK(LAYER(r, 2, 0));
}

TEST(allocator_keeps_current_lowest_layers_within_the_whole_estimate)
{
    /* Three streams at r0 T2 (150 kbps each): with 500 kbps to keep them but only 400
     * within the reserve, all three stay (a new or paused one would not start). */
    hk_alloc_consumer_t c[3] = {video(1), video(1), video(1)};
    for (int i = 0; i < 3; i++) {
        for (int t = 0; t < 2; t++)
            c[i].bitrate[0][t] = 0; /* r0 T2 is each one's lowest here */
        c[i].current_spatial = 0;
        c[i].current_temporal = 2;
        c[i].max_spatial = 0; /* no upgrades until the last case */
    }
    hk_alloc_result_t r[3];
    CHECK_INT_EQ(hk_allocate(500000, 400000, c, 3, r, order), 450000);
    for (int i = 0; i < 3; i++)
        CHECK(LAYER(r[i], 0, 2));
    /* Under the sum of what they keep, the last in order is paused. */
    hk_allocate(449999, 400000, c, 3, r, order);
    CHECK(LAYER(r[0], 0, 2) && LAYER(r[1], 0, 2) && r[2].paused);
    /* Paused (or new) streams need room within the budget, with the margin. */
    c[2].current_spatial = c[2].current_temporal = -1;
    hk_allocate(500000, 400000, c, 3, r, order);
    CHECK(LAYER(r[0], 0, 2) && LAYER(r[1], 0, 2) && r[2].paused);
    hk_allocate(500000, 300000 + 172500, c, 3, r, order);
    CHECK(LAYER(r[2], 0, 2));
    /* Nothing is left for upgrades: the budget went to what is kept. */
    c[0].max_spatial = 2;
    c[2].current_spatial = 0;
    c[2].current_temporal = 2;
    hk_allocate(10000000, 450000, c, 3, r, order);
    CHECK(LAYER(r[0], 0, 2) && LAYER(r[1], 0, 2) && LAYER(r[2], 0, 2));
}

/* With every temporal step of r0: three streams receiving r0 T2 (150 kbps each) keep T2
 * within the whole estimate (450 kbps), though the budget alone would give them less
 * after their base layers; one receiving r0 T1 keeps T1 and moves up only within the
 * budget; a dip below what they keep takes the last in order down a temporal layer, not
 * to a pause. */
TEST(allocator_keeps_current_temporal_layers_within_the_whole_estimate)
{
    hk_alloc_consumer_t c[3] = {video(1), video(1), video(1)};
    for (int i = 0; i < 3; i++) {
        c[i].current_spatial = 0;
        c[i].current_temporal = 2;
        c[i].max_spatial = 0;
    }
    hk_alloc_result_t r[3];
    CHECK_INT_EQ(hk_allocate(450000, 360000, c, 3, r, order), 450000);
    for (int i = 0; i < 3; i++)
        CHECK(LAYER(r[i], 0, 2));
    c[2].current_temporal = 1;
    hk_allocate(450000, 360000, c, 3, r, order);
    CHECK(LAYER(r[0], 0, 2) && LAYER(r[1], 0, 2) && LAYER(r[2], 0, 1));
    c[2].current_temporal = 2;
    hk_allocate(420000, 360000, c, 3, r, order);
    CHECK(LAYER(r[0], 0, 2) && LAYER(r[1], 0, 2) && LAYER(r[2], 0, 1));
    /* Without a current layer, all start from their base layers within the budget. */
    for (int i = 0; i < 3; i++)
        c[i].current_spatial = c[i].current_temporal = -1;
    hk_allocate(450000, 360000, c, 3, r, order);
    CHECK(!r[0].paused && !r[1].paused && !r[2].paused);
    CHECK(r[0].temporal + r[1].temporal + r[2].temporal < 6);
}

/* A ladder as the endpoint builds it (every temporal step of r0, upper layers at full
 * frame rate only); one stream at r0 T2, two at r0 T1, and 800 kbps: the two get T2
 * before the first moves up to r1 (+425 kbps with the margin), which would otherwise have
 * gone first in its round and left the last one at T1. */
TEST(allocator_frame_rates_before_larger_pictures)
{
    hk_alloc_consumer_t c[3] = {video(1), video(1), video(1)};
    for (int i = 0; i < 3; i++) {
        for (int s = 1; s < 3; s++)
            c[i].bitrate[s][0] = c[i].bitrate[s][1] = 0;
        c[i].current_spatial = 0;
        c[i].current_temporal = i == 0 ? 2 : 1;
    }
    hk_alloc_result_t r[3];
    CHECK_INT_EQ(hk_allocate(800000, 800000, c, 3, r, order), 450000);
    for (int i = 0; i < 3; i++)
        CHECK(LAYER(r[i], 0, 2));
    /* With room for both, the upgrade follows. */
    hk_allocate(1000000, 1000000, c, 3, r, order);
    CHECK(LAYER(r[0], 1, 2) && LAYER(r[1], 0, 2) && LAYER(r[2], 0, 2));
}

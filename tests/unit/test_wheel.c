/* common/wheel: deadlines fire once, in order, not early; cancel and reschedule; far
 * deadlines wait for their turn; a stalled clock fires everything due. */
#include "common/wheel.h"
#include "tests/unit/unit.h"

typedef struct {
    hk_wheel_entry_t entry;
    int id;
    int fired;
    uint64_t fired_at;
} item_t;

static int order[64];
static int n_order;

static void record(hk_wheel_entry_t *e, void *arg, uint64_t now_ms)
{
    (void)arg;
    item_t *it = (item_t *)e;
    it->fired++;
    it->fired_at = now_ms;
    if (n_order < 64)
        order[n_order++] = it->id;
}

TEST(wheel_fires_due_entries_in_order_and_never_early)
{
    static hk_wheel_t w;
    hk_wheel_init(&w);
    item_t a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    n_order = 0;
    hk_wheel_schedule(&w, &c.entry, 1000 + 300);
    hk_wheel_schedule(&w, &a.entry, 1000 + 20);
    hk_wheel_schedule(&w, &b.entry, 1000 + 100);
    CHECK_INT_EQ((int)w.count, 3);
    CHECK_INT_EQ(hk_wheel_advance(&w, 1000 + 19, record, NULL), 0);
    CHECK_INT_EQ(hk_wheel_advance(&w, 1000 + 25, record, NULL), 1);
    CHECK_INT_EQ(a.fired, 1);
    CHECK(a.fired_at >= 1020);
    CHECK_INT_EQ(hk_wheel_advance(&w, 1000 + 250, record, NULL), 1);
    CHECK_INT_EQ(b.fired, 1);
    CHECK_INT_EQ(c.fired, 0);
    CHECK_INT_EQ(hk_wheel_advance(&w, 1000 + 400, record, NULL), 1);
    CHECK_INT_EQ(n_order, 3);
    CHECK_INT_EQ(order[0], 1);
    CHECK_INT_EQ(order[1], 2);
    CHECK_INT_EQ(order[2], 3);
    CHECK_INT_EQ((int)w.count, 0);
    /* Nothing fires twice. */
    CHECK_INT_EQ(hk_wheel_advance(&w, 5000, record, NULL), 0);
}

TEST(wheel_cancel_and_reschedule)
{
    static hk_wheel_t w;
    hk_wheel_init(&w);
    item_t a = {.id = 1}, b = {.id = 2};
    n_order = 0;
    hk_wheel_schedule(&w, &a.entry, 100);
    hk_wheel_schedule(&w, &b.entry, 100);
    hk_wheel_cancel(&w, &a.entry);
    hk_wheel_cancel(&w, &a.entry);        /* twice is harmless */
    hk_wheel_schedule(&w, &b.entry, 500); /* moved later */
    CHECK_INT_EQ(hk_wheel_advance(&w, 200, record, NULL), 0);
    CHECK_INT_EQ(hk_wheel_advance(&w, 500, record, NULL), 1);
    CHECK_INT_EQ(b.fired, 1);
    CHECK_INT_EQ(a.fired, 0);
}

/* A deadline more than one turn away passes its slot on earlier turns without firing. */
TEST(wheel_far_deadline_waits_for_its_turn)
{
    static hk_wheel_t w;
    hk_wheel_init(&w);
    item_t near = {.id = 1}, far = {.id = 2};
    uint64_t turn = (uint64_t)HK_WHEEL_SLOTS * HK_WHEEL_TICK_MS;
    hk_wheel_schedule(&w, &near.entry, 0);
    hk_wheel_schedule(&w, &far.entry, 2 * turn + 50);
    for (uint64_t t = 0; t < 2 * turn + 40; t += HK_WHEEL_TICK_MS)
        hk_wheel_advance(&w, t, record, NULL);
    CHECK_INT_EQ(near.fired, 1);
    CHECK_INT_EQ(far.fired, 0);
    hk_wheel_advance(&w, 2 * turn + 60, record, NULL);
    CHECK_INT_EQ(far.fired, 1);
    CHECK(far.fired_at >= 2 * turn + 50);
}

/* An entry that schedules itself again from its callback fires again later, not in the
 * same advance (no loop); a clock that jumped fires everything that came due once. */
static void again(hk_wheel_entry_t *e, void *arg, uint64_t now_ms)
{
    record(e, arg, now_ms);
    hk_wheel_schedule(arg, e, now_ms); /* due at once: the next advance */
}

TEST(wheel_rescheduling_from_callback_and_stalls)
{
    static hk_wheel_t w;
    hk_wheel_init(&w);
    item_t a = {.id = 1};
    hk_wheel_schedule(&w, &a.entry, 10);
    CHECK_INT_EQ(hk_wheel_advance(&w, 10, again, &w), 1);
    CHECK_INT_EQ(a.fired, 1);
    CHECK_INT_EQ(hk_wheel_advance(&w, 10, again, &w), 0); /* not again in the same tick */
    CHECK_INT_EQ(hk_wheel_advance(&w, 20, again, &w), 1);
    CHECK_INT_EQ(a.fired, 2);
    hk_wheel_cancel(&w, &a.entry);

    item_t many[40];
    for (int i = 0; i < 40; i++) {
        many[i] = (item_t){.id = i};
        hk_wheel_schedule(&w, &many[i].entry, 100 + (uint64_t)i * 1000);
    }
    /* One minute later at once: every one fires, each exactly once. */
    CHECK_INT_EQ(hk_wheel_advance(&w, 60000, record, NULL), 40);
    for (int i = 0; i < 40; i++)
        CHECK_INT_EQ(many[i].fired, 1);
    CHECK_INT_EQ((int)w.count, 0);
}

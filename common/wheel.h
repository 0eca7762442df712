/* A timer wheel: deadlines in milliseconds, HK_WHEEL_SLOTS slots of HK_WHEEL_TICK_MS.
 * Scheduling, cancelling and firing cost O(1) per entry; advancing visits only the
 * slots whose time came. A deadline further away than one turn waits in its slot and
 * is skipped (not fired) on the turns before its own.
 * Entries are embedded in their owner (no allocation); one wheel per thread. */
#ifndef HK_WHEEL_H
#define HK_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define HK_WHEEL_TICK_MS 20
#define HK_WHEEL_SLOTS   512 /* one turn: 10.24 s */

typedef struct hk_wheel_entry_s {
    struct hk_wheel_entry_s *next, *prev;
    uint64_t deadline_ms;
    bool scheduled;
} hk_wheel_entry_t;

typedef struct {
    hk_wheel_entry_t slots[HK_WHEEL_SLOTS]; /* list heads */
    uint64_t tick; /* the next tick to fire; starts at 0 (the first advance catches up
                      with one turn at most) */
    uint64_t count;
} hk_wheel_t;

typedef void (*hk_wheel_fn)(hk_wheel_entry_t *entry, void *arg, uint64_t now_ms);

void hk_wheel_init(hk_wheel_t *wheel);

/* (Re)schedules entry at deadline_ms; a deadline already past fires at the next tick. */
void hk_wheel_schedule(hk_wheel_t *wheel, hk_wheel_entry_t *entry, uint64_t deadline_ms);

void hk_wheel_cancel(hk_wheel_t *wheel, hk_wheel_entry_t *entry);

/* Fires, in deadline-slot order, every entry whose deadline is <= now_ms. An entry is
 * unscheduled before fn is called; fn may schedule it (or any other) again. Returns the
 * number fired. */
int hk_wheel_advance(hk_wheel_t *wheel, uint64_t now_ms, hk_wheel_fn fn, void *arg);

#endif

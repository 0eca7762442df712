#include "common/wheel.h"

#include <string.h>

void hk_wheel_init(hk_wheel_t *wheel)
{
    memset(wheel, 0, sizeof *wheel);
    for (int i = 0; i < HK_WHEEL_SLOTS; i++)
        wheel->slots[i].next = wheel->slots[i].prev = &wheel->slots[i];
}

void hk_wheel_cancel(hk_wheel_t *wheel, hk_wheel_entry_t *entry)
{
    if (!entry->scheduled)
        return;
    entry->prev->next = entry->next;
    entry->next->prev = entry->prev;
    entry->next = entry->prev = NULL;
    entry->scheduled = false;
    wheel->count--;
}

void hk_wheel_schedule(hk_wheel_t *wheel, hk_wheel_entry_t *entry, uint64_t deadline_ms)
{
    hk_wheel_cancel(wheel, entry);
    uint64_t tick = deadline_ms / HK_WHEEL_TICK_MS;
    if (tick < wheel->tick)
        tick = wheel->tick; /* already due: the next advance fires it */
    hk_wheel_entry_t *head = &wheel->slots[tick % HK_WHEEL_SLOTS];
    entry->deadline_ms = deadline_ms;
    entry->next = head;
    entry->prev = head->prev;
    head->prev->next = entry;
    head->prev = entry;
    entry->scheduled = true;
    wheel->count++;
}

int hk_wheel_advance(hk_wheel_t *wheel, uint64_t now_ms, hk_wheel_fn fn, void *arg)
{
    uint64_t now_tick = now_ms / HK_WHEEL_TICK_MS;
    int fired = 0;
    /* After a long stall, one turn visits every slot once. */
    if (now_tick >= wheel->tick + HK_WHEEL_SLOTS)
        wheel->tick = now_tick - HK_WHEEL_SLOTS + 1;
    while (wheel->tick <= now_tick) {
        /* The tick moves on first: what fn schedules for now goes to the next one. */
        uint64_t tick = wheel->tick++;
        hk_wheel_entry_t *head = &wheel->slots[tick % HK_WHEEL_SLOTS];
        /* Detach the list first: fn may schedule into any slot. */
        hk_wheel_entry_t pending = {.next = head->next, .prev = head->prev};
        if (head->next == head)
            continue;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head->next = head->prev = head;
        while (pending.next != &pending) {
            hk_wheel_entry_t *e = pending.next;
            e->prev->next = e->next;
            e->next->prev = e->prev;
            if (e->deadline_ms / HK_WHEEL_TICK_MS > tick) {
                /* A later turn's: back into its slot. */
                e->next = head;
                e->prev = head->prev;
                head->prev->next = e;
                head->prev = e;
                continue;
            }
            e->next = e->prev = NULL;
            e->scheduled = false;
            wheel->count--;
            fn(e, arg, now_ms);
            fired++;
        }
    }
    return fired;
}

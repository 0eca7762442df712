#include "common/map.h"

#include <stdlib.h>

#include "common/error.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void hk_map_free(hk_map_t *map)
{
    free(map->slots);
    map->slots = NULL;
    map->cap = map->count = 0;
}

void *hk_map_get(const hk_map_t *map, uint64_t key)
{
    if (map->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, map->cap);; i = (i + 1) & (map->cap - 1)) {
        const hk_map_slot_t *s = &map->slots[i];
        if (!s->value)
            return NULL;
        if (s->key == key)
            return s->value;
    }
}

static void insert(hk_map_slot_t *slots, size_t cap, uint64_t key, void *value)
{
    size_t i = slot_of(key, cap);
    while (slots[i].value && slots[i].key != key)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].value = value;
}

int hk_map_put(hk_map_t *map, uint64_t key, void *value)
{
    if (hk_map_get(map, key)) {
        insert(map->slots, map->cap, key, value);
        return 0;
    }
    if ((map->count + 1) * 2 > map->cap) {
        size_t cap = map->cap ? map->cap * 2 : 16;
        hk_map_slot_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return HK_ENOMEM;
        for (size_t i = 0; i < map->cap; i++)
            if (map->slots[i].value)
                insert(slots, cap, map->slots[i].key, map->slots[i].value);
        free(map->slots);
        map->slots = slots;
        map->cap = cap;
    }
    insert(map->slots, map->cap, key, value);
    map->count++;
    return 0;
}

void *hk_map_remove(hk_map_t *map, uint64_t key)
{
    if (map->cap == 0)
        return NULL;
    size_t mask = map->cap - 1;
    size_t i = slot_of(key, map->cap);
    while (map->slots[i].value && map->slots[i].key != key)
        i = (i + 1) & mask;
    if (!map->slots[i].value)
        return NULL;
    void *old = map->slots[i].value;
    /* Backward-shift: move later members of the cluster into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; map->slots[j].value; j = (j + 1) & mask) {
        size_t home = slot_of(map->slots[j].key, map->cap);
        /* j may move to hole when its home is not in (hole, j] cyclically. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            map->slots[hole] = map->slots[j];
            hole = j;
        }
    }
    map->slots[hole].value = NULL;
    map->count--;
    return old;
}

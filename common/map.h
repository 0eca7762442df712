/* A hash map from 64-bit keys to pointers (open addressing, linear probing, backward-
 * shift deletion). Grows on insert (never on lookup), so the packet path only reads. */
#ifndef HK_MAP_H
#define HK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key;
    void *value; /* NULL = empty slot */
} hk_map_slot_t;

typedef struct {
    hk_map_slot_t *slots;
    size_t cap; /* power of two, 0 when empty */
    size_t count;
} hk_map_t;

/* An empty map needs no allocation: zero-initialise it. */
void hk_map_free(hk_map_t *map);

/* Returns the value for key or NULL. */
void *hk_map_get(const hk_map_t *map, uint64_t key);

/* Sets key to value (value must not be NULL). Returns 0 or HK_ENOMEM. */
int hk_map_put(hk_map_t *map, uint64_t key, void *value);

/* Removes key; returns the old value or NULL. */
void *hk_map_remove(hk_map_t *map, uint64_t key);

#endif

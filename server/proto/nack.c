/* Retransmission cache and uplink loss tracker (RFC 4585 §6.2.1, RFC 4588). */
#include "server/proto/nack.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

typedef struct {
    bool used;
    uint16_t seq;
    uint16_t len;
    uint64_t arrival_ms;
    uint8_t data[HK_NACK_PACKET_MAX];
} slot_t;

struct hk_nack_cache_s {
    size_t mask;
    slot_t *slots;
};

hk_nack_cache_t *hk_nack_cache_create(size_t slots)
{
    if (slots == 0 || slots > 32768 || (slots & (slots - 1)) != 0)
        return NULL;
    hk_nack_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = calloc(slots, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->mask = slots - 1;
    return c;
}

void hk_nack_cache_destroy(hk_nack_cache_t *cache)
{
    if (!cache)
        return;
    free(cache->slots);
    free(cache);
}

int hk_nack_cache_put(hk_nack_cache_t *cache, uint16_t seq, const uint8_t *buf, size_t len,
                      uint64_t now_ms)
{
    if (len == 0 || len > HK_NACK_PACKET_MAX)
        return HK_EINVAL;
    slot_t *s = &cache->slots[seq & cache->mask];
    if (s->used && s->seq != seq) {
        uint16_t behind = (uint16_t)(s->seq - seq);
        if (behind <= HK_NACK_MAX_JUMP)
            return HK_ERANGE;
    }
    s->used = true;
    s->seq = seq;
    s->len = (uint16_t)len;
    s->arrival_ms = now_ms;
    memcpy(s->data, buf, len);
    return 0;
}

int hk_nack_cache_get(const hk_nack_cache_t *cache, uint16_t seq, uint64_t now_ms,
                      uint64_t max_age_ms, const uint8_t **buf, size_t *len)
{
    const slot_t *s = &cache->slots[seq & cache->mask];
    if (!s->used || s->seq != seq)
        return HK_ENOENT;
    if (now_ms > s->arrival_ms && now_ms - s->arrival_ms > max_age_ms)
        return HK_ENOENT;
    *buf = s->data;
    *len = s->len;
    return 0;
}

void hk_nack_tracker_init(hk_nack_tracker_t *t, const hk_nack_tracker_config_t *config)
{
    memset(t, 0, sizeof *t);
    t->config = *config;
}

static void restart(hk_nack_tracker_t *t, uint16_t seq)
{
    t->started = 1;
    t->highest = seq;
    t->n_missing = 0;
}

/* Appends seq .. seq + count - 1 (count <= HK_NACK_MAX_MISSING), forgetting the
 * oldest entries when the list would overflow. */
static void add_missing(hk_nack_tracker_t *t, uint16_t seq, size_t count, uint64_t now_ms)
{
    if (t->n_missing + count > HK_NACK_MAX_MISSING) {
        size_t drop = t->n_missing + count - HK_NACK_MAX_MISSING;
        memmove(t->missing, t->missing + drop, (t->n_missing - drop) * sizeof t->missing[0]);
        t->n_missing -= drop;
    }
    for (size_t i = 0; i < count; i++)
        t->missing[t->n_missing++] =
            (hk_nack_missing_t){.seq = (uint16_t)(seq + i), .detected_ms = now_ms};
}

void hk_nack_tracker_received(hk_nack_tracker_t *t, uint16_t seq, uint64_t now_ms)
{
    if (!t->started) {
        restart(t, seq);
        return;
    }
    uint16_t ahead = (uint16_t)(seq - t->highest);
    if (ahead == 0)
        return;
    if (ahead < 0x8000) {
        if (ahead > HK_NACK_MAX_JUMP) {
            t->resets++;
            restart(t, seq);
            return;
        }
        /* Only the newest HK_NACK_MAX_MISSING of the gap can be kept. */
        size_t gap = (size_t)ahead - 1;
        if (gap > HK_NACK_MAX_MISSING)
            gap = HK_NACK_MAX_MISSING;
        add_missing(t, (uint16_t)(seq - gap), gap, now_ms);
        t->highest = seq;
        return;
    }
    uint16_t behind = (uint16_t)(t->highest - seq);
    if (behind > HK_NACK_MAX_JUMP) {
        t->resets++;
        restart(t, seq);
        return;
    }
    for (size_t i = 0; i < t->n_missing; i++) {
        if (t->missing[i].seq == seq) {
            memmove(t->missing + i, t->missing + i + 1,
                    (t->n_missing - i - 1) * sizeof t->missing[0]);
            t->n_missing--;
            return;
        }
    }
}

size_t hk_nack_tracker_collect(hk_nack_tracker_t *t, uint64_t now_ms, uint16_t *out, size_t max)
{
    size_t n = 0, kept = 0;
    for (size_t i = 0; i < t->n_missing; i++) {
        hk_nack_missing_t m = t->missing[i];
        bool expired = m.retries >= t->config.max_retries ||
                       (now_ms > m.detected_ms && now_ms - m.detected_ms > t->config.max_age_ms);
        if (expired)
            continue;
        bool due = m.retries == 0 || (now_ms >= m.last_sent_ms &&
                                      now_ms - m.last_sent_ms >= t->config.retry_interval_ms);
        if (due && n < max) {
            out[n++] = m.seq;
            m.retries++;
            m.last_sent_ms = now_ms;
        }
        t->missing[kept++] = m;
    }
    t->n_missing = kept;
    return n;
}

size_t hk_nack_tracker_missing(const hk_nack_tracker_t *t)
{
    return t->n_missing;
}

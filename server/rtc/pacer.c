#include "server/rtc/pacer.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"

#define MICROBITS_PER_BYTE 8000000
#define BURST_MIN_BYTES    1500 /* after an idle time, at least a full packet at once */

const uint32_t hk_pacer_delay_bounds_us[HK_PACER_DELAY_BUCKETS - 1] = {
    1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000};

typedef struct slab_s {
    struct slab_s *next;
    hk_pacer_entry_t entries[HK_PACER_SLAB];
} slab_t;

void hk_pacer_pool_init(hk_pacer_pool_t *pool, size_t max_entries)
{
    *pool = (hk_pacer_pool_t){0};
    pool->max_entries = max_entries > HK_PACER_SLAB ? max_entries : HK_PACER_SLAB;
}

void hk_pacer_pool_free(hk_pacer_pool_t *pool)
{
    for (slab_t *s = pool->slabs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    pool->slabs = NULL;
    pool->free = NULL;
    pool->entries = 0;
    pool->used = 0;
}

/* A free entry, a new slab's when none is left and the ceiling allows; NULL otherwise. */
static hk_pacer_entry_t *take(hk_pacer_pool_t *pool)
{
    if (!pool->free) {
        slab_t *s = pool->entries + HK_PACER_SLAB <= pool->max_entries ? malloc(sizeof *s) : NULL;
        if (!s)
            return NULL;
        s->next = pool->slabs;
        pool->slabs = s;
        for (int i = HK_PACER_SLAB - 1; i >= 0; i--) {
            s->entries[i].next = pool->free;
            pool->free = &s->entries[i];
        }
        pool->entries += HK_PACER_SLAB;
    }
    hk_pacer_entry_t *e = pool->free;
    pool->free = e->next;
    pool->used++;
    return e;
}

static void give_back(hk_pacer_pool_t *pool, hk_pacer_entry_t *e)
{
    e->next = pool->free;
    pool->free = e;
    pool->used--;
}

void hk_pacer_init(hk_pacer_t *p, hk_pacer_pool_t *pool, uint64_t estimate_bps, uint64_t now_us)
{
    *p = (hk_pacer_t){.pool = pool, .last_us = now_us};
    hk_pacer_set_rate(p, estimate_bps);
    p->budget = p->burst;
}

void hk_pacer_set_rate(hk_pacer_t *p, uint64_t estimate_bps)
{
    uint64_t rate = estimate_bps / 100 * HK_PACER_FACTOR_PCT;
    p->rate_bps = rate > HK_PACER_MIN_BPS ? rate : HK_PACER_MIN_BPS;
    int64_t burst = (int64_t)(p->rate_bps * HK_PACER_BURST_US);
    p->burst = burst > (int64_t)BURST_MIN_BYTES * MICROBITS_PER_BYTE
                   ? burst
                   : (int64_t)BURST_MIN_BYTES * MICROBITS_PER_BYTE;
    p->owed = (int64_t)(p->rate_bps * HK_PACER_INTERVAL_US);
    if (p->owed < p->burst)
        p->owed = p->burst;
    uint64_t max_bytes = p->rate_bps * HK_PACER_MAX_QUEUE_US / MICROBITS_PER_BYTE;
    p->max_bytes = max_bytes > HK_PACER_PACKET_MAX ? (size_t)max_bytes : HK_PACER_PACKET_MAX;
}

static hk_pacer_entry_t *unlink_head(hk_pacer_t *p, hk_pacer_fifo_t *q)
{
    hk_pacer_entry_t *e = q->head;
    q->head = e->next;
    if (!q->head)
        q->tail = NULL;
    p->bytes -= e->len;
    p->packets--;
    return e;
}

static void drop_head(hk_pacer_t *p, hk_pacer_fifo_t *q)
{
    give_back(p->pool, unlink_head(p, q));
    p->dropped++;
    p->pool->counters.dropped++;
}

/* The oldest video, or the oldest audio when no video waits. */
static void drop_oldest(hk_pacer_t *p)
{
    drop_head(p, p->video.head ? &p->video : &p->audio);
}

void hk_pacer_clear(hk_pacer_t *p)
{
    while (p->audio.head)
        give_back(p->pool, unlink_head(p, &p->audio));
    while (p->video.head)
        give_back(p->pool, unlink_head(p, &p->video));
    p->pool = NULL;
}

int hk_pacer_push(hk_pacer_t *p, const uint8_t *pkt, size_t len, uint64_t now_us)
{
    hk_pacer_pool_t *pool = p->pool;
    hk_rtp_header_t hdr;
    if (len > HK_PACER_PACKET_MAX || hk_rtp_parse(pkt, len, &hdr, NULL) != 0) {
        p->dropped++;
        pool->counters.dropped++;
        return HK_EINVAL;
    }
    while (p->packets && p->bytes + len > p->max_bytes)
        drop_oldest(p);
    hk_pacer_entry_t *e = take(pool);
    if (!e && p->packets) {
        drop_oldest(p); /* the pool is at its ceiling: this transport's oldest makes room */
        e = take(pool);
    }
    if (!e) {
        p->dropped++;
        pool->counters.dropped++;
        return HK_ENOMEM;
    }
    size_t offset, ext_len;
    bool twcc =
        hk_rtp_ext_find(pkt, &hdr, HK_EXT_TRANSPORT_CC, &offset, &ext_len) == 0 && ext_len == 2;
    e->next = NULL;
    e->queued_us = now_us;
    e->len = (uint16_t)len;
    e->twcc_offset = twcc ? (uint16_t)offset : 0;
    memcpy(e->data, pkt, len);
    hk_pacer_fifo_t *q = hdr.pt == HK_PT_OPUS ? &p->audio : &p->video;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    p->bytes += len;
    p->packets++;
    p->queued++;
    pool->counters.queued++;
    return 0;
}

static hk_pacer_fifo_t *next_fifo(hk_pacer_t *p)
{
    return p->audio.head ? &p->audio : &p->video;
}

const hk_pacer_entry_t *hk_pacer_head(hk_pacer_t *p, uint64_t now_us)
{
    if (!p->packets)
        return NULL;
    hk_pacer_refill(p, now_us);
    hk_pacer_fifo_t *fifos[2] = {&p->audio, &p->video};
    for (int i = 0; i < 2; i++)
        while (fifos[i]->head && now_us - fifos[i]->head->queued_us > HK_PACER_MAX_QUEUE_US)
            drop_head(p, fifos[i]);
    return next_fifo(p)->head;
}

const hk_pacer_entry_t *hk_pacer_due(hk_pacer_t *p, uint64_t now_us)
{
    const hk_pacer_entry_t *e = hk_pacer_head(p, now_us);
    return e && p->budget > 0 ? e : NULL;
}

void hk_pacer_pop(hk_pacer_t *p, uint64_t now_us)
{
    hk_pacer_entry_t *e = unlink_head(p, next_fifo(p));
    uint64_t delay = now_us > e->queued_us ? now_us - e->queued_us : 0;
    if (delay > p->max_delay_us)
        p->max_delay_us = delay;
    hk_pacer_counters_t *c = &p->pool->counters;
    int i = 0;
    while (i < HK_PACER_DELAY_BUCKETS - 1 && delay > hk_pacer_delay_bounds_us[i])
        i++;
    c->delay_bucket[i]++;
    c->delay_count++;
    c->delay_sum_us += delay;
    give_back(p->pool, e);
}

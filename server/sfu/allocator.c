/* Layer allocation within a subscriber's estimate (see allocator.h). */
#include "server/sfu/allocator.h"

/* The bitrate of c's layer (s, t) as a price: layers above the current one carry the
 * upgrade margin. */
static uint64_t price(const hk_alloc_consumer_t *c, unsigned s, unsigned t)
{
    uint64_t rate = c->bitrate[s][t];
    bool above = c->current_spatial < 0 || (int)s > c->current_spatial ||
                 ((int)s == c->current_spatial && (int)t > c->current_temporal);
    if (above)
        rate += rate / 100 * HK_ALLOC_UP_MARGIN_PCT + rate % 100 * HK_ALLOC_UP_MARGIN_PCT / 100;
    return rate;
}

/* The next available layer after (s, t) on c's ladder, within its caps; false at the
 * top. With have == false, the lowest layer. */
static bool next_layer(const hk_alloc_consumer_t *c, bool have, unsigned *s, unsigned *t)
{
    unsigned max_s =
        c->max_spatial < HK_ALLOC_MAX_SPATIAL ? c->max_spatial : HK_ALLOC_MAX_SPATIAL - 1;
    unsigned max_t =
        c->max_temporal < HK_ALLOC_MAX_TEMPORAL ? c->max_temporal : HK_ALLOC_MAX_TEMPORAL - 1;
    unsigned ns = have ? *s : 0, nt = have ? *t + 1 : 0;
    for (; ns <= max_s; ns++, nt = 0) {
        for (; nt <= max_t; nt++) {
            if (c->bitrate[ns][nt]) {
                *s = ns;
                *t = nt;
                return true;
            }
        }
    }
    return false;
}

/* Takes rate off both what is left to keep and what is left to spend. */
static void spend(uint64_t *keep, uint64_t *budget, uint64_t rate)
{
    *keep = *keep > rate ? *keep - rate : 0;
    *budget = *budget > rate ? *budget - rate : 0;
}

uint64_t hk_allocate(uint64_t keep_bps, uint64_t budget_bps, const hk_alloc_consumer_t *consumers,
                     size_t n, hk_alloc_result_t *out, size_t *order)
{
    size_t videos = 0;
    uint64_t keep = keep_bps, budget = budget_bps < keep_bps ? budget_bps : keep_bps, total = 0;

    for (size_t i = 0; i < n; i++) {
        const hk_alloc_consumer_t *c = &consumers[i];
        out[i] = (hk_alloc_result_t){true, 0, 0, 0};
        if (c->single) {
            out[i].paused = false;
            out[i].bitrate = c->bitrate[0][0];
            spend(&keep, &budget, out[i].bitrate);
            total += out[i].bitrate;
            continue;
        }
        /* Insertion by priority, stable. */
        size_t j = videos++;
        while (j > 0 && consumers[order[j - 1]].priority < c->priority) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }

    /* Everyone's lowest layer, in priority order. */
    for (size_t k = 0; k < videos; k++) {
        const hk_alloc_consumer_t *c = &consumers[order[k]];
        hk_alloc_result_t *r = &out[order[k]];
        unsigned s, t;
        if (!next_layer(c, false, &s, &t))
            continue;
        /* Kept (no margin: price is the bitrate) or new (with the margin). */
        uint64_t cost = price(c, s, t);
        if (cost > (c->current_spatial >= 0 ? keep : budget))
            continue;
        /* One that receives the lowest layer keeps its temporal layers within keep too. */
        unsigned ns = s, nt = t;
        while ((int)s == c->current_spatial && next_layer(c, true, &ns, &nt) && ns == s &&
               (int)nt <= c->current_temporal && c->bitrate[ns][nt] <= keep)
            t = nt;
        spend(&keep, &budget, c->bitrate[s][t]);
        *r = (hk_alloc_result_t){false, (uint8_t)s, (uint8_t)t, c->bitrate[s][t]};
    }

    /* Upgrades, one step per consumer per round. The margin is checked, the layer's
     * own bitrate is what is spent. Rounds within each one's spatial layer come first:
     * nobody's frame rate pays for another's larger picture. */
    bool moved = true, spatial = false;
    while (moved || !spatial) {
        if (!moved)
            spatial = true;
        moved = false;
        for (size_t k = 0; k < videos; k++) {
            const hk_alloc_consumer_t *c = &consumers[order[k]];
            hk_alloc_result_t *r = &out[order[k]];
            unsigned s = r->spatial, t = r->temporal;
            if (r->paused || !next_layer(c, true, &s, &t) || (!spatial && s != r->spatial))
                continue;
            uint64_t need = price(c, s, t);
            uint64_t held = r->bitrate;
            if (need > held && need - held > budget)
                continue;
            uint64_t rate = c->bitrate[s][t];
            budget = rate > held ? budget - (rate - held) : budget + (held - rate);
            *r = (hk_alloc_result_t){false, (uint8_t)s, (uint8_t)t, rate};
            moved = true;
        }
    }
    for (size_t k = 0; k < videos; k++)
        total += out[order[k]].bitrate;
    return total;
}

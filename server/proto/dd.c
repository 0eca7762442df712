/* Dependency descriptor (AV1 RTP specification, appendix A.4). */
#include "server/proto/dd.h"

#include <string.h>

#include "common/error.h"

/* A.4.1 mandatory fields, first 3 bytes:
 *
 *  0                   1                   2
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |S|E|  template id  |          frame_number         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * then, when the descriptor is longer, five flags (structure present, active decode
 * targets present, custom dtis, custom fdiffs, custom chains), the structure, the
 * bitmask and the custom fields, bit-packed MSB first, padded with zero bits. */

typedef struct {
    const uint8_t *buf;
    size_t bits;
    size_t pos;
    bool overrun;
} reader_t;

static uint32_t read_bits(reader_t *r, unsigned n)
{
    uint32_t v = 0;
    if (r->overrun || n > r->bits - r->pos || r->pos > r->bits) {
        r->overrun = true;
        return 0;
    }
    for (unsigned i = 0; i < n; i++, r->pos++)
        v = (v << 1) | ((r->buf[r->pos >> 3] >> (7 - (r->pos & 7))) & 1);
    return v;
}

static unsigned bit_width(uint32_t n)
{
    unsigned w = 0;
    while (n) {
        n >>= 1;
        w++;
    }
    return w;
}

/* ns(n): non-symmetric unsigned integer in 0..n-1 (A.4.1), n >= 1. */
static uint32_t read_ns(reader_t *r, uint32_t n)
{
    unsigned w = bit_width(n);
    uint32_t m = (1u << w) - n;
    uint32_t v = read_bits(r, w - 1);
    if (v < m)
        return v;
    return (v << 1) - m + read_bits(r, 1);
}

/* template_layers(): next_layer_idc until 3. */
static int read_layers(reader_t *r, hk_dd_structure_t *s, const char **err)
{
    unsigned spatial = 0, temporal = 0, count = 0;
    s->max_temporal_id = 0;
    for (;;) {
        if (count == HK_DD_MAX_TEMPLATES)
            return hk_fail(err, "dd: more than 64 templates");
        s->templates[count].spatial_id = (uint8_t)spatial;
        s->templates[count].temporal_id = (uint8_t)temporal;
        count++;
        uint32_t idc = read_bits(r, 2);
        if (r->overrun)
            return hk_fail(err, "dd: template layers past the end");
        if (idc == 3)
            break;
        if (idc == 1) {
            if (++temporal > HK_DD_MAX_TEMPORAL_ID)
                return hk_fail(err, "dd: temporal id over 7");
            if (temporal > s->max_temporal_id)
                s->max_temporal_id = (uint8_t)temporal;
        } else if (idc == 2) {
            temporal = 0;
            if (++spatial > HK_DD_MAX_SPATIAL_ID)
                return hk_fail(err, "dd: spatial id over 3");
        }
    }
    s->template_count = (uint8_t)count;
    s->max_spatial_id = (uint8_t)spatial;
    return 0;
}

/* template_dependency_structure() */
static int read_structure(reader_t *r, hk_dd_structure_t *s, const char **err)
{
    memset(s, 0, sizeof *s);
    s->template_id_offset = (uint8_t)read_bits(r, 6);
    s->decode_target_count = (uint8_t)(read_bits(r, 5) + 1);
    int rc = read_layers(r, s, err);
    if (rc)
        return rc;
    unsigned dts = s->decode_target_count;
    for (unsigned t = 0; t < s->template_count; t++)
        for (unsigned dt = 0; dt < dts; dt++)
            s->templates[t].dtis[dt] = (uint8_t)read_bits(r, 2);
    for (unsigned t = 0; t < s->template_count; t++) {
        hk_dd_template_t *tp = &s->templates[t];
        while (read_bits(r, 1)) {
            if (tp->fdiff_count == HK_DD_MAX_FDIFFS)
                return hk_fail(err, "dd: too many template fdiffs");
            tp->fdiffs[tp->fdiff_count++] = (uint8_t)(read_bits(r, 4) + 1);
        }
        if (r->overrun)
            return hk_fail(err, "dd: template fdiffs past the end");
    }
    /* The spec reads decode_target_protected_by as ns(chains_cnt + 1), where chains_cnt
     * means "no chain"; libwebrtc writes and reads ns(chains_cnt), every decode target
     * protected. Chromium's packets (tests/unit/fixtures/dd) only parse the libwebrtc
     * way, which is what every browser sends. */
    s->chain_count = (uint8_t)read_ns(r, dts + 1);
    if (s->chain_count) {
        for (unsigned dt = 0; dt < dts; dt++)
            s->protected_by[dt] = (uint8_t)read_ns(r, s->chain_count);
        for (unsigned t = 0; t < s->template_count; t++)
            for (unsigned c = 0; c < s->chain_count; c++)
                s->templates[t].chain_fdiffs[c] = (uint8_t)read_bits(r, 4);
    }
    s->has_resolutions = read_bits(r, 1);
    if (s->has_resolutions) {
        for (unsigned sid = 0; sid <= s->max_spatial_id; sid++) {
            s->width[sid] = read_bits(r, 16) + 1;
            s->height[sid] = read_bits(r, 16) + 1;
        }
    }
    if (r->overrun)
        return hk_fail(err, "dd: structure past the end");
    for (unsigned dt = 0; dt < dts; dt++) {
        for (unsigned t = 0; t < s->template_count; t++) {
            const hk_dd_template_t *tp = &s->templates[t];
            if (tp->dtis[dt] == HK_DD_DTI_NOT_PRESENT)
                continue;
            if (tp->spatial_id > s->dt_spatial_id[dt])
                s->dt_spatial_id[dt] = tp->spatial_id;
            if (tp->temporal_id > s->dt_temporal_id[dt])
                s->dt_temporal_id[dt] = tp->temporal_id;
        }
    }
    return 0;
}

static uint32_t all_targets(unsigned count)
{
    return count >= 32 ? UINT32_MAX : (1u << count) - 1;
}

int hk_dd_parse(hk_dd_state_t *state, const uint8_t *buf, size_t len, hk_dd_t *out,
                const char **err)
{
    /* A new structure is read here and becomes the state's only when the whole
     * descriptor parsed. */
    hk_dd_structure_t fresh;
    memset(out, 0, sizeof *out);
    if (len < HK_DD_MANDATORY_LEN)
        return hk_fail(err, "dd: shorter than 3 bytes");
    if (len > SIZE_MAX / 8)
        return hk_fail(err, "dd: too long");
    reader_t r = {buf, len * 8, 0, false};
    out->start_of_frame = read_bits(&r, 1);
    out->end_of_frame = read_bits(&r, 1);
    out->template_id = (uint8_t)read_bits(&r, 6);
    out->frame_number = (uint16_t)read_bits(&r, 16);

    const hk_dd_structure_t *s = state->has_structure ? &state->structure : NULL;
    uint32_t active = state->active_decode_targets;
    if (len > HK_DD_MANDATORY_LEN) {
        out->extended = true;
        out->structure_attached = read_bits(&r, 1);
        out->active_decode_targets_present = read_bits(&r, 1);
        out->custom_dtis = read_bits(&r, 1);
        out->custom_fdiffs = read_bits(&r, 1);
        out->custom_chains = read_bits(&r, 1);
        if (out->structure_attached) {
            int rc = read_structure(&r, &fresh, err);
            if (rc)
                return rc;
            s = &fresh;
            active = all_targets(fresh.decode_target_count);
        }
        if (out->active_decode_targets_present) {
            if (!s) {
                if (err)
                    *err = "dd: active decode targets before any structure";
                return HK_ESTATE;
            }
            active = read_bits(&r, s->decode_target_count);
        }
    }
    if (!s) {
        if (err)
            *err = "dd: no template structure received yet";
        return HK_ESTATE;
    }
    unsigned index = (unsigned)(out->template_id + HK_DD_MAX_TEMPLATES - s->template_id_offset) %
                     HK_DD_MAX_TEMPLATES;
    if (index >= s->template_count) {
        if (err)
            *err = "dd: template id outside the current structure";
        return HK_ESTATE;
    }
    const hk_dd_template_t *tp = &s->templates[index];
    out->spatial_id = tp->spatial_id;
    out->temporal_id = tp->temporal_id;
    out->decode_target_count = s->decode_target_count;
    out->chain_count = s->chain_count;
    out->active_decode_targets = active;
    if (out->custom_dtis) {
        for (unsigned dt = 0; dt < s->decode_target_count; dt++)
            out->dtis[dt] = (uint8_t)read_bits(&r, 2);
    } else {
        memcpy(out->dtis, tp->dtis, s->decode_target_count);
    }
    if (out->custom_fdiffs) {
        uint32_t size;
        while ((size = read_bits(&r, 2)) != 0) {
            if (out->fdiff_count == HK_DD_MAX_FDIFFS)
                return hk_fail(err, "dd: too many frame fdiffs");
            out->fdiffs[out->fdiff_count++] = (uint16_t)(read_bits(&r, 4 * size) + 1);
        }
    } else {
        out->fdiff_count = tp->fdiff_count;
        for (unsigned i = 0; i < tp->fdiff_count; i++)
            out->fdiffs[i] = tp->fdiffs[i];
    }
    if (out->custom_chains) {
        for (unsigned c = 0; c < s->chain_count; c++)
            out->chain_fdiffs[c] = (uint8_t)read_bits(&r, 8);
    } else {
        memcpy(out->chain_fdiffs, tp->chain_fdiffs, s->chain_count);
    }
    if (r.overrun)
        return hk_fail(err, "dd: frame fields past the end");
    if (s->has_resolutions) {
        out->width = s->width[tp->spatial_id];
        out->height = s->height[tp->spatial_id];
    }
    if (s == &fresh) {
        state->structure = fresh;
        state->has_structure = true;
    }
    state->active_decode_targets = active;
    return 0;
}

typedef struct {
    uint8_t *buf;
    size_t cap_bits;
    size_t pos;
    bool overflow;
} writer_t;

static void write_bits(writer_t *w, uint32_t v, unsigned n)
{
    if (w->overflow || n > w->cap_bits - w->pos) {
        w->overflow = true;
        return;
    }
    for (unsigned i = n; i-- > 0; w->pos++) {
        uint8_t mask = (uint8_t)(0x80 >> (w->pos & 7));
        if ((v >> i) & 1)
            w->buf[w->pos >> 3] |= mask;
        else
            w->buf[w->pos >> 3] &= (uint8_t)~mask;
    }
}

static void write_ns(writer_t *w, uint32_t v, uint32_t n)
{
    unsigned width = bit_width(n);
    uint32_t m = (1u << width) - n;
    if (v < m) {
        write_bits(w, v, width - 1);
    } else {
        uint32_t x = v + m;
        write_bits(w, x >> 1, width - 1);
        write_bits(w, x & 1, 1);
    }
}

static int write_structure(writer_t *w, const hk_dd_structure_t *s)
{
    unsigned dts = s->decode_target_count;
    if (s->template_count < 1 || s->template_count > HK_DD_MAX_TEMPLATES || dts < 1 ||
        dts > HK_DD_MAX_DECODE_TARGETS || s->chain_count > dts || s->template_id_offset > 63)
        return HK_EINVAL;
    write_bits(w, s->template_id_offset, 6);
    write_bits(w, dts - 1, 5);
    for (unsigned t = 0; t < s->template_count; t++) {
        unsigned idc = 3;
        if (t + 1 < s->template_count) {
            const hk_dd_template_t *a = &s->templates[t], *b = &s->templates[t + 1];
            if (b->spatial_id == a->spatial_id && b->temporal_id == a->temporal_id)
                idc = 0;
            else if (b->spatial_id == a->spatial_id && b->temporal_id == a->temporal_id + 1)
                idc = 1;
            else if (b->spatial_id == a->spatial_id + 1 && b->temporal_id == 0)
                idc = 2;
            else
                return HK_EINVAL; /* templates must be sorted by (spatial, temporal) */
        }
        write_bits(w, idc, 2);
    }
    for (unsigned t = 0; t < s->template_count; t++)
        for (unsigned dt = 0; dt < dts; dt++)
            write_bits(w, s->templates[t].dtis[dt] & 3, 2);
    for (unsigned t = 0; t < s->template_count; t++) {
        const hk_dd_template_t *tp = &s->templates[t];
        if (tp->fdiff_count > HK_DD_MAX_FDIFFS)
            return HK_EINVAL;
        for (unsigned i = 0; i < tp->fdiff_count; i++) {
            if (tp->fdiffs[i] < 1 || tp->fdiffs[i] > 16)
                return HK_EINVAL;
            write_bits(w, 1, 1);
            write_bits(w, tp->fdiffs[i] - 1u, 4);
        }
        write_bits(w, 0, 1);
    }
    write_ns(w, s->chain_count, dts + 1);
    if (s->chain_count) {
        for (unsigned dt = 0; dt < dts; dt++) {
            if (s->protected_by[dt] >= s->chain_count)
                return HK_EINVAL;
            write_ns(w, s->protected_by[dt], s->chain_count);
        }
        for (unsigned t = 0; t < s->template_count; t++)
            for (unsigned c = 0; c < s->chain_count; c++)
                write_bits(w, s->templates[t].chain_fdiffs[c] & 15, 4);
    }
    write_bits(w, s->has_resolutions, 1);
    if (s->has_resolutions) {
        unsigned max_sid = s->templates[s->template_count - 1].spatial_id;
        if (max_sid > HK_DD_MAX_SPATIAL_ID)
            return HK_EINVAL;
        for (unsigned sid = 0; sid <= max_sid; sid++) {
            if (s->width[sid] < 1 || s->height[sid] < 1 || s->width[sid] > 65536 ||
                s->height[sid] > 65536)
                return HK_EINVAL;
            write_bits(w, s->width[sid] - 1u, 16);
            write_bits(w, s->height[sid] - 1u, 16);
        }
    }
    return 0;
}

int hk_dd_write(const hk_dd_structure_t *s, const hk_dd_t *d, uint8_t *buf, size_t cap)
{
    if (cap > SIZE_MAX / 8)
        cap = SIZE_MAX / 8;
    writer_t w = {buf, cap * 8, 0, false};
    if (d->template_id > 63)
        return HK_EINVAL;
    write_bits(&w, d->start_of_frame, 1);
    write_bits(&w, d->end_of_frame, 1);
    write_bits(&w, d->template_id, 6);
    write_bits(&w, d->frame_number, 16);
    if (d->extended) {
        unsigned dts = d->decode_target_count, chains = d->chain_count;
        write_bits(&w, d->structure_attached, 1);
        write_bits(&w, d->active_decode_targets_present, 1);
        write_bits(&w, d->custom_dtis, 1);
        write_bits(&w, d->custom_fdiffs, 1);
        write_bits(&w, d->custom_chains, 1);
        if (d->structure_attached) {
            if (!s)
                return HK_EINVAL;
            int rc = write_structure(&w, s);
            if (rc)
                return rc;
            dts = s->decode_target_count;
            chains = s->chain_count;
        }
        if (dts > HK_DD_MAX_DECODE_TARGETS || chains > HK_DD_MAX_CHAINS)
            return HK_EINVAL;
        if (d->active_decode_targets_present) {
            if (dts == 0)
                return HK_EINVAL;
            write_bits(&w,
                       dts == 32 ? d->active_decode_targets
                                 : d->active_decode_targets & ((1u << dts) - 1),
                       dts);
        }
        if (d->custom_dtis)
            for (unsigned dt = 0; dt < dts; dt++)
                write_bits(&w, d->dtis[dt] & 3, 2);
        if (d->custom_fdiffs) {
            if (d->fdiff_count > HK_DD_MAX_FDIFFS)
                return HK_EINVAL;
            for (unsigned i = 0; i < d->fdiff_count; i++) {
                uint32_t v = d->fdiffs[i];
                if (v < 1 || v > 4096)
                    return HK_EINVAL;
                v--;
                unsigned size = v < 16 ? 1 : v < 256 ? 2 : 3;
                write_bits(&w, size, 2);
                write_bits(&w, v, 4 * size);
            }
            write_bits(&w, 0, 2);
        }
        if (d->custom_chains)
            for (unsigned c = 0; c < chains; c++)
                write_bits(&w, d->chain_fdiffs[c], 8);
    }
    if (w.overflow)
        return HK_ENOSPC;
    size_t bytes = (w.pos + 7) / 8;
    if (w.pos & 7)
        write_bits(&w, 0, (unsigned)(8 - (w.pos & 7)));
    return (int)bytes;
}

int hk_dd_set_frame_number(uint8_t *buf, size_t len, uint16_t frame_number)
{
    if (len < HK_DD_MANDATORY_LEN)
        return HK_EINVAL;
    buf[1] = (uint8_t)(frame_number >> 8);
    buf[2] = (uint8_t)frame_number;
    return 0;
}

bool hk_dd_is_keyframe(const hk_dd_t *d)
{
    return d->start_of_frame && d->structure_attached && d->fdiff_count == 0;
}

int hk_dd_decode_target(const hk_dd_structure_t *s, uint8_t spatial_id, uint8_t temporal_id)
{
    for (unsigned dt = 0; dt < s->decode_target_count && dt < HK_DD_MAX_DECODE_TARGETS; dt++)
        if (s->dt_spatial_id[dt] == spatial_id && s->dt_temporal_id[dt] == temporal_id)
            return (int)dt;
    return -1;
}

bool hk_dd_in_decode_target(const hk_dd_t *d, int dt)
{
    return dt >= 0 && dt < d->decode_target_count && d->dtis[dt] != HK_DD_DTI_NOT_PRESENT;
}

bool hk_dd_can_switch_to(const hk_dd_t *d, int dt)
{
    if (dt < 0 || dt >= d->decode_target_count)
        return false;
    return hk_dd_is_keyframe(d) || d->dtis[dt] == HK_DD_DTI_SWITCH;
}

int hk_dd_layer_ids(hk_dd_layers_t *layers, const uint8_t *buf, size_t len, int *spatial)
{
    if (len < HK_DD_MANDATORY_LEN)
        return -1;
    /* A.3: the first extended bit is template_dependency_structure_present_flag. */
    if (len > HK_DD_MANDATORY_LEN && (buf[3] & 0x80)) {
        hk_dd_state_t state = {0};
        hk_dd_t d;
        if (hk_dd_parse(&state, buf, len, &d, NULL) == 0 && d.structure_attached) {
            const hk_dd_structure_t *s = &state.structure;
            layers->known = true;
            layers->template_id_offset = s->template_id_offset;
            layers->template_count = s->template_count;
            for (unsigned i = 0; i < s->template_count && i < HK_DD_MAX_TEMPLATES; i++) {
                layers->spatial_id[i] = s->templates[i].spatial_id;
                layers->temporal_id[i] = s->templates[i].temporal_id;
            }
        }
    }
    if (!layers->known)
        return -1;
    /* A.8.1: the template index is (template_id - template_id_offset) mod 64. */
    unsigned index =
        (unsigned)((buf[0] & 0x3f) + HK_DD_MAX_TEMPLATES - layers->template_id_offset) %
        HK_DD_MAX_TEMPLATES;
    if (index >= layers->template_count)
        return -1;
    *spatial = layers->spatial_id[index];
    return layers->temporal_id[index];
}

uint16_t hk_dd_renumber(hk_dd_renumber_t *r, uint16_t frame_number, bool restart)
{
    if (!r->started) {
        r->started = true;
        r->offset = 0;
        r->last = frame_number;
        return frame_number;
    }
    if (restart)
        r->offset = (uint16_t)(r->last + 1 - frame_number);
    uint16_t mapped = (uint16_t)(frame_number + r->offset);
    if ((int16_t)(mapped - r->last) > 0)
        r->last = mapped;
    return mapped;
}

void hk_dd_frames_reset(hk_dd_frames_t *f)
{
    memset(f, 0, sizeof *f);
}

static void frames_set(hk_dd_frames_t *f, uint16_t n, bool on)
{
    unsigned i = n % HK_DD_FRAME_WINDOW;
    if (on)
        f->bits[i / 64] |= (uint64_t)1 << (i % 64);
    else
        f->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

void hk_dd_frames_mark(hk_dd_frames_t *f, uint16_t frame_number)
{
    if (!f->any) {
        f->any = true;
        f->newest = frame_number;
    } else {
        int16_t ahead = (int16_t)(frame_number - f->newest);
        if (ahead >= HK_DD_FRAME_WINDOW) {
            memset(f->bits, 0, sizeof f->bits);
            f->newest = frame_number;
        } else if (ahead > 0) {
            /* Clear the slots the window moves over. */
            for (uint16_t n = (uint16_t)(f->newest + 1); n != frame_number; n++)
                frames_set(f, n, false);
            f->newest = frame_number;
        } else if (ahead <= -HK_DD_FRAME_WINDOW) {
            return; /* too old to record */
        }
    }
    frames_set(f, frame_number, true);
}

bool hk_dd_frames_has(const hk_dd_frames_t *f, uint16_t frame_number)
{
    if (!f->any)
        return false;
    int16_t behind = (int16_t)(f->newest - frame_number);
    if (behind < 0 || behind >= HK_DD_FRAME_WINDOW)
        return false;
    unsigned i = frame_number % HK_DD_FRAME_WINDOW;
    return (f->bits[i / 64] >> (i % 64)) & 1;
}

bool hk_dd_frames_decodable(const hk_dd_frames_t *f, const hk_dd_t *d)
{
    for (unsigned i = 0; i < d->fdiff_count && i < HK_DD_MAX_FDIFFS; i++)
        if (!hk_dd_frames_has(f, (uint16_t)(d->frame_number - d->fdiffs[i])))
            return false;
    return true;
}

bool hk_dd_chain_intact(const hk_dd_frames_t *f, const hk_dd_structure_t *s, const hk_dd_t *d,
                        int dt)
{
    if (dt < 0 || dt >= d->decode_target_count || dt >= s->decode_target_count)
        return false;
    if (s->chain_count == 0)
        return hk_dd_frames_decodable(f, d);
    unsigned chain = s->protected_by[dt];
    if (chain >= s->chain_count || chain >= d->chain_count)
        return false;
    uint8_t diff = d->chain_fdiffs[chain];
    return diff == 0 || hk_dd_frames_has(f, (uint16_t)(d->frame_number - diff));
}

#include <stdbool.h>

#include "common/error.h"
#include "server/proto/dd.h"
#include "tests/unit/unit.h"

/* Chromium 156's first packet of a VP8 L1T3 key frame (tests/unit/fixtures/dd/vp8-l1t3.dd,
 * line 1), annotated. Bits MSB first. */
static const uint8_t vp8_key[] = {
    0x80, /* S=1 E=0 template id 0 */
    0x00,
    0x01, /* frame number 1 */
    /* 0x80 0x02 0x04 0x4e ...:
     * 1 structure present, 0 no active bitmask, 0 0 0 no custom dtis/fdiffs/chains,
     * template_id_offset 000000, dtis_cnt_minus_one 00010 (3 decode targets),
     * next_layer_idc 00 00 01 00 01 00 11: 7 templates, (S0,T0) x3, (S0,T1) x2, (S0,T2) x2,
     * dtis 2 bits x 3 per template, fdiff flags and fdiff_minus_one per template,
     * chains_cnt = ns(4) = 0, resolutions present: 639+1 x 479+1, zero padding. */
    0x80,
    0x02,
    0x04,
    0x4e,
    0xaa,
    0xaf,
    0x28,
    0x60,
    0x41,
    0x4d,
    0x34,
    0x53,
    0x8a,
    0x09,
    0x40,
    0x40,
    0x9f,
    0xc0,
    0x77,
    0xc0,
};

TEST(dd_parse_chromium_vp8_key_frame)
{
    hk_dd_state_t st = {0};
    hk_dd_t d;
    const char *err = NULL;
    CHECK_INT_EQ(hk_dd_parse(&st, vp8_key, sizeof vp8_key, &d, &err), 0);
    CHECK(d.start_of_frame);
    CHECK(!d.end_of_frame);
    CHECK_INT_EQ(d.template_id, 0);
    CHECK_INT_EQ(d.frame_number, 1);
    CHECK(d.extended);
    CHECK(d.structure_attached);
    CHECK(!d.active_decode_targets_present);
    CHECK(!d.custom_dtis && !d.custom_fdiffs && !d.custom_chains);
    CHECK(hk_dd_is_keyframe(&d));
    CHECK_INT_EQ(d.spatial_id, 0);
    CHECK_INT_EQ(d.temporal_id, 0);
    CHECK_INT_EQ(d.fdiff_count, 0);
    CHECK_INT_EQ(d.width, 640);
    CHECK_INT_EQ(d.height, 480);
    CHECK_INT_EQ(d.active_decode_targets, 7);

    const hk_dd_structure_t *s = &st.structure;
    CHECK(st.has_structure);
    CHECK_INT_EQ(s->template_id_offset, 0);
    CHECK_INT_EQ(s->decode_target_count, 3);
    CHECK_INT_EQ(s->template_count, 7);
    CHECK_INT_EQ(s->max_spatial_id, 0);
    CHECK_INT_EQ(s->max_temporal_id, 2);
    CHECK_INT_EQ(s->chain_count, 0);
    CHECK(s->has_resolutions);
    /* libwebrtc's DefaultTemporalLayers::GetTemplateStructure(3), decode targets
     * 7.5, 15 and 30 fps: key SSS; T0 fdiff 4 SSS and SRR; T1 fdiff 2 -SS and 4,2 -DS;
     * T2 fdiff 1 --D and 3,1 --D. */
    static const uint8_t want_t[] = {0, 0, 0, 1, 1, 2, 2};
    static const char *want_fdiffs[] = {"", "4", "4", "2", "42", "1", "31"};
    static const char *want_dtis[] = {"SSS", "SSS", "SRR", "-SS", "-DS", "--D", "--D"};
    for (int t = 0; t < 7; t++) {
        const hk_dd_template_t *tp = &s->templates[t];
        CHECK_INT_EQ(tp->spatial_id, 0);
        CHECK_INT_EQ(tp->temporal_id, want_t[t]);
        CHECK_INT_EQ(tp->fdiff_count, strlen(want_fdiffs[t]));
        for (int i = 0; i < tp->fdiff_count; i++)
            CHECK_INT_EQ(tp->fdiffs[i], want_fdiffs[t][i] - '0');
        for (int dt = 0; dt < 3; dt++)
            CHECK_INT_EQ(tp->dtis[dt], strchr("-DSR", want_dtis[t][dt]) - "-DSR");
    }
    /* Decode targets 0, 1, 2 = 7.5, 15, 30 fps. */
    for (int dt = 0; dt < 3; dt++) {
        CHECK_INT_EQ(s->dt_spatial_id[dt], 0);
        CHECK_INT_EQ(s->dt_temporal_id[dt], dt);
        CHECK_INT_EQ(hk_dd_decode_target(s, 0, (uint8_t)dt), dt);
    }
    CHECK_INT_EQ(hk_dd_decode_target(s, 1, 0), -1);
    CHECK(hk_dd_is_keyframe(&d));
    CHECK(hk_dd_can_switch_to(&d, 0) && hk_dd_can_switch_to(&d, 2));
    CHECK(!hk_dd_can_switch_to(&d, 3));

    /* Written back: the same bytes. */
    uint8_t out[64];
    int n = hk_dd_write(s, &d, out, sizeof out);
    CHECK_INT_EQ(n, sizeof vp8_key);
    CHECK_MEM_EQ(out, vp8_key, sizeof vp8_key);
    CHECK_INT_EQ(hk_dd_write(s, &d, out, sizeof vp8_key - 1), HK_ENOSPC);

    /* The next packet of the frame: 3 bytes, E=1, template 0, frame 1. */
    static const uint8_t last[] = {0x40, 0x00, 0x01};
    CHECK_INT_EQ(hk_dd_parse(&st, last, sizeof last, &d, &err), 0);
    CHECK(!d.start_of_frame && d.end_of_frame);
    CHECK(!d.extended && !d.structure_attached);
    CHECK(!hk_dd_is_keyframe(&d));
    CHECK_INT_EQ(d.frame_number, 1);
    n = hk_dd_write(NULL, &d, out, sizeof out);
    CHECK_INT_EQ(n, 3);
    CHECK_MEM_EQ(out, last, 3);

    /* A T2 delta frame (template 5: fdiff 1), frame 2. */
    static const uint8_t t2[] = {0xc5, 0x00, 0x02};
    CHECK_INT_EQ(hk_dd_parse(&st, t2, sizeof t2, &d, &err), 0);
    CHECK_INT_EQ(d.temporal_id, 2);
    CHECK_INT_EQ(d.fdiff_count, 1);
    CHECK_INT_EQ(d.fdiffs[0], 1);
    CHECK(!hk_dd_is_keyframe(&d));
    CHECK(hk_dd_in_decode_target(&d, 2));
    CHECK(!hk_dd_in_decode_target(&d, 1));
    CHECK(!hk_dd_in_decode_target(&d, 0));
    CHECK(!hk_dd_in_decode_target(&d, -1));
    CHECK(!hk_dd_in_decode_target(&d, 3));
}

/* The spec's L3T3 full SVC example (A.6.3), built, written and parsed back. */
static void l3t3_structure(hk_dd_structure_t *s)
{
    static const struct {
        uint8_t s, t;
        const char *fdiffs;
        uint8_t chains[3];
        const char *dti;
    } rows[] = {
        {0, 0, "", {0, 0, 0}, "SSSSSSSSS"},     {0, 0, "c", {12, 11, 10}, "RRRRRRSSS"},
        {0, 1, "6", {6, 5, 4}, "RR-RR-SD-"},    {0, 2, "3", {3, 2, 1}, "R--R--D--"},
        {0, 2, "3", {9, 8, 7}, "R--R--D--"},    {1, 0, "1", {1, 1, 1}, "SSSSSS---"},
        {1, 0, "c1", {1, 1, 1}, "RRRSSS---"},   {1, 1, "61", {7, 6, 5}, "RR-SD----"},
        {1, 2, "31", {4, 3, 2}, "R--D-----"},   {1, 2, "31", {10, 9, 8}, "R--D-----"},
        {2, 0, "1", {2, 1, 1}, "SSS------"},    {2, 0, "c1", {2, 1, 1}, "SSS------"},
        {2, 1, "61", {8, 7, 6}, "SD-------"},   {2, 2, "31", {5, 4, 3}, "D--------"},
        {2, 2, "31", {11, 10, 9}, "D--------"},
    };
    memset(s, 0, sizeof *s);
    s->template_id_offset = 1;
    s->template_count = 15;
    s->decode_target_count = 9;
    s->chain_count = 3;
    static const uint8_t protected_by[9] = {2, 2, 2, 1, 1, 1, 0, 0, 0};
    memcpy(s->protected_by, protected_by, 9);
    s->has_resolutions = true;
    s->width[0] = 320, s->height[0] = 180;
    s->width[1] = 640, s->height[1] = 360;
    s->width[2] = 1280, s->height[2] = 720;
    for (int i = 0; i < 15; i++) {
        hk_dd_template_t *t = &s->templates[i];
        t->spatial_id = rows[i].s;
        t->temporal_id = rows[i].t;
        for (const char *f = rows[i].fdiffs; *f; f++)
            t->fdiffs[t->fdiff_count++] = (uint8_t)(*f == 'c' ? 12 : *f - '0');
        memcpy(t->chain_fdiffs, rows[i].chains, 3);
        for (int dt = 0; dt < 9; dt++) {
            char c = rows[i].dti[dt];
            t->dtis[dt] = c == 'S'   ? HK_DD_DTI_SWITCH
                          : c == 'R' ? HK_DD_DTI_REQUIRED
                          : c == 'D' ? HK_DD_DTI_DISCARDABLE
                                     : HK_DD_DTI_NOT_PRESENT;
        }
    }
}

TEST(dd_spec_l3t3_structure_round_trip)
{
    hk_dd_structure_t s;
    l3t3_structure(&s);
    hk_dd_t d = {0};
    d.start_of_frame = true;
    d.end_of_frame = true;
    d.template_id = 1; /* template index 0 */
    d.frame_number = 0xfffe;
    d.extended = true;
    d.structure_attached = true;
    uint8_t buf[128];
    int n = hk_dd_write(&s, &d, buf, sizeof buf);
    CHECK(n > 3);

    hk_dd_state_t st = {0};
    hk_dd_t p;
    CHECK_INT_EQ(hk_dd_parse(&st, buf, (size_t)n, &p, NULL), 0);
    CHECK(hk_dd_is_keyframe(&p));
    CHECK_INT_EQ(p.frame_number, 0xfffe);
    CHECK_INT_EQ(p.width, 320);
    CHECK_INT_EQ(p.active_decode_targets, 0x1ff);
    const hk_dd_structure_t *g = &st.structure;
    CHECK_INT_EQ(g->template_count, 15);
    CHECK_INT_EQ(g->decode_target_count, 9);
    CHECK_INT_EQ(g->chain_count, 3);
    CHECK_INT_EQ(g->max_spatial_id, 2);
    CHECK_INT_EQ(g->max_temporal_id, 2);
    CHECK_MEM_EQ(g->protected_by, s.protected_by, 9);
    for (int i = 0; i < 15; i++) {
        CHECK_INT_EQ(g->templates[i].spatial_id, s.templates[i].spatial_id);
        CHECK_INT_EQ(g->templates[i].temporal_id, s.templates[i].temporal_id);
        CHECK_INT_EQ(g->templates[i].fdiff_count, s.templates[i].fdiff_count);
        CHECK_MEM_EQ(g->templates[i].fdiffs, s.templates[i].fdiffs, HK_DD_MAX_FDIFFS);
        CHECK_MEM_EQ(g->templates[i].dtis, s.templates[i].dtis, 9);
        CHECK_MEM_EQ(g->templates[i].chain_fdiffs, s.templates[i].chain_fdiffs, 3);
    }
    /* Decode targets: HD30 HD15 HD7.5 VGA30 ... QVGA7.5. */
    for (int dt = 0; dt < 9; dt++) {
        CHECK_INT_EQ(g->dt_spatial_id[dt], 2 - dt / 3);
        CHECK_INT_EQ(g->dt_temporal_id[dt], 2 - dt % 3);
    }
    CHECK_INT_EQ(hk_dd_decode_target(g, 0, 0), 8);
    CHECK_INT_EQ(hk_dd_decode_target(g, 2, 2), 0);
    CHECK_INT_EQ(hk_dd_decode_target(g, 1, 1), 4);

    /* A later frame: template id 12 = index 11 (S2 T0, fdiffs 12,1), with custom chains
     * and an active decode targets bitmask (QVGA and VGA only). */
    hk_dd_t f = {0};
    f.start_of_frame = true;
    f.template_id = 12;
    f.frame_number = 3;
    f.extended = true;
    f.active_decode_targets_present = true;
    f.active_decode_targets = 0x1f8;
    f.custom_chains = true;
    f.decode_target_count = 9;
    f.chain_count = 3;
    f.chain_fdiffs[0] = 200, f.chain_fdiffs[1] = 1, f.chain_fdiffs[2] = 0;
    n = hk_dd_write(NULL, &f, buf, sizeof buf);
    CHECK(n > 3);
    CHECK_INT_EQ(hk_dd_parse(&st, buf, (size_t)n, &p, NULL), 0);
    CHECK_INT_EQ(p.spatial_id, 2);
    CHECK_INT_EQ(p.temporal_id, 0);
    CHECK_INT_EQ(p.fdiff_count, 2);
    CHECK_INT_EQ(p.fdiffs[0], 12);
    CHECK_INT_EQ(p.fdiffs[1], 1);
    CHECK_INT_EQ(p.chain_fdiffs[0], 200);
    CHECK_INT_EQ(p.chain_fdiffs[1], 1);
    CHECK_INT_EQ(p.active_decode_targets, 0x1f8);
    CHECK_INT_EQ(st.active_decode_targets, 0x1f8);
    CHECK_INT_EQ(p.width, 1280);
    CHECK(!hk_dd_is_keyframe(&p));
    CHECK(hk_dd_can_switch_to(&p, 0));  /* S on HD30 */
    CHECK(!hk_dd_can_switch_to(&p, 3)); /* not in VGA */
    uint8_t again[128];
    CHECK_INT_EQ(hk_dd_write(NULL, &p, again, sizeof again), n);
    CHECK_MEM_EQ(again, buf, (size_t)n);

    /* The bitmask persists: a 3-byte descriptor sees it too. */
    static const uint8_t plain[] = {0x41, 0x00, 0x04}; /* template 1 = index 0 */
    CHECK_INT_EQ(hk_dd_parse(&st, plain, 3, &p, NULL), 0);
    CHECK_INT_EQ(p.active_decode_targets, 0x1f8);

    /* Custom dtis and fdiffs (one of each size). */
    f = (hk_dd_t){0};
    f.template_id = 5;
    f.frame_number = 9;
    f.extended = true;
    f.custom_dtis = true;
    f.custom_fdiffs = true;
    f.decode_target_count = 9;
    for (int dt = 0; dt < 9; dt++)
        f.dtis[dt] = (uint8_t)(dt % 4);
    f.fdiff_count = 3;
    f.fdiffs[0] = 16, f.fdiffs[1] = 17, f.fdiffs[2] = 4096;
    n = hk_dd_write(NULL, &f, buf, sizeof buf);
    CHECK(n > 3);
    CHECK_INT_EQ(hk_dd_parse(&st, buf, (size_t)n, &p, NULL), 0);
    CHECK_INT_EQ(p.fdiff_count, 3);
    CHECK_INT_EQ(p.fdiffs[0], 16);
    CHECK_INT_EQ(p.fdiffs[1], 17);
    CHECK_INT_EQ(p.fdiffs[2], 4096);
    for (int dt = 0; dt < 9; dt++)
        CHECK_INT_EQ(p.dtis[dt], dt % 4);
    CHECK_INT_EQ(hk_dd_write(NULL, &p, again, sizeof again), n);
    CHECK_MEM_EQ(again, buf, (size_t)n);
    f.fdiffs[2] = 4097;
    CHECK_INT_EQ(hk_dd_write(NULL, &f, buf, sizeof buf), HK_EINVAL);
    f.fdiffs[2] = 0;
    CHECK_INT_EQ(hk_dd_write(NULL, &f, buf, sizeof buf), HK_EINVAL);
}

TEST(dd_refuses_and_keeps_state)
{
    hk_dd_state_t st = {0};
    hk_dd_t d;
    const char *err = NULL;
    uint8_t buf[64];

    /* Shorter than the mandatory fields. */
    CHECK_INT_EQ(hk_dd_parse(&st, vp8_key, 0, &d, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_dd_parse(&st, vp8_key, 2, &d, &err), HK_EINVAL);
    /* No structure yet: the mandatory fields are read, the frame is not. */
    static const uint8_t delta[] = {0xc3, 0x00, 0x02};
    CHECK_INT_EQ(hk_dd_parse(&st, delta, 3, &d, &err), HK_ESTATE);
    CHECK_INT_EQ(d.frame_number, 2);
    CHECK_INT_EQ(d.template_id, 3);
    /* Every truncation of the key frame's structure is refused and learns nothing.
     * (Cuts that leave only zero padding off are still complete.) */
    for (size_t len = 4; len < sizeof vp8_key - 1; len++) {
        int rc = hk_dd_parse(&st, vp8_key, len, &d, &err);
        CHECK_INT_EQ(rc, HK_EINVAL);
        CHECK(!st.has_structure);
    }
    CHECK_INT_EQ(hk_dd_parse(&st, vp8_key, sizeof vp8_key, &d, &err), 0);
    hk_dd_state_t saved = st;

    /* Template id outside the structure (7 templates from offset 0). */
    static const uint8_t stale[] = {0x87, 0x00, 0x07};
    CHECK_INT_EQ(hk_dd_parse(&st, stale, 3, &d, &err), HK_ESTATE);
    CHECK(memcmp(&st, &saved, sizeof st) == 0);

    /* A structure with 65 templates: next_layer_idc 0 sixty-four times. */
    memset(buf, 0, sizeof buf);
    buf[0] = 0x80;
    buf[3] = 0x80; /* structure present; offset 0, dtis_cnt_minus_one 0 */
    CHECK_INT_EQ(hk_dd_parse(&st, buf, sizeof buf, &d, &err), HK_EINVAL);
    CHECK(memcmp(&st, &saved, sizeof st) == 0);

    /* Temporal id over 7: next_layer_idc 1 eight times. */
    memset(buf, 0, sizeof buf);
    buf[3] = 0x80;
    /* bits from 29: offset(6)=0 dtcnt(5)=0 then idc at bit 40 */
    buf[5] = 0x55, buf[6] = 0x55;
    CHECK_INT_EQ(hk_dd_parse(&st, buf, 8, &d, &err), HK_EINVAL);
    /* Spatial id over 3: next_layer_idc 2 four times. */
    buf[5] = 0xaa, buf[6] = 0x00;
    CHECK_INT_EQ(hk_dd_parse(&st, buf, 8, &d, &err), HK_EINVAL);
    CHECK(memcmp(&st, &saved, sizeof st) == 0);

    /* 17 custom fdiffs. */
    hk_dd_t f = {0};
    f.template_id = 1;
    f.extended = true;
    f.custom_fdiffs = true;
    f.fdiff_count = 16;
    for (int i = 0; i < 16; i++)
        f.fdiffs[i] = 1;
    int n = hk_dd_write(NULL, &f, buf, sizeof buf);
    CHECK(n > 0);
    CHECK_INT_EQ(hk_dd_parse(&st, buf, (size_t)n, &d, &err), 0);
    CHECK_INT_EQ(d.fdiff_count, 16);
    /* Patch the terminating 00 into one more fdiff: 16 * 6 bits after bit 29. */
    size_t bit = 29 + 16 * 6;
    buf[bit / 8] |= (uint8_t)(0x80 >> (bit % 8)); /* next_fdiff_size 01 -> 10 */
    CHECK_INT_EQ(hk_dd_parse(&st, buf, sizeof buf, &d, &err), HK_EINVAL);

    /* The frame number rewritten in place. */
    memcpy(buf, vp8_key, sizeof vp8_key);
    CHECK_INT_EQ(hk_dd_set_frame_number(buf, sizeof vp8_key, 0xbeef), 0);
    CHECK_INT_EQ(buf[1], 0xbe);
    CHECK_INT_EQ(buf[2], 0xef);
    CHECK_MEM_EQ(buf + 3, vp8_key + 3, sizeof vp8_key - 3);
    CHECK_INT_EQ(hk_dd_set_frame_number(buf, 2, 1), HK_EINVAL);
}

TEST(dd_renumber_across_switches)
{
    hk_dd_renumber_t r = {0};
    CHECK_INT_EQ(hk_dd_renumber(&r, 100, true), 100);
    CHECK_INT_EQ(hk_dd_renumber(&r, 101, false), 101);
    CHECK_INT_EQ(hk_dd_renumber(&r, 103, false), 103); /* a dropped frame leaves a gap */
    CHECK_INT_EQ(hk_dd_renumber(&r, 102, false), 102); /* reordered: mapped, last kept */
    /* Switch to another encoding whose numbers are elsewhere (and wrap). */
    CHECK_INT_EQ(hk_dd_renumber(&r, 65534, true), 104);
    CHECK_INT_EQ(hk_dd_renumber(&r, 65535, false), 105);
    CHECK_INT_EQ(hk_dd_renumber(&r, 0, false), 106);
    CHECK_INT_EQ(hk_dd_renumber(&r, 1, false), 107);
    /* And back. */
    CHECK_INT_EQ(hk_dd_renumber(&r, 200, true), 108);
    /* Wrapping on the subscriber's side. */
    hk_dd_renumber_t w = {0};
    CHECK_INT_EQ(hk_dd_renumber(&w, 65535, true), 65535);
    CHECK_INT_EQ(hk_dd_renumber(&w, 7, true), 0);
    CHECK_INT_EQ(hk_dd_renumber(&w, 8, false), 1);
}

/* Real packets from Chromium 156 (tests/unit/fixtures/dd/README.md): every packet of the
 * media SSRC parses, the first is a key frame carrying the structure, each packet writes
 * back to its own bytes, and every frame Chromium's own receiver reported (frame id,
 * spatial and temporal index, dependencies, key or delta, resolution) agrees with ours. */

#define MAX_PACKETS 2000
#define MAX_FRAMES  1000

typedef struct {
    uint32_t ssrc;
    uint8_t pt;
    size_t len;
    uint8_t dd[255];
} packet_t;

typedef struct {
    uint32_t ssrc;
    uint16_t number;
    uint8_t spatial, temporal;
    bool key;
    uint8_t fdiff_count;
    uint16_t fdiffs[HK_DD_MAX_FDIFFS];
    uint16_t width, height;
} frame_t;

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static size_t load_packets(const char *path, packet_t *pkts)
{
    char *text = hk_test_read_file(path, NULL);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned ssrc, seq, marker, pt;
        char hex[600];
        unsigned long ts;
        CHECK(sscanf(line, "%x %u %lu %u %u %599s", &ssrc, &seq, &ts, &marker, &pt, hex) == 6);
        CHECK(n < MAX_PACKETS);
        packet_t *p = &pkts[n++];
        p->ssrc = ssrc;
        p->pt = (uint8_t)pt;
        p->len = strlen(hex) / 2;
        CHECK(p->len <= sizeof p->dd);
        for (size_t i = 0; i < p->len; i++)
            p->dd[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    }
    free(text);
    return n;
}

static void check_fixture(const char *name, uint8_t want_spatial_layers, uint8_t want_temporal)
{
    char path[256];
    static packet_t pkts[MAX_PACKETS];
    static frame_t frames[MAX_FRAMES];
    snprintf(path, sizeof path, "tests/unit/fixtures/dd/%s.dd", name);
    size_t n = load_packets(path, pkts);
    CHECK(n > 50);
    /* Media packets have the first packet's payload type (it starts a key frame); RTX
     * padding carries a DD too. Simulcast has an SSRC, and a state, per encoding. */
    uint8_t media_pt = pkts[0].pt;
    uint32_t ssrcs[3];
    static hk_dd_state_t states[3];
    size_t nssrc = 0, nframes = 0, keys = 0;
    for (size_t i = 0; i < n; i++) {
        if (pkts[i].pt != media_pt)
            continue;
        size_t e = 0;
        while (e < nssrc && ssrcs[e] != pkts[i].ssrc)
            e++;
        if (e == nssrc) {
            CHECK(nssrc < 3);
            ssrcs[nssrc++] = pkts[i].ssrc;
            memset(&states[e], 0, sizeof states[e]);
        }
        hk_dd_state_t *st = &states[e];
        bool first = !st->has_structure;
        hk_dd_t d;
        const char *err = NULL;
        int rc = hk_dd_parse(st, pkts[i].dd, pkts[i].len, &d, &err);
        if (rc) {
            fprintf(stderr, "%s packet %zu: %s\n", name, i, err);
            CHECK_INT_EQ(rc, 0);
        }
        if (first)
            CHECK(hk_dd_is_keyframe(&d));
        uint8_t out[255];
        int len = hk_dd_write(&st->structure, &d, out, sizeof out);
        CHECK(len > 0 && (size_t)len <= pkts[i].len);
        CHECK_MEM_EQ(out, pkts[i].dd, (size_t)len);
        for (size_t j = (size_t)len; j < pkts[i].len; j++)
            CHECK_INT_EQ(pkts[i].dd[j], 0);
        if (!d.start_of_frame)
            continue;
        keys += hk_dd_is_keyframe(&d);
        CHECK(nframes < MAX_FRAMES);
        frame_t *f = &frames[nframes++];
        f->ssrc = pkts[i].ssrc;
        f->number = d.frame_number;
        f->spatial = d.spatial_id;
        f->temporal = d.temporal_id;
        f->key = hk_dd_is_keyframe(&d);
        f->fdiff_count = d.fdiff_count;
        memcpy(f->fdiffs, d.fdiffs, sizeof f->fdiffs);
        f->width = d.width;
        f->height = d.height;
    }
    for (size_t e = 0; e < nssrc; e++) {
        CHECK_INT_EQ(states[e].structure.max_spatial_id + 1, want_spatial_layers);
        CHECK_INT_EQ(states[e].structure.max_temporal_id, want_temporal);
    }
    CHECK(keys >= nssrc);

    /* Chromium's view of the same frames. */
    snprintf(path, sizeof path, "tests/unit/fixtures/dd/%s.frames", name);
    char *text = hk_test_read_file(path, NULL);
    size_t compared = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        unsigned long ts, ssrc, frame_id;
        unsigned spatial, temporal, width, height;
        char type[8], deps[128] = "";
        int fields = sscanf(line, "%lu %lu %lu %u %u %7s %u %u %127s", &ts, &ssrc, &frame_id,
                            &spatial, &temporal, type, &width, &height, deps);
        CHECK(fields >= 8);
        const frame_t *f = NULL;
        for (size_t i = 0; i < nframes && !f; i++)
            if (frames[i].number == (uint16_t)frame_id && frames[i].ssrc == ssrc)
                f = &frames[i];
        if (!f)
            continue; /* the capture started or ended in the middle */
        compared++;
        CHECK_INT_EQ(f->spatial, spatial);
        CHECK_INT_EQ(f->temporal, temporal);
        /* Chromium calls every layer of a key picture "key"; in the DD only the spatial
         * layer 0 frame has no references. */
        CHECK_INT_EQ(f->key, strcmp(type, "key") == 0 && spatial == 0);
        if (f->width)
            CHECK(f->width >= width && f->height >= height);
        /* Dependencies: frame id - fdiff, in the same order. */
        size_t k = 0;
        for (char *dep = deps; *dep;) {
            char *end;
            unsigned long id = strtoul(dep, &end, 10);
            CHECK(end != dep);
            CHECK(k < f->fdiff_count);
            CHECK_INT_EQ(id, frame_id - f->fdiffs[k]);
            k++;
            dep = *end == ',' ? end + 1 : end;
        }
        CHECK_INT_EQ(k, f->fdiff_count);
    }
    free(text);
    CHECK(compared > 40);
}

TEST(dd_chromium_vp8_l1t3)
{
    check_fixture("vp8-l1t3", 1, 2);
}

TEST(dd_chromium_vp9_l3t3_key)
{
    check_fixture("vp9-l3t3-key", 3, 2);
}

TEST(dd_chromium_vp9_l2t2)
{
    check_fixture("vp9-l2t2", 2, 1);
}

TEST(dd_chromium_av1_l3t3)
{
    check_fixture("av1-l3t3", 3, 2);
}

TEST(dd_chromium_av1_l1t3)
{
    check_fixture("av1-l1t3", 1, 2);
}

TEST(dd_frames_window)
{
    hk_dd_frames_t f = {0};
    CHECK(!hk_dd_frames_has(&f, 0));
    hk_dd_frames_mark(&f, 65530);
    hk_dd_frames_mark(&f, 65532);
    hk_dd_frames_mark(&f, 3); /* wraps */
    CHECK(hk_dd_frames_has(&f, 65530));
    CHECK(!hk_dd_frames_has(&f, 65531));
    CHECK(hk_dd_frames_has(&f, 65532));
    CHECK(hk_dd_frames_has(&f, 3));
    CHECK(!hk_dd_frames_has(&f, 4)); /* ahead of the newest */
    /* A late frame inside the window is recorded; moving on clears what the window
     * leaves behind. */
    hk_dd_frames_mark(&f, 65531);
    CHECK(hk_dd_frames_has(&f, 65531));
    hk_dd_frames_mark(&f, (uint16_t)(3 + HK_DD_FRAME_WINDOW - 1));
    CHECK(hk_dd_frames_has(&f, 3));
    CHECK(!hk_dd_frames_has(&f, 65532));
    CHECK(!hk_dd_frames_has(&f, (uint16_t)(3 + HK_DD_FRAME_WINDOW))); /* same slot as 3 */
    /* A jump past the window starts over. */
    hk_dd_frames_mark(&f, 30000);
    CHECK(hk_dd_frames_has(&f, 30000));
    CHECK(!hk_dd_frames_has(&f, (uint16_t)(3 + HK_DD_FRAME_WINDOW - 1)));
    hk_dd_frames_mark(&f, 1000); /* too old: ignored */
    CHECK(!hk_dd_frames_has(&f, 1000));
    hk_dd_frames_reset(&f);
    CHECK(!hk_dd_frames_has(&f, 30000));
}

/* Chromium's AV1 L3T3 stream with every frame present: each frame is decodable and the
 * chain of every active decode target is intact. Then one frame of spatial layer 1 is
 * dropped: frames that refer to it are not decodable, and the chain that went through
 * it is broken for the decode targets it protects, while spatial layer 0's is not. */
static void chains_fixture(const char *name, int drop_spatial)
{
    static packet_t pkts[MAX_PACKETS];
    char path[256];
    snprintf(path, sizeof path, "tests/unit/fixtures/dd/%s.dd", name);
    size_t n = load_packets(path, pkts);
    uint32_t media = pkts[0].ssrc;
    for (int pass = 0; pass < 2; pass++) {
        hk_dd_state_t st = {0};
        hk_dd_frames_t have = {0};
        int frames = 0, refs_to_dropped = 0, broken = 0, drop = -1;
        for (size_t i = 0; i < n; i++) {
            hk_dd_t d;
            if (pkts[i].ssrc != media)
                continue;
            CHECK_INT_EQ(hk_dd_parse(&st, pkts[i].dd, pkts[i].len, &d, NULL), 0);
            const hk_dd_structure_t *s = &st.structure;
            if (d.start_of_frame) {
                frames++;
                bool refers = false;
                for (int k = 0; k < d.fdiff_count; k++)
                    refers |= drop >= 0 && (uint16_t)(d.frame_number - d.fdiffs[k]) == drop;
                CHECK_INT_EQ(hk_dd_frames_decodable(&have, &d), !refers);
                refs_to_dropped += refers;
                for (int dt = 0; dt < s->decode_target_count; dt++) {
                    if (!((d.active_decode_targets >> dt) & 1))
                        continue;
                    unsigned c = s->protected_by[dt];
                    bool through = drop >= 0 && d.chain_fdiffs[c] &&
                                   (uint16_t)(d.frame_number - d.chain_fdiffs[c]) == drop;
                    CHECK_INT_EQ(hk_dd_chain_intact(&have, s, &d, dt), !through);
                    broken += through;
                    if (through)
                        CHECK(s->dt_spatial_id[dt] >= drop_spatial);
                }
            }
            if (!d.end_of_frame)
                continue;
            /* On the second pass, drop the first T0 frame of drop_spatial after 30. */
            if (pass == 1 && drop < 0 && frames > 30 && d.spatial_id == drop_spatial &&
                d.temporal_id == 0) {
                drop = d.frame_number;
                continue;
            }
            hk_dd_frames_mark(&have, d.frame_number);
        }
        CHECK(frames > 100);
        if (pass == 1) {
            CHECK(drop >= 0);
            CHECK(refs_to_dropped >= 1);
            CHECK(broken >= 1);
        }
    }
}

TEST(dd_chains_av1_l3t3)
{
    chains_fixture("av1-l3t3", 1);
}

TEST(dd_chains_vp9_l3t3_key)
{
    chains_fixture("vp9-l3t3-key", 1);
}

/* Chromium's VP8 simulcast (three encodings r0 /4, r1 /2, r2, L1T3 each, 1280x720
 * camera): one SSRC per encoding, each with its own structure and resolution, and one
 * frame-number counter shared by the three (each number is used by exactly one
 * encoding), so within an SSRC numbers jump by about 3 and the frames use custom fdiffs.
 * Every frame is decodable from the frames of its own SSRC. */
TEST(dd_chromium_vp8_simulcast)
{
    check_fixture("vp8-simulcast", 1, 2); /* r0, the encoding the receiver decoded */

    static packet_t pkts[MAX_PACKETS];
    size_t n = load_packets("tests/unit/fixtures/dd/vp8-simulcast.dd", pkts);
    static const uint32_t ssrcs[3] = {0x286d906a, 0x43735c02, 0xa7662b57};
    uint32_t seen_widths = 0;
    static uint8_t owner[65536];
    memset(owner, 0, sizeof owner);
    for (int e = 0; e < 3; e++) {
        hk_dd_state_t st = {0};
        hk_dd_frames_t have = {0};
        int frames = 0, custom = 0, keys = 0;
        for (size_t i = 0; i < n; i++) {
            if (pkts[i].ssrc != ssrcs[e])
                continue;
            hk_dd_t d;
            CHECK_INT_EQ(hk_dd_parse(&st, pkts[i].dd, pkts[i].len, &d, NULL), 0);
            if (d.start_of_frame) {
                frames++;
                custom += d.custom_fdiffs;
                keys += hk_dd_is_keyframe(&d);
                CHECK(hk_dd_frames_decodable(&have, &d));
                CHECK(owner[d.frame_number] == 0 || owner[d.frame_number] == e + 1);
                owner[d.frame_number] = (uint8_t)(e + 1);
                CHECK(d.width == 320 || d.width == 640 || d.width == 1280);
                CHECK_INT_EQ(d.height, d.width * 9 / 16);
                seen_widths |= d.width;
            }
            if (d.end_of_frame)
                hk_dd_frames_mark(&have, d.frame_number);
        }
        CHECK(st.has_structure);
        CHECK_INT_EQ(st.structure.decode_target_count, 3);
        CHECK(frames > 30);
        CHECK(keys >= 1);
        CHECK(custom > 0);
    }
    CHECK_INT_EQ(seen_widths, 320 | 640 | 1280); /* one encoding each */
}

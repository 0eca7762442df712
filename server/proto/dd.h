/* The dependency descriptor RTP header extension (AV1 RTP specification, appendix A;
 * URI https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension).
 *
 * In an E2EE channel the payload is encrypted, so this extension is the only clear
 * source of frame boundaries, key frames and layers (docs: PROTOCOL.md §6). Chromium
 * sends it for VP8 (each simulcast encoding has its own structure, L1T1..L1T3), VP9 and
 * AV1 SVC when the server's offer has it.
 *
 * A descriptor has 3 mandatory bytes; the template dependency structure comes with the
 * first packet of a key frame and applies to every later packet of the stream, so
 * parsing keeps per-stream state (hk_dd_state_t, one per SSRC). The caller owns it; it
 * holds no pointers and needs no cleanup. Every count is bounded by the constants below
 * and checked against the buffer; nothing is allocated.
 *
 * Pure: no I/O, no globals. */
#ifndef HK_DD_H
#define HK_DD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_DD_MANDATORY_LEN      3
#define HK_DD_MAX_TEMPLATES      64 /* MAX_TEMPLATE_ID + 1 */
#define HK_DD_MAX_DECODE_TARGETS 32 /* dtis_cnt_minus_one is 5 bits */
#define HK_DD_MAX_CHAINS         32 /* chains_cnt <= DtisCnt */
#define HK_DD_MAX_SPATIAL_ID     3
#define HK_DD_MAX_TEMPORAL_ID    7
/* Frame diffs per frame: the spec has no count, only the packet's length; libwebrtc's
 * structures use at most 2. Descriptors with more are refused. */
#define HK_DD_MAX_FDIFFS 16

/* Decode target indications (Table A.2). */
#define HK_DD_DTI_NOT_PRESENT 0
#define HK_DD_DTI_DISCARDABLE 1
#define HK_DD_DTI_SWITCH      2
#define HK_DD_DTI_REQUIRED    3

/* One frame dependency template. */
typedef struct {
    uint8_t spatial_id;
    uint8_t temporal_id;
    uint8_t fdiff_count;
    uint8_t fdiffs[HK_DD_MAX_FDIFFS];       /* 1..16 */
    uint8_t dtis[HK_DD_MAX_DECODE_TARGETS]; /* decode_target_count of them */
    uint8_t chain_fdiffs[HK_DD_MAX_CHAINS]; /* chain_count of them, 0..15 */
} hk_dd_template_t;

/* template_dependency_structure() (A.4.1), plus the layers of each decode target. */
typedef struct {
    uint8_t template_id_offset;
    uint8_t template_count;      /* 1..64 */
    uint8_t decode_target_count; /* 1..32 */
    uint8_t chain_count;         /* 0..decode_target_count */
    uint8_t max_spatial_id;
    uint8_t max_temporal_id;
    /* Chain protecting each decode target (0..chain_count-1: libwebrtc's encoding,
     * ns(chain_count), which the spec text writes as ns(chain_count + 1)). */
    uint8_t protected_by[HK_DD_MAX_DECODE_TARGETS];
    /* Highest spatial and temporal id of the templates present in each decode target
     * (derived, as libwebrtc and LiveKit do). */
    uint8_t dt_spatial_id[HK_DD_MAX_DECODE_TARGETS];
    uint8_t dt_temporal_id[HK_DD_MAX_DECODE_TARGETS];
    bool has_resolutions;
    uint32_t width[HK_DD_MAX_SPATIAL_ID + 1]; /* max_render_width_minus_1 + 1: 1..65536 */
    uint32_t height[HK_DD_MAX_SPATIAL_ID + 1];
    hk_dd_template_t templates[HK_DD_MAX_TEMPLATES];
} hk_dd_structure_t;

/* Per-stream parsing state. Zero-initialise; hk_dd_parse updates it only when a
 * descriptor parses completely. */
typedef struct {
    bool has_structure;
    uint32_t active_decode_targets; /* bit i: decode target i is active */
    hk_dd_structure_t structure;
} hk_dd_state_t;

/* One packet's descriptor, with the frame's properties resolved from its template (or
 * its custom fields). */
typedef struct {
    /* mandatory_descriptor_fields() */
    bool start_of_frame;
    bool end_of_frame;
    uint8_t template_id;
    uint16_t frame_number;
    /* extended_descriptor_fields(): all false when the descriptor is 3 bytes */
    bool extended;
    bool structure_attached;
    bool active_decode_targets_present;
    bool custom_dtis;
    bool custom_fdiffs;
    bool custom_chains;
    /* The frame (valid when hk_dd_parse returned 0). */
    uint8_t spatial_id;
    uint8_t temporal_id;
    uint8_t decode_target_count;
    uint8_t chain_count;
    uint32_t active_decode_targets; /* in effect from this packet on */
    uint8_t fdiff_count;
    uint16_t fdiffs[HK_DD_MAX_FDIFFS]; /* referred frames: frame_number - fdiff */
    uint8_t dtis[HK_DD_MAX_DECODE_TARGETS];
    uint8_t chain_fdiffs[HK_DD_MAX_CHAINS]; /* previous frame of each chain: fn - diff */
    uint32_t width;                         /* 0 when the structure has no resolutions */
    uint32_t height;
} hk_dd_t;

/* Parses the extension value buf[0..len) of one packet against the stream's state.
 * Returns:
 *   0           *out complete; if the packet carried a structure, it is now the state's;
 *   HK_ESTATE   the mandatory fields are in *out but the frame cannot be resolved: no
 *               structure received yet, or a template id outside the current structure
 *               (a newer structure was missed). The forwarder needs a key frame;
 *   HK_EINVAL   malformed (shorter than 3 bytes, a field past the end, a count over the
 *               limits above); *err says why. The state is unchanged on any error. */
int hk_dd_parse(hk_dd_state_t *state, const uint8_t *buf, size_t len, hk_dd_t *out,
                const char **err);

/* Writes the descriptor d into buf[0..cap): the mandatory fields, and when d->extended
 * the flags, the structure s (when d->structure_attached; s must then be given), the
 * active decode targets bitmask (d->active_decode_targets, when
 * d->active_decode_targets_present) and the custom fields flagged in d (taken from
 * d->dtis, d->fdiffs, d->chain_fdiffs; custom fdiffs in the fewest nibbles). Trailing
 * bits are zero. decode_target_count and chain_count come from s when attached, else from
 * d. Returns the length written, HK_ENOSPC, or HK_EINVAL for values that cannot be
 * encoded (an fdiff of 0 or over 4096, counts over the limits). A descriptor parsed by
 * hk_dd_parse and written back gives the same bytes (up to trailing zero bytes). */
int hk_dd_write(const hk_dd_structure_t *s, const hk_dd_t *d, uint8_t *buf, size_t cap);

/* Overwrites the frame number of the descriptor buf[0..len) in place (e.g. an RTP
 * packet's extension value). Returns 0 or HK_EINVAL (len < 3). */
int hk_dd_set_frame_number(uint8_t *buf, size_t len, uint16_t frame_number);

/* True when d's packet starts a key frame: it carries the structure and its frame refers
 * to no earlier frame (libwebrtc treats every frame carrying a structure as a key
 * frame; spatial layers 1.. of an SVC key picture refer to layer 0 and are not). */
bool hk_dd_is_keyframe(const hk_dd_t *d);

/* The decode target whose highest layers are exactly (spatial_id, temporal_id), or -1. */
int hk_dd_decode_target(const hk_dd_structure_t *s, uint8_t spatial_id, uint8_t temporal_id);

/* True when d's frame is needed by decode target dt (its indication is not "not
 * present"); false for dt out of range. A forwarder that delivers dt forwards exactly
 * these frames. */
bool hk_dd_in_decode_target(const hk_dd_t *d, int dt);

/* True when a forwarder may start delivering decode target dt at d's frame (A.4.4):
 * a key frame, or a Switch indication for dt. (The frame must itself be decodable: the
 * caller checks that the chain protecting dt is intact.) */
bool hk_dd_can_switch_to(const hk_dd_t *d, int dt);

/* The spatial and temporal id of each template of a stream's latest structure: all a
 * forwarder that drops layers needs to place a packet from its 3 mandatory bytes (the
 * template id). Zero-initialise; about 140 bytes, one per stream. */
typedef struct {
    bool known;
    uint8_t template_id_offset;
    uint8_t template_count;
    uint8_t spatial_id[HK_DD_MAX_TEMPLATES];
    uint8_t temporal_id[HK_DD_MAX_TEMPLATES];
} hk_dd_layers_t;

/* The temporal id of the packet whose descriptor is buf[0..len), and its spatial id in
 * *spatial, learning the templates from a structure the packet carries (a key frame's
 * first packet). -1 when it cannot tell (*spatial then untouched): no structure seen yet,
 * a template id outside it (a newer structure was missed), or a malformed descriptor. */
int hk_dd_layer_ids(hk_dd_layers_t *layers, const uint8_t *buf, size_t len, int *spatial);

/* Frame numbers a subscriber sees. Within one source stream the mapping is a constant
 * offset, so fdiffs and chain diffs stay right; when the subscriber moves to another
 * stream (simulcast encoding) at a key frame, numbering continues after the last number
 * it was sent. Zero-initialise. */
typedef struct {
    bool started;
    uint16_t offset;
    uint16_t last; /* highest number sent (in 16-bit serial order) */
} hk_dd_renumber_t;

/* Returns the subscriber's frame number for the source's frame_number. restart: this is
 * the first packet forwarded from a new source stream (the first call always is). */
uint16_t hk_dd_renumber(hk_dd_renumber_t *r, uint16_t frame_number, bool restart);

/* Which recent frames of one stream a forwarder has (received completely, or forwarded
 * to one subscriber), for the decodability and chain checks of A.4.3 and A.4.4. Covers
 * the last HK_DD_FRAME_WINDOW frame numbers (chain and frame diffs reach back at most
 * 255 frames in Chromium's streams; older numbers read as absent). Zero-initialise. */
#define HK_DD_FRAME_WINDOW 1024
typedef struct {
    bool any;
    uint16_t newest;
    uint64_t bits[HK_DD_FRAME_WINDOW / 64];
} hk_dd_frames_t;

/* Records that frame_number is there. A number more than the window ahead of the
 * newest starts over. */
void hk_dd_frames_mark(hk_dd_frames_t *f, uint16_t frame_number);

/* Forgets everything (e.g. after a switch to another stream). */
void hk_dd_frames_reset(hk_dd_frames_t *f);

/* True when frame_number was marked and is within the window. */
bool hk_dd_frames_has(const hk_dd_frames_t *f, uint16_t frame_number);

/* True when every frame d's frame refers to (frame_number - fdiff) is there: forwarding
 * it can make it decodable. */
bool hk_dd_frames_decodable(const hk_dd_frames_t *f, const hk_dd_t *d);

/* True when the chain protecting decode target dt (structure s) is intact at d's frame:
 * its chain diff is 0 (the chain restarts here) or the chain's previous frame is there.
 * With no chains (Chromium's VP8), true when d's frame is decodable. False for dt out
 * of range. A.4.4: a forwarder may switch to dt at a frame with a Switch indication
 * (hk_dd_can_switch_to) whose chain is intact. */
bool hk_dd_chain_intact(const hk_dd_frames_t *f, const hk_dd_structure_t *s, const hk_dd_t *d,
                        int dt);

#endif

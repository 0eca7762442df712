/* SDP (RFC 8866, JSEP RFC 8829): the server's offer writer and the client's answer
 * parser. Pure: no I/O, no globals.
 *
 * Payload types and header-extension ids are fixed server-wide (below), so forwarding
 * never rewrites them. */
#ifndef HK_SDP_H
#define HK_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed payload types. */
#define HK_PT_OPUS     111
#define HK_PT_VP8      96
#define HK_PT_VP8_RTX  97
#define HK_PT_VP9      98
#define HK_PT_VP9_RTX  99
#define HK_PT_H264     102
#define HK_PT_H264_RTX 103
#define HK_PT_AV1      104
#define HK_PT_AV1_RTX  105

/* Fixed header-extension ids (one-byte form). */
#define HK_EXT_MID           1 /* urn:ietf:params:rtp-hdrext:sdes:mid */
#define HK_EXT_ABS_SEND_TIME 2 /* http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time */
/* http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01 */
#define HK_EXT_TRANSPORT_CC 3
#define HK_EXT_AUDIO_LEVEL  4 /* urn:ietf:params:rtp-hdrext:ssrc-audio-level; never in E2EE */
/* https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension
 * on video in E2EE sessions: the receiver learns frame boundaries and key frames from it,
 * since the payload (ciphertext) cannot tell it. */
#define HK_EXT_DEPENDENCY_DESCRIPTOR 5
/* Simulcast (RFC 8852): the layer's rid on a publisher's first packets of each encoding,
 * and on its retransmissions; only in sections that receive simulcast. */
#define HK_EXT_RID          6 /* urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id */
#define HK_EXT_REPAIRED_RID 7 /* urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id */

/* Simulcast layers: Sora's rids r0 (smallest) .. r2, a layer's index is its rid's digit. */
#define HK_SIMULCAST_MAX_LAYERS 3

#define HK_SDP_MAX_MEDIA      512 /* m-sections per session */
#define HK_SDP_MAX_CANDIDATES 8
#define HK_SDP_MID_LEN        16
#define HK_SDP_ID_LEN         64 /* msid stream/track ids */

typedef enum { HK_MEDIA_AUDIO = 0, HK_MEDIA_VIDEO = 1 } hk_media_kind_t;

typedef enum {
    HK_DIR_INACTIVE = 0,
    HK_DIR_SENDONLY,
    HK_DIR_RECVONLY,
    HK_DIR_SENDRECV,
} hk_direction_t;

typedef enum { HK_VIDEO_VP8 = 0, HK_VIDEO_VP9, HK_VIDEO_H264, HK_VIDEO_AV1 } hk_video_codec_t;

/* One m-section of the server's offer.
 * - RECV: the client sends here (direction recvonly from the server's view); no ssrc.
 * - FORWARD: the server sends a publisher's track here (sendonly) with that
 *   publisher's msid and SSRCs (ssrc 0 = not known yet: no a=ssrc lines written).
 * - FORWARD with stream_id "": an idle placeholder, written a=inactive without msid
 *   or SSRCs (a receiver with nobody to receive yet keeps a transport).
 * - CLOSED: a track that went away: written rejected (port 0, a=inactive), not in
 *   the BUNDLE group. */
typedef enum { HK_SECTION_RECV = 0, HK_SECTION_FORWARD, HK_SECTION_CLOSED } hk_section_type_t;

typedef struct {
    hk_section_type_t type;
    hk_media_kind_t kind;
    char mid[HK_SDP_MID_LEN];
    uint8_t mid_len;               /* strlen(mid), for the forwarding path */
    char stream_id[HK_SDP_ID_LEN]; /* FORWARD: the publisher's connection_id */
    char track_id[HK_SDP_ID_LEN];  /* FORWARD: the publisher's track id */
    uint32_t ssrc;                 /* FORWARD: media SSRC, 0 = unknown */
    uint32_t rtx_ssrc;             /* FORWARD video: RTX SSRC, 0 = none */
    char cname[HK_SDP_ID_LEN];     /* FORWARD: cname for the a=ssrc lines */
    uint8_t simulcast_rids;        /* RECV video: bit i offers rid r<i> (a=rid, a=simulcast:recv);
                                      0 = no simulcast */
    /* Negotiation state, kept by the peer (the writer ignores it): */
    bool offered;    /* this content (track, or closed) was in the last offer written */
    bool answered;   /* FORWARD: the client answered an offer with this content: media may
                        go to it, not before */
    bool recycled;   /* this slot held another mid before (JSEP m-section recycling) */
    bool recyclable; /* CLOSED in an offer the client answered: the slot may take a new mid
                        and track (JSEP m-section recycling) */
} hk_sdp_section_t;

typedef struct {
    uint64_t session_id;
    uint64_t session_version;                               /* increases with every re-offer */
    const char *ice_ufrag;                                  /* server's, 4..256 ice-chars */
    const char *ice_pwd;                                    /* server's, 22..256 ice-chars */
    const char *fingerprint;                                /* "sha-256 AB:CD:..." */
    const char *candidate_addresses[HK_SDP_MAX_CANDIDATES]; /* IPv4/IPv6 literals */
    size_t n_candidates;
    uint16_t media_port;
    uint16_t media_tcp_port;          /* a passive ICE-TCP candidate per address too; 0 = none */
    bool e2ee;                        /* leaves out the audio-level extension */
    hk_video_codec_t preferred_video; /* listed first in every video m-section */
    const hk_sdp_section_t *sections;
    size_t n_sections;
} hk_sdp_offer_t;

/* Writes the offer into buf (NUL-terminated, CRLF line ends). Every non-closed section
 * carries the ICE credentials, the fingerprint and all candidates.
 * Returns the length written (without the NUL), HK_ENOSPC when buf is too small (buf is
 * then "" and nothing is written past size), HK_EINVAL for bad params: NULL or malformed
 * ufrag/pwd/fingerprint, n_sections 0 or over HK_SDP_MAX_MEDIA, over HK_SDP_MAX_CANDIDATES
 * or non-literal candidate addresses, a mid/stream/track/cname that is empty, unterminated
 * or holds spaces or control bytes, duplicate mids, simulcast_rids on anything but a RECV
 * video section or with bits above HK_SIMULCAST_MAX_LAYERS. With no candidates only
 * a=end-of-candidates is written. */
int hk_sdp_write_offer(const hk_sdp_offer_t *offer, char *buf, size_t size);

/* One m-section of the client's answer. */
typedef struct {
    hk_media_kind_t kind;
    bool rejected;            /* port 0 */
    hk_direction_t direction; /* as written in the answer (client's view) */
    char mid[HK_SDP_MID_LEN];
    char stream_id[HK_SDP_ID_LEN]; /* a=msid first token, "" if absent */
    char track_id[HK_SDP_ID_LEN];  /* a=msid second token */
    uint32_t ssrc;                 /* first SSRC not in an FID group's second slot, 0 = none */
    uint32_t rtx_ssrc;             /* a=ssrc-group:FID second SSRC, 0 = none */
    int payload_type;              /* first payload type on the m= line, -1 if none */
    uint8_t simulcast_rids;        /* a=simulcast:send: bit i for rid r<i> (other rids and
                                      paused ones are left out); 0 = no simulcast */
    int n_payload_types;
} hk_sdp_media_t;

typedef struct {
    char ice_ufrag[257];
    char ice_pwd[257];
    char fingerprint_algorithm[16]; /* lower case, e.g. "sha-256" */
    uint8_t fingerprint[64];
    size_t fingerprint_len;
    char setup[16]; /* "active", "passive", "actpass", "holdconn"; "" if absent */
    hk_sdp_media_t media[HK_SDP_MAX_MEDIA];
    size_t n_media;
} hk_sdp_answer_t;

/* Parses a client's answer. Session-level or media-level ice-ufrag, ice-pwd,
 * fingerprint and setup are accepted (media-level of the first non-rejected section
 * wins over nothing; conflicting values are an error). Refuses: more than max_size bytes,
 * lines over 4096 bytes, no m= line, more than HK_SDP_MAX_MEDIA m= lines, duplicate mids,
 * missing ice-ufrag/ice-pwd/fingerprint, a malformed fingerprint, non-printable bytes.
 * Attributes of rejected (port 0) sections are not read for ice-ufrag, ice-pwd,
 * fingerprint and setup (Chromium gives them fresh credentials). Sections that are neither
 * audio nor video (e.g. application) count against the limit and their mid against
 * duplicates, but are left out of media[]; an answer with none but those is refused. A missing
 * a=setup is not refused: setup is "". Every number is range-checked (SSRC <= 2^32-1, payload type
 * <= 127, port <= 65535). Returns 0, or HK_EINVAL with *err set to a static reason (err may be
 * NULL); on error *out is zeroed. */
int hk_sdp_parse_answer(const char *sdp, size_t len, size_t max_size, hk_sdp_answer_t *out,
                        const char **err);

/* Returns the section of the answer with this mid, or NULL. */
const hk_sdp_media_t *hk_sdp_answer_find(const hk_sdp_answer_t *answer, const char *mid);

/* The RTX payload type that our offers pair with video payload type pt; -1 for none. */
int hk_sdp_rtx_pt(int pt);

#endif

/* Janus API client messages for the load generator's --mode janus: the requests a peer
 * sends over Janus' WebSocket transport (subprotocol "janus-protocol") to the VideoRoom
 * plugin, the reader of Janus' replies and events, and the publisher's SDP offer.
 * Pure functions: no I/O, no globals; the generator (hisoka-load.c) drives the flow:
 *
 *   publisher:  create -> attach -> join(ptype publisher, jsep offer, e2ee) -> event
 *               "joined" with jsep answer -> ICE (USE-CANDIDATE) + DTLS client
 *   subscriber: create -> attach -> join(ptype subscriber, streams [{feed}]) -> event
 *               "attached" with jsep offer -> start + jsep answer; more feeds later:
 *               subscribe(streams) -> event "updated" with offer -> start + answer;
 *               a subscriber that wants another simulcast substream than the top one:
 *               configure(streams [{mid, substream}]) after each start
 *   every session: keepalive every 25 s (Janus' session_timeout is 60 s)
 *
 * Transactions are decimal strings of a 64-bit counter chosen by the caller. */
#ifndef HK_LOAD_JANUS_H
#define HK_LOAD_JANUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_JANUS_PLUGIN       "janus.plugin.videoroom"
#define HK_JANUS_SUBPROTOCOL  "janus-protocol"
#define HK_JANUS_KEEPALIVE_US 25000000u
#define HK_JANUS_MAX_FEEDS    32

typedef enum {
    HK_JANUS_CREATE = 0,      /* {"janus":"create"} -> success data.id = session */
    HK_JANUS_ATTACH,          /* {"janus":"attach","plugin":...} -> success data.id = handle */
    HK_JANUS_KEEPALIVE,       /* {"janus":"keepalive"} -> ack */
    HK_JANUS_TRICKLE_DONE,    /* {"janus":"trickle","candidate":{"completed":true}} */
    HK_JANUS_JOIN_PUBLISHER,  /* body join/publisher with our id, jsep offer */
    HK_JANUS_JOIN_SUBSCRIBER, /* body join/subscriber, streams [{feed}] */
    HK_JANUS_SUBSCRIBE,       /* body subscribe, streams [{feed}] (renegotiation) */
    HK_JANUS_START,           /* body start, jsep answer */
    HK_JANUS_CONFIGURE,       /* body configure, streams [{mid, substream}] (subscriber) */
} hk_janus_request_kind_t;

typedef struct {
    hk_janus_request_kind_t kind;
    uint64_t transaction;
    uint64_t session_id; /* all but CREATE */
    uint64_t handle_id;  /* TRICKLE_DONE and the plugin messages */
    uint64_t room;
    uint64_t publisher_id;   /* JOIN_PUBLISHER: the feed id we register */
    const uint64_t *feeds;   /* JOIN_SUBSCRIBER, SUBSCRIBE: publisher ids */
    size_t n_feeds;          /* 1..HK_JANUS_MAX_FEEDS for those two */
    const char *display;     /* JOIN_PUBLISHER, optional */
    const char *jsep_type;   /* "offer" (JOIN_PUBLISHER) or "answer" (START) */
    const char *sdp;         /* with jsep_type */
    bool e2ee;               /* adds "e2ee":true to the jsep (required by require_e2ee rooms) */
    const char *const *mids; /* CONFIGURE: the subscription's video mids (from Janus' offer) */
    size_t n_mids;           /* 1..HK_JANUS_MAX_FEEDS for CONFIGURE */
    int substream;           /* CONFIGURE: 0..2, the simulcast substream each of them gets */
} hk_janus_request_t;

/* Writes request r as compact JSON into out[size] (NUL-terminated). Returns the length,
 * HK_EINVAL when a field the kind needs is missing, HK_ENOSPC when out is too small. */
int hk_janus_write_request(const hk_janus_request_t *r, char *out, size_t size);

typedef enum {
    HK_JANUS_EV_OTHER = 0, /* keepalive echo, timeout, detached, media, slowlink, ... */
    HK_JANUS_EV_ACK,       /* "ack": the request was received */
    HK_JANUS_EV_SUCCESS,   /* "success": id = data.id (create/attach) */
    HK_JANUS_EV_ERROR,     /* "error": error_code/reason */
    HK_JANUS_EV_EVENT,     /* plugin "event": videoroom, id, error_code/reason, jsep */
    HK_JANUS_EV_WEBRTCUP,  /* ICE and DTLS done on Janus' side */
    HK_JANUS_EV_HANGUP,    /* the PeerConnection is gone; reason */
} hk_janus_event_kind_t;

typedef struct {
    hk_janus_event_kind_t kind;
    uint64_t transaction; /* 0 when absent or not a decimal number */
    uint64_t session_id;  /* "session_id", 0 if absent */
    uint64_t sender;      /* handle id, 0 if absent */
    uint64_t id;          /* SUCCESS: data.id; EVENT "joined": our publisher id */
    char videoroom[24];   /* EVENT: plugindata.data.videoroom ("joined", "attached", ...) */
    int error_code;       /* ERROR: error.code; EVENT: data.error_code; 0 if none */
    char reason[160];     /* ERROR/EVENT error text or HANGUP reason */
    char jsep_type[8];    /* "offer", "answer" or "" */
    const char *sdp;      /* jsep.sdp, NUL-terminated; points into json */
    size_t sdp_len;
    void *json; /* the parsed document (jansson), owned; released by hk_janus_event_clear */
} hk_janus_event_t;

/* Parses one message from Janus (text[len], JSON). On success returns 0 and fills ev; the
 * caller releases it with hk_janus_event_clear. On error returns HK_EINVAL and sets *err
 * (ev needs no clearing). */
int hk_janus_parse_event(const char *text, size_t len, hk_janus_event_t *ev, const char **err);

/* Releases the JSON kept by a parsed event and resets ev. */
void hk_janus_event_clear(hk_janus_event_t *ev);

typedef struct {
    unsigned session_id;     /* o= line */
    const char *ice_ufrag;   /* ours (4..32 ice-chars) */
    const char *ice_pwd;     /* ours (22..128 ice-chars) */
    const char *fingerprint; /* "sha-256 AB:CD:..." */
    bool audio, video;       /* at least one */
    uint32_t ssrc_audio, ssrc_video, ssrc_rtx;
    const char *cname;
    bool simulcast; /* video as three rid layers r0 (lowest) .. r2, SSRCs not signalled */
} hk_janus_offer_t;

/* Writes a publisher offer (RFC 8829 §5.2 shape): BUNDLE of mid "0" audio (Opus, PT 111)
 * and mid "1" video (VP8 PT 96, RTX 97), each sendonly, rtcp-mux, a=setup:active (we are
 * the DTLS client, Janus answers passive), our ICE credentials and fingerprint, the mid
 * and transport-wide-cc extensions (ids 1 and 3), and no candidates (Janus is ICE-lite;
 * our binding requests reach it from our socket). With simulcast the video section has
 * no SSRCs but the rtp-stream-id extension (id HK_EXT_RID), a=rid r2, r1, r0 and
 * a=simulcast:send r2;r1;r0: Janus takes the rids highest first unless told otherwise
 * (jsep rid_order), so r0 is its substream 0. Returns the length, HK_EINVAL or
 * HK_ENOSPC. */
int hk_janus_write_offer(const hk_janus_offer_t *o, char *out, size_t size);

#endif

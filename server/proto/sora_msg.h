/* Sora-compatible signaling messages (docs/protocol.md §1): pure validation of what clients
 * send and construction of what the server sends. JSON through jansson; no I/O.
 * Unknown fields are ignored. */
#ifndef HK_SORA_MSG_H
#define HK_SORA_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* WebSocket close codes the server uses (reason text goes with them). */
#define HK_CLOSE_NORMAL       1000
#define HK_CLOSE_GOING_AWAY   1001
#define HK_CLOSE_BAD_REQUEST  4400 /* malformed or invalid message */
#define HK_CLOSE_UNAUTHORIZED 4401 /* refused by the auth webhook */
#define HK_CLOSE_FORBIDDEN    4403 /* e2ee mode mismatch, not allowed */
#define HK_CLOSE_TIMEOUT      4408 /* no connect in time, missed pongs */
#define HK_CLOSE_TOO_LARGE    4413 /* message over the size limit */
#define HK_CLOSE_LIMIT        4429 /* channel or server full */
#define HK_CLOSE_INTERNAL     4500
#define HK_CLOSE_UNAVAILABLE  4503 /* cluster: the channel cannot be placed now */

#define HK_CHANNEL_ID_MAX 255
#define HK_CLIENT_ID_MAX  255

typedef enum { HK_ROLE_SENDRECV = 0, HK_ROLE_SENDONLY, HK_ROLE_RECVONLY } hk_role_t;

/* A validated `connect`. json_t members are owned (one reference each) and released by
 * hk_connect_msg_clear; NULL when absent. */
typedef struct {
    hk_role_t role;
    char channel_id[HK_CHANNEL_ID_MAX + 1];
    char client_id[HK_CLIENT_ID_MAX + 1]; /* "" when absent */
    bool e2ee;
    bool e2ee_mls; /* "e2ee_protocol": "mls" (only with e2ee: true) */
    bool audio;    /* false only for "audio": false */
    bool video;
    char video_codec[8]; /* "VP8" (default), "VP9", "H264", "AV1" */
    bool redirect;
    bool simulcast;     /* publishes its video as simulcast layers */
    int simulcast_want; /* the layer it receives of simulcast tracks: 0..2 (simulcast_rid
                           "r0".."r2", or simulcast_request_rid which wins), -1 for
                           simulcast_request_rid "none", -2 when neither is given */
    bool legacy_update; /* renegotiates with `update`, not `re-offer`: see
                           hk_sora_client_uses_update */
    json_t *metadata;
    json_t *signaling_notify_metadata;
    char *notify_metadata_raw; /* signaling_notify_metadata as sent, minified (malloc'd) */
    size_t notify_metadata_raw_len;
} hk_connect_msg_t;

/* Parse error: the close code and a reason text the client can show. */
typedef struct {
    int close_code;
    const char *reason; /* static */
} hk_sora_error_t;

/* Validates a `connect` message. Returns 0, or HK_EINVAL with *err filled.
 * Rules: a JSON object; type "connect"; role one of sendrecv|sendonly|recvonly;
 * channel_id a string of 1..255 printable ASCII characters; client_id (optional) likewise;
 * e2ee/multistream/redirect booleans when present; e2ee_protocol (optional, null = absent)
 * only "mls" and only with e2ee true, else 4400 INVALID-E2EE-PROTOCOL; audio/video booleans or
 * objects; video.codec_type one of VP8|VP9|H264|AV1 when present (H265 refused); simulcast a
 * boolean; simulcast_rid one of r0|r1|r2 and simulcast_request_rid one of none|r0|r1|r2 when
 * present (null = absent), else 4400 INVALID-SIMULCAST-RID; metadata any JSON;
 * signaling_notify_metadata an object or null. sora_client is read when it is a string
 * (legacy_update); any other type is ignored. */
int hk_sora_parse_connect(const char *text, size_t len, hk_connect_msg_t *out,
                          hk_sora_error_t *err);
void hk_connect_msg_clear(hk_connect_msg_t *msg);

/* True when a client whose `connect` carried this sora_client string renegotiates only
 * with `update` (and ignores `re-offer`): a Sora SDK ("Sora <platform> SDK <version>",
 * e.g. "Sora JavaScript SDK 2020.6.2") released before Sora 2021.1 introduced `re-offer`,
 * that is with a version below 2021 (year-numbered releases 2020.x and older, and the
 * 1.x/2.x numbering before them). NULL, other clients and unparsable versions: false. */
bool hk_sora_client_uses_update(const char *sora_client);

typedef enum {
    HK_MSG_ANSWER = 0, /* answer, re-answer and legacy update: sdp set */
    HK_MSG_RE_ANSWER,
    HK_MSG_CANDIDATE,
    HK_MSG_PONG,
    HK_MSG_DISCONNECT,
    HK_MSG_STATS, /* accepted and ignored */
} hk_msg_type_t;

/* A validated message after `connect`. root keeps the JSON alive; sdp points into it. */
typedef struct {
    hk_msg_type_t type;
    json_t *root;
    const char *sdp; /* answer / re-answer / update */
    size_t sdp_len;
    const char *reason; /* disconnect, may be NULL */
} hk_sora_msg_t;

/* Validates a message received after `connect`. A second `connect`, an unknown type,
 * a missing or non-string sdp: HK_EINVAL with *err filled. */
int hk_sora_parse_message(const char *text, size_t len, hk_sora_msg_t *out, hk_sora_error_t *err);
void hk_sora_msg_clear(hk_sora_msg_t *msg);

const char *hk_role_name(hk_role_t role);

/* A simulcast rid (Sora's: "r0" the smallest layer .. "r2") as a layer: "r0".."r2" -> 0..2, "none"
 * -> -1 when allow_none; -3 for anything else (NULL included). */
int hk_sora_parse_rid(const char *rid, bool allow_none);

/* Checks a simulcast publisher's encodings (the auth webhook's simulcast_encodings):
 * an array of 1..3 objects, each with a distinct "rid" r0..r2 (other members are the
 * client's business: active, scaleResolutionDownBy, maxBitrate, ...). Returns the rids as
 * a bitmask (bit i: r<i>), or HK_EINVAL with *why set to a static reason. */
int hk_sora_check_encodings(const json_t *encodings, const char **why);

/* The encodings offered when the webhook gives none: r0 at 1/4 of the resolution, r1 at
 * 1/2, r2 at full (a new reference, NULL on ENOMEM). */
json_t *hk_sora_default_encodings(void);

/* Builders. Each returns a new JSON text (caller frees with free()) or NULL on ENOMEM. */

typedef struct {
    const char *sdp;
    const char *client_id;
    const char *connection_id;
    const char *channel_id;
    const char *audio_mid; /* NULL when the connection does not send audio */
    const char *video_mid;
    const json_t *authn_metadata; /* may be NULL */
    /* Simulcast publisher: "simulcast": true and these encodings (a JSON array, e.g. the
     * auth webhook's simulcast_encodings); NULL: "simulcast": false, no encodings. */
    const json_t *encodings;
    /* config.iceServers: one entry with these comma-separated URLs and REST credentials
     * (proto/turn_rest.h); NULL or "" = an empty list. */
    const char *turn_urls;
    const char *turn_username;
    const char *turn_credential;
} hk_offer_msg_t;

char *hk_sora_build_offer(const hk_offer_msg_t *offer);
char *hk_sora_build_reoffer(const char *sdp);
/* The legacy renegotiation offer {"type":"update","sdp":...} (hk_sora_client_uses_update). */
char *hk_sora_build_update(const char *sdp);
char *hk_sora_build_ping(void);
/* Sora's cluster: {"type":"redirect","location":location}. */
char *hk_sora_build_redirect(const char *location);

/* notify simulcast.switched (PROTOCOL.md §5): the layer a receiver gets of a sender's
 * video changed. Rids are "r0".."r2", "none", or "auto" (request_rid). */
typedef struct {
    const char *channel_id;
    const char *sender_connection_id;
    const char *trigger; /* "rpc": after an API request; "auto": the sender's layers changed */
    const char *request_rid;
    const char *current_rid;
    const char *previous_rid;
} hk_simulcast_switched_t;

char *hk_sora_build_simulcast_switched(const hk_simulcast_switched_t *s);

/* The name of a layer: 0..2 -> "r0".."r2", -1 -> "none", -2 -> "auto". */
const char *hk_sora_rid_name(int layer);

/* What a notify says about one connection. */
typedef struct {
    hk_role_t role;
    const char *client_id;
    const char *connection_id;
    bool audio;
    bool video;
    long minutes;
    bool e2ee;                    /* the connection uses E2EE */
    const json_t *metadata;       /* signaling_notify_metadata, may be NULL */
    const char *metadata_raw;     /* the same as the client wrote it (minified); when set,
                                     it is relayed instead of a re-serialization */
    const json_t *authn_metadata; /* from the auth webhook, may be NULL */
} hk_notify_conn_t;

typedef struct {
    int connections;
    int sendrecv;
    int sendonly;
    int recvonly;
} hk_channel_counts_t;

/* The `authn_metadata` to notify about conn, as a new reference, or NULL when the key
 * must be left out. sora-js-sdk 2020.6.2 and 2023.1.0 look for an E2EE `pre_key_bundle`
 * in `authn_metadata` whenever that key is present, and in `metadata` only when it is
 * absent; so:
 * - no authn_metadata from the webhook: NULL (the key is omitted, never sent as null);
 * - otherwise, for a non-E2EE connection or one whose metadata has no `pre_key_bundle`:
 *   a copy of it;
 * - for an E2EE connection whose metadata has a `pre_key_bundle`: when authn_metadata is
 *   an object, a copy with `pre_key_bundle` added from metadata (a `pre_key_bundle` the
 *   webhook set itself is kept: the webhook vouches for it); when it is not an object,
 *   NULL, so the clients fall back to `metadata`. */
json_t *hk_sora_notify_authn_metadata(const hk_notify_conn_t *conn);

/* connection.created / connection.updated / connection.destroyed.
 * include_metadata adds metadata (null when there is none) and authn_metadata (by
 * hk_sora_notify_authn_metadata; created and destroyed only).
 * existing (may be NULL) adds the list of connections already there, the joiner's own
 * event: as `data`, or as `metadata_list` (its legacy name) when legacy_list; never both.
 * Its entries always carry metadata and, by the same rule, authn_metadata. Metadata with
 * metadata_raw is written as those bytes. */
char *hk_sora_build_notify(const char *event_type, const char *channel_id,
                           const hk_notify_conn_t *conn, const hk_channel_counts_t *counts,
                           bool include_metadata, const hk_notify_conn_t *existing,
                           size_t n_existing, bool legacy_list);

#endif

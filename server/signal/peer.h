/* One signaling connection and its state machine (Sora protocol):
 *   WAIT_CONNECT --connect--> [WAIT_AUTH --webhook-->] WAIT_ANSWER --answer--> ACTIVE
 *   --> CLOSING
 * Ownership: created by signaling.c when the WebSocket is established, freed by
 * hk_peer_destroy when it is closed. A peer is in at most one channel. */
#ifndef HK_PEER_H
#define HK_PEER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "server/proto/sdp.h"
#include "server/proto/sora_msg.h"
#include "server/sfu/endpoint.h"
#include "server/signal/server.h"

struct lws;

typedef enum {
    HK_PEER_WAIT_CONNECT = 0,
    HK_PEER_WAIT_AUTH, /* the auth webhook decides */
    HK_PEER_WAIT_ANSWER,
    HK_PEER_ACTIVE,
    HK_PEER_CLOSING,
} hk_peer_state_t;

/* A queued outgoing WebSocket message; buf has LWS_PRE bytes of headroom. */
typedef struct hk_out_s {
    struct hk_out_s *next;
    size_t len;
    bool binary;
    unsigned char buf[];
} hk_out_t;

/* What a publisher sends (from its answer). */
typedef struct {
    uint32_t ssrc; /* 0 with simulcast: each layer's is learnt from its packets */
    uint32_t rtx_ssrc;
    uint8_t simulcast_rids; /* video: the layers it answered (bit i: r<i>), 0 = none */
    char track_id[HK_SDP_ID_LEN];
} hk_track_t;

struct hk_peer_s {
    hk_signal_t *sig;
    struct lws *wsi;
    hk_peer_t *next, *prev;                 /* sig->peers */
    hk_peer_t *channel_next, *channel_prev; /* channel->members */
    hk_channel_t *channel;
    uint64_t serial; /* finds it for the media workers' events */
    int worker;      /* the media worker of its transport (hk_channel_member_worker), -1 before */
    /* Its producers' relays to the other workers its channel's subscribers are on, by
     * kind and worker (sfu/relay.h); created when a subscriber there first needs one. */
    struct hk_relay_s *relays[2][HK_MAX_WORKERS];
    hk_transport_t *transport;         /* media: created at connect, owned; touched only
                                          while its worker is held (hk_signal_media) */
    hk_endpoint_t endpoint;            /* its producers and consumers (sfu/) */
    struct hk_webhook_s *webhook;      /* auth webhook in flight, or NULL */
    hk_connect_msg_t *pending_connect; /* the connect it decides on, owned */
    uint64_t auth_started_ms;
    hk_peer_state_t state;
    uint64_t created_ms;
    uint64_t joined_ms;
    /* The cluster's placement of its connect while it waits for it, or NULL. */
    struct hk_place_request_s *placing;

    char connection_id[HK_ID_LEN + 1];
    char client_id[HK_CLIENT_ID_MAX + 1];
    hk_role_t role;
    bool e2ee;
    bool audio, video;
    hk_video_codec_t video_codec;
    /* Simulcast: the encodings it was offered as a publisher (NULL: it publishes one
     * stream) and their rids (bit i: r<i>); the layer it wants of others' simulcast
     * tracks (hk_connect_msg_t.simulcast_want). */
    json_t *simulcast_encodings;
    uint8_t simulcast_rids;
    int8_t simulcast_want;
    json_t *webhook_encodings; /* the auth webhook's simulcast_encodings, until admitted */
    json_t *metadata;
    json_t *notify_metadata;
    char *notify_metadata_raw; /* the same as the client wrote it, minified */
    size_t metadata_charge;    /* its bytes counted in channel->metadata_bytes */
    json_t *authn_metadata;
    bool announced; /* connection.created was sent for it */
    /* Its tracks were offered to the members before its answer (hk_peer_publish_early). */
    bool tracks_early;

    /* The m-sections of the offers this connection gets; mids never change. */
    hk_sdp_section_t *sections;
    size_t n_sections, cap_sections;
    size_t offered_sections; /* how many the last offer or re-offer carried */
    unsigned next_mid;
    char audio_mid[HK_SDP_MID_LEN], video_mid[HK_SDP_MID_LEN];
    uint64_t session_id, session_version;
    bool offer_outstanding; /* offer or re-offer sent, no answer yet */
    bool legacy_update;     /* renegotiates with `update` instead of `re-offer` */
    bool no_recycle;        /* it declined a track in a recycled m-section: never again */
    bool reoffer_pending;   /* a change arrived while one was outstanding */
    char *reoffer_text;     /* the outstanding re-offer message, for resending */
    uint64_t reoffer_sent_ms;
    int reoffer_sends;

    /* Its published tracks, from its answer. */
    hk_track_t audio_track, video_track;

    /* Incoming message being reassembled. */
    char *rx;
    size_t rx_len, rx_cap;
    bool rx_binary, rx_overflow;

    /* Outgoing queue. */
    hk_out_t *tx_head, *tx_tail;
    size_t tx_bytes;

    int missed_pongs;
    uint64_t next_ping_ms;
    uint64_t key_window_ms;
    int key_count;

    int close_code;
    bool close_sent; /* the close frame is on the wire */
    char close_reason[120];
};

/* Allocates a peer for an established WebSocket. Returns NULL on ENOMEM. */
hk_peer_t *hk_peer_create(hk_signal_t *sig, struct lws *wsi);

/* Destroys its producers' relays to other workers (their subscribers there get nothing
 * more from it); holds the workers concerned. */
void hk_peer_drop_relays(hk_peer_t *peer);

/* Leaves the channel (notifying the others), frees everything. */
void hk_peer_destroy(hk_peer_t *peer);

/* A complete text or binary message from the client. */
void hk_peer_on_text(hk_peer_t *peer, const char *text, size_t len);
void hk_peer_on_binary(hk_peer_t *peer, const uint8_t *buf, size_t len);

/* Queues a message; a peer whose queue exceeds its limit is closed (slow reader).
 * Takes a copy. Returns 0 or a negative HK_E* code. */
int hk_peer_send(hk_peer_t *peer, const void *buf, size_t len, bool binary);

/* Queues a text message built by a hk_sora_build_* function and frees it. */
int hk_peer_send_json(hk_peer_t *peer, char *text);

/* Closes the connection with a WebSocket close code and reason after the queue drains. */
void hk_peer_close(hk_peer_t *peer, int code, const char *reason);

/* Called each second by the sig: pings, connect timeout. */
void hk_peer_tick(hk_peer_t *peer, uint64_t now_ms);

/* Makes the producers of a joiner that has not answered yet live for the tracks it was
 * offered to send (audio and video as its connect asked; not with simulcast, whose
 * layers come from the answer), so that members can be offered them before its answer
 * (MLS channels, hk_channel_offer_early). False when it cannot or did already. */
bool hk_peer_publish_early(hk_peer_t *peer);

/* Adds FORWARD sections for publisher's tracks (the kinds whose producers are live) to
 * peer (a subscriber) and re-offers. */
void hk_peer_add_publisher(hk_peer_t *peer, hk_peer_t *publisher);

/* Closes the sections that carry publisher's tracks and re-offers. */
void hk_peer_remove_publisher(hk_peer_t *peer, const char *publisher_id);

/* Goes on with a connect whose channel the cluster placed on this node (webhook, then
 * admission). msg's JSON references are taken. */
void hk_peer_connect_placed(hk_peer_t *peer, hk_connect_msg_t *msg);

/* True when the role sends / receives media. */
bool hk_role_sends(hk_role_t role);
bool hk_role_receives(hk_role_t role);

#endif

/* One peer's media transport: its ICE tuples and consent, its DTLS association, its
 * SRTP sessions, the streams it publishes (receive statistics, NACK tracking and the
 * retransmission cache) and the RTCP hisoka generates toward it.
 * Ownership: created with the peer at `connect`, destroyed with the peer. */
#ifndef HK_TRANSPORT_H
#define HK_TRANSPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/proto/keyframe.h"
#include "server/proto/nack.h"
#include "server/proto/rtcp.h"
#include "server/proto/sdp.h"

typedef struct hk_peer_s hk_peer_t;
typedef struct hk_dtls_s hk_dtls_t;
typedef struct hk_srtp_s hk_srtp_t;

#define HK_TRANSPORT_MAX_TUPLES 4
#define HK_TWCC_MAX             512

/* A stream the peer publishes: audio, video or video RTX. */
typedef struct {
    uint32_t ssrc; /* 0 = none */
    hk_media_kind_t kind;
    bool rtx;
    bool started;
    uint16_t max_seq;
    uint32_t cycles;
    uint32_t base_seq;
    uint32_t received;
    uint32_t expected_prior, received_prior;
    uint32_t last_sr; /* middle 32 bits of the last SR's NTP time */
    uint64_t last_sr_ms;
    uint64_t last_pli_ms;
    uint8_t last_pt;               /* payload type of the latest packet */
    hk_nack_tracker_t nack;        /* video only */
    struct hk_nack_cache_s *cache; /* video only: plain packets for retransmission */
    uint64_t packets;
    uint64_t bytes;
    void *dump; /* FILE * of debug_payload_directory, when that debugging aid is on */
} hk_stream_t;

typedef struct hk_transport_s {
    hk_peer_t *peer;
    /* ICE */
    uint64_t tuple_keys[HK_TRANSPORT_MAX_TUPLES];
    uint64_t tuple_consent_ms[HK_TRANSPORT_MAX_TUPLES]; /* last valid check from each */
    int n_tuples;
    struct sockaddr_in selected; /* where we send */
    bool has_selected;
    bool nominated;            /* selected by USE-CANDIDATE, not only by being validated first */
    uint64_t last_ice_warn_ms; /* refused checks are logged at most once a second */
    char remote_ufrag[257];    /* the client's ICE credentials, from its answer */
    char remote_pwd[257];
    /* A consent check we sent to a tuple the client nominated while the selected one
     * still had consent (RFC 7675): media moves there when it is answered. */
    bool probe_pending;
    struct sockaddr_in probe_to;
    uint8_t probe_tid[12];
    uint64_t probe_sent_ms;
    int probe_sends;
    uint64_t created_ms;
    uint64_t epoch_us; /* arrival times in transport-wide feedback count from here */
    uint64_t last_consent_ms;
    /* DTLS-SRTP */
    hk_dtls_t *dtls;
    uint64_t dtls_timer_ms; /* 0 = none */
    hk_srtp_t *srtp;
    bool ready;            /* SRTP keys in place */
    uint32_t rtcp_ssrc;    /* our SSRC in RTCP toward this peer */
    uint16_t twcc_out_seq; /* transport-wide sequence numbers we write toward it */
    /* What it publishes. */
    hk_stream_t streams[3]; /* audio, video, video RTX */
    /* Transport-wide CC: arrivals to report back to it. */
    hk_rtcp_twcc_packet_t twcc[HK_TWCC_MAX];
    size_t n_twcc;
    uint8_t twcc_fb_count;
    bool twcc_started;
    uint16_t twcc_next; /* first sequence number the next feedback covers */
    uint64_t last_twcc_ms;
    uint64_t last_rr_ms;
    uint64_t nack_window_ms; /* max_nacks_per_second accounting */
    uint32_t nack_count;
    /* Key-frame requests owed to its video after E2EE key deliveries (server/keyframe.h). */
    hk_keyframe_schedule_t keyframe_after_key;
} hk_transport_t;

/* Creates the transport of a peer (at connect). Returns NULL on ENOMEM. */
hk_transport_t *hk_transport_create(hk_peer_t *peer);

/* Frees it: tuples leave the worker's table, DTLS and SRTP are released. */
void hk_transport_destroy(hk_transport_t *t);

/* The peer answered: sets up its published streams from its answer's SSRCs. */
void hk_transport_set_streams(hk_transport_t *t);

/* Finds a published stream by SSRC, or NULL. */
hk_stream_t *hk_transport_stream(hk_transport_t *t, uint32_t ssrc);

/* The client's ice-ufrag and ice-pwd, from its answer: the server's own consent checks
 * are keyed with them. */
void hk_transport_set_remote_ice(hk_transport_t *t, const char *ufrag, const char *pwd);

/* A STUN Binding success response from `from`: moves the media there when it answers
 * the consent check the transport sent to that tuple. */
void hk_transport_on_check_response(hk_transport_t *t, const uint8_t *buf, size_t len,
                                    const struct sockaddr_in *from, uint64_t now_ms);

/* An ICE check from `from` with this transport's credentials succeeded (nominate:
 * USE-CANDIDATE). A tuple belongs to one transport: when another live transport holds
 * `from` and its consent there has not expired, nothing changes and HK_EPERM is
 * returned (the caller sends no answer). A nominated tuple is replaced by another only
 * once its own consent has expired (RFC 7675; consent_timeout), or once the new tuple
 * answered a consent check the server sent it, keyed with the client's ice-pwd (a
 * spoofed source cannot answer). A check from a new tuple validates that tuple and
 * starts such a check. 0 otherwise. */
int hk_transport_on_check(hk_transport_t *t, const struct sockaddr_in *from, bool nominate,
                          uint64_t now_ms);

/* A datagram of each kind from a validated tuple; buf is writable. */
void hk_transport_on_dtls(hk_transport_t *t, const uint8_t *buf, size_t len);
void hk_transport_on_srtp(hk_transport_t *t, uint8_t *buf, size_t len, uint64_t now_ms);
void hk_transport_on_srtcp(hk_transport_t *t, uint8_t *buf, size_t len, uint64_t now_ms);

/* Protects an RTCP packet written in a send slot and commits it. buf must be the slot
 * returned by hk_udp_slot for this transport. */
void hk_transport_send_rtcp(hk_transport_t *t, const uint8_t *rtcp, size_t len);

/* Sends a PLI for the publisher stream `stream` of `publisher` (throttled unless force). */
void hk_transport_request_keyframe(hk_transport_t *publisher, hk_stream_t *stream, bool force,
                                   uint64_t now_ms);

/* A key message from or to this publisher was relayed (E2EE): its video owes its
 * subscribers key frames (server/keyframe.h). The media tick sends the requests, each
 * only once the publisher's video flows and not within the PLI throttle interval. */
void hk_transport_keyframe_after_key(hk_transport_t *publisher, uint64_t now_ms);

/* Media tick: consent, DTLS timers, NACKs, transport-wide feedback, receiver reports,
 * key-frame requests after key deliveries. */
void hk_transport_tick(hk_transport_t *t, uint64_t now_ms);

#endif

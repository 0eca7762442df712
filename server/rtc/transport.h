/* One connection's media transport, sans-IO: ICE-lite (the client's checks, consent, the
 * tuples it may use), DTLS, SRTP, the streams the client publishes (receive statistics,
 * NACK tracking and the packet cache for retransmissions) and the RTCP this side owes it.
 * Datagrams come in through hk_rtc_host_receive, time as arguments; what it sends goes
 * to its selected tuple's link (io/tx.h). What happens upward (media, feedback, ready,
 * failure) goes to the events given at creation: rtc/ never knows who owns it.
 * Ownership: created and destroyed by its owner (the signaling session); it removes
 * itself from the host's maps and wheel when destroyed. */
#ifndef HK_TRANSPORT_H
#define HK_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/wheel.h"
#include "server/io/tx.h"
#include "server/proto/keyframe.h"
#include "server/proto/nack.h"
#include "server/proto/rtcp.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"
#include "server/rtc/host.h"
#include "server/rtc/pacer.h"

typedef struct hk_dtls_s hk_dtls_t;
typedef struct hk_srtp_s hk_srtp_t;
typedef struct hk_bwe_s hk_bwe_t;

#define HK_TRANSPORT_MAX_TUPLES 4
#define HK_TWCC_MAX             512

/* A stream the client publishes: audio, video and its RTX. A simulcast publisher sends
 * one video and one RTX stream per layer: layer i is HK_STREAM_VIDEO + i and
 * HK_STREAM_RTX + i (one layer without simulcast). */
typedef enum {
    HK_STREAM_AUDIO = 0,
    HK_STREAM_VIDEO = 1,
    HK_STREAM_RTX = HK_STREAM_VIDEO + HK_SIMULCAST_MAX_LAYERS,
    HK_STREAM_COUNT = HK_STREAM_RTX + HK_SIMULCAST_MAX_LAYERS,
} hk_stream_index_t;

static inline bool hk_stream_is_video(int index)
{
    return index >= HK_STREAM_VIDEO && index < HK_STREAM_RTX;
}

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
    uint64_t last_ms;              /* arrival of the latest packet (simulcast streams) */
    hk_nack_tracker_t nack;        /* video only */
    struct hk_nack_cache_s *cache; /* video only: plain packets for retransmission */
    uint64_t packets;
    uint64_t bytes;
    void *dump; /* FILE * of debug_payload_directory, when that debugging aid is on */
} hk_stream_t;

/* Upward events; user is the owner's pointer given at creation. */
typedef struct {
    /* SRTP keys are in place: media can flow both ways. */
    void (*on_ready)(void *user, uint64_t now_ms);
    /* The transport is dead (consent expired, ICE or DTLS failed): close code and
     * reason for the client. The transport stays allocated until its owner frees it. */
    void (*on_failed)(void *user, int close_code, const char *reason);
    /* A plain RTP packet of a published stream (retransmissions arrive unwrapped, on
     * the video stream); buf is writable. */
    void (*on_rtp)(void *user, hk_stream_index_t stream, uint8_t *buf, size_t len,
                   const hk_rtp_header_t *hdr, uint64_t now_ms);
    /* A sender report of a published stream, its report blocks removed. */
    void (*on_sender_report)(void *user, hk_stream_index_t stream, const hk_rtcp_report_t *sr);
    /* A feedback packet (RTPFB/PSFB) about what this side sends the client. */
    void (*on_feedback)(void *user, const hk_rtcp_packet_t *pkt, uint64_t now_ms);
} hk_transport_events_t;

typedef struct hk_transport_s {
    hk_rtc_host_t *host;
    const hk_transport_events_t *events;
    void *user;
    const char *log_id; /* for log lines: the owner's connection id */
    bool failed;        /* on_failed was sent: nothing more happens */
    hk_wheel_entry_t timer;
    /* ICE: our credentials (in the offer), the client's (from its answer). */
    char ice_ufrag[HK_RTC_UFRAG_LEN + 1];
    char ice_pwd[33];
    char remote_ufrag[257];
    char remote_pwd[257];
    hk_tuple_t tuples[HK_TRANSPORT_MAX_TUPLES];
    uint64_t tuple_consent_ms[HK_TRANSPORT_MAX_TUPLES]; /* last valid check from each */
    int n_tuples;
    hk_tuple_t selected; /* where we send */
    bool has_selected;
    uint8_t path;              /* hk_path_t of selected, when has_selected */
    bool nominated;            /* selected by USE-CANDIDATE, not only by being validated first */
    uint64_t last_ice_warn_ms; /* refused checks are logged at most once a second */
    /* A consent check we sent to a tuple the client nominated while the selected one
     * still had consent (RFC 7675): media moves there when it is answered. */
    bool probe_pending;
    hk_tuple_t probe_to;
    uint8_t probe_tid[12];
    uint64_t probe_sent_ms;
    int probe_sends;
    uint64_t created_ms;
    uint64_t epoch_us; /* arrival times in transport-wide feedback count from here */
    uint64_t last_consent_ms;
    /* DTLS-SRTP */
    char remote_fingerprint_algorithm[16];
    uint8_t remote_fingerprint[64];
    size_t remote_fingerprint_len; /* 0 until the answer */
    hk_dtls_t *dtls;
    uint64_t dtls_timer_ms; /* 0 = none */
    hk_srtp_t *srtp;
    bool ready;            /* SRTP keys in place */
    uint32_t rtcp_ssrc;    /* our SSRC in RTCP toward this client */
    uint16_t twcc_out_seq; /* transport-wide sequence numbers we write toward it */
    /* What it publishes. */
    hk_stream_t streams[HK_STREAM_COUNT]; /* hk_stream_index_t */
    /* Simulcast: the layers (bit i: rid r<i>) whose SSRCs are learnt from the rid
     * extension of their packets; 0 = SSRCs from the answer. */
    uint8_t simulcast_rids;
    uint64_t last_latch_warn_ms;
    /* Transport-wide CC: arrivals to report back to it. */
    hk_rtcp_twcc_packet_t twcc[HK_TWCC_MAX];
    size_t n_twcc;
    uint8_t twcc_fb_count;
    bool twcc_started;
    uint16_t twcc_next; /* first sequence number the next feedback covers */
    uint64_t last_twcc_ms;
    uint64_t last_rr_ms;
    uint64_t nack_window_ms; /* max_nacks_per_second accounting (what it NACKs us) */
    uint32_t nack_count;
    /* Key-frame requests owed to its video after E2EE key deliveries (proto/keyframe.h). */
    hk_keyframe_schedule_t keyframe_after_key;
    /* Downlink estimate of what it receives (rtc/bwe.h): NULL until enabled. Every RTP
     * packet sent to it is recorded with its transport-wide sequence number. */
    hk_bwe_t *bwe;
    /* With the estimate, what is sent to it is paced (rtc/pacer.h) at a multiple of it;
     * pacer.pool is NULL without one. */
    hk_pacer_t pacer;
    /* Padding for probes: RTX packets without payload on an RTX SSRC the client was
     * offered (pad_ssrc 0: none), so they never reach a decoder. */
    uint32_t pad_ssrc;
    uint8_t pad_pt;
    uint16_t pad_seq;
    uint8_t pad_mid_len;
    char pad_mid[HK_SDP_MID_LEN];
    /* The probe cluster being sent: everything sent between start and end is paced up to
     * bwe_probe_bps with padding. */
    bool bwe_probing;
    uint64_t bwe_probe_bps;
    uint64_t bwe_probe_start_us, bwe_probe_end_us;
    uint64_t bwe_probe_bytes;
} hk_transport_t;

/* Creates a transport with fresh ICE credentials, known to the host by its ufrag.
 * Returns NULL on ENOMEM. */
hk_transport_t *hk_transport_create(hk_rtc_host_t *host, const hk_transport_events_t *events,
                                    void *user, const char *log_id, uint64_t now_ms);
/* Frees it: it leaves the host's maps and wheel; DTLS and SRTP are released. */
void hk_transport_destroy(hk_transport_t *t);

/* From the client's answer: its ICE credentials (the server's own consent checks are
 * keyed with them) and its DTLS fingerprint (a handshake is accepted only with it). */
void hk_transport_set_remote(hk_transport_t *t, const char *ufrag, const char *pwd,
                             const char *fp_algorithm, const uint8_t *fp, size_t fp_len);

/* The client answered: what it publishes (0 = none). */
void hk_transport_set_streams(hk_transport_t *t, uint32_t audio_ssrc, uint32_t video_ssrc,
                              uint32_t rtx_ssrc);

/* The client answered simulcast for its video: layer i (rid r<i>, bit i of rids) takes
 * the SSRC that first arrives with that rid (RFC 8852: the rid extension rides only on the
 * first packets of each encoding, and on retransmissions as the repaired rid). A layer
 * whose stream has been silent for a second may be taken by a new SSRC. */
void hk_transport_set_simulcast(hk_transport_t *t, uint8_t rids);

/* Starts estimating what the client can receive (rtc/bwe.h) from its transport-cc
 * feedback, given to hk_transport_on_twcc. Returns 0 (also when already on), HK_ENOMEM. */
int hk_transport_enable_bwe(hk_transport_t *t, uint64_t start_bps, uint64_t min_bps,
                            uint64_t max_bps);

/* The client's transport-cc feedback about what this side sent it. */
void hk_transport_on_twcc(hk_transport_t *t, const hk_rtcp_fb_t *fb, uint64_t now_ms);

/* Where probe padding goes: RTX SSRC ssrc with payload type pt (its seq continues from
 * seq) in section mid; ssrc 0: nowhere (no probing). */
void hk_transport_set_padding(hk_transport_t *t, uint32_t ssrc, uint8_t pt, uint16_t seq,
                              const char *mid);

/* Sends a probe cluster: for duration_ms from now, what goes to the client is topped up
 * with padding to bps. False when it cannot (no estimate, no padding SSRC, not ready, a
 * cluster still out). */
bool hk_transport_probe(hk_transport_t *t, uint64_t bps, uint64_t duration_ms);

/* Ends the cluster being sent now (its feedback is still measured). */
void hk_transport_probe_stop(hk_transport_t *t);

/* Finds a published stream by SSRC, or NULL. */
hk_stream_t *hk_transport_stream(hk_transport_t *t, uint32_t ssrc);

/* True when media can be sent to the client now. */
static inline bool hk_transport_can_send(const hk_transport_t *t)
{
    return t->ready && t->has_selected && !t->failed;
}

/* Sending RTP on the forwarding path without a copy: a buffer of HK_TX_BUF_SIZE bytes
 * for the selected tuple (NULL when it cannot send); write the plain packet into it, with
 * t->twcc_out_seq as its transport-wide sequence number, then hk_transport_send_slot
 * protects it in place and sends it. With an estimate the pacer may hold it instead: it
 * is copied, and leaves (with the sequence number then due) from a later call or tick. */
uint8_t *hk_transport_slot(hk_transport_t *t);
void hk_transport_send_slot(hk_transport_t *t, uint8_t *slot, size_t len);

/* Protects and sends one RTCP packet (copied). */
void hk_transport_send_rtcp(hk_transport_t *t, const uint8_t *rtcp, size_t len);

/* Sends a PLI for the published stream (throttled unless force). */
void hk_transport_request_keyframe(hk_transport_t *t, hk_stream_t *stream, bool force,
                                   uint64_t now_ms);

/* A key message from or to this publisher was relayed (E2EE): its video owes its
 * subscribers key frames (proto/keyframe.h), sent once the video flows and not within
 * the PLI throttle interval. */
void hk_transport_keyframe_after_key(hk_transport_t *t, uint64_t now_ms);

/* NACK budget (max_nacks_per_second): of n sequence numbers the client NACKed, how many
 * may be answered now; the rest are counted as rate-limited. */
uint32_t hk_transport_nack_budget(hk_transport_t *t, uint32_t n, uint64_t now_ms);

/* True when ICE validated `from` for this transport. */
bool hk_transport_has_tuple(const hk_transport_t *t, const hk_tuple_t *from);

/* Internal to rtc/ (host.c): the link of a validated tuple closed; true when it was
 * this transport's. */
bool hk_transport_forget_tuple(hk_transport_t *t, const hk_tuple_t *tuple);

/* Internal to rtc/ (host.c): a datagram of each kind from a validated tuple. */
void hk_transport_on_dtls(hk_transport_t *t, const uint8_t *buf, size_t len, uint64_t now_ms);
void hk_transport_on_srtp(hk_transport_t *t, uint8_t *buf, size_t len, uint64_t now_us);
void hk_transport_on_srtcp(hk_transport_t *t, uint8_t *buf, size_t len, uint64_t now_ms);
int hk_transport_on_check(hk_transport_t *t, const hk_tuple_t *from, bool nominate,
                          uint64_t now_ms);
void hk_transport_on_check_response(hk_transport_t *t, const uint8_t *buf, size_t len,
                                    const hk_tuple_t *from, uint64_t now_ms);
/* The transport's deadline came: consent, DTLS timers, NACKs, feedback, reports. */
void hk_transport_on_timer(hk_transport_t *t, uint64_t now_ms);
/* Its next deadline changed (earlier): the wheel is told. */
void hk_transport_reschedule(hk_transport_t *t, uint64_t now_ms);

#endif

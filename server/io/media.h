/* The worker's media plane: the one UDP port, ICE-lite (STUN checks, the tuple table,
 * consent), demultiplexing to each peer's transport (DTLS, SRTP), and the 20 ms media
 * tick (NACK, transport-wide feedback, receiver reports, DTLS retransmissions).
 * Everything here belongs to one worker; nothing is global. */
#ifndef HK_MEDIA_H
#define HK_MEDIA_H

#include <stdint.h>
#include <uv.h>

#include "common/map.h"
#include "server/proto/demux.h"
#include "server/proto/stun.h"
#include "server/io/udp.h"

typedef struct hk_worker_s hk_worker_t;
typedef struct hk_dtls_context_s hk_dtls_context_t;

/* Media counters (exported by the API). */
typedef struct {
    uint64_t dropped_demux[HK_DEMUX_DROP_COUNT]; /* by demux reason */
    uint64_t dropped_unvalidated;        /* DTLS/RTP/RTCP from a tuple ICE has not validated */
    uint64_t stun[HK_STUN_STATUS_COUNT]; /* STUN requests by outcome */
    uint64_t dtls_errors;
    uint64_t dtls_connected;
    uint64_t dtls_before_answer; /* ClientHello before the answer's fingerprint: dropped */
    uint64_t srtp_unprotect_errors;
    uint64_t srtcp_unprotect_errors;
    uint64_t srtp_protect_errors;
    uint64_t before_keys;  /* SRTP/SRTCP before DTLS finished: dropped */
    uint64_t unknown_ssrc; /* RTP from a publisher with an SSRC it did not announce */
    uint64_t rtp_packets_in;
    uint64_t rtp_bytes_in;
    uint64_t rtcp_packets_in;
    uint64_t forwarded_packets;
    uint64_t forwarded_bytes;
    uint64_t nacks_received;  /* NACKed sequence numbers from subscribers */
    uint64_t retransmissions; /* answered from the cache */
    uint64_t retransmission_misses;
    uint64_t nacks_rate_limited; /* NACKed packets over max_nacks_per_second: not answered */
    uint64_t nacks_sent;         /* NACK packets to publishers */
    uint64_t plis_received;
    uint64_t plis_sent;
    uint64_t plis_throttled;
    uint64_t twcc_feedback_sent;
    uint64_t receiver_reports_sent;
    uint64_t sender_reports_relayed;
    uint64_t rtcp_errors; /* malformed compound packets */
    uint64_t rtp_errors;  /* RTP that authenticated but does not parse */
    uint64_t consent_expired;
    uint64_t ice_tuple_conflicts;     /* checks refused: the tuple is another transport's */
    uint64_t ice_nominations_refused; /* USE-CANDIDATE elsewhere while the selected has consent */
    uint64_t ice_consent_checks_sent; /* our checks to such a tuple (retransmissions too) */
    uint64_t ice_tuple_moves;         /* the selected tuple moved after our check was answered */
} hk_media_counters_t;

typedef struct {
    hk_worker_t *worker;
    hk_udp_t udp;
    hk_stun_t *stun;
    hk_dtls_context_t *dtls;
    hk_map_t tuples; /* tuple key -> hk_transport_t */
    uv_timer_t tick;
    int tick_running;
    int n_transports;
    uint8_t work[HK_UDP_BUF_SIZE]; /* scratch for RTCP building */
    hk_media_counters_t counters;
} hk_media_t;

/* Opens the media port and the DTLS context. Returns 0 or HK_EIO (logged). */
int hk_media_start(hk_media_t *media, hk_worker_t *worker);
void hk_media_stop(hk_media_t *media);

/* The tuple key of an IPv4 address and port. */
uint64_t hk_media_tuple_key(const struct sockaddr_in *addr);

/* Starts the media tick when the first transport appears; stops it with the last. */
void hk_media_transport_added(hk_media_t *media);
void hk_media_transport_removed(hk_media_t *media);

#endif

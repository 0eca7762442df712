/* A worker: one libuv loop and everything it owns — the libwebsockets context
 * (signaling and API vhosts on the same loop), channels, peers, the DTLS certificate
 * and the counters. Nothing here is global: N workers would be N of these. */
#ifndef HK_WORKER_H
#define HK_WORKER_H

#include <libwebsockets.h>

#include "common/map.h"
#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "server/rtc/cert.h"
#include "server/io/media.h"

typedef struct hk_peer_s hk_peer_t;
typedef struct hk_channel_s hk_channel_t;

/* Counters exported by the API (Prometheus names in server/api.c). */
typedef struct {
    uint64_t connections_total;
    uint64_t refused_bad_request;
    uint64_t refused_auth;
    uint64_t refused_e2ee_mismatch;
    uint64_t refused_channel_full;
    uint64_t refused_server_full;
    uint64_t refused_too_large;
    uint64_t timeouts_connect;
    uint64_t timeouts_pong;
    uint64_t timeouts_reoffer;
    uint64_t slow_reader_disconnects;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t offers;
    uint64_t reoffers;
    uint64_t notifies;
    uint64_t key_messages_relayed;
    uint64_t key_messages_dropped;
    uint64_t bad_answers;
    uint64_t refused_per_address;      /* WebSockets over max_connections_per_address */
    uint64_t refused_no_descriptors;   /* accepted and closed at once: out of descriptors */
    uint64_t api_refused_host;         /* Host not an address, localhost or api_allowed_hosts */
    uint64_t api_refused_unauthorized; /* no or wrong Authorization: Bearer */
    uint64_t api_refused_cross_origin; /* state-changing request from another origin */
} hk_counters_t;

typedef struct hk_worker_s {
    uv_loop_t *loop;
    const hk_config_t *config;
    struct lws_context *lws;
    char demo_origin[PATH_MAX];       /* absolute demo_directory */
    struct lws_http_mount demo_mount; /* /demo on the API vhost */
    hk_cert_t cert;
    char candidate_addresses[4][64]; /* host candidates written into offers */
    size_t n_candidates;
    hk_channel_t *channels; /* list of live channels */
    int n_channels;
    hk_peer_t *peers;  /* every connection, for timers */
    int n_connections; /* connections that passed `connect` */
    uv_timer_t tick;   /* 1 s: pings, connect timeouts */
    uv_signal_t sigint, sigterm;
    int stopping;
    hk_counters_t counters;
    hk_map_t sockets_per_address; /* IPv4 address -> open signaling WebSockets (as a count) */
    int listen_fds[2];            /* signaling and API listening sockets (for EMFILE relief) */
    int spare_fd;                 /* held open, given up to accept-and-close under EMFILE */
    uint64_t last_emfile_log;
    uint64_t last_per_address_log; /* refusals are logged at most once a second */
    hk_media_t media;              /* the UDP port and everything on it */
} hk_worker_t;

/* Creates the worker on loop: certificate, lws context with the signaling and API
 * vhosts, timers. Returns 0 or a negative HK_E* code (logged). */
int hk_worker_start(hk_worker_t *worker, uv_loop_t *loop, const hk_config_t *config);

/* Closes every connection with a reason and releases the worker; the loop is run until
 * every handle is closed. */
void hk_worker_stop(hk_worker_t *worker);

uint64_t hk_worker_now_ms(const hk_worker_t *worker);

#endif

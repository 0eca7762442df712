/* The signaling server: the libwebsockets context (signaling and API vhosts on one
 * libuv loop), its channels and connections, and the signaling counters. The media
 * plane it sets up connections on (an rtc/ host, whose link counters it exports) and
 * the DTLS certificate it writes into offers are given to it by app/. */
#ifndef HK_SIGNAL_SERVER_H
#define HK_SIGNAL_SERVER_H

#include <libwebsockets.h>

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "common/mailbox.h"
#include "common/map.h"
#include "config/config.h"
#include "server/io/tx.h"
#include "server/rtc/cert.h"
#include "server/rtc/host.h"
#include "server/sfu/relay.h"
#include "server/signal/mls_ds.h"
#include "server/signal/placement.h"

typedef struct hk_peer_s hk_peer_t;
typedef struct hk_channel_s hk_channel_t;

/* Counters exported by the API (Prometheus names in server/signal/api.c). */
typedef struct {
    uint64_t connections_total;
    uint64_t refused_bad_request;
    uint64_t refused_auth;
    uint64_t refused_e2ee_mismatch;
    uint64_t refused_channel_full;
    uint64_t refused_server_full;
    uint64_t refused_out_of_memory; /* an allocation failed while admitting it */
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
    uint64_t mls_messages_in;      /* MLS envelopes handed to a channel's delivery service */
    uint64_t mls_messages_dropped; /* refused by it (malformed, rate, unknown member) */
    uint64_t bad_answers;
    uint64_t refused_per_address;      /* WebSockets over max_connections_per_address */
    uint64_t refused_no_descriptors;   /* accepted and closed at once: out of descriptors */
    uint64_t api_refused_host;         /* Host not an address, localhost or api_allowed_hosts */
    uint64_t api_refused_unauthorized; /* no or wrong Authorization: Bearer */
    uint64_t api_refused_cross_origin; /* state-changing request from another origin */
    uint64_t api_metrics_repeated;     /* /metrics scrapes given the last text (a flood) */
} hk_counters_t;

/* What signaling knows of a media worker (app/worker.h): its host, whose transports,
 * producers and consumers the main thread may touch only while it holds the worker
 * (hk_signal_media), its ports, and how many connections it was given. */
typedef struct {
    hk_rtc_host_t *host;
    hk_relay_inbox_t *relays; /* relays' inbox (a channel over several workers) */
    int media_port;           /* its UDP port, written into offers */
    int media_tcp_port;       /* its ICE-TCP port, 0 when off */
    const hk_link_counters_t *link_counters;
    const int *link_gso;                        /* whether it coalesces with GSO */
    const hk_tcp_link_counters_t *tcp_counters; /* NULL when media_tcp_port is 0 */
    int connections;                            /* placed on it, open */
    int channels;                               /* placed on it, live */
    bool held;
} hk_media_worker_t;

/* /metrics is rendered at most this many times a second (a render holds every worker, and
 * the path asks for no secret); further scrapes in that second get the last text. */
#define HK_METRICS_RENDERS_PER_SECOND 20

typedef struct hk_signal_s {
    uv_loop_t *loop;
    const hk_config_t *config;
    struct lws_context *lws;
    char demo_origin[PATH_MAX];       /* absolute demo_directory */
    struct lws_http_mount demo_mount; /* /demo on the API vhost */
    const hk_cert_t *cert;
    char candidate_addresses[4][64]; /* host candidates written into offers */
    size_t n_candidates;
    hk_channel_t *channels; /* list of live channels */
    int n_channels;
    hk_peer_t *peers;  /* every connection, for timers */
    int n_connections; /* connections that passed `connect` */
    uv_timer_t tick;   /* 1 s: pings, connect timeouts */
    int stopping;      /* draining: /health says 503, new WebSockets are refused */
    hk_counters_t counters;
    hk_map_t sockets_per_address; /* IPv4 address -> open signaling WebSockets (as a count) */
    int listen_fds[2];            /* signaling and API listening sockets (for EMFILE relief) */
    int spare_fd;                 /* held open, given up to accept-and-close under EMFILE */
    uint64_t last_emfile_log;
    uint64_t last_per_address_log; /* refusals are logged at most once a second */
    /* The media workers (given by app/): a channel lives on one; hold(user, i, true)
     * stops worker i at its mailbox, hold(user, i, false) lets it go on. */
    hk_media_worker_t *workers;
    int n_workers;
    void (*hold)(void *user, int worker, bool hold);
    void *hold_user;
    int n_held;
    uv_prepare_t release_prepare; /* the held workers go on before the loop waits */
    uv_check_t release_check;     /* and after the callbacks of each wake-up */
    hk_mailbox_t events;          /* the workers' events (a transport failed, a layer moved) */
    hk_map_t peer_serials;        /* peer serial -> peer, for those events */
    uint64_t next_serial;
    hk_mls_ds_config_t mls_config; /* every MLS channel's DS: one external-sender key */
    hk_mls_ds_stats_t mls_retired; /* the DS counters of channels already freed */
    /* /metrics as last rendered, and the renders of the current second. */
    char *metrics_text;
    uint64_t metrics_second_ms;
    int metrics_renders;
    /* The cluster (app/cluster.c sets it before hk_signal_start), NULL: one node. */
    const hk_placement_t *placement;
} hk_signal_t;

/* Starts signaling on loop: lws context with the signaling and API vhosts, timers.
 * sig->workers, n_workers, hold and cert must be set. Returns 0 or a negative
 * HK_E* code (logged). */
int hk_signal_start(hk_signal_t *sig, uv_loop_t *loop, const hk_config_t *config);

/* Stops taking connections (SIGTERM): /health answers 503 from now on. */
void hk_signal_drain(hk_signal_t *sig);

/* Closes every connection with a reason, waiting up to shutdown_timeout for them to
 * read it. */
void hk_signal_close_all(hk_signal_t *sig);

/* Releases the server: the loop is run until every handle on it is closed (stop the
 * other users of the loop first). Connections still open are dropped. */
void hk_signal_stop(hk_signal_t *sig);

uint64_t hk_signal_now_ms(const hk_signal_t *sig);

/* The host of media worker `worker`, held for the main thread (its media may be
 * touched) until the current callback returns to the loop. */
hk_rtc_host_t *hk_signal_media(hk_signal_t *sig, int worker);
/* Every worker held (the API's counters and stats). */
void hk_signal_media_all(hk_signal_t *sig);

/* The least loaded worker, for a new channel. */
int hk_signal_place(const hk_signal_t *sig);

#endif

/* The media workers: one thread each, with its own libuv loop, UDP port
 * (media_port + index) and, when media_tcp_port is set, ICE-TCP port (media_tcp_port +
 * index). The ports feed the worker's rtc/ host, whose transports send back through the
 * link each tuple came on; a timer advances the host's and the TCP connections' deadline
 * wheels. Everything a worker has belongs to its thread; nothing is global.
 *
 * Signaling (the main loop) reaches a worker's media in two ways, both through the
 * worker's mailbox (common/mailbox.h), and never with a lock on the packet path:
 *   - hold: the worker stops at its next mailbox turn and waits until it is released;
 *     meanwhile the main thread works on its transports, producers and consumers (sets
 *     up a connection's media, reads /stats). The worker's loop iteration in progress
 *     ends first, so a hold costs the main thread at most one iteration of the worker.
 *   - stop: the worker closes its ports and its thread ends.
 * Events the other way (a transport failed, a layer switched) go through signaling's
 * mailbox (signal/server.h). */
#ifndef HK_WORKER_H
#define HK_WORKER_H

#include <pthread.h>
#include <stdio.h>
#include <uv.h>

#include "common/mailbox.h"
#include "config/config.h"
#include "server/io/tcp_ice.h"
#include "server/io/udp.h"
#include "server/rtc/cert.h"
#include "server/rtc/host.h"
#include "server/sfu/relay.h"

typedef enum { HK_HOLD_NONE = 0, HK_HOLD_ASKED, HK_HOLD_HELD } hk_hold_t;

typedef struct {
    int index;
    uv_loop_t loop;
    uv_thread_t thread;
    bool thread_running; /* between uv_thread_create and the join */
    hk_mailbox_t inbox;
    hk_udp_t udp;
    hk_tcp_ice_t tcp; /* open when tcp_open */
    bool tcp_open;
    hk_rtc_host_t host;
    uv_timer_t tick;         /* HK_WHEEL_TICK_MS */
    hk_relay_inbox_t relays; /* relays of a channel over several workers (sfu/relay.h) */
    uv_async_t relay_wake;   /* their wake: the inbox is drained on this loop */
    bool running;
    FILE *bwe_trace; /* HISOKA_BWE_TRACE: the downlink estimates' inputs, appended */
    /* Holds: the main thread asks (ASKED), the worker answers at its mailbox (HELD) and
     * waits until the main thread sets NONE again. */
    pthread_mutex_t hold_lock;
    pthread_cond_t hold_cond;
    hk_hold_t hold;
    hk_message_t hold_message;
    hk_message_t stop_message;
} hk_worker_t;

/* The worker count `workers` asks for on this machine (0: one per available core),
 * bounded by HK_MAX_WORKERS. */
int hk_worker_count(const hk_config_t *config);

/* Opens worker `index`'s media port(s) and host (with the process's certificate) and
 * starts its thread. Returns 0 or HK_EIO (logged). When the environment names a file in
 * HISOKA_BWE_TRACE, every downlink estimate's inputs are appended to it (a diagnostic:
 * a line per packet sent and per feedback entry, as hk_bwe_set_recorder writes them,
 * after the connection id); tests/unit/fixtures/bwe/README says how a trace becomes a
 * unit test's fixture. */
int hk_worker_start(hk_worker_t *w, int index, const hk_config_t *config, const hk_cert_t *cert);

/* Main thread: stops the worker at its mailbox until hk_worker_release (see above). A
 * worker whose thread ended is held already. */
void hk_worker_hold(hk_worker_t *w);
void hk_worker_release(hk_worker_t *w);

/* Main thread: closes its handles and joins its thread (its mailbox runs what was
 * posted before). */
void hk_worker_stop(hk_worker_t *w);

/* Frees the host, once nothing uses its transports any more (after hk_worker_stop). */
void hk_worker_free(hk_worker_t *w);

#endif

/* A media worker: one libuv loop's media plane. The UDP port (io/udp) and, when
 * media_tcp_port is set, the ICE-TCP port (io/tcp_ice) feed an rtc/ host, whose
 * transports send back through the link each tuple came on; a timer advances the
 * host's and the TCP connections' deadline wheels. Everything here belongs to the worker; nothing
 * is global. (One worker today, on the main loop; one per core is the plan of ARCHITECTURE.md.) */
#ifndef HK_WORKER_H
#define HK_WORKER_H

#include <stdio.h>
#include <uv.h>

#include "config/config.h"
#include "server/io/tcp_ice.h"
#include "server/io/udp.h"
#include "server/rtc/cert.h"
#include "server/rtc/host.h"

typedef struct {
    uv_loop_t *loop;
    hk_udp_t udp;
    hk_tcp_ice_t tcp; /* open when tcp_open */
    bool tcp_open;
    hk_rtc_host_t host;
    uv_timer_t tick; /* HK_WHEEL_TICK_MS */
    bool running;
    FILE *bwe_trace; /* HISOKA_BWE_TRACE: the downlink estimates' inputs, appended */
} hk_worker_t;

/* Opens the media port(s) and the host (with the process's certificate). Returns 0 or
 * HK_EIO (logged). When the environment names a file in HISOKA_BWE_TRACE, every
 * downlink estimate's inputs are appended to it (a diagnostic: a line per packet sent
 * and per feedback entry, as hk_bwe_set_recorder writes them, after the connection id);
 * tests/unit/fixtures/bwe/README says how a trace becomes a unit test's fixture. */
int hk_worker_start(hk_worker_t *w, uv_loop_t *loop, const hk_config_t *config,
                    const hk_cert_t *cert);

/* Closes its handles (the loop finishes closing them). */
void hk_worker_stop(hk_worker_t *w);

/* Frees the host, once nothing uses its transports any more. */
void hk_worker_free(hk_worker_t *w);

#endif

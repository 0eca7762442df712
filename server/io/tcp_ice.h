/* ICE-TCP: the passive TCP candidate (RFC 6544) on media_tcp_port. Each accepted
 * connection is a link (io/tx.h) of its own: its RFC 4571 frames are fed to the same
 * host as UDP datagrams, with a tuple {link = the connection, HK_PROTO_TCP, peer}, and
 * what the host sends to that tuple goes into the connection's send queue.
 *
 * Limits, so that no peer can hold more than its share:
 * - a frame longer than HK_TCP_ICE_MAX_FRAME closes the connection (RFC 4571 cannot
 *   resynchronise after a bad length);
 * - a connection must get its first valid STUN check answered within
 *   HK_TCP_ICE_FIRST_CHECK_MS of accept (slowloris, connections that never send STUN),
 *   and is closed after idle_timeout_ms without a byte after that;
 * - at most max_connections connections, max_per_address from one IPv4 address;
 * - each connection's send queue holds HK_TCP_ICE_QUEUE_BYTES (after a kernel send
 *   buffer of HK_TCP_ICE_SOCKET_SNDBUF). A frame that does not fit is dropped (the slow
 *   reader loses its own packets); a queue that stays full for HK_TCP_ICE_STALL_MS cuts
 *   the connection off. Nobody else's packets wait for it.
 * The queue and the send scratch are allocated at the connection's first send (that is,
 * once ICE has answered a valid check there), so idle connections cost only the
 * receive buffer. Nothing is allocated per packet; every close is deferred to the next
 * tick, so a connection never disappears under a caller. IPv4. */
#ifndef HK_TCP_ICE_H
#define HK_TCP_ICE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/map.h"
#include "common/wheel.h"
#include "server/io/tx.h"

#define HK_TCP_ICE_MAX_FRAME   HK_TX_BUF_SIZE
#define HK_TCP_ICE_QUEUE_BYTES (256 * 1024)
/* The kernel's send buffer per connection (SO_SNDBUF; Linux doubles it): fixed, so that
 * a peer that stops reading fills it, and then the queue, in seconds, not minutes. */
#define HK_TCP_ICE_SOCKET_SNDBUF    (256 * 1024)
#define HK_TCP_ICE_FIRST_CHECK_MS   10000
#define HK_TCP_ICE_STALL_MS         2000
#define HK_TCP_ICE_READS_PER_WAKE   16
#define HK_TCP_ICE_ACCEPTS_PER_WAKE 64

/* A frame from a connection (buf writable, valid until the callback returns). */
typedef void (*hk_tcp_ice_frame_fn)(void *arg, uint8_t *buf, size_t len, const hk_tuple_t *from);
/* The connection of this tuple is gone: forget it (called from hk_tcp_ice_tick or
 * hk_tcp_ice_close, never from inside a send or a frame callback). */
typedef void (*hk_tcp_ice_closed_fn)(void *arg, const hk_tuple_t *tuple);

typedef struct hk_tcp_conn_s hk_tcp_conn_t;

typedef struct {
    int max_connections;
    int max_per_address;
    uint32_t idle_timeout_ms;
} hk_tcp_ice_limits_t;

typedef struct hk_tcp_ice_s {
    uv_loop_t *loop;
    int fd;
    int spare_fd;         /* given up to accept-and-close when out of descriptors */
    bool listener_paused; /* out of descriptors without a spare: until the next tick */
    uv_poll_t poll;
    hk_tcp_ice_frame_fn on_frame;
    hk_tcp_ice_closed_fn on_closed;
    void *arg;
    hk_tcp_ice_limits_t limits;
    hk_wheel_t wheel;             /* each connection's next deadline */
    hk_map_t per_address;         /* IPv4 address -> open connections (as a count) */
    hk_tcp_conn_t *conns;         /* every open connection (for shutdown only) */
    uint64_t last_refusal_log_ms; /* refusals are logged at most once a second */
    uint64_t last_close_log_ms;   /* and so are closes a peer can cause in bulk */
    hk_tcp_link_counters_t counters;
} hk_tcp_ice_t;

/* Listens on ip:port. tcp must stay at a fixed address until closed. Returns 0 or
 * HK_EIO (logged). */
int hk_tcp_ice_open(hk_tcp_ice_t *tcp, uv_loop_t *loop, const char *ip, int port,
                    const hk_tcp_ice_limits_t *limits, hk_tcp_ice_frame_fn on_frame,
                    hk_tcp_ice_closed_fn on_closed, void *arg);

/* Runs the connections' deadlines and finishes the closes that are due. */
void hk_tcp_ice_tick(hk_tcp_ice_t *tcp, uint64_t now_ms);

/* Closes the listener and every connection (on_closed for each). */
void hk_tcp_ice_close(hk_tcp_ice_t *tcp);

#endif

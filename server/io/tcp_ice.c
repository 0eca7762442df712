#include "server/io/tcp_ice.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "server/io/byte_queue.h"
#include "server/proto/rfc4571.h"

/* What a connection needs once it sends: allocated at its first send. */
typedef struct {
    uint8_t scratch[HK_TX_BUF_SIZE]; /* the slot handed out */
    hk_byte_queue_t queue;
} conn_tx_t;

struct hk_tcp_conn_s {
    hk_link_t link; /* first: a connection is a link */
    hk_tcp_ice_t *owner;
    hk_tcp_conn_t *prev, *next;
    int fd;
    uv_poll_t poll;
    int poll_events; /* what poll waits for now */
    hk_tuple_t tuple;
    hk_wheel_entry_t timer;
    uint64_t accepted_ms;
    uint64_t last_rx_ms;
    uint64_t stalled_since_ms; /* first dropped frame while the queue was full; 0 = not */
    bool answered;             /* the host sent here: a valid check was answered */
    bool dead;                 /* closing: nothing more is read or sent */
    conn_tx_t *tx;
    size_t rx_len;
    uint8_t rx[HK_RFC4571_HEADER + HK_TCP_ICE_MAX_FRAME];
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static uint64_t address_key(const hk_tuple_t *t)
{
    return (uint64_t)t->addr.v4.sin_addr.s_addr + 1; /* never 0 */
}

static void set_poll(hk_tcp_conn_t *c, int events);
static void on_conn_event(uv_poll_t *handle, int status, int events);

/* ---- closing --------------------------------------------------------------------------- */

/* Marks c closing; the close itself happens at the next tick (c stays valid until then). */
static void kill_conn(hk_tcp_conn_t *c, hk_tcp_close_reason_t reason)
{
    if (c->dead)
        return;
    c->dead = true;
    hk_tcp_ice_t *tcp = c->owner;
    tcp->counters.closed[reason]++;
    /* Closes a peer causes in bulk (never checking, hostile framing) are rate-limited. */
    bool notable = reason == HK_TCP_CLOSE_FRAMING || reason == HK_TCP_CLOSE_STALLED ||
                   reason == HK_TCP_CLOSE_ERROR || reason == HK_TCP_CLOSE_NO_CHECK;
    if (!notable || hk_log_due(&tcp->last_close_log_ms, now_ms(), 1000))
        HK_LOG(notable ? HK_LOG_INFO : HK_LOG_DEBUG, "tcp", NULL,
               "ICE-TCP connection from %s:%u closed: %s", inet_ntoa(c->tuple.addr.v4.sin_addr),
               ntohs(c->tuple.addr.v4.sin_port), hk_tcp_close_reason_name(reason));
    set_poll(c, 0);
    hk_wheel_schedule(&tcp->wheel, &c->timer, 0);
}

static void free_conn(uv_handle_t *handle)
{
    hk_tcp_conn_t *c = handle->data;
    if (c->tx) {
        hk_byte_queue_free(&c->tx->queue);
        free(c->tx);
    }
    free(c);
}

/* Tells the host, then releases c (the poll handle is closed on the loop). */
static void finish_conn(hk_tcp_conn_t *c)
{
    hk_tcp_ice_t *tcp = c->owner;
    tcp->on_closed(tcp->arg, &c->tuple);
    hk_wheel_cancel(&tcp->wheel, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        tcp->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uint64_t key = address_key(&c->tuple);
    uintptr_t n = (uintptr_t)hk_map_get(&tcp->per_address, key);
    if (n <= 1)
        hk_map_remove(&tcp->per_address, key);
    else
        hk_map_put(&tcp->per_address, key, (void *)(n - 1)); /* present: no allocation */
    tcp->counters.open--;
    uv_poll_stop(&c->poll);
    close(c->fd);
    c->fd = -1;
    uv_close((uv_handle_t *)&c->poll, free_conn);
}

/* ---- sending ----------------------------------------------------------------------------- */

static void set_poll(hk_tcp_conn_t *c, int events)
{
    if (c->poll_events == events)
        return;
    c->poll_events = events;
    if (events)
        uv_poll_start(&c->poll, events, on_conn_event);
    else
        uv_poll_stop(&c->poll);
}

/* Writes what the queue holds, as far as the socket takes it. */
static void flush_conn(hk_tcp_conn_t *c)
{
    if (c->dead || !c->tx)
        return;
    hk_byte_queue_t *q = &c->tx->queue;
    while (hk_byte_queue_used(q) > 0) {
        struct iovec iov[2];
        int n_iov = hk_byte_queue_iov(q, iov);
        ssize_t n = writev(c->fd, iov, n_iov);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            kill_conn(c, errno == EPIPE || errno == ECONNRESET ? HK_TCP_CLOSE_PEER
                                                               : HK_TCP_CLOSE_ERROR);
            return;
        }
        hk_byte_queue_consume(q, (size_t)n);
    }
    if (c->stalled_since_ms && hk_byte_queue_used(q) < q->capacity / 2)
        c->stalled_since_ms = 0; /* it reads again */
    set_poll(c, UV_READABLE | (hk_byte_queue_used(q) ? UV_WRITABLE : 0));
}

static uint8_t *link_slot(hk_link_t *link, const hk_tuple_t *to)
{
    hk_tcp_conn_t *c = (hk_tcp_conn_t *)link;
    (void)to; /* a connection has one peer */
    if (c->dead)
        return NULL;
    if (!c->tx) {
        c->tx = malloc(sizeof *c->tx);
        if (!c->tx)
            return NULL;
        if (hk_byte_queue_init(&c->tx->queue, HK_TCP_ICE_QUEUE_BYTES) != 0) {
            free(c->tx);
            c->tx = NULL;
            return NULL;
        }
    }
    c->answered = true;
    return c->tx->scratch;
}

static void link_commit(hk_link_t *link, size_t len)
{
    hk_tcp_conn_t *c = (hk_tcp_conn_t *)link;
    hk_tcp_ice_t *tcp = c->owner;
    if (c->dead || !c->tx || len > HK_TCP_ICE_MAX_FRAME)
        return;
    uint8_t header[HK_RFC4571_HEADER];
    hk_rfc4571_write_header(header, len);
    bool was_empty = hk_byte_queue_used(&c->tx->queue) == 0;
    if (hk_byte_queue_push(&c->tx->queue, header, sizeof header, c->tx->scratch, len) != 0) {
        tcp->counters.tx_dropped++;
        if (!c->stalled_since_ms) {
            c->stalled_since_ms = now_ms();
            hk_wheel_schedule(&tcp->wheel, &c->timer, c->stalled_since_ms + HK_TCP_ICE_STALL_MS);
        }
        return;
    }
    tcp->counters.tx_frames++;
    tcp->counters.tx_bytes += len;
    if (was_empty)
        flush_conn(c); /* otherwise the socket is full already: poll says when it drains */
}

static const hk_link_ops_t tcp_link_ops = {.slot = link_slot, .commit = link_commit};

/* ---- receiving --------------------------------------------------------------------------- */

static void read_conn(hk_tcp_conn_t *c)
{
    hk_tcp_ice_t *tcp = c->owner;
    for (int round = 0; round < HK_TCP_ICE_READS_PER_WAKE && !c->dead; round++) {
        ssize_t n = read(c->fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len);
        if (n == 0) {
            kill_conn(c, HK_TCP_CLOSE_PEER);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_conn(c, errno == ECONNRESET ? HK_TCP_CLOSE_PEER : HK_TCP_CLOSE_ERROR);
            return;
        }
        c->rx_len += (size_t)n;
        c->last_rx_ms = now_ms();
        size_t at = 0;
        while (!c->dead) {
            size_t frame_len = 0;
            int used =
                hk_rfc4571_decode(c->rx + at, c->rx_len - at, HK_TCP_ICE_MAX_FRAME, &frame_len);
            if (used == HK_EINCOMPLETE)
                break;
            if (used < 0) {
                kill_conn(c, HK_TCP_CLOSE_FRAMING);
                return;
            }
            if (frame_len == 0) {
                tcp->counters.rx_empty_frames++;
            } else {
                tcp->counters.rx_frames++;
                tcp->counters.rx_bytes += frame_len;
                tcp->on_frame(tcp->arg, c->rx + at + HK_RFC4571_HEADER, frame_len, &c->tuple);
            }
            at += (size_t)used;
        }
        if (c->dead)
            return;
        /* The rest is the start of a frame (shorter than the buffer): to the front. */
        memmove(c->rx, c->rx + at, c->rx_len - at);
        c->rx_len -= at;
    }
}

static void on_conn_event(uv_poll_t *handle, int status, int events)
{
    hk_tcp_conn_t *c = handle->data;
    if (c->dead)
        return;
    if (status < 0) {
        kill_conn(c, HK_TCP_CLOSE_ERROR);
        return;
    }
    if (events & UV_WRITABLE)
        flush_conn(c);
    if (events & UV_READABLE)
        read_conn(c);
}

/* ---- deadlines --------------------------------------------------------------------------- */

static uint64_t conn_deadline(const hk_tcp_conn_t *c)
{
    uint64_t d = c->answered ? c->last_rx_ms + c->owner->limits.idle_timeout_ms
                             : c->accepted_ms + HK_TCP_ICE_FIRST_CHECK_MS;
    if (c->stalled_since_ms && c->stalled_since_ms + HK_TCP_ICE_STALL_MS < d)
        d = c->stalled_since_ms + HK_TCP_ICE_STALL_MS;
    return d;
}

static void on_deadline(hk_wheel_entry_t *entry, void *arg, uint64_t now)
{
    (void)arg;
    hk_tcp_conn_t *c = (hk_tcp_conn_t *)((char *)entry - offsetof(hk_tcp_conn_t, timer));
    if (!c->dead) {
        if (!c->answered && now >= c->accepted_ms + HK_TCP_ICE_FIRST_CHECK_MS)
            kill_conn(c, HK_TCP_CLOSE_NO_CHECK);
        else if (c->answered && now >= c->last_rx_ms + c->owner->limits.idle_timeout_ms)
            kill_conn(c, HK_TCP_CLOSE_IDLE);
        else if (c->stalled_since_ms && now >= c->stalled_since_ms + HK_TCP_ICE_STALL_MS)
            kill_conn(c, HK_TCP_CLOSE_STALLED);
    }
    if (c->dead) {
        finish_conn(c);
        return;
    }
    hk_wheel_schedule(&c->owner->wheel, &c->timer, conn_deadline(c));
}

static void on_listener(uv_poll_t *handle, int status, int events);

void hk_tcp_ice_tick(hk_tcp_ice_t *tcp, uint64_t now)
{
    hk_wheel_advance(&tcp->wheel, now, on_deadline, tcp);
    if (tcp->listener_paused && tcp->fd >= 0) {
        if (tcp->spare_fd < 0)
            tcp->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        tcp->listener_paused = false;
        uv_poll_start(&tcp->poll, UV_READABLE, on_listener);
    }
}

/* ---- accepting --------------------------------------------------------------------------- */

static void refused(hk_tcp_ice_t *tcp, int fd, uint64_t *counter, const char *why)
{
    close(fd);
    (*counter)++;
    if (hk_log_due(&tcp->last_refusal_log_ms, now_ms(), 1000))
        HK_LOG(HK_LOG_WARN, "tcp", NULL, "ICE-TCP connection refused: %s", why);
}

static void add_conn(hk_tcp_ice_t *tcp, int fd, const struct sockaddr_in *peer)
{
    hk_tuple_t probe = hk_tuple_tcp4(NULL, peer);
    uint64_t key = address_key(&probe);
    uintptr_t from_address = (uintptr_t)hk_map_get(&tcp->per_address, key);
    if (tcp->counters.open >= (uint64_t)tcp->limits.max_connections) {
        refused(tcp, fd, &tcp->counters.refused_limit, "too many connections");
        return;
    }
    if (from_address >= (uintptr_t)tcp->limits.max_per_address) {
        refused(tcp, fd, &tcp->counters.refused_address, "too many connections from one address");
        return;
    }
    hk_tcp_conn_t *c = calloc(1, sizeof *c);
    if (!c || hk_map_put(&tcp->per_address, key, (void *)(from_address + 1)) != 0) {
        free(c);
        refused(tcp, fd, &tcp->counters.refused_limit, "out of memory");
        return;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    int sndbuf = HK_TCP_ICE_SOCKET_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    c->link.ops = &tcp_link_ops;
    c->owner = tcp;
    c->fd = fd;
    c->tuple = hk_tuple_tcp4(&c->link, peer);
    c->accepted_ms = now_ms();
    c->last_rx_ms = c->accepted_ms;
    if (uv_poll_init(tcp->loop, &c->poll, fd) != 0) {
        if (from_address == 0)
            hk_map_remove(&tcp->per_address, key);
        else
            hk_map_put(&tcp->per_address, key, (void *)from_address);
        free(c);
        refused(tcp, fd, &tcp->counters.refused_limit, "cannot poll the socket");
        return;
    }
    c->poll.data = c;
    c->next = tcp->conns;
    if (c->next)
        c->next->prev = c;
    tcp->conns = c;
    tcp->counters.accepted++;
    tcp->counters.open++;
    set_poll(c, UV_READABLE);
    hk_wheel_schedule(&tcp->wheel, &c->timer, conn_deadline(c));
}

static void on_listener(uv_poll_t *handle, int status, int events)
{
    hk_tcp_ice_t *tcp = handle->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < HK_TCP_ICE_ACCEPTS_PER_WAKE; i++) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int fd =
            accept4(tcp->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: take the connection with the spare one and close
                 * it, so the listener does not stay readable and spin; without a spare,
                 * stop listening until the next tick. */
                if (tcp->spare_fd >= 0) {
                    close(tcp->spare_fd);
                    fd = accept(tcp->fd, NULL, NULL);
                    tcp->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    if (fd >= 0)
                        refused(tcp, fd, &tcp->counters.refused_descriptors, "out of descriptors");
                }
                if (tcp->spare_fd < 0) {
                    uv_poll_stop(&tcp->poll);
                    tcp->listener_paused = true;
                }
            }
            return;
        }
        if (peer.sin_family != AF_INET) {
            close(fd);
            continue;
        }
        add_conn(tcp, fd, &peer);
    }
}

int hk_tcp_ice_open(hk_tcp_ice_t *tcp, uv_loop_t *loop, const char *ip, int port,
                    const hk_tcp_ice_limits_t *limits, hk_tcp_ice_frame_fn on_frame,
                    hk_tcp_ice_closed_fn on_closed, void *arg)
{
    memset(tcp, 0, sizeof *tcp);
    tcp->loop = loop;
    tcp->limits = *limits;
    tcp->on_frame = on_frame;
    tcp->on_closed = on_closed;
    tcp->arg = arg;
    tcp->spare_fd = -1;
    hk_wheel_init(&tcp->wheel);
    tcp->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tcp->fd < 0)
        goto fail;
    int on = 1;
    setsockopt(tcp->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
        bind(tcp->fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(tcp->fd, 1024) != 0)
        goto fail;
    if (uv_poll_init(loop, &tcp->poll, tcp->fd) != 0)
        goto fail;
    tcp->poll.data = tcp;
    uv_poll_start(&tcp->poll, UV_READABLE, on_listener);
    tcp->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
fail:
    HK_LOG(HK_LOG_ERROR, "tcp", NULL, "cannot listen on ICE-TCP port %s:%d: %s", ip, port,
           strerror(errno));
    if (tcp->fd >= 0)
        close(tcp->fd);
    tcp->fd = -1;
    return HK_EIO;
}

void hk_tcp_ice_close(hk_tcp_ice_t *tcp)
{
    if (tcp->fd < 0)
        return;
    while (tcp->conns) {
        hk_tcp_conn_t *c = tcp->conns;
        flush_conn(c);
        kill_conn(c, HK_TCP_CLOSE_SHUTDOWN);
        finish_conn(c);
    }
    uv_poll_stop(&tcp->poll);
    uv_close((uv_handle_t *)&tcp->poll, NULL);
    close(tcp->fd);
    tcp->fd = -1;
    if (tcp->spare_fd >= 0)
        close(tcp->spare_fd);
    tcp->spare_fd = -1;
    hk_map_free(&tcp->per_address);
}

#include "server/io/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

static void on_readable(uv_poll_t *handle, int status, int events);

const uint32_t hk_udp_delay_bounds_us[HK_UDP_DELAY_BUCKETS - 1] = {
    10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000};

void hk_udp_delay_add(hk_udp_delay_t *h, int64_t ns)
{
    if (ns < 0) /* clock stepped backwards */
        ns = 0;
    int i = 0;
    while (i < HK_UDP_DELAY_BUCKETS - 1 &&
           (uint64_t)ns > (uint64_t)hk_udp_delay_bounds_us[i] * 1000)
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_ns += (uint64_t)ns;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t hk_udp_rx_timestamp(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    return 0;
}

static uint8_t *link_slot(hk_link_t *link, const hk_tuple_t *to)
{
    if (to->addr.sa.sa_family != AF_INET)
        return NULL; /* an IPv4 socket */
    return hk_udp_slot((hk_udp_t *)link, &to->addr.v4);
}

static void link_commit(hk_link_t *link, size_t len)
{
    hk_udp_commit((hk_udp_t *)link, len);
}

static const hk_link_ops_t udp_link_ops = {.slot = link_slot, .commit = link_commit};

int hk_udp_open(hk_udp_t *udp, uv_loop_t *loop, const char *ip, int port, hk_udp_recv_fn fn,
                void *arg)
{
    udp->link.ops = &udp_link_ops;
    udp->on_datagram = fn;
    udp->arg = arg;
    udp->tx_count = 0;
    udp->in_burst = 0;
    udp->tx_flushes = 0;
    udp->busy_poll_ns = 0;
    memset(udp->tx_dest, 0, sizeof udp->tx_dest);
    memset(&udp->counters, 0, sizeof udp->counters);
    udp->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp->fd < 0)
        return HK_EIO;
    int size = 4 << 20;
    setsockopt(udp->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(udp->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    int on = 1; /* receive timestamps, for the delay histograms */
    setsockopt(udp->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
        bind(udp->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        HK_LOG(HK_LOG_ERROR, "udp", NULL, "cannot bind media port %s:%d: %s", ip, port,
               strerror(errno));
        close(udp->fd);
        udp->fd = -1;
        return HK_EIO;
    }
    /* Setting a segment size of 0 (per-message sizes come with each send) succeeds
     * exactly on kernels that have UDP GSO. */
    int no_default_segment = 0;
    udp->gso = setsockopt(udp->fd, SOL_UDP, UDP_SEGMENT, &no_default_segment,
                          sizeof no_default_segment) == 0;
    for (int i = 0; i < HK_UDP_BATCH; i++) {
        udp->rx_iov[i].iov_base = udp->rx_buf[i];
        udp->rx_iov[i].iov_len = HK_UDP_BUF_SIZE;
    }
    if (uv_poll_init(loop, &udp->poll, udp->fd) != 0) {
        close(udp->fd);
        udp->fd = -1;
        return HK_EIO;
    }
    udp->poll.data = udp;
    uv_poll_start(&udp->poll, UV_READABLE, on_readable);
    return 0;
}

/* Reads and handles up to HK_UDP_BURST_ROUNDS recvmmsg calls' worth of datagrams;
 * returns how many were read. */
static int read_burst(hk_udp_t *udp)
{
    int total = 0;
    udp->in_burst = 1;
    /* A bounded number of bursts per wake-up keeps signaling responsive. */
    for (int round = 0; round < HK_UDP_BURST_ROUNDS; round++) {
        for (int i = 0; i < HK_UDP_BATCH; i++) {
            struct msghdr *h = &udp->rx_msgs[i].msg_hdr;
            memset(h, 0, sizeof *h);
            h->msg_name = &udp->rx_addr[i];
            h->msg_namelen = sizeof udp->rx_addr[i];
            h->msg_iov = &udp->rx_iov[i];
            h->msg_iovlen = 1;
            h->msg_control = udp->rx_cmsg[i].buf;
            h->msg_controllen = sizeof udp->rx_cmsg[i].buf;
        }
        int n = recvmmsg(udp->fd, udp->rx_msgs, HK_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        total += n;
        int stamped = 0;
        int64_t read_at = realtime_ns();
        for (int i = 0; i < n; i++) {
            int64_t at = hk_udp_rx_timestamp(&udp->rx_msgs[i].msg_hdr);
            if (at) {
                hk_udp_delay_add(&udp->counters.rx_wait, read_at - at);
                udp->rx_stamp[stamped++] = at;
            }
        }
        for (int i = 0; i < n; i++) {
            size_t len = udp->rx_msgs[i].msg_len;
            udp->counters.rx_datagrams++;
            udp->counters.rx_bytes += len;
            if (udp->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                udp->counters.rx_truncated++;
                continue;
            }
            udp->on_datagram(udp->arg, udp->rx_buf[i], len, &udp->rx_addr[i]);
        }
        hk_udp_flush(udp);
        if (stamped) {
            int64_t sent_at = realtime_ns();
            for (int i = 0; i < stamped; i++)
                hk_udp_delay_add(&udp->counters.residence, sent_at - udp->rx_stamp[i]);
        }
        if (n < HK_UDP_BATCH)
            break;
    }
    udp->in_burst = 0;
    hk_udp_flush(udp);
    return total;
}

/* Longest stretch of busy polling before the loop gets a turn (timers, signaling). */
#define BUSY_POLL_SLICE_NS 2000000

static void on_readable(uv_poll_t *handle, int status, int events)
{
    hk_udp_t *udp = handle->data;
    (void)events;
    if (status < 0)
        return;
    read_burst(udp);
    if (udp->busy_poll_ns <= 0)
        return;
    /* Busy polling: keep reading until busy_poll_ns pass without a datagram, so the core
     * does not go idle (and pay the wake-up) between the datagrams of a busy stream. */
    int64_t now = realtime_ns();
    int64_t quiet_at = now + udp->busy_poll_ns, slice_end = now + BUSY_POLL_SLICE_NS;
    while (now < quiet_at && now < slice_end) {
        int n = read_burst(udp);
        now = realtime_ns();
        if (n > 0) {
            udp->counters.rx_polled += (uint64_t)n;
            quiet_at = now + udp->busy_poll_ns;
        }
    }
}

uint8_t *hk_udp_slot(hk_udp_t *udp, const struct sockaddr_in *to)
{
    if (udp->tx_count == HK_UDP_TX_SLOTS)
        hk_udp_flush(udp);
    udp->tx_addr[udp->tx_count] = *to;
    return udp->tx_buf[udp->tx_count];
}

void hk_udp_commit(hk_udp_t *udp, size_t len)
{
    udp->tx_len[udp->tx_count] = len;
    udp->tx_count++;
    if (!udp->in_burst || udp->tx_count == HK_UDP_TX_SLOTS)
        hk_udp_flush(udp);
}

void hk_udp_send(hk_udp_t *udp, const struct sockaddr_in *to, const uint8_t *buf, size_t len)
{
    if (len > HK_UDP_BUF_SIZE)
        return;
    uint8_t *slot = hk_udp_slot(udp, to);
    memcpy(slot, buf, len);
    hk_udp_commit(udp, len);
}

/* A GSO message's payload stays under the IPv4 datagram limit (65,507). */
#define GSO_MAX_BYTES 65000

static int same_dest(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* The destination table's entry for `to`: the one naming a group of this flush with
 * that address, or a free one (the table has twice as many entries as slots). */
static int dest_entry(hk_udp_t *udp, const struct sockaddr_in *to)
{
    uint32_t h = (to->sin_addr.s_addr ^ (uint32_t)to->sin_port << 16) * 0x9E3779B1u;
    for (uint32_t i = h >> 16;; i++) {
        int e = (int)(i & (HK_UDP_DEST_BUCKETS - 1));
        if (udp->tx_dest[e].flush != udp->tx_flushes ||
            same_dest(&udp->tx_addr[udp->tx_groups[udp->tx_dest[e].group].first], to))
            return e;
    }
}

/* Splits the queue into groups, in order of their first datagram. */
static int plan_groups(hk_udp_t *udp)
{
    if (++udp->tx_flushes == 0) { /* wrapped: forget every entry */
        memset(udp->tx_dest, 0, sizeof udp->tx_dest);
        udp->tx_flushes = 1;
    }
    int n = 0;
    for (int i = 0; i < udp->tx_count; i++) {
        size_t len = udp->tx_len[i];
        udp->tx_next[i] = -1;
        int e = -1;
        if (udp->gso) {
            e = dest_entry(udp, &udp->tx_addr[i]);
            if (udp->tx_dest[e].flush == udp->tx_flushes) {
                hk_udp_group_t *g = &udp->tx_groups[udp->tx_dest[e].group];
                if (g->open && len > 0 && len <= g->seg_size && g->count < HK_UDP_GSO_MAX_SEGS &&
                    g->bytes + len <= GSO_MAX_BYTES) {
                    udp->tx_next[g->last] = i;
                    g->last = i;
                    g->count++;
                    g->bytes += len;
                    g->open = len == g->seg_size;
                    continue;
                }
            }
        }
        udp->tx_groups[n] = (hk_udp_group_t){
            .first = i, .last = i, .count = 1, .seg_size = len, .bytes = len, .open = len > 0};
        if (e >= 0) {
            udp->tx_dest[e].flush = udp->tx_flushes;
            udp->tx_dest[e].group = n;
        }
        n++;
    }
    return n;
}

static void build_messages(hk_udp_t *udp, int n_groups)
{
    int iov = 0;
    for (int k = 0; k < n_groups; k++) {
        const hk_udp_group_t *g = &udp->tx_groups[k];
        struct msghdr *h = &udp->tx_msgs[k].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &udp->tx_addr[g->first];
        h->msg_namelen = sizeof udp->tx_addr[g->first];
        h->msg_iov = &udp->tx_iov[iov];
        h->msg_iovlen = (size_t)g->count;
        for (int s = g->first; s >= 0; s = udp->tx_next[s]) {
            udp->tx_iov[iov].iov_base = udp->tx_buf[s];
            udp->tx_iov[iov].iov_len = udp->tx_len[s];
            iov++;
        }
        if (g->count > 1) {
            h->msg_control = udp->tx_cmsg[k].buf;
            h->msg_controllen = sizeof udp->tx_cmsg[k].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)g->seg_size;
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
    }
}

static void count_sent(hk_udp_t *udp, const hk_udp_group_t *g)
{
    udp->counters.tx_messages++;
    udp->counters.tx_datagrams += (uint64_t)g->count;
    udp->counters.tx_bytes += g->bytes;
}

hk_udp_refusal_t hk_udp_gso_refusal(int err)
{
    switch (err) {
    case EMSGSIZE: /* a segment over the route's MTU */
    case EINVAL:
        return HK_UDP_SEND_SINGLY;
    case EIO: /* the device cannot checksum it (older kernels), or IPsec */
    case ENOPROTOOPT:
    case EOPNOTSUPP:
        return HK_UDP_GSO_OFF;
    default: /* EAGAIN, ENOBUFS, EPERM (a firewall), unreachable: not about GSO */
        return HK_UDP_NOT_GSO;
    }
}

static void gso_refused(hk_udp_t *udp, const hk_udp_group_t *g, int err)
{
    if (hk_udp_gso_refusal(err) == HK_UDP_GSO_OFF) {
        HK_LOG(HK_LOG_WARN, "udp", NULL,
               "UDP segmentation offload refused (%s): sending datagrams one by one",
               strerror(err));
        udp->gso = 0;
    }
    for (int s = g->first; s >= 0; s = udp->tx_next[s]) {
        const struct sockaddr_in *to = &udp->tx_addr[s];
        if (sendto(udp->fd, udp->tx_buf[s], udp->tx_len[s], 0, (const struct sockaddr *)to,
                   sizeof *to) < 0) {
            udp->counters.tx_errors++;
            continue;
        }
        udp->counters.tx_messages++;
        udp->counters.tx_datagrams++;
        udp->counters.tx_bytes += udp->tx_len[s];
    }
}

void hk_udp_flush(hk_udp_t *udp)
{
    if (udp->tx_count == 0)
        return;
    int n_groups = plan_groups(udp);
    build_messages(udp, n_groups);
    int sent = 0;
    while (sent < n_groups) {
        int n = sendmmsg(udp->fd, udp->tx_msgs + sent, (unsigned)(n_groups - sent), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const hk_udp_group_t *g = &udp->tx_groups[sent];
            if (g->count > 1 && hk_udp_gso_refusal(errno) != HK_UDP_NOT_GSO)
                gso_refused(udp, g, errno);
            else /* EAGAIN (socket buffer full) or a per-destination error: dropped */
                udp->counters.tx_errors += (uint64_t)g->count;
            sent++;
            continue;
        }
        for (int k = sent; k < sent + n; k++)
            count_sent(udp, &udp->tx_groups[k]);
        sent += n;
    }
    udp->tx_count = 0;
}

void hk_udp_close(hk_udp_t *udp)
{
    if (udp->fd < 0)
        return;
    hk_udp_flush(udp);
    uv_poll_stop(&udp->poll);
    uv_close((uv_handle_t *)&udp->poll, NULL);
    close(udp->fd);
    udp->fd = -1;
}

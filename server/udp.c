#include "server/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

static void on_readable(uv_poll_t *handle, int status, int events);

int hk_udp_open(hk_udp_t *udp, uv_loop_t *loop, const char *ip, int port, hk_udp_recv_fn fn,
                void *arg)
{
    udp->on_datagram = fn;
    udp->arg = arg;
    udp->tx_count = 0;
    udp->in_burst = 0;
    memset(&udp->counters, 0, sizeof udp->counters);
    udp->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp->fd < 0)
        return HK_EIO;
    int size = 4 << 20;
    setsockopt(udp->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(udp->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
        bind(udp->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        HK_LOG(HK_LOG_ERROR, "udp", NULL, "cannot bind media port %s:%d: %s", ip, port,
               strerror(errno));
        close(udp->fd);
        udp->fd = -1;
        return HK_EIO;
    }
    for (int i = 0; i < HK_UDP_BATCH; i++) {
        udp->rx_iov[i].iov_base = udp->rx_buf[i];
        udp->rx_iov[i].iov_len = HK_UDP_BUF_SIZE;
        udp->tx_iov[i].iov_base = udp->tx_buf[i];
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

static void on_readable(uv_poll_t *handle, int status, int events)
{
    hk_udp_t *udp = handle->data;
    (void)events;
    if (status < 0)
        return;
    udp->in_burst = 1;
    /* A bounded number of bursts per wake-up keeps signaling responsive. */
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < HK_UDP_BATCH; i++) {
            struct msghdr *h = &udp->rx_msgs[i].msg_hdr;
            memset(h, 0, sizeof *h);
            h->msg_name = &udp->rx_addr[i];
            h->msg_namelen = sizeof udp->rx_addr[i];
            h->msg_iov = &udp->rx_iov[i];
            h->msg_iovlen = 1;
        }
        int n = recvmmsg(udp->fd, udp->rx_msgs, HK_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
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
        if (n < HK_UDP_BATCH)
            break;
    }
    udp->in_burst = 0;
    hk_udp_flush(udp);
}

uint8_t *hk_udp_slot(hk_udp_t *udp, const struct sockaddr_in *to)
{
    if (udp->tx_count == HK_UDP_BATCH)
        hk_udp_flush(udp);
    udp->tx_addr[udp->tx_count] = *to;
    return udp->tx_buf[udp->tx_count];
}

void hk_udp_commit(hk_udp_t *udp, size_t len)
{
    udp->tx_iov[udp->tx_count].iov_len = len;
    udp->tx_count++;
    if (!udp->in_burst || udp->tx_count == HK_UDP_BATCH)
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

void hk_udp_flush(hk_udp_t *udp)
{
    int sent = 0;
    while (sent < udp->tx_count) {
        for (int i = sent; i < udp->tx_count; i++) {
            struct msghdr *h = &udp->tx_msgs[i].msg_hdr;
            memset(h, 0, sizeof *h);
            h->msg_name = &udp->tx_addr[i];
            h->msg_namelen = sizeof udp->tx_addr[i];
            h->msg_iov = &udp->tx_iov[i];
            h->msg_iovlen = 1;
        }
        int n = sendmmsg(udp->fd, udp->tx_msgs + sent, (unsigned)(udp->tx_count - sent), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN (socket buffer full) or a per-destination error: drop this one. */
            udp->counters.tx_errors++;
            sent++;
            continue;
        }
        for (int i = sent; i < sent + n; i++) {
            udp->counters.tx_datagrams++;
            udp->counters.tx_bytes += udp->tx_iov[i].iov_len;
        }
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

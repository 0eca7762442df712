/* The media socket: one UDP port for every peer (ICE, DTLS, SRTP). Datagrams are
 * read in bursts with recvmmsg and written in batches with sendmmsg; every buffer is
 * allocated once with the socket (no malloc per packet). IPv4. */
#ifndef HK_UDP_H
#define HK_UDP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define HK_UDP_BATCH    64
#define HK_UDP_BUF_SIZE 1600 /* 1500-byte datagrams plus room for SRTP trailers */

/* Called for each received datagram; buf is writable (HK_UDP_BUF_SIZE bytes) and valid
 * until the callback returns. */
typedef void (*hk_udp_recv_fn)(void *arg, uint8_t *buf, size_t len, const struct sockaddr_in *from);

typedef struct {
    uint64_t rx_datagrams;
    uint64_t rx_bytes;
    uint64_t tx_datagrams;
    uint64_t tx_bytes;
    uint64_t tx_errors;
    uint64_t rx_truncated; /* over the buffer size: dropped */
} hk_udp_counters_t;

typedef struct hk_udp_s {
    int fd;
    uv_poll_t poll;
    hk_udp_recv_fn on_datagram;
    void *arg;
    /* receive burst */
    struct mmsghdr rx_msgs[HK_UDP_BATCH];
    struct iovec rx_iov[HK_UDP_BATCH];
    struct sockaddr_in rx_addr[HK_UDP_BATCH];
    uint8_t rx_buf[HK_UDP_BATCH][HK_UDP_BUF_SIZE];
    /* send batch */
    struct mmsghdr tx_msgs[HK_UDP_BATCH];
    struct iovec tx_iov[HK_UDP_BATCH];
    struct sockaddr_in tx_addr[HK_UDP_BATCH];
    uint8_t tx_buf[HK_UDP_BATCH][HK_UDP_BUF_SIZE];
    int tx_count;
    int in_burst; /* sends are flushed when the burst ends */
    hk_udp_counters_t counters;
} hk_udp_t;

/* Binds ip:port and starts reading on loop. udp must stay at a fixed address until
 * hk_udp_close's callback... (it is embedded in the worker). Returns 0 or HK_EIO. */
int hk_udp_open(hk_udp_t *udp, uv_loop_t *loop, const char *ip, int port, hk_udp_recv_fn fn,
                void *arg);

/* Returns a send buffer of HK_UDP_BUF_SIZE bytes addressed to `to`; fill it, then call
 * hk_udp_commit with its length (or nothing, to abandon it). */
uint8_t *hk_udp_slot(hk_udp_t *udp, const struct sockaddr_in *to);
void hk_udp_commit(hk_udp_t *udp, size_t len);

/* Copies one datagram into the batch. */
void hk_udp_send(hk_udp_t *udp, const struct sockaddr_in *to, const uint8_t *buf, size_t len);

/* Writes every queued datagram now. */
void hk_udp_flush(hk_udp_t *udp);

/* Stops reading and closes the socket (the poll handle is closed on the loop). */
void hk_udp_close(hk_udp_t *udp);

#endif

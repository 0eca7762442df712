/* The media socket: one UDP port for every peer (ICE, DTLS, SRTP). Datagrams are
 * read in bursts with recvmmsg and written in batches with sendmmsg; every buffer is
 * allocated once with the socket (no malloc per packet). IPv4.
 *
 * Sends made while received datagrams are being handled are queued and written once
 * each recvmmsg's datagrams (up to HK_UDP_BATCH) have been handled, or when the queue is
 * full. At that flush, consecutive datagrams to one destination are coalesced into a single
 * message with UDP generic segmentation offload (UDP_SEGMENT, Linux >= 4.18): equal
 * sizes, the last one may be shorter, at most HK_UDP_GSO_MAX_SEGS. The kernel splits
 * such a message back into the same datagrams, so the wire sees exactly what it would
 * without GSO, at one trip through the IP stack per message instead of per datagram
 * (a video frame's packets to one subscriber leave together). Per destination the
 * order is kept; across destinations it is not. A GSO message the kernel refuses is
 * sent again one datagram at a time (hk_udp_gso_refusal says whether GSO stays on). */
#ifndef HK_UDP_H
#define HK_UDP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "server/io/tx.h"

#define HK_UDP_BATCH        64   /* datagrams per recvmmsg */
#define HK_UDP_BURST_ROUNDS 16   /* recvmmsg calls per wake-up at most */
#define HK_UDP_TX_SLOTS     1024 /* queued datagrams (a burst's fan-out); UIO_MAXIOV */
#define HK_UDP_GSO_MAX_SEGS 64   /* the kernel's UDP_MAX_SEGMENTS */
#define HK_UDP_BUF_SIZE     1600 /* 1500-byte datagrams plus room for SRTP trailers */
#define HK_UDP_DEST_BUCKETS (2 * HK_UDP_TX_SLOTS) /* power of two */

/* Called for each received datagram; buf is writable (HK_UDP_BUF_SIZE bytes) and valid
 * until the callback returns. */
typedef void (*hk_udp_recv_fn)(void *arg, uint8_t *buf, size_t len, const struct sockaddr_in *from);

/* Its counters and delay histograms are the link's (io/tx.h). */
typedef hk_delay_hist_t hk_udp_delay_t;
typedef hk_link_counters_t hk_udp_counters_t;
#define HK_UDP_DELAY_BUCKETS   HK_DELAY_BUCKETS
#define hk_udp_delay_bounds_us hk_delay_bounds_us

void hk_udp_delay_add(hk_udp_delay_t *h, int64_t ns);

/* The kernel's receive time (SO_TIMESTAMPNS, ns of CLOCK_REALTIME) carried in a received
 * message's control data, or 0 when there is none. */
int64_t hk_udp_rx_timestamp(struct msghdr *m);

/* A run of queued datagrams to one destination, written as one message. */
typedef struct {
    int first, last; /* slot indices; slots are chained through tx_next */
    int count;       /* datagrams */
    size_t seg_size; /* size of the first; the others equal, the last may be smaller */
    size_t bytes;    /* sum of the sizes */
    int open;        /* another datagram may join (all so far were seg_size) */
} hk_udp_group_t;

typedef struct hk_udp_s {
    hk_link_t link; /* first: the socket is a link (io/tx.h) */
    int fd;
    uv_poll_t poll;
    hk_udp_recv_fn on_datagram;
    void *arg;
    /* receive burst */
    struct mmsghdr rx_msgs[HK_UDP_BATCH];
    struct iovec rx_iov[HK_UDP_BATCH];
    struct sockaddr_in rx_addr[HK_UDP_BATCH];
    uint8_t rx_buf[HK_UDP_BATCH][HK_UDP_BUF_SIZE];
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } rx_cmsg[HK_UDP_BATCH];
    int64_t rx_stamp[HK_UDP_BATCH]; /* receive timestamps (ns) of the current recvmmsg */
    /* send queue */
    struct sockaddr_in tx_addr[HK_UDP_TX_SLOTS];
    size_t tx_len[HK_UDP_TX_SLOTS];
    int tx_next[HK_UDP_TX_SLOTS]; /* next slot of the same group, -1 at its end */
    uint8_t tx_buf[HK_UDP_TX_SLOTS][HK_UDP_BUF_SIZE];
    int tx_count;
    int in_burst;         /* sends are flushed when the burst ends */
    int gso;              /* coalesce with UDP_SEGMENT (probed at open; off after a refusal) */
    int64_t busy_poll_ns; /* keep reading this long after the last datagram (0: off) */
    /* flush scratch: groups, their messages, and destination -> newest group */
    hk_udp_group_t tx_groups[HK_UDP_TX_SLOTS];
    struct mmsghdr tx_msgs[HK_UDP_TX_SLOTS];
    struct iovec tx_iov[HK_UDP_TX_SLOTS];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } tx_cmsg[HK_UDP_TX_SLOTS];
    struct {
        uint32_t flush; /* valid when equal to tx_flushes */
        int group;
    } tx_dest[HK_UDP_DEST_BUCKETS];
    uint32_t tx_flushes;
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

/* Writes every queued datagram now (coalescing per destination when GSO is on). */
void hk_udp_flush(hk_udp_t *udp);

/* What a failed GSO message means, by errno. */
typedef enum {
    HK_UDP_NOT_GSO = 0, /* not about GSO (buffer full, firewall): the datagrams are lost */
    HK_UDP_SEND_SINGLY, /* this message only (EMSGSIZE/EINVAL: a segment over the MTU) */
    HK_UDP_GSO_OFF      /* GSO cannot work here (EIO, ENOPROTOOPT, EOPNOTSUPP): off */
} hk_udp_refusal_t;
hk_udp_refusal_t hk_udp_gso_refusal(int err);

/* Stops reading and closes the socket (the poll handle is closed on the loop). */
void hk_udp_close(hk_udp_t *udp);

#endif

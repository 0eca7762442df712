/* The send interface, and the tuple a datagram came from. A link is what carries
 * datagrams: the UDP socket (io/udp), and each ICE-TCP connection (io/tcp_ice). rtc/ and sfu/
 * send through a link without knowing which kind it is; only io/ implements one.
 *
 * Zero-copy sending: slot() hands out a buffer of HK_TX_BUF_SIZE bytes addressed to a
 * tuple; the caller writes the datagram into it (SRTP protects in place) and commits
 * its length, or abandons it by not committing. One slot at a time per link. */
#ifndef HK_TX_H
#define HK_TX_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HK_TX_BUF_SIZE 1600 /* a 1500-byte datagram plus room for SRTP trailers */

typedef enum { HK_PROTO_UDP = 0, HK_PROTO_TCP = 1 } hk_proto_t;

typedef struct hk_link_s hk_link_t;

/* Delay histogram: bucket i counts values <= hk_delay_bounds_us[i] (the last bucket:
 * everything above). Prometheus-style cumulative sums are made when exported. */
#define HK_DELAY_BUCKETS 13
extern const uint32_t hk_delay_bounds_us[HK_DELAY_BUCKETS - 1]; /* io/udp.c */
typedef struct {
    uint64_t bucket[HK_DELAY_BUCKETS];
    uint64_t count;
    uint64_t sum_ns;
} hk_delay_hist_t;

/* A link's counters (exported by the API). */
typedef struct {
    uint64_t rx_datagrams;
    uint64_t rx_bytes;
    uint64_t tx_datagrams;
    uint64_t tx_bytes;
    uint64_t tx_errors;
    uint64_t tx_messages;  /* messages handed to the kernel (< datagrams with GSO) */
    uint64_t rx_truncated; /* over the buffer size: dropped */
    uint64_t rx_polled;    /* read while busy polling (no wake-up needed) */
    /* Per received datagram, from the kernel's receive timestamp (SO_TIMESTAMPNS):
     * rx_wait until hisoka read it (socket queue, wake-up, scheduling), residence until
     * the sends of its recvmmsg round were handed to the kernel (everything hisoka adds). */
    hk_delay_hist_t rx_wait;
    hk_delay_hist_t residence;
} hk_link_counters_t;

/* The ICE-TCP links' counters (io/tcp_ice; exported by the API). */
typedef enum {
    HK_TCP_CLOSE_PEER = 0, /* the peer closed it or reset it */
    HK_TCP_CLOSE_FRAMING,  /* an RFC 4571 length over the largest packet */
    HK_TCP_CLOSE_NO_CHECK, /* no valid STUN check answered in time after accept */
    HK_TCP_CLOSE_IDLE,     /* nothing received for consent_timeout */
    HK_TCP_CLOSE_STALLED,  /* its send queue stayed full: a reader that stopped reading */
    HK_TCP_CLOSE_ERROR,    /* a read or write error */
    HK_TCP_CLOSE_SHUTDOWN, /* the server stopped */
    HK_TCP_CLOSE_REASON_COUNT
} hk_tcp_close_reason_t;

/* A close reason's name, for metrics and logs. */
static inline const char *hk_tcp_close_reason_name(hk_tcp_close_reason_t reason)
{
    static const char *const names[HK_TCP_CLOSE_REASON_COUNT] = {
        "peer", "framing", "no_check", "idle", "stalled", "error", "shutdown"};
    return (unsigned)reason < HK_TCP_CLOSE_REASON_COUNT ? names[reason] : "?";
}

typedef struct {
    uint64_t accepted;
    uint64_t refused_limit;       /* over max_connections ICE-TCP connections */
    uint64_t refused_address;     /* over max_connections_per_address from one address */
    uint64_t refused_descriptors; /* accept() failed with EMFILE/ENFILE */
    uint64_t closed[HK_TCP_CLOSE_REASON_COUNT];
    uint64_t open; /* gauge */
    uint64_t rx_frames;
    uint64_t rx_bytes;
    uint64_t rx_empty_frames;
    uint64_t tx_frames;
    uint64_t tx_bytes;
    uint64_t tx_dropped; /* frames that did not fit a connection's send queue */
} hk_tcp_link_counters_t;

/* Where a datagram came from, and so where the answer goes: protocol, address (IPv4 or
 * IPv6) and the link it arrived on. */
typedef struct {
    hk_link_t *link;
    uint8_t protocol; /* hk_proto_t */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
} hk_tuple_t;

typedef struct {
    uint8_t *(*slot)(hk_link_t *link, const hk_tuple_t *to);
    void (*commit)(hk_link_t *link, size_t len);
} hk_link_ops_t;

/* Embedded as the first member of each link implementation. */
struct hk_link_s {
    const hk_link_ops_t *ops;
};

static inline uint8_t *hk_tx_slot(const hk_tuple_t *to)
{
    return to->link->ops->slot(to->link, to);
}

static inline void hk_tx_commit(const hk_tuple_t *to, size_t len)
{
    to->link->ops->commit(to->link, len);
}

/* Copies one datagram out (for what is not on the forwarding path). */
static inline void hk_tx_send(const hk_tuple_t *to, const uint8_t *buf, size_t len)
{
    if (len > HK_TX_BUF_SIZE)
        return;
    uint8_t *slot = hk_tx_slot(to);
    if (!slot)
        return;
    memcpy(slot, buf, len);
    hk_tx_commit(to, len);
}

/* An IPv4 UDP tuple on link. */
static inline hk_tuple_t hk_tuple_udp4(hk_link_t *link, const struct sockaddr_in *addr)
{
    hk_tuple_t t;
    memset(&t, 0, sizeof t);
    t.link = link;
    t.protocol = HK_PROTO_UDP;
    t.addr.v4 = *addr;
    return t;
}

/* An IPv4 TCP tuple: one ICE-TCP connection (its own link) and its peer. */
static inline hk_tuple_t hk_tuple_tcp4(hk_link_t *link, const struct sockaddr_in *addr)
{
    hk_tuple_t t = hk_tuple_udp4(link, addr);
    t.protocol = HK_PROTO_TCP;
    return t;
}

static inline bool hk_tuple_equal(const hk_tuple_t *a, const hk_tuple_t *b)
{
    if (a->link != b->link || a->protocol != b->protocol ||
        a->addr.sa.sa_family != b->addr.sa.sa_family)
        return false;
    if (a->addr.sa.sa_family == AF_INET)
        return a->addr.v4.sin_port == b->addr.v4.sin_port &&
               a->addr.v4.sin_addr.s_addr == b->addr.v4.sin_addr.s_addr;
    return a->addr.v6.sin6_port == b->addr.v6.sin6_port &&
           memcmp(&a->addr.v6.sin6_addr, &b->addr.v6.sin6_addr, 16) == 0;
}

/* A 64-bit key for hash maps (splitmix64 over the fields). Two tuples with one key are
 * told apart by hk_tuple_equal. */
static inline uint64_t hk_tuple_key(const hk_tuple_t *t)
{
    uint64_t words[4] = {(uint64_t)(uintptr_t)t->link, t->protocol, 0, 0};
    if (t->addr.sa.sa_family == AF_INET) {
        words[2] = ((uint64_t)t->addr.v4.sin_addr.s_addr << 16) | t->addr.v4.sin_port;
    } else {
        memcpy(&words[2], &t->addr.v6.sin6_addr, 16);
        words[1] ^= (uint64_t)t->addr.v6.sin6_port << 8;
    }
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 4; i++) {
        uint64_t z = h + words[i] + 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        h = z ^ (z >> 31);
    }
    return h ? h : 1;
}

#endif

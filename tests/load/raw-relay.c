/* hisoka-raw-relay: the forwarding ceiling hisoka is measured against. One UDP socket,
 * recvmmsg -> srtp_unprotect -> for each subscriber of the channel: copy, srtp_protect
 * -> sendmmsg. No ICE, no DTLS, no RTCP, no header rewriting: peers register with a
 * hello datagram (tests/load/load.h) and use fixed keys derived from their id.
 *
 *   hisoka-raw-relay [--bind 127.0.0.1] --port PORT [--corrupt N]
 *
 * --corrupt N flips the last payload byte of every Nth forwarded packet: a test hook
 * proving that the generator's integrity check fails hard.
 *
 * Runs until SIGTERM/SIGINT; prints its counters to stderr on exit. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/rtc/srtp.h"
#include "tests/load/load.h"

#define MAX_PEERS    8192
#define HASH_SLOTS   16384
#define MAX_CHANNELS 1024
#define RX_BATCH     64
#define TX_BATCH     256
#define PKT_CAP      1536

typedef struct {
    struct sockaddr_in addr;
    uint32_t id;
    uint32_t channel;
    bool publisher, subscriber;
    hk_srtp_t *srtp;
} relay_peer_t;

typedef struct {
    uint32_t id;
    int *subs; /* indices into peers */
    int n_subs, cap_subs;
} relay_channel_t;

static relay_peer_t peers[MAX_PEERS];
static int n_peers;
static int slots[HASH_SLOTS]; /* peer index + 1, 0 = empty */
static relay_channel_t channels[MAX_CHANNELS];
static int n_channels;
static volatile sig_atomic_t stop;
static unsigned long corrupt_every;

static uint8_t rx[RX_BATCH][PKT_CAP];
static uint8_t tx[TX_BATCH][PKT_CAP];
static struct mmsghdr tx_msgs[TX_BATCH];
static struct iovec tx_iov[TX_BATCH];
static int tx_n;
static uint64_t n_in, n_out, n_drop, n_errors;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static unsigned hash_addr(const struct sockaddr_in *a)
{
    uint32_t h = a->sin_addr.s_addr * 2654435761u ^ (uint32_t)a->sin_port * 40503u;
    return (h ^ (h >> 15)) & (HASH_SLOTS - 1);
}

static int find_peer(const struct sockaddr_in *a)
{
    for (unsigned h = hash_addr(a), k = 0; k < HASH_SLOTS; k++, h = (h + 1) & (HASH_SLOTS - 1)) {
        int s = slots[h];
        if (s == 0)
            return -1;
        const relay_peer_t *p = &peers[s - 1];
        if (p->addr.sin_port == a->sin_port && p->addr.sin_addr.s_addr == a->sin_addr.s_addr)
            return s - 1;
    }
    return -1;
}

static relay_channel_t *channel_get(uint32_t id)
{
    for (int i = 0; i < n_channels; i++)
        if (channels[i].id == id)
            return &channels[i];
    if (n_channels == MAX_CHANNELS)
        return NULL;
    relay_channel_t *c = &channels[n_channels++];
    c->id = id;
    return c;
}

static void flush(int fd)
{
    int done = 0;
    while (done < tx_n) {
        int n = sendmmsg(fd, tx_msgs + done, (unsigned)(tx_n - done), 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            n_errors += (uint64_t)(tx_n - done);
            break;
        }
        done += n;
        n_out += (uint64_t)n;
    }
    tx_n = 0;
}

/* Hello: "HKRAW1" role channel(u32) id(u32). Answered (again) every time it comes. */
static void on_hello(int fd, const uint8_t *b, size_t len, const struct sockaddr_in *from)
{
    if (len < HK_LOAD_HELLO_LEN || memcmp(b, "HKRAW1", 6) != 0)
        return;
    uint32_t v[2];
    memcpy(v, b + 7, 8);
    uint32_t channel = ntohl(v[0]), id = ntohl(v[1]);
    if (find_peer(from) < 0) {
        relay_channel_t *c = channel_get(channel);
        if (n_peers == MAX_PEERS || !c)
            return;
        relay_peer_t *p = &peers[n_peers];
        hk_srtp_keys_t keys;
        hk_load_raw_keys(id, true, &keys);
        p->srtp = hk_srtp_create(&keys);
        hk_srtp_keys_wipe(&keys);
        if (!p->srtp)
            return;
        p->addr = *from;
        p->id = id;
        p->channel = channel;
        p->publisher = b[6] == 'P' || b[6] == 'M';
        p->subscriber = b[6] == 'S' || b[6] == 'M';
        if (p->subscriber) {
            if (c->n_subs == c->cap_subs) {
                int cap = c->cap_subs ? c->cap_subs * 2 : 16;
                int *s = realloc(c->subs, (size_t)cap * sizeof *s);
                if (!s)
                    return;
                c->subs = s;
                c->cap_subs = cap;
            }
            c->subs[c->n_subs++] = n_peers;
        }
        unsigned h = hash_addr(from);
        while (slots[h])
            h = (h + 1) & (HASH_SLOTS - 1);
        slots[h] = ++n_peers;
    }
    uint8_t ack[HK_LOAD_ACK_LEN];
    memcpy(ack, "HKRAWOK", 7);
    uint32_t nid = htonl(id);
    memcpy(ack + 7, &nid, 4);
    sendto(fd, ack, sizeof ack, 0, (const struct sockaddr *)from, sizeof *from);
}

static void on_media(int fd, uint8_t *b, size_t len, const struct sockaddr_in *from)
{
    int pi = find_peer(from);
    if (pi < 0 || !peers[pi].publisher || len < 12 || (b[1] >= 192 && b[1] <= 223)) {
        n_drop++;
        return;
    }
    relay_peer_t *pub = &peers[pi];
    if (hk_srtp_unprotect_rtp(pub->srtp, b, &len) != 0) {
        n_drop++;
        return;
    }
    n_in++;
    relay_channel_t *c = channel_get(pub->channel);
    for (int i = 0; c && i < c->n_subs; i++) {
        relay_peer_t *sub = &peers[c->subs[i]];
        if (sub == pub)
            continue;
        uint8_t *o = tx[tx_n];
        memcpy(o, b, len);
        size_t olen = len;
        if (corrupt_every && (n_out + (uint64_t)tx_n) % corrupt_every == corrupt_every - 1)
            o[olen - 1] ^= 0x01;
        if (hk_srtp_protect_rtp(sub->srtp, o, &olen, PKT_CAP) != 0) {
            n_errors++;
            continue;
        }
        tx_iov[tx_n].iov_base = o;
        tx_iov[tx_n].iov_len = olen;
        memset(&tx_msgs[tx_n].msg_hdr, 0, sizeof tx_msgs[tx_n].msg_hdr);
        tx_msgs[tx_n].msg_hdr.msg_iov = &tx_iov[tx_n];
        tx_msgs[tx_n].msg_hdr.msg_iovlen = 1;
        tx_msgs[tx_n].msg_hdr.msg_name = &sub->addr;
        tx_msgs[tx_n].msg_hdr.msg_namelen = sizeof sub->addr;
        if (++tx_n == TX_BATCH)
            flush(fd);
    }
}

int main(int argc, char **argv)
{
    const char *bind_addr = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--corrupt"))
            corrupt_every = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--bind"))
            bind_addr = argv[i + 1];
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: hisoka-raw-relay [--bind 127.0.0.1] --port PORT [--corrupt N]\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: recvmmsg returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (hk_srtp_global_init() != 0)
        return 2;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("hisoka-raw-relay: bind");
        return 2;
    }
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    fprintf(stderr, "hisoka-raw-relay: listening on %s:%d\n", bind_addr, port);

    static struct mmsghdr msgs[RX_BATCH];
    static struct iovec iov[RX_BATCH];
    static struct sockaddr_in from[RX_BATCH];
    while (!stop) {
        for (int i = 0; i < RX_BATCH; i++) {
            iov[i].iov_base = rx[i];
            iov[i].iov_len = PKT_CAP;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, msgs, RX_BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("hisoka-raw-relay: recvmmsg");
            break;
        }
        for (int i = 0; i < n; i++) {
            size_t len = msgs[i].msg_len;
            if (len == 0 || msgs[i].msg_hdr.msg_namelen != sizeof(struct sockaddr_in))
                continue;
            if (rx[i][0] == 'H')
                on_hello(fd, rx[i], len, &from[i]);
            else if (rx[i][0] >= 128 && rx[i][0] <= 191)
                on_media(fd, rx[i], len, &from[i]);
            else
                n_drop++;
        }
        flush(fd);
    }
    fprintf(stderr,
            "hisoka-raw-relay: peers %d, packets in %llu, forwarded %llu, dropped %llu, "
            "errors %llu\n",
            n_peers, (unsigned long long)n_in, (unsigned long long)n_out,
            (unsigned long long)n_drop, (unsigned long long)n_errors);
    for (int i = 0; i < n_peers; i++)
        hk_srtp_destroy(peers[i].srtp);
    for (int i = 0; i < n_channels; i++)
        free(channels[i].subs);
    close(fd);
    return 0;
}

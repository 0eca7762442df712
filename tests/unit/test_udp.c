/* The media socket's send queue against real loopback sockets: every datagram arrives
 * once, byte for byte, in order per destination, with and without UDP segmentation
 * offload; with it, runs to one destination take one message. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/io/udp.h"
#include "tests/unit/unit.h"

#define N_DEST 3

typedef struct {
    int fd[N_DEST];
    struct sockaddr_in addr[N_DEST];
} sinks_t;

static void on_datagram(void *arg, uint8_t *buf, size_t len, const struct sockaddr_in *from)
{
    (void)arg, (void)buf, (void)len, (void)from;
}

static void open_sinks(sinks_t *s)
{
    for (int i = 0; i < N_DEST; i++) {
        s->fd[i] = socket(AF_INET, SOCK_DGRAM, 0);
        CHECK(s->fd[i] >= 0);
        int size = 4 << 20;
        setsockopt(s->fd[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        CHECK(bind(s->fd[i], (struct sockaddr *)&a, sizeof a) == 0);
        socklen_t l = sizeof s->addr[i];
        CHECK(getsockname(s->fd[i], (struct sockaddr *)&s->addr[i], &l) == 0);
    }
}

/* Datagram k to destination d: its size and a byte pattern naming (d, k). */
static size_t dgram(int d, int k, uint8_t *out, const size_t *sizes, int n_sizes)
{
    size_t len = sizes[k % n_sizes];
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(d * 31 + k * 7 + i);
    if (len >= 2) {
        out[0] = (uint8_t)d;
        out[1] = (uint8_t)k;
    }
    return len;
}

/* Receives everything queued on each sink and compares it with what was sent. */
static void expect_all(sinks_t *s, int per_dest, const size_t *sizes, int n_sizes)
{
    uint8_t want[HK_UDP_BUF_SIZE], got[HK_UDP_BUF_SIZE + 1];
    for (int d = 0; d < N_DEST; d++) {
        for (int k = 0; k < per_dest; k++) {
            struct pollfd p = {.fd = s->fd[d], .events = POLLIN};
            CHECK(poll(&p, 1, 2000) == 1);
            ssize_t n = recv(s->fd[d], got, sizeof got, 0);
            size_t len = dgram(d, k, want, sizes, n_sizes);
            CHECK_INT_EQ(n, len);
            CHECK_MEM_EQ(got, want, len);
        }
        CHECK(recv(s->fd[d], got, sizeof got, MSG_DONTWAIT) < 0);
    }
}

/* Queues per_dest datagrams to each destination, interleaved the way a fan-out does
 * (datagram k to every destination, then k + 1), inside one burst. */
static void queue_fanout(hk_udp_t *u, sinks_t *s, int per_dest, const size_t *sizes, int n_sizes)
{
    u->in_burst = 1;
    for (int k = 0; k < per_dest; k++)
        for (int d = 0; d < N_DEST; d++) {
            uint8_t *slot = hk_udp_slot(u, &s->addr[d]);
            hk_udp_commit(u, dgram(d, k, slot, sizes, n_sizes));
        }
    u->in_burst = 0;
    hk_udp_flush(u);
}

static hk_udp_t udp; /* 1.7 MB: not on the stack */

static void run(int gso, const size_t *sizes, int n_sizes, int per_dest, uint64_t want_messages)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(hk_udp_open(&udp, &loop, "127.0.0.1", 0, on_datagram, NULL) == 0);
    if (!gso)
        udp.gso = 0;
    else if (!udp.gso) {
        fprintf(stderr, "kernel without UDP_SEGMENT: GSO case not run\n");
        want_messages = (uint64_t)per_dest * N_DEST;
    }
    sinks_t s;
    open_sinks(&s);
    queue_fanout(&udp, &s, per_dest, sizes, n_sizes);
    expect_all(&s, per_dest, sizes, n_sizes);
    CHECK_INT_EQ(udp.counters.tx_datagrams, per_dest * N_DEST);
    CHECK_INT_EQ(udp.counters.tx_messages, want_messages);
    CHECK_INT_EQ(udp.counters.tx_errors, 0);
    CHECK_INT_EQ(udp.tx_count, 0);
    hk_udp_close(&udp);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    for (int d = 0; d < N_DEST; d++)
        close(s.fd[d]);
}

TEST(udp_gso_equal_sizes_one_message_per_destination)
{
    const size_t sizes[] = {1200};
    run(1, sizes, 1, 8, N_DEST);
}

TEST(udp_gso_short_last_datagram_closes_the_run)
{
    /* 1200, 1200, 700 | 1200, 1200, 700: a shorter datagram ends a message, a longer
     * one starts the next. */
    const size_t sizes[] = {1200, 1200, 700};
    run(1, sizes, 3, 6, 2 * N_DEST);
}

TEST(udp_gso_growing_sizes_are_not_coalesced)
{
    const size_t sizes[] = {100, 200, 300, 400};
    run(1, sizes, 4, 4, 4 * N_DEST);
}

TEST(udp_gso_caps_segments_per_message)
{
    /* 100 equal datagrams per destination: 64 + 36. */
    const size_t sizes[] = {400};
    run(1, sizes, 1, 100, 2 * N_DEST);
}

TEST(udp_gso_caps_bytes_per_message)
{
    /* 1500-byte datagrams: 43 fit under 65,000 bytes, 60 need two messages. */
    const size_t sizes[] = {1500};
    run(1, sizes, 1, 60, 2 * N_DEST);
}

TEST(udp_without_gso_one_message_per_datagram)
{
    const size_t sizes[] = {1200, 1200, 700};
    run(0, sizes, 3, 6, 6 * N_DEST);
}

TEST(udp_queue_overflow_flushes_in_order)
{
    /* More datagrams than slots: the queue flushes when full and again at the end. */
    const size_t sizes[] = {64};
    int per_dest = HK_UDP_TX_SLOTS / N_DEST + 50;
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(hk_udp_open(&udp, &loop, "127.0.0.1", 0, on_datagram, NULL) == 0);
    sinks_t s;
    open_sinks(&s);
    queue_fanout(&udp, &s, per_dest, sizes, 1);
    expect_all(&s, per_dest, sizes, 1);
    CHECK_INT_EQ(udp.counters.tx_datagrams, per_dest * N_DEST);
    CHECK_INT_EQ(udp.counters.tx_errors, 0);
    hk_udp_close(&udp);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    for (int d = 0; d < N_DEST; d++)
        close(s.fd[d]);
}

/* ---- refusals, in a network namespace of the test's own (needs root) ---------------- */

static int own_netns(void)
{
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "unshare(CLONE_NEWNET): %s: refusal case not run\n", strerror(errno));
        return 0;
    }
    return 1;
}

static void send_run(hk_udp_t *u, const struct sockaddr_in *to, size_t len, int count)
{
    u->in_burst = 1;
    for (int k = 0; k < count; k++) {
        uint8_t *slot = hk_udp_slot(u, to);
        memset(slot, k, len);
        hk_udp_commit(u, len);
    }
    u->in_burst = 0;
    hk_udp_flush(u);
}

TEST(udp_gso_over_mtu_goes_singly_and_keeps_gso)
{
    /* Loopback with a 1,300-byte MTU: a GSO message of 1,290-byte segments is refused
     * (EMSGSIZE); its datagrams go singly (fragmented) and GSO stays on for the next. */
    if (!own_netns())
        return;
    CHECK(system("ip link set lo mtu 1300 up") == 0);
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(hk_udp_open(&udp, &loop, "127.0.0.1", 0, on_datagram, NULL) == 0);
    if (!udp.gso) {
        fprintf(stderr, "kernel without UDP_SEGMENT: case not run\n");
        return;
    }
    sinks_t s;
    open_sinks(&s);
    send_run(&udp, &s.addr[0], 1290, 4);
    uint8_t got[2000];
    for (int k = 0; k < 4; k++) {
        struct pollfd p = {.fd = s.fd[0], .events = POLLIN};
        CHECK(poll(&p, 1, 2000) == 1);
        CHECK_INT_EQ(recv(s.fd[0], got, sizeof got, 0), 1290);
        CHECK_INT_EQ(got[0], k);
        CHECK_INT_EQ(got[1289], k);
    }
    CHECK_INT_EQ(udp.counters.tx_datagrams, 4);
    CHECK_INT_EQ(udp.counters.tx_messages, 4);
    CHECK_INT_EQ(udp.counters.tx_errors, 0);
    CHECK(udp.gso);
    /* Segments that fit still coalesce. */
    send_run(&udp, &s.addr[0], 1000, 4);
    CHECK_INT_EQ(udp.counters.tx_messages, 5);
    for (int k = 0; k < 4; k++)
        CHECK_INT_EQ(recv(s.fd[0], got, sizeof got, MSG_DONTWAIT), 1000);
    hk_udp_close(&udp);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

TEST(udp_gso_on_a_device_without_offloads_leaves_as_separate_packets)
{
    /* A TUN device without offloads: the kernel either segments the GSO message in
     * software or refuses it (EIO on older kernels, then GSO is turned off); either
     * way each datagram leaves as its own IPv4/UDP packet, in order. */
    if (!own_netns())
        return;
    int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tun < 0) {
        fprintf(stderr, "/dev/net/tun: %s: case not run\n", strerror(errno));
        return;
    }
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "hk0");
    CHECK(ioctl(tun, TUNSETIFF, &ifr) == 0);
    CHECK(system("ip link set lo up && ip addr add 10.77.0.1/24 dev hk0 && "
                 "ip link set hk0 up") == 0);
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(hk_udp_open(&udp, &loop, "10.77.0.1", 0, on_datagram, NULL) == 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
    int gso = udp.gso;
    send_run(&udp, &to, 500, 3);
    CHECK_INT_EQ(udp.counters.tx_datagrams, 3);
    CHECK_INT_EQ(udp.counters.tx_errors, 0);
    CHECK(udp.counters.tx_messages == (gso && udp.gso ? 1u : 3u));
    uint8_t pkt[2048];
    int seen = 0;
    for (int tries = 0; seen < 3 && tries < 20; tries++) { /* IPv6 noise may interleave */
        struct pollfd p = {.fd = tun, .events = POLLIN};
        CHECK(poll(&p, 1, 2000) == 1);
        ssize_t n = read(tun, pkt, sizeof pkt);
        if (n > 0 && pkt[0] >> 4 == 4 && pkt[9] == IPPROTO_UDP) {
            CHECK_INT_EQ(n, 20 + 8 + 500);
            CHECK_INT_EQ(pkt[24] << 8 | pkt[25], 8 + 500); /* UDP length */
            CHECK_INT_EQ(pkt[28], seen);
            CHECK_INT_EQ(pkt[28 + 499], seen);
            seen++;
        }
    }
    CHECK_INT_EQ(seen, 3);
    hk_udp_close(&udp);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(tun);
}

TEST(udp_gso_refusal_by_errno)
{
    CHECK_INT_EQ(hk_udp_gso_refusal(EMSGSIZE), HK_UDP_SEND_SINGLY);
    CHECK_INT_EQ(hk_udp_gso_refusal(EINVAL), HK_UDP_SEND_SINGLY);
    CHECK_INT_EQ(hk_udp_gso_refusal(EIO), HK_UDP_GSO_OFF);
    CHECK_INT_EQ(hk_udp_gso_refusal(ENOPROTOOPT), HK_UDP_GSO_OFF);
    CHECK_INT_EQ(hk_udp_gso_refusal(EOPNOTSUPP), HK_UDP_GSO_OFF);
    CHECK_INT_EQ(hk_udp_gso_refusal(EAGAIN), HK_UDP_NOT_GSO);
    CHECK_INT_EQ(hk_udp_gso_refusal(ENOBUFS), HK_UDP_NOT_GSO);
    CHECK_INT_EQ(hk_udp_gso_refusal(EPERM), HK_UDP_NOT_GSO);
}

TEST(udp_delay_histogram_buckets)
{
    hk_udp_delay_t h = {0};
    hk_udp_delay_add(&h, 0);        /* <= 10 us */
    hk_udp_delay_add(&h, 10000);    /* exactly 10 us: still the first bucket */
    hk_udp_delay_add(&h, 10001);    /* <= 20 us */
    hk_udp_delay_add(&h, 999999);   /* <= 1 ms */
    hk_udp_delay_add(&h, 1000000);  /* exactly 1 ms */
    hk_udp_delay_add(&h, 50000001); /* over 50 ms: the last bucket */
    hk_udp_delay_add(&h, -5);       /* a clock step backwards counts as 0 */
    CHECK_INT_EQ(h.bucket[0], 3);
    CHECK_INT_EQ(h.bucket[1], 1);
    CHECK_INT_EQ(h.bucket[6], 2); /* 1000 us */
    CHECK_INT_EQ(h.bucket[HK_UDP_DELAY_BUCKETS - 1], 1);
    CHECK_INT_EQ(h.count, 7);
    CHECK_INT_EQ(h.sum_ns, 0 + 10000 + 10001 + 999999 + 1000000 + 50000001);
    CHECK_INT_EQ(hk_udp_delay_bounds_us[6], 1000);
}

/* ---- busy polling ------------------------------------------------------------------- */

static int received;

static void count_datagram(void *arg, uint8_t *buf, size_t len, const struct sockaddr_in *from)
{
    (void)arg, (void)buf, (void)len, (void)from;
    received++;
}

/* A child sends `count` datagrams `gap_us` apart to `to`. */
static pid_t send_spaced(const struct sockaddr_in *to, int count, int gap_us)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        for (int i = 0; i < count; i++) {
            uint8_t b[100] = {(uint8_t)i};
            sendto(fd, b, sizeof b, 0, (const struct sockaddr *)to, sizeof *to);
            usleep((useconds_t)gap_us);
        }
        _exit(0);
    }
    return pid;
}

static void busy_poll_case(int busy_poll_us, int *polled)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    received = 0;
    CHECK(hk_udp_open(&udp, &loop, "127.0.0.1", 0, count_datagram, NULL) == 0);
    udp.busy_poll_ns = (int64_t)busy_poll_us * 1000;
    struct sockaddr_in self;
    socklen_t l = sizeof self;
    CHECK(getsockname(udp.fd, (struct sockaddr *)&self, &l) == 0);
    pid_t child = send_spaced(&self, 40, 200);
    for (int i = 0; i < 4000 && received < 40; i++)
        uv_run(&loop, UV_RUN_ONCE);
    waitpid(child, NULL, 0);
    CHECK_INT_EQ(received, 40);
    CHECK_INT_EQ(udp.counters.rx_datagrams, 40);
    *polled = (int)udp.counters.rx_polled;
    hk_udp_close(&udp);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST(udp_busy_poll_reads_without_sleeping)
{
    /* Datagrams 200 us apart: with busy_poll_us = 10000 the socket is still being read
     * when the next arrives (at least one is read that way even if the machine stalls);
     * with 0 every one needs a wake-up. */
    int polled;
    busy_poll_case(10000, &polled);
    CHECK(polled > 0);
    busy_poll_case(0, &polled);
    CHECK_INT_EQ(polled, 0);
}

TEST(udp_rx_timestamp_reads_the_kernel_receive_time)
{
    int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0), on = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    CHECK(bind(rx, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(rx, (struct sockaddr *)&a, &l) == 0);
    CHECK(setsockopt(rx, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    CHECK(sendto(tx, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1);
    clock_gettime(CLOCK_REALTIME, &t1);
    char b[8];
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    CHECK(recvmsg(rx, &m, 0) == 1);
    int64_t at = hk_udp_rx_timestamp(&m);
    CHECK(at >= (int64_t)t0.tv_sec * 1000000000 + t0.tv_nsec);
    CHECK(at <= (int64_t)t1.tv_sec * 1000000000 + t1.tv_nsec);
    m.msg_controllen = 0; /* no control data: no timestamp */
    CHECK_INT_EQ(hk_udp_rx_timestamp(&m), 0);
    close(rx);
    close(tx);
}

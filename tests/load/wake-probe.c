/* hisoka-wake-probe: what this machine adds to any event-driven server that sleeps
 * between packets. A sender pinned to one core sends bursts of B datagrams at a given
 * packet rate to a receiver pinned to another, which does nothing but block in
 * epoll_wait and read with recvmmsg; for every datagram it records read time - the
 * kernel's receive timestamp (SO_TIMESTAMPNS): socket queue + wake-up + scheduling, no
 * processing at all. `make bench` runs it at the load of hisoka's half-capacity run, as
 * the floor under that figure. --spin makes the receiver poll instead of sleeping.
 *   hisoka-wake-probe --rate PPS --burst B --seconds S [--receiver-cpu N]
 *                     [--sender-cpu N] [--spin] [--json FILE]
 * Prints (or writes) {"kind":"floor", rate, burst, spin, count, wait_us:{p50,p99,p999},
 * within_1ms_pct}. */
#include <arpa/inet.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/io/udp.h"

#define BATCH 64

static int64_t realtime_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sender: bursts of `burst` 1,200-byte datagrams, paced to `rate` datagrams a second
 * (busy-waiting for the next burst so its own wake-ups do not blur the schedule), then a
 * 1-byte datagram that ends the run. */
static void sender(const struct sockaddr_in *to, int rate, int burst, int seconds)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    uint8_t buf[1200] = {0};
    int64_t period = (int64_t)burst * 1000000000 / rate;
    int64_t next = realtime_ns(), end = next + (int64_t)seconds * 1000000000;
    while (next < end) {
        while (realtime_ns() < next)
            ;
        for (int i = 0; i < burst; i++)
            sendto(fd, buf, sizeof buf, 0, (const struct sockaddr *)to, sizeof *to);
        next += period;
    }
    for (int i = 0; i < 3; i++) /* the end marker; datagrams may be dropped, so a few */
        sendto(fd, buf, 1, 0, (const struct sockaddr *)to, sizeof *to);
    close(fd);
}

int main(int argc, char **argv)
{
    int rate = 6800, burst = 4, seconds = 5, rx_cpu = 0, tx_cpu = 1;
    bool spin = false;
    const char *json = NULL;
    static const struct option opts[] = {
        {"rate", required_argument, 0, 'r'},       {"burst", required_argument, 0, 'b'},
        {"seconds", required_argument, 0, 's'},    {"receiver-cpu", required_argument, 0, 'R'},
        {"sender-cpu", required_argument, 0, 'S'}, {"spin", no_argument, 0, 'p'},
        {"json", required_argument, 0, 'j'},       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rate = atoi(optarg);
            break;
        case 'b':
            burst = atoi(optarg);
            break;
        case 's':
            seconds = atoi(optarg);
            break;
        case 'R':
            rx_cpu = atoi(optarg);
            break;
        case 'S':
            tx_cpu = atoi(optarg);
            break;
        case 'p':
            spin = true;
            break;
        case 'j':
            json = optarg;
            break;
        default:
            fprintf(stderr, "usage: hisoka-wake-probe --rate PPS --burst B --seconds S "
                            "[--receiver-cpu N] [--sender-cpu N] [--spin] [--json FILE]\n");
            return 2;
        }
    }
    if (rate < 1 || rate > 1000000 || burst < 1 || burst > BATCH || seconds < 1 || seconds > 600) {
        fprintf(stderr, "hisoka-wake-probe: bad --rate, --burst or --seconds\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    int on = 1, size = 8 << 20;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
        perror("hisoka-wake-probe: socket");
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    size_t cap = (size_t)rate * (size_t)(seconds + 1) + 1024;
    int64_t *wait = malloc(cap * sizeof *wait);
    if (!wait)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        pin(tx_cpu);
        sender(&addr, rate, burst, seconds);
        _exit(0);
    }
    pin(rx_cpu);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    static uint8_t bufs[BATCH][1500];
    static union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl[BATCH];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    size_t n = 0;
    bool done = false;
    while (!done) {
        if (!spin && epoll_wait(ep, &ev, 1, 2000) <= 0)
            break; /* the sender is gone */
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                memset(&msgs[i], 0, sizeof msgs[i]);
                iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof bufs[i]};
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_control = ctl[i].buf;
                msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
            }
            int k = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (k <= 0)
                break;
            int64_t now = realtime_ns();
            for (int i = 0; i < k; i++) {
                if (msgs[i].msg_len == 1) {
                    done = true;
                    continue;
                }
                int64_t at = hk_udp_rx_timestamp(&msgs[i].msg_hdr);
                if (at && n < cap)
                    wait[n++] = now - at;
            }
        }
    }
    waitpid(child, NULL, 0);
    if (n == 0) {
        fprintf(stderr, "hisoka-wake-probe: nothing received\n");
        return 1;
    }
    qsort(wait, n, sizeof *wait, cmp_i64);
    size_t within = 0;
    for (size_t i = 0; i < n; i++)
        within += wait[i] <= 1000000;
    FILE *out = json ? fopen(json, "w") : stdout;
    if (!out)
        return 1;
    fprintf(out,
            "{\"kind\":\"floor\",\"rate\":%d,\"burst\":%d,\"seconds\":%d,\"spin\":%s,"
            "\"count\":%zu,\"wait_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f},"
            "\"within_1ms_pct\":%.3f}\n",
            rate, burst, seconds, spin ? "true" : "false", n, wait[n / 2] / 1e3,
            wait[n * 99 / 100] / 1e3, wait[n * 999 / 1000] / 1e3,
            100.0 * (double)within / (double)n);
    if (json)
        fclose(out);
    free(wait);
    return 0;
}

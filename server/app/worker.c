#include "server/app/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

static void on_datagram(void *arg, uint8_t *buf, size_t len, const struct sockaddr_in *from)
{
    hk_worker_t *w = arg;
    hk_tuple_t tuple = hk_tuple_udp4(&w->udp.link, from);
    hk_rtc_host_receive(&w->host, buf, len, &tuple, now_us());
}

static void on_frame(void *arg, uint8_t *buf, size_t len, const hk_tuple_t *from)
{
    hk_worker_t *w = arg;
    /* A TCP frame's fan-out to UDP subscribers leaves in one batch, as a UDP burst's. */
    w->udp.in_burst = 1;
    hk_rtc_host_receive(&w->host, buf, len, from, now_us());
    w->udp.in_burst = 0;
    hk_udp_flush(&w->udp);
}

static void on_tcp_closed(void *arg, const hk_tuple_t *tuple)
{
    hk_worker_t *w = arg;
    hk_rtc_host_forget_tuple(&w->host, tuple);
}

static void on_tick(uv_timer_t *timer)
{
    hk_worker_t *w = timer->data;
    uint64_t now_ms = now_us() / 1000;
    hk_rtc_host_tick(&w->host, now_ms);
    if (w->tcp_open)
        hk_tcp_ice_tick(&w->tcp, now_ms);
    hk_udp_flush(&w->udp);
}

/* The IPv4 addresses of the TURN servers in turn_urls (resolved once, at start): UDP
 * from them is relayed media (metrics and stats per path). */
static void resolve_relays(hk_rtc_host_t *host, const char *urls)
{
    uint32_t addrs[HK_RTC_MAX_RELAYS];
    int n = 0;
    size_t len;
    for (const char *cursor = urls, *u;
         n < HK_RTC_MAX_RELAYS && (u = hk_config_list_next(&cursor, &len));) {
        const char *colon = memchr(u, ':', len); /* after the scheme */
        if (!colon)
            continue;
        const char *h = colon + 1;
        size_t hl = strcspn(h, ":?,");
        char name[256];
        if (hl == 0 || hl >= sizeof name)
            continue;
        memcpy(name, h, hl);
        name[hl] = '\0';
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
        struct addrinfo *res = NULL;
        if (getaddrinfo(name, NULL, &hints, &res) != 0) {
            HK_LOG(HK_LOG_WARN, "media", NULL,
                   "cannot resolve TURN server %s: its relayed media counts as udp", name);
            continue;
        }
        for (struct addrinfo *a = res; a && n < HK_RTC_MAX_RELAYS; a = a->ai_next)
            addrs[n++] = ((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr;
        freeaddrinfo(res);
    }
    hk_rtc_host_set_relays(host, addrs, n);
}

static void write_bwe_trace(void *user, const char *log_id, const char *line)
{
    fprintf(user, "%s %s\n", log_id, line);
}

int hk_worker_start(hk_worker_t *w, uv_loop_t *loop, const hk_config_t *config,
                    const hk_cert_t *cert)
{
    memset(&w->host, 0, sizeof w->host);
    w->loop = loop;
    w->udp.fd = -1;
    w->bwe_trace = NULL;
    if (hk_rtc_host_init(&w->host, config, cert) != 0)
        return HK_EIO;
#ifdef HK_TEST_ATTACKS
    const char *attack = getenv("HISOKA_TEST_ATTACK");
    if (attack && strcmp(attack, "replay") == 0) {
        w->host.attack_replay = true;
        HK_LOG(HK_LOG_WARN, "media", NULL,
               "test attack: replaying earlier video frames to subscribers (HISOKA_TEST_ATTACK)");
    } else if (attack && *attack) {
        HK_LOG(HK_LOG_ERROR, "media", NULL, "unknown HISOKA_TEST_ATTACK %s (known: replay)",
               attack);
        hk_rtc_host_free(&w->host);
        return HK_EIO;
    }
#endif
    const char *trace = getenv("HISOKA_BWE_TRACE");
    if (trace && *trace) {
        w->bwe_trace = fopen(trace, "a");
        if (!w->bwe_trace) {
            HK_LOG(HK_LOG_ERROR, "media", NULL, "cannot open HISOKA_BWE_TRACE %s: %s", trace,
                   strerror(errno));
            hk_rtc_host_free(&w->host);
            return HK_EIO;
        }
        HK_LOG(HK_LOG_WARN, "media", NULL,
               "recording every downlink estimate's inputs in %s (HISOKA_BWE_TRACE)", trace);
        w->host.bwe_trace = write_bwe_trace;
        w->host.bwe_trace_user = w->bwe_trace;
    }
    if (hk_udp_open(&w->udp, loop, config->listen_address, config->media_port, on_datagram, w) !=
        0) {
        hk_rtc_host_free(&w->host);
        return HK_EIO;
    }
    w->udp.busy_poll_ns = (int64_t)config->busy_poll_us * 1000;
    if (config->media_tcp_port) {
        hk_tcp_ice_limits_t limits = {.max_connections = config->max_connections,
                                      .max_per_address = config->max_connections_per_address,
                                      .idle_timeout_ms = config->consent_timeout_ms};
        if (hk_tcp_ice_open(&w->tcp, loop, config->listen_address, config->media_tcp_port, &limits,
                            on_frame, on_tcp_closed, w) != 0) {
            hk_udp_close(&w->udp);
            hk_rtc_host_free(&w->host);
            return HK_EIO;
        }
        w->tcp_open = true;
    }
    resolve_relays(&w->host, config->turn_urls);
    int rc = uv_timer_init(loop, &w->tick);
    w->tick.data = w;
    if (rc == 0)
        rc = uv_timer_start(&w->tick, on_tick, HK_WHEEL_TICK_MS, HK_WHEEL_TICK_MS);
    w->running = true;
    if (rc != 0) {
        HK_LOG(HK_LOG_ERROR, "media", NULL, "cannot start the media timer: %s", uv_strerror(rc));
        hk_worker_stop(w);
        return HK_EIO;
    }
    return 0;
}

void hk_worker_stop(hk_worker_t *w)
{
    if (!w->running)
        return;
    w->running = false;
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    if (w->tcp_open)
        hk_tcp_ice_close(&w->tcp);
    w->tcp_open = false;
    hk_udp_close(&w->udp);
}

void hk_worker_free(hk_worker_t *w)
{
    hk_rtc_host_free(&w->host);
    if (w->bwe_trace)
        fclose(w->bwe_trace);
    w->bwe_trace = NULL;
}

#include "server/app/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

#include <unistd.h>

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

/* Relayed packets arrived (or key frames are wanted of a publisher here): their fan-out
 * leaves in one batch, as a UDP burst's. */
static void on_relay_wake(uv_async_t *async)
{
    hk_worker_t *w = async->data;
    w->udp.in_burst = 1;
    hk_relay_inbox_drain(&w->relays, now_us() / 1000);
    w->udp.in_burst = 0;
    hk_udp_flush(&w->udp);
}

static void wake_relays(void *user)
{
    uv_async_send(user);
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

int hk_worker_count(const hk_config_t *config)
{
    int n = config->workers;
    if (n <= 0) {
        unsigned cores = uv_available_parallelism();
        n = cores > 0 ? (int)cores : 1;
    }
    return n > HK_MAX_WORKERS ? HK_MAX_WORKERS : n;
}

static void on_hold(hk_message_t *m)
{
    hk_worker_t *w = (hk_worker_t *)((char *)m - offsetof(hk_worker_t, hold_message));
    pthread_mutex_lock(&w->hold_lock);
    if (w->hold == HK_HOLD_ASKED) {
        w->hold = HK_HOLD_HELD;
        pthread_cond_broadcast(&w->hold_cond);
        while (w->hold == HK_HOLD_HELD)
            pthread_cond_wait(&w->hold_cond, &w->hold_lock);
    }
    pthread_mutex_unlock(&w->hold_lock);
}

static void set_hold(hk_worker_t *w, hk_hold_t hold)
{
    pthread_mutex_lock(&w->hold_lock);
    w->hold = hold;
    pthread_cond_broadcast(&w->hold_cond);
    pthread_mutex_unlock(&w->hold_lock);
}

void hk_worker_hold(hk_worker_t *w)
{
    if (!w->thread_running)
        return;
    set_hold(w, HK_HOLD_ASKED);
    if (!hk_mailbox_post(&w->inbox, &w->hold_message)) {
        set_hold(w, HK_HOLD_NONE); /* its loop is closing: it runs no more media */
        return;
    }
    pthread_mutex_lock(&w->hold_lock);
    while (w->hold != HK_HOLD_HELD)
        pthread_cond_wait(&w->hold_cond, &w->hold_lock);
    pthread_mutex_unlock(&w->hold_lock);
}

void hk_worker_release(hk_worker_t *w)
{
    if (!w->thread_running)
        return;
    set_hold(w, HK_HOLD_NONE);
}

/* On the worker: its handles close, then its loop ends and the thread with it. */
static void on_stop(hk_message_t *m)
{
    hk_worker_t *w = (hk_worker_t *)((char *)m - offsetof(hk_worker_t, stop_message));
    if (!w->running)
        return;
    w->running = false;
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->relay_wake, NULL);
    if (w->tcp_open)
        hk_tcp_ice_close(&w->tcp);
    w->tcp_open = false;
    hk_udp_close(&w->udp);
    hk_mailbox_close(&w->inbox);
}

static void run(void *arg)
{
    hk_worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int hk_worker_start(hk_worker_t *w, int index, const hk_config_t *config, const hk_cert_t *cert)
{
    memset(w, 0, sizeof *w);
    w->index = index;
    w->udp.fd = -1;
    w->hold_message.run = on_hold;
    w->stop_message.run = on_stop;
    if (uv_loop_init(&w->loop) != 0)
        return HK_EIO;
    pthread_mutex_init(&w->hold_lock, NULL);
    pthread_cond_init(&w->hold_cond, NULL);
    if (hk_rtc_host_init(&w->host, config, cert) != 0)
        goto fail_loop;
#ifdef HK_TEST_ATTACKS
    const char *attack = getenv("HISOKA_TEST_ATTACK");
    if (attack && strcmp(attack, "replay") == 0) {
        w->host.attack_replay = true;
        HK_LOG(HK_LOG_WARN, "media", NULL,
               "test attack: replaying earlier video frames to subscribers (HISOKA_TEST_ATTACK)");
    } else if (attack && *attack) {
        HK_LOG(HK_LOG_ERROR, "media", NULL, "unknown HISOKA_TEST_ATTACK %s (known: replay)",
               attack);
        goto fail_host;
    }
#endif
    const char *trace = getenv("HISOKA_BWE_TRACE");
    if (trace && *trace) {
        w->bwe_trace = fopen(trace, "a");
        if (!w->bwe_trace) {
            HK_LOG(HK_LOG_ERROR, "media", NULL, "cannot open HISOKA_BWE_TRACE %s: %s", trace,
                   strerror(errno));
            goto fail_host;
        }
        setvbuf(w->bwe_trace, NULL, _IOLBF, 0); /* whole lines: the workers share the file */
        HK_LOG(HK_LOG_WARN, "media", NULL,
               "recording every downlink estimate's inputs in %s (HISOKA_BWE_TRACE)", trace);
        w->host.bwe_trace = write_bwe_trace;
        w->host.bwe_trace_user = w->bwe_trace;
    }
    int port = config->media_port + index;
    if (port > 65535) {
        HK_LOG(HK_LOG_ERROR, "media", NULL,
               "media_port %d + worker %d is beyond 65535: lower media_port or workers",
               config->media_port, index);
        goto fail_host;
    }
    if (hk_udp_open(&w->udp, &w->loop, config->listen_address, port, on_datagram, w) != 0)
        goto fail_host;
    w->udp.busy_poll_ns = (int64_t)config->busy_poll_us * 1000;
    if (config->media_tcp_port) {
        hk_tcp_ice_limits_t limits = {.max_connections = config->max_connections,
                                      .max_per_address = config->max_connections_per_address,
                                      .idle_timeout_ms = config->consent_timeout_ms};
        int tcp_port = config->media_tcp_port + index;
        if (tcp_port > 65535 || hk_tcp_ice_open(&w->tcp, &w->loop, config->listen_address, tcp_port,
                                                &limits, on_frame, on_tcp_closed, w) != 0)
            goto fail_udp;
        w->tcp_open = true;
    }
    resolve_relays(&w->host, config->turn_urls);
    if (uv_async_init(&w->loop, &w->relay_wake, on_relay_wake) != 0)
        goto fail_tcp;
    w->relay_wake.data = w;
    w->relays.wake = wake_relays;
    w->relays.wake_user = &w->relay_wake;
    w->relays.host = &w->host;
    if (hk_mailbox_init(&w->inbox, &w->loop) != 0) {
        uv_close((uv_handle_t *)&w->relay_wake, NULL);
        goto fail_tcp;
    }
    int rc = uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    if (rc == 0)
        rc = uv_timer_start(&w->tick, on_tick, HK_WHEEL_TICK_MS, HK_WHEEL_TICK_MS);
    w->running = true;
    if (rc == 0)
        rc = uv_thread_create(&w->thread, run, w);
    if (rc != 0) {
        HK_LOG(HK_LOG_ERROR, "media", NULL, "cannot start media worker %d: %s", index,
               uv_strerror(rc));
        on_stop(&w->stop_message); /* closes everything; the loop finishes it here */
        uv_run(&w->loop, UV_RUN_DEFAULT);
        hk_mailbox_free(&w->inbox);
        goto fail_host;
    }
    w->thread_running = true;
    return 0;

fail_tcp:
    if (w->tcp_open)
        hk_tcp_ice_close(&w->tcp);
    w->tcp_open = false;
fail_udp:
    hk_udp_close(&w->udp);
    uv_run(&w->loop, UV_RUN_DEFAULT);
fail_host:
    hk_rtc_host_free(&w->host);
    if (w->bwe_trace)
        fclose(w->bwe_trace);
    w->bwe_trace = NULL;
fail_loop:
    pthread_mutex_destroy(&w->hold_lock);
    pthread_cond_destroy(&w->hold_cond);
    uv_loop_close(&w->loop);
    return HK_EIO;
}

void hk_worker_stop(hk_worker_t *w)
{
    if (!w->thread_running)
        return;
    if (!hk_mailbox_post(&w->inbox, &w->stop_message))
        HK_LOG(HK_LOG_ERROR, "media", NULL, "media worker %d: its mailbox closed early", w->index);
    uv_thread_join(&w->thread);
    w->thread_running = false;
}

void hk_worker_free(hk_worker_t *w)
{
    if (w->thread_running)
        return; /* hk_worker_stop first */
    hk_rtc_host_free(&w->host);
    if (w->bwe_trace)
        fclose(w->bwe_trace);
    w->bwe_trace = NULL;
    hk_mailbox_free(&w->inbox);
    pthread_mutex_destroy(&w->hold_lock);
    pthread_cond_destroy(&w->hold_cond);
    uv_loop_close(&w->loop);
}

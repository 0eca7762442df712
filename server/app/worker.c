#include "server/app/worker.h"

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

static void on_tick(uv_timer_t *timer)
{
    hk_worker_t *w = timer->data;
    hk_rtc_host_tick(&w->host, now_us() / 1000);
    hk_udp_flush(&w->udp);
}

int hk_worker_start(hk_worker_t *w, uv_loop_t *loop, const hk_config_t *config,
                    const hk_cert_t *cert)
{
    memset(&w->host, 0, sizeof w->host);
    w->loop = loop;
    w->udp.fd = -1;
    if (hk_rtc_host_init(&w->host, config, cert) != 0)
        return HK_EIO;
    if (hk_udp_open(&w->udp, loop, config->listen_address, config->media_port, on_datagram, w) !=
        0) {
        hk_rtc_host_free(&w->host);
        return HK_EIO;
    }
    w->udp.busy_poll_ns = (int64_t)config->busy_poll_us * 1000;
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
    hk_udp_close(&w->udp);
}

void hk_worker_free(hk_worker_t *w)
{
    hk_rtc_host_free(&w->host);
}

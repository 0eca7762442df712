#include "server/io/media.h"

#include <arpa/inet.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/rtc/dtls.h"
#include "server/signal/peer.h"
#include "server/rtc/transport.h"
#include "server/app/worker.h"

#define MEDIA_TICK_MS 20

uint64_t hk_media_tuple_key(const struct sockaddr_in *addr)
{
    return ((uint64_t)ntohl(addr->sin_addr.s_addr) << 16) | ntohs(addr->sin_port);
}

/* STUN USERNAME's server ufrag -> the peer and its ice-pwd (first contact). */
static const char *lookup_ufrag(void *arg, const char *ufrag, void **peer_out)
{
    hk_media_t *media = arg;
    for (hk_peer_t *p = media->worker->peers; p; p = p->next) {
        if (p->transport && p->state != HK_PEER_CLOSING && strcmp(p->ice_ufrag, ufrag) == 0) {
            *peer_out = p;
            return p->ice_pwd;
        }
    }
    return NULL;
}

static void on_stun(hk_media_t *media, const uint8_t *buf, size_t len,
                    const struct sockaddr_in *from, uint64_t now_ms)
{
    /* A Binding success response: the answer to a consent check we sent (RFC 7675). */
    if (len >= 20 && buf[0] == 0x01 && buf[1] == 0x01) {
        hk_transport_t *t = hk_map_get(&media->tuples, hk_media_tuple_key(from));
        if (t)
            hk_transport_on_check_response(t, buf, len, from, now_ms);
        return;
    }
    uint8_t reply[HK_STUN_REPLY_MAX];
    size_t reply_len = sizeof reply; /* in: capacity, out: reply length */
    hk_stun_result_t result;
    hk_stun_handle(media->stun, buf, len, (const struct sockaddr *)from, sizeof *from, lookup_ufrag,
                   media, reply, &reply_len, &result);
    if ((unsigned)result.status < HK_STUN_STATUS_COUNT)
        media->counters.stun[result.status]++;
    /* A valid check is answered only when its transport accepts the tuple: one that
     * another transport holds gets no answer at all. */
    if (result.status == HK_STUN_OK && result.peer) {
        hk_peer_t *peer = result.peer;
        if (hk_transport_on_check(peer->transport, from, result.use_candidate, now_ms) != 0)
            return;
    }
    if (reply_len > 0)
        hk_udp_send(&media->udp, from, reply, reply_len);
}

static void on_datagram(void *arg, uint8_t *buf, size_t len, const struct sockaddr_in *from)
{
    hk_media_t *media = arg;
    hk_demux_drop_t reason = HK_DEMUX_DROP_NONE;
    hk_pkt_type_t type = hk_demux_classify(buf, len, &reason);
    if (type == HK_PKT_DROP) {
        media->counters.dropped_demux[reason]++;
        return;
    }
    uint64_t now = hk_worker_now_ms(media->worker);
    if (type == HK_PKT_STUN) {
        on_stun(media, buf, len, from, now);
        return;
    }
    hk_transport_t *t = hk_map_get(&media->tuples, hk_media_tuple_key(from));
    if (!t) {
        media->counters.dropped_unvalidated++;
        return;
    }
    switch (type) {
    case HK_PKT_DTLS:
        hk_transport_on_dtls(t, buf, len);
        break;
    case HK_PKT_RTP:
        hk_transport_on_srtp(t, buf, len, now);
        break;
    case HK_PKT_RTCP:
        hk_transport_on_srtcp(t, buf, len, now);
        break;
    default:
        break;
    }
}

static void on_tick(uv_timer_t *timer)
{
    hk_media_t *media = timer->data;
    uint64_t now = hk_worker_now_ms(media->worker);
    for (hk_peer_t *p = media->worker->peers; p; p = p->next)
        if (p->transport)
            hk_transport_tick(p->transport, now);
    hk_udp_flush(&media->udp);
}

int hk_media_start(hk_media_t *media, hk_worker_t *worker)
{
    const hk_config_t *config = worker->config;
    memset(media, 0, sizeof *media);
    media->worker = worker;
    media->udp.fd = -1;
    media->stun = hk_stun_new();
    media->dtls = hk_dtls_context_create(&worker->cert);
    if (!media->stun || !media->dtls) {
        HK_LOG(HK_LOG_ERROR, "media", NULL, "cannot create the STUN or DTLS context");
        goto fail;
    }
    if (hk_udp_open(&media->udp, worker->loop, config->listen_address, config->media_port,
                    on_datagram, media) != 0)
        goto fail;
    media->udp.busy_poll_ns = (int64_t)config->busy_poll_us * 1000;
    uv_timer_init(worker->loop, &media->tick);
    media->tick.data = media;
    return 0;
fail:
    if (media->stun)
        hk_stun_free(media->stun);
    if (media->dtls)
        hk_dtls_context_destroy(media->dtls);
    media->stun = NULL;
    media->dtls = NULL;
    return HK_EIO;
}

void hk_media_stop(hk_media_t *media)
{
    uv_timer_stop(&media->tick);
    uv_close((uv_handle_t *)&media->tick, NULL);
    hk_udp_close(&media->udp);
    hk_map_free(&media->tuples);
    hk_stun_free(media->stun);
    hk_dtls_context_destroy(media->dtls);
    media->stun = NULL;
    media->dtls = NULL;
}

void hk_media_transport_added(hk_media_t *media)
{
    if (media->n_transports++ == 0)
        uv_timer_start(&media->tick, on_tick, MEDIA_TICK_MS, MEDIA_TICK_MS);
}

void hk_media_transport_removed(hk_media_t *media)
{
    if (--media->n_transports == 0)
        uv_timer_stop(&media->tick);
}

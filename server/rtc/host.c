#include "server/rtc/host.h"

#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/rtc/dtls.h"
#include "server/rtc/transport.h"

uint64_t hk_rtc_ufrag_key(const char *ufrag)
{
    uint64_t key = 0;
    size_t i = 0;
    for (; i < HK_RTC_UFRAG_LEN && ufrag[i]; i++)
        key = (key << 8) | (uint8_t)ufrag[i];
    return i == HK_RTC_UFRAG_LEN && ufrag[i] == '\0' ? key : 0;
}

int hk_rtc_host_init(hk_rtc_host_t *host, const hk_config_t *config, const hk_cert_t *cert)
{
    memset(host, 0, sizeof *host);
    host->config = config;
    hk_wheel_init(&host->wheel);
    hk_pacer_pool_init(&host->pacer_pool,
                       (size_t)config->max_connections * HK_RTC_PACER_ENTRIES_PER_CONNECTION);
    host->stun = hk_stun_new();
    host->dtls = hk_dtls_context_create(cert);
    if (!host->stun || !host->dtls) {
        HK_LOG(HK_LOG_ERROR, "media", NULL, "cannot create the STUN or DTLS context");
        hk_rtc_host_free(host);
        return HK_EIO;
    }
    return 0;
}

void hk_rtc_host_free(hk_rtc_host_t *host)
{
    hk_map_free(&host->tuples);
    hk_map_free(&host->ufrags);
    hk_pacer_pool_free(&host->pacer_pool);
    if (host->stun)
        hk_stun_free(host->stun);
    if (host->dtls)
        hk_dtls_context_destroy(host->dtls);
    host->stun = NULL;
    host->dtls = NULL;
}

/* STUN USERNAME's server ufrag -> the transport and its ice-pwd (first contact): one
 * map lookup, whatever the number of connections. */
static const char *lookup_ufrag(void *arg, const char *ufrag, void **transport_out)
{
    hk_rtc_host_t *host = arg;
    uint64_t key = hk_rtc_ufrag_key(ufrag);
    hk_transport_t *t = key ? hk_map_get(&host->ufrags, key) : NULL;
    if (!t || t->failed)
        return NULL;
    *transport_out = t;
    return t->ice_pwd;
}

static void on_stun(hk_rtc_host_t *host, const uint8_t *buf, size_t len, const hk_tuple_t *from,
                    uint64_t now_ms)
{
    /* A Binding success response: the answer to a consent check we sent (RFC 7675). */
    if (len >= 20 && buf[0] == 0x01 && buf[1] == 0x01) {
        hk_transport_t *t = hk_map_get(&host->tuples, hk_tuple_key(from));
        if (t)
            hk_transport_on_check_response(t, buf, len, from, now_ms);
        return;
    }
    uint8_t reply[HK_STUN_REPLY_MAX];
    size_t reply_len = sizeof reply; /* in: capacity, out: reply length */
    hk_stun_result_t result;
    socklen_t addr_len =
        from->addr.sa.sa_family == AF_INET6 ? sizeof from->addr.v6 : sizeof from->addr.v4;
    hk_stun_handle(host->stun, buf, len, &from->addr.sa, addr_len, lookup_ufrag, host, reply,
                   &reply_len, &result);
    if ((unsigned)result.status < HK_STUN_STATUS_COUNT)
        host->counters.stun[result.status]++;
    /* A valid check is answered only when its transport accepts the tuple: one that
     * another transport holds gets no answer at all. */
    if (result.status == HK_STUN_OK && result.peer &&
        hk_transport_on_check(result.peer, from, result.use_candidate, now_ms) != 0)
        return;
    if (reply_len > 0)
        hk_tx_send(from, reply, reply_len);
}

void hk_rtc_host_receive(hk_rtc_host_t *host, uint8_t *buf, size_t len, const hk_tuple_t *from,
                         uint64_t now_us)
{
    hk_demux_drop_t reason = HK_DEMUX_DROP_NONE;
    hk_pkt_type_t type = hk_demux_classify(buf, len, &reason);
    if (type == HK_PKT_DROP) {
        host->counters.dropped_demux[reason]++;
        return;
    }
    uint64_t now_ms = now_us / 1000;
    if (now_us > host->now_us)
        host->now_us = now_us;
    if (type == HK_PKT_STUN) {
        on_stun(host, buf, len, from, now_ms);
        return;
    }
    hk_transport_t *t = hk_map_get(&host->tuples, hk_tuple_key(from));
    if (!t || !hk_transport_has_tuple(t, from)) {
        host->counters.dropped_unvalidated++;
        return;
    }
    switch (type) {
    case HK_PKT_DTLS:
        hk_transport_on_dtls(t, buf, len, now_ms);
        break;
    case HK_PKT_RTP:
        hk_transport_on_srtp(t, buf, len, now_us);
        break;
    case HK_PKT_RTCP:
        hk_transport_on_srtcp(t, buf, len, now_ms);
        break;
    default:
        break;
    }
}

const char *hk_path_name(hk_path_t path)
{
    static const char *const names[HK_PATH_COUNT] = {"udp", "tcp", "relayed"};
    return (unsigned)path < HK_PATH_COUNT ? names[path] : "?";
}

void hk_rtc_host_set_relays(hk_rtc_host_t *host, const uint32_t *ipv4, int n)
{
    host->n_relays = 0;
    for (int i = 0; i < n && host->n_relays < HK_RTC_MAX_RELAYS; i++)
        host->relays[host->n_relays++] = ipv4[i];
}

hk_path_t hk_rtc_host_path(const hk_rtc_host_t *host, const hk_tuple_t *tuple)
{
    if (tuple->protocol == HK_PROTO_TCP)
        return HK_PATH_TCP;
    if (tuple->addr.sa.sa_family == AF_INET)
        for (int i = 0; i < host->n_relays; i++)
            if (host->relays[i] == tuple->addr.v4.sin_addr.s_addr)
                return HK_PATH_RELAYED;
    return HK_PATH_UDP;
}

void hk_rtc_host_forget_tuple(hk_rtc_host_t *host, const hk_tuple_t *tuple)
{
    hk_transport_t *t = hk_map_get(&host->tuples, hk_tuple_key(tuple));
    if (t && hk_transport_forget_tuple(t, tuple))
        host->counters.tuples_closed++;
}

static void on_deadline(hk_wheel_entry_t *entry, void *arg, uint64_t now_ms)
{
    (void)arg;
    hk_transport_t *t = (hk_transport_t *)((char *)entry - offsetof(hk_transport_t, timer));
    hk_transport_on_timer(t, now_ms);
}

void hk_rtc_host_tick(hk_rtc_host_t *host, uint64_t now_ms)
{
    if (now_ms * 1000 > host->now_us)
        host->now_us = now_ms * 1000;
    hk_wheel_advance(&host->wheel, now_ms, on_deadline, host);
}

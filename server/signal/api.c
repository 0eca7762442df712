#include "server/signal/api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/signal/channel.h"
#include "server/rtc/bwe.h"
#include "server/rtc/dtls.h"
#include "server/signal/peer.h"
#include "server/rtc/transport.h"
#include "server/signal/server.h"

#define MAX_BODY    8192
#define SORA_TARGET "x-sora-target:"

/* One HTTP request on the API vhost (lws per-session data). */
typedef struct {
    char uri[128];
    int method; /* M_* */
    char body[MAX_BODY + 1];
    size_t body_len;
    int body_too_large;
} api_session_t;

enum { M_GET = 0, M_POST, M_DELETE, M_OTHER };

/* --- responses ------------------------------------------------------------------------ */

static int respond(struct lws *wsi, unsigned int status, const char *type, const char *body)
{
    size_t len = strlen(body);
    unsigned char header[LWS_PRE + 1024];
    unsigned char *start = header + LWS_PRE, *p = start, *end = header + sizeof header - 1;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        (status == 401 &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                     (const unsigned char *)"Bearer", 6, &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    unsigned char *buf = malloc(LWS_PRE + len + 1);
    if (!buf)
        return 1;
    memcpy(buf + LWS_PRE, body, len);
    int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    free(buf);
    if (n < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond_json(struct lws *wsi, unsigned int status, json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    int rc = respond(wsi, text ? status : 500, "application/json", text ? text : "{}");
    free(text);
    return rc;
}

static int respond_error(struct lws *wsi, unsigned int status, const char *message)
{
    return respond_json(wsi, status, json_pack("{s:s}", "error", message));
}

/* --- text buffer for /metrics ------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(text_t *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 16384;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* --- /metrics ---------------------------------------------------------------------------- */

/* Prometheus text exposition format 0.0.4: "# HELP name text", "# TYPE name kind", then
 * "name{label="value"} number" lines. Every family is written once, HELP and TYPE first. */
static void family(text_t *t, const char *name, const char *type, const char *help)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(text_t *t, const char *name, const char *labels, uint64_t value)
{
    if (labels)
        text_printf(t, "%s{%s} %" PRIu64 "\n", name, labels, value);
    else
        text_printf(t, "%s %" PRIu64 "\n", name, value);
}

static void counter(text_t *t, const char *name, const char *help, uint64_t value)
{
    family(t, name, "counter", help);
    sample(t, name, NULL, value);
}

static void gauge(text_t *t, const char *name, const char *help, uint64_t value)
{
    family(t, name, "gauge", help);
    sample(t, name, NULL, value);
}

/* One sample with a single label; the label values we write are fixed lower-case names
 * (no quotes or backslashes to escape). */
static void labelled(text_t *t, const char *name, const char *label, const char *value, uint64_t v)
{
    char labels[128];
    snprintf(labels, sizeof labels, "%s=\"%s\"", label, value);
    sample(t, name, labels, v);
}

/* A histogram of delays in seconds: n buckets, bucket i counting delays up to bounds_us[i]
 * (the last one everything above) made cumulative, the sum and the count. */
static void delay_histogram(text_t *t, const char *name, const char *help, const uint64_t *bucket,
                            const uint32_t *bounds_us, int n, double sum_seconds, uint64_t count)
{
    family(t, name, "histogram", help);
    uint64_t cumulative = 0;
    for (int i = 0; i < n; i++) {
        cumulative += bucket[i];
        if (i < n - 1)
            text_printf(t, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds_us[i] / 1e6,
                        cumulative);
        else
            text_printf(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
    }
    text_printf(t, "%s_sum %.9f\n%s_count %" PRIu64 "\n", name, sum_seconds, name, count);
}

static void histogram(text_t *t, const char *name, const char *help, const hk_delay_hist_t *h)
{
    delay_histogram(t, name, help, h->bucket, hk_delay_bounds_us, HK_DELAY_BUCKETS,
                    (double)h->sum_ns / 1e9, h->count);
}

/* ICE-TCP (media_tcp_port): connections and frames (hk_tcp_link_counters_t). */
static void tcp_metrics(text_t *t, const hk_tcp_link_counters_t *tc)
{
    gauge(t, "hisoka_tcp_connections", "Open ICE-TCP connections.", tc->open);
    counter(t, "hisoka_tcp_connections_accepted_total", "ICE-TCP connections accepted.",
            tc->accepted);
    family(t, "hisoka_tcp_connections_refused_total", "counter",
           "ICE-TCP connections refused at accept, by reason.");
    labelled(t, "hisoka_tcp_connections_refused_total", "reason", "limit", tc->refused_limit);
    labelled(t, "hisoka_tcp_connections_refused_total", "reason", "per_address",
             tc->refused_address);
    labelled(t, "hisoka_tcp_connections_refused_total", "reason", "descriptors",
             tc->refused_descriptors);
    family(t, "hisoka_tcp_connections_closed_total", "counter",
           "ICE-TCP connections closed, by reason.");
    for (int i = 0; i < HK_TCP_CLOSE_REASON_COUNT; i++)
        labelled(t, "hisoka_tcp_connections_closed_total", "reason",
                 hk_tcp_close_reason_name((hk_tcp_close_reason_t)i), tc->closed[i]);
    counter(t, "hisoka_tcp_frames_received_total", "RFC 4571 frames received over ICE-TCP.",
            tc->rx_frames);
    counter(t, "hisoka_tcp_bytes_received_total", "Bytes of those frames (without headers).",
            tc->rx_bytes);
    counter(t, "hisoka_tcp_empty_frames_total", "Zero-length RFC 4571 frames (skipped).",
            tc->rx_empty_frames);
    counter(t, "hisoka_tcp_frames_sent_total", "Frames queued to ICE-TCP connections.",
            tc->tx_frames);
    counter(t, "hisoka_tcp_bytes_sent_total", "Bytes of those frames (without headers).",
            tc->tx_bytes);
    counter(t, "hisoka_tcp_frames_dropped_total",
            "Frames dropped because a connection's send queue was full (a slow reader).",
            tc->tx_dropped);
}

/* The MLS delivery services' counters: channels gone plus channels live. */
static hk_mls_ds_stats_t mls_totals(const hk_signal_t *sig)
{
    hk_mls_ds_stats_t t = sig->mls_retired;
    for (const hk_channel_t *c = sig->channels; c; c = c->next) {
        if (!c->mls_ds)
            continue;
        const hk_mls_ds_stats_t *s = hk_mls_ds_stats(c->mls_ds);
        t.proposals_sent += s->proposals_sent;
        t.revokes_sent += s->revokes_sent;
        t.commits_accepted += s->commits_accepted;
        t.commits_refused += s->commits_refused;
        t.welcomes_sent += s->welcomes_sent;
        t.malformed += s->malformed;
        t.rate_limited += s->rate_limited;
        t.resets += s->resets;
        t.closes += s->closes;
    }
    return t;
}

#define MLS_COUNTERS(X)                                                                            \
    X(proposals_sent)                                                                              \
    X(revokes_sent)                                                                                \
    X(commits_accepted)                                                                            \
    X(commits_refused)                                                                             \
    X(welcomes_sent)                                                                               \
    X(malformed)                                                                                   \
    X(rate_limited)                                                                                \
    X(resets)                                                                                      \
    X(closes)

/* The media workers' counters, summed; every worker is held. */
typedef struct {
    hk_media_counters_t media;
    hk_link_counters_t udp;
    hk_tcp_link_counters_t tcp;
    hk_pacer_pool_t pool; /* counters, entries and used */
    uint64_t transports;
    bool gso, tcp_on;
} media_totals_t;

/* Adds counter structures that are nothing but uint64_t fields. */
static void add_counters(void *sum, const void *part, size_t size)
{
    uint64_t *s = sum;
    const uint64_t *p = part;
    for (size_t i = 0; i < size / sizeof *s; i++)
        s[i] += p[i];
}

_Static_assert(sizeof(hk_media_counters_t) % sizeof(uint64_t) == 0, "uint64_t fields only");
_Static_assert(sizeof(hk_link_counters_t) % sizeof(uint64_t) == 0, "uint64_t fields only");
_Static_assert(sizeof(hk_tcp_link_counters_t) % sizeof(uint64_t) == 0, "uint64_t fields only");
_Static_assert(sizeof(hk_pacer_counters_t) % sizeof(uint64_t) == 0, "uint64_t fields only");

static void media_totals(hk_signal_t *sig, media_totals_t *t)
{
    memset(t, 0, sizeof *t);
    hk_signal_media_all(sig);
    for (int i = 0; i < sig->n_workers; i++) {
        const hk_media_worker_t *w = &sig->workers[i];
        add_counters(&t->media, &w->host->counters, sizeof t->media);
        add_counters(&t->udp, w->link_counters, sizeof t->udp);
        if (w->tcp_counters) {
            t->tcp_on = true;
            add_counters(&t->tcp, w->tcp_counters, sizeof t->tcp);
        }
        const hk_pacer_pool_t *pool = &w->host->pacer_pool;
        add_counters(&t->pool.counters, &pool->counters, sizeof t->pool.counters);
        t->pool.entries += pool->entries;
        t->pool.used += pool->used;
        t->transports += (uint64_t)w->host->n_transports;
        t->gso = t->gso || *w->link_gso;
    }
}

static char *metrics_text(hk_signal_t *sig)
{
    media_totals_t totals;
    media_totals(sig, &totals);
    const hk_counters_t *c = &sig->counters;
    const hk_media_counters_t *mc = &totals.media;
    const hk_link_counters_t *uc = &totals.udp;
    text_t t = {0};
    uint64_t websockets = 0;
    for (const hk_peer_t *p = sig->peers; p; p = p->next)
        websockets++;

    gauge(&t, "hisoka_connections", "Connections that sent a valid connect and are open.",
          (uint64_t)sig->n_connections);
    gauge(&t, "hisoka_channels", "Channels with at least one connection.",
          (uint64_t)sig->n_channels);
    gauge(&t, "hisoka_websockets", "Open signaling WebSockets, before and after connect.",
          websockets);
    gauge(&t, "hisoka_media_transports", "Media transports (one per connection).",
          totals.transports);
    family(&t, "hisoka_worker_connections", "gauge",
           "Connections whose media each worker carries (channels are placed on the least "
           "loaded).");
    for (int i = 0; i < sig->n_workers; i++) {
        char index[16];
        snprintf(index, sizeof index, "%d", i);
        labelled(&t, "hisoka_worker_connections", "worker", index,
                 (uint64_t)sig->workers[i].connections);
    }
    gauge(&t, "hisoka_stopping", "1 while the server shuts down, else 0.",
          (uint64_t)(sig->stopping != 0));

    /* Signaling (hk_counters_t). */
    counter(&t, "hisoka_connections_total", "Connections accepted (valid connect).",
            c->connections_total);
    family(&t, "hisoka_api_refusals_total", "counter", "HTTP API requests refused, by reason.");
    labelled(&t, "hisoka_api_refusals_total", "reason", "host", c->api_refused_host);
    labelled(&t, "hisoka_api_refusals_total", "reason", "unauthorized",
             c->api_refused_unauthorized);
    labelled(&t, "hisoka_api_refusals_total", "reason", "cross_origin",
             c->api_refused_cross_origin);
    counter(&t, "hisoka_metrics_repeated_total",
            "Scrapes of /metrics answered with the last text: more than 20 in a second.",
            c->api_metrics_repeated);
    family(&t, "hisoka_refusals_total", "counter", "Connections refused, by reason.");
    labelled(&t, "hisoka_refusals_total", "reason", "bad_request", c->refused_bad_request);
    labelled(&t, "hisoka_refusals_total", "reason", "auth", c->refused_auth);
    labelled(&t, "hisoka_refusals_total", "reason", "e2ee_mismatch", c->refused_e2ee_mismatch);
    labelled(&t, "hisoka_refusals_total", "reason", "channel_full", c->refused_channel_full);
    labelled(&t, "hisoka_refusals_total", "reason", "server_full", c->refused_server_full);
    labelled(&t, "hisoka_refusals_total", "reason", "out_of_memory", c->refused_out_of_memory);
    labelled(&t, "hisoka_refusals_total", "reason", "per_address", c->refused_per_address);
    labelled(&t, "hisoka_refusals_total", "reason", "no_descriptors", c->refused_no_descriptors);
    labelled(&t, "hisoka_refusals_total", "reason", "too_large", c->refused_too_large);
    family(&t, "hisoka_timeouts_total", "counter", "Connections closed by a timeout, by kind.");
    labelled(&t, "hisoka_timeouts_total", "kind", "connect", c->timeouts_connect);
    labelled(&t, "hisoka_timeouts_total", "kind", "pong", c->timeouts_pong);
    labelled(&t, "hisoka_timeouts_total", "kind", "reoffer", c->timeouts_reoffer);
    counter(&t, "hisoka_slow_reader_disconnects_total",
            "Connections closed because their send queue overflowed.", c->slow_reader_disconnects);
    family(&t, "hisoka_signaling_messages_total", "counter",
           "Signaling WebSocket messages (text and binary), by direction.");
    labelled(&t, "hisoka_signaling_messages_total", "direction", "in", c->messages_in);
    labelled(&t, "hisoka_signaling_messages_total", "direction", "out", c->messages_out);
    counter(&t, "hisoka_offers_total", "Offers sent.", c->offers);
    counter(&t, "hisoka_reoffers_total", "Re-offers sent.", c->reoffers);
    counter(&t, "hisoka_notifies_total", "Notify messages sent.", c->notifies);
    family(&t, "hisoka_key_messages_total", "counter", "E2EE key messages, by outcome.");
    labelled(&t, "hisoka_key_messages_total", "result", "relayed", c->key_messages_relayed);
    labelled(&t, "hisoka_key_messages_total", "result", "dropped", c->key_messages_dropped);
    counter(&t, "hisoka_bad_answers_total", "Answers refused as invalid SDP.", c->bad_answers);
    family(&t, "hisoka_mls_messages_total", "counter",
           "MLS envelopes from members (docs/protocol.md §6), by outcome.");
    labelled(&t, "hisoka_mls_messages_total", "result", "handled",
             c->mls_messages_in - c->mls_messages_dropped);
    labelled(&t, "hisoka_mls_messages_total", "result", "dropped", c->mls_messages_dropped);
    hk_mls_ds_stats_t mls = mls_totals(sig);
    family(&t, "hisoka_mls_events_total", "counter",
           "MLS delivery service events (proposals, commits, welcomes, refusals, resets).");
#define MLS_METRIC(name) labelled(&t, "hisoka_mls_events_total", "event", #name, mls.name);
    MLS_COUNTERS(MLS_METRIC)
#undef MLS_METRIC

    /* UDP socket (hk_link_counters_t). */
    counter(&t, "hisoka_packets_received_total", "UDP datagrams received on the media port.",
            uc->rx_datagrams);
    counter(&t, "hisoka_bytes_received_total", "UDP bytes received on the media port.",
            uc->rx_bytes);
    counter(&t, "hisoka_packets_sent_total", "UDP datagrams sent from the media port.",
            uc->tx_datagrams);
    counter(&t, "hisoka_bytes_sent_total", "UDP bytes sent from the media port.", uc->tx_bytes);
    counter(&t, "hisoka_busy_poll_datagrams_total",
            "Datagrams read while busy polling (busy_poll_us), without a wake-up.", uc->rx_polled);
    counter(&t, "hisoka_send_messages_total",
            "Messages the sent datagrams took (fewer than datagrams: UDP segmentation offload).",
            uc->tx_messages);
    counter(&t, "hisoka_send_errors_total", "UDP datagrams the kernel refused to send.",
            uc->tx_errors);
    histogram(&t, "hisoka_receive_wait_seconds",
              "Per received datagram: kernel receive timestamp to hisoka reading it (socket "
              "queue, wake-up, scheduling).",
              &uc->rx_wait);
    histogram(
        &t, "hisoka_forward_residence_seconds",
        "Per received datagram: kernel receive timestamp to the sends of its recvmmsg round being "
        "handed to the kernel (the delay hisoka adds).",
        &uc->residence);

    /* Media plane (hk_media_counters_t). */
    family(&t, "hisoka_dropped_datagrams_total", "counter",
           "Media datagrams dropped before reaching a session, by reason.");
    for (int i = 1; i < HK_DEMUX_DROP_COUNT; i++)
        labelled(&t, "hisoka_dropped_datagrams_total", "reason",
                 hk_demux_drop_name((hk_demux_drop_t)i), mc->dropped_demux[i]);
    labelled(&t, "hisoka_dropped_datagrams_total", "reason", "truncated", uc->rx_truncated);
    labelled(&t, "hisoka_dropped_datagrams_total", "reason", "unvalidated_tuple",
             mc->dropped_unvalidated);
    labelled(&t, "hisoka_dropped_datagrams_total", "reason", "dtls_before_answer",
             mc->dtls_before_answer);
    labelled(&t, "hisoka_dropped_datagrams_total", "reason", "before_keys", mc->before_keys);
    labelled(&t, "hisoka_dropped_datagrams_total", "reason", "unknown_ssrc", mc->unknown_ssrc);
    family(&t, "hisoka_stun_requests_total", "counter", "STUN binding requests, by outcome.");
    for (int i = 0; i < HK_STUN_STATUS_COUNT; i++)
        labelled(&t, "hisoka_stun_requests_total", "result",
                 hk_stun_status_name((hk_stun_status_t)i), mc->stun[i]);
    counter(&t, "hisoka_ice_tuple_conflicts_total",
            "ICE checks refused because another connection holds their tuple.",
            mc->ice_tuple_conflicts);
    counter(&t, "hisoka_ice_nominations_refused_total",
            "USE-CANDIDATE from a new tuple while the selected tuple still had consent.",
            mc->ice_nominations_refused);
    counter(&t, "hisoka_ice_consent_checks_total",
            "Consent checks hisoka sent to such a tuple before moving media there.",
            mc->ice_consent_checks_sent);
    counter(&t, "hisoka_ice_tuple_moves_total",
            "Selected tuples moved after the new tuple answered hisoka's consent check.",
            mc->ice_tuple_moves);
    family(&t, "hisoka_media_paths", "gauge",
           "Transports by the path their media takes: udp, tcp (ICE-TCP), relayed (TURN).");
    for (int i = 0; i < HK_PATH_COUNT; i++)
        labelled(&t, "hisoka_media_paths", "path", hk_path_name((hk_path_t)i),
                 mc->selected_paths[i]);
    family(&t, "hisoka_media_path_selections_total", "counter",
           "Tuples selected for a transport's media, by path.");
    for (int i = 0; i < HK_PATH_COUNT; i++)
        labelled(&t, "hisoka_media_path_selections_total", "path", hk_path_name((hk_path_t)i),
                 mc->path_selections[i]);
    counter(&t, "hisoka_ice_tuples_closed_total",
            "Validated tuples forgotten because their ICE-TCP connection closed.",
            mc->tuples_closed);
    if (totals.tcp_on)
        tcp_metrics(&t, &totals.tcp);
    counter(&t, "hisoka_consent_expirations_total",
            "Transports removed because ICE consent expired.", mc->consent_expired);
    counter(&t, "hisoka_dtls_handshakes_total", "DTLS-SRTP handshakes completed.",
            mc->dtls_connected);
    counter(&t, "hisoka_dtls_errors_total", "DTLS failures (handshake, fingerprint, timeout).",
            mc->dtls_errors);
    family(&t, "hisoka_srtp_errors_total", "counter",
           "SRTP/SRTCP failures: in = unprotect, out = protect.");
    sample(&t, "hisoka_srtp_errors_total", "direction=\"in\",kind=\"rtp\"",
           mc->srtp_unprotect_errors);
    sample(&t, "hisoka_srtp_errors_total", "direction=\"in\",kind=\"rtcp\"",
           mc->srtcp_unprotect_errors);
    sample(&t, "hisoka_srtp_errors_total", "direction=\"out\",kind=\"rtp\"",
           mc->srtp_protect_errors);
    counter(&t, "hisoka_rtp_packets_received_total", "RTP packets received from publishers.",
            mc->rtp_packets_in);
    counter(&t, "hisoka_rtp_bytes_received_total", "RTP bytes received from publishers.",
            mc->rtp_bytes_in);
    counter(&t, "hisoka_rtcp_packets_received_total", "RTCP compound packets received.",
            mc->rtcp_packets_in);
    counter(&t, "hisoka_rtcp_errors_total", "Malformed RTCP compound packets.", mc->rtcp_errors);
    counter(&t, "hisoka_rtp_errors_total", "RTP packets that authenticated but do not parse.",
            mc->rtp_errors);
    counter(&t, "hisoka_forwarded_packets_total", "RTP packets forwarded to subscribers.",
            mc->forwarded_packets);
    counter(&t, "hisoka_forwarded_bytes_total", "RTP bytes forwarded to subscribers.",
            mc->forwarded_bytes);
    counter(&t, "hisoka_nacks_received_total", "Sequence numbers NACKed by subscribers.",
            mc->nacks_received);
    counter(&t, "hisoka_nacks_sent_total", "NACK packets sent to publishers.", mc->nacks_sent);
    counter(&t, "hisoka_nacks_rate_limited_total",
            "NACKed packets not answered: over max_nacks_per_second.", mc->nacks_rate_limited);
    counter(&t, "hisoka_retransmissions_total", "NACKed packets resent from the cache.",
            mc->retransmissions);
    counter(&t, "hisoka_retransmission_misses_total", "NACKed packets no longer in the cache.",
            mc->retransmission_misses);
    family(&t, "hisoka_plis_total", "counter",
           "Picture loss indications: received from subscribers, sent to publishers.");
    labelled(&t, "hisoka_plis_total", "direction", "received", mc->plis_received);
    labelled(&t, "hisoka_plis_total", "direction", "sent", mc->plis_sent);
    counter(&t, "hisoka_plis_throttled_total", "PLIs not relayed because of the throttle.",
            mc->plis_throttled);
    counter(&t, "hisoka_plis_moved_down_total",
            "PLIs of congested subscribers answered by moving them down a simulcast layer.",
            mc->plis_moved_down);
    counter(&t, "hisoka_layer_dropped_total",
            "Video packets of temporal layers (and SVC spatial layers) left out for "
            "subscribers whose downlink estimate does not carry them.",
            mc->layer_dropped);
    counter(&t, "hisoka_twcc_feedback_sent_total", "Transport-wide CC feedback packets sent.",
            mc->twcc_feedback_sent);
    counter(&t, "hisoka_twcc_feedback_received_total",
            "Transport-wide CC feedback from subscribers, fed to their downlink estimates.",
            mc->twcc_feedback_received);
    counter(&t, "hisoka_probe_clusters_total", "Bandwidth probes sent to subscribers.",
            mc->probe_clusters);
    counter(&t, "hisoka_padding_packets_total", "RTX padding packets sent in probes.",
            mc->padding_packets);
    counter(&t, "hisoka_padding_bytes_total", "Bytes of RTX padding sent in probes.",
            mc->padding_bytes);
    const hk_pacer_pool_t *pool = &totals.pool;
    counter(&t, "hisoka_pacer_queued_packets_total",
            "RTP packets a subscriber's pacer held back before sending them.",
            pool->counters.queued);
    counter(&t, "hisoka_pacer_dropped_packets_total",
            "RTP packets dropped from a pacer's queue: over its 500 ms bound or the pool's.",
            pool->counters.dropped);
    delay_histogram(&t, "hisoka_pacer_queue_delay_seconds",
                    "Per packet a pacer held back: how long it waited.",
                    pool->counters.delay_bucket, hk_pacer_delay_bounds_us, HK_PACER_DELAY_BUCKETS,
                    (double)pool->counters.delay_sum_us / 1e6, pool->counters.delay_count);
    family(&t, "hisoka_pacer_pool_entries", "gauge",
           "Packet entries of the pacers' pool: allocated, and holding a packet now.");
    labelled(&t, "hisoka_pacer_pool_entries", "state", "allocated", pool->entries);
    labelled(&t, "hisoka_pacer_pool_entries", "state", "used", pool->used);
    /* Per subscriber with a downlink estimate (connection ids are ULIDs: no escaping). */
    static const char *const bwe_gauges[][2] = {
        {"hisoka_subscriber_estimate_bps", "A subscriber's downlink estimate, bits per second."},
        {"hisoka_subscriber_desired_bps", "What its wanted layers need, bits per second."},
        {"hisoka_subscriber_allocated_bps", "What its layers were given, bits per second."},
    };
    for (int g = 0; g < 3; g++) {
        bool any = false;
        for (const hk_peer_t *p = sig->peers; p; p = p->next) {
            const hk_transport_t *tr = p->transport;
            if (!tr || !tr->bwe)
                continue;
            if (!any)
                family(&t, bwe_gauges[g][0], "gauge", bwe_gauges[g][1]);
            any = true;
            uint64_t v = g == 0   ? hk_bwe_estimate(tr->bwe)
                         : g == 1 ? p->endpoint.desired_bps
                                  : p->endpoint.allocated_bps;
            labelled(&t, bwe_gauges[g][0], "connection_id", p->connection_id, v);
        }
    }
    /* Simulcast video consumers by the layer each receives now (one series per layer,
     * whatever the room size: each one's own is in /stats). */
    uint64_t by_layer[HK_SIMULCAST_MAX_LAYERS + 1] = {0}; /* [0]: none (paused or waiting) */
    for (const hk_peer_t *p = sig->peers; p; p = p->next) {
        const hk_map_t *m = &p->endpoint.consumers;
        for (size_t i = 0; i < m->cap; i++) {
            const hk_consumer_t *c = m->slots[i].value;
            if (c && c->active && c->producer && c->producer->layers)
                by_layer[c->layer >= 0 && c->layer < HK_SIMULCAST_MAX_LAYERS ? c->layer + 1 : 0]++;
        }
    }
    family(&t, "hisoka_simulcast_consumers", "gauge",
           "Simulcast video tracks sent to subscribers, by the layer each receives now.");
    for (int l = -1; l < HK_SIMULCAST_MAX_LAYERS; l++)
        labelled(&t, "hisoka_simulcast_consumers", "rid", hk_sora_rid_name(l), by_layer[l + 1]);
    counter(&t, "hisoka_relay_packets_total",
            "Packets pushed to another worker's relay (a channel spread over workers).",
            mc->relay_packets);
    counter(&t, "hisoka_relay_dropped_total",
            "Packets a relay to another worker dropped: its ring was full.", mc->relay_dropped);
    counter(&t, "hisoka_receiver_reports_sent_total", "RTCP receiver reports sent.",
            mc->receiver_reports_sent);
    counter(&t, "hisoka_sender_reports_relayed_total", "RTCP sender reports relayed.",
            mc->sender_reports_relayed);
    char *cluster = sig->placement ? sig->placement->metrics(sig->placement->impl) : NULL;
    if (cluster)
        text_printf(&t, "%s", cluster);
    free(cluster);
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    return t.p ? t.p : strdup("");
}

/* --- /stats ------------------------------------------------------------------------------ */

static json_t *stats_json(hk_signal_t *sig)
{
    media_totals_t totals;
    media_totals(sig, &totals);
    json_t *root = json_object();
    json_t *channels = json_array();
    for (const hk_channel_t *c = sig->channels; c; c = c->next) {
        json_t *members = json_array();
        for (const hk_peer_t *m = c->members; m; m = m->channel_next)
            json_array_append_new(members,
                                  json_pack("{s:s,s:s,s:s,s:b}", "connection_id", m->connection_id,
                                            "client_id", m->client_id, "role",
                                            hk_role_name(m->role), "announced", m->announced));
        json_t *channel = json_pack("{s:s,s:b,s:i,s:o}", "channel_id", c->id, "e2ee", c->e2ee,
                                    "worker", c->worker, "connections", members);
        if (c->mls_ds) {
            int exists = 0;
            uint64_t epoch = hk_mls_ds_epoch(c->mls_ds, &exists);
            json_object_set_new(channel, "e2ee_protocol", json_string("mls"));
            json_object_set_new(channel, "mls_epoch",
                                exists ? json_integer((json_int_t)epoch) : json_null());
        }
        json_array_append_new(channels, channel);
    }
    json_object_set_new(root, "channels", channels);
    json_object_set_new(root, "total_connections", json_integer(sig->n_connections));
    json_object_set_new(root, "key_messages_relayed",
                        json_integer((json_int_t)sig->counters.key_messages_relayed));
    json_object_set_new(root, "key_messages_dropped",
                        json_integer((json_int_t)sig->counters.key_messages_dropped));
    hk_mls_ds_stats_t mls = mls_totals(sig);
    json_t *mls_json =
        json_pack("{s:I,s:I}", "messages_in", (json_int_t)sig->counters.mls_messages_in,
                  "messages_dropped", (json_int_t)sig->counters.mls_messages_dropped);
#define MLS_JSON(name) json_object_set_new(mls_json, #name, json_integer((json_int_t)mls.name));
    MLS_COUNTERS(MLS_JSON)
#undef MLS_JSON
    json_object_set_new(root, "mls", mls_json);
    const hk_media_counters_t *mc = &totals.media;
    const hk_link_counters_t *uc = &totals.udp;
    json_t *media = json_object();
#define MEDIA_COUNTER(name) json_object_set_new(media, #name, json_integer((json_int_t)mc->name))
    MEDIA_COUNTER(dropped_unvalidated);
    MEDIA_COUNTER(dtls_errors);
    MEDIA_COUNTER(dtls_connected);
    MEDIA_COUNTER(dtls_before_answer);
    MEDIA_COUNTER(srtp_unprotect_errors);
    MEDIA_COUNTER(srtcp_unprotect_errors);
    MEDIA_COUNTER(srtp_protect_errors);
    MEDIA_COUNTER(before_keys);
    MEDIA_COUNTER(unknown_ssrc);
    MEDIA_COUNTER(rtp_packets_in);
    MEDIA_COUNTER(rtp_bytes_in);
    MEDIA_COUNTER(rtcp_packets_in);
    MEDIA_COUNTER(forwarded_packets);
    MEDIA_COUNTER(forwarded_bytes);
    MEDIA_COUNTER(nacks_received);
    MEDIA_COUNTER(retransmissions);
    MEDIA_COUNTER(retransmission_misses);
    MEDIA_COUNTER(nacks_sent);
    MEDIA_COUNTER(plis_received);
    MEDIA_COUNTER(plis_sent);
    MEDIA_COUNTER(plis_throttled);
    MEDIA_COUNTER(plis_moved_down);
    MEDIA_COUNTER(layer_dropped);
    MEDIA_COUNTER(twcc_feedback_sent);
    MEDIA_COUNTER(twcc_feedback_received);
    MEDIA_COUNTER(probe_clusters);
    MEDIA_COUNTER(padding_packets);
    MEDIA_COUNTER(padding_bytes);
    MEDIA_COUNTER(receiver_reports_sent);
    MEDIA_COUNTER(sender_reports_relayed);
    MEDIA_COUNTER(rtcp_errors);
    MEDIA_COUNTER(consent_expired);
    MEDIA_COUNTER(ice_tuple_conflicts);
    MEDIA_COUNTER(ice_nominations_refused);
    MEDIA_COUNTER(ice_consent_checks_sent);
    MEDIA_COUNTER(ice_tuple_moves);
    MEDIA_COUNTER(relay_packets);
    MEDIA_COUNTER(relay_dropped);
#undef MEDIA_COUNTER
    json_t *stun = json_object();
    for (int i = 0; i < HK_STUN_STATUS_COUNT; i++)
        json_object_set_new(stun, hk_stun_status_name((hk_stun_status_t)i),
                            json_integer((json_int_t)mc->stun[i]));
    json_object_set_new(media, "stun", stun);
    json_t *demux = json_object();
    for (int i = 1; i < HK_DEMUX_DROP_COUNT; i++)
        json_object_set_new(demux, hk_demux_drop_name((hk_demux_drop_t)i),
                            json_integer((json_int_t)mc->dropped_demux[i]));
    json_object_set_new(media, "dropped_demux", demux);
    json_object_set_new(media, "udp_rx_datagrams", json_integer((json_int_t)uc->rx_datagrams));
    json_object_set_new(media, "udp_tx_datagrams", json_integer((json_int_t)uc->tx_datagrams));
    json_object_set_new(media, "udp_tx_messages", json_integer((json_int_t)uc->tx_messages));
    json_object_set_new(media, "udp_rx_polled", json_integer((json_int_t)uc->rx_polled));
    json_object_set_new(media, "udp_tx_errors", json_integer((json_int_t)uc->tx_errors));
    json_object_set_new(media, "udp_gso", json_boolean(totals.gso));
    json_t *paths = json_object();
    for (int i = 0; i < HK_PATH_COUNT; i++)
        json_object_set_new(paths, hk_path_name((hk_path_t)i),
                            json_integer((json_int_t)mc->selected_paths[i]));
    json_object_set_new(media, "paths", paths);
    const hk_pacer_pool_t *pool = &totals.pool;
    json_object_set_new(media, "pacer",
                        json_pack("{s:I,s:I,s:I,s:I}", "queued_packets",
                                  (json_int_t)pool->counters.queued, "dropped_packets",
                                  (json_int_t)pool->counters.dropped, "pool_entries",
                                  (json_int_t)pool->entries, "pool_used", (json_int_t)pool->used));
    const hk_tcp_link_counters_t *tc = totals.tcp_on ? &totals.tcp : NULL;
    if (tc)
        json_object_set_new(
            media, "tcp",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "open", (json_int_t)tc->open, "accepted",
                      (json_int_t)tc->accepted, "rx_frames", (json_int_t)tc->rx_frames, "tx_frames",
                      (json_int_t)tc->tx_frames, "tx_dropped", (json_int_t)tc->tx_dropped,
                      "closed_stalled", (json_int_t)tc->closed[HK_TCP_CLOSE_STALLED]));
    json_object_set_new(root, "media", media);
    /* Each media worker: its port, what was placed on it, what it forwarded. */
    json_t *workers = json_array();
    for (int i = 0; i < sig->n_workers; i++) {
        const hk_media_worker_t *w = &sig->workers[i];
        json_array_append_new(
            workers,
            json_pack("{s:i,s:i,s:i,s:i,s:i,s:I,s:I}", "index", i, "media_port", w->media_port,
                      "channels", w->channels, "connections", w->connections, "transports",
                      w->host->n_transports, "rtp_packets_in",
                      (json_int_t)w->host->counters.rtp_packets_in, "forwarded_packets",
                      (json_int_t)w->host->counters.forwarded_packets));
    }
    json_object_set_new(root, "workers", workers);
    return root;
}

static const char *state_name(hk_peer_state_t state)
{
    switch (state) {
    case HK_PEER_WAIT_CONNECT:
        return "wait_connect";
    case HK_PEER_WAIT_AUTH:
        return "wait_auth";
    case HK_PEER_WAIT_ANSWER:
        return "wait_answer";
    case HK_PEER_ACTIVE:
        return "active";
    case HK_PEER_CLOSING:
        return "closing";
    }
    return "?";
}

/* The short form of a connection, in /stats/connections. */
static json_t *connection_summary(const hk_peer_t *p, uint64_t now_ms)
{
    bool connect = p->state != HK_PEER_WAIT_CONNECT && p->channel;
    json_t *o = json_object();
    json_object_set_new(o, "connection_id", json_string(p->connection_id));
    json_object_set_new(o, "client_id", connect ? json_string(p->client_id) : json_null());
    json_object_set_new(o, "channel_id", p->channel ? json_string(p->channel->id) : json_null());
    json_object_set_new(o, "role", connect ? json_string(hk_role_name(p->role)) : json_null());
    json_object_set_new(o, "state", json_string(state_name(p->state)));
    json_object_set_new(o, "e2ee", json_boolean(p->e2ee));
    json_object_set_new(o, "announced", json_boolean(p->announced));
    json_object_set_new(o, "worker", p->worker >= 0 ? json_integer(p->worker) : json_null());
    json_object_set_new(o, "age_ms", json_integer((json_int_t)(now_ms - p->created_ms)));
    return o;
}

static const char *dtls_state(const hk_transport_t *t)
{
    if (!t->dtls)
        return "new";
    if (t->ready)
        return "connected";
    if (hk_dtls_error(t->dtls)[0])
        return "failed";
    return "connecting";
}

static const char *stream_kind(const hk_stream_t *s)
{
    if (s->rtx)
        return "video_rtx";
    return s->kind == HK_MEDIA_AUDIO ? "audio" : "video";
}

/* The long form: everything known about one connection (no keys, no payload). */
/* A layer cap in /stats: the highest spatial or temporal id forwarded, null for all (-1:
 * none, paused). */
static json_t *layer_json(int tid)
{
    return tid == HK_LAYER_AUTO ? json_null() : json_integer(tid);
}

static json_t *connection_detail(hk_signal_t *sig, const hk_peer_t *p, uint64_t now_ms)
{
    if (p->worker >= 0)
        hk_signal_media(sig, p->worker);
    json_t *o = connection_summary(p, now_ms);
    json_object_set_new(o, "audio", json_boolean(p->audio));
    json_object_set_new(o, "video", json_boolean(p->video));
    json_object_set_new(o, "offer_outstanding", json_boolean(p->offer_outstanding));
    json_object_set_new(o, "missed_pongs", json_integer(p->missed_pongs));
    json_object_set_new(o, "signaling_queue_bytes", json_integer((json_int_t)p->tx_bytes));
    const hk_transport_t *t = p->transport;
    if (!t) {
        json_object_set_new(o, "ice", json_null());
        json_object_set_new(o, "dtls", json_null());
        return o;
    }
    json_t *ice = json_object();
    json_object_set_new(ice, "state", json_string(t->has_selected ? "connected" : "new"));
    json_object_set_new(ice, "validated_tuples", json_integer(t->n_tuples));
    if (t->has_selected) {
        char ip[INET6_ADDRSTRLEN] = "";
        bool v6 = t->selected.addr.sa.sa_family == AF_INET6;
        inet_ntop(v6 ? AF_INET6 : AF_INET,
                  v6 ? (const void *)&t->selected.addr.v6.sin6_addr
                     : (const void *)&t->selected.addr.v4.sin_addr,
                  ip, sizeof ip);
        int port = ntohs(v6 ? t->selected.addr.v6.sin6_port : t->selected.addr.v4.sin_port);
        json_object_set_new(ice, "selected",
                            json_pack("{s:s,s:i,s:s,s:s}", "address", ip, "port", port, "protocol",
                                      t->selected.protocol == HK_PROTO_TCP ? "tcp" : "udp", "path",
                                      hk_path_name((hk_path_t)t->path)));
        json_object_set_new(ice, "last_consent_ms_ago",
                            json_integer((json_int_t)(now_ms - t->last_consent_ms)));
    } else {
        json_object_set_new(ice, "selected", json_null());
    }
    json_object_set_new(o, "ice", ice);
    json_t *dtls = json_object();
    json_object_set_new(dtls, "state", json_string(dtls_state(t)));
    if (t->dtls && hk_dtls_error(t->dtls)[0])
        json_object_set_new(dtls, "error", json_string(hk_dtls_error(t->dtls)));
    json_object_set_new(o, "dtls", dtls);
    json_object_set_new(o, "srtp_ready", json_boolean(t->ready));
    json_t *streams = json_array();
    for (size_t i = 0; i < sizeof t->streams / sizeof t->streams[0]; i++) {
        const hk_stream_t *s = &t->streams[i];
        if (!s->ssrc)
            continue;
        json_t *entry = json_pack("{s:s,s:I,s:I,s:I}", "kind", stream_kind(s), "ssrc",
                                  (json_int_t)s->ssrc, "packets_received", (json_int_t)s->packets,
                                  "bytes_received", (json_int_t)s->bytes);
        if (t->simulcast_rids && i != HK_STREAM_AUDIO) {
            int layer = (int)i - (s->rtx ? HK_STREAM_RTX : HK_STREAM_VIDEO);
            json_object_set_new(entry, "rid", json_string(hk_sora_rid_name(layer)));
        }
        json_array_append_new(streams, entry);
    }
    json_object_set_new(o, "published_streams", streams);
    /* What it receives: one consumer per track, with its own SSRC. */
    json_t *consumers = json_array();
    const hk_map_t *map = &p->endpoint.consumers;
    for (size_t i = 0; i < map->cap; i++) {
        const hk_consumer_t *c = map->slots[i].value;
        if (!c)
            continue;
        const hk_producer_t *producer = c->producer;
        uint32_t producer_ssrc =
            producer ? hk_producer_stream(producer, c->layer > 0 ? c->layer : 0)->ssrc : 0;
        json_t *entry = json_pack("{s:s,s:s,s:I,s:I,s:b,s:I,s:I}", "kind",
                                  c->kind == HK_MEDIA_AUDIO ? "audio" : "video", "mid", c->mid,
                                  "ssrc", (json_int_t)c->ssrc, "producer_ssrc",
                                  (json_int_t)producer_ssrc, "active", c->active, "packets_sent",
                                  (json_int_t)c->packets, "bytes_sent", (json_int_t)c->bytes);
        if (producer) {
            const hk_peer_t *sender = producer->endpoint->owner;
            json_object_set_new(entry, "sender_connection_id", json_string(sender->connection_id));
        }
        if (producer && producer->layers)
            json_object_set_new(
                entry, "simulcast",
                json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:o}", "request_rid", hk_sora_rid_name(c->want),
                          "bwe_rid", hk_sora_rid_name(c->cap), "current_rid",
                          hk_sora_rid_name(c->layer), "target_rid", hk_sora_rid_name(c->target),
                          "switches", (json_int_t)c->switches, "bwe_temporal", layer_json(c->tcap),
                          "current_temporal", layer_json(c->max_tid)));
        if (producer && producer->svc)
            json_object_set_new(entry, "svc",
                                json_pack("{s:o,s:o,s:o,s:o}", "bwe_spatial", layer_json(c->cap),
                                          "bwe_temporal", layer_json(c->tcap), "current_spatial",
                                          layer_json(c->max_sid), "current_temporal",
                                          layer_json(c->max_tid)));
        json_array_append_new(consumers, entry);
    }
    json_object_set_new(o, "consumers", consumers);
    /* Its downlink estimate, once it sent transport-cc feedback. */
    if (t->bwe) {
        hk_bwe_stats_t b;
        hk_bwe_get_stats(t->bwe, &b);
        static const char *const usage[] = {"normal", "underuse", "overuse"};
        json_object_set_new(
            o, "bwe",
            json_pack("{s:I,s:I,s:I,s:I,s:f,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
                      "estimate_bps", (json_int_t)b.estimate_bps, "delay_based_bps",
                      (json_int_t)b.delay_based_bps, "loss_based_bps", (json_int_t)b.loss_based_bps,
                      "acked_bps", (json_int_t)b.acked_bps, "loss_ratio", b.loss_ratio, "usage",
                      usage[b.usage], "rtt_ms", (json_int_t)(b.rtt_us / 1000), "desired_bps",
                      (json_int_t)p->endpoint.desired_bps, "allocated_bps",
                      (json_int_t)p->endpoint.allocated_bps, "packets_sent",
                      (json_int_t)b.packets_sent, "packets_lost", (json_int_t)b.packets_lost,
                      "probes", (json_int_t)b.probes, "probes_raised", (json_int_t)b.probes_raised,
                      "probes_failed", (json_int_t)b.probes_failed, "probes_queued",
                      (json_int_t)b.probes_queued, "probe_bps", (json_int_t)b.probe_bps));
        const hk_pacer_t *pacer = &t->pacer;
        json_object_set_new(
            o, "pacer",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "rate_bps", (json_int_t)pacer->rate_bps,
                      "waiting_packets", (json_int_t)pacer->packets, "waiting_bytes",
                      (json_int_t)pacer->bytes, "queued_packets", (json_int_t)pacer->queued,
                      "dropped_packets", (json_int_t)pacer->dropped, "max_delay_ms",
                      (json_int_t)(pacer->max_delay_us / 1000)));
    }
    return o;
}

static hk_peer_t *find_peer(const hk_signal_t *sig, const char *id)
{
    for (hk_peer_t *p = sig->peers; p; p = p->next)
        if (strcmp(p->connection_id, id) == 0)
            return p;
    return NULL;
}

/* --- disconnect ---------------------------------------------------------------------- */

static int disconnect(struct lws *wsi, hk_signal_t *sig, const char *channel_id, const char *id)
{
    hk_peer_t *p = find_peer(sig, id);
    if (!p || p->state == HK_PEER_CLOSING ||
        (channel_id && (!p->channel || strcmp(p->channel->id, channel_id) != 0)))
        return respond_error(wsi, 404, "no such connection");
    HK_LOG(HK_LOG_INFO, "api", p->connection_id, "disconnect requested through the API");
    hk_peer_close(p, HK_CLOSE_API_DISCONNECT, HK_API_DISCONNECT_REASON);
    return respond_json(wsi, 200,
                        json_pack("{s:s,s:s}", "connection_id", id, "status", "disconnected"));
}

/* --- simulcast layers (PROTOCOL.md §5) ---------------------------------------------------- */

/* The receiver's wish for the simulcast video of one sender (sender_id) or of all:
 * want is a layer, HK_LAYER_NONE or HK_LAYER_AUTO; reset goes back to what its connect
 * asked for. The receiver is told of the switch by notify simulcast.switched. */
static int request_rid(struct lws *wsi, hk_signal_t *sig, const char *channel_id,
                       const char *receiver_id, const char *sender_id, int want, bool reset)
{
    hk_peer_t *receiver = find_peer(sig, receiver_id);
    if (!receiver || receiver->state == HK_PEER_CLOSING || !receiver->channel ||
        strcmp(receiver->channel->id, channel_id) != 0)
        return respond_error(wsi, 404, "no such receiving connection in this channel");
    const hk_peer_t *sender = NULL;
    if (sender_id) {
        sender = hk_channel_find(receiver->channel, sender_id, strlen(sender_id));
        if (!sender)
            return respond_error(wsi, 404, "no such sending connection in this channel");
    }
    size_t changed = 0;
    if (receiver->worker >= 0)
        hk_signal_media(sig, receiver->worker);
    const hk_map_t *map = &receiver->endpoint.consumers;
    for (size_t i = 0; i < map->cap; i++) {
        hk_consumer_t *c = map->slots[i].value;
        if (!c || !c->producer || !c->producer->layers ||
            (sender && c->producer->endpoint->owner != sender))
            continue;
        hk_consumer_set_want(c, reset ? receiver->simulcast_want : want, !reset);
        changed++;
    }
    if (sender && changed == 0)
        return respond_error(wsi, 404, "the receiver gets no simulcast video from this sender");
    HK_LOG(HK_LOG_INFO, "api", receiver->connection_id, "simulcast: %s of %s (%zu tracks)",
           reset ? "reset" : hk_sora_rid_name(want), sender_id ? sender_id : "every sender",
           changed);
    json_t *out = json_pack(
        "{s:s,s:s,s:s,s:I}", "channel_id", channel_id, "receiver_connection_id", receiver_id, "rid",
        hk_sora_rid_name(reset ? receiver->simulcast_want : want), "tracks", (json_int_t)changed);
    if (sender_id)
        json_object_set_new(out, "sender_connection_id", json_string(sender_id));
    return respond_json(wsi, 200, out);
}

/* Sora_20251210.RequestSimulcastRid {channel_id, receiver_connection_id,
 * sender_connection_id?, rid: none|r0|r1|r2|auto}; Sora_20201005.RequestRtpStream
 * {channel_id, recv_connection_id, send_connection_id?, rid: r0|r1|r2};
 * Sora_20201005.ResetRtpStream {channel_id, recv_connection_id, send_connection_id?}. */
static int simulcast_api(struct lws *wsi, hk_signal_t *sig, const char *target, json_t *body)
{
    bool legacy = strcmp(target, "Sora_20251210.RequestSimulcastRid") != 0;
    bool reset = strcmp(target, "Sora_20201005.ResetRtpStream") == 0;
    const char *channel_id = json_string_value(json_object_get(body, "channel_id"));
    const char *receiver = json_string_value(
        json_object_get(body, legacy ? "recv_connection_id" : "receiver_connection_id"));
    json_t *sender_value =
        json_object_get(body, legacy ? "send_connection_id" : "sender_connection_id");
    const char *sender = json_string_value(sender_value);
    const char *rid = json_string_value(json_object_get(body, "rid"));
    if (!channel_id || !receiver || (sender_value && !json_is_null(sender_value) && !sender))
        return respond_error(wsi, 400,
                             legacy ? "body needs channel_id and recv_connection_id strings "
                                      "(send_connection_id optional)"
                                    : "body needs channel_id and receiver_connection_id strings "
                                      "(sender_connection_id optional)");
    int want = HK_LAYER_AUTO;
    if (!reset) {
        want = !rid                                    ? -3
               : (!legacy && strcmp(rid, "auto") == 0) ? HK_LAYER_AUTO
                                                       : hk_sora_parse_rid(rid, !legacy);
        if (want < HK_LAYER_AUTO)
            return respond_error(wsi, 400,
                                 legacy ? "rid must be r0, r1 or r2"
                                        : "rid must be none, r0, r1, r2 or auto");
    }
    return request_rid(wsi, sig, channel_id, receiver, sender, want, reset);
}

/* Sora's API: POST / with x-sora-target and a JSON body. */
static int sora_api(struct lws *wsi, hk_signal_t *sig, const api_session_t *s)
{
    char target[96];
    if (lws_hdr_custom_copy(wsi, target, sizeof target, SORA_TARGET, (int)strlen(SORA_TARGET)) <= 0)
        return respond_error(wsi, 400, "missing x-sora-target");
    bool simulcast = strcmp(target, "Sora_20251210.RequestSimulcastRid") == 0 ||
                     strcmp(target, "Sora_20201005.RequestRtpStream") == 0 ||
                     strcmp(target, "Sora_20201005.ResetRtpStream") == 0;
    if (!simulcast && strcmp(target, "Sora_20151104.DisconnectConnection") != 0)
        return respond_error(wsi, 400, "unsupported x-sora-target");
    json_error_t jerr;
    json_t *body = json_loadb(s->body, s->body_len, 0, &jerr);
    if (simulcast) {
        int rc = json_is_object(body) ? simulcast_api(wsi, sig, target, body)
                                      : respond_error(wsi, 400, "body must be a JSON object");
        json_decref(body);
        return rc;
    }
    const char *channel_id = NULL, *connection_id = NULL;
    if (!body || json_unpack(body, "{s:s,s:s}", "channel_id", &channel_id, "connection_id",
                             &connection_id) != 0) {
        json_decref(body);
        return respond_error(wsi, 400, "body must be {\"channel_id\":..., \"connection_id\":...}");
    }
    int rc = disconnect(wsi, sig, channel_id, connection_id);
    json_decref(body);
    return rc;
}

/* --- routing ---------------------------------------------------------------------- */

/* /health with a cluster: "status" is "degraded" (still 200: this node serves its
 * channels) while it cannot place new ones, and "cluster" says why (README "Cluster"). */
static json_t *cluster_health(const hk_signal_t *sig)
{
    bool degraded = false;
    json_t *cluster = sig->placement->health(sig->placement->impl, &degraded);
    const char *status = sig->stopping ? "stopping" : degraded ? "degraded" : "ok";
    return json_pack("{s:s,s:o*}", "status", status, "cluster", cluster);
}

static int dispatch(struct lws *wsi, api_session_t *s)
{
    hk_signal_t *sig = lws_context_user(lws_get_context(wsi));
    const char *uri = s->uri;
    uint64_t now = hk_signal_now_ms(sig);
    static const char conn_prefix[] = "/stats/connections/";
    static const char del_prefix[] = "/connections/";
    static const char disconnect_suffix[] = "/disconnect";

    if (s->body_too_large)
        return respond_error(wsi, 413, "request body too large");
    if (s->method == M_GET) {
        if (strcmp(uri, "/health") == 0 && sig->placement)
            return respond_json(wsi, sig->stopping ? 503 : 200, cluster_health(sig));
        if (strcmp(uri, "/health") == 0)
            return respond(wsi, sig->stopping ? 503 : 200, "application/json",
                           sig->stopping ? "{\"status\":\"stopping\"}" : "{\"status\":\"ok\"}");
        if (strcmp(uri, "/metrics") == 0) {
            /* A flood of scrapes must not keep the workers held: past
             * HK_METRICS_RENDERS_PER_SECOND renders in a second, the last text again. */
            if (now - sig->metrics_second_ms >= 1000) {
                sig->metrics_second_ms = now;
                sig->metrics_renders = 0;
            }
            char *text = NULL;
            if (!sig->metrics_text || sig->metrics_renders < HK_METRICS_RENDERS_PER_SECOND) {
                text = metrics_text(sig);
                sig->metrics_renders++;
            }
            if (text) {
                free(sig->metrics_text);
                sig->metrics_text = text;
            } else if (sig->metrics_text) {
                sig->counters.api_metrics_repeated++;
            }
            return respond(wsi, sig->metrics_text ? 200 : 500,
                           "text/plain; version=0.0.4; charset=utf-8",
                           sig->metrics_text ? sig->metrics_text : "");
        }
        if (strcmp(uri, "/stats") == 0)
            return respond_json(wsi, 200, stats_json(sig));
        if (strcmp(uri, "/stats/connections") == 0) {
            json_t *list = json_array();
            for (const hk_peer_t *p = sig->peers; p; p = p->next)
                json_array_append_new(list, connection_summary(p, now));
            return respond_json(wsi, 200, list);
        }
        if (strncmp(uri, conn_prefix, sizeof conn_prefix - 1) == 0) {
            const hk_peer_t *p = find_peer(sig, uri + sizeof conn_prefix - 1);
            if (!p)
                return respond_error(wsi, 404, "no such connection");
            return respond_json(wsi, 200, connection_detail(sig, p, now));
        }
        return respond_error(wsi, 404, "not found");
    }
    if (s->method == M_DELETE && strncmp(uri, del_prefix, sizeof del_prefix - 1) == 0)
        return disconnect(wsi, sig, NULL, uri + sizeof del_prefix - 1);
    if (s->method == M_POST && strcmp(uri, "/") == 0)
        return sora_api(wsi, sig, s);
    if (s->method == M_POST && strncmp(uri, del_prefix, sizeof del_prefix - 1) == 0) {
        char id[sizeof s->uri];
        size_t n = strlen(uri) - (sizeof del_prefix - 1);
        size_t suffix = sizeof disconnect_suffix - 1;
        if (n > suffix && strcmp(uri + strlen(uri) - suffix, disconnect_suffix) == 0) {
            memcpy(id, uri + sizeof del_prefix - 1, n - suffix);
            id[n - suffix] = '\0';
            return disconnect(wsi, sig, NULL, id);
        }
    }
    return respond_error(wsi, 404, "not found");
}

/* --- who may call ------------------------------------------------------------------------ */

/* Host must name this server in a way a DNS rebinding cannot: an IP address, localhost,
 * or a name in api_allowed_hosts. No Host at all (HTTP/1.0 probes) is not a browser. */
static bool host_allowed(struct lws *wsi, const hk_config_t *config)
{
    char host[256];
    int n = lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
    if (n <= 0)
        return lws_hdr_total_length(wsi, WSI_TOKEN_HOST) == 0;
    char *name = host;
    if (name[0] == '[') { /* [IPv6]:port */
        char *close = strchr(name, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return false;
        *close = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, name + 1, &a6) == 1;
    }
    char *colon = strrchr(name, ':');
    if (colon) {
        for (const char *d = colon + 1; *d; d++)
            if (!isdigit((unsigned char)*d))
                return false;
        *colon = '\0';
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1 || strcasecmp(name, "localhost") == 0)
        return true;
    size_t len = strlen(name);
    for (const char *p = config->api_allowed_hosts; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == len && len > 0 && strncasecmp(p, name, len) == 0)
            return true;
        p = e;
    }
    return false;
}

/* A request that changes state must come from this origin: a browser sends Origin (and
 * Sec-Fetch-Site) with cross-origin requests, and no preflight protects a form POST. */
static bool same_origin(struct lws *wsi)
{
    char site[32];
    if (lws_hdr_custom_copy(wsi, site, sizeof site, "sec-fetch-site:", 15) > 0 &&
        strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return false;
    char origin[300], host[256], expect[300];
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
        return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0;
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
        return false;
    snprintf(expect, sizeof expect, "%s://%s", lws_is_ssl(wsi) ? "https" : "http", host);
    return strcasecmp(origin, expect) == 0;
}

static bool authorized(struct lws *wsi, const hk_config_t *config)
{
    if (!config->api_secret[0])
        return true; /* loopback only (hk_config_api_address) */
    char value[HK_CONFIG_STR + 16];
    static const char bearer[] = "Bearer ";
    if (lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
        strncasecmp(value, bearer, sizeof bearer - 1) != 0)
        return false;
    const char *given = value + sizeof bearer - 1;
    size_t len = strlen(config->api_secret);
    return strlen(given) == len && CRYPTO_memcmp(given, config->api_secret, len) == 0;
}

/* 0 when the request may go on; otherwise the refusal has been answered (its return). */
static int check_access(struct lws *wsi, hk_signal_t *sig, const api_session_t *s, int *rc)
{
    const hk_config_t *config = sig->config;
    if (!host_allowed(wsi, config)) {
        sig->counters.api_refused_host++;
        *rc = respond_error(wsi, 421, "Host is not this server (api_allowed_hosts)");
        return -1;
    }
    if (s->method != M_GET && !same_origin(wsi)) {
        sig->counters.api_refused_cross_origin++;
        *rc = respond_error(wsi, 403, "cross-origin request refused");
        return -1;
    }
    bool public_path =
        s->method == M_GET && (strcmp(s->uri, "/health") == 0 || strcmp(s->uri, "/metrics") == 0);
    if (!public_path && !authorized(wsi, config)) {
        sig->counters.api_refused_unauthorized++;
        *rc = respond_error(wsi, 401, "Authorization: Bearer <api_secret> required");
        return -1;
    }
    return 0;
}

/* Whether a /demo/ path resolves inside demo_directory: a symlink that leads out of it
 * (to /etc, say) is refused. A path that does not exist is left to lws (404). */
static bool demo_path_inside(const hk_signal_t *sig, const char *path)
{
    char wanted[PATH_MAX], real[PATH_MAX];
    if (snprintf(wanted, sizeof wanted, "%s/%s", sig->demo_origin, path) >= (int)sizeof wanted)
        return false;
    if (!realpath(wanted, real))
        return true;
    size_t n = strlen(sig->demo_origin);
    return strncmp(real, sig->demo_origin, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

static int method_of(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
        return M_GET;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
        return M_POST;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0)
        return M_DELETE;
    return M_OTHER;
}

static int callback_api(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    api_session_t *s = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        memset(s, 0, sizeof *s);
        snprintf(s->uri, sizeof s->uri, "%s", (const char *)in);
        s->method = method_of(wsi);
        if (s->method == M_OTHER)
            return respond_error(wsi, 405, "method not allowed");
        int refused;
        if (check_access(wsi, lws_context_user(lws_get_context(wsi)), s, &refused) != 0)
            return refused;
        if (s->method == M_POST) {
            char cl[24];
            if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
                strtoul(cl, NULL, 10) > 0)
                return 0; /* the body comes in LWS_CALLBACK_HTTP_BODY */
        }
        return dispatch(wsi, s);
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (s->body_len + len > MAX_BODY)
            s->body_too_large = 1;
        else {
            memcpy(s->body + s->body_len, in, len);
            s->body_len += len;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        s->body[s->body_len] = '\0';
        return dispatch(wsi, s);
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION: {
        /* The /demo/ files are served by lws itself, without LWS_CALLBACK_HTTP: a foreign
         * Host is refused here, by closing. API paths get their 421 in LWS_CALLBACK_HTTP. */
        hk_signal_t *sig = lws_context_user(lws_get_context(wsi));
        if (strncmp((const char *)in, "/demo", 5) != 0)
            return 0;
        if (!host_allowed(wsi, sig->config)) {
            sig->counters.api_refused_host++;
            return -1;
        }
        return demo_path_inside(sig, (const char *)in + 5) ? 0 : -1;
    }
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols hk_api_protocols[] = {
    {"http", callback_api, sizeof(api_session_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

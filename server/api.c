#include "server/api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/channel.h"
#include "server/worker.h"

static int respond(struct lws *wsi, unsigned int status, const char *type, const char *body)
{
    size_t len = strlen(body);
    unsigned char header[LWS_PRE + 1024];
    unsigned char *start = header + LWS_PRE, *p = start, *end = header + sizeof header - 1;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
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

static char *stats_json(const hk_worker_t *worker)
{
    json_t *root = json_object();
    json_t *channels = json_array();
    for (const hk_channel_t *c = worker->channels; c; c = c->next) {
        json_t *members = json_array();
        for (const hk_peer_t *m = c->members; m; m = m->channel_next)
            json_array_append_new(members,
                                  json_pack("{s:s,s:s,s:s,s:b}", "connection_id", m->connection_id,
                                            "client_id", m->client_id, "role",
                                            hk_role_name(m->role), "announced", m->announced));
        json_array_append_new(channels, json_pack("{s:s,s:b,s:o}", "channel_id", c->id, "e2ee",
                                                  c->e2ee, "connections", members));
    }
    json_object_set_new(root, "channels", channels);
    json_object_set_new(root, "total_connections", json_integer(worker->n_connections));
    json_object_set_new(root, "key_messages_relayed",
                        json_integer((json_int_t)worker->counters.key_messages_relayed));
    json_object_set_new(root, "key_messages_dropped",
                        json_integer((json_int_t)worker->counters.key_messages_dropped));
    const hk_media_counters_t *mc = &worker->media.counters;
    const hk_udp_counters_t *uc = &worker->media.udp.counters;
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
    MEDIA_COUNTER(twcc_feedback_sent);
    MEDIA_COUNTER(receiver_reports_sent);
    MEDIA_COUNTER(sender_reports_relayed);
    MEDIA_COUNTER(rtcp_errors);
    MEDIA_COUNTER(consent_expired);
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
    json_object_set_new(media, "udp_tx_errors", json_integer((json_int_t)uc->tx_errors));
    json_object_set_new(root, "media", media);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static int callback_api(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    if (reason != LWS_CALLBACK_HTTP)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    hk_worker_t *worker = lws_context_user(lws_get_context(wsi));
    const char *uri = in;
    if (strcmp(uri, "/health") == 0)
        return respond(wsi, worker->stopping ? 503 : 200, "application/json",
                       worker->stopping ? "{\"status\":\"stopping\"}" : "{\"status\":\"ok\"}");
    if (strcmp(uri, "/stats") == 0) {
        char *text = stats_json(worker);
        int rc = respond(wsi, text ? 200 : 500, "application/json", text ? text : "{}");
        free(text);
        return rc;
    }
    return respond(wsi, 404, "application/json", "{\"error\":\"not found\"}");
}

const struct lws_protocols hk_api_protocols[] = {
    {"http", callback_api, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

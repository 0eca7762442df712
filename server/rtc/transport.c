#include "server/rtc/transport.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "server/proto/sora_msg.h"
#include "server/proto/stun.h"
#include "server/rtc/bwe.h"
#include "server/rtc/dtls.h"
#include "server/rtc/srtp.h"

#define NACK_CACHE_SLOTS     512
#define KEYFRAME_INTERVAL_MS 300 /* at most one PLI per stream in this time */
#define TWCC_INTERVAL_MS     50
#define RR_INTERVAL_MS       1000
#define RETRANSMIT_AGE_MS    1000
#define NACK_INTERVAL_MS     20   /* how often a publisher's losses are looked at */
#define PROBE_INTERVAL_MS    500  /* consent-check retransmission */
#define SIMULCAST_RELATCH_MS 1000 /* a silent layer's SSRC may be replaced after this */

static hk_media_counters_t *counters_of(hk_transport_t *t)
{
    return &t->host->counters;
}

static int random_ice_string(char *out, size_t n)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t bytes[64];
    if (n > sizeof bytes || hk_random_bytes(bytes, n) != 0)
        return HK_EIO;
    for (size_t i = 0; i < n; i++)
        out[i] = chars[bytes[i] & 63];
    out[n] = '\0';
    return 0;
}

/* Stops everything and tells the owner once. */
static void fail(hk_transport_t *t, int code, const char *reason)
{
    if (t->failed)
        return;
    t->failed = true;
    hk_wheel_cancel(&t->host->wheel, &t->timer);
    if (t->pacer.pool)
        hk_pacer_clear(&t->pacer); /* nothing more leaves */
    t->events->on_failed(t->user, code, reason);
}

hk_transport_t *hk_transport_create(hk_rtc_host_t *host, const hk_transport_events_t *events,
                                    void *user, const char *log_id, uint64_t now_ms)
{
    hk_transport_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->host = host;
    t->events = events;
    t->user = user;
    t->log_id = log_id;
    t->created_ms = now_ms;
    t->epoch_us = now_ms * 1000;
    /* A fresh ufrag until it is one no other transport of this host has. */
    for (int tries = 0;; tries++) {
        if (tries == 8 || random_ice_string(t->ice_ufrag, HK_RTC_UFRAG_LEN) != 0 ||
            random_ice_string(t->ice_pwd, sizeof t->ice_pwd - 1) != 0) {
            free(t);
            return NULL;
        }
        uint64_t key = hk_rtc_ufrag_key(t->ice_ufrag);
        if (key && !hk_map_get(&host->ufrags, key)) {
            if (hk_map_put(&host->ufrags, key, t) != 0) {
                free(t);
                return NULL;
            }
            break;
        }
    }
    hk_random_bytes(&t->rtcp_ssrc, sizeof t->rtcp_ssrc);
    if (t->rtcp_ssrc == 0)
        t->rtcp_ssrc = 1;
    host->n_transports++;
    hk_transport_reschedule(t, now_ms);
    return t;
}

static void forget_tuple(hk_transport_t *t, int i);
static void select_tuple(hk_transport_t *t, const hk_tuple_t *to);

void hk_transport_destroy(hk_transport_t *t)
{
    hk_rtc_host_t *host = t->host;
    if (t->pacer.pool)
        hk_pacer_clear(&t->pacer);
    hk_bwe_free(t->bwe);
    select_tuple(t, NULL);
    while (t->n_tuples > 0)
        forget_tuple(t, t->n_tuples - 1);
    hk_map_remove(&host->ufrags, hk_rtc_ufrag_key(t->ice_ufrag));
    hk_wheel_cancel(&host->wheel, &t->timer);
    if (t->dtls)
        hk_dtls_destroy(t->dtls);
    if (t->srtp)
        hk_srtp_destroy(t->srtp);
    for (int i = 0; i < HK_STREAM_COUNT; i++) {
        if (t->streams[i].cache)
            hk_nack_cache_destroy(t->streams[i].cache);
        if (t->streams[i].dump)
            fclose(t->streams[i].dump);
    }
    host->n_transports--;
    free(t);
}

static void init_stream(hk_stream_t *s, uint32_t ssrc, hk_media_kind_t kind, bool rtx)
{
    if (s->cache)
        hk_nack_cache_destroy(s->cache);
    memset(s, 0, sizeof *s);
    s->ssrc = ssrc;
    s->kind = kind;
    s->rtx = rtx;
    if (ssrc && kind == HK_MEDIA_VIDEO && !rtx) {
        hk_nack_tracker_config_t config = {
            .max_retries = 10, .retry_interval_ms = 50, .max_age_ms = RETRANSMIT_AGE_MS};
        hk_nack_tracker_init(&s->nack, &config);
        s->cache = hk_nack_cache_create(NACK_CACHE_SLOTS);
    }
}

void hk_transport_set_streams(hk_transport_t *t, uint32_t audio_ssrc, uint32_t video_ssrc,
                              uint32_t rtx_ssrc)
{
    init_stream(&t->streams[HK_STREAM_AUDIO], audio_ssrc, HK_MEDIA_AUDIO, false);
    for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++) {
        init_stream(&t->streams[HK_STREAM_VIDEO + i], i == 0 ? video_ssrc : 0, HK_MEDIA_VIDEO,
                    false);
        init_stream(&t->streams[HK_STREAM_RTX + i], i == 0 ? rtx_ssrc : 0, HK_MEDIA_VIDEO, true);
    }
    t->simulcast_rids = 0;
}

void hk_transport_set_simulcast(hk_transport_t *t, uint8_t rids)
{
    t->simulcast_rids = rids & ((1u << HK_SIMULCAST_MAX_LAYERS) - 1);
}

/* A packet of an SSRC no stream has, in a simulcast transport: the stream its rid (or
 * repaired rid) names takes it, unless that stream's SSRC is alive (a second), so a
 * client cannot make it re-allocate at packet rate. NULL when it is not taken. */
static hk_stream_t *latch_simulcast(hk_transport_t *t, const uint8_t *buf,
                                    const hk_rtp_header_t *hdr, uint64_t now_ms)
{
    size_t offset, len;
    bool repaired = false;
    if (hk_rtp_ext_find(buf, hdr, HK_EXT_RID, &offset, &len) != 0) {
        if (hk_rtp_ext_find(buf, hdr, HK_EXT_REPAIRED_RID, &offset, &len) != 0)
            return NULL;
        repaired = true;
    }
    if (len != 2 || buf[offset] != 'r' || buf[offset + 1] < '0' ||
        buf[offset + 1] >= '0' + HK_SIMULCAST_MAX_LAYERS)
        return NULL;
    int layer = buf[offset + 1] - '0';
    if (!(t->simulcast_rids & (1u << layer)))
        return NULL;
    hk_stream_t *s = &t->streams[(repaired ? HK_STREAM_RTX : HK_STREAM_VIDEO) + layer];
    if (s->ssrc && s->started && now_ms - s->last_ms < SIMULCAST_RELATCH_MS) {
        if (now_ms - t->last_latch_warn_ms >= 1000) {
            t->last_latch_warn_ms = now_ms;
            HK_LOG(HK_LOG_WARN, "rtp", t->log_id,
                   "SSRC %" PRIu32 " claims rid r%d, which SSRC %" PRIu32 " sends: ignored",
                   hdr->ssrc, layer, s->ssrc);
        }
        return NULL;
    }
    init_stream(s, hdr->ssrc, HK_MEDIA_VIDEO, repaired);
    s->last_ms = now_ms;
    HK_LOG(HK_LOG_INFO, "rtp", t->log_id, "simulcast layer r%d%s is SSRC %" PRIu32, layer,
           repaired ? " (retransmissions)" : "", hdr->ssrc);
    return s;
}

hk_stream_t *hk_transport_stream(hk_transport_t *t, uint32_t ssrc)
{
    for (int i = 0; i < HK_STREAM_COUNT; i++)
        if (t->streams[i].ssrc == ssrc && ssrc != 0)
            return &t->streams[i];
    return NULL;
}

static int tuple_index(const hk_transport_t *t, const hk_tuple_t *tuple)
{
    for (int i = 0; i < t->n_tuples; i++)
        if (hk_tuple_equal(&t->tuples[i], tuple))
            return i;
    return -1;
}

bool hk_transport_has_tuple(const hk_transport_t *t, const hk_tuple_t *from)
{
    return tuple_index(t, from) >= 0;
}

static void forget_tuple(hk_transport_t *t, int i)
{
    hk_map_t *tuples = &t->host->tuples;
    uint64_t key = hk_tuple_key(&t->tuples[i]);
    if (hk_map_get(tuples, key) == t)
        hk_map_remove(tuples, key);
    memmove(t->tuples + i, t->tuples + i + 1, sizeof t->tuples[0] * (size_t)(t->n_tuples - i - 1));
    memmove(t->tuple_consent_ms + i, t->tuple_consent_ms + i + 1,
            sizeof t->tuple_consent_ms[0] * (size_t)(t->n_tuples - i - 1));
    t->n_tuples--;
}

/* Media goes to `to` from now on (NULL: nowhere); the host's path gauges follow. */
static void select_tuple(hk_transport_t *t, const hk_tuple_t *to)
{
    hk_media_counters_t *counters = &t->host->counters;
    if (t->has_selected)
        counters->selected_paths[t->path]--;
    t->has_selected = to != NULL;
    if (!to)
        return;
    t->selected = *to;
    t->path = (uint8_t)hk_rtc_host_path(t->host, to);
    counters->selected_paths[t->path]++;
    counters->path_selections[t->path]++;
}

bool hk_transport_forget_tuple(hk_transport_t *t, const hk_tuple_t *tuple)
{
    int i = tuple_index(t, tuple);
    if (i < 0)
        return false;
    forget_tuple(t, i);
    if (t->probe_pending && hk_tuple_equal(&t->probe_to, tuple))
        t->probe_pending = false;
    if (t->has_selected && hk_tuple_equal(&t->selected, tuple)) {
        /* Another validated tuple, the one heard from last, takes the media. */
        int best = -1;
        for (int k = 0; k < t->n_tuples; k++)
            if (best < 0 || t->tuple_consent_ms[k] > t->tuple_consent_ms[best])
                best = k;
        select_tuple(t, best >= 0 ? &t->tuples[best] : NULL);
        t->nominated = false;
        HK_LOG(HK_LOG_INFO, "ice", t->log_id, "selected tuple's connection closed: %s",
               best >= 0 ? "moved to another validated tuple" : "no tuple left");
    }
    return true;
}

static bool consent_expired(const hk_transport_t *t, int i, uint64_t now_ms)
{
    return now_ms - t->tuple_consent_ms[i] > t->host->config->consent_timeout_ms;
}

static void send_probe(hk_transport_t *t, uint64_t now_ms)
{
    uint8_t buf[HK_STUN_CHECK_MAX];
    size_t n = hk_stun_write_check(buf, sizeof buf, t->remote_ufrag, t->ice_ufrag, t->remote_pwd,
                                   t->probe_tid);
    if (n == 0)
        return;
    hk_tx_send(&t->probe_to, buf, n);
    counters_of(t)->ice_consent_checks_sent++;
    t->probe_sent_ms = now_ms;
    t->probe_sends++;
}

/* Asks `to` for consent before the media may move there (RFC 7675 §5.1): one check in
 * flight per transport; a nomination from yet another tuple replaces it. */
static void start_probe(hk_transport_t *t, const hk_tuple_t *to, uint64_t now_ms)
{
    if (!t->remote_pwd[0])
        return; /* no answer yet: nothing to key a check with */
    if (t->probe_pending && hk_tuple_equal(&t->probe_to, to))
        return; /* the timer retransmits */
    HK_LOG(HK_LOG_DEBUG, "ice", t->log_id,
           "USE-CANDIDATE from a new tuple while the selected one has consent: checking it");
    t->probe_pending = true;
    t->probe_to = *to;
    t->probe_sends = 0;
    hk_random_bytes(t->probe_tid, sizeof t->probe_tid);
    send_probe(t, now_ms);
    hk_transport_reschedule(t, now_ms);
}

void hk_transport_set_remote(hk_transport_t *t, const char *ufrag, const char *pwd,
                             const char *fp_algorithm, const uint8_t *fp, size_t fp_len)
{
    snprintf(t->remote_ufrag, sizeof t->remote_ufrag, "%s", ufrag);
    snprintf(t->remote_pwd, sizeof t->remote_pwd, "%s", pwd);
    snprintf(t->remote_fingerprint_algorithm, sizeof t->remote_fingerprint_algorithm, "%s",
             fp_algorithm);
    if (fp_len > sizeof t->remote_fingerprint)
        fp_len = 0;
    memcpy(t->remote_fingerprint, fp, fp_len);
    t->remote_fingerprint_len = fp_len;
}

void hk_transport_on_check_response(hk_transport_t *t, const uint8_t *buf, size_t len,
                                    const hk_tuple_t *from, uint64_t now_ms)
{
    if (!t->probe_pending || !hk_tuple_equal(&t->probe_to, from) ||
        !hk_stun_is_check_response(buf, len, t->probe_tid, t->remote_pwd))
        return;
    t->probe_pending = false;
    int i = tuple_index(t, from);
    if (i < 0)
        return; /* forgotten meanwhile */
    t->tuple_consent_ms[i] = now_ms;
    select_tuple(t, from);
    t->nominated = true;
    counters_of(t)->ice_tuple_moves++;
    HK_LOG(HK_LOG_INFO, "ice", t->log_id,
           "selected tuple moved: the newly nominated tuple answered our consent check");
}

int hk_transport_on_check(hk_transport_t *t, const hk_tuple_t *from, bool nominate, uint64_t now_ms)
{
    hk_rtc_host_t *host = t->host;
    hk_media_counters_t *counters = counters_of(t);
    if (t->failed)
        return HK_EPERM;
    uint64_t key = hk_tuple_key(from);
    int i = tuple_index(t, from);
    if (i < 0) {
        hk_transport_t *owner = hk_map_get(&host->tuples, key);
        if (owner && owner != t) {
            int j = tuple_index(owner, from);
            bool owner_sends_there = owner->has_selected && hk_tuple_equal(&owner->selected, from);
            if (j < 0 || owner_sends_there || !consent_expired(owner, j, now_ms)) {
                /* (j < 0: another tuple with the same key, which a 64-bit hash makes
                 * vanishingly rare; refused rather than mixed up.) */
                counters->ice_tuple_conflicts++;
                if (hk_log_due(&t->last_ice_warn_ms, now_ms, 1000))
                    HK_LOG(HK_LOG_WARN, "ice", t->log_id,
                           "check from a tuple that another connection holds: refused");
                return HK_EPERM;
            }
            /* The other transport's consent there expired: the address is free again. */
            forget_tuple(owner, j);
        }
        if (t->n_tuples == HK_TRANSPORT_MAX_TUPLES) {
            /* Forget the tuple heard from least recently, never the selected one. */
            int oldest = -1;
            for (int k = 0; k < t->n_tuples; k++)
                if (!(t->has_selected && hk_tuple_equal(&t->tuples[k], &t->selected)) &&
                    (oldest < 0 || t->tuple_consent_ms[k] < t->tuple_consent_ms[oldest]))
                    oldest = k;
            forget_tuple(t, oldest);
        }
        if (hk_map_put(&host->tuples, key, t) != 0) {
            counters->ice_tuple_conflicts++;
            return HK_ENOMEM;
        }
        i = t->n_tuples++;
        t->tuples[i] = *from;
        HK_LOG(HK_LOG_DEBUG, "ice", t->log_id, "tuple validated%s",
               nominate ? " (USE-CANDIDATE)" : "");
    }
    t->tuple_consent_ms[i] = now_ms;
    t->last_consent_ms = now_ms;
    if (t->has_selected && hk_tuple_equal(from, &t->selected)) {
        t->nominated |= nominate;
        return 0;
    }
    int s = t->has_selected ? tuple_index(t, &t->selected) : -1;
    bool may_move = !t->has_selected || (nominate && !t->nominated) ||
                    (nominate && (s < 0 || consent_expired(t, s, now_ms)));
    if (!may_move) {
        if (nominate) {
            counters->ice_nominations_refused++;
            start_probe(t, from, now_ms);
        }
        return 0;
    }
    if (t->has_selected)
        HK_LOG(HK_LOG_INFO, "ice", t->log_id, "selected tuple moved");
    select_tuple(t, from);
    t->nominated = nominate;
    return 0;
}

static void dtls_send(void *arg, const uint8_t *datagram, size_t len)
{
    hk_transport_t *t = arg;
    if (t->has_selected)
        hk_tx_send(&t->selected, datagram, len);
}

static void schedule_dtls(hk_transport_t *t, uint64_t now_ms)
{
    long ms = t->dtls ? hk_dtls_timeout_ms(t->dtls) : -1;
    t->dtls_timer_ms = ms >= 0 ? now_ms + (uint64_t)ms : 0;
    hk_transport_reschedule(t, now_ms);
}

static void dtls_connected(hk_transport_t *t, uint64_t now_ms)
{
    hk_srtp_keys_t keys;
    if (hk_dtls_srtp_keys(t->dtls, &keys) != 0 || !(t->srtp = hk_srtp_create(&keys))) {
        memset(&keys, 0, sizeof keys);
        fail(t, HK_CLOSE_INTERNAL, "cannot set up SRTP");
        return;
    }
    memset(&keys, 0, sizeof keys);
    t->ready = true;
    counters_of(t)->dtls_connected++;
    HK_LOG(HK_LOG_INFO, "dtls", t->log_id, "DTLS-SRTP connected");
    t->events->on_ready(t->user, now_ms);
}

void hk_transport_on_dtls(hk_transport_t *t, const uint8_t *buf, size_t len, uint64_t now_ms)
{
    hk_rtc_host_t *host = t->host;
    if (t->failed)
        return;
    if (!t->dtls) {
        if (t->remote_fingerprint_len == 0) {
            host->counters.dtls_before_answer++; /* the client retransmits */
            return;
        }
        t->dtls = hk_dtls_create(host->dtls, t->remote_fingerprint_algorithm, t->remote_fingerprint,
                                 t->remote_fingerprint_len, dtls_send, t);
        if (!t->dtls) {
            host->counters.dtls_errors++;
            return;
        }
    }
    int rc = hk_dtls_handle(t->dtls, buf, len);
    if (rc == HK_DTLS_CONNECTED && !t->ready) {
        dtls_connected(t, now_ms);
    } else if (rc < 0) {
        host->counters.dtls_errors++;
        char reason[120];
        snprintf(reason, sizeof reason, "DTLS-FAILED: %s", hk_dtls_error(t->dtls));
        HK_LOG(HK_LOG_WARN, "dtls", t->log_id, "%s", reason);
        fail(t, rc == HK_EPERM ? HK_CLOSE_FORBIDDEN : HK_CLOSE_BAD_REQUEST, reason);
        return;
    }
    schedule_dtls(t, now_ms);
}

/* RFC 3550 A.1: sequence number bookkeeping for receiver reports. */
static void count_packet(hk_stream_t *s, uint16_t seq, size_t len)
{
    s->packets++;
    s->bytes += len;
    if (!s->started) {
        s->started = true;
        s->base_seq = seq;
        s->max_seq = seq;
        s->received = 1;
        return;
    }
    uint16_t delta = (uint16_t)(seq - s->max_seq);
    if (delta < 3000) {
        if (seq < s->max_seq)
            s->cycles += 65536;
        s->max_seq = seq;
    }
    s->received++;
}

static void record_twcc(hk_transport_t *t, const uint8_t *buf, const hk_rtp_header_t *hdr,
                        uint64_t now_us)
{
    size_t off, len;
    if (hk_rtp_ext_find(buf, hdr, HK_EXT_TRANSPORT_CC, &off, &len) != 0 || len != 2)
        return;
    uint16_t seq = (uint16_t)((buf[off] << 8) | buf[off + 1]);
    if (!t->twcc_started) {
        t->twcc_started = true;
        t->twcc_next = seq;
    }
    int16_t ahead = (int16_t)(seq - t->twcc_next);
    if (ahead < 0)
        return; /* already reported */
    if (t->n_twcc == HK_TWCC_MAX)
        return; /* the timer sends feedback long before this fills */
    t->twcc[t->n_twcc].seq = seq;
    t->twcc[t->n_twcc].received = true;
    t->twcc[t->n_twcc].arrival_us = (int64_t)(now_us - t->epoch_us);
    t->n_twcc++;
}

/* Debugging aid (debug_payload_directory): appends each forwarded payload to
 * DIR/<connection_id>-<ssrc>.bin, so one can check what the server relays. */
static void dump_payload(hk_transport_t *t, hk_stream_t *s, const uint8_t *payload, size_t len)
{
    if (!s->dump) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s-%u.bin", t->host->config->debug_payload_directory,
                 t->log_id, s->ssrc);
        s->dump = fopen(path, "ab");
        if (!s->dump)
            return;
    }
    fwrite(payload, 1, len, s->dump);
}

void hk_transport_on_srtp(hk_transport_t *t, uint8_t *buf, size_t len, uint64_t now_us)
{
    hk_rtc_host_t *host = t->host;
    hk_media_counters_t *counters = &host->counters;
    uint64_t now_ms = now_us / 1000;
    if (!t->ready || t->failed) {
        counters->before_keys++;
        return;
    }
    size_t n = len;
    if (hk_srtp_unprotect_rtp(t->srtp, buf, &n) != 0) {
        counters->srtp_unprotect_errors++;
        return;
    }
    hk_rtp_header_t hdr;
    const char *err = NULL;
    if (hk_rtp_parse(buf, n, &hdr, &err) != 0) {
        counters->rtp_errors++;
        return;
    }
    counters->rtp_packets_in++;
    counters->rtp_bytes_in += n;
    record_twcc(t, buf, &hdr, now_us);
    hk_stream_t *s = hk_transport_stream(t, hdr.ssrc);
    if (!s && (!t->simulcast_rids || !(s = latch_simulcast(t, buf, &hdr, now_ms)))) {
        counters->unknown_ssrc++;
        return;
    }
    count_packet(s, hdr.seq, n);
    s->last_pt = hdr.pt;
    s->last_ms = now_ms;
    if (s->rtx) {
        hk_stream_t *primary = s - HK_STREAM_RTX + HK_STREAM_VIDEO;
        /* A retransmission from the publisher: the lost packet is recovered. It goes on
         * as the packet it replaces (each subscriber leg has its own retransmissions),
         * and into the cache under its own sequence number. */
        uint16_t original;
        if (!primary->ssrc || !primary->last_pt ||
            hk_rtp_rtx_original_seq(buf, &hdr, &original) != 0)
            return;
        const uint8_t *cached;
        size_t cached_len;
        if (primary->cache && hk_nack_cache_get(primary->cache, original, now_ms, RETRANSMIT_AGE_MS,
                                                &cached, &cached_len) == 0)
            return; /* a retransmission of what arrived already */
        hk_nack_tracker_received(&primary->nack, original, now_ms);
        int plain = hk_rtp_rtx_unwrap(buf, &hdr, primary->ssrc, primary->last_pt, host->work,
                                      sizeof host->work);
        hk_rtp_header_t orig;
        if (plain <= 0 || hk_rtp_parse(host->work, (size_t)plain, &orig, &err) != 0)
            return;
        if (primary->cache)
            hk_nack_cache_put(primary->cache, original, host->work, (size_t)plain, now_ms);
        if (orig.payload_len > 0)
            t->events->on_rtp(t->user, (hk_stream_index_t)(primary - t->streams), host->work,
                              (size_t)plain, &orig, now_ms);
        return;
    }
    if (s->cache) {
        hk_nack_tracker_received(&s->nack, hdr.seq, now_ms);
        hk_nack_cache_put(s->cache, hdr.seq, buf, n, now_ms);
    }
    if (hdr.payload_len == 0)
        return; /* padding-only probe: for bandwidth estimation, not for subscribers */
    if (host->config->debug_payload_directory[0])
        dump_payload(t, s, buf + hdr.payload_offset, hdr.payload_len);
    t->events->on_rtp(t->user, (hk_stream_index_t)(s - t->streams), buf, n, &hdr, now_ms);
}

void hk_transport_on_srtcp(hk_transport_t *t, uint8_t *buf, size_t len, uint64_t now_ms)
{
    hk_media_counters_t *counters = counters_of(t);
    if (!t->ready || t->failed) {
        counters->before_keys++;
        return;
    }
    size_t n = len;
    if (hk_srtp_unprotect_rtcp(t->srtp, buf, &n) != 0) {
        counters->srtcp_unprotect_errors++;
        return;
    }
    counters->rtcp_packets_in++;
    size_t offset = 0;
    hk_rtcp_packet_t pkt;
    const char *err = NULL;
    int rc;
    while ((rc = hk_rtcp_next(buf, n, &offset, &pkt, &err)) == 1) {
        if (pkt.type == HK_RTCP_SR) {
            hk_rtcp_report_t report;
            if (hk_rtcp_parse_report(&pkt, &report, &err) != 0)
                continue;
            hk_stream_t *s = hk_transport_stream(t, report.ssrc);
            if (!s)
                continue;
            s->last_sr = (report.ntp_sec << 16) | (report.ntp_frac >> 16);
            s->last_sr_ms = now_ms;
            /* Relayed without report blocks: those describe what this client receives. */
            report.report_count = 0;
            t->events->on_sender_report(t->user, (hk_stream_index_t)(s - t->streams), &report);
        } else if (pkt.type == HK_RTCP_RTPFB || pkt.type == HK_RTCP_PSFB) {
            t->events->on_feedback(t->user, &pkt, now_ms);
        }
        if (t->failed)
            return;
    }
    if (rc < 0)
        counters->rtcp_errors++;
}

uint8_t *hk_transport_slot(hk_transport_t *t)
{
    if (!hk_transport_can_send(t))
        return NULL;
    return hk_tx_slot(&t->selected);
}

/* Protects an RTP packet written in slot (with transport-wide sequence number
 * t->twcc_out_seq) and sends it; records it for the estimate and charges it to the
 * pacer's budget. Returns the bytes sent, 0 when protection failed. */
static size_t send_rtp_slot(hk_transport_t *t, uint8_t *slot, size_t len)
{
    size_t n = len;
    if (hk_srtp_protect_rtp(t->srtp, slot, &n, HK_TX_BUF_SIZE) != 0) {
        counters_of(t)->srtp_protect_errors++;
        return 0;
    }
    uint64_t now_us = t->host->now_us;
    if (t->bwe)
        hk_bwe_on_sent(t->bwe, t->twcc_out_seq, n, (int64_t)now_us);
    if (t->pacer.pool)
        hk_pacer_on_sent(&t->pacer, n);
    t->twcc_out_seq++;
    hk_tx_commit(&t->selected, n);
    if (t->bwe_probing)
        t->bwe_probe_bytes += n;
    return n;
}

/* send_rtp_slot for forwarded media, counted. */
static void send_forwarded(hk_transport_t *t, uint8_t *slot, size_t len)
{
    hk_media_counters_t *counters = counters_of(t);
    size_t n = send_rtp_slot(t, slot, len);
    if (!n)
        return;
    counters->forwarded_packets++;
    counters->forwarded_bytes += n;
}

/* Sends a waiting packet (hk_pacer_due's or hk_pacer_head's) with the transport-wide
 * sequence number due now. False when the link has no slot: it keeps waiting. */
static bool send_waiting(hk_transport_t *t, const hk_pacer_entry_t *e)
{
    uint8_t *slot = hk_tx_slot(&t->selected);
    if (!slot)
        return false;
    size_t len = e->len;
    memcpy(slot, e->data, len);
    if (e->twcc_offset)
        hk_wr16(slot + e->twcc_offset, t->twcc_out_seq);
    hk_pacer_pop(&t->pacer, t->host->now_us);
    send_forwarded(t, slot, len);
    return true;
}

/* Sends what the pacer's budget lets out now. */
static void send_due(hk_transport_t *t)
{
    const hk_pacer_entry_t *e;
    while (hk_transport_can_send(t) && (e = hk_pacer_due(&t->pacer, t->host->now_us)))
        if (!send_waiting(t, e))
            return;
}

static void probe_pump(hk_transport_t *t);

void hk_transport_send_slot(hk_transport_t *t, uint8_t *slot, size_t len)
{
    if (t->pacer.pool && !hk_pacer_may_send(&t->pacer, t->host->now_us)) {
        /* Held: copied out of the slot, which is not committed. Its transport-wide
         * number is written again when it leaves, so the next packet may be written
         * with the same one. */
        hk_pacer_push(&t->pacer, slot, len, t->host->now_us); /* counted when refused */
        send_due(t);
        if (hk_pacer_waiting(&t->pacer))
            hk_transport_reschedule(t, t->host->now_us / 1000);
    } else {
        send_forwarded(t, slot, len);
    }
    if (t->bwe_probing)
        probe_pump(t);
}

/* --- downlink estimate and probing ------------------------------------------------------ */

#define PAD_BYTES           255   /* RTP padding's maximum */
#define PROBE_PACKETS_MAX   64    /* per pump: the rest waits for the next packet or tick */
#define PROBE_PACE_AHEAD_US 10000 /* sent ahead of the pace: the next pump may be a tick away */

static void trace_bwe(void *user, const char *line)
{
    hk_transport_t *t = user;
    t->host->bwe_trace(t->host->bwe_trace_user, t->log_id ? t->log_id : "-", line);
}

int hk_transport_enable_bwe(hk_transport_t *t, uint64_t start_bps, uint64_t min_bps,
                            uint64_t max_bps)
{
    if (t->bwe)
        return 0;
    hk_bwe_config_t config = {start_bps, min_bps, max_bps};
    t->bwe = hk_bwe_new(&config);
    if (!t->bwe)
        return HK_ENOMEM;
    if (t->host->bwe_trace)
        hk_bwe_set_recorder(t->bwe, trace_bwe, t);
    if (!t->failed)
        hk_pacer_init(&t->pacer, &t->host->pacer_pool, start_bps, t->host->now_us);
    return 0;
}

void hk_transport_on_twcc(hk_transport_t *t, const hk_rtcp_fb_t *fb, uint64_t now_ms)
{
    (void)now_ms;
    if (!t->bwe)
        return;
    hk_media_counters_t *counters = counters_of(t);
    hk_rtcp_twcc_t hdr;
    hk_rtcp_twcc_packet_t pkts[HK_TWCC_MAX];
    const char *err = NULL;
    int n = hk_rtcp_parse_twcc(fb, &hdr, pkts, HK_TWCC_MAX, &err);
    if (n < 0) {
        counters->rtcp_errors++;
        return;
    }
    counters->twcc_feedback_received++;
    hk_bwe_on_twcc(t->bwe, pkts, (size_t)n, (int64_t)t->host->now_us);
    if (t->pacer.pool) {
        /* A pacer smooths bursts; it does not hold back what the link was seen to carry
         * (the estimate starts low, and lags a rising one). */
        uint64_t estimate = hk_bwe_estimate(t->bwe), acked = hk_bwe_acked(t->bwe);
        hk_pacer_set_rate(&t->pacer, estimate > acked ? estimate : acked);
    }
}

void hk_transport_set_padding(hk_transport_t *t, uint32_t ssrc, uint8_t pt, uint16_t seq,
                              const char *mid)
{
    t->pad_ssrc = ssrc;
    t->pad_pt = pt;
    t->pad_seq = seq;
    size_t len = mid ? strnlen(mid, sizeof t->pad_mid - 1) : 0;
    memcpy(t->pad_mid, mid ? mid : "", len);
    t->pad_mid[len] = '\0';
    t->pad_mid_len = (uint8_t)len;
}

static void probe_finish(hk_transport_t *t)
{
    t->bwe_probing = false;
    hk_bwe_probe_end(t->bwe, (int64_t)t->host->now_us);
}

void hk_transport_probe_stop(hk_transport_t *t)
{
    if (t->bwe_probing)
        probe_finish(t);
}

bool hk_transport_probe(hk_transport_t *t, uint64_t bps, uint64_t duration_ms)
{
    if (!t->bwe || !t->pad_ssrc || !t->pad_mid_len || !hk_transport_can_send(t) || t->bwe_probing ||
        hk_bwe_probing(t->bwe) || !bps || !duration_ms)
        return false;
    uint64_t now_us = t->host->now_us;
    hk_bwe_probe_begin(t->bwe, (int64_t)now_us);
    t->bwe_probing = true;
    t->bwe_probe_bps = bps;
    t->bwe_probe_start_us = now_us;
    t->bwe_probe_end_us = now_us + duration_ms * 1000;
    t->bwe_probe_bytes = 0;
    counters_of(t)->probe_clusters++;
    probe_pump(t);
    hk_transport_reschedule(t, now_us / 1000);
    return true;
}

/* Tops what was sent in the cluster up to its rate, a little ahead of time: with media
 * the pacer holds first (in its order, whatever its budget), then with padding packets.
 * Ends the cluster at its end. */
static void probe_pump(hk_transport_t *t)
{
    uint64_t now_us = t->host->now_us;
    if (now_us >= t->bwe_probe_end_us || !t->pad_ssrc || !hk_transport_can_send(t)) {
        probe_finish(t);
        return;
    }
    uint64_t elapsed = now_us - t->bwe_probe_start_us + PROBE_PACE_AHEAD_US;
    uint64_t due = t->bwe_probe_bps * elapsed / 8000000;
    hk_media_counters_t *counters = counters_of(t);
    for (int i = 0; i < PROBE_PACKETS_MAX && t->bwe_probe_bytes < due; i++) {
        const hk_pacer_entry_t *waiting = hk_pacer_head(&t->pacer, now_us);
        if (waiting) {
            if (!send_waiting(t, waiting))
                return;
            continue;
        }
        uint8_t *slot = hk_tx_slot(&t->selected);
        if (!slot)
            return;
        int len =
            hk_rtp_build_padding(slot, HK_TX_BUF_SIZE - HK_SRTP_MAX_TRAILER, t->pad_pt, t->pad_seq,
                                 t->pad_ssrc, HK_EXT_MID, t->pad_mid, t->pad_mid_len,
                                 HK_EXT_TRANSPORT_CC, t->twcc_out_seq, PAD_BYTES);
        if (len < 0)
            return;
        size_t n = send_rtp_slot(t, slot, (size_t)len);
        if (!n)
            return;
        t->pad_seq++;
        counters->padding_packets++;
        counters->padding_bytes += n;
    }
}

void hk_transport_send_rtcp(hk_transport_t *t, const uint8_t *rtcp, size_t len)
{
    if (!hk_transport_can_send(t) || len + HK_SRTP_MAX_TRAILER > HK_TX_BUF_SIZE)
        return;
    uint8_t *slot = hk_tx_slot(&t->selected);
    if (!slot)
        return;
    memcpy(slot, rtcp, len);
    size_t n = len;
    if (hk_srtp_protect_rtcp(t->srtp, slot, &n, HK_TX_BUF_SIZE) != 0) {
        counters_of(t)->srtp_protect_errors++;
        return;
    }
    hk_tx_commit(&t->selected, n);
}

void hk_transport_request_keyframe(hk_transport_t *t, hk_stream_t *stream, bool force,
                                   uint64_t now_ms)
{
    hk_media_counters_t *counters = counters_of(t);
    if (stream->kind != HK_MEDIA_VIDEO || stream->rtx || !stream->ssrc)
        return;
    if (!force && stream->last_pli_ms && now_ms - stream->last_pli_ms < KEYFRAME_INTERVAL_MS) {
        counters->plis_throttled++;
        return;
    }
    stream->last_pli_ms = now_ms;
    uint8_t pli[16];
    int n = hk_rtcp_build_pli(pli, sizeof pli, t->rtcp_ssrc, stream->ssrc);
    if (n > 0) {
        hk_transport_send_rtcp(t, pli, (size_t)n);
        counters->plis_sent++;
    }
}

/* Its first video stream with an SSRC (the lowest simulcast layer), or NULL. */
static const hk_stream_t *first_video(const hk_transport_t *t)
{
    for (int i = HK_STREAM_VIDEO; i < HK_STREAM_RTX; i++)
        if (t->streams[i].ssrc)
            return &t->streams[i];
    return NULL;
}

void hk_transport_keyframe_after_key(hk_transport_t *t, uint64_t now_ms)
{
    if (first_video(t) || t->simulcast_rids) {
        hk_keyframe_schedule_trigger(&t->keyframe_after_key, now_ms);
        hk_transport_reschedule(t, now_ms);
    }
}

uint32_t hk_transport_nack_budget(hk_transport_t *t, uint32_t n, uint64_t now_ms)
{
    /* A NACK storm must not become a retransmission storm: each connection gets at
     * most max_nacks_per_second packets answered. */
    if (now_ms - t->nack_window_ms >= 1000) {
        t->nack_window_ms = now_ms;
        t->nack_count = 0;
    }
    uint32_t allowed = (uint32_t)t->host->config->max_nacks_per_second;
    uint32_t room = t->nack_count < allowed ? allowed - t->nack_count : 0;
    if (n > room) {
        counters_of(t)->nacks_rate_limited += n - room;
        n = room;
    }
    t->nack_count += n;
    return n;
}

/* Sends the key-frame request a key delivery made due, once the video flows (a request
 * before its first packet is lost on a transport that is not up, and the first frame is
 * a key frame anyway) and HK_KEYFRAME_AFTER_KEY_SPACING_MS after the publisher's last
 * PLI (closer, the browser would ignore it). */
static void keyframe_after_key(hk_transport_t *t, uint64_t now_ms)
{
    hk_keyframe_schedule_t *schedule = &t->keyframe_after_key;
    if (!hk_keyframe_schedule_due(schedule, now_ms))
        return;
    if (!first_video(t) && !t->simulcast_rids) {
        hk_keyframe_schedule_cancel(schedule);
        return;
    }
    /* Every layer a subscriber may be receiving; each waits for its own flow and its
     * own last PLI. */
    bool sent = false;
    for (int i = HK_STREAM_VIDEO; i < HK_STREAM_RTX; i++) {
        hk_stream_t *video = &t->streams[i];
        if (!video->ssrc)
            continue;
        if (!video->started ||
            (video->last_pli_ms && now_ms - video->last_pli_ms < HK_KEYFRAME_AFTER_KEY_SPACING_MS))
            continue;
        hk_transport_request_keyframe(t, video, false, now_ms);
        sent = true;
    }
    if (!sent)
        return;
    HK_LOG(HK_LOG_DEBUG, "e2ee", t->log_id, "key frame requested after a key delivery (%u of %d)",
           schedule->sent + 1u, HK_KEYFRAME_AFTER_KEY_REQUESTS);
    hk_keyframe_schedule_sent(schedule, now_ms);
}

static void send_stream_nacks(hk_transport_t *t, hk_stream_t *s, uint64_t now_ms)
{
    if (!s->ssrc || !s->started)
        return;
    uint16_t seqs[64];
    size_t n = hk_nack_tracker_collect(&s->nack, now_ms, seqs, 64);
    if (n == 0)
        return;
    hk_rtc_host_t *host = t->host;
    int len = hk_rtcp_build_nack(host->work, sizeof host->work, t->rtcp_ssrc, s->ssrc, seqs, n);
    if (len > 0) {
        hk_transport_send_rtcp(t, host->work, (size_t)len);
        host->counters.nacks_sent++;
    }
}

static void send_nacks(hk_transport_t *t, uint64_t now_ms)
{
    for (int i = HK_STREAM_VIDEO; i < HK_STREAM_RTX; i++)
        send_stream_nacks(t, &t->streams[i], now_ms);
}

/* Transport-wide CC feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1)
 * for everything received since the last one, so the publisher's bandwidth estimate
 * (and with it its send bitrate) can grow. */
static void send_twcc(hk_transport_t *t, uint64_t now_ms)
{
    t->last_twcc_ms = now_ms;
    if (t->n_twcc == 0)
        return;
    hk_rtc_host_t *host = t->host;
    hk_rtcp_twcc_packet_t list[HK_TWCC_MAX + 1];
    size_t n = hk_rtcp_twcc_report(t->twcc, t->n_twcc, &t->twcc_next, list);
    t->n_twcc = 0;
    const hk_stream_t *video = first_video(t);
    uint32_t media_ssrc = video ? video->ssrc : t->streams[HK_STREAM_AUDIO].ssrc;
    int len = hk_rtcp_build_twcc(host->work, sizeof host->work, t->rtcp_ssrc, media_ssrc,
                                 t->twcc_fb_count++, list, n);
    if (len > 0) {
        hk_transport_send_rtcp(t, host->work, (size_t)len);
        host->counters.twcc_feedback_sent++;
    }
}

/* RFC 3550 §6.4.2 and A.3: one report block per stream this client publishes. */
static void send_rr(hk_transport_t *t, uint64_t now_ms)
{
    hk_rtcp_report_block_t blocks[HK_STREAM_RTX];
    size_t n = 0;
    for (int i = 0; i < HK_STREAM_RTX; i++) {
        hk_stream_t *s = &t->streams[i];
        if (!s->ssrc || !s->started)
            continue;
        uint32_t extended_max = s->cycles + s->max_seq;
        uint32_t expected = extended_max - s->base_seq + 1;
        int64_t lost = (int64_t)expected - s->received;
        if (lost > 0x7fffff)
            lost = 0x7fffff;
        if (lost < -0x800000)
            lost = -0x800000;
        uint32_t expected_interval = expected - s->expected_prior;
        uint32_t received_interval = s->received - s->received_prior;
        int64_t lost_interval = (int64_t)expected_interval - received_interval;
        s->expected_prior = expected;
        s->received_prior = s->received;
        uint8_t fraction = 0;
        if (expected_interval && lost_interval > 0)
            fraction = (uint8_t)((lost_interval << 8) / expected_interval);
        blocks[n] = (hk_rtcp_report_block_t){
            .ssrc = s->ssrc,
            .fraction_lost = fraction,
            .cumulative_lost = (int32_t)lost,
            .highest_seq = extended_max,
            .lsr = s->last_sr,
            .dlsr = s->last_sr_ms ? (uint32_t)((now_ms - s->last_sr_ms) * 65536 / 1000) : 0,
        };
        n++;
    }
    t->last_rr_ms = now_ms;
    if (n == 0)
        return;
    hk_rtc_host_t *host = t->host;
    int len = hk_rtcp_build_rr(host->work, sizeof host->work, t->rtcp_ssrc, blocks, n);
    if (len > 0) {
        hk_transport_send_rtcp(t, host->work, (size_t)len);
        host->counters.receiver_reports_sent++;
    }
}

static bool publishes(const hk_transport_t *t)
{
    return t->streams[HK_STREAM_AUDIO].ssrc || t->simulcast_rids || first_video(t);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return b && b < a ? b : a;
}

/* The next time something is due. Only publishers have per-packet work (NACKs every
 * NACK_INTERVAL_MS, feedback every TWCC_INTERVAL_MS); a transport that only receives
 * wakes for consent and reports. */
static uint64_t next_deadline(const hk_transport_t *t, uint64_t now_ms)
{
    uint64_t since = t->n_tuples ? t->last_consent_ms : t->created_ms;
    uint64_t at = since + t->host->config->consent_timeout_ms + 1;
    at = earliest(at, t->dtls_timer_ms);
    if (t->probe_pending)
        at = earliest(at, t->probe_sent_ms + PROBE_INTERVAL_MS);
    if (t->bwe_probing || hk_pacer_waiting(&t->pacer))
        at = earliest(at, now_ms + 1); /* the next tick paces it */
    if (t->ready && publishes(t)) {
        at = earliest(at, now_ms + NACK_INTERVAL_MS);
        at = earliest(at, t->last_twcc_ms + TWCC_INTERVAL_MS);
        at = earliest(at, t->last_rr_ms + RR_INTERVAL_MS);
    }
    return at;
}

void hk_transport_reschedule(hk_transport_t *t, uint64_t now_ms)
{
    if (t->failed)
        return;
    uint64_t at = next_deadline(t, now_ms);
    if (!t->timer.scheduled || at < t->timer.deadline_ms)
        hk_wheel_schedule(&t->host->wheel, &t->timer, at);
}

void hk_transport_on_timer(hk_transport_t *t, uint64_t now_ms)
{
    hk_media_counters_t *counters = counters_of(t);
    if (t->failed)
        return;
    counters->timer_fires++;
    if (t->probe_pending && now_ms - t->probe_sent_ms >= PROBE_INTERVAL_MS) {
        if (t->probe_sends >= 3)
            t->probe_pending = false; /* unanswered: the media stays */
        else
            send_probe(t, now_ms);
    }
    uint64_t consent_timeout = t->host->config->consent_timeout_ms;
    uint64_t since = t->n_tuples ? t->last_consent_ms : t->created_ms;
    if (now_ms - since > consent_timeout) {
        counters->consent_expired++;
        fail(t, HK_CLOSE_TIMEOUT,
             t->n_tuples ? "ICE-CONSENT-EXPIRED: no connectivity check in time"
                         : "ICE-TIMEOUT: ICE did not complete in time");
        return;
    }
    if (t->dtls && t->dtls_timer_ms && now_ms >= t->dtls_timer_ms) {
        if (hk_dtls_on_timeout(t->dtls) < 0) {
            counters->dtls_errors++;
            fail(t, HK_CLOSE_TIMEOUT, "DTLS-TIMEOUT: handshake did not complete");
            return;
        }
        long ms = hk_dtls_timeout_ms(t->dtls);
        t->dtls_timer_ms = ms >= 0 ? now_ms + (uint64_t)ms : 0;
    }
    if (hk_pacer_waiting(&t->pacer))
        send_due(t);
    if (t->bwe_probing)
        probe_pump(t);
    if (t->ready) {
        keyframe_after_key(t, now_ms);
        send_nacks(t, now_ms);
        if (now_ms - t->last_twcc_ms >= TWCC_INTERVAL_MS || t->n_twcc > HK_TWCC_MAX / 2)
            send_twcc(t, now_ms);
        if (now_ms - t->last_rr_ms >= RR_INTERVAL_MS)
            send_rr(t, now_ms);
    }
    hk_wheel_schedule(&t->host->wheel, &t->timer, next_deadline(t, now_ms));
}

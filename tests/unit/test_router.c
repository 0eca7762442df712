/* rtc/ and sfu/ in memory, with no socket and no clock: one rtc host, a fake link that
 * collects what the host sends, and four clients (a publisher and three subscribers),
 * each with a real client stack: ICE checks from libnice's STUN agent, an OpenSSL DTLS
 * client (tests/unit/dtls_client.c) and libsrtp through hk_srtp with the keys that
 * client exported. The server side is what hisoka runs: transports, endpoints, a
 * producer with three consumers. Checked: ICE + DTLS-SRTP come up; media goes through
 * the producer to every active consumer with the consumer's own SSRC, sequence numbers
 * and timestamps (continuous, gaps kept), the payload unchanged; nothing reaches a
 * consumer before it is activated (its answer); a NACK is answered from the consumer's
 * history under the same own sequence number; a publisher's RTX retransmission reaches
 * subscribers as the packet it replaces. */
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>

#include "common/bytes.h"
#include "common/error.h"
#include "server/proto/rtcp.h"
#include "server/proto/rtp.h"
#include "server/rtc/bwe.h"
#include "server/rtc/host.h"
#include "server/rtc/srtp.h"
#include "server/rtc/transport.h"
#include "server/sfu/endpoint.h"
#include "tests/unit/dtls_client.h"
#include "tests/unit/unit.h"

#define MAX_OUT    512
#define N_CLIENTS  4
#define PUB        0
#define VIDEO_SSRC 0xA1A1A1A1u
#define RTX_SSRC   0xA2A2A2A2u

/* ---- the fake link: everything the host sends, in order ------------------------------- */

typedef struct {
    hk_tuple_t to;
    size_t len;
    uint8_t data[HK_TX_BUF_SIZE];
} out_t;

typedef struct {
    hk_link_t link;
    hk_tuple_t slot_to;
    uint8_t slot[HK_TX_BUF_SIZE];
    out_t out[MAX_OUT];
    size_t n;
} fake_link_t;

static uint8_t *fake_slot(hk_link_t *link, const hk_tuple_t *to)
{
    fake_link_t *f = (fake_link_t *)link;
    f->slot_to = *to;
    return f->slot;
}

static void fake_commit(hk_link_t *link, size_t len)
{
    fake_link_t *f = (fake_link_t *)link;
    CHECK(f->n < MAX_OUT);
    CHECK(len <= HK_TX_BUF_SIZE);
    f->out[f->n].to = f->slot_to;
    f->out[f->n].len = len;
    memcpy(f->out[f->n].data, f->slot, len);
    f->n++;
}

static const hk_link_ops_t fake_ops = {.slot = fake_slot, .commit = fake_commit};

/* ---- a client and the server's side of it ----------------------------------------------- */

typedef struct {
    uint16_t seq;
    uint32_t ts, ssrc;
    uint8_t payload[64];
    size_t payload_len;
    char mid[17];
    int has_frame; /* a dependency descriptor came with it */
    uint16_t frame;
    int has_twcc; /* a transport-wide sequence number came with it */
    uint16_t twcc;
    uint8_t pt;
    int padding_only;
    int marker;
} rx_t;

typedef struct {
    /* client side */
    hk_tuple_t tuple;
    client_t dtls;
    queue_t to_server;
    hk_srtp_t *srtp;
    rx_t rx[256];
    size_t n_rx;
    size_t n_rtcp;
    uint16_t drop[4]; /* own sequence numbers lost on the way to this client, once */
    int n_drop;
    int switches[8][2]; /* simulcast layer switches reported: previous, current */
    int n_switches;
    /* server side */
    hk_transport_t *t;
    hk_endpoint_t ep;
    int ready, failed;
} peer_t;

typedef struct {
    hk_config_t config;
    hk_cert_t cert;
    hk_rtc_host_t host;
    fake_link_t link;
    peer_t peers[N_CLIENTS];
    uint64_t now_us;
} world_t;

static void on_failed(void *owner, int code, const char *reason)
{
    (void)code;
    fprintf(stderr, "transport failed: %s\n", reason);
    ((peer_t *)owner)->failed = 1;
}

static void on_ready(void *owner, uint64_t now_ms)
{
    (void)now_ms;
    ((peer_t *)owner)->ready = 1;
}

static void on_layer_switched(void *owner, hk_consumer_t *c, int previous, int current)
{
    peer_t *p = owner;
    (void)c;
    CHECK(p->n_switches < 8);
    p->switches[p->n_switches][0] = previous;
    p->switches[p->n_switches][1] = current;
    p->n_switches++;
}

static const hk_endpoint_owner_t owner_events = {
    .on_failed = on_failed, .on_ready = on_ready, .on_layer_switched = on_layer_switched};

static peer_t *peer_by_tuple(world_t *w, const hk_tuple_t *to)
{
    for (int i = 0; i < N_CLIENTS; i++)
        if (hk_tuple_equal(&w->peers[i].tuple, to))
            return &w->peers[i];
    return NULL;
}

/* A client's plain RTP or RTCP, protected and fed to the host. */
static void client_send_rtp(world_t *w, peer_t *p, const uint8_t *plain, size_t len, int rtcp)
{
    uint8_t buf[HK_TX_BUF_SIZE];
    memcpy(buf, plain, len);
    size_t n = len;
    CHECK_INT_EQ(rtcp ? hk_srtp_protect_rtcp(p->srtp, buf, &n, sizeof buf)
                      : hk_srtp_protect_rtp(p->srtp, buf, &n, sizeof buf),
                 0);
    hk_rtc_host_receive(&w->host, buf, n, &p->tuple, w->now_us);
}

/* Hands what the host sent to the clients: DTLS to their DTLS clients, SRTP (once keyed)
 * unprotected into their inboxes, STUN responses dropped. */
static void pump(world_t *w)
{
    for (size_t i = 0; i < w->link.n; i++) {
        out_t *o = &w->link.out[i];
        peer_t *p = peer_by_tuple(w, &o->to);
        CHECK(p != NULL);
        uint8_t b0 = o->data[0];
        if (b0 >= 20 && b0 <= 63) {
            dgram_t d;
            memcpy(d.data, o->data, o->len);
            d.len = o->len;
            client_receive(&p->dtls, &d, &p->to_server);
        } else if (b0 >= 128 && b0 <= 191 && p->srtp) {
            size_t n = o->len;
            if (o->data[1] >= 192 && o->data[1] <= 223) {
                CHECK_INT_EQ(hk_srtp_unprotect_rtcp(p->srtp, o->data, &n), 0);
                p->n_rtcp++;
                continue;
            }
            uint16_t seq = hk_rd16(o->data + 2);
            int lost = 0;
            for (int d = 0; d < p->n_drop && !lost; d++)
                if (p->drop[d] == seq) {
                    p->drop[d] = p->drop[--p->n_drop];
                    lost = 1;
                }
            if (lost)
                continue;
            CHECK_INT_EQ(hk_srtp_unprotect_rtp(p->srtp, o->data, &n), 0);
            hk_rtp_header_t h;
            const char *err = NULL;
            CHECK_INT_EQ(hk_rtp_parse(o->data, n, &h, &err), 0);
            CHECK(p->n_rx < 256);
            rx_t *r = &p->rx[p->n_rx++];
            r->seq = h.seq;
            r->ts = h.timestamp;
            r->ssrc = h.ssrc;
            r->payload_len = h.payload_len < sizeof r->payload ? h.payload_len : sizeof r->payload;
            memcpy(r->payload, o->data + h.payload_offset, r->payload_len);
            size_t off, elen;
            r->mid[0] = '\0';
            if (hk_rtp_ext_find(o->data, &h, HK_EXT_MID, &off, &elen) == 0 && elen < 17) {
                memcpy(r->mid, o->data + off, elen);
                r->mid[elen] = '\0';
            }
            r->has_frame =
                hk_rtp_ext_find(o->data, &h, HK_EXT_DEPENDENCY_DESCRIPTOR, &off, &elen) == 0 &&
                elen >= 3;
            r->frame = r->has_frame ? hk_rd16(o->data + off + 1) : 0;
            r->has_twcc =
                hk_rtp_ext_find(o->data, &h, HK_EXT_TRANSPORT_CC, &off, &elen) == 0 && elen == 2;
            r->twcc = r->has_twcc ? hk_rd16(o->data + off) : 0;
            r->pt = h.pt;
            r->padding_only = h.padding && h.payload_len == 0;
            r->marker = h.marker;
        }
    }
    w->link.n = 0;
    /* The clients' DTLS answers. */
    for (int i = 0; i < N_CLIENTS; i++) {
        peer_t *p = &w->peers[i];
        for (size_t k = 0; k < p->to_server.n; k++)
            hk_rtc_host_receive(&w->host, p->to_server.d[k].data, p->to_server.d[k].len, &p->tuple,
                                w->now_us);
        p->to_server.n = 0;
    }
}

static void ice_check(world_t *w, peer_t *p)
{
    StunAgent agent;
    static const uint16_t known[] = {STUN_ATTRIBUTE_USERNAME, STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                     STUN_ATTRIBUTE_PRIORITY, STUN_ATTRIBUTE_USE_CANDIDATE, 0};
    stun_agent_init(&agent, known, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    StunMessage msg;
    uint8_t m[512];
    char user[64];
    snprintf(user, sizeof user, "%s:cli%d", p->t->ice_ufrag, (int)(p - w->peers));
    size_t len = stun_usage_ice_conncheck_create(
        &agent, &msg, m, sizeof m, (const uint8_t *)user, strlen(user),
        (const uint8_t *)p->t->ice_pwd, strlen(p->t->ice_pwd), true, true, 0x6e7f1eff,
        0x0123456789abcdefULL, NULL, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    CHECK(len > 0);
    hk_rtc_host_receive(&w->host, m, len, &p->tuple, w->now_us);
}

/* Keys as the client sees them (RFC 5764 §4.2: client key, server key, client salt,
 * server salt): it protects with its own, unprotects with the server's. */
static void client_keys(peer_t *p)
{
    const SRTP_PROTECTION_PROFILE *profile = SSL_get_selected_srtp_profile(p->dtls.ssl);
    CHECK(profile != NULL);
    bool gcm = profile->id == SRTP_AEAD_AES_128_GCM;
    size_t k = 16, s = gcm ? 12 : 14;
    uint8_t m[60];
    client_export(&p->dtls, m, 2 * (k + s));
    hk_srtp_keys_t keys = {.profile = gcm ? HK_SRTP_AEAD_AES_128_GCM : HK_SRTP_AES128_CM_SHA1_80,
                           .key_len = k,
                           .salt_len = s};
    memcpy(keys.local_key, m, k);
    memcpy(keys.local_key + k, m + 2 * k, s);
    memcpy(keys.remote_key, m + k, k);
    memcpy(keys.remote_key + k, m + 2 * k + s, s);
    p->srtp = hk_srtp_create(&keys);
    CHECK(p->srtp != NULL);
    hk_srtp_keys_wipe(&keys);
}

static world_t *world_new(void)
{
    CHECK_INT_EQ(hk_srtp_global_init(), 0);
    world_t *w = calloc(1, sizeof *w);
    CHECK(w != NULL);
    w->config.consent_timeout_ms = 30000;
    w->config.max_nacks_per_second = 1000;
    w->link.link.ops = &fake_ops;
    w->now_us = 1000000000ull;
    CHECK_INT_EQ(hk_cert_generate(&w->cert), 0);
    CHECK_INT_EQ(hk_rtc_host_init(&w->host, &w->config, &w->cert), 0);
    for (int i = 0; i < N_CLIENTS; i++) {
        peer_t *p = &w->peers[i];
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(40000 + i))};
        a.sin_addr.s_addr = htonl(0x0a000001u + (uint32_t)i);
        p->tuple = hk_tuple_udp4(&w->link.link, &a);
        client_init(&p->dtls, BOTH_PROFILES);
        p->to_server.mtu = 1200;
        hk_endpoint_init(&p->ep, &owner_events, p);
        p->t = hk_transport_create(&w->host, &hk_endpoint_transport_events, &p->ep, "test",
                                   w->now_us / 1000);
        CHECK(p->t != NULL);
        p->ep.transport = p->t;
        uint8_t fp[32];
        client_fingerprint(&p->dtls, fp);
        hk_transport_set_remote(p->t, "cli", "clientpassword0123456789", "sha-256", fp, 32);
    }
    CHECK_INT_EQ(w->host.n_transports, N_CLIENTS);
    /* The publisher sends video with RTX. */
    hk_transport_set_streams(w->peers[PUB].t, 0, VIDEO_SSRC, RTX_SSRC);
    hk_endpoint_set_producers(&w->peers[PUB].ep, false, true, 0);
    /* ICE, then DTLS until every side is up. */
    for (int i = 0; i < N_CLIENTS; i++) {
        ice_check(w, &w->peers[i]);
        client_step(&w->peers[i].dtls, &w->peers[i].to_server); /* ClientHello */
    }
    for (int round = 0; round < 20; round++) {
        pump(w);
        int up = 0;
        for (int i = 0; i < N_CLIENTS; i++)
            up += w->peers[i].ready && w->peers[i].dtls.connected;
        if (up == N_CLIENTS)
            break;
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        CHECK(w->peers[i].ready);
        CHECK(w->peers[i].dtls.connected);
        CHECK(!w->peers[i].failed);
        client_keys(&w->peers[i]);
    }
    return w;
}

static void world_free(world_t *w)
{
    for (int i = 0; i < N_CLIENTS; i++) {
        hk_endpoint_clear(&w->peers[i].ep);
        hk_transport_destroy(w->peers[i].t);
        hk_srtp_destroy(w->peers[i].srtp);
        client_free(&w->peers[i].dtls);
    }
    CHECK_INT_EQ(w->host.n_transports, 0);
    CHECK_INT_EQ((int)w->host.ufrags.count, 0);
    CHECK_INT_EQ((int)w->host.tuples.count, 0);
    hk_rtc_host_free(&w->host);
    hk_cert_free(&w->cert);
    free(w);
}

/* The publisher's video packet number seq: VP8, timestamp 3000 per packet, a
 * transport-wide sequence number, a payload that names seq. */
static size_t video_packet(uint8_t *buf, uint16_t seq)
{
    uint8_t ext[8] = {0xbe, 0xde, 0x00, 0x01, (HK_EXT_TRANSPORT_CC << 4) | 1, 0, 0, 0};
    hk_wr16(ext + 5, seq);
    memset(buf, 0, 12);
    buf[0] = 0x90; /* V=2, X */
    buf[1] = 96;
    hk_wr16(buf + 2, seq);
    hk_wr32(buf + 4, 90000u + 3000u * seq);
    hk_wr32(buf + 8, VIDEO_SSRC);
    memcpy(buf + 12, ext, 8);
    for (int i = 0; i < 40; i++)
        buf[20 + i] = (uint8_t)(seq * 7 + i);
    return 60;
}

static void publish(world_t *w, uint16_t seq)
{
    uint8_t pkt[64];
    size_t n = video_packet(pkt, seq);
    client_send_rtp(w, &w->peers[PUB], pkt, n, 0);
    w->now_us += 1000;
}

static int payload_names(const rx_t *r, uint16_t seq)
{
    if (r->payload_len != 40)
        return 0;
    for (int i = 0; i < 40; i++)
        if (r->payload[i] != (uint8_t)(seq * 7 + i))
            return 0;
    return 1;
}

TEST(router_forwards_through_consumers_with_their_own_numbers)
{
    world_t *w = world_new();
    hk_producer_t *video = &w->peers[PUB].ep.producers[HK_MEDIA_VIDEO];
    hk_consumer_t *c[N_CLIENTS] = {0};
    const char *mids[N_CLIENTS] = {"", "5", "6", "7"};
    for (int i = 1; i < N_CLIENTS; i++) {
        c[i] = hk_endpoint_consume(&w->peers[i].ep, video, mids[i]);
        CHECK(c[i] != NULL);
        CHECK(c[i]->ssrc != VIDEO_SSRC);
        CHECK(hk_endpoint_consumer(&w->peers[i].ep, c[i]->ssrc) == c[i]);
    }
    CHECK_INT_EQ((int)video->n_consumers, 3);
    /* Subscribers 1 and 2 answered; 3 has not yet. */
    hk_endpoint_activate(&w->peers[1].ep, c[1]);
    hk_endpoint_activate(&w->peers[2].ep, c[2]);

    /* Two of subscriber 1's packets get lost on the way out (1005 and 1020 at the
     * source), for the NACK below. */
    uint16_t lost[2] = {(uint16_t)(c[1]->seq_base + 5), (uint16_t)(c[1]->seq_base + 20)};
    w->peers[1].drop[0] = lost[0];
    w->peers[1].drop[1] = lost[1];
    w->peers[1].n_drop = 2;

    /* 30 packets, 1000..1029, with 1010 lost on the way in. */
    for (uint16_t s = 1000; s < 1030; s++)
        if (s != 1010)
            publish(w, s);
    pump(w);
    CHECK_INT_EQ((int)w->peers[3].n_rx, 0); /* no packet before its answer */
    for (int i = 1; i <= 2; i++) {
        peer_t *p = &w->peers[i];
        CHECK_INT_EQ((int)p->n_rx, i == 1 ? 27 : 29);
        for (size_t k = 0; k < p->n_rx; k++) {
            rx_t *r = &p->rx[k];
            /* Numbers in order, the gap at 1010 kept (and at the two lost ones). */
            uint16_t delta = (uint16_t)(r->seq - c[i]->seq_base);
            uint16_t src = (uint16_t)(1000 + delta);
            CHECK(delta < 30 && src != 1010);
            CHECK(k == 0 || (uint16_t)(r->seq - p->rx[k - 1].seq) < 3);
            CHECK_INT_EQ(r->ssrc, c[i]->ssrc);
            CHECK_INT_EQ(r->ts, c[i]->ts_base + 3000u * (src - 1000));
            CHECK(payload_names(r, src));
            CHECK_STR_EQ(r->mid, mids[i]);
        }
    }
    /* Each consumer numbers on its own. */
    CHECK(c[1]->seq_base != c[2]->seq_base || c[1]->ts_base != c[2]->ts_base);

    /* The publisher's RTX for 1010 (OSN first): subscribers get 1010 as it would have
     * been, in their own numbering. */
    uint8_t orig[64], rtx[80];
    size_t n = video_packet(orig, 1010);
    memcpy(rtx, orig, 20);
    rtx[1] = 97;
    hk_wr16(rtx + 2, 7);
    hk_wr32(rtx + 8, RTX_SSRC);
    hk_wr16(rtx + 20, 1010);
    memcpy(rtx + 22, orig + 20, n - 20);
    client_send_rtp(w, &w->peers[PUB], rtx, n + 2, 0);
    pump(w);
    for (int i = 1; i <= 2; i++) {
        peer_t *p = &w->peers[i];
        CHECK_INT_EQ((int)p->n_rx, i == 1 ? 28 : 30);
        rx_t *r = &p->rx[p->n_rx - 1];
        CHECK_INT_EQ(r->ssrc, c[i]->ssrc);
        CHECK_INT_EQ(r->seq, (uint16_t)(c[i]->seq_base + 10));
        CHECK(payload_names(r, 1010));
    }
    /* The same RTX again: a duplicate, not forwarded twice. */
    client_send_rtp(w, &w->peers[PUB], rtx, n + 2, 0);
    pump(w);
    CHECK_INT_EQ((int)w->peers[1].n_rx, 28);

    /* Subscriber 3 answers: from now on it receives, from its own first number. */
    hk_endpoint_activate(&w->peers[3].ep, c[3]);
    for (uint16_t s = 1030; s < 1035; s++)
        publish(w, s);
    pump(w);
    CHECK_INT_EQ((int)w->peers[3].n_rx, 5);
    for (size_t k = 0; k < 5; k++) {
        CHECK_INT_EQ(w->peers[3].rx[k].seq, (uint16_t)(c[3]->seq_base + k));
        CHECK_INT_EQ(w->peers[3].rx[k].ssrc, c[3]->ssrc);
        CHECK(payload_names(&w->peers[3].rx[k], (uint16_t)(1030 + k)));
    }

    /* Subscriber 1 NACKs two of its own numbers (1005 and 1020 at the source): answered
     * from its history, with the same numbers and payloads. Subscriber 2 gets nothing. */
    uint8_t nack[64];
    int nl = hk_rtcp_build_nack(nack, sizeof nack, 0x5555, c[1]->ssrc, lost, 2);
    CHECK(nl > 0);
    size_t before1 = w->peers[1].n_rx, before2 = w->peers[2].n_rx;
    client_send_rtp(w, &w->peers[1], nack, (size_t)nl, 1);
    pump(w);
    CHECK_INT_EQ((int)(w->peers[1].n_rx - before1), 2);
    CHECK_INT_EQ((int)(w->peers[2].n_rx - before2), 0);
    CHECK_INT_EQ(w->peers[1].rx[before1].seq, lost[0]);
    CHECK(payload_names(&w->peers[1].rx[before1], 1005));
    CHECK_INT_EQ(w->peers[1].rx[before1 + 1].seq, lost[1]);
    CHECK(payload_names(&w->peers[1].rx[before1 + 1], 1020));
    CHECK_INT_EQ((int)w->host.counters.retransmissions, 2);
    /* A NACK for a number it never had, and one for another consumer's SSRC: misses. */
    uint16_t never = (uint16_t)(c[1]->seq_base - 100);
    nl = hk_rtcp_build_nack(nack, sizeof nack, 0x5555, c[1]->ssrc, &never, 1);
    client_send_rtp(w, &w->peers[1], nack, (size_t)nl, 1);
    nl = hk_rtcp_build_nack(nack, sizeof nack, 0x5555, c[2]->ssrc, lost, 1);
    client_send_rtp(w, &w->peers[1], nack, (size_t)nl, 1);
    pump(w);
    CHECK_INT_EQ((int)(w->peers[1].n_rx - before1), 2);
    CHECK_INT_EQ((int)w->host.counters.retransmission_misses, 2);

    /* A subscriber that goes away leaves the producer's array. */
    hk_endpoint_unconsume(&w->peers[2].ep, c[2]);
    CHECK_INT_EQ((int)video->n_consumers, 2);
    world_free(w);
}

/* The deadline wheel drives each transport: the publisher's transport-wide feedback
 * goes out on time; a transport whose client stops checking fails with a reason once
 * consent_timeout has passed, and not before. */
TEST(router_deadlines_feedback_and_consent)
{
    world_t *w = world_new();
    for (uint16_t s = 1; s <= 10; s++)
        publish(w, s);
    size_t rtcp_before = w->peers[PUB].n_rtcp;
    w->now_us += 60 * 1000;
    hk_rtc_host_tick(&w->host, w->now_us / 1000);
    pump(w);
    CHECK(w->peers[PUB].n_rtcp > rtcp_before); /* feedback (and NACKs, reports) */
    CHECK(w->host.counters.twcc_feedback_sent >= 1);
    CHECK(!w->peers[1].failed);
    /* No checks for consent_timeout: every transport fails, once. */
    w->now_us += (uint64_t)(w->config.consent_timeout_ms - 1000) * 1000;
    hk_rtc_host_tick(&w->host, w->now_us / 1000);
    CHECK(!w->peers[1].failed);
    w->now_us += 2000 * 1000;
    hk_rtc_host_tick(&w->host, w->now_us / 1000);
    for (int i = 0; i < N_CLIENTS; i++)
        CHECK(w->peers[i].failed);
    CHECK_INT_EQ((int)w->host.counters.consent_expired, N_CLIENTS);
    world_free(w);
}

/* ---- simulcast ------------------------------------------------------------------------- */

#define LAYER_SSRC(l) (0xB0B0B000u + (uint32_t)(l))

/* A packet of simulcast layer `layer` (VP8) and temporal layer tid: its own sequence
 * numbers, timestamps (a different random-looking base per layer, 3000 per frame) and
 * dependency-descriptor frame numbers (a base per layer); the rid extension when with_rid
 * (the first packets of a layer); two packets per frame, the first starting it (DD
 * start_of_frame, VP8 S bit), a key frame's first carrying the structure flag and VP8's P
 * bit clear. The payload names (layer, seq). */
static size_t layer_packet(uint8_t *buf, int layer, uint16_t seq, bool key, bool with_rid, int tid,
                           uint8_t tl0)
{
    uint16_t frame = (uint16_t)(seq / 2);
    bool start = seq % 2 == 0;
    memset(buf, 0, 80);
    buf[0] = 0x90;
    buf[1] = 96;
    hk_wr16(buf + 2, seq);
    hk_wr32(buf + 4, 0x10000000u * (uint32_t)(layer + 1) + 3000u * frame);
    hk_wr32(buf + 8, LAYER_SSRC(layer));
    uint8_t *e = buf + 16, *p = e;
    *p++ = (HK_EXT_TRANSPORT_CC << 4) | 1;
    hk_wr16(p, seq);
    p += 2;
    if (with_rid) {
        *p++ = (HK_EXT_RID << 4) | 1;
        *p++ = 'r';
        *p++ = (uint8_t)('0' + layer);
    }
    bool structure = key && start;
    *p++ = (uint8_t)((HK_EXT_DEPENDENCY_DESCRIPTOR << 4) | (structure ? 3 : 2));
    *p++ = (uint8_t)((start ? 0x80 : 0) | 0x01); /* template 1 */
    hk_wr16(p, (uint16_t)(1000 * (layer + 1) + frame));
    p += 2;
    if (structure)
        *p++ = 0x80;
    size_t words = ((size_t)(p - e) + 3) / 4;
    hk_wr16(buf + 12, 0xbede);
    hk_wr16(buf + 14, (uint16_t)words);
    uint8_t *payload = e + 4 * words;
    /* VP8 payload descriptor (RFC 7741 §4.2): X, S; I (15-bit PictureID), L (TL0PICIDX),
     * T (TID, Y), each layer numbering its own pictures, TL0PICIDX as the caller counts
     * its base-layer frames; then the payload header's P bit.
     * (The descriptor's structure flag carries no structure: the temporal layer comes
     * from the TID.) */
    payload[0] = (uint8_t)(0x80 | (start ? 0x10 : 0x00));
    payload[1] = 0xe0;
    hk_wr16(payload + 2, (uint16_t)(0x8000 | (3000 * layer + frame)));
    payload[4] = tl0;
    payload[5] = (uint8_t)(tid << 6 | 0x20);
    payload[6] = key ? 0x00 : 0x01;
    payload[7] = (uint8_t)layer;
    hk_wr16(payload + 8, seq);
    return (size_t)(payload + 10 - buf);
}

static void publish_layer_tid(world_t *w, int layer, uint16_t seq, bool key, bool with_rid, int tid,
                              uint8_t tl0)
{
    uint8_t pkt[80];
    size_t n = layer_packet(pkt, layer, seq, key, with_rid, tid, tl0);
    client_send_rtp(w, &w->peers[PUB], pkt, n, 0);
    w->now_us += 1000;
}

static void publish_layer(world_t *w, int layer, uint16_t seq, bool key, bool with_rid)
{
    publish_layer_tid(w, layer, seq, key, with_rid, 0, (uint8_t)(60 * layer + seq / 2));
}

/* One frame (2 packets) of each layer in mask, numbered from frame f. */
static void publish_frame(world_t *w, uint8_t mask, uint16_t f, bool key, bool with_rid)
{
    for (int l = 0; l < 3; l++)
        if (mask & (1u << l))
            for (int k = 0; k < 2; k++)
                publish_layer(w, l, (uint16_t)(2 * f + k), key, with_rid);
}

static int rx_layer(const rx_t *r)
{
    return r->payload_len >= 10 ? r->payload[7] : -1;
}

/* The VP8 PictureID and TL0PICIDX of a layer_packet as received. */
static uint16_t rx_picture(const rx_t *r)
{
    return (uint16_t)(((r->payload[2] & 0x7f) << 8) | r->payload[3]);
}

static uint8_t rx_tl0(const rx_t *r)
{
    return r->payload[4];
}

/* The publisher sends three simulcast layers (SSRCs learnt from their rids). */
static hk_producer_t *simulcast_publisher(world_t *w)
{
    hk_transport_t *pt = w->peers[PUB].t;
    hk_transport_set_streams(pt, 0, 0, 0);
    hk_transport_set_simulcast(pt, 0x7);
    hk_endpoint_set_producers(&w->peers[PUB].ep, false, true, 0x7);
    return &w->peers[PUB].ep.producers[HK_MEDIA_VIDEO];
}

/* Subscriber 1 wants r0, subscriber 2 the best; then 1 asks for r2, r2 stops, 1 pauses.
 * Layers change only at key frames of the new layer (the old one flows until then); the
 * subscriber's SSRC, sequence numbers, timestamps and DD frame numbers go on without a
 * jump; PLIs ask for the key frames; every change is reported. */
TEST(router_simulcast_switches_at_key_frames)
{
    world_t *w = world_new();
    hk_transport_t *pt = w->peers[PUB].t;
    hk_producer_t *video = simulcast_publisher(w);
    hk_consumer_t *c1 = hk_endpoint_consume(&w->peers[1].ep, video, "1");
    hk_consumer_t *c2 = hk_endpoint_consume(&w->peers[2].ep, video, "2");
    CHECK(c1 && c2);
    hk_consumer_set_want(c1, 0, false);
    hk_endpoint_activate(&w->peers[1].ep, c1);
    hk_endpoint_activate(&w->peers[2].ep, c2);

    /* Frame 0: a key frame on each layer, with rids: the SSRCs are latched. */
    publish_frame(w, 0x7, 0, true, true);
    pump(w);
    for (int l = 0; l < 3; l++)
        CHECK_INT_EQ(pt->streams[HK_STREAM_VIDEO + l].ssrc, LAYER_SSRC(l));
    /* Frames 1..4: deltas, without rids. */
    for (uint16_t f = 1; f < 5; f++)
        publish_frame(w, 0x7, f, false, false);
    pump(w);
    peer_t *s1 = &w->peers[1], *s2 = &w->peers[2];
    CHECK_INT_EQ((int)s1->n_rx, 10);
    for (size_t k = 0; k < s1->n_rx; k++) {
        CHECK_INT_EQ(rx_layer(&s1->rx[k]), 0);
        CHECK_INT_EQ(s1->rx[k].ssrc, c1->ssrc);
    }
    /* Subscriber 2 started on r0 (the only layer flowing at its first packet), moved up
     * at r1's and r2's key frames as they began, and has had r2 since. */
    CHECK_INT_EQ(c2->layer, 2);
    CHECK_INT_EQ(s2->n_switches, 3);
    CHECK_INT_EQ(s2->switches[0][0], -1);
    CHECK_INT_EQ(s2->switches[0][1], 0);
    CHECK_INT_EQ(s2->switches[2][0], 1);
    CHECK_INT_EQ(s2->switches[2][1], 2);
    CHECK_INT_EQ(rx_layer(&s2->rx[s2->n_rx - 1]), 2);
    for (size_t k = 1; k < s2->n_rx; k++) {
        CHECK_INT_EQ((uint16_t)(s2->rx[k].seq - s2->rx[k - 1].seq), 1);
        CHECK((int32_t)(s2->rx[k].ts - s2->rx[k - 1].ts) >= 0);
        CHECK(s2->rx[k].has_frame);
        CHECK((uint16_t)(s2->rx[k].frame - s2->rx[k - 1].frame) <= 1);
    }

    /* Subscriber 1 asks for r2: r0 goes on, and r2's key frame is asked for. */
    uint64_t plis = w->host.counters.plis_sent;
    hk_consumer_set_want(c1, 2, true);
    for (uint16_t f = 5; f < 8; f++)
        publish_frame(w, 0x7, f, false, false);
    pump(w);
    CHECK(w->host.counters.plis_sent > plis);
    CHECK_INT_EQ(c1->layer, 0);
    CHECK_INT_EQ(rx_layer(&s1->rx[s1->n_rx - 1]), 0);
    /* r2's key frame (r0 and r1 send deltas): subscriber 1 moves at its first packet,
     * which is lost on the way (to be NACKed below). */
    size_t before = s1->n_rx;
    publish_frame(w, 0x3, 8, false, false);
    uint16_t key_seq = (uint16_t)(c1->last_seq + 1);
    s1->drop[0] = key_seq;
    s1->n_drop = 1;
    publish_frame(w, 0x4, 8, true, false);
    publish_frame(w, 0x7, 9, false, false);
    pump(w);
    CHECK_INT_EQ(c1->layer, 2);
    CHECK_INT_EQ(s1->n_switches, 2); /* none -> r0, r0 -> r2 */
    CHECK_INT_EQ(s1->switches[1][0], 0);
    CHECK_INT_EQ(s1->switches[1][1], 2);
    size_t first_r2 = before;
    while (first_r2 < s1->n_rx && rx_layer(&s1->rx[first_r2]) != 2)
        first_r2++;
    CHECK(first_r2 > before && first_r2 < s1->n_rx);
    rx_t prev = s1->rx[first_r2 - 1], second = s1->rx[first_r2];
    CHECK_INT_EQ(rx_layer(&prev), 0);
    CHECK_INT_EQ(prev.seq, (uint16_t)(key_seq - 1));
    CHECK_INT_EQ(second.seq, (uint16_t)(key_seq + 1));
    CHECK_INT_EQ(second.ssrc, c1->ssrc);
    CHECK((int32_t)(second.ts - prev.ts) > 0 && second.ts - prev.ts < 90 * 1000);
    CHECK_INT_EQ((uint16_t)(second.frame - prev.frame), 1);
    /* VP8's picture numbering goes on too (r2 numbers its pictures from 6000). */
    CHECK_INT_EQ((rx_picture(&second) - rx_picture(&prev)) & 0x7fff, 1);
    CHECK_INT_EQ((uint8_t)(rx_tl0(&second) - rx_tl0(&prev)), 1);
    for (size_t k = first_r2; k < s1->n_rx; k++) {
        CHECK_INT_EQ(rx_layer(&s1->rx[k]), 2);
        CHECK_INT_EQ((rx_picture(&s1->rx[k]) - rx_picture(&second)) & 0x7fff,
                     (s1->rx[k].frame - second.frame) & 0xffff);
    }

    /* A NACK for the lost key packet: answered as r2's, under its number, with the frame
     * number mapped; one for a packet of r0 it left: a miss (that mapping is gone). */
    uint16_t seqs[2] = {key_seq, prev.seq};
    uint8_t nack[64];
    int nl = hk_rtcp_build_nack(nack, sizeof nack, 0x5555, c1->ssrc, seqs, 2);
    uint64_t misses = w->host.counters.retransmission_misses;
    before = s1->n_rx;
    client_send_rtp(w, s1, nack, (size_t)nl, 1);
    pump(w);
    CHECK_INT_EQ((int)(s1->n_rx - before), 1);
    const rx_t *re = &s1->rx[before];
    CHECK_INT_EQ(re->seq, key_seq);
    CHECK_INT_EQ(rx_layer(re), 2);
    CHECK_INT_EQ(re->ts, second.ts);
    CHECK_INT_EQ(re->frame, second.frame);
    CHECK_INT_EQ(rx_picture(re), rx_picture(&second));
    CHECK_INT_EQ((int)(w->host.counters.retransmission_misses - misses), 1);

    /* r2 stops for longer than HK_LAYER_FLOWING_MS: subscriber 1 (wanting r2) moves down
     * to r1 at r1's next key frame. */
    w->now_us += (HK_LAYER_FLOWING_MS + 100) * 1000ull;
    publish_frame(w, 0x3, 10, false, false);
    CHECK_INT_EQ(c1->target, 1);
    CHECK_INT_EQ(c1->layer, 2);
    publish_frame(w, 0x3, 11, true, false);
    pump(w);
    CHECK_INT_EQ(c1->layer, 1);
    CHECK_INT_EQ(rx_layer(&s1->rx[s1->n_rx - 1]), 1);

    /* Paused: nothing more, and the change is reported as "none". */
    hk_consumer_set_want(c1, HK_LAYER_NONE, true);
    before = s1->n_rx;
    publish_frame(w, 0x3, 12, true, false);
    pump(w);
    CHECK_INT_EQ((int)(s1->n_rx - before), 0);
    CHECK_INT_EQ(c1->layer, -1);
    CHECK_INT_EQ(s1->switches[s1->n_switches - 1][1], -1);

    /* Back on r1 at its next key frame: a NACK for an r1 packet sent before the pause is
     * not answered: it was mapped with the offsets of before (timestamp, frame and
     * picture numbers), which the new ones would contradict. */
    uint16_t old_r1 = 0;
    for (size_t k = 0; k < s1->n_rx; k++)
        if (rx_layer(&s1->rx[k]) == 1)
            old_r1 = s1->rx[k].seq;
    hk_consumer_set_want(c1, 1, true);
    publish_frame(w, 0x3, 13, true, false);
    pump(w);
    CHECK_INT_EQ(c1->layer, 1);
    nl = hk_rtcp_build_nack(nack, sizeof nack, 0x5555, c1->ssrc, &old_r1, 1);
    misses = w->host.counters.retransmission_misses;
    before = s1->n_rx;
    client_send_rtp(w, s1, nack, (size_t)nl, 1);
    pump(w);
    CHECK_INT_EQ((int)(s1->n_rx - before), 0);
    CHECK_INT_EQ((int)(w->host.counters.retransmission_misses - misses), 1);
    world_free(w);
}

/* The choice of layer: the wanted one when it flows, else the best below, else the
 * lowest above; "auto" is the best; nothing for "none"; the wanted one when nothing flows
 * (its key frame is asked for). */
TEST(router_simulcast_choose_layer)
{
    CHECK_INT_EQ(hk_consumer_choose_layer(2, 0x7, 0x7), 2);
    CHECK_INT_EQ(hk_consumer_choose_layer(2, 0x3, 0x7), 1);
    CHECK_INT_EQ(hk_consumer_choose_layer(0, 0x6, 0x7), 1);
    CHECK_INT_EQ(hk_consumer_choose_layer(1, 0x4, 0x7), 2);
    CHECK_INT_EQ(hk_consumer_choose_layer(HK_LAYER_AUTO, 0x3, 0x7), 1);
    CHECK_INT_EQ(hk_consumer_choose_layer(HK_LAYER_AUTO, 0x0, 0x7), 2);
    CHECK_INT_EQ(hk_consumer_choose_layer(HK_LAYER_NONE, 0x7, 0x7), -1);
    CHECK_INT_EQ(hk_consumer_choose_layer(1, 0x0, 0x7), 1);
    CHECK_INT_EQ(hk_consumer_choose_layer(2, 0x0, 0x3), 1); /* r2 not offered */
    CHECK_INT_EQ(hk_consumer_choose_layer(1, 0x0, 0x5), 0);
    CHECK_INT_EQ(hk_consumer_choose_layer(0, 0x0, 0x0), -1);
    CHECK_INT_EQ(hk_consumer_choose_layer(0, 0x4, 0x3), 0); /* flowing but not offered */
}

/* Subscriber 1's transport-cc feedback for everything it received since rx[from]: all
 * arrived, 1 ms apart. */
static void send_twcc_lossy(world_t *w, peer_t *p, size_t from, size_t lost)
{
    hk_rtcp_twcc_packet_t pkts[256];
    size_t n = 0;
    for (size_t k = from; k < p->n_rx; k++) {
        CHECK(p->rx[k].has_twcc);
        pkts[n] = (hk_rtcp_twcc_packet_t){p->rx[k].twcc, n >= lost, 4,
                                          (int64_t)(w->now_us - 1000000000ull)};
        pkts[n].arrival_us += (int64_t)n * 1000;
        n++;
    }
    CHECK(n > lost);
    uint8_t buf[1024];
    int len = hk_rtcp_build_twcc(buf, sizeof buf, 0x5555, p->t->rtcp_ssrc, 0, pkts, n);
    CHECK(len > 0);
    client_send_rtp(w, p, buf, (size_t)len, 1);
}

/* Subscribers 1 and 2 each get an active consumer of video, with mids "1" and "2". */
static void two_subscribers(world_t *w, hk_producer_t *video, hk_consumer_t **c1,
                            hk_consumer_t **c2)
{
    *c1 = hk_endpoint_consume(&w->peers[1].ep, video, "1");
    *c2 = hk_endpoint_consume(&w->peers[2].ep, video, "2");
    CHECK(*c1 && *c2);
    hk_endpoint_activate(&w->peers[1].ep, *c1);
    hk_endpoint_activate(&w->peers[2].ep, *c2);
}

/* Subscriber p's transport-cc feedback for everything it received since rx[from]: all
 * arrived, 1 ms apart. */
static void send_twcc(world_t *w, peer_t *p, size_t from)
{
    send_twcc_lossy(w, p, from, 0);
}

/* The downlink estimate caps a subscriber's layers and probes for more: every packet to
 * a subscriber carries a transport-wide sequence number; its first feedback starts the
 * estimate (1 Mbit/s), whose split across its consumers (the layers at 150 kbit/s,
 * 500 kbit/s and 2.5 Mbit/s) caps it at r1; it moves there at r1's key frame; as it
 * wants more than the estimate, the transport probes with padding-only RTX packets on
 * the consumer's RTX SSRC, which carry the transport-wide numbers too. A subscriber that
 * sends no feedback is never capped. */
TEST(router_downlink_estimate_caps_layers_and_probes)
{
    world_t *w = world_new();
    hk_producer_t *video = simulcast_publisher(w);
    peer_t *s1 = &w->peers[1];
    hk_consumer_t *c1, *c2;
    two_subscribers(w, video, &c1, &c2);
    CHECK(c1->rtx_ssrc && c1->rtx_ssrc != c1->ssrc);
    for (uint16_t f = 0; f < 4; f++)
        publish_frame(w, 0x7, f, f == 0, f == 0);
    pump(w);
    CHECK_INT_EQ(c1->layer, 2);
    CHECK_INT_EQ(c1->cap, HK_LAYER_AUTO);
    for (size_t k = 0; k < s1->n_rx; k++)
        CHECK(s1->rx[k].has_twcc);
    CHECK(s1->t->bwe == NULL);

    /* A second of each layer's traffic at known rates. */
    static const uint64_t rates[3] = {150000, 500000, 2500000};
    uint64_t now_ms = w->now_us / 1000;
    hk_producer_update_rates(video, now_ms - HK_RATE_WINDOW_MS);
    for (int l = 0; l < 3; l++)
        video->layer_bytes[l] = video->window_bytes[l] + rates[l] / 8;

    /* The first feedback starts the estimate and the allocation. */
    send_twcc(w, s1, 0);
    CHECK(s1->t->bwe != NULL);
    CHECK_INT_EQ(w->host.counters.twcc_feedback_received, 1);
    CHECK_INT_EQ(hk_bwe_estimate(s1->t->bwe), HK_BWE_START_BPS);
    /* Its pacer: 2.5 times the larger of the estimate and the acknowledged rate. */
    uint64_t acked = hk_bwe_acked(s1->t->bwe);
    CHECK_INT_EQ(s1->t->pacer.rate_bps,
                 (acked > HK_BWE_START_BPS ? acked : HK_BWE_START_BPS) * HK_PACER_FACTOR_PCT / 100);
    for (int l = 0; l < 3; l++)
        CHECK_INT_EQ(video->layer_bps[l], rates[l]);
    CHECK_INT_EQ(c1->cap, 1);
    CHECK_INT_EQ(s1->ep.desired_bps, rates[2]);
    CHECK_INT_EQ(s1->ep.allocated_bps, rates[1]);
    CHECK_INT_EQ(c2->cap, HK_LAYER_AUTO); /* no feedback from subscriber 2 */

    /* It wants more than the estimate: a probe, paced (some padding at once). */
    CHECK(s1->t->bwe_probing);
    CHECK_INT_EQ(w->host.counters.probe_clusters, 1);
    CHECK(w->host.counters.padding_packets > 0);
    size_t before = s1->n_rx;
    pump(w);
    size_t padding = 0;
    for (size_t k = before; k < s1->n_rx; k++) {
        const rx_t *r = &s1->rx[k];
        CHECK(r->padding_only);
        CHECK_INT_EQ(r->ssrc, c1->rtx_ssrc);
        CHECK_INT_EQ(r->pt, 97); /* VP8's RTX */
        CHECK(r->has_twcc);
        CHECK(strcmp(r->mid, "1") == 0);
        if (k > before)
            CHECK_INT_EQ((uint16_t)(r->twcc - s1->rx[k - 1].twcc), 1);
        padding++;
    }
    CHECK(padding > 0);
    CHECK_INT_EQ(padding, w->host.counters.padding_packets);

    /* Capped at r1: it moves down at r1's key frame; subscriber 2 keeps r2. */
    publish_frame(w, 0x7, 4, false, false);
    CHECK_INT_EQ(c1->target, 1);
    CHECK_INT_EQ(c1->layer, 2);
    publish_frame(w, 0x2, 5, true, false);
    pump(w);
    CHECK_INT_EQ(c1->layer, 1);
    CHECK_INT_EQ(c2->layer, 2);
    /* The cluster ends after its duration, at the transport's deadline. */
    w->now_us += (HK_PROBE_DURATION_MAX_MS + 5) * 1000ull;
    hk_rtc_host_tick(&w->host, w->now_us / 1000);
    CHECK(!s1->t->bwe_probing);
    world_free(w);
}

/* Chromium's L1T3 pattern: temporal ids 0, 2, 1, 2 by frame. */
static int l1t3_tid(uint16_t f)
{
    return f % 4 == 0 ? 0 : f % 2 ? 2 : 1;
}

/* Packets [from, to) of frame f of layer r0, with its L1T3 temporal id. */
static void publish_r0(world_t *w, uint16_t f, bool key, int from, int to)
{
    for (int k = from; k < to; k++)
        publish_layer_tid(w, 0, (uint16_t)(2 * f + k), key, f == 0, l1t3_tid(f), (uint8_t)(f / 4));
}

/* Forgets the padding-only packets (probes) subscriber s received since rx[from]. */
static void forget_padding(peer_t *s, size_t from)
{
    size_t kept = from;
    for (size_t k = from; k < s->n_rx; k++)
        if (!s->rx[k].padding_only)
            s->rx[kept++] = s->rx[k];
    s->n_rx = kept;
}

/* What subscriber s received since rx[from] goes on from rx[from - 1] without a gap in
 * sequence numbers or VP8 PictureIDs (frames two packets each), and with the DD frame
 * numbers of the frames sent (gaps where frames were left out). */
static void check_continuous(const peer_t *s, size_t from)
{
    for (size_t k = from; k < s->n_rx; k++) {
        const rx_t *a = &s->rx[k - 1], *b = &s->rx[k];
        CHECK_INT_EQ((uint16_t)(b->seq - a->seq), 1);
        bool same_frame = b->frame == a->frame;
        CHECK_INT_EQ((rx_picture(b) - rx_picture(a)) & 0x7fff, same_frame ? 0 : 1);
        /* TL0PICIDX: the same, or the next base-layer frame's (never a gap, never back). */
        CHECK((uint8_t)(rx_tl0(b) - rx_tl0(a)) <= 1);
    }
}

/* Temporal layers: the allocation caps a subscriber at r0's first two temporal layers
 * (from the producer's per-temporal-layer rates); from the next base-layer frame on, the
 * T2 frames are left out, and what it receives has no gap in sequence numbers or VP8
 * PictureIDs, while the DD frame numbers keep theirs (its frame diffs stay right). A late
 * packet of a kept frame gets the number kept free for it, and a NACK the same bytes;
 * down to the base layer at once, back up at the next base-layer frame. */
TEST(router_simulcast_drops_temporal_layers)
{
    world_t *w = world_new();
    hk_producer_t *video = simulcast_publisher(w);
    peer_t *s1 = &w->peers[1];
    hk_consumer_t *c1 = hk_endpoint_consume(&s1->ep, video, "1");
    CHECK(c1 != NULL);
    hk_consumer_set_want(c1, 0, false);
    hk_endpoint_activate(&s1->ep, c1);
    for (uint16_t f = 0; f < 8; f++)
        publish_r0(w, f, f == 0, 0, 2);
    pump(w);
    CHECK_INT_EQ((int)s1->n_rx, 16);

    /* A second at known rates per temporal layer: 300, 200 and 600 kbit/s. The 1 Mbit/s
     * start estimate (80 % budget) carries T0 + T1 (500 kbit/s), not T2 as well. */
    static const uint64_t rates[3] = {300000, 200000, 600000};
    hk_producer_update_rates(video, w->now_us / 1000 - HK_RATE_WINDOW_MS);
    video->layer_bytes[0] = video->window_bytes[0];
    for (int t = 0; t < 3; t++) {
        video->tid_bytes[0][t] = video->tid_window_bytes[0][t] + rates[t] / 8;
        video->layer_bytes[0] += rates[t] / 8;
    }
    CHECK_INT_EQ(video->tids_seen[0], 0x7);
    send_twcc(w, s1, 0);
    CHECK(s1->t->bwe != NULL);
    CHECK_INT_EQ(video->tid_count[0], 3);
    CHECK_INT_EQ(video->tid_bps[0][2], rates[2]);
    CHECK_INT_EQ(c1->cap, 0);
    CHECK_INT_EQ(c1->tcap, 1);
    CHECK_INT_EQ(s1->ep.allocated_bps, rates[0] + rates[1]);

    /* Frames 8..23: the T2 frames (odd) are left out from frame 8 on. */
    uint64_t dropped = w->host.counters.layer_dropped;
    size_t from = s1->n_rx;
    for (uint16_t f = 8; f < 24; f++)
        publish_r0(w, f, false, 0, 2);
    pump(w);
    forget_padding(s1, from);
    CHECK_INT_EQ((int)(s1->n_rx - from), 16);
    CHECK_INT_EQ((int)(w->host.counters.layer_dropped - dropped), 16);
    check_continuous(s1, from);
    for (size_t k = from; k < s1->n_rx; k += 2)
        CHECK_INT_EQ((uint16_t)(s1->rx[k].frame - s1->rx[from].frame), (k - from)); /* 2 apart */

    /* Down to T0, at once: frame 24's first packet; T2 frame 25; 24's second packet, late
     * (and lost on the way to the subscriber); frames 26 (T1) and 27 (T2) left out; 28
     * (T0). */
    hk_endpoint_apply_cap(&s1->ep, c1, 0, 0, w->now_us / 1000);
    CHECK_INT_EQ(c1->tcap, 0);
    from = s1->n_rx;
    uint16_t late_seq = (uint16_t)(c1->last_seq + 2);
    s1->drop[0] = late_seq;
    s1->n_drop = 1;
    publish_r0(w, 24, false, 0, 1);
    publish_r0(w, 25, false, 0, 2);
    publish_r0(w, 24, false, 1, 2);
    for (uint16_t f = 26; f < 29; f++)
        publish_r0(w, f, false, 0, 2);
    pump(w);
    forget_padding(s1, from);
    CHECK_INT_EQ((int)(s1->n_rx - from), 3);
    rx_t first = s1->rx[from];
    CHECK_INT_EQ(s1->rx[from + 1].seq, (uint16_t)(late_seq + 1));
    CHECK_INT_EQ((uint16_t)(s1->rx[from + 1].frame - first.frame), 4);
    CHECK_INT_EQ((rx_picture(&s1->rx[from + 1]) - rx_picture(&first)) & 0x7fff, 1);

    /* A NACK for the late packet: under the number kept for it, with its frame's PictureID
     * and frame number. */
    uint8_t nack[64];
    int nl = hk_rtcp_build_nack(nack, sizeof nack, 0x5555, c1->ssrc, &late_seq, 1);
    size_t before = s1->n_rx;
    client_send_rtp(w, s1, nack, (size_t)nl, 1);
    pump(w);
    forget_padding(s1, before);
    CHECK_INT_EQ((int)(s1->n_rx - before), 1);
    CHECK_INT_EQ(s1->rx[before].seq, late_seq);
    CHECK_INT_EQ(rx_layer(&s1->rx[before]), 0);
    CHECK_INT_EQ(rx_picture(&s1->rx[before]), rx_picture(&first));
    CHECK_INT_EQ(s1->rx[before].frame, first.frame);
    CHECK_INT_EQ(rx_tl0(&s1->rx[before]), rx_tl0(&first));

    /* Uncapped: frames 29..31 are still left out; from base-layer frame 32 on, all. */
    c1->tcap = HK_LAYER_AUTO;
    from = s1->n_rx;
    for (uint16_t f = 29; f < 34; f++)
        publish_r0(w, f, false, 0, 2);
    pump(w);
    forget_padding(s1, from);
    CHECK_INT_EQ((int)(s1->n_rx - from), 4);
    s1->rx[from - 1] = s1->rx[from - 2]; /* the resend aside: frame 28's second packet */
    check_continuous(s1, from);
    CHECK_INT_EQ((uint16_t)(s1->rx[from + 2].frame - s1->rx[from].frame), 1);
    world_free(w);
}

TEST(router_effective_want)
{
    CHECK_INT_EQ(hk_consumer_effective_want(2, HK_LAYER_AUTO), 2);
    CHECK_INT_EQ(hk_consumer_effective_want(HK_LAYER_AUTO, 1), 1);
    CHECK_INT_EQ(hk_consumer_effective_want(0, 1), 0);
    CHECK_INT_EQ(hk_consumer_effective_want(2, 1), 1);
    CHECK_INT_EQ(hk_consumer_effective_want(2, HK_LAYER_NONE), HK_LAYER_NONE);
    CHECK_INT_EQ(hk_consumer_effective_want(HK_LAYER_NONE, HK_LAYER_AUTO), HK_LAYER_NONE);
    CHECK_INT_EQ(hk_consumer_effective_want(HK_LAYER_AUTO, HK_LAYER_AUTO), HK_LAYER_AUTO);
}

/* The caps the allocation's choices turn into (hk_endpoint_apply_cap): down at once, a
 * pause only after HK_PAUSE_HOLD_MS (the lowest layer meanwhile), out of a pause at once,
 * up only after HK_UPGRADE_HOLD_MS of unbroken offers and HK_UPGRADE_AFTER_DOWN_MS after
 * the last move down. */
TEST(router_caps_from_allocations)
{
    hk_endpoint_t e;
    memset(&e, 0, sizeof e);
    hk_consumer_t c;
    memset(&c, 0, sizeof c);
    c.cap = c.offered = HK_LAYER_AUTO;
    hk_endpoint_apply_cap(&e, &c, 1, HK_LAYER_AUTO, 1000);
    CHECK_INT_EQ(c.cap, 1); /* from no cap: at once, not a move down */
    CHECK_INT_EQ(e.last_down_ms, 0);
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, 1250);
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, 3000);
    CHECK_INT_EQ(c.cap, 1);
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, 1250 + HK_UPGRADE_HOLD_MS);
    CHECK_INT_EQ(c.cap, 2);
    /* Down at once; up again only once HK_UPGRADE_AFTER_DOWN_MS passed. */
    hk_endpoint_apply_cap(&e, &c, 0, HK_LAYER_AUTO, 3500);
    CHECK_INT_EQ(c.cap, 0);
    CHECK_INT_EQ(e.last_down_ms, 3500);
    for (uint64_t t = 3750; t < 3500 + HK_UPGRADE_AFTER_DOWN_MS; t += 250) {
        hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, t);
        CHECK_INT_EQ(c.cap, 0);
    }
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, 3500 + HK_UPGRADE_AFTER_DOWN_MS);
    CHECK_INT_EQ(c.cap, 2);
    /* A pause: the lowest layer first, the pause after HK_PAUSE_HOLD_MS of such choices. */
    uint64_t t0 = 9000;
    hk_endpoint_apply_cap(&e, &c, HK_LAYER_NONE, HK_LAYER_AUTO, t0);
    CHECK_INT_EQ(c.cap, 0);
    hk_endpoint_apply_cap(&e, &c, HK_LAYER_NONE, HK_LAYER_AUTO, t0 + HK_PAUSE_HOLD_MS - 1);
    CHECK_INT_EQ(c.cap, 0);
    hk_endpoint_apply_cap(&e, &c, HK_LAYER_NONE, HK_LAYER_AUTO, t0 + HK_PAUSE_HOLD_MS);
    CHECK_INT_EQ(c.cap, HK_LAYER_NONE);
    /* Out of a pause at once. */
    hk_endpoint_apply_cap(&e, &c, 1, HK_LAYER_AUTO, t0 + HK_PAUSE_HOLD_MS + 250);
    CHECK_INT_EQ(c.cap, 1);
    /* An offer broken by a choice of the current layer starts its wait again. */
    uint64_t t1 = 30000;
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, t1);
    hk_endpoint_apply_cap(&e, &c, 1, HK_LAYER_AUTO, t1 + 1000);
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, t1 + 1250);
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, t1 + HK_UPGRADE_HOLD_MS);
    CHECK_INT_EQ(c.cap, 1);
    hk_endpoint_apply_cap(&e, &c, 2, HK_LAYER_AUTO, t1 + 1250 + HK_UPGRADE_HOLD_MS);
    CHECK_INT_EQ(c.cap, 2);
}

/* A PLI from a subscriber whose link is losing packets moves it down a layer instead of
 * asking the publisher for a key frame of the layer it cannot carry; an uncongested
 * subscriber's PLI goes to the publisher as before. */
TEST(router_congested_pli_moves_down)
{
    world_t *w = world_new();
    hk_producer_t *video = simulcast_publisher(w);
    peer_t *s1 = &w->peers[1], *s2 = &w->peers[2];
    hk_consumer_t *c1, *c2;
    two_subscribers(w, video, &c1, &c2);
    for (uint16_t f = 0; f < 4; f++)
        publish_frame(w, 0x7, f, f == 0, f == 0);
    pump(w);
    CHECK_INT_EQ(c1->layer, 2);
    send_twcc(w, s1, 0); /* starts the estimate */
    size_t from = s1->n_rx;
    for (uint16_t f = 4; f < 16; f++)
        publish_frame(w, 0x7, f, false, false);
    pump(w);
    CHECK(s1->n_rx - from >= 24);
    send_twcc_lossy(w, s1, from, 22); /* 22 of 24 lost */
    hk_bwe_stats_t b;
    hk_bwe_get_stats(s1->t->bwe, &b);
    CHECK(b.loss_ratio > 0.10);

    w->now_us += 400000; /* past the PLI throttle */
    uint64_t plis = w->host.counters.plis_sent;
    uint8_t pli[32];
    int n = hk_rtcp_build_pli(pli, sizeof pli, 0x5555, c1->ssrc);
    client_send_rtp(w, s1, pli, (size_t)n, 1);
    CHECK_INT_EQ(w->host.counters.plis_moved_down, 1);
    CHECK_INT_EQ(c1->cap, 1);
    CHECK_INT_EQ(w->host.counters.plis_sent, plis);
    /* The other subscriber, whose link is fine: its PLI reaches the publisher. */
    n = hk_rtcp_build_pli(pli, sizeof pli, 0x6666, c2->ssrc);
    client_send_rtp(w, s2, pli, (size_t)n, 1);
    CHECK_INT_EQ(w->host.counters.plis_sent, plis + 1);
    CHECK_INT_EQ(w->host.counters.plis_moved_down, 1);
    /* Subscriber 1 moves to r1 at r1's key frame. */
    publish_frame(w, 0x7, 16, false, false);
    publish_frame(w, 0x2, 17, true, false);
    pump(w);
    CHECK_INT_EQ(c1->layer, 1);
    CHECK_INT_EQ(c2->layer, 2);
    world_free(w);
}

/* ---- SVC ------------------------------------------------------------------------------ */

/* Chromium's VP9 L3T3_KEY stream (tests/unit/fixtures/dd/vp9-l3t3-key.dd), its media
 * SSRC's packets from the first structure on, with each one's layers from the full
 * parser. */
typedef struct {
    uint16_t seq;
    uint32_t ts;
    int marker;
    uint8_t dd[255];
    size_t dd_len;
    int sid, tid, end;
} svc_packet_t;

static svc_packet_t svc_fixture[512];
static size_t n_svc_fixture;

static void load_svc_fixture(void)
{
    char *text = hk_test_read_file("tests/unit/fixtures/dd/vp9-l3t3-key.dd", NULL);
    static hk_dd_state_t state;
    memset(&state, 0, sizeof state);
    unsigned media = 0;
    n_svc_fixture = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned ssrc, seq, marker, pt;
        unsigned long ts;
        char hex[600];
        if (line[0] == '#' ||
            sscanf(line, "%x %u %lu %u %u %599s", &ssrc, &seq, &ts, &marker, &pt, hex) != 6)
            continue;
        if (!media)
            media = ssrc;
        if (ssrc != media)
            continue;
        CHECK(n_svc_fixture < sizeof svc_fixture / sizeof svc_fixture[0]);
        svc_packet_t *k = &svc_fixture[n_svc_fixture];
        k->dd_len = strlen(hex) / 2;
        CHECK(k->dd_len <= sizeof k->dd);
        for (size_t i = 0; i < k->dd_len; i++) {
            unsigned byte;
            CHECK(sscanf(hex + 2 * i, "%2x", &byte) == 1);
            k->dd[i] = (uint8_t)byte;
        }
        hk_dd_t d;
        if (hk_dd_parse(&state, k->dd, k->dd_len, &d, NULL) != 0)
            continue; /* before the first structure */
        k->seq = (uint16_t)seq;
        k->ts = (uint32_t)ts;
        k->marker = (int)marker;
        k->sid = d.spatial_id;
        k->tid = d.temporal_id;
        k->end = d.end_of_frame;
        n_svc_fixture++;
    }
    free(text);
    CHECK(n_svc_fixture > 200);
}

/* Publishes fixture packet i as the publisher's VP9 video (two-byte extensions: the
 * descriptor and a transport-wide number), its sequence number and timestamp moved on by
 * `pass` runs through the fixture; the payload names i. */
static void publish_svc(world_t *w, size_t i, int pass)
{
    const svc_packet_t *k = &svc_fixture[i];
    const svc_packet_t *first = &svc_fixture[0], *last = &svc_fixture[n_svc_fixture - 1];
    uint16_t seq = (uint16_t)(k->seq + pass * (uint16_t)(last->seq - first->seq + 1));
    uint32_t ts = k->ts + (uint32_t)pass * (last->ts - first->ts + 3000);
    uint8_t buf[400];
    memset(buf, 0, sizeof buf);
    buf[0] = 0x90;
    buf[1] = (uint8_t)(HK_PT_VP9 | (k->marker ? 0x80 : 0));
    hk_wr16(buf + 2, seq);
    hk_wr32(buf + 4, ts);
    hk_wr32(buf + 8, VIDEO_SSRC);
    uint8_t *e = buf + 16, *p = e;
    *p++ = HK_EXT_DEPENDENCY_DESCRIPTOR;
    *p++ = (uint8_t)k->dd_len;
    memcpy(p, k->dd, k->dd_len);
    p += k->dd_len;
    *p++ = HK_EXT_TRANSPORT_CC;
    *p++ = 2;
    hk_wr16(p, seq);
    p += 2;
    size_t words = ((size_t)(p - e) + 3) / 4;
    hk_wr16(buf + 12, 0x1000);
    hk_wr16(buf + 14, (uint16_t)words);
    uint8_t *payload = e + 4 * words;
    hk_wr16(payload, (uint16_t)i);
    payload[2] = payload[3] = 0xee;
    client_send_rtp(w, &w->peers[PUB], buf, (size_t)(payload + 4 - buf), 0);
    w->now_us += 1000;
}

/* What subscriber s received: fixture indices (from the payloads), sequence numbers
 * without a gap from one to the next across calls (*last_seq, *any), markers. */
typedef struct {
    size_t n;
    int any;
    uint16_t last_seq;
    uint8_t got[512]; /* per fixture index: received (1), with the marker bit (2) */
} svc_rx_t;

static void take_svc(peer_t *s, svc_rx_t *r)
{
    for (size_t k = 0; k < s->n_rx; k++) {
        const rx_t *x = &s->rx[k];
        if (x->padding_only)
            continue;
        if (r->any)
            CHECK_INT_EQ((uint16_t)(x->seq - r->last_seq), 1);
        r->any = 1;
        r->last_seq = x->seq;
        size_t i = hk_rd16(x->payload);
        CHECK(i < n_svc_fixture);
        r->got[i] = (uint8_t)(1 | (x->marker ? 2 : 0));
        r->n++;
    }
    s->n_rx = 0;
}

/* One pass through the fixture from index `from` to `to`, pumping as it goes; calls
 * at(i) before packet i when given. */
static void svc_pass(world_t *w, int pass, size_t from, size_t to, svc_rx_t *r1, svc_rx_t *r2)
{
    for (size_t i = from; i < to; i++) {
        publish_svc(w, i, pass);
        if (i % 32 == 31 || i + 1 == to) {
            pump(w);
            take_svc(&w->peers[1], r1);
            take_svc(&w->peers[2], r2);
        }
    }
}

/* SVC in one SSRC (Chromium's VP9 L3T3_KEY, with its dependency descriptors): the
 * producer learns three spatial and three temporal layers and their rates; a subscriber
 * capped at (S1, T1) gets, from the next picture on, exactly the packets of spatial
 * layers 0-1 and temporal layers 0-1, without a gap in sequence numbers, each picture
 * ending (marker) with its S1 frame's last packet; an uncapped one gets everything as
 * sent. Back up: the spatial layers return at a key picture (asked for with a PLI
 * meanwhile), the temporal ones at once at a base-layer picture. */
TEST(router_svc_leaves_out_layers_above_its_caps)
{
    load_svc_fixture();
    world_t *w = world_new();
    hk_producer_t *video = &w->peers[PUB].ep.producers[HK_MEDIA_VIDEO];
    peer_t *s1 = &w->peers[1];
    hk_consumer_t *c1, *c2;
    two_subscribers(w, video, &c1, &c2);
    static svc_rx_t r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);

    hk_producer_update_rates(video, w->now_us / 1000); /* the window opens */
    size_t half = n_svc_fixture / 2;
    svc_pass(w, 0, 0, half, &r1, &r2);
    CHECK(!video->svc);
    w->now_us += HK_RATE_WINDOW_MS * 1000ull;
    hk_producer_update_rates(video, w->now_us / 1000);
    CHECK(video->svc);
    CHECK_INT_EQ(video->sid_count, 3);
    for (int s = 0; s < 3; s++) {
        CHECK_INT_EQ(video->tid_count[s], 3);
        CHECK(video->tid_bps[s][0] > 0 && video->tid_bps[s][2] > 0);
    }
    svc_pass(w, 0, half, half + 10, &r1, &r2);
    CHECK_INT_EQ((int)r1.n, (int)half + 10);

    hk_endpoint_apply_cap(&s1->ep, c1, 1, 1, w->now_us / 1000);
    CHECK_INT_EQ(c1->cap, 1);
    CHECK_INT_EQ(c1->tcap, 1);
    uint64_t dropped = w->host.counters.layer_dropped;
    half += 10;
    svc_pass(w, 0, half, n_svc_fixture, &r1, &r2);
    CHECK_INT_EQ((int)r2.n, (int)n_svc_fixture);
    uint32_t ongoing = svc_fixture[half - 1].ts; /* the picture under way: sent whole */
    size_t want = 0, marked = 0;
    for (size_t i = half; i < n_svc_fixture; i++) {
        const svc_packet_t *k = &svc_fixture[i];
        bool in = k->ts == ongoing || (k->sid <= 1 && k->tid <= 1);
        CHECK_INT_EQ(r1.got[i] != 0, in);
        want += in;
        if (k->ts != ongoing && in) {
            bool ends = k->sid == 1 && k->end;
            CHECK_INT_EQ((r1.got[i] & 2) != 0, ends);
            marked += ends;
        }
        CHECK_INT_EQ(r2.got[i] & 2 ? 1 : 0, k->marker);
    }
    CHECK(marked > 5);
    CHECK_INT_EQ((int)(r1.n - half), (int)want);
    CHECK_INT_EQ((int)(w->host.counters.layer_dropped - dropped),
                 (int)(n_svc_fixture - half - want));

    /* Down to S0 at the next picture; back up (no cap) in the middle of the pass: the
     * temporal layers at the next T0 picture, the spatial ones wait for a key picture,
     * asked for; the next pass starts with one. */
    memset(r1.got, 0, sizeof r1.got);
    svc_pass(w, 1, 0, 20, &r1, &r2);
    hk_endpoint_apply_cap(&s1->ep, c1, 0, HK_LAYER_AUTO, w->now_us / 1000);
    svc_pass(w, 1, 20, 60, &r1, &r2);
    c1->cap = c1->tcap = HK_LAYER_AUTO;
    uint64_t plis = w->host.counters.plis_sent;
    size_t upper = 0, t2 = 0;
    svc_pass(w, 1, 60, n_svc_fixture, &r1, &r2);
    CHECK(w->host.counters.plis_sent > plis);
    for (size_t i = 70; i < n_svc_fixture; i++) {
        upper += r1.got[i] && svc_fixture[i].sid > 0;
        t2 += r1.got[i] && svc_fixture[i].tid == 2;
    }
    CHECK_INT_EQ((int)upper, 0);
    CHECK(t2 > 0);
    memset(r1.got, 0, sizeof r1.got);
    size_t before = r1.n;
    svc_pass(w, 2, 0, n_svc_fixture, &r1, &r2);
    CHECK_INT_EQ((int)(r1.n - before), (int)n_svc_fixture);
    world_free(w);
}

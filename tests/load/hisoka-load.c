/* hisoka-load: a load generator for hisoka (and for the raw relay, the forwarding
 * ceiling). It emulates K channels x (P publishers + S subscribers + M sendrecv members),
 * each peer with its own UDP socket and, in hisoka mode, its own WebSocket, real ICE
 * (binding request with USE-CANDIDATE), DTLS client (OpenSSL, memory BIOs) and SRTP
 * (libsrtp2 through server/rtc/srtp.c). Publishers send synthetic, already E2EE-encrypted
 * frames (tests/load/load.h); subscribers count every packet from its RTP header and
 * decrypt every Nth frame to check integrity and measure latency: end to end (frame
 * creation -> the generator reading its last packet, generator included) and added by the
 * server (publisher send complete -> kernel receive timestamp of the last packet, see
 * README.md "Added latency").
 *
 * --transport tcp: each peer's media goes over one TCP connection to the server's passive
 * ICE-TCP candidate instead (RFC 6544; every STUN, DTLS, SRTP and SRTCP datagram framed by
 * RFC 4571), through a bounded per-peer send queue (a packet that does not fit is dropped
 * and counted) and a per-peer receive buffer that reassembles frames across reads.
 *
 * One epoll loop; recvmmsg/sendmmsg per socket. Output: one JSON object (stdout or
 * --json FILE). Exit 0, 1 on integrity failures, 3 when peers failed to join, 2 on
 * usage or setup errors. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/bytes.h"
#include "server/io/udp.h"
#include "server/rtc/cert.h"
#include "server/proto/rfc4571.h"
#include "server/proto/rtp.h"
#include "server/proto/sdp.h"
#include "server/proto/rtcp.h"
#include "server/rtc/srtp.h"
#include "tests/load/janus.h"
#include "tests/load/load.h"
#include "tests/load/ws.h"

#define MAX_STREAMS   64
#define BATCH         64
#define PKT_CAP       1536
#define MAX_SAMPLES   (1u << 21)
#define SETUP_TIMEOUT 30000000u /* µs for all initial peers to be ready */
#define JOIN_TIMEOUT  20000000u /* µs for one peer from start to ready */
#define DRAIN_US      700000u
#define ICE_RETRY_US  100000u
#define ICE_MAX_TRIES 100
#define CONSENT_US    5000000u
#define SENT_RING     512     /* frames whose send time a publisher remembers, per kind */
#define TWCC_RX_MAX   1024    /* arrivals a receiver reports in one transport-cc feedback */
#define CAP_BURST     16384.0 /* bytes a capped receiver's link passes at once */
#define RID_PACKETS   100     /* packets of each simulcast layer that carry its rid */
/* --transport tcp: per-peer buffers, allocated once at connect. The send queue of a peer
 * that sends media holds about 2 s of its 1 Mbit/s; a receive-only peer sends only STUN,
 * DTLS and RTCP. The receive buffer holds a whole largest frame plus a read. */
#define TCP_TX_CAP_MEDIA (256 * 1024)
#define TCP_TX_CAP_RECV  (32 * 1024)
#define TCP_RX_CAP       (128 * 1024)

typedef enum { MODE_HISOKA, MODE_RAW, MODE_JANUS } mode_t_;
typedef enum { TRANSPORT_UDP, TRANSPORT_TCP } transport_t;
typedef enum { ROLE_PUB, ROLE_SUB, ROLE_MEMBER } role_t;
typedef enum { P_IDLE, P_WS, P_ICE, P_DTLS, P_HELLO, P_READY, P_FAILED } pstate_t;
/* --mode janus: where a peer is in the Janus API exchange (janus.h). */
typedef enum { J_CREATE, J_ATTACH, J_FEEDS, J_JSEP, J_START, J_IDLE } jstep_t;

typedef struct {
    uint32_t ssrc;
    bool started;
    uint16_t last_seq;
    uint64_t ext_first, ext_max;
    uint64_t received;
    /* sampled frame reassembly */
    bool sampling;
    uint32_t sample_ctr;
    uint8_t count;
    uint8_t got;
    uint64_t bitmap[4];
    size_t frame_len;
    uint64_t rx_last_ns; /* latest kernel receive timestamp of its packets (0: none) */
    uint8_t *buf;
} stream_t;

/* A publisher's record of one frame: CLOCK_REALTIME (ns) right after the sendmmsg of its
 * last packet returned. On loopback the datagrams are in the server's socket queue then. */
typedef struct {
    uint32_t ctr;
    uint64_t ns; /* 0: not (completely) sent */
} sent_t;

typedef struct {
    int idx;
    role_t role;
    int channel;
    bool late;
    pstate_t state;
    uint64_t t_start, t_ready, t_first_rtp;
    hk_ws_t ws;
    bool ws_out; /* EPOLLOUT registered */
    int udp;
    /* --transport tcp: the ICE-TCP connection (-1: none, or lost) and its buffers */
    int tcp;
    bool tcp_connected;
    bool tcp_out; /* EPOLLOUT registered */
    struct sockaddr_in tcp_addr;
    uint8_t *tcp_buf; /* tx_cap bytes of send queue, then TCP_RX_CAP of receive buffer */
    size_t tx_cap, tx_head, tx_tail;
    size_t rx_len;
    char connection_id[40];
    /* ICE */
    char srv_ufrag[64], srv_pwd[160];
    uint8_t srv_fp[32];
    bool have_fp;
    bool ice_ok;       /* our check was answered */
    bool ice_answered; /* we answered a check of the server's */
    uint8_t tid[12];
    int ice_tries;
    uint64_t next_ice;
    /* DTLS / SRTP */
    SSL *ssl;
    BIO *rbio, *wbio;
    hk_srtp_t *srtp;
    /* publishing */
    bool send_audio, send_video;
    char mid_audio[HK_SDP_MID_LEN], mid_video[HK_SDP_MID_LEN];
    uint32_t ssrc_audio, ssrc_video, ssrc_rtx;
    uint16_t seq_audio, seq_video, twcc;
    uint32_t ctr_audio, ctr_video;
    uint64_t next_audio, next_video;
    sent_t *sent; /* [2][SENT_RING]: audio, video; indexed by ctr % SENT_RING */
    /* receiving */
    stream_t streams[MAX_STREAMS];
    int n_streams;
    uint64_t next_storm; /* --feedback-storm: when the next burst is due */
    /* --simulcast publisher: one SSRC and sequence per layer; key frame owed per layer */
    uint32_t ssrc_layer[3];
    uint16_t seq_layer[3];
    uint32_t rid_left[3]; /* packets that still carry the rid extension */
    bool key_layer[3];
    /* transport-cc feedback of what it receives (--twcc), and its receive cap (--capped) */
    hk_rtcp_twcc_packet_t *twcc_rx;
    size_t n_twcc_rx;
    bool twcc_started;
    uint16_t twcc_next;
    uint8_t twcc_fb_count;
    uint64_t next_twcc;
    bool capped;
    double cap_tokens; /* bytes */
    uint64_t cap_last;
    /* --mode janus: one Janus session + VideoRoom handle per PeerConnection; a sendrecv
     * member is two peers (a publisher and a subscriber PC), pair = the other half. */
    int pair;
    jstep_t j_step;
    uint64_t j_session, j_handle;
    uint64_t j_wait_tx; /* the transaction whose reply moves j_step on */
    uint64_t j_next_keepalive;
    bool j_published;    /* publisher: Janus reported webrtcup, subscribable */
    bool j_joined;       /* subscriber: joined the room (later feeds: subscribe) */
    uint64_t j_seen_gen; /* subscriber: janus_published_gen at the last feed scan */
    int n_feeds;
    int feeds[HK_JANUS_MAX_FEEDS]; /* subscriber: indexes of the publisher peers */
} peer_t;

typedef struct {
    mode_t_ mode;
    char url[256];
    int channels, publishers, subscribers, members, late;
    double late_at;
    double duration;
    int video_kbps, fps;
    const char *metrics_url, *metrics_out;
    bool audio, video, e2ee;
    int sample;
    const char *json_path;
    const char *srtp_profiles;
    int server_pid;
    const char *channel_prefix;
    int connect_interval_ms;
    long long janus_room;
    struct in_addr local_ip; /* where the peers' UDP sockets are bound */
    int feedback_storm;      /* RTCP NACK + PLI packets per second from each receiver */
    transport_t transport;
    bool have_tcp_target; /* --tcp-target: instead of the offer's tcp candidate */
    struct sockaddr_in tcp_target;
    bool simulcast; /* --simulcast: video as three layers r0..r2 (1/16, 1/4, 1 of video_kbps) */
    bool twcc;      /* receivers send transport-cc feedback (on with --simulcast) */
    int capped;     /* --capped N: the first N receivers of each channel ... */
    int cap_kbps;   /* ... drop what arrives above this rate (--cap-kbps) */
} options_t;

typedef struct {
    uint64_t packets_sent, bytes_sent, frames_sent;
    uint64_t packets_received, bytes_received, rtcp_received;
    uint64_t rtx_received; /* of packets_received: not VP8 or Opus media (RTX, padding) */
    uint64_t frames_verified, integrity_failures, samples_incomplete, srtp_errors;
    uint64_t send_errors, ws_closed, pacing_skips;
    uint64_t feedback_sent;     /* --feedback-storm packets */
    uint64_t srtp_gcm, srtp_cm; /* DTLS-SRTP profile chosen by the server, per peer */
    uint64_t *latency;
    size_t n_latency;
    uint64_t *added; /* ns */
    size_t n_added;
    uint64_t added_missing;  /* verified frames without a send record or receive timestamp */
    uint64_t added_negative; /* receive timestamp before the send-complete time (counted 0) */
    /* --transport tcp */
    uint64_t tcp_send_drops;   /* packets that did not fit in a peer's send queue */
    uint64_t tcp_send_blocked; /* sends the kernel refused for now (EAGAIN): queue kept */
    uint64_t tcp_tx_max;       /* the fullest any send queue was, bytes */
    uint64_t tcp_closed;       /* connections lost after the peer was ready */
    /* --simulcast / --twcc / --capped */
    uint64_t twcc_sent;                /* transport-cc feedback packets from receivers */
    uint64_t plis_received;            /* by publishers, for one of their layers */
    uint64_t keyframes_sent;           /* layer key frames (start, and on PLI) */
    uint64_t cap_drops;                /* packets a capped receiver dropped over its rate */
    uint64_t bytes_capped, bytes_free; /* received in the window by capped / other receivers */
    uint64_t layer_frames[2][3];       /* verified frames of the window: [capped][layer] */
} stats_t;

static options_t opt = {
    .mode = MODE_HISOKA,
    .channels = 1,
    .publishers = 1,
    .subscribers = 2,
    .duration = 10,
    .video_kbps = 1000,
    .fps = 30,
    .audio = true,
    .video = true,
    .e2ee = true,
    .sample = 5,
    .srtp_profiles = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80",
    .late_at = -1,
    .channel_prefix = "load",
    .janus_room = 1234,
    .cap_kbps = 1000,
};
static stats_t st;
static peer_t *peers;
static int n_peers;
static int ep;
static SSL_CTX *dtls_ctx;
static hk_cert_t cert;
static struct sockaddr_in signaling_addr, raw_addr;
static char url_host[128], url_path[256];
static size_t frame_cap; /* reassembly buffer per sampled stream */
static uint8_t frame_buf[HK_LOAD_MAX_FRAME];
static uint8_t pkt_buf[BATCH][PKT_CAP];
static char scratch[1 << 20];
static char janus_out[1 << 20];      /* one Janus request (may carry an SDP) */
static uint64_t janus_tx;            /* last transaction number used */
static uint64_t janus_published_gen; /* bumped whenever a Janus publisher feed appears */
static volatile sig_atomic_t interrupted;
/* The media window (now_us()): CPU, packet rates and latencies are measured over it. */
static uint64_t media_start, media_end;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static uint64_t now_us(void)
{
    return hk_load_now_us();
}

/* CLOCK_REALTIME in ns: the clock of the kernel's SO_TIMESTAMPNS receive timestamps. */
static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail_peer(peer_t *p, const char *why)
{
    if (p->state == P_FAILED)
        return;
    fprintf(stderr, "hisoka-load: peer %d (%s) failed: %s\n", p->idx, p->connection_id, why);
    p->state = P_FAILED;
}

/* ---- ICE-TCP: the send side (--transport tcp) ----------------------------------------- */

static bool use_tcp(void)
{
    return opt.transport == TRANSPORT_TCP;
}

/* The connection is gone (closed by the server or an error): the peer fails when it was
 * not ready yet, else it stops receiving (counted). Its buffers stay until the end, so a
 * caller that is reading from them can go on. */
static void tcp_lost(peer_t *p, const char *why)
{
    if (p->tcp < 0)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, p->tcp, NULL);
    close(p->tcp);
    p->tcp = -1;
    p->tx_head = p->tx_tail = 0;
    if (p->state == P_READY) {
        st.tcp_closed++;
        fprintf(stderr, "hisoka-load: peer %d (%s): %s\n", p->idx, p->connection_id, why);
    } else {
        fail_peer(p, why);
    }
}

/* EPOLLOUT while connecting or while the send queue holds bytes. */
static void tcp_update_events(peer_t *p)
{
    bool want = !p->tcp_connected || p->tx_tail > p->tx_head;
    if (p->tcp < 0 || want == p->tcp_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)p->idx << 1 | 1};
    epoll_ctl(ep, EPOLL_CTL_MOD, p->tcp, &ev);
    p->tcp_out = want;
}

/* Hands as much of the send queue to the kernel as it takes now (non-blocking). */
static void tcp_flush(peer_t *p)
{
    if (p->tcp < 0 || !p->tcp_connected)
        return;
    /* bounded: every turn sends bytes or leaves */
    while (p->tx_head < p->tx_tail) {
        ssize_t n = send(p->tcp, p->tcp_buf + p->tx_head, p->tx_tail - p->tx_head,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p->tx_head += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            st.tcp_send_blocked++;
            break;
        }
        tcp_lost(p, "ICE-TCP send failed");
        return;
    }
    if (p->tx_head == p->tx_tail)
        p->tx_head = p->tx_tail = 0;
    tcp_update_events(p);
}

/* Appends one datagram to the send queue as an RFC 4571 frame; drops it (counted) when it
 * does not fit, and refuses it when the connection is lost. */
static bool tcp_enqueue(peer_t *p, const uint8_t *buf, size_t len)
{
    size_t need = HK_RFC4571_HEADER + len;
    if (p->tcp < 0)
        return false; /* lost: counted in tcp_closed */
    if (len > 65535) {
        st.tcp_send_drops++;
        return false;
    }
    if (p->tx_cap - p->tx_tail < need && p->tx_head > 0) {
        memmove(p->tcp_buf, p->tcp_buf + p->tx_head, p->tx_tail - p->tx_head);
        p->tx_tail -= p->tx_head;
        p->tx_head = 0;
    }
    if (p->tx_cap - p->tx_tail < need) {
        st.tcp_send_drops++;
        return false;
    }
    hk_rfc4571_write_header(p->tcp_buf + p->tx_tail, len);
    memcpy(p->tcp_buf + p->tx_tail + HK_RFC4571_HEADER, buf, len);
    p->tx_tail += need;
    if (p->tx_tail - p->tx_head > st.tcp_tx_max)
        st.tcp_tx_max = p->tx_tail - p->tx_head;
    return true;
}

/* Sends one datagram to the server: on the peer's UDP socket, or framed on its ICE-TCP
 * connection. Returns 0 or -1 (UDP send error, or dropped from a full TCP queue). */
static int media_send(peer_t *p, const uint8_t *buf, size_t len)
{
    if (use_tcp()) {
        if (!tcp_enqueue(p, buf, len))
            return -1;
        tcp_flush(p);
        return 0;
    }
    return send(p->udp, buf, len, 0) < 0 ? -1 : 0;
}

/* ---- ICE (RFC 8445 §7.1.1, RFC 5389 §15) ------------------------------------------- */

static size_t stun_attr(uint8_t *out, uint16_t type, const void *val, size_t len)
{
    out[0] = (uint8_t)(type >> 8);
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    memcpy(out + 4, val, len);
    size_t padded = (len + 3) & ~(size_t)3;
    memset(out + 4 + len, 0, padded - len);
    return 4 + padded;
}

static void stun_set_len(uint8_t *msg, size_t body)
{
    msg[2] = (uint8_t)(body >> 8);
    msg[3] = (uint8_t)body;
}

/* Binding request: USERNAME "server:ours", PRIORITY, ICE-CONTROLLING, USE-CANDIDATE,
 * MESSAGE-INTEGRITY (HMAC-SHA1 keyed with the server's ice-pwd), FINGERPRINT. */
static size_t stun_binding_request(peer_t *p, uint8_t *msg)
{
    RAND_bytes(p->tid, sizeof p->tid);
    msg[0] = 0x00;
    msg[1] = 0x01;
    msg[4] = 0x21;
    msg[5] = 0x12;
    msg[6] = 0xa4;
    msg[7] = 0x42;
    memcpy(msg + 8, p->tid, 12);
    size_t n = 20;
    char user[200];
    int ul = snprintf(user, sizeof user, "%s:ld%04x", p->srv_ufrag, p->idx & 0xffff);
    n += stun_attr(msg + n, 0x0006, user, (size_t)ul);
    uint8_t prio[4] = {0x6e, 0x00, 0x1e, 0xff};
    n += stun_attr(msg + n, 0x0024, prio, 4);
    uint8_t tie[8];
    RAND_bytes(tie, 8);
    n += stun_attr(msg + n, 0x802a, tie, 8);
    n += stun_attr(msg + n, 0x0025, "", 0);
    stun_set_len(msg, n - 20 + 24);
    uint8_t mac[20];
    unsigned ml = 0;
    HMAC(EVP_sha1(), p->srv_pwd, (int)strlen(p->srv_pwd), msg, n, mac, &ml);
    n += stun_attr(msg + n, 0x0008, mac, 20);
    stun_set_len(msg, n - 20 + 8);
    uint32_t crc = hk_crc32(msg, n) ^ 0x5354554eu;
    uint8_t fp[4];
    hk_wr32(fp, crc);
    n += stun_attr(msg + n, 0x8028, fp, 4);
    return n;
}

static void send_binding(peer_t *p)
{
    uint8_t msg[512];
    size_t n = stun_binding_request(p, msg);
    if (media_send(p, msg, n) < 0)
        st.send_errors++;
}

/* ---- DTLS client ------------------------------------------------------------------- */

static int verify_any(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1; /* checked against the offer's fingerprint after the handshake */
}

static int make_dtls_ctx(void)
{
    if (hk_cert_generate(&cert) != 0)
        return -1;
    dtls_ctx = SSL_CTX_new(DTLS_client_method());
    if (!dtls_ctx || SSL_CTX_use_certificate(dtls_ctx, cert.x509) != 1 ||
        SSL_CTX_use_PrivateKey(dtls_ctx, cert.key) != 1 ||
        SSL_CTX_set_tlsext_use_srtp(dtls_ctx, opt.srtp_profiles) != 0 ||
        SSL_CTX_set_cipher_list(dtls_ctx, "ECDHE-ECDSA-AES128-GCM-SHA256") != 1)
        return -1;
    SSL_CTX_set_verify(dtls_ctx, SSL_VERIFY_PEER, verify_any);
    return 0;
}

/* Sends what OpenSSL wrote: whole DTLS records (RFC 6347 §4.1: 13-byte header with the
 * length in its last two bytes), packed into datagrams of at most 1200 bytes (over TCP,
 * one RFC 4571 frame each). */
static void dtls_flush(peer_t *p)
{
    uint8_t buf[16384];
    for (;;) {
        int n = BIO_read(p->wbio, buf, sizeof buf);
        if (n <= 0)
            return;
        size_t pos = 0, start = 0;
        while (pos + 13 <= (size_t)n) {
            size_t rec = 13 + ((size_t)buf[pos + 11] << 8 | buf[pos + 12]);
            if (pos + rec > (size_t)n)
                break;
            if (pos + rec - start > 1200 && pos > start) {
                media_send(p, buf + start, pos - start);
                start = pos;
            }
            pos += rec;
        }
        if ((size_t)n > start)
            media_send(p, buf + start, (size_t)n - start);
    }
}

static int dtls_finish(peer_t *p)
{
    X509 *peer_cert = SSL_get1_peer_certificate(p->ssl);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdl = 0;
    int ok = peer_cert && X509_digest(peer_cert, EVP_sha256(), md, &mdl) == 1 && mdl == 32 &&
             (!p->have_fp || memcmp(md, p->srv_fp, 32) == 0);
    X509_free(peer_cert);
    if (!ok)
        return -1;
    const SRTP_PROTECTION_PROFILE *prof = SSL_get_selected_srtp_profile(p->ssl);
    if (!prof)
        return -1;
    hk_srtp_keys_t keys;
    memset(&keys, 0, sizeof keys);
    keys.key_len = HK_SRTP_KEY_LEN;
    if (prof->id == SRTP_AEAD_AES_128_GCM) {
        keys.profile = HK_SRTP_AEAD_AES_128_GCM;
        keys.salt_len = HK_SRTP_GCM_SALT_LEN;
        st.srtp_gcm++;
    } else if (prof->id == SRTP_AES128_CM_SHA1_80) {
        keys.profile = HK_SRTP_AES128_CM_SHA1_80;
        keys.salt_len = HK_SRTP_CM_SALT_LEN;
        st.srtp_cm++;
    } else {
        return -1;
    }
    /* RFC 5764 §4.2: client key, server key, client salt, server salt. */
    size_t kl = keys.key_len, sl = keys.salt_len;
    uint8_t km[2 * (HK_SRTP_KEY_LEN + HK_SRTP_CM_SALT_LEN)];
    if (SSL_export_keying_material(p->ssl, km, 2 * (kl + sl), "EXTRACTOR-dtls_srtp", 19, NULL, 0,
                                   0) != 1)
        return -1;
    memcpy(keys.local_key, km, kl);
    memcpy(keys.local_key + kl, km + 2 * kl, sl);
    memcpy(keys.remote_key, km + kl, kl);
    memcpy(keys.remote_key + kl, km + 2 * kl + sl, sl);
    p->srtp = hk_srtp_create(&keys);
    hk_srtp_keys_wipe(&keys);
    OPENSSL_cleanse(km, sizeof km);
    return p->srtp ? 0 : -1;
}

static void set_ready(peer_t *p)
{
    uint64_t t = now_us();
    p->state = P_READY;
    p->t_ready = t;
    /* Stagger the publishers' frame clocks. */
    uint32_t r;
    RAND_bytes((uint8_t *)&r, sizeof r);
    p->next_video = t + r % (1000000u / (unsigned)opt.fps);
    p->next_audio = t + (r >> 8) % 20000u;
}

static void dtls_step(peer_t *p)
{
    int rc = SSL_do_handshake(p->ssl);
    dtls_flush(p);
    if (rc == 1) {
        if (dtls_finish(p) < 0) {
            fail_peer(p, "DTLS finished without usable keys or the fingerprint differs");
            return;
        }
        set_ready(p);
        return;
    }
    int err = SSL_get_error(p->ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        char why[200];
        snprintf(why, sizeof why, "DTLS handshake: %s",
                 ERR_reason_error_string(ERR_peek_last_error())
                     ? ERR_reason_error_string(ERR_get_error())
                     : "failed");
        fail_peer(p, why);
    }
}

/* Retransmission timer of our DTLS flights (RFC 6347 §4.2.4.1): 50 ms first, doubled up
 * to 2 s, like libwebrtc with a small ICE RTT (OpenSSL's own first timeout is 1 s). A
 * server that drops our first ClientHello (Janus does until its ICE side is ready)
 * then costs 50 ms, not a second. */
static unsigned int dtls_timer(SSL *ssl, unsigned int previous_us)
{
    (void)ssl;
    if (previous_us == 0)
        return 50000;
    return previous_us >= 1000000 ? 2000000 : previous_us * 2;
}

static int dtls_start(peer_t *p)
{
    p->ssl = SSL_new(dtls_ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    if (!p->ssl || !p->rbio || !p->wbio)
        return -1;
    BIO_set_mem_eof_return(p->rbio, -1);
    BIO_set_mem_eof_return(p->wbio, -1);
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    SSL_set_options(p->ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(p->ssl, 1200);
    DTLS_set_timer_cb(p->ssl, dtls_timer);
    SSL_set_connect_state(p->ssl);
    p->state = P_DTLS;
    dtls_step(p);
    return 0;
}

/* ---- SDP: read the server's offer, write our answer --------------------------------- */

typedef struct {
    hk_media_kind_t kind;
    bool rejected;
    char mid[HK_SDP_MID_LEN];
    hk_direction_t dir; /* as the server wrote it */
} offer_section_t;

static offer_section_t sections[HK_SDP_MAX_MEDIA];

static hk_direction_t parse_dir(const char *line)
{
    if (!strcmp(line, "a=sendonly"))
        return HK_DIR_SENDONLY;
    if (!strcmp(line, "a=recvonly"))
        return HK_DIR_RECVONLY;
    if (!strcmp(line, "a=sendrecv"))
        return HK_DIR_SENDRECV;
    return HK_DIR_INACTIVE;
}

/* Copies src into dst[size], cut to fit. */
static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reads the sections, ICE credentials, fingerprint and first host candidate of an offer
 * (copied line by line; lines over 1023 bytes are cut). Returns the number of sections,
 * or -1 when the offer is unusable. */
static int parse_offer(peer_t *p, const char *sdp, bool initial)
{
    int n = -1;
    bool have_candidate = false;
    const char *s = sdp;
    while (*s) {
        const char *e = strpbrk(s, "\r\n");
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char line[1024];
        size_t cl = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, s, cl);
        line[cl] = '\0';
        s += len;
        while (*s == '\r' || *s == '\n')
            s++;
        if (!strncmp(line, "m=", 2)) {
            if (++n >= HK_SDP_MAX_MEDIA)
                return -1;
            offer_section_t *m = &sections[n];
            memset(m, 0, sizeof *m);
            m->kind = !strncmp(line, "m=video", 7) ? HK_MEDIA_VIDEO : HK_MEDIA_AUDIO;
            m->rejected = strstr(line, " 0 UDP") != NULL;
        } else if (n >= 0 && !strncmp(line, "a=mid:", 6)) {
            copy_str(sections[n].mid, sizeof sections[n].mid, line + 6);
        } else if (n >= 0 && (!strcmp(line, "a=sendonly") || !strcmp(line, "a=recvonly") ||
                              !strcmp(line, "a=sendrecv") || !strcmp(line, "a=inactive"))) {
            sections[n].dir = parse_dir(line);
        } else if (initial && !strncmp(line, "a=ice-ufrag:", 12) && !p->srv_ufrag[0]) {
            copy_str(p->srv_ufrag, sizeof p->srv_ufrag, line + 12);
        } else if (initial && !strncmp(line, "a=ice-pwd:", 10) && !p->srv_pwd[0]) {
            copy_str(p->srv_pwd, sizeof p->srv_pwd, line + 10);
        } else if (initial && !strncmp(line, "a=fingerprint:sha-256 ", 22) && !p->have_fp) {
            const char *h = line + 22;
            int i = 0;
            for (; i < 32 && hk_hex_value(h[0]) >= 0 && hk_hex_value(h[1]) >= 0; i++, h += 3) {
                p->srv_fp[i] = (uint8_t)(hk_hex_value(h[0]) << 4 | hk_hex_value(h[1]));
                if (h[2] != ':')
                    break;
            }
            p->have_fp = i >= 31;
        } else if (initial && !have_candidate && !strncmp(line, "a=candidate:", 12)) {
            /* a=candidate:foundation component transport priority address port typ host
             * (ICE-TCP, RFC 6544 §4.5: ... tcp ... typ host tcptype passive) */
            char addr[64], transport[16];
            unsigned comp, port;
            unsigned long prio;
            char found[64];
            bool tcp = use_tcp();
            if (sscanf(line + 12, "%63s %u %15s %lu %63s %u", found, &comp, transport, &prio, addr,
                       &port) == 6 &&
                strcasecmp(transport, tcp ? "tcp" : "udp") == 0 &&
                (!tcp || strstr(line, " tcptype passive")) && port > 0 && port < 65536) {
                struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
                if (inet_pton(AF_INET, addr, &a.sin_addr) == 1) {
                    if (tcp) {
                        p->tcp_addr = a; /* connected once the answer is out */
                        have_candidate = true;
                    } else if (connect(p->udp, (struct sockaddr *)&a, sizeof a) == 0) {
                        have_candidate = true;
                    }
                }
            }
        }
    }
    if (initial && use_tcp() && opt.have_tcp_target) {
        p->tcp_addr = opt.tcp_target;
        have_candidate = true;
    }
    if (initial && (!have_candidate || !p->srv_ufrag[0] || !p->srv_pwd[0]))
        return -1;
    return n + 1;
}

static bool receives(const peer_t *p)
{
    return p->role != ROLE_PUB;
}

/* Writes our answer to the n parsed sections into scratch. Our own sending sections are
 * the ones the server wrote recvonly. */
static const char *build_answer(peer_t *p, int n)
{
    char fp[128];
    snprintf(fp, sizeof fp, "%s", cert.fingerprint);
    size_t o = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(scratch + o, sizeof scratch - o, __VA_ARGS__);                           \
        if (w_ > 0)                                                                                \
            o += (size_t)w_ < sizeof scratch - o ? (size_t)w_ : sizeof scratch - o - 1;            \
    } while (0)
    OUT("v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE", p->idx + 1000);
    for (int i = 0; i < n; i++)
        if (!sections[i].rejected)
            OUT(" %s", sections[i].mid);
    OUT("\r\na=msid-semantic: WMS *\r\n");
    p->send_audio = p->send_video = false;
    for (int i = 0; i < n; i++) {
        offer_section_t *m = &sections[i];
        bool video = m->kind == HK_MEDIA_VIDEO;
        OUT("m=%s %d UDP/TLS/RTP/SAVPF %s\r\nc=IN IP4 0.0.0.0\r\na=mid:%s\r\n",
            video ? "video" : "audio", m->rejected ? 0 : 9, video ? "96 97" : "111", m->mid);
        if (m->rejected) {
            OUT("a=inactive\r\n");
            continue;
        }
        OUT("a=ice-ufrag:ld%04x\r\na=ice-pwd:loadgenloadgenloadgen%04x\r\n"
            "a=fingerprint:%s\r\na=setup:active\r\na=rtcp-mux\r\n",
            p->idx & 0xffff, p->idx & 0xffff, fp);
        if (opt.mode != MODE_JANUS) /* Janus offers its own extension ids */
            OUT("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
                "a=extmap:3 "
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n");
        if (video)
            OUT("a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 nack pli\r\n"
                "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n");
        else
            OUT("a=rtpmap:111 opus/48000/2\r\n");
        bool we_send = p->role != ROLE_SUB && m->dir == HK_DIR_RECVONLY &&
                       (video ? opt.video && !p->send_video : opt.audio && !p->send_audio);
        if (we_send) {
            OUT("a=sendonly\r\na=msid:ld%d %s-track\r\n", p->idx, video ? "video" : "audio");
            if (video && opt.simulcast) {
                /* Three encodings whose SSRCs the server learns from the rid extension
                 * (RFC 8853), each with a dependency descriptor. */
                p->send_video = true;
                snprintf(p->mid_video, sizeof p->mid_video, "%s", m->mid);
                OUT("a=extmap:%d https://aomediacodec.github.io/av1-rtp-spec/"
                    "#dependency-descriptor-rtp-header-extension\r\n"
                    "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
                    "a=rid:r0 send\r\na=rid:r1 send\r\na=rid:r2 send\r\n"
                    "a=simulcast:send r0;r1;r2\r\n",
                    HK_EXT_DEPENDENCY_DESCRIPTOR, HK_EXT_RID);
            } else if (video) {
                p->send_video = true;
                snprintf(p->mid_video, sizeof p->mid_video, "%s", m->mid);
                OUT("a=ssrc-group:FID %u %u\r\na=ssrc:%u cname:ld%d\r\na=ssrc:%u cname:ld%d\r\n",
                    p->ssrc_video, p->ssrc_rtx, p->ssrc_video, p->idx, p->ssrc_rtx, p->idx);
            } else {
                p->send_audio = true;
                snprintf(p->mid_audio, sizeof p->mid_audio, "%s", m->mid);
                OUT("a=ssrc:%u cname:ld%d\r\n", p->ssrc_audio, p->idx);
            }
        } else if (receives(p) && m->dir == HK_DIR_SENDONLY) {
            OUT("a=recvonly\r\n");
        } else {
            OUT("a=inactive\r\n");
        }
    }
#undef OUT
    return scratch;
}

/* ---- signaling ------------------------------------------------------------------------ */

static void ws_send_json(peer_t *p, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text || hk_ws_send_text(&p->ws, text, strlen(text)) < 0)
        fail_peer(p, "WebSocket send failed");
    free(text);
}

static void janus_on_message(peer_t *p, const char *text, size_t len);
static int tcp_open(peer_t *p);

static void on_ws_message(void *arg, char *text, size_t len)
{
    peer_t *p = arg;
    if (opt.mode == MODE_JANUS) {
        janus_on_message(p, text, len);
        return;
    }
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!type) {
        json_decref(msg);
        return;
    }
    if (!strcmp(type, "ping")) {
        ws_send_json(p, json_pack("{s:s}", "type", "pong"));
    } else if (!strcmp(type, "offer") || !strcmp(type, "re-offer")) {
        bool initial = type[0] == 'o';
        const char *sdp = json_string_value(json_object_get(msg, "sdp"));
        const char *cid = json_string_value(json_object_get(msg, "connection_id"));
        if (cid)
            snprintf(p->connection_id, sizeof p->connection_id, "%s", cid);
        int n = sdp ? parse_offer(p, sdp, initial) : -1;
        if (n <= 0) {
            fail_peer(p, "unusable offer");
        } else {
            const char *answer = build_answer(p, n);
            if (getenv("HISOKA_LOAD_DEBUG_SDP"))
                fprintf(stderr, "--- peer %d %s:\n%s--- answer:\n%s", p->idx, type, sdp, answer);
            ws_send_json(
                p, json_pack("{s:s,s:s}", "type", initial ? "answer" : "re-answer", "sdp", answer));
            if (initial && p->state == P_WS && use_tcp() && tcp_open(p) < 0) {
                fail_peer(p, "ICE-TCP connect");
            } else if (initial && p->state == P_WS) {
                p->state = P_ICE;
                p->next_ice = now_us();
            }
        }
    }
    json_decref(msg);
}

static void ws_update_events(peer_t *p)
{
    if (p->ws.fd < 0)
        return;
    bool want = hk_ws_wants_write(&p->ws);
    if (want == p->ws_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)p->idx << 1};
    epoll_ctl(ep, EPOLL_CTL_MOD, p->ws.fd, &ev);
    p->ws_out = want;
}

static void send_connect(peer_t *p)
{
    const char *role = p->role == ROLE_PUB   ? "sendonly"
                       : p->role == ROLE_SUB ? "recvonly"
                                             : "sendrecv";
    char channel[96];
    snprintf(channel, sizeof channel, "%s-%d", opt.channel_prefix, p->channel);
    json_t *video = opt.video ? json_pack("{s:s}", "codec_type", "VP8") : json_false();
    json_t *msg = json_pack("{s:s,s:s,s:s,s:s,s:b,s:o,s:b,s:b}", "type", "connect", "role", role,
                            "channel_id", channel, "sora_client", "hisoka-load", "audio", opt.audio,
                            "video", video, "multistream", 1, "e2ee", opt.e2ee);
    if (msg && opt.simulcast && p->role != ROLE_SUB)
        json_object_set_new(msg, "simulcast", json_true());
    ws_send_json(p, msg);
}

/* ---- signaling with Janus (--mode janus, janus.h) ------------------------------------- */

/* Sends one Janus API request for p; returns its transaction (0 after a failure). */
static uint64_t janus_send(peer_t *p, hk_janus_request_t *r)
{
    r->transaction = ++janus_tx;
    r->session_id = p->j_session;
    r->handle_id = p->j_handle;
    r->room = (uint64_t)opt.janus_room + (uint64_t)p->channel;
    int n = hk_janus_write_request(r, janus_out, sizeof janus_out);
    if (n < 0 || hk_ws_send_text(&p->ws, janus_out, (size_t)n) < 0) {
        fail_peer(p, "Janus request could not be written or sent");
        return 0;
    }
    ws_update_events(p);
    return r->transaction;
}

static uint64_t janus_feed_id(const peer_t *publisher)
{
    return (uint64_t)publisher->idx + 1;
}

/* Subscriber: subscribes to the publishers of its channel that Janus has accepted and
 * that it does not receive yet (not its own half). join the first time, subscribe later
 * (Janus answers with an offer either way). */
static void janus_subscribe_more(peer_t *p)
{
    if (p->j_step != J_FEEDS || p->j_seen_gen == janus_published_gen)
        return;
    p->j_seen_gen = janus_published_gen;
    uint64_t feeds[HK_JANUS_MAX_FEEDS];
    size_t n = 0;
    for (int i = 0; i < n_peers && p->n_feeds + (int)n < HK_JANUS_MAX_FEEDS; i++) {
        peer_t *q = &peers[i];
        if (q->role != ROLE_PUB || !q->j_published || q->channel != p->channel || i == p->pair)
            continue;
        bool have = false;
        for (int k = 0; k < p->n_feeds && !have; k++)
            have = p->feeds[k] == i;
        if (!have) {
            p->feeds[p->n_feeds + (int)n] = i;
            feeds[n++] = janus_feed_id(q);
        }
    }
    if (n == 0)
        return;
    hk_janus_request_t r = {.kind = p->j_joined ? HK_JANUS_SUBSCRIBE : HK_JANUS_JOIN_SUBSCRIBER,
                            .feeds = feeds,
                            .n_feeds = n};
    p->n_feeds += (int)n;
    p->j_joined = true;
    p->j_step = J_JSEP;
    p->j_wait_tx = janus_send(p, &r);
}

static void janus_attached(peer_t *p)
{
    if (p->role == ROLE_SUB) {
        p->j_step = J_FEEDS;
        p->j_seen_gen = janus_published_gen - 1;
        janus_subscribe_more(p);
        return;
    }
    char ufrag[16], pwd[40], cname[16];
    snprintf(ufrag, sizeof ufrag, "ld%04x", p->idx & 0xffff);
    snprintf(pwd, sizeof pwd, "loadgenloadgenloadgen%04x", p->idx & 0xffff);
    snprintf(cname, sizeof cname, "ld%d", p->idx);
    hk_janus_offer_t o = {.session_id = (unsigned)p->idx + 1000,
                          .ice_ufrag = ufrag,
                          .ice_pwd = pwd,
                          .fingerprint = cert.fingerprint,
                          .audio = opt.audio,
                          .video = opt.video,
                          .ssrc_audio = p->ssrc_audio,
                          .ssrc_video = p->ssrc_video,
                          .ssrc_rtx = p->ssrc_rtx,
                          .cname = cname,
                          .simulcast = opt.simulcast};
    if (hk_janus_write_offer(&o, scratch, sizeof scratch) < 0) {
        fail_peer(p, "offer does not fit");
        return;
    }
    p->send_audio = opt.audio;
    p->send_video = opt.video;
    snprintf(p->mid_audio, sizeof p->mid_audio, "0");
    snprintf(p->mid_video, sizeof p->mid_video, "1");
    char display[32];
    snprintf(display, sizeof display, "ld%d", p->idx);
    hk_janus_request_t r = {.kind = HK_JANUS_JOIN_PUBLISHER,
                            .publisher_id = janus_feed_id(p),
                            .display = display,
                            .jsep_type = "offer",
                            .sdp = scratch,
                            .e2ee = opt.e2ee};
    if (getenv("HISOKA_LOAD_DEBUG_SDP"))
        fprintf(stderr, "--- peer %d offer:\n%s", p->idx, scratch);
    p->j_step = J_JSEP;
    p->j_wait_tx = janus_send(p, &r);
    /* no candidates of ours to trickle: Janus (ICE-lite) learns our address from our checks */
    hk_janus_request_t done = {.kind = HK_JANUS_TRICKLE_DONE};
    if (p->state != P_FAILED)
        janus_send(p, &done);
}

/* A capped subscriber asks for simulcast substream `substream` of every video stream of
 * the offer just parsed (n sections): Janus has no downlink estimate, so this is how a
 * Janus application fits a slow receiver (configure; Janus answers with an event and
 * switches at the substream's next key frame, asking the publisher for one). */
static void janus_configure_substream(peer_t *p, int n, int substream)
{
    const char *mids[HK_JANUS_MAX_FEEDS];
    size_t n_mids = 0;
    for (int i = 0; i < n && n_mids < HK_JANUS_MAX_FEEDS; i++)
        if (sections[i].kind == HK_MEDIA_VIDEO && !sections[i].rejected)
            mids[n_mids++] = sections[i].mid;
    if (n_mids == 0)
        return;
    hk_janus_request_t r = {
        .kind = HK_JANUS_CONFIGURE, .mids = mids, .n_mids = n_mids, .substream = substream};
    janus_send(p, &r);
}

/* A jsep from Janus: the answer to our publisher offer, or a subscriber (re-)offer that
 * we answer with start. */
static void janus_on_jsep(peer_t *p, const hk_janus_event_t *ev)
{
    bool initial = p->state == P_WS;
    bool offer = !strcmp(ev->jsep_type, "offer");
    if (offer != (p->role == ROLE_SUB)) {
        fail_peer(p, "unexpected jsep type from Janus");
        return;
    }
    int n = parse_offer(p, ev->sdp, initial);
    if (getenv("HISOKA_LOAD_DEBUG_SDP"))
        fprintf(stderr, "--- peer %d janus %s:\n%s", p->idx, ev->jsep_type, ev->sdp);
    if (n <= 0) {
        fail_peer(p, offer ? "unusable offer from Janus" : "unusable answer from Janus");
        return;
    }
    if (offer) {
        const char *answer = build_answer(p, n);
        if (getenv("HISOKA_LOAD_DEBUG_SDP"))
            fprintf(stderr, "--- peer %d answer:\n%s", p->idx, answer);
        hk_janus_request_t r = {.kind = HK_JANUS_START, .jsep_type = "answer", .sdp = answer};
        p->j_step = J_START;
        p->j_wait_tx = janus_send(p, &r);
        if (opt.simulcast && p->capped && p->state != P_FAILED)
            janus_configure_substream(p, n, 0);
    } else {
        p->j_step = J_IDLE; /* the feed exists for subscribers after webrtcup */
        p->j_wait_tx = 0;
    }
    if (initial && p->state == P_WS) {
        p->state = P_ICE;
        p->next_ice = now_us();
    }
}

static void janus_on_message(peer_t *p, const char *text, size_t len)
{
    hk_janus_event_t ev;
    const char *err = NULL;
    if (hk_janus_parse_event(text, len, &ev, &err) != 0)
        return;
    bool ours = ev.transaction && ev.transaction == p->j_wait_tx;
    char why[240];
    switch (ev.kind) {
    case HK_JANUS_EV_ERROR:
        snprintf(why, sizeof why, "Janus error %d: %s", ev.error_code, ev.reason);
        if (ours || p->state != P_READY)
            fail_peer(p, why);
        break;
    case HK_JANUS_EV_HANGUP:
        snprintf(why, sizeof why, "Janus hangup: %s", ev.reason);
        if (p->state == P_READY) {
            st.ws_closed++;
            fprintf(stderr, "hisoka-load: peer %d: %s\n", p->idx, why);
        } else {
            fail_peer(p, why);
        }
        break;
    case HK_JANUS_EV_WEBRTCUP:
        /* Janus accepts subscriptions to a publisher once its PeerConnection is up */
        if (p->role == ROLE_PUB && !p->j_published) {
            p->j_published = true;
            janus_published_gen++;
        }
        break;
    case HK_JANUS_EV_SUCCESS:
        if (!ours || !ev.id)
            break;
        if (p->j_step == J_CREATE) {
            p->j_session = ev.id;
            p->j_next_keepalive = now_us() + HK_JANUS_KEEPALIVE_US;
            p->j_step = J_ATTACH;
            hk_janus_request_t r = {.kind = HK_JANUS_ATTACH};
            p->j_wait_tx = janus_send(p, &r);
        } else if (p->j_step == J_ATTACH) {
            p->j_handle = ev.id;
            janus_attached(p);
        }
        break;
    case HK_JANUS_EV_EVENT:
        if (ev.error_code) {
            snprintf(why, sizeof why, "VideoRoom error %d: %s", ev.error_code, ev.reason);
            fail_peer(p, why);
        } else if (ev.jsep_type[0] && ev.sdp) {
            if (p->j_step == J_JSEP)
                janus_on_jsep(p, &ev);
        } else if (ours && p->j_step == J_START) {
            p->j_step = J_FEEDS; /* started: more feeds may be added now */
            p->j_wait_tx = 0;
        }
        break;
    default:
        break;
    }
    hk_janus_event_clear(&ev);
}

static void janus_on_open(peer_t *p)
{
    p->j_step = J_CREATE;
    hk_janus_request_t r = {.kind = HK_JANUS_CREATE};
    p->j_wait_tx = janus_send(p, &r);
}

static void janus_tick(peer_t *p, uint64_t t)
{
    if (!p->j_session || p->ws.fd < 0 || p->ws.state != HK_WS_OPEN)
        return;
    if (t >= p->j_next_keepalive) {
        p->j_next_keepalive = t + HK_JANUS_KEEPALIVE_US;
        hk_janus_request_t r = {.kind = HK_JANUS_KEEPALIVE};
        janus_send(p, &r);
    }
    if (p->role == ROLE_SUB)
        janus_subscribe_more(p);
}

/* ---- peers ---------------------------------------------------------------------------- */

static int open_udp(peer_t *p)
{
    p->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->udp < 0)
        return -1;
    int sz = 1 << 20;
    setsockopt(p->udp, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(p->udp, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    /* kernel receive timestamps (CLOCK_REALTIME, taken when the datagram enters the
     * loopback receive path) for the added latency */
    int on = 1;
    if (receives(p) && setsockopt(p->udp, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = opt.local_ip};
    if (bind(p->udp, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)p->idx << 1 | 1};
    return epoll_ctl(ep, EPOLL_CTL_ADD, p->udp, &ev);
}

static void send_hello(peer_t *p)
{
    uint8_t h[HK_LOAD_HELLO_LEN];
    memcpy(h, "HKRAW1", 6);
    h[6] = p->role == ROLE_PUB ? 'P' : p->role == ROLE_SUB ? 'S' : 'M';
    uint32_t v[2] = {htonl((uint32_t)p->channel), htonl((uint32_t)p->idx + 1)};
    memcpy(h + 7, v, 8);
    if (send(p->udp, h, sizeof h, 0) < 0)
        st.send_errors++;
}

static void start_peer(peer_t *p)
{
    p->t_start = now_us();
    /* ICE-TCP: the connection is opened once the offer has named the candidate */
    if (!use_tcp() && open_udp(p) < 0) {
        fail_peer(p, "UDP socket");
        return;
    }
    if (opt.mode == MODE_RAW) {
        if (connect(p->udp, (struct sockaddr *)&raw_addr, sizeof raw_addr) < 0) {
            fail_peer(p, "connect to the relay");
            return;
        }
        p->send_audio = p->role != ROLE_SUB && opt.audio;
        p->send_video = p->role != ROLE_SUB && opt.video;
        p->state = P_HELLO;
        p->next_ice = p->t_start;
        return;
    }
    if (hk_ws_connect(&p->ws, &signaling_addr, url_host, url_path,
                      opt.mode == MODE_JANUS ? HK_JANUS_SUBPROTOCOL : NULL) < 0) {
        fail_peer(p, "WebSocket connect");
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)p->idx << 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, p->ws.fd, &ev);
    p->ws_out = true;
    p->state = P_WS;
}

/* ---- media: send ---------------------------------------------------------------------- */

/* RTP header (RFC 3550 §5.1) with a one-byte-form extension block (RFC 8285 §4.2):
 * mid (id 1) and transport-wide sequence number (id 3), padded to 32 bits. */
/* The same with, for a simulcast layer, its rid (NULL: none) and a dependency descriptor
 * (RFC: AV1 RTP spec A.2) of dd_len bytes (0: none). */
static size_t write_rtp_header_ext(uint8_t *b, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
                                   uint32_t ssrc, const char *mid, uint16_t twcc, const char *rid,
                                   const uint8_t *dd, size_t dd_len);

static size_t write_rtp_header(uint8_t *b, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
                               uint32_t ssrc, const char *mid, uint16_t twcc)
{
    return write_rtp_header_ext(b, pt, marker, seq, ts, ssrc, mid, twcc, NULL, NULL, 0);
}

static size_t write_rtp_header_ext(uint8_t *b, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
                                   uint32_t ssrc, const char *mid, uint16_t twcc, const char *rid,
                                   const uint8_t *dd, size_t dd_len)
{
    size_t mid_len = strlen(mid);
    b[0] = 0x90;
    b[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
    hk_wr16(b + 2, seq);
    hk_wr32(b + 4, ts);
    hk_wr32(b + 8, ssrc);
    uint8_t twcc_be[2];
    hk_wr16(twcc_be, twcc);
    size_t e = 16;
    e += hk_rtp_ext_put(b + e, false, HK_EXT_MID, mid, mid_len);
    e += hk_rtp_ext_put(b + e, false, HK_EXT_TRANSPORT_CC, twcc_be, sizeof twcc_be);
    if (rid)
        e += hk_rtp_ext_put(b + e, false, HK_EXT_RID, rid, strlen(rid));
    if (dd_len)
        e += hk_rtp_ext_put(b + e, false, HK_EXT_DEPENDENCY_DESCRIPTOR, dd, dd_len);
    while ((e - 16) % 4)
        b[e++] = 0;
    size_t words = (e - 16) / 4;
    hk_wr16(b + 12, 0xBEDE);
    hk_wr16(b + 14, (uint16_t)words);
    return e;
}

/* A simulcast layer's VP8 payload starts as libwebrtc's does (RFC 7741 §4.2):
 *
 *    0 1 2 3 4 5 6 7
 *   +-+-+-+-+-+-+-+-+
 *   |X|R|N|S|R| PID |  X = 1, S = 1 on the frame's first packet, PID 0
 *   +-+-+-+-+-+-+-+-+
 *   |I|L|T|K| RSV   |  I, L, T
 *   +-+-+-+-+-+-+-+-+
 *   |M| PictureID   |  M = 1: 15 bits, the frame counter
 *   +-+-+-+-+-+-+-+-+
 *   |   PictureID   |
 *   +-+-+-+-+-+-+-+-+
 *   |   TL0PICIDX   |  the frame counter (one temporal layer: every frame is TL0)
 *   +-+-+-+-+-+-+-+-+
 *   |TID|Y| KEYIDX  |  TID 0, Y 1
 *   +-+-+-+-+-+-+-+-+
 *
 * and on the frame's first packet the VP8 payload header follows (§4.3, RFC 6386 §9.1):
 * the 3-byte frame tag (P = 0 on a key frame, version 0, show_frame, first partition
 * size), on a key frame the start code 9d 01 2a and 14-bit width and height, left in
 * clear as E2EE clients leave it (PROTOCOL.md §6). A server reads the P bit there (Janus
 * switches substreams only at key frames it finds so) and rewrites PictureID and
 * TL0PICIDX across switches; the packetizer header follows, so receivers skip all of it
 * (vp8_prefix_len). The layers are 320x180, 640x360 and 1280x720. Returns its length. */
static size_t write_vp8_prefix(uint8_t *b, int layer, uint32_t ctr, bool first, bool key,
                               size_t frame_len)
{
    b[0] = first ? 0x90 : 0x80;
    b[1] = 0xe0;
    b[2] = (uint8_t)(0x80 | ((ctr >> 8) & 0x7f));
    b[3] = (uint8_t)ctr;
    b[4] = (uint8_t)ctr;
    b[5] = 0x20;
    if (!first)
        return 6;
    uint32_t size = frame_len < 0x7ffff ? (uint32_t)frame_len : 0x7ffff;
    uint32_t tag = (key ? 0 : 1) | 1u << 4 | size << 5;
    b[6] = (uint8_t)tag;
    b[7] = (uint8_t)(tag >> 8);
    b[8] = (uint8_t)(tag >> 16);
    if (!key)
        return 9;
    uint16_t width = (uint16_t)(1280 >> (2 - layer)), height = (uint16_t)(720 >> (2 - layer));
    static const uint8_t start_code[3] = {0x9d, 0x01, 0x2a};
    memcpy(b + 9, start_code, 3);
    b[12] = (uint8_t)width;
    b[13] = (uint8_t)(width >> 8);
    b[14] = (uint8_t)height;
    b[15] = (uint8_t)(height >> 8);
    return 16;
}

/* The length of what write_vp8_prefix wrote at the start of payload p[n], read as RFC 7741
 * says (the descriptor's optional bytes, the payload header at the start of partition 0);
 * 0 when it does not fit in n. */
static size_t vp8_prefix_len(const uint8_t *p, size_t n)
{
    if (n < 1)
        return 0;
    size_t off = 1;
    if (p[0] & 0x80) {
        if (n < 2)
            return 0;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) {
            if (off >= n)
                return 0;
            off += (p[off] & 0x80) ? 2 : 1;
        }
        off += ((x & 0x40) ? 1 : 0) + ((x & 0x30) ? 1 : 0);
    }
    if ((p[0] & 0x10) && (p[0] & 0x07) == 0) {
        if (off >= n)
            return 0;
        off += (p[off] & 0x01) ? 3 : 10;
    }
    return off <= n ? off : 0;
}

/* One frame of audio, of video, or (layer >= 0) of one simulcast layer of video (the
 * caller numbers the frame: ctr); layer r<i> has 1/16, 1/4 or all of video_kbps. */
static void send_frame_of(peer_t *p, bool video, int layer, uint32_t ctr)
{
    uint64_t t = now_us();
    size_t frame_len = video ? (size_t)opt.video_kbps * 1000 / 8 / (size_t)opt.fps : 100;
    if (layer >= 0)
        frame_len >>= 2 * (2 - layer);
    if (frame_len < HK_LOAD_SFRAME_HDR + HK_LOAD_PLAIN_HDR + HK_LOAD_TAG)
        frame_len = HK_LOAD_SFRAME_HDR + HK_LOAD_PLAIN_HDR + HK_LOAD_TAG;
    if (frame_len > frame_cap)
        frame_len = frame_cap;
    /* Each layer its own key id (a nonce is never reused), the publisher's in the low bits. */
    uint32_t kid = (uint32_t)p->idx + 1 + (layer > 0 ? (uint32_t)layer << 24 : 0);
    if (hk_load_frame_encrypt(kid, ctr, t, frame_buf, frame_len) < 0)
        return;
    static const char *const rids[3] = {"r0", "r1", "r2"};
    bool key = layer >= 0 && p->key_layer[layer];
    if (key) {
        p->key_layer[layer] = false;
        st.keyframes_sent++;
    }
    size_t count = (frame_len + HK_LOAD_FRAG - 1) / HK_LOAD_FRAG;
    if (count > BATCH)
        count = BATCH;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (size_t i = 0; i < count; i++) {
        uint8_t *b = pkt_buf[i];
        size_t off = i * HK_LOAD_FRAG;
        size_t frag = frame_len - off < HK_LOAD_FRAG ? frame_len - off : HK_LOAD_FRAG;
        size_t h;
        if (layer >= 0) {
            /* DD: start and end of frame, template 0, frame number; a key frame's first
             * packet says a template structure follows (all the server reads of it). */
            uint8_t dd[4] = {(uint8_t)((i == 0 ? 0x80 : 0) | (i + 1 == count ? 0x40 : 0)),
                             (uint8_t)(ctr >> 8), (uint8_t)ctr, 0x80};
            const char *rid = p->rid_left[layer] ? (p->rid_left[layer]--, rids[layer]) : NULL;
            h = write_rtp_header_ext(b, HK_PT_VP8, i + 1 == count, p->seq_layer[layer]++,
                                     ctr * HK_LOAD_VIDEO_TS_STEP, p->ssrc_layer[layer],
                                     p->mid_video[0] ? p->mid_video : "1", p->twcc++, rid, dd,
                                     key && i == 0 ? 4 : 3);
            h += write_vp8_prefix(b + h, layer, ctr, i == 0, key, frame_len);
        } else {
            h = video ? write_rtp_header(b, HK_PT_VP8, i + 1 == count, p->seq_video++,
                                         ctr * HK_LOAD_VIDEO_TS_STEP, p->ssrc_video,
                                         p->mid_video[0] ? p->mid_video : "1", p->twcc++)
                      : write_rtp_header(b, HK_PT_OPUS, false, p->seq_audio++,
                                         ctr * HK_LOAD_AUDIO_TS_STEP, p->ssrc_audio,
                                         p->mid_audio[0] ? p->mid_audio : "0", p->twcc++);
        }
        b[h] = (uint8_t)i;
        b[h + 1] = (uint8_t)count;
        memcpy(b + h + HK_LOAD_PKT_HDR, frame_buf + off, frag);
        size_t len = h + HK_LOAD_PKT_HDR + frag;
        if (hk_srtp_protect_rtp(p->srtp, b, &len, PKT_CAP) != 0) {
            st.srtp_errors++;
            len = 0;
        }
        iov[i].iov_base = b;
        iov[i].iov_len = len;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        st.bytes_sent += len;
    }
    size_t done = 0;
    bool complete; /* every packet of the frame handed to the kernel */
    if (use_tcp()) {
        /* framed into the send queue, then one send for the whole frame */
        for (size_t i = 0; i < count; i++)
            if (tcp_enqueue(p, iov[i].iov_base, iov[i].iov_len))
                done++;
        tcp_flush(p);
        complete = done == count && p->tx_head == p->tx_tail;
    } else {
        for (int tries = 0; done < count && tries < 4; tries++) {
            int n = sendmmsg(p->udp, msgs + done, (unsigned)(count - done), 0);
            if (n <= 0) {
                st.send_errors++;
                break;
            }
            done += (size_t)n;
        }
        complete = done == count;
    }
    if (p->sent && layer <= 0) {
        sent_t *e = &p->sent[(video ? SENT_RING : 0) + ctr % SENT_RING];
        e->ctr = ctr;
        e->ns = complete ? real_ns() : 0;
    }
    st.packets_sent += done;
    st.frames_sent++;
}

static void send_frame(peer_t *p, bool video)
{
    if (!video) {
        send_frame_of(p, false, -1, p->ctr_audio++);
        return;
    }
    uint32_t ctr = p->ctr_video++;
    if (!opt.simulcast) {
        send_frame_of(p, true, -1, ctr);
        return;
    }
    for (int layer = 0; layer < 3; layer++)
        send_frame_of(p, true, layer, ctr);
}

static void pace_publisher(peer_t *p, uint64_t t)
{
    uint64_t vstep = 1000000u / (unsigned)opt.fps;
    if (p->send_video && p->next_video <= t) {
        send_frame(p, true);
        p->next_video += vstep;
        if (p->next_video + 100000u < t) {
            st.pacing_skips++;
            p->next_video = t + vstep;
        }
    }
    if (p->send_audio && p->next_audio <= t) {
        send_frame(p, false);
        p->next_audio += 20000u;
        if (p->next_audio + 100000u < t) {
            st.pacing_skips++;
            p->next_audio = t + 20000u;
        }
    }
}

/* ---- media: receive ------------------------------------------------------------------- */

static stream_t *stream_for(peer_t *p, uint32_t ssrc)
{
    for (int i = 0; i < p->n_streams; i++)
        if (p->streams[i].ssrc == ssrc)
            return &p->streams[i];
    if (p->n_streams == MAX_STREAMS)
        return NULL;
    stream_t *s = &p->streams[p->n_streams++];
    memset(s, 0, sizeof *s);
    s->ssrc = ssrc;
    return s;
}

static void record_latency(uint64_t us)
{
    if (st.n_latency < MAX_SAMPLES)
        st.latency[st.n_latency++] = us;
}

/* Added latency of a verified frame: the kernel receive timestamp of its last-arriving
 * packet minus the publisher's send-complete time of that frame. The frame's identity
 * (publisher id, counter) comes from the verified frame itself, so it holds when the
 * server rewrites SSRCs, sequence numbers and timestamps (Janus). */
static void record_added(const stream_t *s, bool video)
{
    const uint8_t *f = s->buf; /* SFrame-like header: 0xBB, KID, CTR (load.h) */
    uint32_t kid = (uint32_t)f[1] << 24 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 8 | f[4];
    uint32_t ctr = (uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8];
    kid &= 0xffffff; /* a simulcast layer's key id has the layer above */
    const peer_t *pub = kid >= 1 && kid <= (uint32_t)n_peers ? &peers[kid - 1] : NULL;
    const sent_t *e =
        pub && pub->sent ? &pub->sent[(video ? SENT_RING : 0) + ctr % SENT_RING] : NULL;
    if (!e || e->ctr != ctr || !e->ns || !s->rx_last_ns) {
        st.added_missing++;
        return;
    }
    uint64_t d = 0;
    if (s->rx_last_ns >= e->ns)
        d = s->rx_last_ns - e->ns;
    else
        st.added_negative++;
    if (st.n_added < MAX_SAMPLES)
        st.added[st.n_added++] = d;
}

/* Unprotects one packet of a sampled frame and adds its fragment; verifies the frame
 * once every fragment is there. rx_ns: the packet's kernel receive timestamp (0: none). */
static void sample_packet(peer_t *p, stream_t *s, uint8_t *buf, size_t len, uint32_t ctr,
                          bool video, uint64_t rx_ns)
{
    if (hk_srtp_unprotect_rtp(p->srtp, buf, &len) != 0) {
        st.srtp_errors++;
        return;
    }
    hk_rtp_header_t h;
    size_t skip = 0; /* a simulcast layer's VP8 descriptor and payload header */
    if (hk_rtp_parse(buf, len, &h, NULL) != 0 ||
        (video && opt.simulcast &&
         !(skip = vp8_prefix_len(buf + h.payload_offset, h.payload_len))) ||
        h.payload_len < skip + HK_LOAD_PKT_HDR + 1) {
        st.integrity_failures++;
        return;
    }
    const uint8_t *pl = buf + h.payload_offset + skip;
    uint8_t idx = pl[0], count = pl[1];
    size_t frag = h.payload_len - skip - HK_LOAD_PKT_HDR;
    if (count == 0 || idx >= count || frag > HK_LOAD_FRAG ||
        (size_t)count * HK_LOAD_FRAG > frame_cap + HK_LOAD_FRAG) {
        st.integrity_failures++;
        return;
    }
    if (!s->buf && !(s->buf = malloc(frame_cap + HK_LOAD_FRAG)))
        return;
    if (!s->sampling || s->sample_ctr != ctr) {
        if (s->sampling)
            st.samples_incomplete++;
        s->sampling = true;
        s->sample_ctr = ctr;
        s->count = count;
        s->got = 0;
        s->frame_len = 0;
        s->rx_last_ns = 0;
        memset(s->bitmap, 0, sizeof s->bitmap);
    }
    if (count != s->count || (s->bitmap[idx >> 6] >> (idx & 63) & 1))
        return;
    s->bitmap[idx >> 6] |= 1ull << (idx & 63);
    s->got++;
    if (!rx_ns)
        s->rx_last_ns = 0; /* one packet without a timestamp: no added latency */
    else if (s->got == 1 || (s->rx_last_ns && rx_ns > s->rx_last_ns))
        s->rx_last_ns = rx_ns;
    memcpy(s->buf + (size_t)idx * HK_LOAD_FRAG, pl + HK_LOAD_PKT_HDR, frag);
    if (idx + 1 == count)
        s->frame_len = (size_t)idx * HK_LOAD_FRAG + frag;
    if (s->got < count)
        return;
    s->sampling = false;
    uint64_t sent;
    if (hk_load_frame_verify(s->buf, s->frame_len, &sent) != 0) {
        st.integrity_failures++;
        fprintf(stderr, "hisoka-load: ALTERED frame: peer %d ssrc %u ctr %u\n", p->idx, s->ssrc,
                ctr);
        return;
    }
    st.frames_verified++;
    /* latencies: frames sent during the media window (not the first key frames) */
    if (!media_start || sent < media_start || sent >= media_end)
        return;
    uint64_t t = now_us();
    record_latency(t > sent ? t - sent : 0);
    record_added(s, video);
    /* which layer it was, whatever SSRC the server sent it with: the key id's top byte */
    if (video && opt.simulcast && s->buf[1] < 3)
        st.layer_frames[p->capped][s->buf[1]]++;
}

/* Protects and sends the RTCP packet built in b[PKT_CAP] (len: the builder's result, <= 0:
 * it failed); true when it went out. */
static bool send_rtcp(peer_t *p, uint8_t *b, int built)
{
    size_t len = built > 0 ? (size_t)built : 0;
    if (len == 0 || hk_srtp_protect_rtcp(p->srtp, b, &len, PKT_CAP) != 0) {
        st.srtp_errors++;
        return false;
    }
    if (media_send(p, b, len) < 0) {
        st.send_errors++;
        return false;
    }
    return true;
}

/* A simulcast publisher reads the server's PLIs: the named layer's next frame is a key
 * frame. */
static void on_publisher_rtcp(peer_t *p, uint8_t *buf, size_t len)
{
    if (!opt.simulcast || !p->send_video || !p->srtp ||
        hk_srtp_unprotect_rtcp(p->srtp, buf, &len) != 0)
        return;
    size_t off = 0;
    hk_rtcp_packet_t pkt;
    while (hk_rtcp_next(buf, len, &off, &pkt, NULL) == 1) {
        hk_rtcp_fb_t fb;
        if (pkt.type != HK_RTCP_PSFB || hk_rtcp_parse_fb(&pkt, &fb, NULL) != 0 ||
            fb.fmt != HK_RTCP_FMT_PLI)
            continue;
        for (int l = 0; l < 3; l++) {
            if (fb.media_ssrc == p->ssrc_layer[l]) {
                p->key_layer[l] = true;
                st.plis_received++;
            }
        }
    }
}

/* A receiver records the transport-wide sequence number of what arrived (--twcc). */
static void record_twcc(peer_t *p, const uint8_t *buf, size_t len, uint64_t t)
{
    hk_rtp_header_t h;
    size_t off, elen;
    if (hk_rtp_parse(buf, len, &h, NULL) != 0 ||
        hk_rtp_ext_find(buf, &h, HK_EXT_TRANSPORT_CC, &off, &elen) != 0 || elen != 2)
        return;
    uint16_t seq = hk_rd16(buf + off);
    if (!p->twcc_started) {
        p->twcc_started = true;
        p->twcc_next = seq;
    }
    if ((int16_t)(seq - p->twcc_next) < 0 || p->n_twcc_rx == TWCC_RX_MAX)
        return; /* reported already, or more than a feedback holds */
    p->twcc_rx[p->n_twcc_rx++] = (hk_rtcp_twcc_packet_t){seq, true, 0, (int64_t)t};
}

/* Every 50 ms: a transport-cc feedback for what arrived since the last one, from the
 * first number not yet reported (so losses count), as Chromium sends it. */
static void send_twcc_feedback(peer_t *p, uint64_t t)
{
    if (!p->twcc_rx || t < p->next_twcc || p->state != P_READY || !p->srtp)
        return;
    p->next_twcc = t + 50000;
    if (p->n_twcc_rx == 0)
        return;
    static hk_rtcp_twcc_packet_t list[TWCC_RX_MAX + 1];
    size_t n = hk_rtcp_twcc_report(p->twcc_rx, p->n_twcc_rx, &p->twcc_next, list);
    p->n_twcc_rx = 0;
    uint8_t b[PKT_CAP];
    uint32_t media = p->n_streams ? p->streams[0].ssrc : 0;
    int w = hk_rtcp_build_twcc(b, sizeof b - HK_SRTP_MAX_TRAILER, 0x10ad0000u + (uint32_t)p->idx,
                               media, p->twcc_fb_count++, list, n);
    if (send_rtcp(p, b, w))
        st.twcc_sent++;
}

/* A capped receiver's link (--capped): a token bucket of cap_kbps with 16 KB of burst;
 * what does not fit is dropped before anything reads it. */
static bool over_cap(peer_t *p, size_t len, uint64_t t)
{
    double rate = (double)opt.cap_kbps * 1000.0 / 8.0 / 1e6; /* bytes per microsecond */
    p->cap_tokens += (double)(t - p->cap_last) * rate;
    p->cap_last = t;
    if (p->cap_tokens > CAP_BURST)
        p->cap_tokens = CAP_BURST;
    if (p->cap_tokens < (double)len) {
        st.cap_drops++;
        return true;
    }
    p->cap_tokens -= (double)len;
    return false;
}

static void on_rtp(peer_t *p, uint8_t *buf, size_t len, uint64_t t, uint64_t rx_ns)
{
    if (len < 12) {
        return;
    }
    if (buf[1] >= 192 && buf[1] <= 223) {
        st.rtcp_received++;
        on_publisher_rtcp(p, buf, len);
        return;
    }
    if (!receives(p) || p->state != P_READY)
        return;
    if (p->capped && over_cap(p, len, t))
        return;
    if (p->twcc_rx)
        record_twcc(p, buf, len, t);
    if (media_start && t >= media_start && (!media_end || t < media_end)) {
        if (p->capped)
            st.bytes_capped += len;
        else
            st.bytes_free += len;
    }
    st.packets_received++;
    st.bytes_received += len;
    if (!p->t_first_rtp)
        p->t_first_rtp = t;
    uint8_t pt = buf[1] & 0x7f;
    if (pt != HK_PT_VP8 && pt != HK_PT_OPUS)
        st.rtx_received++; /* probes; retransmissions only for --feedback-storm's NACKs */
    uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
    uint32_t ts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
    uint32_t ssrc =
        (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
    stream_t *s = stream_for(p, ssrc);
    if (!s)
        return;
    /* Extended sequence number (RFC 3550 Appendix A.1, simplified). */
    if (!s->started) {
        s->started = true;
        s->ext_first = s->ext_max = 65536u + seq;
        s->last_seq = seq;
    } else {
        int16_t d = (int16_t)(seq - (uint16_t)s->ext_max);
        uint64_t ext = (uint64_t)((int64_t)s->ext_max + d);
        if (ext > s->ext_max)
            s->ext_max = ext;
        if (ext < s->ext_first)
            return; /* before the first one we saw: not counted */
    }
    s->received++;
    uint32_t step = pt == HK_PT_VP8    ? HK_LOAD_VIDEO_TS_STEP
                    : pt == HK_PT_OPUS ? HK_LOAD_AUDIO_TS_STEP
                                       : 0;
    if (step && opt.sample > 0 && (ts / step) % (uint32_t)opt.sample == 0)
        sample_packet(p, s, buf, len, ts / step, pt == HK_PT_VP8, rx_ns);
}

/* Binding success response (RFC 5389 §7.3.1, RFC 8445 §7.3.1.2) to a check from the
 * server (libnice answers our check with a triggered check of its own, even in ICE-lite
 * mode, and nominates only once that succeeds): XOR-MAPPED-ADDRESS of the server's
 * address (the socket is connected to it), MESSAGE-INTEGRITY keyed with our ice-pwd,
 * FINGERPRINT. The request's own integrity is not checked (test tool). */
static void send_binding_response(peer_t *p, const uint8_t *req, size_t len)
{
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    if (len < 20 || getpeername(use_tcp() ? p->tcp : p->udp, (struct sockaddr *)&from, &fl) < 0)
        return;
    uint8_t msg[128];
    msg[0] = 0x01;
    msg[1] = 0x01;
    memcpy(msg + 4, req + 4, 16); /* magic cookie + transaction id */
    size_t n = 20;
    uint8_t xa[8] = {0, 0x01};
    uint16_t port = ntohs(from.sin_port) ^ 0x2112;
    uint32_t ip = ntohl(from.sin_addr.s_addr) ^ 0x2112a442u;
    xa[2] = (uint8_t)(port >> 8);
    xa[3] = (uint8_t)port;
    xa[4] = (uint8_t)(ip >> 24);
    xa[5] = (uint8_t)(ip >> 16);
    xa[6] = (uint8_t)(ip >> 8);
    xa[7] = (uint8_t)ip;
    n += stun_attr(msg + n, 0x0020, xa, sizeof xa);
    char pwd[40];
    int pl = snprintf(pwd, sizeof pwd, "loadgenloadgenloadgen%04x", p->idx & 0xffff);
    stun_set_len(msg, n - 20 + 24);
    uint8_t mac[20];
    unsigned ml = 0;
    HMAC(EVP_sha1(), pwd, pl, msg, n, mac, &ml);
    n += stun_attr(msg + n, 0x0008, mac, 20);
    stun_set_len(msg, n - 20 + 8);
    uint32_t crc = hk_crc32(msg, n) ^ 0x5354554eu;
    uint8_t fp[4];
    hk_wr32(fp, crc);
    n += stun_attr(msg + n, 0x8028, fp, 4);
    if (media_send(p, msg, n) < 0)
        st.send_errors++;
}

/* DTLS starts once our check succeeded and, with Janus, once we answered its triggered
 * check: libnice (even ICE-lite) drops DTLS until that check of its own succeeded, and
 * OpenSSL would retransmit the lost ClientHello only after 1 s. */
static void maybe_start_dtls(peer_t *p)
{
    if (p->state != P_ICE || !p->ice_ok || (opt.mode == MODE_JANUS && !p->ice_answered))
        return;
    p->next_ice = now_us() + CONSENT_US;
    if (dtls_start(p) < 0)
        fail_peer(p, "DTLS set-up");
}

static void on_stun(peer_t *p, const uint8_t *buf, size_t len)
{
    if (len >= 20 && buf[0] == 0x00 && buf[1] == 0x01) {
        send_binding_response(p, buf, len);
        p->ice_answered = true;
        maybe_start_dtls(p);
        return;
    }
    if (len < 20 || buf[0] != 0x01 || buf[1] != 0x01 || memcmp(buf + 8, p->tid, 12) != 0)
        return;
    p->ice_ok = true;
    maybe_start_dtls(p);
}

/* One datagram from the server (a UDP datagram or an ICE-TCP frame), by its first byte
 * (RFC 7983): RTP/RTCP, STUN, DTLS, or the raw relay's hello acknowledgement. */
static void on_datagram(peer_t *p, uint8_t *b, size_t len, uint64_t t, uint64_t rx_ns)
{
    if (b[0] >= 128 && b[0] <= 191) {
        on_rtp(p, b, len, t, rx_ns);
    } else if (b[0] <= 3) {
        on_stun(p, b, len);
    } else if (b[0] >= 20 && b[0] <= 63) {
        if (p->ssl && p->state == P_DTLS) {
            BIO_write(p->rbio, b, (int)len);
            dtls_step(p);
        }
    } else if (b[0] == 'H' && p->state == P_HELLO && len >= HK_LOAD_ACK_LEN &&
               !memcmp(b, "HKRAWOK", 7)) {
        hk_srtp_keys_t keys;
        hk_load_raw_keys((uint32_t)p->idx + 1, false, &keys);
        p->srtp = hk_srtp_create(&keys);
        hk_srtp_keys_wipe(&keys);
        if (p->srtp)
            set_ready(p);
        else
            fail_peer(p, "SRTP set-up");
    }
}

static void on_udp_readable(peer_t *p)
{
    static uint8_t bufs[BATCH][PKT_CAP];
    static union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl[BATCH];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = PKT_CAP;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = ctl[i].buf;
            msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
        }
        int n = recvmmsg(p->udp, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        uint64_t t = now_us();
        for (int i = 0; i < n; i++)
            if (msgs[i].msg_len > 0)
                on_datagram(p, bufs[i], msgs[i].msg_len, t,
                            (uint64_t)hk_udp_rx_timestamp(&msgs[i].msg_hdr));
        if (n < BATCH)
            return;
    }
}

/* ---- ICE-TCP: connect and receive (--transport tcp) ------------------------------------ */

/* Connects (non-blocking) to the offer's passive tcp candidate, or --tcp-target. What is
 * sent before the connection is up waits in the send queue. */
static int tcp_open(peer_t *p)
{
    p->tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->tcp < 0)
        return -1;
    int on = 1;
    setsockopt(p->tcp, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    /* the kernel's receive timestamp of the latest segment each read returns */
    if (receives(p) && setsockopt(p->tcp, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = opt.local_ip};
    if (bind(p->tcp, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    p->tx_cap = p->role == ROLE_SUB ? TCP_TX_CAP_RECV : TCP_TX_CAP_MEDIA;
    p->tx_head = p->tx_tail = p->rx_len = 0;
    if (!p->tcp_buf && !(p->tcp_buf = malloc(p->tx_cap + TCP_RX_CAP)))
        return -1;
    if (connect(p->tcp, (struct sockaddr *)&p->tcp_addr, sizeof p->tcp_addr) < 0 &&
        errno != EINPROGRESS)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)p->idx << 1 | 1};
    p->tcp_out = true;
    return epoll_ctl(ep, EPOLL_CTL_ADD, p->tcp, &ev);
}

/* Reads what the connection has (at most 16 reads a wake) and hands every whole RFC 4571
 * frame to on_datagram; a partial frame stays at the front of the receive buffer for the
 * next read. Frames of one read share its timestamp (the latest segment's). */
static void on_tcp_readable(peer_t *p)
{
    uint8_t *rx = p->tcp_buf + p->tx_cap;
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    for (int round = 0; round < 16 && p->tcp >= 0; round++) {
        struct iovec iov = {.iov_base = rx + p->rx_len, .iov_len = TCP_RX_CAP - p->rx_len};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctl.buf,
                           .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(p->tcp, &m, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            tcp_lost(p, n == 0 ? "ICE-TCP connection closed by the server" : "ICE-TCP receive");
            return;
        }
        uint64_t t = now_us(), rx_ns = (uint64_t)hk_udp_rx_timestamp(&m);
        p->rx_len += (size_t)n;
        size_t pos = 0;
        /* bounded: every frame takes at least its 2-byte header */
        while (p->tcp >= 0) {
            size_t flen = 0;
            int used = hk_rfc4571_decode(rx + pos, p->rx_len - pos, 65535, &flen);
            if (used <= 0)
                break; /* incomplete: the rest comes with a later read */
            if (flen > 0)
                on_datagram(p, rx + pos + HK_RFC4571_HEADER, flen, t, rx_ns);
            pos += (size_t)used;
        }
        if (p->tcp < 0)
            return;
        if (pos > 0) {
            memmove(rx, rx + pos, p->rx_len - pos);
            p->rx_len -= pos;
        }
        if ((size_t)n < iov.iov_len)
            return; /* the kernel had no more */
    }
}

static void on_tcp_event(peer_t *p, uint32_t events)
{
    if (p->tcp < 0)
        return;
    if (!p->tcp_connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(p->tcp, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
            tcp_lost(p, "ICE-TCP connect failed");
            return;
        }
        p->tcp_connected = true;
    }
    if (events & EPOLLOUT)
        tcp_flush(p);
    if (p->tcp >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        on_tcp_readable(p);
}

/* ---- timers --------------------------------------------------------------------------- */

/* --feedback-storm (docs/threats.md 13): a receiver that floods the server with NACKs for the
 * last 16 packets of every stream it receives and PLIs for each, N packets a second in
 * bursts every 10 ms. The server must answer NACKs from its cache, throttle PLIs and go
 * on forwarding to everyone. */
static void feedback_storm(peer_t *p, uint64_t t)
{
    if (!opt.feedback_storm || p->state != P_READY || !p->srtp || p->n_streams == 0 ||
        t < p->next_storm)
        return;
    p->next_storm = t + 10000;
    int burst = opt.feedback_storm / 100 > 0 ? opt.feedback_storm / 100 : 1;
    for (int i = 0; i < burst; i++) {
        stream_t *s = &p->streams[(size_t)(i / 2) % (size_t)p->n_streams];
        if (!s->started)
            continue;
        uint8_t b[PKT_CAP];
        int n;
        if (i % 2 == 0) {
            uint16_t seqs[16];
            for (int k = 0; k < 16; k++)
                seqs[k] = (uint16_t)(s->ext_max - 16 + (uint64_t)k);
            n = hk_rtcp_build_nack(b, sizeof b - HK_SRTP_MAX_TRAILER,
                                   0x10ad0000u + (uint32_t)p->idx, s->ssrc, seqs, 16);
        } else {
            n = hk_rtcp_build_pli(b, sizeof b - HK_SRTP_MAX_TRAILER, 0x10ad0000u + (uint32_t)p->idx,
                                  s->ssrc);
        }
        if (send_rtcp(p, b, n))
            st.feedback_sent++;
    }
}

static void tick(peer_t *p, uint64_t t)
{
    feedback_storm(p, t);
    send_twcc_feedback(p, t);
    if (p->state == P_IDLE || p->state == P_FAILED)
        return;
    if (p->state != P_READY && t > p->t_start + JOIN_TIMEOUT) {
        fail_peer(p, "join timeout");
        return;
    }
    if (p->state == P_HELLO && t >= p->next_ice) {
        send_hello(p);
        p->next_ice = t + ICE_RETRY_US;
    } else if (p->state == P_ICE && t >= p->next_ice) {
        if (++p->ice_tries > ICE_MAX_TRIES) {
            fail_peer(p, "no binding response");
            return;
        }
        send_binding(p);
        p->next_ice = t + ICE_RETRY_US;
    } else if ((p->state == P_DTLS || p->state == P_READY) && opt.mode != MODE_RAW &&
               t >= p->next_ice) {
        send_binding(p); /* consent freshness (RFC 7675) */
        p->next_ice = t + CONSENT_US;
    }
    if (opt.mode == MODE_JANUS)
        janus_tick(p, t);
    if (p->state == P_DTLS) {
        struct timeval tv;
        if (DTLSv1_get_timeout(p->ssl, &tv) == 1 && tv.tv_sec == 0 && tv.tv_usec == 0) {
            DTLSv1_handle_timeout(p->ssl);
            dtls_flush(p);
        }
    }
}

/* ---- process statistics of the server ----------------------------------------------- */

/* CPU time of all pid's threads: the sum of their schedstat run times (ns precision);
 * /proc/PID/stat's utime + stime (10 ms ticks) where schedstat is missing. */
static double proc_cpu_seconds(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d) {
        unsigned long long total = 0;
        bool any = false;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p2[128];
            snprintf(p2, sizeof p2, "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
            FILE *f = fopen(p2, "r");
            unsigned long long ns;
            if (f && fscanf(f, "%llu", &ns) == 1) {
                total += ns;
                any = true;
            }
            if (f)
                fclose(f);
        }
        closedir(d);
        if (any)
            return (double)total / 1e9;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    if (!s)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* GET http://127.0.0.1:PORT/PATH (HTTP/1.0, 2 s timeout) into the file `out`: the
 * server's /metrics at the window's edges. Failures only leave the file missing. */
static void fetch_to_file(const char *url, const char *out)
{
    int port = 0, off = 0;
    char path[256] = "/";
    if (sscanf(url, "http://127.0.0.1:%d%n", &port, &off) != 1 || port <= 0 || port > 65535)
        return;
    if (url[off] == '/')
        copy_str(path, sizeof path, url + off);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[320];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    FILE *f = NULL;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, req, (size_t)len) == len &&
        (f = fopen(out, "w"))) {
        bool body = false;
        char buf[4096], tail[4] = {0};
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (body) {
                    fputc(buf[i], f);
                    continue;
                }
                memmove(tail, tail + 1, 3);
                tail[3] = buf[i];
                body = !memcmp(tail, "\r\n\r\n", 4);
            }
        }
        fclose(f);
    }
    close(fd);
}

/* The one CPU pid (0: this process) is pinned to, or -1. */
static int pinned_cpu(int pid)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(pid, sizeof set, &set) != 0 || CPU_COUNT(&set) != 1)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            return c;
    return -1;
}

/* The /proc/stat line of one CPU, in clock ticks: user nice system idle iowait irq softirq
 * steal. */
typedef struct {
    unsigned long long v[8];
} cpu_ticks_t;

static int cpu_ticks(int cpu, cpu_ticks_t *out)
{
    memset(out, 0, sizeof *out);
    if (cpu < 0)
        return -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512], name[16];
    snprintf(name, sizeof name, "cpu%d ", cpu);
    int rc = -1;
    while (rc < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, name, strlen(name)) != 0)
            continue;
        unsigned long long *v = out->v;
        if (sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
            rc = 0;
    }
    fclose(f);
    return rc;
}

/* The core a process is pinned to, over [a, b]: busy, its non-idle fraction (whoever ran:
 * the process, softirqs in any context, kernel threads, anyone else), and steal_s, the time
 * the hypervisor did not run it (a stall for everything on it). Tick-sampled. */
static json_t *core_json(int cpu, const cpu_ticks_t *a, const cpu_ticks_t *b)
{
    unsigned long long d[8], total = 0;
    for (int i = 0; i < 8; i++) {
        d[i] = b->v[i] - a->v[i];
        total += d[i];
    }
    return json_pack("{s:i,s:f,s:f}", "cpu", cpu, "busy",
                     total ? (double)(total - d[3] - d[4] - d[7]) / (double)total : 0.0, "steal_s",
                     (double)d[7] / (double)sysconf(_SC_CLK_TCK));
}

/* CPU time (user + system) of this process so far. */
static double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* The server's metrics at a window edge, into opt.metrics_out.EDGE. */
static void metrics_snapshot(const char *edge)
{
    if (!opt.metrics_url || !opt.metrics_out)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", opt.metrics_out, edge);
    fetch_to_file(opt.metrics_url, path);
}

/* ---- options and output --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: hisoka-load [options]\n"
            "  --mode hisoka|raw|janus   (default hisoka)\n"
            "  --url ws://127.0.0.1:PORT/signaling   hisoka signaling URL (janus: Janus'\n"
            "                            WebSocket API, default ws://127.0.0.1:8188/)\n"
            "  --local-ip ADDR           bind the peers' UDP sockets there (default\n"
            "                            127.0.0.1; Janus never gathers loopback candidates)\n"
            "  --transport udp|tcp       tcp: media over ICE-TCP to the offer's passive tcp\n"
            "                            candidate, RFC 4571 framing (--mode hisoka; default udp)\n"
            "  --tcp-target IP:PORT      connect there instead of the offer's tcp candidate\n"
            "  --janus-room N            VideoRoom room of channel 0 (channel k: N+k; the\n"
            "                            rooms must exist, E2EE required; default 1234)\n"
            "  --relay 127.0.0.1:PORT    raw relay address (--mode raw)\n"
            "  --channels K --publishers P --subscribers S --members M (sendrecv)\n"
            "  --late N --late-at SEC    N extra subscribers join channel 0 at once, SEC\n"
            "                            after media starts (join storm; default duration/3)\n"
            "  --duration SEC --video-kbps N --fps N --audio|--no-audio --no-video\n"
            "  --sample N                decrypt every Nth frame of every stream (0: none)\n"
            "  --feedback-storm N        each receiver floods N RTCP NACK/PLI packets a second\n"
            "  --simulcast               publishers send video as three layers r0, r1, r2 (1/16,\n"
            "                            1/4 and all of --video-kbps; rid, dependency descriptor,\n"
            "                            VP8 payload descriptor; key frames on PLI); implies\n"
            "                            --twcc (janus: rids in the offer; capped receivers\n"
            "                            configure substream 0)\n"
            "  --twcc                    receivers send transport-cc feedback every 50 ms (not\n"
            "                            to Janus, which has no downlink estimate)\n"
            "  --capped N --cap-kbps K   the first N receivers of each channel drop what\n"
            "                            arrives above K kbit/s (16 KB burst; default 1000)\n"
            "  --no-e2ee                 connect with e2ee:false\n"
            "  --srtp gcm|cm|both        SRTP profiles offered in DTLS (default both)\n"
            "  --server-pid PID          measure the server's CPU and RSS over the window\n"
            "  --metrics-url URL --metrics-out PREFIX   GET http://127.0.0.1:PORT/PATH (the\n"
            "                            server's /metrics) at the window's start and end into\n"
            "                            PREFIX.start and PREFIX.end\n"
            "  --channel-prefix STR      channel ids are STR-<k> (default load)\n"
            "  --connect-interval-ms N   start one initial peer every N ms (default: 10\n"
            "                            every 10 ms)\n"
            "  --json FILE               write the result there (default stdout)\n");
}

/* "IPV4:PORT" into *out; -1 when it is not that. */
static int parse_ipv4_port(const char *s, struct sockaddr_in *out)
{
    char host[64];
    int port = 0;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    if (sscanf(s, "%63[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535 ||
        inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    out->sin_port = htons((uint16_t)port);
    return 0;
}

static int parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {{"mode", required_argument, 0, 'm'},
                                             {"url", required_argument, 0, 'u'},
                                             {"relay", required_argument, 0, 'r'},
                                             {"channels", required_argument, 0, 'k'},
                                             {"publishers", required_argument, 0, 'p'},
                                             {"subscribers", required_argument, 0, 's'},
                                             {"members", required_argument, 0, 'M'},
                                             {"late", required_argument, 0, 'l'},
                                             {"late-at", required_argument, 0, 'L'},
                                             {"duration", required_argument, 0, 'd'},
                                             {"video-kbps", required_argument, 0, 'b'},
                                             {"fps", required_argument, 0, 'f'},
                                             {"audio", no_argument, 0, 'a'},
                                             {"no-audio", no_argument, 0, 'A'},
                                             {"no-video", no_argument, 0, 'V'},
                                             {"sample", required_argument, 0, 'n'},
                                             {"no-e2ee", no_argument, 0, 'E'},
                                             {"srtp", required_argument, 0, 'S'},
                                             {"server-pid", required_argument, 0, 'P'},
                                             {"json", required_argument, 0, 'j'},
                                             {"channel-prefix", required_argument, 0, 'c'},
                                             {"help", no_argument, 0, 'h'},
                                             {"connect-interval-ms", required_argument, 0, 'I'},
                                             {"janus-room", required_argument, 0, 'R'},
                                             {"local-ip", required_argument, 0, 'B'},
                                             {"feedback-storm", required_argument, 0, 'F'},
                                             {"metrics-url", required_argument, 0, 'U'},
                                             {"metrics-out", required_argument, 0, 'O'},
                                             {"transport", required_argument, 0, 'T'},
                                             {"tcp-target", required_argument, 0, 'G'},
                                             {"simulcast", no_argument, 0, 'Z'},
                                             {"twcc", no_argument, 0, 'W'},
                                             {"capped", required_argument, 0, 'C'},
                                             {"cap-kbps", required_argument, 0, 'K'},
                                             {0, 0, 0, 0}};
    const char *relay = "127.0.0.1:5006";
    opt.local_ip.s_addr = htonl(INADDR_LOOPBACK);
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "hisoka"))
                opt.mode = MODE_HISOKA;
            else if (!strcmp(optarg, "raw"))
                opt.mode = MODE_RAW;
            else if (!strcmp(optarg, "janus"))
                opt.mode = MODE_JANUS;
            else
                return -1;
            break;
        case 'u':
            snprintf(opt.url, sizeof opt.url, "%s", optarg);
            break;
        case 'r':
            relay = optarg;
            break;
        case 'k':
            opt.channels = atoi(optarg);
            break;
        case 'p':
            opt.publishers = atoi(optarg);
            break;
        case 's':
            opt.subscribers = atoi(optarg);
            break;
        case 'M':
            opt.members = atoi(optarg);
            break;
        case 'l':
            opt.late = atoi(optarg);
            break;
        case 'L':
            opt.late_at = atof(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'b':
            opt.video_kbps = atoi(optarg);
            break;
        case 'f':
            opt.fps = atoi(optarg);
            break;
        case 'a':
            opt.audio = true;
            break;
        case 'A':
            opt.audio = false;
            break;
        case 'V':
            opt.video = false;
            break;
        case 'n':
            opt.sample = atoi(optarg);
            break;
        case 'E':
            opt.e2ee = false;
            break;
        case 'S':
            opt.srtp_profiles = !strcmp(optarg, "gcm")  ? "SRTP_AEAD_AES_128_GCM"
                                : !strcmp(optarg, "cm") ? "SRTP_AES128_CM_SHA1_80"
                                                        : opt.srtp_profiles;
            break;
        case 'U':
            opt.metrics_url = optarg;
            break;
        case 'O':
            opt.metrics_out = optarg;
            break;
        case 'P':
            opt.server_pid = atoi(optarg);
            break;
        case 'j':
            opt.json_path = optarg;
            break;
        case 'c':
            opt.channel_prefix = optarg;
            break;
        case 'I':
            opt.connect_interval_ms = atoi(optarg);
            break;
        case 'R':
            opt.janus_room = atoll(optarg);
            break;
        case 'B':
            if (inet_pton(AF_INET, optarg, &opt.local_ip) != 1)
                return -1;
            break;
        case 'T':
            if (!strcmp(optarg, "udp"))
                opt.transport = TRANSPORT_UDP;
            else if (!strcmp(optarg, "tcp"))
                opt.transport = TRANSPORT_TCP;
            else
                return -1;
            break;
        case 'G':
            if (parse_ipv4_port(optarg, &opt.tcp_target) < 0)
                return -1;
            opt.have_tcp_target = true;
            break;
        case 'Z':
            opt.simulcast = opt.twcc = true;
            break;
        case 'W':
            opt.twcc = true;
            break;
        case 'C':
            opt.capped = atoi(optarg);
            if (opt.capped < 0)
                return -1;
            opt.twcc = true;
            break;
        case 'K':
            opt.cap_kbps = atoi(optarg);
            if (opt.cap_kbps <= 0)
                return -1;
            break;
        case 'F':
            opt.feedback_storm = atoi(optarg);
            if (opt.feedback_storm < 0 || opt.feedback_storm > 100000)
                return -1;
            break;
        default:
            return -1;
        }
    }
    if (opt.channels < 1 || opt.publishers < 0 || opt.subscribers < 0 || opt.members < 0 ||
        opt.late < 0 || opt.duration <= 0 || opt.fps < 1 || opt.fps > 120 || opt.video_kbps < 1 ||
        opt.video_kbps > 50000 || opt.sample < 0 || (!opt.audio && !opt.video))
        return -1;
    if (opt.transport == TRANSPORT_TCP && opt.mode != MODE_HISOKA) {
        fprintf(stderr, "hisoka-load: --transport tcp is for --mode hisoka only\n");
        return -1;
    }
    if (opt.mode == MODE_RAW) {
        if (parse_ipv4_port(relay, &raw_addr) < 0)
            return -1;
    } else {
        if (opt.mode == MODE_JANUS && !opt.url[0])
            snprintf(opt.url, sizeof opt.url, "ws://127.0.0.1:8188/");
        if (hk_ws_parse_url(opt.url, &signaling_addr, url_host, sizeof url_host, url_path,
                            sizeof url_path) < 0) {
            fprintf(stderr, "hisoka-load: --url must be ws://IPV4:PORT/path\n");
            return -1;
        }
    }
    if (opt.late_at < 0)
        opt.late_at = opt.duration / 3;
    return 0;
}

static json_t *percentiles(uint64_t *v, size_t n, double scale)
{
    hk_load_sort(v, n);
    return json_pack("{s:f,s:f,s:f,s:I}", "p50", hk_load_percentile(v, n, 0.5) / scale, "p99",
                     hk_load_percentile(v, n, 0.99) / scale, "p999",
                     hk_load_percentile(v, n, 0.999) / scale, "n", (json_int_t)n);
}

int main(int argc, char **argv)
{
    if (parse_options(argc, argv) < 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (hk_srtp_global_init() != 0 || (opt.mode != MODE_RAW && make_dtls_ctx() < 0)) {
        fprintf(stderr, "hisoka-load: crypto set-up failed\n");
        return 2;
    }
    size_t vframe = (size_t)opt.video_kbps * 1000 / 8 / (size_t)opt.fps;
    frame_cap = vframe > 200 ? vframe : 200;
    if (frame_cap > BATCH * HK_LOAD_FRAG)
        frame_cap = BATCH * HK_LOAD_FRAG;
    st.latency = malloc(MAX_SAMPLES * sizeof *st.latency);
    st.added = malloc(MAX_SAMPLES * sizeof *st.added);
    ep = epoll_create1(EPOLL_CLOEXEC);
    /* Janus: a sendrecv member is a publisher PC plus a subscriber PC (two peers) */
    int member_peers = opt.mode == MODE_JANUS ? 2 : 1;
    int per_channel = opt.publishers + opt.subscribers + opt.members * member_peers;
    n_peers = opt.channels * per_channel + opt.late;
    peers = calloc((size_t)n_peers, sizeof *peers);
    if (!st.latency || !st.added || ep < 0 || !peers || n_peers == 0) {
        fprintf(stderr, "hisoka-load: nothing to do or out of memory\n");
        return 2;
    }
    for (int i = 0; i < n_peers; i++) {
        peer_t *p = &peers[i];
        p->idx = i;
        p->udp = -1;
        p->tcp = -1;
        p->ws.fd = -1;
        p->pair = -1;
        if (i < opt.channels * per_channel && opt.mode == MODE_JANUS) {
            /* publishers first: a Janus subscription needs an existing feed */
            p->channel = i / per_channel;
            int r = i % per_channel;
            int rank; /* among the channel's receivers: subscribers, then members */
            if (r < opt.publishers) {
                p->role = ROLE_PUB;
                rank = -1;
            } else if (r < opt.publishers + 2 * opt.members) {
                bool pub_half = (r - opt.publishers) % 2 == 0;
                p->role = pub_half ? ROLE_PUB : ROLE_SUB;
                p->pair = pub_half ? i + 1 : i - 1;
                rank = opt.subscribers + (r - opt.publishers) / 2;
            } else {
                p->role = ROLE_SUB;
                rank = r - opt.publishers - 2 * opt.members;
            }
            p->capped = p->role == ROLE_SUB && rank < opt.capped;
        } else if (i < opt.channels * per_channel) {
            p->channel = i / per_channel;
            int r = i % per_channel;
            /* subscribers first, so the fan-out is in place when media starts */
            p->role = r < opt.subscribers                    ? ROLE_SUB
                      : r < opt.subscribers + opt.publishers ? ROLE_PUB
                                                             : ROLE_MEMBER;
            /* receivers in order: subscribers, then members */
            int rank = r < opt.subscribers ? r : r - opt.publishers;
            p->capped = p->role != ROLE_PUB && rank < opt.capped;
        } else {
            p->channel = 0;
            p->role = ROLE_SUB;
            p->late = true;
        }
        p->ssrc_audio = 0x10000000u + (uint32_t)i * 4;
        p->ssrc_video = p->ssrc_audio + 1;
        p->ssrc_rtx = p->ssrc_audio + 2;
        for (int l = 0; l < 3; l++) {
            p->ssrc_layer[l] = 0x20000000u + (uint32_t)i * 4 + (uint32_t)l;
            p->rid_left[l] = RID_PACKETS;
            p->key_layer[l] = true;
        }
        if (opt.twcc && p->role != ROLE_PUB && opt.mode == MODE_HISOKA &&
            !(p->twcc_rx = calloc(TWCC_RX_MAX, sizeof *p->twcc_rx))) {
            fprintf(stderr, "hisoka-load: out of memory\n");
            return 2;
        }
        snprintf(p->connection_id, sizeof p->connection_id, "#%d", i);
        if (p->role != ROLE_SUB && !(p->sent = calloc(2 * SENT_RING, sizeof *p->sent))) {
            fprintf(stderr, "hisoka-load: out of memory\n");
            return 2;
        }
    }
    long rss_before = opt.server_pid ? proc_rss_kb(opt.server_pid) : -1;

    uint64_t t0 = now_us(), late_start = 0, end = 0;
    uint64_t recv_at_start = 0, recv_at_end = 0, sent_at_start = 0, sent_at_end = 0;
    uint64_t rtx_at_start = 0, rtx_at_end = 0;
    bool window_started = false, window_ended = false;
    double srv_cpu0 = 0, srv_cpu1 = 0, gen_cpu0 = 0, gen_cpu1 = 0;
    int srv_core = opt.server_pid ? pinned_cpu(opt.server_pid) : -1, gen_core = pinned_cpu(0);
    cpu_ticks_t srv_ticks0, srv_ticks1, gen_ticks0, gen_ticks1;
    memset(&srv_ticks0, 0, sizeof srv_ticks0);
    srv_ticks1 = gen_ticks0 = gen_ticks1 = srv_ticks0;
    long rss_ready = -1;
    int next_start = 0;
    int n_initial = opt.channels * per_channel;
    uint64_t last_tick = 0, last_start = 0;
    while (!interrupted) {
        uint64_t t = now_us();
        /* start initial peers in small bursts, so set-up is not itself a join storm */
        if (next_start < n_initial && opt.connect_interval_ms > 0) {
            if (t >= last_start + (uint64_t)opt.connect_interval_ms * 1000u) {
                last_start = t;
                start_peer(&peers[next_start++]);
                /* Janus: a member's subscriber half starts with its publisher half */
                if (next_start < n_initial && peers[next_start - 1].pair == next_start)
                    start_peer(&peers[next_start++]);
            }
        } else if (next_start < n_initial && t - last_tick >= 10000) {
            for (int k = 0; k < 10 && next_start < n_initial; k++)
                start_peer(&peers[next_start++]);
        }
        if (!media_start) {
            int pending = 0;
            for (int i = 0; i < n_initial; i++)
                if (peers[i].state != P_READY && peers[i].state != P_FAILED)
                    pending++;
            if ((next_start == n_initial && pending == 0) || t - t0 > SETUP_TIMEOUT) {
                media_start = t + 500000u; /* let the first key frames through */
                late_start = media_start + (uint64_t)(opt.late_at * 1e6);
                media_end = media_start + (uint64_t)(opt.duration * 1e6);
                end = media_end + DRAIN_US;
            }
        } else if (!window_started && t >= media_start) {
            window_started = true;
            recv_at_start = st.packets_received;
            rtx_at_start = st.rtx_received;
            sent_at_start = st.packets_sent;
            gen_cpu0 = self_cpu_seconds();
            cpu_ticks(gen_core, &gen_ticks0);
            cpu_ticks(srv_core, &srv_ticks0);
            if (opt.server_pid) {
                srv_cpu0 = proc_cpu_seconds(opt.server_pid);
                rss_ready = proc_rss_kb(opt.server_pid);
            }
            metrics_snapshot("start");
        }
        if (late_start && t >= late_start && opt.late > 0 && peers[n_initial].state == P_IDLE) {
            for (int i = n_initial; i < n_peers; i++)
                start_peer(&peers[i]);
        }
        if (media_end && !window_ended && t >= media_end) {
            window_ended = true;
            recv_at_end = st.packets_received;
            rtx_at_end = st.rtx_received;
            sent_at_end = st.packets_sent;
            gen_cpu1 = self_cpu_seconds();
            cpu_ticks(gen_core, &gen_ticks1);
            cpu_ticks(srv_core, &srv_ticks1);
            if (opt.server_pid)
                srv_cpu1 = proc_cpu_seconds(opt.server_pid);
            metrics_snapshot("end");
        }
        if (end && t >= end)
            break;
        if (t - last_tick >= 10000) {
            last_tick = t;
            for (int i = 0; i < n_peers; i++)
                tick(&peers[i], t);
        }
        if (!media_end || t < media_end) {
            for (int i = 0; i < n_peers; i++)
                if (peers[i].state == P_READY && peers[i].role != ROLE_SUB)
                    pace_publisher(&peers[i], t);
        }
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 1);
        for (int i = 0; i < n; i++) {
            peer_t *p = &peers[evs[i].data.u64 >> 1];
            if (evs[i].data.u64 & 1) {
                if (use_tcp())
                    on_tcp_event(p, evs[i].events);
                else
                    on_udp_readable(p);
                continue;
            }
            if (p->ws.fd < 0)
                continue;
            int rc = 0;
            if (evs[i].events & EPOLLOUT)
                rc = hk_ws_on_writable(&p->ws);
            if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                bool was_upgrading = p->ws.state == HK_WS_UPGRADING;
                rc = hk_ws_on_readable(&p->ws, on_ws_message, p);
                if (rc == 0 && was_upgrading && p->ws.state == HK_WS_OPEN) {
                    if (opt.mode == MODE_JANUS)
                        janus_on_open(p);
                    else
                        send_connect(p);
                }
            }
            if (rc < 0) {
                char why[80];
                snprintf(why, sizeof why, "WebSocket closed (%d)", p->ws.close_code);
                if (p->state == P_READY) {
                    st.ws_closed++;
                    fprintf(stderr, "hisoka-load: peer %d: %s\n", p->idx, why);
                } else {
                    fail_peer(p, why);
                }
                epoll_ctl(ep, EPOLL_CTL_DEL, p->ws.fd, NULL);
                hk_ws_close(&p->ws);
                continue;
            }
            ws_update_events(p);
        }
    }
    if (!window_ended) {
        recv_at_end = st.packets_received;
        rtx_at_end = st.rtx_received;
        sent_at_end = st.packets_sent;
        gen_cpu1 = self_cpu_seconds();
        cpu_ticks(gen_core, &gen_ticks1);
        cpu_ticks(srv_core, &srv_ticks1);
        if (opt.server_pid)
            srv_cpu1 = proc_cpu_seconds(opt.server_pid);
    }

    /* ---- results ---- */
    uint64_t expected = 0, received_counted = 0;
    uint64_t *joins = calloc((size_t)n_peers + 1, sizeof *joins);
    uint64_t *late_joins = calloc((size_t)n_peers + 1, sizeof *late_joins);
    uint64_t *setups = calloc((size_t)n_peers + 1, sizeof *setups);
    size_t nj = 0, nl = 0, ns = 0;
    int failed = 0, joined = 0, no_media = 0;
    for (int i = 0; i < n_peers; i++) {
        peer_t *p = &peers[i];
        for (int k = 0; k < p->n_streams; k++) {
            stream_t *s = &p->streams[k];
            expected += s->ext_max - s->ext_first + 1;
            received_counted += s->received;
        }
        if (p->state == P_FAILED || p->state == P_IDLE) {
            failed++;
            continue;
        }
        joined++;
        if (p->t_ready)
            setups[ns++] = p->t_ready - p->t_start;
        if (receives(p) && (opt.publishers > 0 || opt.members > 1)) {
            if (!p->t_first_rtp) {
                no_media++;
                continue;
            }
            if (p->late)
                late_joins[nl++] = p->t_first_rtp - p->t_start;
            else
                joins[nj++] = p->t_first_rtp - p->t_start;
        }
    }
    double window = media_end && media_start ? (double)(media_end - media_start) / 1e6 : 0;
    double gen_cpu = self_cpu_seconds();
    uint64_t lost = expected > received_counted ? expected - received_counted : 0;
    uint64_t win_recv = recv_at_end - recv_at_start;
    const char *modes[] = {"hisoka", "raw", "janus"};
    json_t *out = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:i,s:b,s:i}", "mode",
                            modes[opt.mode], "channels", opt.channels, "publishers", opt.publishers,
                            "subscribers", opt.subscribers, "members", opt.members, "late",
                            opt.late, "duration_s", opt.duration, "video_kbps", opt.video_kbps,
                            "fps", opt.fps, "audio", opt.audio, "sample", opt.sample);
    json_object_set_new(out, "transport", json_string(use_tcp() ? "tcp" : "udp"));
    json_object_set_new(out, "peers", json_integer(n_peers));
    json_object_set_new(out, "peers_joined", json_integer(joined));
    json_object_set_new(out, "peers_failed", json_integer(failed));
    json_object_set_new(out, "peers_without_media", json_integer(no_media));
    json_object_set_new(out, "packets_sent", json_integer((json_int_t)st.packets_sent));
    json_object_set_new(out, "bytes_sent", json_integer((json_int_t)st.bytes_sent));
    json_object_set_new(out, "frames_sent", json_integer((json_int_t)st.frames_sent));
    json_object_set_new(out, "packets_received", json_integer((json_int_t)st.packets_received));
    json_object_set_new(out, "bytes_received", json_integer((json_int_t)st.bytes_received));
    json_object_set_new(out, "rtcp_received", json_integer((json_int_t)st.rtcp_received));
    json_object_set_new(out, "feedback_sent", json_integer((json_int_t)st.feedback_sent));
    if (opt.simulcast || opt.twcc || opt.capped) {
        int capped = 0, free_receivers = 0;
        for (int i = 0; i < n_peers; i++)
            if (peers[i].role != ROLE_PUB && peers[i].capped)
                capped++;
            else if (peers[i].role != ROLE_PUB)
                free_receivers++;
        double window = media_end > media_start ? (double)(media_end - media_start) / 1e6 : 0;
        json_t *sc = json_pack(
            "{s:b,s:b,s:i,s:i,s:I,s:I,s:I,s:I}", "simulcast", opt.simulcast, "twcc", opt.twcc,
            "capped_receivers", capped, "cap_kbps", opt.cap_kbps, "twcc_feedback_sent",
            (json_int_t)st.twcc_sent, "plis_received", (json_int_t)st.plis_received,
            "keyframes_sent", (json_int_t)st.keyframes_sent, "cap_drops", (json_int_t)st.cap_drops);
        /* the layers each kind of receiver got: its verified frames of the window */
        for (int c = 0; sc && c < 2; c++) {
            const uint64_t *n = st.layer_frames[c];
            json_object_set_new(
                sc, c ? "capped_layer_frames" : "free_layer_frames",
                json_pack("[I,I,I]", (json_int_t)n[0], (json_int_t)n[1], (json_int_t)n[2]));
        }
        /* what each kind of receiver got, on average, in the window */
        if (sc && window > 0) {
            json_object_set_new(
                sc, "capped_kbps",
                json_real(capped ? (double)st.bytes_capped * 8 / 1000 / window / capped : 0));
            json_object_set_new(sc, "free_kbps",
                                json_real(free_receivers ? (double)st.bytes_free * 8 / 1000 /
                                                               window / free_receivers
                                                         : 0));
        }
        json_object_set_new(out, "adaptive", sc);
    }
    json_object_set_new(out, "packets_expected", json_integer((json_int_t)expected));
    json_object_set_new(out, "packets_lost", json_integer((json_int_t)lost));
    json_object_set_new(out, "loss_pct",
                        json_real(expected ? 100.0 * (double)lost / (double)expected : 0));
    json_object_set_new(out, "window_s", json_real(window));
    json_object_set_new(out, "window_packets_sent",
                        json_integer((json_int_t)(sent_at_end - sent_at_start)));
    json_object_set_new(out, "window_packets_received", json_integer((json_int_t)win_recv));
    json_object_set_new(out, "window_rtx_received",
                        json_integer((json_int_t)(rtx_at_end - rtx_at_start)));
    json_object_set_new(out, "forwarded_pps", json_real(window > 0 ? win_recv / window : 0));
    /* end to end, generator included: frame creation -> the generator reads its last packet */
    json_object_set_new(out, "latency_us", percentiles(st.latency, st.n_latency, 1));
    /* added by the server: publisher send complete -> kernel receive timestamp (README.md) */
    json_object_set_new(out, "added_latency_us", percentiles(st.added, st.n_added, 1000));
    json_object_set_new(out, "added_latency_missing", json_integer((json_int_t)st.added_missing));
    json_object_set_new(out, "added_latency_negative", json_integer((json_int_t)st.added_negative));
    json_object_set_new(out, "frames_verified", json_integer((json_int_t)st.frames_verified));
    json_object_set_new(out, "integrity_failures", json_integer((json_int_t)st.integrity_failures));
    json_object_set_new(out, "samples_incomplete", json_integer((json_int_t)st.samples_incomplete));
    json_object_set_new(out, "srtp_errors", json_integer((json_int_t)st.srtp_errors));
    json_object_set_new(out, "srtp_profile_peers",
                        json_pack("{s:I,s:I}", "AEAD_AES_128_GCM", (json_int_t)st.srtp_gcm,
                                  "AES128_CM_SHA1_80", (json_int_t)st.srtp_cm));
    json_object_set_new(out, "send_errors", json_integer((json_int_t)st.send_errors));
    json_object_set_new(out, "pacing_skips", json_integer((json_int_t)st.pacing_skips));
    if (use_tcp()) {
        json_object_set_new(out, "tcp_send_drops", json_integer((json_int_t)st.tcp_send_drops));
        json_object_set_new(out, "tcp_send_blocked", json_integer((json_int_t)st.tcp_send_blocked));
        json_object_set_new(out, "tcp_tx_queued_max", json_integer((json_int_t)st.tcp_tx_max));
        json_object_set_new(out, "tcp_closed_after_join", json_integer((json_int_t)st.tcp_closed));
    }
    json_object_set_new(out, "ws_closed_after_join", json_integer((json_int_t)st.ws_closed));
    json_object_set_new(out, "join_ms", percentiles(joins, nj, 1000));
    json_object_set_new(out, "late_join_ms", percentiles(late_joins, nl, 1000));
    json_object_set_new(out, "setup_ms", percentiles(setups, ns, 1000));
    json_object_set_new(out, "generator_cpu_s", json_real(gen_cpu));
    json_object_set_new(out, "generator_window_cpu_s", json_real(gen_cpu1 - gen_cpu0));
    if (gen_core >= 0 && window > 0)
        json_object_set_new(out, "generator_core", core_json(gen_core, &gen_ticks0, &gen_ticks1));
    if (opt.server_pid) {
        int legs = 0;
        for (int i = 0; i < n_peers; i++)
            legs += peers[i].n_streams;
        double cpu = srv_cpu1 - srv_cpu0;
        json_object_set_new(out, "server_cpu_s", json_real(cpu));
        if (srv_core >= 0 && window > 0)
            json_object_set_new(out, "server_core", core_json(srv_core, &srv_ticks0, &srv_ticks1));
        json_object_set_new(out, "server_cpu_s_per_1M_forwarded",
                            json_real(win_recv ? cpu * 1e6 / (double)win_recv : 0));
        json_object_set_new(out, "server_rss_kb_before", json_integer(rss_before));
        json_object_set_new(out, "server_rss_kb_ready", json_integer(rss_ready));
        json_object_set_new(out, "receive_legs", json_integer(legs));
        json_object_set_new(out, "server_rss_kb_per_leg",
                            json_real(legs && rss_ready > 0 && rss_before > 0
                                          ? (double)(rss_ready - rss_before) / legs
                                          : 0));
    }
    char *text = json_dumps(out, JSON_INDENT(1));
    if (opt.json_path) {
        FILE *f = fopen(opt.json_path, "w");
        if (f) {
            fprintf(f, "%s\n", text);
            fclose(f);
        }
    } else {
        printf("%s\n", text);
    }
    free(text);
    json_decref(out);

    for (int i = 0; i < n_peers; i++) {
        peer_t *p = &peers[i];
        if (p->ws.fd >= 0 && p->ws.state == HK_WS_OPEN && opt.mode == MODE_HISOKA) {
            const char *bye = "{\"type\":\"disconnect\",\"reason\":\"NO-ERROR\"}";
            hk_ws_send_text(&p->ws, bye, strlen(bye));
        }
        if (p->ws.fd >= 0)
            hk_ws_close(&p->ws);
        if (p->udp >= 0)
            close(p->udp);
        if (p->tcp >= 0)
            close(p->tcp);
        free(p->tcp_buf);
        if (p->ssl)
            SSL_free(p->ssl);
        hk_srtp_destroy(p->srtp);
        for (int k = 0; k < p->n_streams; k++)
            free(p->streams[k].buf);
        free(p->sent);
    }
    free(peers);
    free(joins);
    free(late_joins);
    free(setups);
    free(st.latency);
    free(st.added);
    if (dtls_ctx)
        SSL_CTX_free(dtls_ctx);
    hk_cert_free(&cert);
    if (st.integrity_failures > 0) {
        fprintf(stderr, "hisoka-load: %llu ALTERED frames\n",
                (unsigned long long)st.integrity_failures);
        return 1;
    }
    if (failed > 0 || no_media > 0) {
        fprintf(stderr, "hisoka-load: %d peers failed to join, %d received no media\n", failed,
                no_media);
        return 3;
    }
    return 0;
}

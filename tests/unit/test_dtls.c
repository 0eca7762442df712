/* server/dtls against a test-only OpenSSL DTLS client, all in memory: the client's
 * records travel in datagrams the test builds, the server's through hk_dtls's send
 * callback into a queue. Checks the handshake, the exported keys (both sides), profile
 * negotiation, fingerprint and use_srtp refusals, hostile datagrams, retransmission and
 * the MTU of every datagram the server sends. */
#include <openssl/err.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <time.h>

#include "common/error.h"
#include "server/rtc/cert.h"
#include "server/rtc/dtls.h"
#include "server/rtc/srtp.h"
#include "tests/unit/dtls_client.h"
#include "tests/unit/unit.h"

static void server_send(void *arg, const uint8_t *buf, size_t len)
{
    queue_t *q = arg;
    if (len > q->mtu) {
        fprintf(stderr, "server sent a %zu-byte datagram (MTU %zu)\n", len, q->mtu);
        exit(1);
    }
    queue_push(q, buf, len);
}

/* ---- harness: one server connection and one client ------------------------------------ */

typedef struct {
    hk_cert_t cert;
    hk_dtls_context_t *ctx;
    hk_dtls_t *dtls;
    client_t client;
    queue_t to_client; /* filled by the server's send callback */
    queue_t to_server;
    int last; /* last hk_dtls_handle result */
    int server_connected;
} harness_t;

static harness_t *harness_new(const char *client_profiles)
{
    harness_t *h = calloc(1, sizeof *h);
    CHECK(h);
    CHECK_INT_EQ(hk_cert_generate(&h->cert), 0);
    h->ctx = hk_dtls_context_create(&h->cert);
    CHECK(h->ctx);
    client_init(&h->client, client_profiles);
    h->to_client.mtu = HK_DTLS_DEFAULT_MTU;
    h->to_server.mtu = 1200;
    return h;
}

/* Creates the server connection expecting fp (NULL: the client's real fingerprint). */
static void harness_start(harness_t *h, const uint8_t *fp)
{
    uint8_t real[32];
    client_fingerprint(&h->client, real);
    h->dtls = hk_dtls_create(h->ctx, "sha-256", fp ? fp : real, 32, server_send, &h->to_client);
    CHECK(h->dtls);
}

static void harness_free(harness_t *h)
{
    hk_dtls_destroy(h->dtls);
    hk_dtls_context_destroy(h->ctx);
    hk_cert_free(&h->cert);
    client_free(&h->client);
    free(h);
}

static int server_handle(harness_t *h, const uint8_t *buf, size_t len)
{
    int ret = hk_dtls_handle(h->dtls, buf, len);
    if (ret == HK_DTLS_CONNECTED) {
        CHECK(!h->server_connected);
        h->server_connected = 1;
    }
    h->last = ret;
    return ret;
}

/* Delivers everything queued for the server; stops at the first error. */
static int deliver_to_server(harness_t *h)
{
    queue_t *q = &h->to_server;
    for (size_t i = 0; i < q->n; i++) {
        int ret = server_handle(h, q->d[i].data, q->d[i].len);
        if (ret < 0) {
            q->n = 0;
            return ret;
        }
    }
    q->n = 0;
    return 0;
}

/* Delivers the server's datagrams to the client one at a time. The client's answers are
 * collected into to_server. */
static void deliver_to_client(harness_t *h)
{
    /* Copy first: nothing re-enters the server here, but keep the queue reusable. */
    static queue_t batch;
    batch = h->to_client;
    h->to_client.n = 0;
    for (size_t i = 0; i < batch.n; i++)
        client_receive(&h->client, &batch.d[i], &h->to_server);
}

/* Runs the handshake until both sides are connected, something fails or it stalls.
 * Returns 0 when both are connected, else the server's error (or HK_EINCOMPLETE). */
static int run_handshake(harness_t *h)
{
    client_step(&h->client, &h->to_server); /* ClientHello */
    for (int round = 0; round < 20; round++) {
        int ret = deliver_to_server(h);
        if (ret < 0) {
            deliver_to_client(h); /* the alert */
            return ret;
        }
        deliver_to_client(h);
        if (h->client.connected && h->server_connected && h->to_server.n == 0 &&
            h->to_client.n == 0)
            return 0;
        if (h->client.failed)
            return HK_EINCOMPLETE;
    }
    return HK_EINCOMPLETE;
}

static void check_keys(harness_t *h, hk_srtp_profile_t profile, size_t salt_len)
{
    hk_srtp_keys_t keys;
    CHECK_INT_EQ(hk_dtls_srtp_keys(h->dtls, &keys), 0);
    CHECK_INT_EQ(keys.profile, profile);
    CHECK_INT_EQ(keys.key_len, 16);
    CHECK_INT_EQ(keys.salt_len, salt_len);

    uint8_t m[60];
    size_t k = 16, s = salt_len;
    client_export(&h->client, m, 2 * (k + s));
    /* client_key | server_key | client_salt | server_salt */
    CHECK_MEM_EQ(keys.remote_key, m, k);
    CHECK_MEM_EQ(keys.remote_key + k, m + 2 * k, s);
    CHECK_MEM_EQ(keys.local_key, m + k, k);
    CHECK_MEM_EQ(keys.local_key + k, m + 2 * k + s, s);

    const SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(h->client.ssl);
    CHECK(p);
    CHECK_INT_EQ(p->id, profile == HK_SRTP_AEAD_AES_128_GCM ? SRTP_AEAD_AES_128_GCM
                                                            : SRTP_AES128_CM_SHA1_80);
    hk_srtp_keys_wipe(&keys);
}

/* ---- tests ------------------------------------------------------------------------------ */

TEST(dtls_handshake_prefers_gcm)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    harness_start(h, NULL);
    CHECK_INT_EQ(hk_dtls_timeout_ms(h->dtls), -1); /* nothing sent yet */
    CHECK_INT_EQ(run_handshake(h), 0);
    CHECK(h->server_connected);
    CHECK_INT_EQ(h->last, HK_DTLS_CONNECTED);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    CHECK_STR_EQ(hk_dtls_error(h->dtls), "");
    CHECK_INT_EQ(hk_dtls_timeout_ms(h->dtls), -1);
    CHECK_INT_EQ(hk_dtls_on_timeout(h->dtls), 0);

    /* The client saw the server's certificate, whose fingerprint goes in our SDP. */
    X509 *server_cert = SSL_get0_peer_certificate(h->client.ssl);
    CHECK(server_cert);
    char fp[128];
    CHECK_INT_EQ(hk_cert_fingerprint(server_cert, fp, sizeof fp), 0);
    CHECK_STR_EQ(fp, h->cert.fingerprint);

    /* ServerHello..ServerHelloDone fit one packed datagram; then CCS + Finished. */
    CHECK_INT_EQ(h->to_client.total, 2);
    harness_free(h);
}

TEST(dtls_handshake_aes_cm_only)
{
    harness_t *h = harness_new("SRTP_AES128_CM_SHA1_80");
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    check_keys(h, HK_SRTP_AES128_CM_SHA1_80, 14);
    harness_free(h);
}

TEST(dtls_handshake_gcm_only)
{
    harness_t *h = harness_new("SRTP_AEAD_AES_128_GCM");
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    harness_free(h);
}

/* A client preferring CM still gets GCM: the server's order wins. */
TEST(dtls_handshake_server_preference)
{
    harness_t *h = harness_new("SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM");
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    harness_free(h);
}

TEST(dtls_client_records_one_per_datagram)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    h->client.one_record_per_datagram = 1;
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    harness_free(h);
}

/* With a small MTU the server's flight is fragmented over several datagrams, each within
 * the MTU. */
TEST(dtls_small_mtu)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    CHECK_INT_EQ(hk_dtls_context_set_mtu(h->ctx, 100), HK_ERANGE);
    CHECK_INT_EQ(hk_dtls_context_set_mtu(h->ctx, 9000), HK_ERANGE);
    CHECK_INT_EQ(hk_dtls_context_set_mtu(h->ctx, 300), 0);
    h->to_client.mtu = 300;
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    CHECK(h->to_client.total >= 4);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    harness_free(h);
}

/* The keys work end to end: the client protects with its write key, the server
 * unprotects with hk_srtp made from hk_dtls_srtp_keys, and back. */
TEST(dtls_keys_drive_srtp)
{
    CHECK_INT_EQ(hk_srtp_global_init(), 0);
    harness_t *h = harness_new("SRTP_AES128_CM_SHA1_80");
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    hk_srtp_keys_t server_keys, client_keys;
    CHECK_INT_EQ(hk_dtls_srtp_keys(h->dtls, &server_keys), 0);

    uint8_t m[60];
    client_export(&h->client, m, 60);
    memset(&client_keys, 0, sizeof client_keys);
    client_keys.profile = HK_SRTP_AES128_CM_SHA1_80;
    client_keys.key_len = 16;
    client_keys.salt_len = 14;
    memcpy(client_keys.local_key, m, 16);           /* client_write_key */
    memcpy(client_keys.local_key + 16, m + 32, 14); /* client_write_salt */
    memcpy(client_keys.remote_key, m + 16, 16);     /* server_write_key */
    memcpy(client_keys.remote_key + 16, m + 46, 14);

    hk_srtp_t *server = hk_srtp_create(&server_keys);
    hk_srtp_t *client = hk_srtp_create(&client_keys);
    CHECK(server && client);
    hk_srtp_keys_wipe(&server_keys);
    hk_srtp_keys_wipe(&client_keys);

    static const uint8_t rtp[] = {0x80, 0x60, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
                                  0x02, 0x03, 0x04, 'm',  'e',  'd',  'i',  'a'};
    uint8_t buf[sizeof rtp + HK_SRTP_MAX_TRAILER];
    size_t len = sizeof rtp;
    memcpy(buf, rtp, len);
    CHECK_INT_EQ(hk_srtp_protect_rtp(client, buf, &len, sizeof buf), 0);
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(server, buf, &len), 0);
    CHECK_MEM_EQ(buf, rtp, sizeof rtp);
    len = sizeof rtp;
    CHECK_INT_EQ(hk_srtp_protect_rtp(server, buf, &len, sizeof buf), 0);
    CHECK_INT_EQ(hk_srtp_unprotect_rtp(client, buf, &len), 0);
    CHECK_MEM_EQ(buf, rtp, sizeof rtp);

    hk_srtp_destroy(server);
    hk_srtp_destroy(client);
    harness_free(h);
    hk_srtp_global_shutdown();
}

TEST(dtls_wrong_fingerprint)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    uint8_t fp[32];
    client_fingerprint(&h->client, fp);
    fp[31] ^= 0x01;
    harness_start(h, fp);
    CHECK_INT_EQ(run_handshake(h), HK_EPERM);
    CHECK(!h->server_connected);
    const char *why = hk_dtls_error(h->dtls);
    CHECK(strstr(why, "fingerprint"));
    CHECK(strstr(why, "sha-256"));
    fprintf(stderr, "  reason: %s\n", why);
    /* The client got an alert and gave up. */
    CHECK(h->client.failed);
    /* The connection stays dead. */
    CHECK_INT_EQ(hk_dtls_handle(h->dtls, (const uint8_t *)"\x16", 1), HK_EPERM);
    CHECK_INT_EQ(hk_dtls_timeout_ms(h->dtls), -1);
    hk_srtp_keys_t keys;
    CHECK_INT_EQ(hk_dtls_srtp_keys(h->dtls, &keys), HK_ESTATE);
    harness_free(h);
}

TEST(dtls_client_without_use_srtp)
{
    harness_t *h = harness_new(NULL);
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), HK_EINVAL);
    CHECK(strstr(hk_dtls_error(h->dtls), "use_srtp"));
    CHECK(h->client.failed); /* handshake_failure alert */
    CHECK(!h->server_connected);
    harness_free(h);
}

TEST(dtls_client_without_common_profile)
{
    harness_t *h = harness_new("SRTP_AES128_CM_SHA1_32");
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), HK_EINVAL);
    CHECK(strstr(hk_dtls_error(h->dtls), "SRTP profile"));
    CHECK(h->client.failed);
    harness_free(h);
}

/* Datagrams OpenSSL drops silently leave the handshake able to complete. */
TEST(dtls_ignored_garbage_before_handshake)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    harness_start(h, NULL);
    static const uint8_t truncated[] = {0x16, 0xfe, 0xfd, 0x00, 0x00}; /* < 13 bytes */
    static const uint8_t short_body[] = {0x16, 0xfe, 0xfd,             /* handshake, DTLS 1.2 */
                                         0x00, 0x00,                   /* epoch 0 */
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* sequence 0 */
                                         0x03, 0xe8, /* length 1000, but only 4 bytes follow */
                                         0x01, 0x00, 0x00, 0x10};
    static const uint8_t bad_version[] = {0x16, 0x03, 0x03, /* a TLS 1.2 version in a DTLS record */
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0x01, 0x01};
    static const uint8_t future_epoch[] = {0x16, 0xfe, 0xfd, 0x00, 0x05, /* epoch 5: not ours */
                                           0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                           0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};
    static const uint8_t next_epoch[13 + 40] = {
        0x16, 0xfe, 0xfd, 0x00, 0x01, /* epoch 1: buffered until the keys exist */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 40};
    uint8_t noise[600];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)(i * 131 + 7);
    noise[0] = 0x3f; /* last byte of the DTLS range, not a content type */

    CHECK_INT_EQ(server_handle(h, truncated, 0), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, NULL, 0), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, truncated, sizeof truncated), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, short_body, sizeof short_body), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, bad_version, sizeof bad_version), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, future_epoch, sizeof future_epoch), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, noise, sizeof noise), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(server_handle(h, next_epoch, sizeof next_epoch), HK_DTLS_HANDSHAKING);
    CHECK_INT_EQ(h->to_client.n, 0);
    CHECK_INT_EQ(run_handshake(h), 0);
    harness_free(h);
}

/* Well-framed but hostile records before the ClientHello: application data is screened
 * out (the handshake then completes); a malformed ClientHello and an unauthenticated
 * fatal alert end the connection cleanly and it keeps returning its error. */
TEST(dtls_hostile_records_before_handshake)
{
    static const uint8_t app_data[] = {0x17, 0xfe, 0xfd, /* application data, DTLS 1.2 */
                                       0x00, 0x00,       /* epoch 0 */
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* sequence 0 */
                                       0x00, 0x05, 'h',  'e',  'l',  'l',  'o'};
    static const uint8_t bogus_client_hello[] = {
        0x16, 0xfe, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* record header */
        0x00, 0x10,                                                       /* 16 bytes */
        0x01,                                                             /* ClientHello */
        0x00, 0x00, 0x04,                                                 /* length 4 */
        0x00, 0x00,                                                       /* message_seq */
        0x00, 0x00, 0x00,                                                 /* offset 0 */
        0x00, 0x00, 0x04,                                                 /* frag length 4 */
        0xfe, 0xfd, 0x00, 0x00}; /* version, then nothing where random should be */
    static const uint8_t alert[] = {0x15, 0xfe, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x28}; /* fatal 40 */
    const struct {
        const char *name;
        const uint8_t *buf;
        size_t len;
        int expected;
    } cases[] = {
        {"app data", app_data, sizeof app_data, HK_DTLS_HANDSHAKING},
        {"bogus ClientHello", bogus_client_hello, sizeof bogus_client_hello, HK_EINVAL},
        {"fatal alert", alert, sizeof alert, HK_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_t *h = harness_new(BOTH_PROFILES);
        harness_start(h, NULL);
        int ret = server_handle(h, cases[i].buf, cases[i].len);
        fprintf(stderr, "  %s -> %d %s\n", cases[i].name, ret, hk_dtls_error(h->dtls));
        CHECK_INT_EQ(ret, cases[i].expected);
        for (size_t j = 0; j < h->to_client.n; j++)
            CHECK(h->to_client.d[j].len <= HK_DTLS_DEFAULT_MTU);
        h->to_client.n = 0;
        if (ret < 0) {
            CHECK(hk_dtls_error(h->dtls)[0] != '\0');
            CHECK_INT_EQ(hk_dtls_handle(h->dtls, cases[i].buf, cases[i].len), ret);
        } else {
            CHECK_INT_EQ(ret, HK_DTLS_HANDSHAKING);
            CHECK_INT_EQ(run_handshake(h), 0);
        }
        harness_free(h);
    }
}

TEST(dtls_duplicate_client_hello)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    harness_start(h, NULL);
    client_step(&h->client, &h->to_server);
    CHECK_INT_EQ(h->to_server.n, 1);
    dgram_t hello = h->to_server.d[0];
    CHECK_INT_EQ(deliver_to_server(h), 0);
    CHECK_INT_EQ(h->last, HK_DTLS_HANDSHAKING);
    size_t first_flight = h->to_client.n;
    CHECK(first_flight >= 1);
    /* The same ClientHello again (a network duplicate or the client's retransmission). */
    CHECK_INT_EQ(server_handle(h, hello.data, hello.len), HK_DTLS_HANDSHAKING);
    deliver_to_client(h);
    for (int round = 0; round < 10 && !(h->client.connected && h->server_connected); round++) {
        CHECK_INT_EQ(deliver_to_server(h), 0);
        deliver_to_client(h);
    }
    CHECK(h->client.connected && h->server_connected);
    /* And once more after the handshake: ignored. */
    CHECK_INT_EQ(server_handle(h, hello.data, hello.len), HK_DTLS_IDLE);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    harness_free(h);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The server's first flight is lost: the timer fires and the flight is sent again. */
TEST(dtls_retransmits_lost_flight)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    CHECK_INT_EQ(hk_dtls_context_set_timers(h->ctx, 0, 100, 3), HK_ERANGE);
    CHECK_INT_EQ(hk_dtls_context_set_timers(h->ctx, 200, 100, 3), HK_ERANGE);
    CHECK_INT_EQ(hk_dtls_context_set_timers(h->ctx, 200, 1000, 3), 0);
    harness_start(h, NULL);
    client_step(&h->client, &h->to_server);
    CHECK_INT_EQ(deliver_to_server(h), 0);
    CHECK(h->to_client.n >= 1);
    dgram_t lost = h->to_client.d[0];
    h->to_client.n = 0; /* dropped */

    long ms = hk_dtls_timeout_ms(h->dtls);
    CHECK(ms >= 0 && ms <= 200);
    if (ms > 100) {
        CHECK_INT_EQ(hk_dtls_on_timeout(h->dtls), 0); /* not yet */
        CHECK_INT_EQ(h->to_client.n, 0);
    }
    sleep_ms(hk_dtls_timeout_ms(h->dtls) + 5);
    CHECK_INT_EQ(hk_dtls_timeout_ms(h->dtls), 0);
    CHECK_INT_EQ(hk_dtls_on_timeout(h->dtls), 1);
    CHECK_INT_EQ(h->to_client.n, 1); /* the whole flight again, packed into one datagram */
    /* Same messages, new record sequence numbers: equal length, not equal bytes. */
    size_t resent = 0;
    for (size_t i = 0; i < h->to_client.n; i++)
        resent += h->to_client.d[i].len;
    CHECK_INT_EQ(resent, lost.len);
    /* The timer doubled: 400 ms now. */
    ms = hk_dtls_timeout_ms(h->dtls);
    CHECK(ms > 100 && ms <= 400);

    deliver_to_client(h);
    for (int round = 0; round < 10 && !(h->client.connected && h->server_connected); round++) {
        CHECK_INT_EQ(deliver_to_server(h), 0);
        deliver_to_client(h);
    }
    CHECK(h->client.connected && h->server_connected);
    CHECK_INT_EQ(hk_dtls_timeout_ms(h->dtls), -1);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);
    harness_free(h);
}

/* Nobody answers: after max_retransmits the connection fails for good. */
TEST(dtls_retransmit_gives_up)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    /* OpenSSL treats a timer with less than 15 ms left as expired: stay above that. */
    CHECK_INT_EQ(hk_dtls_context_set_timers(h->ctx, 50, 100, 3), 0);
    harness_start(h, NULL);
    client_step(&h->client, &h->to_server);
    CHECK_INT_EQ(deliver_to_server(h), 0);
    int ret = 0;
    for (int i = 0; i < 20; i++) {
        h->to_client.n = 0;
        long ms = hk_dtls_timeout_ms(h->dtls);
        if (ms < 0)
            break;
        sleep_ms(ms + 2);
        ret = hk_dtls_on_timeout(h->dtls);
        if (ret < 0)
            break;
        if (ret == 1)
            CHECK_INT_EQ(h->to_client.n, 1);
    }
    CHECK_INT_EQ(ret, HK_ELIMIT);
    CHECK_INT_EQ(h->to_client.total, 1 + 3); /* the flight and 3 retransmissions */
    CHECK(strstr(hk_dtls_error(h->dtls), "timed out"));
    CHECK_INT_EQ(hk_dtls_timeout_ms(h->dtls), -1);
    CHECK_INT_EQ(hk_dtls_on_timeout(h->dtls), HK_ELIMIT);
    CHECK_INT_EQ(hk_dtls_handle(h->dtls, (const uint8_t *)"\x16", 1), HK_ELIMIT);
    harness_free(h);
}

/* After the handshake: duplicates of the client's last flight, application data and
 * garbage are ignored; close_notify closes. */
TEST(dtls_after_handshake)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    harness_start(h, NULL);
    client_step(&h->client, &h->to_server); /* ClientHello */
    CHECK_INT_EQ(deliver_to_server(h), 0);
    deliver_to_client(h); /* the client answers with Certificate..Finished */
    CHECK(h->to_server.n >= 1);
    static queue_t last_flight;
    last_flight = h->to_server;
    CHECK_INT_EQ(deliver_to_server(h), 0);
    CHECK_INT_EQ(h->last, HK_DTLS_CONNECTED);
    deliver_to_client(h);
    CHECK(h->client.connected);

    for (size_t i = 0; i < last_flight.n; i++)
        CHECK_INT_EQ(server_handle(h, last_flight.d[i].data, last_flight.d[i].len), HK_DTLS_IDLE);
    h->to_client.n = 0;

    CHECK_INT_EQ(SSL_write(h->client.ssl, "hello", 5), 5);
    client_drain(&h->client, &h->to_server);
    CHECK_INT_EQ(deliver_to_server(h), 0);
    CHECK_INT_EQ(h->last, HK_DTLS_IDLE);

    /* Epoch 1, too short for nonce + tag: OpenSSL 3.0 would die of it; screened out. */
    static const uint8_t garbage[] = {0x17, 0xfe, 0xfd, 0x00, 0x01, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x09, 0x00, 0x03, 0x01, 0x02, 0x03};
    CHECK_INT_EQ(server_handle(h, garbage, sizeof garbage), HK_DTLS_IDLE);
    /* Epoch 1, long enough, wrong tag: OpenSSL drops it. Also as an alert. */
    uint8_t forged[13 + 40];
    memcpy(forged, garbage, 11);
    forged[11] = 0, forged[12] = 40;
    for (size_t i = 13; i < sizeof forged; i++)
        forged[i] = (uint8_t)(i * 29);
    CHECK_INT_EQ(server_handle(h, forged, sizeof forged), HK_DTLS_IDLE);
    forged[0] = 0x15;
    CHECK_INT_EQ(server_handle(h, forged, sizeof forged), HK_DTLS_IDLE);
    /* Epoch 0 after the handshake: stale, dropped. */
    forged[4] = 0;
    CHECK_INT_EQ(server_handle(h, forged, sizeof forged), HK_DTLS_IDLE);
    forged[0] = 0x16;
    CHECK_INT_EQ(server_handle(h, forged, sizeof forged), HK_DTLS_IDLE);
    CHECK_INT_EQ(server_handle(h, garbage, 5), HK_DTLS_IDLE);
    CHECK_INT_EQ(server_handle(h, garbage, 0), HK_DTLS_IDLE);
    CHECK_INT_EQ(h->to_client.n, 0);
    check_keys(h, HK_SRTP_AEAD_AES_128_GCM, 12);

    CHECK(SSL_shutdown(h->client.ssl) >= 0);
    client_drain(&h->client, &h->to_server);
    CHECK_INT_EQ(deliver_to_server(h), 0);
    CHECK_INT_EQ(h->last, HK_DTLS_CLOSED);
    CHECK(strstr(hk_dtls_error(h->dtls), "close_notify"));
    CHECK_INT_EQ(h->to_client.n, 1); /* our close_notify */
    CHECK_INT_EQ(hk_dtls_handle(h->dtls, garbage, sizeof garbage), HK_DTLS_CLOSED);
    hk_srtp_keys_t keys;
    CHECK_INT_EQ(hk_dtls_srtp_keys(h->dtls, &keys), HK_ESTATE);
    harness_free(h);
}

TEST(dtls_close_sends_close_notify)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    harness_start(h, NULL);
    CHECK_INT_EQ(run_handshake(h), 0);
    hk_dtls_close(h->dtls);
    CHECK_INT_EQ(h->to_client.n, 1);
    CHECK_INT_EQ(h->to_client.d[0].data[0], 0x15); /* alert */
    deliver_to_client(h);
    CHECK(SSL_get_shutdown(h->client.ssl) & SSL_RECEIVED_SHUTDOWN);
    hk_dtls_close(h->dtls);
    CHECK_INT_EQ(h->to_client.n, 0);
    CHECK_INT_EQ(hk_dtls_handle(h->dtls, (const uint8_t *)"\x17", 1), HK_DTLS_CLOSED);
    harness_free(h);
}

TEST(dtls_create_refuses_bad_fingerprints)
{
    hk_cert_t cert;
    CHECK_INT_EQ(hk_cert_generate(&cert), 0);
    hk_dtls_context_t *ctx = hk_dtls_context_create(&cert);
    CHECK(ctx);
    hk_cert_free(&cert); /* the context holds its own references */
    uint8_t fp[64] = {0};
    CHECK(hk_dtls_create(ctx, "md5", fp, 16, server_send, NULL) == NULL);
    CHECK(hk_dtls_create(ctx, "sha-256", fp, 20, server_send, NULL) == NULL);
    CHECK(hk_dtls_create(ctx, "sha-256", NULL, 32, server_send, NULL) == NULL);
    CHECK(hk_dtls_create(ctx, NULL, fp, 32, server_send, NULL) == NULL);
    CHECK(hk_dtls_create(ctx, "sha-256", fp, 32, NULL, NULL) == NULL);
    hk_dtls_t *d = hk_dtls_create(ctx, "SHA-256", fp, 32, server_send, NULL);
    CHECK(d);
    hk_srtp_keys_t keys;
    CHECK_INT_EQ(hk_dtls_srtp_keys(d, &keys), HK_ESTATE);
    hk_dtls_destroy(d);
    d = hk_dtls_create(ctx, "sha-1", fp, 20, server_send, NULL);
    CHECK(d);
    hk_dtls_destroy(d);
    d = hk_dtls_create(ctx, "sha-512", fp, 64, server_send, NULL);
    CHECK(d);
    hk_dtls_destroy(d);
    hk_dtls_context_destroy(ctx);
    CHECK(hk_dtls_context_create(NULL) == NULL);
}

/* A client certificate hashed with sha-1 in the SDP is checked with sha-1. */
TEST(dtls_sha1_fingerprint)
{
    harness_t *h = harness_new(BOTH_PROFILES);
    uint8_t fp[20];
    unsigned len = 0;
    CHECK(X509_digest(h->client.cert.x509, EVP_sha1(), fp, &len) == 1);
    h->dtls = hk_dtls_create(h->ctx, "sha-1", fp, len, server_send, &h->to_client);
    CHECK(h->dtls);
    CHECK_INT_EQ(run_handshake(h), 0);
    harness_free(h);
}

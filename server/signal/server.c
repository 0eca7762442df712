#include "server/signal/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/signal/api.h"
#include "server/signal/peer.h"
#include "server/signal/signaling.h"
#include "server/rtc/srtp.h"
#include "server/signal/webhook.h"

/* The same clock as the media plane's (app/worker.c: uv_hrtime), so times that
 * signaling hands to transports compare with theirs. */
uint64_t hk_signal_now_ms(const hk_signal_t *sig)
{
    (void)sig;
    return uv_hrtime() / 1000000;
}

hk_rtc_host_t *hk_signal_media(hk_signal_t *sig, int worker)
{
    hk_media_worker_t *w = &sig->workers[worker];
    if (!w->held) {
        sig->hold(sig->hold_user, worker, true);
        w->held = true;
        sig->n_held++;
    }
    return w->host;
}

void hk_signal_media_all(hk_signal_t *sig)
{
    for (int i = 0; i < sig->n_workers; i++)
        hk_signal_media(sig, i);
}

static void release_workers(hk_signal_t *sig)
{
    for (int i = 0; sig->n_held > 0 && i < sig->n_workers; i++) {
        if (sig->workers[i].held) {
            sig->workers[i].held = false;
            sig->n_held--;
            sig->hold(sig->hold_user, i, false);
        }
    }
}

static void on_release_prepare(uv_prepare_t *handle)
{
    release_workers(handle->data);
}

static void on_release_check(uv_check_t *handle)
{
    release_workers(handle->data);
}

int hk_signal_place(const hk_signal_t *sig)
{
    int best = 0;
    for (int i = 1; i < sig->n_workers; i++) {
        const hk_media_worker_t *w = &sig->workers[i], *b = &sig->workers[best];
        if (w->connections < b->connections ||
            (w->connections == b->connections && w->channels < b->channels))
            best = i;
    }
    return best;
}

/* libwebsockets logs through a process-wide hook with no user pointer: the sig that
 * receives its EMFILE reports. */
static hk_signal_t *log_sig;

/* Out of descriptors, libwebsockets' accept() fails and leaves the connection in the
 * listen queue, so the loop would wake at once, again and again (a spin, and a log line
 * each time). Instead: give up the spare descriptor, accept and close what is queued,
 * take the spare again (the libuv/nginx trick), and log once a second. */
static void emfile_relief(hk_signal_t *sig)
{
    if (sig->spare_fd >= 0) {
        close(sig->spare_fd);
        sig->spare_fd = -1;
    }
    for (int i = 0; i < 2; i++) {
        for (int n = 0; sig->listen_fds[i] >= 0 && n < 256; n++) {
            int fd = accept4(sig->listen_fds[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            close(fd);
            sig->counters.refused_no_descriptors++;
        }
    }
    sig->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (hk_log_due(&sig->last_emfile_log, hk_signal_now_ms(sig), 1000))
        HK_LOG(HK_LOG_ERROR, "signaling", NULL,
               "out of file descriptors: new connections are closed at once until some close "
               "(%llu so far; raise the open file limit or lower max_connections)",
               (unsigned long long)sig->counters.refused_no_descriptors);
}

static void lws_log_emit(int level, const char *line)
{
    int err;
    if (log_sig && sscanf(line, "accept: errno %d", &err) == 1 &&
        (err == EMFILE || err == ENFILE)) {
        emfile_relief(log_sig);
        return;
    }
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    HK_LOG(level == LLL_ERR ? HK_LOG_ERROR : HK_LOG_WARN, "lws", NULL, "%.*s", (int)n, line);
}

/* The listening TCP socket on `port` that libwebsockets made (it does not hand it out):
 * found among this process's descriptors, and made non-blocking for emfile_relief.
 * -1 when none. */
static int find_listen_fd(int port)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(dir));) {
        int fd = atoi(e->d_name);
        int listening = 0;
        socklen_t len = sizeof listening;
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        if (fd <= 2 || fd == dirfd(dir) ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening ||
            getsockname(fd, (struct sockaddr *)&a, &alen) != 0 || a.sin_family != AF_INET ||
            ntohs(a.sin_port) != port)
            continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        found = fd;
    }
    closedir(dir);
    return found;
}

/* Host candidates: public_ipv4_address when set, else every IPv4 address of the host
 * (non-loopback first, loopback last so tests on one machine work). */
static void pick_candidates(hk_signal_t *sig)
{
    const hk_config_t *config = sig->config;
    if (config->public_ipv4_address[0]) {
        snprintf(sig->candidate_addresses[0], sizeof sig->candidate_addresses[0], "%s",
                 config->public_ipv4_address);
        sig->n_candidates = 1;
        return;
    }
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    if (uv_interface_addresses(&ifs, &n) != 0)
        n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n && sig->n_candidates < 4; i++) {
            if (ifs[i].address.address4.sin_family != AF_INET || ifs[i].is_internal != pass)
                continue;
            uv_ip4_name(&ifs[i].address.address4, sig->candidate_addresses[sig->n_candidates],
                        sizeof sig->candidate_addresses[0]);
            sig->n_candidates++;
        }
    }
    uv_free_interface_addresses(ifs, n);
    if (sig->n_candidates == 0) {
        strcpy(sig->candidate_addresses[0], "127.0.0.1");
        sig->n_candidates = 1;
    }
}

static void on_tick(uv_timer_t *timer)
{
    hk_signal_t *sig = timer->data;
    uint64_t now = hk_signal_now_ms(sig);
    for (hk_peer_t *p = sig->peers; p; p = p->next)
        hk_peer_tick(p, now);
}

void hk_signal_drain(hk_signal_t *sig)
{
    sig->stopping = 1;
}

/* TLS 1.2 with AEAD suites and forward secrecy only (no CBC, no SHA-1 MACs, no RSA key
 * exchange), TLS 1.3 with OpenSSL's defaults, and HTTP/1.1 only: no HTTP/2 over ALPN. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static void harden_tls(struct lws_context_creation_info *vinfo)
{
    vinfo->ssl_cipher_list = TLS12_CIPHERS;
    vinfo->ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    vinfo->alpn = "http/1.1";
}

int hk_signal_start(hk_signal_t *sig, uv_loop_t *loop, const hk_config_t *config)
{
    sig->loop = loop;
    sig->config = config;
    sig->channels = NULL;
    sig->peers = NULL;
    sig->spare_fd = -1;
    pick_candidates(sig);
    /* Held workers are let go whenever the loop is about to wait, and after the
     * callbacks of each wake-up: never while signaling is idle. */
    if (uv_prepare_init(loop, &sig->release_prepare) != 0 ||
        uv_check_init(loop, &sig->release_check) != 0 || hk_mailbox_init(&sig->events, loop) != 0) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL, "cannot set up the media workers' handles");
        return HK_EIO;
    }
    sig->release_prepare.data = sig->release_check.data = sig;
    uv_prepare_start(&sig->release_prepare, on_release_prepare);
    uv_check_start(&sig->release_check, on_release_check);
    uv_unref((uv_handle_t *)&sig->release_prepare);
    uv_unref((uv_handle_t *)&sig->release_check);
    uv_unref((uv_handle_t *)&sig->events.async); /* the loop ends without waiting for it */
    /* One external-sender key for the process's MLS channels (docs/protocol.md §6). */
    if (hk_mls_ds_config_default(&sig->mls_config) != 0) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL, "cannot make the MLS external-sender key");
        return HK_EIO;
    }
    sig->mls_config.max_members = config->max_connections_per_channel < 256
                                      ? (uint32_t)config->max_connections_per_channel
                                      : 256;

    lws_set_log_level(LLL_ERR | LLL_WARN | (getenv("HK_LWS_DEBUG") ? LLL_NOTICE | LLL_INFO : 0),
                      lws_log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *foreign_loops[1] = {loop};
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = foreign_loops;
    info.user = sig;
    info.port = CONTEXT_PORT_NO_LISTEN;
    sig->lws = lws_create_context(&info);
    if (!sig->lws) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL, "cannot create the libwebsockets context");
        return HK_EIO;
    }

    const char *iface = strcmp(config->listen_address, "0.0.0.0") ? config->listen_address : NULL;
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.vhost_name = "signaling";
    vinfo.port = config->signaling_port;
    vinfo.iface = iface;
    vinfo.protocols = hk_signaling_protocols;
    vinfo.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (config->tls_certificate_file[0]) {
        /* lws enables TLS on a vhost only when its own options say so too. */
        vinfo.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vinfo.ssl_cert_filepath = config->tls_certificate_file;
        vinfo.ssl_private_key_filepath = config->tls_private_key_file;
        harden_tls(&vinfo);
    }
    if (!lws_create_vhost(sig->lws, &vinfo)) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL, "cannot listen for signaling on %s:%d",
               config->listen_address, config->signaling_port);
        goto fail;
    }

    memset(&vinfo, 0, sizeof vinfo);
    const char *api_address = hk_config_api_address(config);
    const char *api_cert = hk_config_api_tls_certificate(config);
    vinfo.vhost_name = "api";
    vinfo.port = config->api_port;
    vinfo.iface = strcmp(api_address, "0.0.0.0") ? api_address : NULL;
    vinfo.protocols = hk_api_protocols;
    vinfo.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    /* HSTS with TLS: lws adds a vhost's canned headers to every response, the API's and
     * the /demo/ files'. */
    static struct lws_protocol_vhost_options hsts = {
        NULL, NULL, "strict-transport-security:", "max-age=31536000"};
    if (api_cert[0]) {
        vinfo.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vinfo.ssl_cert_filepath = api_cert;
        vinfo.ssl_private_key_filepath = hk_config_api_tls_private_key(config);
        vinfo.headers = &hsts;
        harden_tls(&vinfo);
    }
    if (config->demo_directory[0] && realpath(config->demo_directory, sig->demo_origin)) {
        struct lws_http_mount *m = &sig->demo_mount;
        m->mountpoint = "/demo";
        m->mountpoint_len = 5;
        m->origin = sig->demo_origin;
        m->def = "index.html";
        m->origin_protocol = LWSMPRO_FILE;
        vinfo.mounts = m;
    }
    if (!lws_create_vhost(sig->lws, &vinfo)) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL, "cannot listen for the API on %s:%d", api_address,
               config->api_port);
        goto fail;
    }

    sig->listen_fds[0] = find_listen_fd(config->signaling_port);
    sig->listen_fds[1] = find_listen_fd(config->api_port);
    sig->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    log_sig = sig;

    /* The auth webhook's client connections: a vhost of their own with a client TLS
     * context that checks the webhook's certificate, whether or not signaling has TLS. */
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.vhost_name = HK_WEBHOOK_VHOST;
    vinfo.port = CONTEXT_PORT_NO_LISTEN;
    vinfo.protocols = hk_signaling_protocols;
    vinfo.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (strncmp(config->auth_webhook_url, "https://", 8) == 0)
        vinfo.client_ssl_ca_filepath = config->auth_webhook_ca_file; /* must be readable */
    vinfo.client_ssl_cipher_list = TLS12_CIPHERS;
    if (!lws_create_vhost(sig->lws, &vinfo)) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL,
               "cannot set up the auth webhook's TLS client (auth_webhook_ca_file %s)",
               config->auth_webhook_ca_file);
        goto fail;
    }

    int rc = uv_timer_init(loop, &sig->tick);
    sig->tick.data = sig;
    if (rc == 0)
        rc = uv_timer_start(&sig->tick, on_tick, 1000, 1000);
    if (rc != 0) {
        HK_LOG(HK_LOG_ERROR, "signaling", NULL, "cannot start the signaling timer: %s",
               uv_strerror(rc));
        goto fail;
    }

    if (config->debug_payload_directory[0])
        HK_LOG(HK_LOG_WARN, "signaling", NULL,
               "debug_payload_directory is set: every forwarded payload is written to %s "
               "(a debugging aid; never in production)",
               config->debug_payload_directory);
    HK_LOG(HK_LOG_INFO, "signaling", NULL,
           "listening: signaling %s://%s:%d/signaling, api %s://%s:%d, media udp %d..%d (%s)",
           config->tls_certificate_file[0] ? "wss" : "ws", config->listen_address,
           config->signaling_port, api_cert[0] ? "https" : "http", api_address, config->api_port,
           config->media_port, config->media_port + sig->n_workers - 1,
           sig->candidate_addresses[0]);
    if (!config->api_secret[0])
        HK_LOG(HK_LOG_INFO, "signaling", NULL,
               "api_secret is not set: the API listens on 127.0.0.1 only and asks for no "
               "credentials; set api_secret to reach it from elsewhere");
    return 0;

fail:
    lws_context_destroy(sig->lws);
    sig->lws = NULL;
    uv_run(loop, UV_RUN_NOWAIT);
    return HK_EIO;
}

static void on_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void on_drain_deadline(uv_timer_t *timer)
{
    *(int *)timer->data = 1;
}

void hk_signal_close_all(hk_signal_t *sig)
{
    sig->stopping = 1;
    /* Let every client read a close frame with a reason before the context goes: each
     * peer writes 1001 and drops its connection once its queue is written. Clients that
     * do not read are cut when shutdown_timeout expires (lws_context_destroy below). */
    unsigned n = 0;
    for (hk_peer_t *p = sig->peers; p; p = p->next, n++)
        hk_peer_close(p, HK_CLOSE_GOING_AWAY, "server shutting down");
    if (n)
        HK_LOG(HK_LOG_INFO, "signaling", NULL, "closing %u connection(s)", n);
    int expired = 0;
    uv_timer_t drain;
    uv_timer_init(sig->loop, &drain);
    drain.data = &expired;
    uv_timer_start(&drain, on_drain_deadline, sig->config->shutdown_timeout_ms, 0);
    while (sig->peers && !expired)
        uv_run(sig->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&drain, on_closed);
    if (sig->peers)
        HK_LOG(HK_LOG_WARN, "signaling", NULL,
               "shutdown_timeout: dropping connections that did not close in time");
    /* The workers stop one after another next: no relay may still push to one that
     * stopped. */
    for (hk_peer_t *p = sig->peers; p; p = p->next)
        hk_peer_drop_relays(p);
    release_workers(sig);             /* held for that: they must take their stop message */
    uv_run(sig->loop, UV_RUN_NOWAIT); /* the drain timer's close */
}

void hk_signal_stop(hk_signal_t *sig)
{
    uv_close((uv_handle_t *)&sig->tick, on_closed);
    uv_close((uv_handle_t *)&sig->release_prepare, on_closed);
    uv_close((uv_handle_t *)&sig->release_check, on_closed);
    lws_context_destroy(sig->lws);
    sig->lws = NULL;
    uv_run(sig->loop, UV_RUN_DEFAULT);
    log_sig = NULL;
    if (sig->spare_fd >= 0)
        close(sig->spare_fd);
    sig->spare_fd = -1;
    hk_mailbox_close(&sig->events); /* the workers are stopped: nothing posts any more */
    uv_run(sig->loop, UV_RUN_DEFAULT);
    hk_mailbox_free(&sig->events);
    release_workers(sig);
    hk_map_free(&sig->sockets_per_address);
    hk_map_free(&sig->peer_serials);
    free(sig->metrics_text);
    sig->metrics_text = NULL;
}

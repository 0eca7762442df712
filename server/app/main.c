/* hisoka: an E2EE-aware WebRTC SFU speaking Sora's signaling.
 *   hisoka [--config FILE]       run (default ./sora.conf)
 *   hisoka --check-config FILE   validate FILE, print nothing on success, exit 0
 *   hisoka --version | --help
 * Exit codes: 0 normal stop, 1 start-up failure, 2 bad command line or config. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "config/config.h"
#include "server/app/cluster.h"
#include "server/app/process.h"
#include "server/app/worker.h"
#include "server/signal/server.h"

#define HK_VERSION "0.1.0"

/* The cluster (NULL without cluster_redis_url): the signal handler tells it to drain. */
static hk_cluster_t *cluster;

/* SIGTERM / SIGINT: from now on /health answers 503 and new WebSockets are refused;
 * the loop stops and main drains the connections. */
static void on_stop(void *arg, int signum)
{
    hk_signal_t *sig = arg;
    if (sig->stopping)
        return;
    HK_LOG(HK_LOG_INFO, "main", NULL, "signal %d: shutting down (drain up to %u ms)", signum,
           sig->config->shutdown_timeout_ms);
    hk_signal_drain(sig);
    hk_cluster_drain(cluster);
    uv_stop(sig->loop);
}

/* Signaling holds a worker to touch its media (signal/server.h). */
static void hold_worker(void *user, int index, bool hold)
{
    hk_worker_t *workers = user;
    if (hold)
        hk_worker_hold(&workers[index]);
    else
        hk_worker_release(&workers[index]);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: hisoka [--config FILE]\n"
                 "       hisoka --check-config FILE\n"
                 "       hisoka --version | --help\n"
                 "\n"
                 "  --config FILE        run with FILE (default ./sora.conf)\n"
                 "  --check-config FILE  validate FILE; print nothing and exit 0 when valid,\n"
                 "                       else print FILE:LINE: key: reason and exit 2\n"
                 "  --version            print the version\n"
                 "  --help               print this help\n");
}

int main(int argc, char **argv)
{
    const char *config_path = "sora.conf";
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("hisoka %s\n", HK_VERSION);
            return 0;
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--check-config") == 0) &&
                   i + 1 < argc) {
            check_only = strcmp(argv[i], "--check-config") == 0;
            config_path = argv[++i];
        } else {
            fprintf(stderr, "hisoka: unknown argument: %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    static hk_config_t config;
    char err[512];
    if (hk_config_load(&config, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (check_only)
        return 0;

    static hk_process_t process;
    static hk_worker_t workers[HK_MAX_WORKERS];
    static hk_media_worker_t media[HK_MAX_WORKERS];
    static hk_signal_t sig;
    int n_workers = 0;
    hk_process_raise_nofile(&process);
    hk_log_setup(config.log_level, config.log_format);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 1;
    if (hk_process_init(&process, &config) != 0)
        goto out;
    int want = hk_worker_count(&config);
    for (; n_workers < want; n_workers++) {
        hk_worker_t *w = &workers[n_workers];
        if (hk_worker_start(w, n_workers, &config, &process.cert) != 0)
            goto out;
        media[n_workers] = (hk_media_worker_t){
            .host = &w->host,
            .relays = &w->relays,
            .media_port = config.media_port + n_workers,
            .media_tcp_port = config.media_tcp_port ? config.media_tcp_port + n_workers : 0,
            .link_counters = &w->udp.counters,
            .link_gso = &w->udp.gso,
            .tcp_counters = w->tcp_open ? &w->tcp.counters : NULL,
        };
    }
    sig.workers = media;
    sig.n_workers = n_workers;
    sig.hold = hold_worker;
    sig.hold_user = workers;
    sig.cert = &process.cert;
    if (config.cluster_redis_url[0] && !(cluster = hk_cluster_start(&loop, &config, &sig))) {
        for (int i = 0; i < n_workers; i++)
            hk_worker_stop(&workers[i]);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out;
    }
    if (hk_signal_start(&sig, &loop, &config) != 0) {
        hk_cluster_stop(cluster);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out;
    }
    hk_process_watch_signals(&process, &loop, on_stop, &sig);
    HK_LOG(HK_LOG_INFO, "main", NULL, "hisoka %s started with %s: %d media worker(s)", HK_VERSION,
           config_path, n_workers);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Stopping: connections are told first (media still flows meanwhile), then the media
     * workers stop, then the signal watchers close, then signaling and the loop finish. */
    hk_signal_close_all(&sig);
    hk_cluster_stop(cluster);
    for (int i = 0; i < n_workers; i++)
        hk_worker_stop(&workers[i]);
    hk_process_unwatch_signals(&process);
    hk_signal_stop(&sig);
    rc = 0;
out:
    for (int i = 0; i < n_workers; i++) {
        hk_worker_stop(&workers[i]);
        hk_worker_free(&workers[i]);
    }
    hk_process_free(&process);
    uv_loop_close(&loop);
    if (rc == 0)
        HK_LOG(HK_LOG_INFO, "main", NULL, "stopped");
    return rc;
}

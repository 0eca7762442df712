/* hisoka: an E2EE-aware WebRTC SFU speaking Sora's signaling.
 *   hisoka [--config FILE]       run (default ./sora.conf)
 *   hisoka --check-config FILE   validate FILE, print nothing on success, exit 0
 *   hisoka --version | --help
 * Exit codes: 0 normal stop, 1 start-up failure, 2 bad command line or config. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "common/log.h"
#include "config/config.h"
#include "server/app/worker.h"

#define HK_VERSION "0.1.0"

/* Raises the soft descriptor limit to the hard one (every WebSocket is a descriptor).
 * *before is the soft limit found. */
static struct rlimit raise_nofile(rlim_t *before)
{
    struct rlimit rl = {0, 0};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return rl;
    *before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl;
}

/* Reports the limit (once the log is set up), with a warning when it is below what
 * max_connections needs: a connection is one descriptor, the process needs some more. */
static void report_nofile(const struct rlimit *rl, rlim_t before, const hk_config_t *config)
{
    HK_LOG(HK_LOG_INFO, "main", NULL, "open file limit %llu (was %llu, hard limit %llu)",
           (unsigned long long)rl->rlim_cur, (unsigned long long)before,
           (unsigned long long)rl->rlim_max);
    if (rl->rlim_cur != RLIM_INFINITY && rl->rlim_cur < (rlim_t)config->max_connections + 64)
        HK_LOG(HK_LOG_WARN, "main", NULL,
               "the open file limit %llu is below max_connections (%d) + 64: raise the hard "
               "limit (ulimit -Hn, LimitNOFILE=) or lower max_connections",
               (unsigned long long)rl->rlim_cur, config->max_connections);
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

    hk_log_setup(config.log_level, config.log_format);
    rlim_t nofile_before = 0;
    struct rlimit nofile = raise_nofile(&nofile_before);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    static hk_worker_t worker;
    if (hk_worker_start(&worker, &loop, &config) != 0) {
        uv_loop_close(&loop);
        return 1;
    }
    report_nofile(&nofile, nofile_before, &config);
    HK_LOG(HK_LOG_INFO, "main", NULL, "hisoka %s started with %s", HK_VERSION, config_path);
    uv_run(&loop, UV_RUN_DEFAULT);
    hk_worker_stop(&worker);
    uv_loop_close(&loop);
    HK_LOG(HK_LOG_INFO, "main", NULL, "stopped");
    return 0;
}

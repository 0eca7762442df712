#include "server/app/process.h"

#include <signal.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/rtc/srtp.h"

void hk_process_raise_nofile(hk_process_t *p)
{
    struct rlimit rl = {0, 0};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    p->nofile_before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    p->nofile = rl;
}

/* Reports the limit, with a warning when it is below what max_connections needs: a
 * connection is one descriptor, the process needs some more. */
static void report_nofile(const hk_process_t *p)
{
    const struct rlimit *rl = &p->nofile;
    HK_LOG(HK_LOG_INFO, "main", NULL, "open file limit %llu (was %llu, hard limit %llu)",
           (unsigned long long)rl->rlim_cur, (unsigned long long)p->nofile_before,
           (unsigned long long)rl->rlim_max);
    if (rl->rlim_cur != RLIM_INFINITY && rl->rlim_cur < (rlim_t)p->config->max_connections + 64)
        HK_LOG(HK_LOG_WARN, "main", NULL,
               "the open file limit %llu is below max_connections (%d) + 64: raise the hard "
               "limit (ulimit -Hn, LimitNOFILE=) or lower max_connections",
               (unsigned long long)rl->rlim_cur, p->config->max_connections);
}

int hk_process_init(hk_process_t *p, const hk_config_t *config)
{
    p->config = config;
    signal(SIGPIPE, SIG_IGN);
    if (hk_log_open(config->log_file) != 0) {
        HK_LOG(HK_LOG_ERROR, "main", NULL, "cannot open the log file %s", config->log_file);
        return HK_EIO;
    }
    report_nofile(p);
    if (hk_srtp_global_init() != 0) {
        HK_LOG(HK_LOG_ERROR, "main", NULL,
               "libsrtp2 failed to initialise (or its self-test of the AES-GCM cipher failed)");
        return HK_EIO;
    }
    if (hk_cert_generate(&p->cert) != 0) {
        HK_LOG(HK_LOG_ERROR, "main", NULL, "cannot generate the DTLS certificate");
        return HK_EIO;
    }
    return 0;
}

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    hk_process_t *p = handle->data;
    p->on_stop(p->stop_arg, signum);
}

/* SIGHUP: reopen the log file (logrotate renamed it). */
static void on_hup_signal(uv_signal_t *handle, int signum)
{
    (void)signum;
    hk_process_t *p = handle->data;
    if (hk_log_reopen() != 0)
        HK_LOG(HK_LOG_ERROR, "main", NULL, "SIGHUP: cannot reopen the log file %s",
               p->config->log_file);
    else
        HK_LOG(HK_LOG_INFO, "main", NULL, "SIGHUP: log file reopened");
}

void hk_process_watch_signals(hk_process_t *p, uv_loop_t *loop,
                              void (*on_stop)(void *arg, int signum), void *arg)
{
    p->on_stop = on_stop;
    p->stop_arg = arg;
    uv_signal_t *handles[3] = {&p->sigint, &p->sigterm, &p->sighup};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, handles[i]);
        handles[i]->data = p;
    }
    uv_signal_start(&p->sigint, on_stop_signal, SIGINT);
    uv_signal_start(&p->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&p->sighup, on_hup_signal, SIGHUP);
    p->watching = true;
}

void hk_process_unwatch_signals(hk_process_t *p)
{
    if (!p->watching)
        return;
    p->watching = false;
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->sighup, NULL);
    /* Closing the watchers restored the default actions: a second SIGTERM now would kill
     * the process with a signal instead of letting it finish and exit 0. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

void hk_process_free(hk_process_t *p)
{
    hk_cert_free(&p->cert);
}

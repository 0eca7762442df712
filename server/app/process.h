/* What is global to the process, set up once before any loop runs and torn down last:
 * the log file, libsrtp2, the DTLS certificate (one for every connection, its
 * fingerprint in every offer), the open file limit, and the signals (SIGINT/SIGTERM
 * stop, SIGHUP reopens the log file). Nothing of this belongs to a worker. */
#ifndef HK_PROCESS_H
#define HK_PROCESS_H

#include <sys/resource.h>
#include <uv.h>

#include "config/config.h"
#include "server/rtc/cert.h"

typedef struct {
    const hk_config_t *config;
    hk_cert_t cert;
    struct rlimit nofile; /* after raising */
    rlim_t nofile_before;
    uv_signal_t sigint, sigterm, sighup;
    bool watching;
    void (*on_stop)(void *arg, int signum);
    void *stop_arg;
} hk_process_t;

/* Raises the open file limit (before the log is set up: reported by _init). */
void hk_process_raise_nofile(hk_process_t *p);

/* Log file, libsrtp2, certificate. Returns 0 or HK_EIO (logged). */
int hk_process_init(hk_process_t *p, const hk_config_t *config);

/* SIGINT and SIGTERM call on_stop (once each time); SIGHUP reopens the log file. */
void hk_process_watch_signals(hk_process_t *p, uv_loop_t *loop,
                              void (*on_stop)(void *arg, int signum), void *arg);

/* Closes the signal watchers (a second SIGTERM during shutdown is then ignored, so the
 * process still exits 0). */
void hk_process_unwatch_signals(hk_process_t *p);

/* Frees the certificate. */
void hk_process_free(hk_process_t *p);

#endif

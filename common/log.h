/* Logging: one macro with level, subsystem tag and optional connection id.
 * Output goes to stderr (or the configured file) as text or JSON lines; each line is
 * written with one write(2) so lines from a rotated file are never split.
 * Never pass key material or media payload to these functions. */
#ifndef HK_LOG_H
#define HK_LOG_H

#include <stdbool.h>

#include <stdint.h>

typedef enum { HK_LOG_DEBUG = 0, HK_LOG_INFO, HK_LOG_WARN, HK_LOG_ERROR } hk_log_level_t;
typedef enum { HK_LOG_FORMAT_TEXT = 0, HK_LOG_FORMAT_JSON } hk_log_format_t;

/* Sets the minimum level and the format; process-wide (logging is not media state). */
void hk_log_setup(hk_log_level_t level, hk_log_format_t format);
int hk_log_enabled(hk_log_level_t level);

/* Sends the log to path (opened O_WRONLY|O_APPEND|O_CREAT, mode 0640), or back to
 * standard error when path is NULL or "". Returns 0 or HK_EIO (the log is unchanged). */
int hk_log_open(const char *path);

/* Reopens the log file at the same path (after logrotate renamed it: SIGHUP). Does
 * nothing when the log goes to standard error. Returns 0 or HK_EIO, in which case
 * the old file is kept. */
int hk_log_reopen(void);

/* Closes the log file (back to standard error). */
void hk_log_close(void);

/* conn_id may be NULL. */
void hk_log_write(hk_log_level_t level, const char *subsystem, const char *conn_id, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

#define HK_LOG(level, subsystem, conn_id, ...)                                                     \
    do {                                                                                           \
        if (hk_log_enabled(level))                                                                 \
            hk_log_write(level, subsystem, conn_id, __VA_ARGS__);                                  \
    } while (0)

const char *hk_log_level_name(hk_log_level_t level);

/* For warnings an attacker can trigger at will: true at most once per interval_ms, and
 * then *last_ms becomes now_ms. *last_ms starts at 0. */
static inline bool hk_log_due(uint64_t *last_ms, uint64_t now_ms, uint64_t interval_ms)
{
    if (*last_ms && now_ms - *last_ms < interval_ms)
        return false;
    *last_ms = now_ms;
    return true;
}

#endif

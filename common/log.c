#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static hk_log_level_t min_level = HK_LOG_INFO;
static hk_log_format_t out_format = HK_LOG_FORMAT_TEXT;

void hk_log_setup(hk_log_level_t level, hk_log_format_t format)
{
    min_level = level;
    out_format = format;
}

int hk_log_enabled(hk_log_level_t level)
{
    return level >= min_level;
}

const char *hk_log_level_name(hk_log_level_t level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return level <= HK_LOG_ERROR ? names[level] : "?";
}

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

void hk_log_write(hk_log_level_t level, const char *subsystem, const char *conn_id, const char *fmt,
                  ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    if (out_format == HK_LOG_FORMAT_JSON) {
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"subsystem\":\"", when,
                hk_log_level_name(level));
        json_escape(stderr, subsystem);
        fputc('"', stderr);
        if (conn_id) {
            fputs(",\"connection_id\":\"", stderr);
            json_escape(stderr, conn_id);
            fputc('"', stderr);
        }
        fputs(",\"message\":\"", stderr);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %-5s [%s]%s%s%s %s\n", when, hk_log_level_name(level), subsystem,
                conn_id ? " [" : "", conn_id ? conn_id : "", conn_id ? "]" : "", msg);
    }
    fflush(stderr);
}

int hk_log_ratelimit_allow(hk_log_ratelimit_t *rl, uint64_t now_ms, uint32_t interval_ms,
                           uint32_t burst)
{
    if (now_ms - rl->window_start_ms >= interval_ms) {
        rl->window_start_ms = now_ms;
        rl->count = 0;
    }
    if (rl->count < burst) {
        rl->count++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}

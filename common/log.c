#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

#define LINE_MAX_BYTES 4096

static hk_log_level_t min_level = HK_LOG_INFO;
static hk_log_format_t out_format = HK_LOG_FORMAT_TEXT;
static int out_fd = STDERR_FILENO;
static char out_path[PATH_MAX];

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

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int hk_log_open(const char *path)
{
    if (!path || !path[0]) {
        hk_log_close();
        return 0;
    }
    if (strlen(path) >= sizeof out_path)
        return HK_EIO;
    int fd = open_file(path);
    if (fd < 0)
        return HK_EIO;
    if (out_fd != STDERR_FILENO)
        close(out_fd);
    out_fd = fd;
    snprintf(out_path, sizeof out_path, "%s", path);
    return 0;
}

int hk_log_reopen(void)
{
    if (out_fd == STDERR_FILENO || !out_path[0])
        return 0;
    int fd = open_file(out_path);
    if (fd < 0)
        return HK_EIO;
    close(out_fd);
    out_fd = fd;
    return 0;
}

void hk_log_close(void)
{
    if (out_fd != STDERR_FILENO)
        close(out_fd);
    out_fd = STDERR_FILENO;
    out_path[0] = '\0';
}

/* Appends to line[*n] (bounded by LINE_MAX_BYTES, keeping room for the newline). */
static void put(char *line, size_t *n, const char *s, size_t len)
{
    size_t room = LINE_MAX_BYTES - 1 - *n;
    if (len > room)
        len = room;
    memcpy(line + *n, s, len);
    *n += len;
}

static void put_str(char *line, size_t *n, const char *s)
{
    put(line, n, s, strlen(s));
}

static void put_json(char *line, size_t *n, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(line, n, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(line, n, esc, 6);
        } else {
            put(line, n, (const char *)&c, 1);
        }
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

    char line[LINE_MAX_BYTES];
    size_t n = 0;
    if (out_format == HK_LOG_FORMAT_JSON) {
        put_str(line, &n, "{\"time\":\"");
        put_str(line, &n, when);
        put_str(line, &n, "\",\"level\":\"");
        put_str(line, &n, hk_log_level_name(level));
        put_str(line, &n, "\",\"subsystem\":\"");
        put_json(line, &n, subsystem);
        put_str(line, &n, "\"");
        if (conn_id) {
            put_str(line, &n, ",\"connection_id\":\"");
            put_json(line, &n, conn_id);
            put_str(line, &n, "\"");
        }
        put_str(line, &n, ",\"message\":\"");
        put_json(line, &n, msg);
        put_str(line, &n, "\"}");
    } else {
        char head[160];
        snprintf(head, sizeof head, "%s %-5s [%s]", when, hk_log_level_name(level), subsystem);
        put_str(line, &n, head);
        if (conn_id) {
            put_str(line, &n, " [");
            put_str(line, &n, conn_id);
            put_str(line, &n, "]");
        }
        put_str(line, &n, " ");
        put_str(line, &n, msg);
    }
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = write(out_fd, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

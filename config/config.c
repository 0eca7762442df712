/* sora.conf parser.
 *
 * Grammar (one logical line per physical line, "\n" or "\r\n"):
 *
 *   file    = [BOM] *(line EOL) [line]
 *   line    = ws [ "#" text ]                         ; blank or comment
 *           / ws key ws "=" ws value ws [ "#" text ]  ; a "#" starts a comment only at the
 *                                                     ; start of the value or after ws
 *   ws      = *( SP / HTAB )
 *
 * Every line is at most 4096 bytes, valid UTF-8, and holds no NUL or other control
 * character except HTAB. Values are typed by key:
 *
 *   bool      true | false
 *   integer   ["-"] 1*DIGIT               (a "-" is accepted only to report the range)
 *   duration  integer ws ("ms" | "s" | "min" | "h")
 *   size      integer [ws ("B" | "KiB" | "MiB" | "GiB")]   (no unit = bytes)
 *   string    any text, trimmed
 *
 * Errors read "FILE:LINE: key: reason"; the key is "config" when the line has none. */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

#define MAX_LINE       4096
#define MAX_FILE       (1024 * 1024)
#define ECHO_MAX       64              /* bytes of a value or key quoted in a message */
#define NUMBER_CEILING 1000000000000LL /* larger magnitudes saturate: always out of range */
#define MS_PER_SECOND  1000LL
#define MS_PER_MINUTE  (60 * MS_PER_SECOND)
#define MS_PER_HOUR    (60 * MS_PER_MINUTE)
#define KIB            1024LL
#define MIB            (1024 * KIB)
#define GIB            (1024 * MIB)
#define DURATION_UNITS "ms, s, min, h"
#define SIZE_UNITS     "B, KiB, MiB, GiB"

typedef enum {
    TYPE_BOOL,
    TYPE_INT,
    TYPE_DURATION,
    TYPE_SIZE,
    TYPE_IPV4,
    TYPE_STRING,
    TYPE_LOG_LEVEL,
    TYPE_LOG_FORMAT,
    TYPE_WORKERS, /* "auto" (0: one per core) or a count */
} value_type_t;

typedef struct {
    const char *name;
    value_type_t type;
    size_t offset;
    size_t size; /* of the field: for strings, the buffer size including the NUL */
    long long min, max;
    bool allow_empty;
} key_spec_t;

#define FIELD(f) offsetof(hk_config_t, f), sizeof(((hk_config_t *)0)->f)

/* Index order is used by the port and TLS checks below. */
enum {
    KEY_LISTEN_ADDRESS,
    KEY_SIGNALING_PORT,
    KEY_API_PORT,
    KEY_MEDIA_PORT,
    KEY_MEDIA_TCP_PORT,
    KEY_WORKERS,
    KEY_CHANNEL_SPREAD_THRESHOLD,
    KEY_PUBLIC_IPV4_ADDRESS,
    KEY_E2EE,
    KEY_SIGNALING_NOTIFY,
    KEY_SIGNALING_NOTIFY_METADATA,
    KEY_MAX_CONNECTIONS_PER_CHANNEL,
    KEY_MAX_CONNECTIONS,
    KEY_MAX_CHANNELS,
    KEY_MAX_CONNECTIONS_PER_ADDRESS,
    KEY_MAX_NOTIFY_METADATA_SIZE,
    KEY_MAX_CHANNEL_NOTIFY_METADATA_SIZE,
    KEY_PING_INTERVAL,
    KEY_MAX_MISSED_PONGS,
    KEY_CONNECT_TIMEOUT,
    KEY_REOFFER_TIMEOUT,
    KEY_CONSENT_TIMEOUT,
    KEY_MAX_MESSAGE_SIZE_BEFORE_CONNECT,
    KEY_MAX_MESSAGE_SIZE,
    KEY_MAX_KEY_MESSAGES_PER_SECOND,
    KEY_MAX_NACKS_PER_SECOND,
    KEY_BUSY_POLL_US,
    KEY_LOG_LEVEL,
    KEY_LOG_FORMAT,
    KEY_TLS_CERTIFICATE_FILE,
    KEY_TLS_PRIVATE_KEY_FILE,
    KEY_DEMO_DIRECTORY,
    KEY_LOG_FILE,
    KEY_SHUTDOWN_TIMEOUT,
    KEY_DEBUG_PAYLOAD_DIRECTORY,
    KEY_AUTH_WEBHOOK_URL,
    KEY_AUTH_WEBHOOK_TIMEOUT,
    KEY_AUTH_WEBHOOK_CA_FILE,
    KEY_API_SECRET,
    KEY_API_LISTEN_ADDRESS,
    KEY_API_ALLOWED_HOSTS,
    KEY_API_TLS_CERTIFICATE_FILE,
    KEY_API_TLS_PRIVATE_KEY_FILE,
    KEY_TURN_URLS,
    KEY_TURN_SECRET,
    KEY_TURN_CREDENTIAL_TTL,
    KEY_CLUSTER_REDIS_URL,
    KEY_CLUSTER_NODE_URL,
    KEY_COUNT
};

static const key_spec_t keys[KEY_COUNT] = {
    [KEY_LISTEN_ADDRESS] = {"listen_address", TYPE_IPV4, FIELD(listen_address), 0, 0, false},
    [KEY_SIGNALING_PORT] = {"signaling_port", TYPE_INT, FIELD(signaling_port), 1, 65535, false},
    [KEY_API_PORT] = {"api_port", TYPE_INT, FIELD(api_port), 1, 65535, false},
    [KEY_MEDIA_PORT] = {"media_port", TYPE_INT, FIELD(media_port), 1, 65535, false},
    [KEY_MEDIA_TCP_PORT] = {"media_tcp_port", TYPE_INT, FIELD(media_tcp_port), 0, 65535, false},
    [KEY_WORKERS] = {"workers", TYPE_WORKERS, FIELD(workers), 1, HK_MAX_WORKERS, false},
    [KEY_CHANNEL_SPREAD_THRESHOLD] = {"channel_spread_threshold", TYPE_INT,
                                      FIELD(channel_spread_threshold), 0, 100000, false},
    [KEY_PUBLIC_IPV4_ADDRESS] = {"public_ipv4_address", TYPE_IPV4, FIELD(public_ipv4_address), 0, 0,
                                 true},
    [KEY_E2EE] = {"e2ee", TYPE_BOOL, FIELD(e2ee), 0, 0, false},
    [KEY_SIGNALING_NOTIFY] = {"signaling_notify", TYPE_BOOL, FIELD(signaling_notify), 0, 0, false},
    [KEY_SIGNALING_NOTIFY_METADATA] = {"signaling_notify_metadata", TYPE_BOOL,
                                       FIELD(signaling_notify_metadata), 0, 0, false},
    [KEY_MAX_CONNECTIONS_PER_CHANNEL] = {"max_connections_per_channel", TYPE_INT,
                                         FIELD(max_connections_per_channel), 1, 1000, false},
    [KEY_MAX_CONNECTIONS] = {"max_connections", TYPE_INT, FIELD(max_connections), 1, 100000, false},
    [KEY_MAX_CHANNELS] = {"max_channels", TYPE_INT, FIELD(max_channels), 1, 100000, false},
    [KEY_MAX_CONNECTIONS_PER_ADDRESS] = {"max_connections_per_address", TYPE_INT,
                                         FIELD(max_connections_per_address), 1, 100000, false},
    [KEY_MAX_NOTIFY_METADATA_SIZE] = {"max_notify_metadata_size", TYPE_SIZE,
                                      FIELD(max_notify_metadata_size), 0, 1 * MIB, false},
    [KEY_MAX_CHANNEL_NOTIFY_METADATA_SIZE] = {"max_channel_notify_metadata_size", TYPE_SIZE,
                                              FIELD(max_channel_notify_metadata_size), 0, 64 * MIB,
                                              false},
    [KEY_PING_INTERVAL] = {"ping_interval", TYPE_DURATION, FIELD(ping_interval_ms), MS_PER_SECOND,
                           MS_PER_MINUTE, false},
    [KEY_MAX_MISSED_PONGS] = {"max_missed_pongs", TYPE_INT, FIELD(max_missed_pongs), 1, 100, false},
    [KEY_CONNECT_TIMEOUT] = {"connect_timeout", TYPE_DURATION, FIELD(connect_timeout_ms),
                             MS_PER_SECOND, 10 * MS_PER_MINUTE, false},
    [KEY_REOFFER_TIMEOUT] = {"reoffer_timeout", TYPE_DURATION, FIELD(reoffer_timeout_ms),
                             MS_PER_SECOND, 5 * MS_PER_MINUTE, false},
    [KEY_CONSENT_TIMEOUT] = {"consent_timeout", TYPE_DURATION, FIELD(consent_timeout_ms),
                             2 * MS_PER_SECOND, 5 * MS_PER_MINUTE, false},
    [KEY_MAX_MESSAGE_SIZE_BEFORE_CONNECT] = {"max_message_size_before_connect", TYPE_SIZE,
                                             FIELD(max_message_size_before_connect), KIB, 16 * MIB,
                                             false},
    [KEY_MAX_MESSAGE_SIZE] = {"max_message_size", TYPE_SIZE, FIELD(max_message_size), KIB, 16 * MIB,
                              false},
    [KEY_MAX_KEY_MESSAGES_PER_SECOND] = {"max_key_messages_per_second", TYPE_INT,
                                         FIELD(max_key_messages_per_second), 1, 100000, false},
    [KEY_MAX_NACKS_PER_SECOND] = {"max_nacks_per_second", TYPE_INT, FIELD(max_nacks_per_second), 1,
                                  100000, false},
    [KEY_BUSY_POLL_US] = {"busy_poll_us", TYPE_INT, FIELD(busy_poll_us), 0, 10000, false},
    [KEY_LOG_LEVEL] = {"log_level", TYPE_LOG_LEVEL, FIELD(log_level), 0, 0, false},
    [KEY_LOG_FORMAT] = {"log_format", TYPE_LOG_FORMAT, FIELD(log_format), 0, 0, false},
    [KEY_TLS_CERTIFICATE_FILE] = {"tls_certificate_file", TYPE_STRING, FIELD(tls_certificate_file),
                                  0, 0, true},
    [KEY_TLS_PRIVATE_KEY_FILE] = {"tls_private_key_file", TYPE_STRING, FIELD(tls_private_key_file),
                                  0, 0, true},
    [KEY_DEMO_DIRECTORY] = {"demo_directory", TYPE_STRING, FIELD(demo_directory), 0, 0, false},
    [KEY_LOG_FILE] = {"log_file", TYPE_STRING, FIELD(log_file), 0, 0, true},
    [KEY_SHUTDOWN_TIMEOUT] = {"shutdown_timeout", TYPE_DURATION, FIELD(shutdown_timeout_ms), 0,
                              5 * MS_PER_MINUTE, false},
    [KEY_DEBUG_PAYLOAD_DIRECTORY] = {"debug_payload_directory", TYPE_STRING,
                                     FIELD(debug_payload_directory), 0, 0, true},
    [KEY_AUTH_WEBHOOK_URL] = {"auth_webhook_url", TYPE_STRING, FIELD(auth_webhook_url), 0, 0, true},
    [KEY_AUTH_WEBHOOK_TIMEOUT] = {"auth_webhook_timeout", TYPE_DURATION,
                                  FIELD(auth_webhook_timeout_ms), 100, MS_PER_MINUTE, false},
    [KEY_AUTH_WEBHOOK_CA_FILE] = {"auth_webhook_ca_file", TYPE_STRING, FIELD(auth_webhook_ca_file),
                                  0, 0, false},
    [KEY_API_SECRET] = {"api_secret", TYPE_STRING, FIELD(api_secret), 0, 0, true},
    [KEY_API_LISTEN_ADDRESS] = {"api_listen_address", TYPE_IPV4, FIELD(api_listen_address), 0, 0,
                                true},
    [KEY_API_ALLOWED_HOSTS] = {"api_allowed_hosts", TYPE_STRING, FIELD(api_allowed_hosts), 0, 0,
                               true},
    [KEY_API_TLS_CERTIFICATE_FILE] = {"api_tls_certificate_file", TYPE_STRING,
                                      FIELD(api_tls_certificate_file), 0, 0, true},
    [KEY_API_TLS_PRIVATE_KEY_FILE] = {"api_tls_private_key_file", TYPE_STRING,
                                      FIELD(api_tls_private_key_file), 0, 0, true},
    [KEY_TURN_URLS] = {"turn_urls", TYPE_STRING, FIELD(turn_urls), 0, 0, true},
    [KEY_TURN_SECRET] = {"turn_secret", TYPE_STRING, FIELD(turn_secret), 0, 0, true},
    [KEY_TURN_CREDENTIAL_TTL] = {"turn_credential_ttl", TYPE_DURATION,
                                 FIELD(turn_credential_ttl_ms), MS_PER_MINUTE, 7 * 24 * MS_PER_HOUR,
                                 false},
    [KEY_CLUSTER_REDIS_URL] = {"cluster_redis_url", TYPE_STRING, FIELD(cluster_redis_url), 0, 0,
                               true},
    [KEY_CLUSTER_NODE_URL] = {"cluster_node_url", TYPE_STRING, FIELD(cluster_node_url), 0, 0, true},
};

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
static const hk_log_level_t log_level_values[] = {HK_LOG_DEBUG, HK_LOG_INFO, HK_LOG_WARN,
                                                  HK_LOG_ERROR};
static const char *const log_format_names[] = {"text", "json"};
static const hk_log_format_t log_format_values[] = {HK_LOG_FORMAT_TEXT, HK_LOG_FORMAT_JSON};

typedef struct {
    const char *filename;
    char *err;
    size_t err_size;
} parse_ctx_t;

typedef struct {
    const char *p;
    size_t n;
} span_t;

void hk_config_defaults(hk_config_t *config)
{
    memset(config, 0, sizeof *config);
    snprintf(config->listen_address, sizeof config->listen_address, "0.0.0.0");
    config->signaling_port = 5000;
    config->api_port = 3000;
    config->media_port = 5004;
    config->workers = 1;
    config->channel_spread_threshold = 250;
    config->public_ipv4_address[0] = '\0';
    config->e2ee = false;
    config->signaling_notify = true;
    config->signaling_notify_metadata = true;
    config->max_connections_per_channel = 50;
    config->max_connections = 1000;
    config->max_channels = 1000;
    config->max_connections_per_address = 100;
    config->max_notify_metadata_size = 8 * KIB;
    config->max_channel_notify_metadata_size = 256 * KIB;
    config->ping_interval_ms = 5 * MS_PER_SECOND;
    config->max_missed_pongs = 3;
    config->connect_timeout_ms = 10 * MS_PER_SECOND;
    config->reoffer_timeout_ms = 10 * MS_PER_SECOND;
    config->consent_timeout_ms = 30 * MS_PER_SECOND;
    config->max_message_size_before_connect = 64 * KIB;
    config->max_message_size = 256 * KIB;
    config->max_key_messages_per_second = 100;
    config->max_nacks_per_second = 500;
    config->busy_poll_us = 0;
    config->log_level = HK_LOG_INFO;
    config->log_format = HK_LOG_FORMAT_TEXT;
    config->tls_certificate_file[0] = '\0';
    config->tls_private_key_file[0] = '\0';
    snprintf(config->demo_directory, sizeof config->demo_directory, "client");
    config->log_file[0] = '\0';
    config->shutdown_timeout_ms = 10 * MS_PER_SECOND;
    config->debug_payload_directory[0] = '\0';
    config->auth_webhook_url[0] = '\0';
    config->auth_webhook_timeout_ms = 5 * MS_PER_SECOND;
    snprintf(config->auth_webhook_ca_file, sizeof config->auth_webhook_ca_file, "%s",
             "/etc/ssl/certs/ca-certificates.crt");
    config->media_tcp_port = 0;
    config->turn_credential_ttl_ms = 24 * MS_PER_HOUR;
}

/* ---- messages ---------------------------------------------------------------------------- */

/* Copies at most ECHO_MAX bytes of s into out, cut at a UTF-8 character boundary, with
 * "..." when clipped. The input holds no control characters (checked per line). */
static void clip(char *out, size_t out_size, span_t s)
{
    size_t n = s.n;
    const char *more = "";
    if (n > ECHO_MAX) {
        n = ECHO_MAX;
        while (n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
            n--;
        more = "...";
    }
    snprintf(out, out_size, "%.*s%s", (int)n, s.p, more);
}

/* Writes "FILE:LINE: key: reason" and returns HK_EINVAL. */
__attribute__((format(printf, 5, 6))) static int
fail(const parse_ctx_t *ctx, size_t line, const char *key, span_t key_span, const char *fmt, ...)
{
    if (!ctx->err || ctx->err_size == 0)
        return HK_EINVAL;
    char key_text[ECHO_MAX + 4];
    if (!key) {
        clip(key_text, sizeof key_text, key_span);
        key = key_text;
    }
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(ctx->err, ctx->err_size, "%s:%zu: %s: %s", ctx->filename, line, key, reason);
    return HK_EINVAL;
}

static const span_t no_span = {NULL, 0};

#define FAIL_CONFIG(ctx, line, ...) fail((ctx), (line), "config", no_span, __VA_ARGS__)

/* "1 min", "500 ms", "16 MiB": the largest unit that divides v exactly. */
static void format_duration(char *out, size_t size, long long ms)
{
    if (ms != 0 && ms % MS_PER_HOUR == 0)
        snprintf(out, size, "%lld h", ms / MS_PER_HOUR);
    else if (ms != 0 && ms % MS_PER_MINUTE == 0)
        snprintf(out, size, "%lld min", ms / MS_PER_MINUTE);
    else if (ms != 0 && ms % MS_PER_SECOND == 0)
        snprintf(out, size, "%lld s", ms / MS_PER_SECOND);
    else
        snprintf(out, size, "%lld ms", ms);
}

static void format_size(char *out, size_t size, long long bytes)
{
    if (bytes != 0 && bytes % GIB == 0)
        snprintf(out, size, "%lld GiB", bytes / GIB);
    else if (bytes != 0 && bytes % MIB == 0)
        snprintf(out, size, "%lld MiB", bytes / MIB);
    else if (bytes != 0 && bytes % KIB == 0)
        snprintf(out, size, "%lld KiB", bytes / KIB);
    else
        snprintf(out, size, "%lld B", bytes);
}

/* ---- lexical helpers --------------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static span_t trim(span_t s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static bool span_eq(span_t s, const char *word)
{
    size_t n = strlen(word);
    return s.n == n && memcmp(s.p, word, n) == 0;
}

/* Length of the UTF-8 sequence at p (RFC 3629 section 4: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0 when it is invalid or truncated. */
static size_t utf8_sequence(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds for the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    }
    return n;
}

/* Rejects NUL, control characters other than HTAB, and invalid UTF-8. */
static int check_bytes(const parse_ctx_t *ctx, size_t line, span_t s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0;
    while (i < s.n) {
        unsigned char c = p[i];
        if (c == 0)
            return FAIL_CONFIG(ctx, line, "NUL byte at column %zu", i + 1);
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return FAIL_CONFIG(ctx, line, "control character 0x%02x at column %zu", c, i + 1);
        size_t n = utf8_sequence(p + i, s.n - i);
        if (n == 0)
            return FAIL_CONFIG(ctx, line, "invalid UTF-8 at column %zu", i + 1);
        i += n;
    }
    return HK_OK;
}

/* Parses ["-"] 1*DIGIT at the start of s. Magnitudes above NUMBER_CEILING saturate.
 * Returns the number of bytes used, 0 when there is no number. */
static size_t parse_number(span_t s, long long *out)
{
    size_t i = 0;
    bool negative = false;
    if (i < s.n && s.p[i] == '-') {
        negative = true;
        i++;
    }
    size_t digits_start = i;
    long long v = 0;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
        if (v <= NUMBER_CEILING)
            v = v * 10 + (s.p[i] - '0');
        i++;
    }
    if (i == digits_start)
        return 0;
    if (v > NUMBER_CEILING)
        v = NUMBER_CEILING + 1;
    *out = negative ? -v : v;
    return i;
}

static bool unit_is_word(span_t s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

/* v * mult, saturated to the same ceiling as parse_number (so still out of range). */
static long long scale(long long v, long long mult)
{
    long long limit = NUMBER_CEILING + 1;
    long long mag = v < 0 ? -v : v;
    if (mag > limit / mult)
        return v < 0 ? -limit : limit;
    return v * mult;
}

/* ---- values ------------------------------------------------------------------------------ */

static int out_of_range(const parse_ctx_t *ctx, size_t line, const key_spec_t *k, span_t value)
{
    char lo[32], hi[32], shown[ECHO_MAX + 4];
    if (k->type == TYPE_DURATION) {
        format_duration(lo, sizeof lo, k->min);
        format_duration(hi, sizeof hi, k->max);
    } else if (k->type == TYPE_SIZE) {
        format_size(lo, sizeof lo, k->min);
        format_size(hi, sizeof hi, k->max);
    } else {
        snprintf(lo, sizeof lo, "%lld", k->min);
        snprintf(hi, sizeof hi, "%lld", k->max);
    }
    clip(shown, sizeof shown, value);
    return fail(ctx, line, k->name, no_span, "%s is out of range (%s..%s)", shown, lo, hi);
}

/* Parses a number with a unit from units[] (NULL-terminated, with multipliers in mults[]);
 * an empty unit uses bare_mult, or is an error when bare_mult is 0. */
static int parse_with_unit(const parse_ctx_t *ctx, size_t line, const key_spec_t *k, span_t value,
                           const char *const *units, const long long *mults, long long bare_mult,
                           const char *unit_list, const char *what, long long *out)
{
    char shown[ECHO_MAX + 4];
    long long v;
    size_t used = parse_number(value, &v);
    span_t unit = trim((span_t){value.p + used, value.n - used});
    if (used == 0 || (unit.n > 0 && !unit_is_word(unit))) {
        clip(shown, sizeof shown, value);
        return fail(ctx, line, k->name, no_span, "\"%s\" is not %s", shown, what);
    }
    if (unit.n == 0) {
        if (bare_mult == 0)
            return fail(ctx, line, k->name, no_span, "missing unit (%s)", unit_list);
        *out = scale(v, bare_mult);
        return HK_OK;
    }
    for (size_t i = 0; units[i]; i++) {
        if (span_eq(unit, units[i])) {
            *out = scale(v, mults[i]);
            return HK_OK;
        }
    }
    clip(shown, sizeof shown, unit);
    return fail(ctx, line, k->name, no_span, "unknown unit \"%s\" (%s)", shown, unit_list);
}

static int set_value(const parse_ctx_t *ctx, size_t line, const key_spec_t *k, span_t value,
                     hk_config_t *config)
{
    static const char *const duration_units[] = {"ms", "s", "min", "h", NULL};
    static const long long duration_mults[] = {1, MS_PER_SECOND, MS_PER_MINUTE, MS_PER_HOUR};
    static const char *const size_units[] = {"B", "KiB", "MiB", "GiB", NULL};
    static const long long size_mults[] = {1, KIB, MIB, GIB};

    char *field = (char *)config + k->offset;
    char shown[ECHO_MAX + 4];
    long long v = 0;
    int rc;

    if (value.n == 0 && !k->allow_empty)
        return fail(ctx, line, k->name, no_span, "missing value");
    clip(shown, sizeof shown, value);

    switch (k->type) {
    case TYPE_BOOL:
        if (span_eq(value, "true"))
            *(bool *)field = true;
        else if (span_eq(value, "false"))
            *(bool *)field = false;
        else
            return fail(ctx, line, k->name, no_span,
                        "\"%s\" is not a boolean (expected true or false)", shown);
        return HK_OK;

    case TYPE_INT:
        if (parse_number(value, &v) != value.n)
            return fail(ctx, line, k->name, no_span, "\"%s\" is not an integer", shown);
        if (v < k->min || v > k->max)
            return out_of_range(ctx, line, k, value);
        *(int *)field = (int)v;
        return HK_OK;

    case TYPE_DURATION:
        rc = parse_with_unit(ctx, line, k, value, duration_units, duration_mults, 0, DURATION_UNITS,
                             "a duration (e.g. 30 s, 500 ms, 2 min)", &v);
        if (rc != HK_OK)
            return rc;
        if (v < k->min || v > k->max)
            return out_of_range(ctx, line, k, value);
        *(uint32_t *)field = (uint32_t)v;
        return HK_OK;

    case TYPE_SIZE:
        rc = parse_with_unit(ctx, line, k, value, size_units, size_mults, 1, SIZE_UNITS,
                             "a size (e.g. 64 KiB, 1 MiB, 512 B)", &v);
        if (rc != HK_OK)
            return rc;
        if (v < k->min || v > k->max)
            return out_of_range(ctx, line, k, value);
        *(size_t *)field = (size_t)v;
        return HK_OK;

    case TYPE_IPV4: {
        char text[64];
        struct in_addr addr;
        if (value.n == 0) {
            field[0] = '\0';
            return HK_OK;
        }
        if (value.n >= sizeof text || value.n >= k->size)
            return fail(ctx, line, k->name, no_span, "\"%s\" is not an IPv4 address", shown);
        memcpy(text, value.p, value.n);
        text[value.n] = '\0';
        if (inet_pton(AF_INET, text, &addr) != 1)
            return fail(ctx, line, k->name, no_span, "\"%s\" is not an IPv4 address", shown);
        /* An unspecified address cannot be advertised to peers. */
        if (k == &keys[KEY_PUBLIC_IPV4_ADDRESS] && addr.s_addr == htonl(INADDR_ANY))
            return fail(ctx, line, k->name, no_span,
                        "0.0.0.0 cannot be a public address (leave it empty instead)");
        memcpy(field, text, value.n + 1);
        return HK_OK;
    }

    case TYPE_STRING:
        if (value.n >= k->size)
            return fail(ctx, line, k->name, no_span, "value is longer than %zu bytes", k->size - 1);
        memcpy(field, value.p, value.n);
        field[value.n] = '\0';
        return HK_OK;

    case TYPE_LOG_LEVEL:
        for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
            if (span_eq(value, log_level_names[i])) {
                *(hk_log_level_t *)field = log_level_values[i];
                return HK_OK;
            }
        }
        return fail(ctx, line, k->name, no_span,
                    "\"%s\" is not a log level (expected debug, info, warn or error)", shown);

    case TYPE_LOG_FORMAT:
        for (size_t i = 0; i < sizeof log_format_names / sizeof log_format_names[0]; i++) {
            if (span_eq(value, log_format_names[i])) {
                *(hk_log_format_t *)field = log_format_values[i];
                return HK_OK;
            }
        }
        return fail(ctx, line, k->name, no_span,
                    "\"%s\" is not a log format (expected text or json)", shown);

    case TYPE_WORKERS:
        if (span_eq(value, "auto")) {
            *(int *)field = 0;
            return HK_OK;
        }
        if (parse_number(value, &v) != value.n)
            return fail(ctx, line, k->name, no_span, "\"%s\" is neither auto nor a number", shown);
        if (v < k->min || v > k->max)
            return out_of_range(ctx, line, k, value);
        *(int *)field = (int)v;
        return HK_OK;
    }
    return fail(ctx, line, k->name, no_span, "internal error: unknown value type");
}

/* ---- lines ------------------------------------------------------------------------------- */

static int parse_line(const parse_ctx_t *ctx, size_t line, span_t s, size_t *set_at,
                      hk_config_t *config)
{
    if (s.n > MAX_LINE)
        return FAIL_CONFIG(ctx, line, "line is longer than %d bytes", MAX_LINE);
    int rc = check_bytes(ctx, line, s);
    if (rc != HK_OK)
        return rc;

    span_t t = trim(s);
    if (t.n == 0 || t.p[0] == '#')
        return HK_OK;

    const char *eq = memchr(t.p, '=', t.n);
    if (!eq)
        return FAIL_CONFIG(ctx, line, "expected key = value");
    span_t key = trim((span_t){t.p, (size_t)(eq - t.p)});
    if (key.n == 0)
        return FAIL_CONFIG(ctx, line, "empty key before '='");

    /* A '#' at the start of the value or after a blank starts a comment. */
    span_t value = {eq + 1, (size_t)(t.p + t.n - (eq + 1))};
    for (size_t i = 0; i < value.n; i++) {
        if (value.p[i] == '#' && (i == 0 || is_space(value.p[i - 1]))) {
            value.n = i;
            break;
        }
    }
    value = trim(value);

    size_t index = KEY_COUNT;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (span_eq(key, keys[i].name)) {
            index = i;
            break;
        }
    }
    if (index == KEY_COUNT)
        return fail(ctx, line, NULL, key, "unknown key");
    if (set_at[index] != 0)
        return fail(ctx, line, keys[index].name, no_span, "duplicate key (first set at line %zu)",
                    set_at[index]);
    set_at[index] = line;
    return set_value(ctx, line, &keys[index], value, config);
}

/* Checks that need the whole file: distinct ports, both TLS files or neither. */
static int check_whole(const parse_ctx_t *ctx, const size_t *set_at, const hk_config_t *c)
{
    /* TCP ports among themselves, UDP ports among themselves (media_tcp_port may equal
     * media_port: one number for both protocols). */
    static const int port_keys[] = {KEY_SIGNALING_PORT, KEY_API_PORT, KEY_MEDIA_PORT,
                                    KEY_MEDIA_TCP_PORT};
    static const bool port_tcp[] = {true, true, false, true};
    int ports[] = {c->signaling_port, c->api_port, c->media_port, c->media_tcp_port};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = i + 1; j < 4; j++) {
            if (ports[i] != ports[j] || ports[i] == 0)
                continue;
            if (port_keys[j] == KEY_MEDIA_TCP_PORT && !port_tcp[i])
                continue;
            int earlier = port_keys[i], later = port_keys[j];
            if (set_at[earlier] > set_at[later]) {
                earlier = port_keys[j];
                later = port_keys[i];
            }
            return fail(ctx, set_at[later], keys[later].name, no_span, "%d is already used by %s",
                        ports[i], keys[earlier].name);
        }
    }

    /* Worker i listens on media_port + i (and media_tcp_port + i): those ports exist and
     * are not the signaling or API port. With workers = auto the count is known at start
     * only; a port taken then fails there, with its number. */
    for (int i = 1; i < c->workers; i++) {
        size_t line = set_at[KEY_WORKERS];
        if (c->media_port + i > 65535 || (c->media_tcp_port && c->media_tcp_port + i > 65535))
            return fail(ctx, line, keys[KEY_WORKERS].name, no_span,
                        "%d workers need media ports beyond 65535", c->workers);
        int tcp = c->media_tcp_port ? c->media_tcp_port + i : 0;
        if (tcp && (tcp == c->signaling_port || tcp == c->api_port))
            return fail(ctx, line, keys[KEY_WORKERS].name, no_span,
                        "worker %d's media_tcp_port + %d = %d is already used by %s", i, i, tcp,
                        tcp == c->signaling_port ? "signaling_port" : "api_port");
    }

    static const int pairs[][2] = {{KEY_TLS_CERTIFICATE_FILE, KEY_TLS_PRIVATE_KEY_FILE},
                                   {KEY_API_TLS_CERTIFICATE_FILE, KEY_API_TLS_PRIVATE_KEY_FILE}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *cert = (const char *)c + keys[pairs[i][0]].offset;
        const char *key = (const char *)c + keys[pairs[i][1]].offset;
        bool have_cert = cert[0] != '\0', have_key = key[0] != '\0';
        if (have_cert == have_key)
            continue;
        int missing = have_cert ? pairs[i][1] : pairs[i][0];
        int present = have_cert ? pairs[i][0] : pairs[i][1];
        size_t line = set_at[missing] ? set_at[missing] : set_at[present];
        return fail(ctx, line, keys[missing].name, no_span, "must be set when %s is set",
                    keys[present].name);
    }

    if (c->turn_urls[0] && !c->turn_secret[0])
        return fail(ctx, set_at[KEY_TURN_URLS], keys[KEY_TURN_SECRET].name, no_span,
                    "must be set when turn_urls is set (coturn's static-auth-secret)");
    int n_urls = 0;
    size_t n;
    for (const char *cursor = c->turn_urls, *u; (u = hk_config_list_next(&cursor, &n));) {
        if (++n_urls > HK_CONFIG_TURN_URLS)
            return fail(ctx, set_at[KEY_TURN_URLS], keys[KEY_TURN_URLS].name, no_span,
                        "more than %d URLs (Firefox warns at more than 5)", HK_CONFIG_TURN_URLS);
        if (strncmp(u, "turn:", 5) != 0 && strncmp(u, "turns:", 6) != 0 &&
            strncmp(u, "stun:", 5) != 0)
            return fail(ctx, set_at[KEY_TURN_URLS], keys[KEY_TURN_URLS].name, no_span,
                        "\"%.*s\" is not a turn:, turns: or stun: URL", (int)(n > 64 ? 64 : n), u);
    }

    size_t secret_len = strlen(c->api_secret);
    if (secret_len > 0 && secret_len < 16)
        return fail(ctx, set_at[KEY_API_SECRET], keys[KEY_API_SECRET].name, no_span,
                    "must be at least 16 characters (it is the API's only credential)");
    if (secret_len == 0 && c->api_listen_address[0] &&
        strcmp(c->api_listen_address, "127.0.0.1") != 0)
        return fail(ctx, set_at[KEY_API_LISTEN_ADDRESS], keys[KEY_API_LISTEN_ADDRESS].name, no_span,
                    "%s needs api_secret: without one the API listens on 127.0.0.1 only",
                    c->api_listen_address);

    char host[HK_CONFIG_STR];
    int port = 0;
    const char *why = NULL;
    if (c->cluster_redis_url[0] &&
        hk_config_parse_redis_url(c->cluster_redis_url, host, sizeof host, &port, &why) != 0)
        return fail(ctx, set_at[KEY_CLUSTER_REDIS_URL], keys[KEY_CLUSTER_REDIS_URL].name, no_span,
                    "%s", why);
    if (c->cluster_redis_url[0] && !c->cluster_node_url[0])
        return fail(ctx, set_at[KEY_CLUSTER_REDIS_URL], keys[KEY_CLUSTER_NODE_URL].name, no_span,
                    "must be set when cluster_redis_url is set (this node's signaling URL, "
                    "e.g. wss://node1.example.com/signaling, sent to clients in redirects)");
    if (c->cluster_node_url[0] && strncmp(c->cluster_node_url, "ws://", 5) != 0 &&
        strncmp(c->cluster_node_url, "wss://", 6) != 0)
        return fail(ctx, set_at[KEY_CLUSTER_NODE_URL], keys[KEY_CLUSTER_NODE_URL].name, no_span,
                    "must be a ws:// or wss:// URL (clients are redirected to it)");
    if (c->cluster_node_url[0] && strpbrk(c->cluster_node_url, " \"\\"))
        return fail(ctx, set_at[KEY_CLUSTER_NODE_URL], keys[KEY_CLUSTER_NODE_URL].name, no_span,
                    "must not contain spaces, quotes or backslashes");
    if (c->cluster_node_url[0] && !c->cluster_redis_url[0])
        return fail(ctx, set_at[KEY_CLUSTER_NODE_URL], keys[KEY_CLUSTER_REDIS_URL].name, no_span,
                    "must be set when cluster_node_url is set (no cluster without Redis)");
    return HK_OK;
}

int hk_config_parse_redis_url(const char *url, char *host, size_t host_size, int *port,
                              const char **why)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        *why = strncmp(url, "rediss://", 9) == 0
                   ? "rediss:// (TLS) is not supported: use redis://host[:port] on a private "
                     "network"
                   : "must be redis://host[:port]";
        return HK_EINVAL;
    }
    const char *h = url + sizeof scheme - 1;
    size_t n = strcspn(h, ":/");
    if (strpbrk(h, "@?#")) {
        *why = "passwords, user names and options are not supported: redis://host[:port]";
        return HK_EINVAL;
    }
    if (n == 0 || n >= host_size) {
        *why = n == 0 ? "has no host: redis://host[:port]" : "host name is too long";
        return HK_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_')) {
            *why = "host must be a name or an IPv4 address: redis://host[:port]";
            return HK_EINVAL;
        }
    }
    const char *rest = h + n;
    long p = 6379;
    if (*rest == ':') {
        char *end = NULL;
        rest++;
        if (*rest < '0' || *rest > '9') {
            *why = "port must be a number from 1 to 65535";
            return HK_EINVAL;
        }
        p = strtol(rest, &end, 10);
        if (p < 1 || p > 65535 || end - rest > 5) {
            *why = "port must be a number from 1 to 65535";
            return HK_EINVAL;
        }
        rest = end;
    }
    if (strcmp(rest, "") != 0 && strcmp(rest, "/") != 0) {
        *why = "database numbers, paths and options are not supported: redis://host[:port]";
        return HK_EINVAL;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return HK_OK;
}

const char *hk_config_api_address(const hk_config_t *config)
{
    if (config->api_listen_address[0])
        return config->api_listen_address;
    return config->api_secret[0] ? config->listen_address : "127.0.0.1";
}

const char *hk_config_api_tls_certificate(const hk_config_t *config)
{
    return config->api_tls_certificate_file[0] ? config->api_tls_certificate_file
                                               : config->tls_certificate_file;
}

const char *hk_config_api_tls_private_key(const hk_config_t *config)
{
    return config->api_tls_certificate_file[0] ? config->api_tls_private_key_file
                                               : config->tls_private_key_file;
}

int hk_config_parse(hk_config_t *config, const char *text, size_t len, const char *filename,
                    char *err, size_t err_size)
{
    parse_ctx_t ctx = {filename ? filename : "config", err, err_size};
    size_t set_at[KEY_COUNT] = {0}; /* line where each key was set, 0 = not in text */
    hk_config_t work = *config;     /* committed only when the whole text is valid */
    size_t pos = 0, line = 0;

    if (err && err_size > 0)
        err[0] = '\0';
    if (!text)
        len = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* UTF-8 byte order mark */

    while (pos < len) {
        line++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        span_t s = {text + pos, end - pos};
        if (s.n > 0 && s.p[s.n - 1] == '\r')
            s.n--;
        int rc = parse_line(&ctx, line, s, set_at, &work);
        if (rc != HK_OK)
            return rc;
        pos = nl ? end + 1 : len;
    }

    int rc = check_whole(&ctx, set_at, &work);
    if (rc != HK_OK)
        return rc;
    *config = work;
    return HK_OK;
}

/* ---- file -------------------------------------------------------------------------------- */

/* Writes "PATH:0: config: <what><detail>" and returns code. */
static int load_fail(const char *path, char *err, size_t err_size, int code, const char *what,
                     const char *detail)
{
    if (err && err_size > 0)
        snprintf(err, err_size, "%s:0: config: %s%s", path, what, detail);
    return code;
}

int hk_config_load(hk_config_t *config, const char *path, char *err, size_t err_size)
{
    hk_config_defaults(config);
    if (!path)
        return load_fail("config", err, err_size, HK_EINVAL, "no file name", "");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return load_fail(path, err, err_size, e == ENOENT ? HK_ENOENT : HK_EIO,
                         "cannot read: ", strerror(e));
    }
    /* One byte more than the limit tells an oversized file from one of exactly 1 MiB. */
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        close(fd);
        return load_fail(path, err, err_size, HK_ENOMEM, "out of memory", "");
    }
    size_t len = 0;
    int rc = HK_OK;
    while (len < MAX_FILE + 1) {
        ssize_t n = read(fd, buf + len, MAX_FILE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = load_fail(path, err, err_size, HK_EIO, "cannot read: ", strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > MAX_FILE) {
        rc = load_fail(path, err, err_size, HK_ELIMIT, "file is larger than 1 MiB", "");
        goto done;
    }
    rc = hk_config_parse(config, buf, len, path, err, err_size);
done:
    free(buf);
    close(fd);
    return rc;
}

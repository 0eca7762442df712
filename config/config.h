/* sora.conf: `key = value` lines, `#` comments, booleans (true/false), integers,
 * durations (`30 s`, `500 ms`, `2 min`), sizes (`64 KiB`, `1 MiB`), unquoted strings.
 * The parser is pure; hk_config_load reads a file and calls it. */
#ifndef HK_CONFIG_H
#define HK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"

#define HK_CONFIG_STR 256

/* The most media workers (threads) a server runs. */
#define HK_MAX_WORKERS 64

typedef struct hk_config_s {
    char listen_address[64]; /* listen_address, default 0.0.0.0 */
    int signaling_port;      /* signaling_port, default 5000 */
    int api_port;            /* api_port, default 3000 */
    int media_port;          /* media_port, default 5004 */
    int media_tcp_port;      /* media_tcp_port: ICE-TCP, default 0 = off */
    int workers;             /* workers: media threads, default 1; 0 = auto (one per core); worker i
                                has media_port + i (and media_tcp_port + i) */
    int channel_spread_threshold;    /* channel_spread_threshold: a channel's connections on one
                                        worker before the next go to others, default 250; 0 =
                                        never (a channel stays on its worker) */
    char public_ipv4_address[64];    /* public_ipv4_address, default "" (local addrs) */
    bool e2ee;                       /* e2ee, default false */
    bool signaling_notify;           /* signaling_notify, default true */
    bool signaling_notify_metadata;  /* signaling_notify_metadata, default true */
    int max_connections_per_channel; /* default 50, 1..1000 */
    int max_connections;             /* default 1000, 1..100000 */
    int max_channels;                /* default 1000, 1..100000 */
    int max_connections_per_address; /* open WebSockets from one IP address, default 100 */
    size_t max_notify_metadata_size; /* one connection's, default 8 KiB */
    size_t max_channel_notify_metadata_size; /* all members' of a channel, default 256 KiB */
    uint32_t ping_interval_ms;               /* ping_interval, default 5 s, 1 s..1 min */
    int max_missed_pongs;                    /* max_missed_pongs, default 3, 1..100 */
    uint32_t consent_timeout_ms; /* consent_timeout: ICE liveness, default 30 s, 2 s..5 min */
    uint32_t connect_timeout_ms; /* connect_timeout: WS open -> connect, default 10 s */
    uint32_t reoffer_timeout_ms; /* reoffer_timeout: re-offer -> re-answer, default 10 s */
    size_t max_message_size_before_connect; /* default 64 KiB, 1 KiB..16 MiB */
    size_t max_message_size;                /* after connect, default 256 KiB, 1 KiB..16 MiB */
    int max_key_messages_per_second;
    int max_nacks_per_second;            /* max_nacks_per_second: NACKed packets answered per
                                            second per connection, default 500, 1..100000 */          /* default 100, 1..100000 */
    int busy_poll_us; /* busy_poll_us: after a burst, keep reading the media socket this long
                         before sleeping (latency for CPU), default 0 = off, 0..10000 */
    hk_log_level_t log_level;                 /* log_level: debug|info|warn|error, default info */
    hk_log_format_t log_format;               /* log_format: text|json, default text */
    char tls_certificate_file[HK_CONFIG_STR]; /* default "" = plain ws */
    char tls_private_key_file[HK_CONFIG_STR]; /* both or neither */
    char demo_directory[HK_CONFIG_STR];       /* demo_directory, default "client" */
    char log_file[HK_CONFIG_STR];             /* log_file, default "" = stderr; SIGHUP reopens */
    uint32_t shutdown_timeout_ms;             /* shutdown_timeout, default 10 s, 0..5 min */
    char debug_payload_directory[HK_CONFIG_STR]; /* debugging aid, default "" = off */
    char auth_webhook_url[HK_CONFIG_STR];        /* auth_webhook_url, default "" = no webhook */
    uint32_t auth_webhook_timeout_ms;            /* auth_webhook_timeout, default 5 s */
    char auth_webhook_ca_file[HK_CONFIG_STR]; /* CAs for an https webhook, default the system's */
    /* The HTTP API (docs and README "Security"): */
    char api_secret[HK_CONFIG_STR];        /* api_secret: Bearer token, >= 16 chars; "" = none, and
                                              then the API listens on 127.0.0.1 only */
    char api_listen_address[64];           /* api_listen_address: "" = 127.0.0.1 without api_secret,
                                              listen_address with it; another address needs one */
    char api_allowed_hosts[HK_CONFIG_STR]; /* api_allowed_hosts: names accepted in Host, comma-
                                              separated; IP literals and localhost always are */
    char api_tls_certificate_file[HK_CONFIG_STR]; /* "" = the signaling certificate, if any */
    char api_tls_private_key_file[HK_CONFIG_STR]; /* both or neither */
    /* TURN (PROTOCOL.md §7): every offer's config.iceServers, with REST credentials. */
    char turn_urls[HK_CONFIG_STR];   /* turn_urls: comma-separated turn:/turns: URLs, "" = none */
    char turn_secret[HK_CONFIG_STR]; /* turn_secret: coturn's static-auth-secret */
    uint32_t turn_credential_ttl_ms; /* turn_credential_ttl, default 1 day, 1 min..7 days */
    /* Several nodes through Redis (README "Cluster"): */
    char cluster_redis_url[HK_CONFIG_STR]; /* cluster_redis_url: redis://host[:port], "" = one
                                              node, no cluster (the default) */
    char cluster_node_url[HK_CONFIG_STR];  /* cluster_node_url: this node's ws:// or wss://
                                              signaling URL, sent in redirects; required with
                                              cluster_redis_url */
} hk_config_t;

/* TURN URLs in turn_urls (at most HK_CONFIG_TURN_URLS, each shorter than HK_CONFIG_STR). */
#define HK_CONFIG_TURN_URLS 5

/* Iterates a comma-separated list (turn_urls): returns the next item, blanks around it
 * removed, with its length in *len, and moves *cursor past it; NULL at the end. */
static inline const char *hk_config_list_next(const char **cursor, size_t *len)
{
    const char *p = *cursor + strspn(*cursor, " ,");
    size_t n = strcspn(p, ",");
    *cursor = p + n;
    while (n > 0 && p[n - 1] == ' ')
        n--;
    *len = n;
    return n > 0 ? p : NULL;
}

/* The address the API listens on, from api_listen_address, api_secret and listen_address. */
const char *hk_config_api_address(const hk_config_t *config);

/* The API's TLS certificate and key (its own, else the signaling ones), or "" for plain. */
const char *hk_config_api_tls_certificate(const hk_config_t *config);
const char *hk_config_api_tls_private_key(const hk_config_t *config);

/* Splits a cluster_redis_url, redis://host[:port] (port 6379 by default; a trailing "/"
 * is allowed), into host (NUL-terminated, at most host_size - 1 bytes) and *port. Pure.
 * Returns 0, or HK_EINVAL with *why set to a static reason. */
int hk_config_parse_redis_url(const char *url, char *host, size_t host_size, int *port,
                              const char **why);

/* Fills every field with its default. */
void hk_config_defaults(hk_config_t *config);

/* Parses the text of a config file over the current values (pure: no I/O).
 * filename is used only in messages. On error returns HK_EINVAL and writes
 * "FILE:LINE: key: reason" into err. */
int hk_config_parse(hk_config_t *config, const char *text, size_t len, const char *filename,
                    char *err, size_t err_size);

/* Defaults, then reads and parses path. On error returns a negative HK_E* code and
 * writes "FILE:LINE: key: reason" (LINE 0 when the file cannot be read) into err. */
int hk_config_load(hk_config_t *config, const char *path, char *err, size_t err_size);

#endif

/* sora.conf parser: defaults, a full file, the example file, and every error message. */
#include <errno.h>
#include <unistd.h>

#include "common/error.h"
#include "config/config.h"
#include "tests/unit/unit.h"

#define ERR_SIZE 512

/* Parses len bytes of text over the defaults. On error, also checks that the struct was
 * left untouched (the parser commits only a fully valid file). */
static int parse_over_defaults(hk_config_t *c, const char *text, size_t len, char *err)
{
    hk_config_t before;
    hk_config_defaults(c);
    memcpy(&before, c, sizeof before);
    memset(err, 'x', ERR_SIZE);
    int rc = hk_config_parse(c, text, len, "sora.conf", err, ERR_SIZE);
    if (rc != HK_OK)
        CHECK_MEM_EQ(c, &before, sizeof before);
    else
        CHECK_STR_EQ(err, "");
    return rc;
}

/* text must be a string literal: sizeof keeps embedded NUL bytes. */
#define CHECK_PARSE_ERROR(text, message)                                                           \
    do {                                                                                           \
        hk_config_t c_;                                                                            \
        char err_[ERR_SIZE];                                                                       \
        CHECK_INT_EQ(parse_over_defaults(&c_, (text), sizeof(text) - 1, err_), HK_EINVAL);         \
        CHECK_STR_EQ(err_, (message));                                                             \
    } while (0)

#define CHECK_PARSE_OK(c, text)                                                                    \
    do {                                                                                           \
        char err_[ERR_SIZE];                                                                       \
        int rc_ = parse_over_defaults((c), (text), sizeof(text) - 1, err_);                        \
        if (rc_ != HK_OK)                                                                          \
            fprintf(stderr, "unexpected error: %s\n", err_);                                       \
        CHECK_INT_EQ(rc_, HK_OK);                                                                  \
    } while (0)

static void check_same(const hk_config_t *a, const hk_config_t *b)
{
    CHECK_STR_EQ(a->listen_address, b->listen_address);
    CHECK_INT_EQ(a->signaling_port, b->signaling_port);
    CHECK_INT_EQ(a->api_port, b->api_port);
    CHECK_INT_EQ(a->media_port, b->media_port);
    CHECK_STR_EQ(a->public_ipv4_address, b->public_ipv4_address);
    CHECK_INT_EQ(a->e2ee, b->e2ee);
    CHECK_INT_EQ(a->signaling_notify, b->signaling_notify);
    CHECK_INT_EQ(a->signaling_notify_metadata, b->signaling_notify_metadata);
    CHECK_INT_EQ(a->max_connections_per_channel, b->max_connections_per_channel);
    CHECK_INT_EQ(a->max_connections, b->max_connections);
    CHECK_INT_EQ(a->max_channels, b->max_channels);
    CHECK_INT_EQ(a->max_connections_per_address, b->max_connections_per_address);
    CHECK_INT_EQ(a->max_notify_metadata_size, b->max_notify_metadata_size);
    CHECK_INT_EQ(a->max_channel_notify_metadata_size, b->max_channel_notify_metadata_size);
    CHECK_INT_EQ(a->ping_interval_ms, b->ping_interval_ms);
    CHECK_INT_EQ(a->max_missed_pongs, b->max_missed_pongs);
    CHECK_INT_EQ(a->connect_timeout_ms, b->connect_timeout_ms);
    CHECK_INT_EQ(a->reoffer_timeout_ms, b->reoffer_timeout_ms);
    CHECK_INT_EQ(a->consent_timeout_ms, b->consent_timeout_ms);
    CHECK_INT_EQ(a->max_message_size_before_connect, b->max_message_size_before_connect);
    CHECK_INT_EQ(a->max_message_size, b->max_message_size);
    CHECK_INT_EQ(a->max_key_messages_per_second, b->max_key_messages_per_second);
    CHECK_INT_EQ(a->busy_poll_us, b->busy_poll_us);
    CHECK_INT_EQ(a->log_level, b->log_level);
    CHECK_INT_EQ(a->log_format, b->log_format);
    CHECK_STR_EQ(a->tls_certificate_file, b->tls_certificate_file);
    CHECK_STR_EQ(a->tls_private_key_file, b->tls_private_key_file);
    CHECK_STR_EQ(a->demo_directory, b->demo_directory);
    CHECK_STR_EQ(a->auth_webhook_ca_file, b->auth_webhook_ca_file);
    CHECK_STR_EQ(a->api_secret, b->api_secret);
    CHECK_STR_EQ(a->api_listen_address, b->api_listen_address);
    CHECK_STR_EQ(a->api_allowed_hosts, b->api_allowed_hosts);
    CHECK_STR_EQ(a->api_tls_certificate_file, b->api_tls_certificate_file);
    CHECK_STR_EQ(a->api_tls_private_key_file, b->api_tls_private_key_file);
}

/* The full fixture: every key set to a value other than its default. */
static void check_full(const hk_config_t *c)
{
    CHECK_STR_EQ(c->listen_address, "127.0.0.1");
    CHECK_INT_EQ(c->signaling_port, 8443);
    CHECK_INT_EQ(c->api_port, 8080);
    CHECK_INT_EQ(c->media_port, 40000);
    CHECK_STR_EQ(c->public_ipv4_address, "203.0.113.7");
    CHECK_INT_EQ(c->e2ee, true);
    CHECK_INT_EQ(c->signaling_notify, false);
    CHECK_INT_EQ(c->signaling_notify_metadata, false);
    CHECK_INT_EQ(c->max_connections_per_channel, 1000);
    CHECK_INT_EQ(c->max_connections, 100000);
    CHECK_INT_EQ(c->max_channels, 1);
    CHECK_INT_EQ(c->ping_interval_ms, 60000);
    CHECK_INT_EQ(c->max_missed_pongs, 100);
    CHECK_INT_EQ(c->connect_timeout_ms, 1500);
    CHECK_INT_EQ(c->consent_timeout_ms, 120000);
    CHECK_INT_EQ(c->max_nacks_per_second, 100000);
    CHECK_INT_EQ(c->busy_poll_us, 250);
    CHECK_STR_EQ(c->log_file, "/var/log/hisoka.log");
    CHECK_INT_EQ(c->shutdown_timeout_ms, 0);
    CHECK_STR_EQ(c->debug_payload_directory, "/tmp/payloads");
    CHECK_INT_EQ(c->max_message_size_before_connect, 1024);
    CHECK_INT_EQ(c->max_message_size, 16 * 1024 * 1024);
    CHECK_INT_EQ(c->max_key_messages_per_second, 1);
    CHECK_INT_EQ(c->log_level, HK_LOG_DEBUG);
    CHECK_INT_EQ(c->log_format, HK_LOG_FORMAT_JSON);
    CHECK_STR_EQ(c->tls_certificate_file, "/etc/hisoka/cert chain.pem");
    CHECK_STR_EQ(c->tls_private_key_file, "/etc/hisoka/key.pem");
    CHECK_STR_EQ(c->demo_directory, "/srv/hisoka/démo");
}

/* ---- valid input ------------------------------------------------------------------------- */

TEST(config_defaults)
{
    hk_config_t c;
    memset(&c, 0xAB, sizeof c);
    hk_config_defaults(&c);
    CHECK_STR_EQ(c.listen_address, "0.0.0.0");
    CHECK_INT_EQ(c.signaling_port, 5000);
    CHECK_INT_EQ(c.api_port, 3000);
    CHECK_INT_EQ(c.media_port, 5004);
    CHECK_STR_EQ(c.public_ipv4_address, "");
    CHECK_INT_EQ(c.e2ee, false);
    CHECK_INT_EQ(c.signaling_notify, true);
    CHECK_INT_EQ(c.signaling_notify_metadata, true);
    CHECK_INT_EQ(c.max_connections_per_channel, 50);
    CHECK_INT_EQ(c.max_connections, 1000);
    CHECK_INT_EQ(c.max_channels, 1000);
    CHECK_INT_EQ(c.ping_interval_ms, 5000);
    CHECK_INT_EQ(c.max_missed_pongs, 3);
    CHECK_INT_EQ(c.connect_timeout_ms, 10000);
    CHECK_INT_EQ(c.max_message_size_before_connect, 64 * 1024);
    CHECK_INT_EQ(c.max_message_size, 256 * 1024);
    CHECK_INT_EQ(c.max_key_messages_per_second, 100);
    CHECK_INT_EQ(c.log_level, HK_LOG_INFO);
    CHECK_INT_EQ(c.log_format, HK_LOG_FORMAT_TEXT);
    CHECK_STR_EQ(c.tls_certificate_file, "");
    CHECK_STR_EQ(c.tls_private_key_file, "");
    CHECK_STR_EQ(c.demo_directory, "client");
}

TEST(config_empty_text_keeps_defaults)
{
    hk_config_t c, d;
    char err[ERR_SIZE];
    hk_config_defaults(&d);
    CHECK_INT_EQ(parse_over_defaults(&c, "", 0, err), HK_OK);
    check_same(&c, &d);
    CHECK_INT_EQ(parse_over_defaults(&c, NULL, 0, err), HK_OK);
    check_same(&c, &d);
}

/* make run starts the server with sora.conf.example, so its values must be the defaults. */
TEST(config_example_file_is_the_defaults)
{
    size_t len;
    char *text = hk_test_read_file("sora.conf.example", &len);
    hk_config_t c, d;
    char err[ERR_SIZE];
    CHECK_INT_EQ(parse_over_defaults(&c, text, len, err), HK_OK);
    hk_config_defaults(&d);
    check_same(&c, &d);

    /* ...and it names every key: each non-comment line sets one, and there are 48. */
    int keys = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '#')
            keys++;
    }
    CHECK_INT_EQ(keys, 48);
    free(text);
}

TEST(config_full_file)
{
    size_t len;
    char *text = hk_test_read_file("tests/unit/fixtures/config/full.conf", &len);
    hk_config_t c;
    char err[ERR_SIZE];
    CHECK_INT_EQ(parse_over_defaults(&c, text, len, err), HK_OK);
    check_full(&c);
    free(text);
}

TEST(config_load_full_file)
{
    hk_config_t c;
    char err[ERR_SIZE];
    memset(&c, 0, sizeof c);
    CHECK_INT_EQ(hk_config_load(&c, "tests/unit/fixtures/config/full.conf", err, sizeof err),
                 HK_OK);
    check_full(&c);
}

TEST(config_parse_over_current_values)
{
    /* Keys absent from the text keep what the struct held before. */
    hk_config_t c;
    char err[ERR_SIZE];
    hk_config_defaults(&c);
    const char *a = "media_port = 6000\n";
    const char *b = "api_port = 6001\n";
    CHECK_INT_EQ(hk_config_parse(&c, a, strlen(a), "a.conf", err, sizeof err), HK_OK);
    CHECK_INT_EQ(hk_config_parse(&c, b, strlen(b), "b.conf", err, sizeof err), HK_OK);
    CHECK_INT_EQ(c.media_port, 6000);
    CHECK_INT_EQ(c.api_port, 6001);
    CHECK_INT_EQ(c.signaling_port, 5000);
}

TEST(config_comments_and_whitespace)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "# a comment\n"
                       "   # an indented comment\n"
                       "\n"
                       "   \t \n"
                       "\tmedia_port\t=\t6000\t# trailing comment\n"
                       "signaling_port =6002 # comment = with = equals\n"
                       "demo_directory = web#1 # '#' inside a value stays, after a blank it "
                       "does not\n"
                       "public_ipv4_address = # empty, then a comment\n"
                       "log_level =debug\n"
                       "log_format= json   \n");
    CHECK_INT_EQ(c.media_port, 6000);
    CHECK_INT_EQ(c.signaling_port, 6002);
    CHECK_STR_EQ(c.demo_directory, "web#1");
    CHECK_STR_EQ(c.public_ipv4_address, "");
    CHECK_INT_EQ(c.log_level, HK_LOG_DEBUG);
    CHECK_INT_EQ(c.log_format, HK_LOG_FORMAT_JSON);
    /* "6001#glued..." is one value, so it is not an integer. */
    CHECK_PARSE_ERROR("api_port=6001#glued\n", "sora.conf:1: api_port: \"6001#glued\" is not an "
                                               "integer");
    CHECK_PARSE_OK(&c, "api_port = 6001 #spaced\n");
    CHECK_INT_EQ(c.api_port, 6001);
    /* A '#' right after '=' starts a comment too: the value is empty. */
    CHECK_PARSE_OK(&c, "public_ipv4_address =#x\n");
    CHECK_STR_EQ(c.public_ipv4_address, "");
    CHECK_PARSE_ERROR("demo_directory =#x\n", "sora.conf:1: demo_directory: missing value");
}

TEST(config_string_values)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "demo_directory =   a b\tc   \n"
                       "tls_certificate_file = x=y.pem\n"
                       "tls_private_key_file = k.pem\n");
    CHECK_STR_EQ(c.demo_directory, "a b\tc");
    CHECK_STR_EQ(c.tls_certificate_file, "x=y.pem");
    CHECK_STR_EQ(c.tls_private_key_file, "k.pem");
}

TEST(config_crlf_line_endings)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "# comment\r\n\r\nmedia_port = 6000\r\nlog_format = json # c\r\n"
                       "demo_directory = web\r\n");
    CHECK_INT_EQ(c.media_port, 6000);
    CHECK_INT_EQ(c.log_format, HK_LOG_FORMAT_JSON);
    CHECK_STR_EQ(c.demo_directory, "web");
    /* Line numbers count CRLF lines like LF lines. */
    CHECK_PARSE_ERROR("e2ee = true\r\n\r\nbogus = 1\r\n", "sora.conf:3: bogus: unknown key");
}

TEST(config_no_trailing_newline)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "api_port = 1\nmedia_port = 6000");
    CHECK_INT_EQ(c.media_port, 6000);
    CHECK_PARSE_OK(&c, "api_port = 1\nmedia_port = 6001\r");
    CHECK_INT_EQ(c.media_port, 6001);
    CHECK_PARSE_OK(&c, "# just a comment");
    CHECK_PARSE_ERROR("api_port = 1\nmedia_port = 0", "sora.conf:2: media_port: 0 is out of range "
                                                      "(1..65535)");
}

TEST(config_utf8_bom_and_text)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "\xEF\xBB\xBF"
                       "media_port = 6000\n"
                       "# comment with UTF-8: \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xA5\n"
                       "demo_directory = /srv/\xE2\x82\xAC\n");
    CHECK_INT_EQ(c.media_port, 6000);
    CHECK_STR_EQ(c.demo_directory, "/srv/\xE2\x82\xAC");
}

TEST(config_value_units)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "ping_interval = 1500ms\nconnect_timeout = 2 min\n"
                       "max_message_size = 1 MiB\nmax_message_size_before_connect = 2048\n");
    CHECK_INT_EQ(c.ping_interval_ms, 1500);
    CHECK_INT_EQ(c.connect_timeout_ms, 120000);
    CHECK_INT_EQ(c.max_message_size, 1024 * 1024);
    CHECK_INT_EQ(c.max_message_size_before_connect, 2048);
    CHECK_PARSE_OK(&c, "ping_interval = 1 min\nconnect_timeout = 30s\n"
                       "max_message_size = 64KiB\nmax_message_size_before_connect = 4096 B\n");
    CHECK_INT_EQ(c.ping_interval_ms, 60000);
    CHECK_INT_EQ(c.connect_timeout_ms, 30000);
    CHECK_INT_EQ(c.max_message_size, 64 * 1024);
    CHECK_INT_EQ(c.max_message_size_before_connect, 4096);
}

/* ---- errors ------------------------------------------------------------------------------ */

TEST(config_error_unknown_key)
{
    CHECK_PARSE_ERROR("media_port = 1\nmedia_prot = 1\n", "sora.conf:2: media_prot: unknown key");
    CHECK_PARSE_ERROR("Media_Port = 1\n", "sora.conf:1: Media_Port: unknown key");
    CHECK_PARSE_ERROR("media port = 1\n", "sora.conf:1: media port: unknown key");
}

TEST(config_error_bad_bool)
{
    CHECK_PARSE_ERROR("e2ee = yes\n",
                      "sora.conf:1: e2ee: \"yes\" is not a boolean (expected true or false)");
    CHECK_PARSE_ERROR("signaling_notify = on\n", "sora.conf:1: signaling_notify: \"on\" is not a "
                                                 "boolean (expected true or false)");
    CHECK_PARSE_ERROR("signaling_notify_metadata = TRUE\n",
                      "sora.conf:1: signaling_notify_metadata: \"TRUE\" is not a boolean "
                      "(expected true or false)");
    CHECK_PARSE_ERROR("e2ee = 1\n",
                      "sora.conf:1: e2ee: \"1\" is not a boolean (expected true or false)");
}

TEST(config_error_missing_value)
{
    CHECK_PARSE_ERROR("e2ee =\n", "sora.conf:1: e2ee: missing value");
    CHECK_PARSE_ERROR("media_port = # none\n", "sora.conf:1: media_port: missing value");
    CHECK_PARSE_ERROR("listen_address = \n", "sora.conf:1: listen_address: missing value");
    CHECK_PARSE_ERROR("demo_directory =\n", "sora.conf:1: demo_directory: missing value");
    CHECK_PARSE_ERROR("ping_interval =\n", "sora.conf:1: ping_interval: missing value");
    CHECK_PARSE_ERROR("log_level =\n", "sora.conf:1: log_level: missing value");
}

TEST(config_error_bad_int)
{
    CHECK_PARSE_ERROR("media_port = abc\n", "sora.conf:1: media_port: \"abc\" is not an integer");
    CHECK_PARSE_ERROR("max_connections = 1.5\n",
                      "sora.conf:1: max_connections: \"1.5\" is not an integer");
    CHECK_PARSE_ERROR("max_channels = +5\n", "sora.conf:1: max_channels: \"+5\" is not an integer");
    CHECK_PARSE_ERROR("max_channels = -\n", "sora.conf:1: max_channels: \"-\" is not an integer");
    CHECK_PARSE_ERROR("max_channels = 0x10\n",
                      "sora.conf:1: max_channels: \"0x10\" is not an integer");
}

TEST(config_error_int_trailing_garbage)
{
    CHECK_PARSE_ERROR("media_port = 5004x\n",
                      "sora.conf:1: media_port: \"5004x\" is not an integer");
    CHECK_PARSE_ERROR("media_port = 5004 5005\n",
                      "sora.conf:1: media_port: \"5004 5005\" is not an integer");
    CHECK_PARSE_ERROR("max_missed_pongs = 3 s\n",
                      "sora.conf:1: max_missed_pongs: \"3 s\" is not an integer");
}

TEST(config_error_int_out_of_range)
{
    /* Ports: 1..65535. */
    CHECK_PARSE_ERROR("api_port = 1\nmedia_port = 70000\n",
                      "sora.conf:2: media_port: 70000 is out of range (1..65535)");
    CHECK_PARSE_ERROR("signaling_port = 0\n",
                      "sora.conf:1: signaling_port: 0 is out of range (1..65535)");
    CHECK_PARSE_ERROR("api_port = -80\n", "sora.conf:1: api_port: -80 is out of range (1..65535)");
    CHECK_PARSE_ERROR("busy_poll_us = 10001\n",
                      "sora.conf:1: busy_poll_us: 10001 is out of range (0..10000)");
    CHECK_PARSE_ERROR("api_port = 99999999999999999999999999\n",
                      "sora.conf:1: api_port: 99999999999999999999999999 is out of range "
                      "(1..65535)");
    CHECK_PARSE_ERROR("api_port = 4294967297\n",
                      "sora.conf:1: api_port: 4294967297 is out of range (1..65535)");
    /* Counts. */
    CHECK_PARSE_ERROR("max_connections_per_channel = 1001\n",
                      "sora.conf:1: max_connections_per_channel: 1001 is out of range (1..1000)");
    CHECK_PARSE_ERROR("max_connections = 100001\n",
                      "sora.conf:1: max_connections: 100001 is out of range (1..100000)");
    CHECK_PARSE_ERROR("max_channels = 0\n",
                      "sora.conf:1: max_channels: 0 is out of range (1..100000)");
    CHECK_PARSE_ERROR("max_missed_pongs = 101\n",
                      "sora.conf:1: max_missed_pongs: 101 is out of range (1..100)");
    CHECK_PARSE_ERROR("max_key_messages_per_second = -1\n",
                      "sora.conf:1: max_key_messages_per_second: -1 is out of range (1..100000)");
}

TEST(config_int_range_edges)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "signaling_port = 1\napi_port = 65535\nmedia_port = 00080\n"
                       "max_missed_pongs = 1\nmax_key_messages_per_second = 100000\n");
    CHECK_INT_EQ(c.signaling_port, 1);
    CHECK_INT_EQ(c.api_port, 65535);
    CHECK_INT_EQ(c.media_port, 80);
    CHECK_INT_EQ(c.max_missed_pongs, 1);
    CHECK_INT_EQ(c.max_key_messages_per_second, 100000);
}

TEST(config_error_duration)
{
    CHECK_PARSE_ERROR("ping_interval = 30\n",
                      "sora.conf:1: ping_interval: missing unit (ms, s, min, h)");
    CHECK_PARSE_ERROR("ping_interval = 30 sec\n",
                      "sora.conf:1: ping_interval: unknown unit \"sec\" (ms, s, min, h)");
    CHECK_PARSE_ERROR("connect_timeout = 10 S\n",
                      "sora.conf:1: connect_timeout: unknown unit \"S\" (ms, s, min, h)");
    CHECK_PARSE_ERROR("ping_interval = 1.5 s\n",
                      "sora.conf:1: ping_interval: \"1.5 s\" is not a duration (e.g. 30 s, 500 "
                      "ms, 2 min)");
    CHECK_PARSE_ERROR("ping_interval = s\n",
                      "sora.conf:1: ping_interval: \"s\" is not a duration (e.g. 30 s, 500 ms, 2 "
                      "min)");
    CHECK_PARSE_ERROR("ping_interval = 5 s s\n",
                      "sora.conf:1: ping_interval: \"5 s s\" is not a duration (e.g. 30 s, 500 "
                      "ms, 2 min)");
    /* Ranges: ping_interval 1 s..1 min, connect_timeout 1 s..10 min. */
    CHECK_PARSE_ERROR("ping_interval = 999 ms\n",
                      "sora.conf:1: ping_interval: 999 ms is out of range (1 s..1 min)");
    CHECK_PARSE_ERROR("ping_interval = 61 s\n",
                      "sora.conf:1: ping_interval: 61 s is out of range (1 s..1 min)");
    CHECK_PARSE_ERROR("connect_timeout = 1 h\n",
                      "sora.conf:1: connect_timeout: 1 h is out of range (1 s..10 min)");
    CHECK_PARSE_ERROR("connect_timeout = -5 s\n",
                      "sora.conf:1: connect_timeout: -5 s is out of range (1 s..10 min)");
    CHECK_PARSE_ERROR("connect_timeout = 0 ms\n",
                      "sora.conf:1: connect_timeout: 0 ms is out of range (1 s..10 min)");
    /* Huge numbers saturate instead of wrapping into range. */
    CHECK_PARSE_ERROR("connect_timeout = 18446744073709552 ms\n",
                      "sora.conf:1: connect_timeout: 18446744073709552 ms is out of range (1 "
                      "s..10 min)");
    CHECK_PARSE_ERROR("connect_timeout = 5124095576030432 h\n",
                      "sora.conf:1: connect_timeout: 5124095576030432 h is out of range (1 "
                      "s..10 min)");
}

TEST(config_error_size)
{
    CHECK_PARSE_ERROR("max_message_size = 64 KB\n",
                      "sora.conf:1: max_message_size: unknown unit \"KB\" (B, KiB, MiB, GiB)");
    CHECK_PARSE_ERROR("max_message_size = 64 kib\n",
                      "sora.conf:1: max_message_size: unknown unit \"kib\" (B, KiB, MiB, GiB)");
    CHECK_PARSE_ERROR("max_message_size = big\n",
                      "sora.conf:1: max_message_size: \"big\" is not a size (e.g. 64 KiB, 1 MiB, "
                      "512 B)");
    CHECK_PARSE_ERROR("max_message_size = 1,024\n",
                      "sora.conf:1: max_message_size: \"1,024\" is not a size (e.g. 64 KiB, 1 "
                      "MiB, 512 B)");
    /* Range: 1 KiB..16 MiB. */
    CHECK_PARSE_ERROR("max_message_size = 1023\n",
                      "sora.conf:1: max_message_size: 1023 is out of range (1 KiB..16 MiB)");
    CHECK_PARSE_ERROR("max_message_size_before_connect = 17 MiB\n",
                      "sora.conf:1: max_message_size_before_connect: 17 MiB is out of range (1 "
                      "KiB..16 MiB)");
    CHECK_PARSE_ERROR("max_message_size = 16777217 B\n",
                      "sora.conf:1: max_message_size: 16777217 B is out of range (1 KiB..16 "
                      "MiB)");
    CHECK_PARSE_ERROR("max_message_size = 17179869184 GiB\n",
                      "sora.conf:1: max_message_size: 17179869184 GiB is out of range (1 "
                      "KiB..16 MiB)");
}

TEST(config_error_address)
{
    CHECK_PARSE_ERROR("listen_address = 1.2.3\n",
                      "sora.conf:1: listen_address: \"1.2.3\" is not an IPv4 address");
    CHECK_PARSE_ERROR("listen_address = 256.1.1.1\n",
                      "sora.conf:1: listen_address: \"256.1.1.1\" is not an IPv4 address");
    CHECK_PARSE_ERROR("listen_address = ::1\n",
                      "sora.conf:1: listen_address: \"::1\" is not an IPv4 address");
    CHECK_PARSE_ERROR("listen_address = localhost\n",
                      "sora.conf:1: listen_address: \"localhost\" is not an IPv4 address");
    CHECK_PARSE_ERROR("public_ipv4_address = 1.2.3.4.5\n",
                      "sora.conf:1: public_ipv4_address: \"1.2.3.4.5\" is not an IPv4 address");
    CHECK_PARSE_ERROR("public_ipv4_address = 0.0.0.0\n",
                      "sora.conf:1: public_ipv4_address: 0.0.0.0 cannot be a public address "
                      "(leave it empty instead)");
    CHECK_PARSE_ERROR(
        "public_ipv4_address = 1111111111111111111111111111111111111111111111111111111111111111\n",
        "sora.conf:1: public_ipv4_address: "
        "\"1111111111111111111111111111111111111111111111111111111111111111\" is not an IPv4 "
        "address");
    hk_config_t c;
    CHECK_PARSE_OK(&c, "listen_address = 192.0.2.1\npublic_ipv4_address = 198.51.100.2\n");
    CHECK_STR_EQ(c.listen_address, "192.0.2.1");
    CHECK_STR_EQ(c.public_ipv4_address, "198.51.100.2");
}

TEST(config_error_log_level_and_format)
{
    CHECK_PARSE_ERROR("log_level = verbose\n", "sora.conf:1: log_level: \"verbose\" is not a log "
                                               "level (expected debug, info, warn or error)");
    CHECK_PARSE_ERROR("log_level = INFO\n", "sora.conf:1: log_level: \"INFO\" is not a log level "
                                            "(expected debug, info, warn or error)");
    CHECK_PARSE_ERROR("log_format = xml\n",
                      "sora.conf:1: log_format: \"xml\" is not a log format (expected text or "
                      "json)");
    hk_config_t c;
    CHECK_PARSE_OK(&c, "log_level = warn\n");
    CHECK_INT_EQ(c.log_level, HK_LOG_WARN);
    CHECK_PARSE_OK(&c, "log_level = error\n");
    CHECK_INT_EQ(c.log_level, HK_LOG_ERROR);
}

TEST(config_error_duplicate_key)
{
    CHECK_PARSE_ERROR("e2ee = true\n# x\nmedia_port = 1\ne2ee = true\n",
                      "sora.conf:4: e2ee: duplicate key (first set at line 1)");
}

TEST(config_error_missing_equals)
{
    CHECK_PARSE_ERROR("e2ee = true\n\n\n\n\n\nmedia_port 5004\n",
                      "sora.conf:7: config: expected key = value");
    CHECK_PARSE_ERROR("[server]\n", "sora.conf:1: config: expected key = value");
    CHECK_PARSE_ERROR("media_port # = 5\n", "sora.conf:1: media_port #: unknown key");
}

TEST(config_error_empty_key)
{
    CHECK_PARSE_ERROR("= 5\n", "sora.conf:1: config: empty key before '='");
    CHECK_PARSE_ERROR(" \t = true\n", "sora.conf:1: config: empty key before '='");
}

TEST(config_error_long_line)
{
    /* 4096 bytes of content is the limit; the terminator does not count. */
    char text[4200];
    hk_config_t c;
    char err[ERR_SIZE];
    text[0] = '#';
    memset(text + 1, 'a', 4095);
    memcpy(text + 4096, "\r\n", 2);
    CHECK_INT_EQ(parse_over_defaults(&c, text, 4098, err), HK_OK);
    text[4096] = 'a';
    CHECK_INT_EQ(parse_over_defaults(&c, text, 4098, err), HK_EINVAL);
    CHECK_STR_EQ(err, "sora.conf:1: config: line is longer than 4096 bytes");
    CHECK_INT_EQ(parse_over_defaults(&c, text, 4097, err), HK_EINVAL);
    CHECK_STR_EQ(err, "sora.conf:1: config: line is longer than 4096 bytes");

    /* A long string value is refused by its field size, not the line limit. */
    memcpy(text, "demo_directory = ", 17);
    memset(text + 17, 'd', 256);
    CHECK_INT_EQ(parse_over_defaults(&c, text, 17 + 256, err), HK_EINVAL);
    CHECK_STR_EQ(err, "sora.conf:1: demo_directory: value is longer than 255 bytes");
    CHECK_INT_EQ(parse_over_defaults(&c, text, 17 + 255, err), HK_OK);
    CHECK_INT_EQ(strlen(c.demo_directory), 255);

    /* Keys and values quoted in messages are clipped at 64 bytes. */
    memset(text, 'k', 100);
    memcpy(text + 100, "=1", 2);
    CHECK_INT_EQ(parse_over_defaults(&c, text, 102, err), HK_EINVAL);
    CHECK_STR_EQ(err, "sora.conf:1: "
                      "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...: "
                      "unknown key");
}

TEST(config_error_nul_byte)
{
    CHECK_PARSE_ERROR("e2ee = true\nmedia_port = 50\00004\n",
                      "sora.conf:2: config: NUL byte at column 16");
    CHECK_PARSE_ERROR("# comment \000 still checked\n", "sora.conf:1: config: NUL byte at column "
                                                        "11");
}

TEST(config_error_control_character)
{
    CHECK_PARSE_ERROR("demo_directory = a\033[31mred\n",
                      "sora.conf:1: config: control character 0x1b at column 19");
    CHECK_PARSE_ERROR("media_port = 5004\rapi_port = 1\n",
                      "sora.conf:1: config: control character 0x0d at column 18");
    CHECK_PARSE_ERROR("e2ee = true\177\n",
                      "sora.conf:1: config: control character 0x7f at column 12");
}

TEST(config_error_invalid_utf8)
{
    CHECK_PARSE_ERROR("demo_directory = caf\xE9\n",
                      "sora.conf:1: config: invalid UTF-8 at column 21");
    CHECK_PARSE_ERROR("# overlong slash \xC0\xAF\n",
                      "sora.conf:1: config: invalid UTF-8 at column 18");
    CHECK_PARSE_ERROR("# surrogate \xED\xA0\x80\n", "sora.conf:1: config: invalid UTF-8 at "
                                                    "column 13");
    CHECK_PARSE_ERROR("# above U+10FFFF \xF4\x90\x80\x80\n",
                      "sora.conf:1: config: invalid UTF-8 at column 18");
    CHECK_PARSE_ERROR("# truncated \xE2\x82", "sora.conf:1: config: invalid UTF-8 at column 13");
    CHECK_PARSE_ERROR("# lone continuation \x80\n",
                      "sora.conf:1: config: invalid UTF-8 at column 21");
}

TEST(config_error_tls_pair)
{
    CHECK_PARSE_ERROR("tls_certificate_file = cert.pem\nmedia_port = 1\n",
                      "sora.conf:1: tls_private_key_file: must be set when tls_certificate_file "
                      "is set");
    CHECK_PARSE_ERROR("e2ee = false\ntls_private_key_file = key.pem\n",
                      "sora.conf:2: tls_certificate_file: must be set when tls_private_key_file "
                      "is set");
    /* When the missing key is written but empty, its own line is reported. */
    CHECK_PARSE_ERROR("tls_certificate_file = cert.pem\ntls_private_key_file =\n",
                      "sora.conf:2: tls_private_key_file: must be set when tls_certificate_file "
                      "is set");
    hk_config_t c;
    CHECK_PARSE_OK(&c, "tls_certificate_file =\ntls_private_key_file =\n");
    CHECK_STR_EQ(c.tls_certificate_file, "");
}

TEST(config_api_access)
{
    hk_config_t c;
    /* No secret: loopback only, whatever listen_address says. */
    CHECK_PARSE_OK(&c, "listen_address = 0.0.0.0\n");
    CHECK_STR_EQ(hk_config_api_address(&c), "127.0.0.1");
    CHECK_PARSE_OK(&c, "api_listen_address = 127.0.0.1\n");
    CHECK_STR_EQ(hk_config_api_address(&c), "127.0.0.1");
    CHECK_PARSE_ERROR("api_listen_address = 10.0.0.1\n",
                      "sora.conf:1: api_listen_address: 10.0.0.1 needs api_secret: without one "
                      "the API listens on 127.0.0.1 only");
    CHECK_PARSE_ERROR("api_secret = short\n",
                      "sora.conf:1: api_secret: must be at least 16 characters (it is the API's "
                      "only credential)");
    /* A secret: listen_address, or api_listen_address when set. */
    CHECK_PARSE_OK(&c, "listen_address = 10.0.0.2\napi_secret = 0123456789abcdef\n");
    CHECK_STR_EQ(hk_config_api_address(&c), "10.0.0.2");
    CHECK_PARSE_OK(&c, "api_secret = 0123456789abcdef\napi_listen_address = 10.0.0.3\n");
    CHECK_STR_EQ(hk_config_api_address(&c), "10.0.0.3");
    /* TLS: the API's own pair, else the signaling one. */
    CHECK_PARSE_OK(&c, "tls_certificate_file = s.pem\ntls_private_key_file = s.key\n");
    CHECK_STR_EQ(hk_config_api_tls_certificate(&c), "s.pem");
    CHECK_STR_EQ(hk_config_api_tls_private_key(&c), "s.key");
    CHECK_PARSE_OK(&c, "tls_certificate_file = s.pem\ntls_private_key_file = s.key\n"
                       "api_tls_certificate_file = a.pem\napi_tls_private_key_file = a.key\n");
    CHECK_STR_EQ(hk_config_api_tls_certificate(&c), "a.pem");
    CHECK_STR_EQ(hk_config_api_tls_private_key(&c), "a.key");
    CHECK_PARSE_OK(&c, "");
    CHECK_STR_EQ(hk_config_api_tls_certificate(&c), "");
    CHECK_PARSE_ERROR("api_tls_certificate_file = a.pem\n",
                      "sora.conf:1: api_tls_private_key_file: must be set when "
                      "api_tls_certificate_file is set");
}

TEST(config_error_port_clash)
{
    /* Reported at the later of the two keys. */
    CHECK_PARSE_ERROR("api_port = 5004\n",
                      "sora.conf:1: api_port: 5004 is already used by media_port");
    CHECK_PARSE_ERROR("media_port = 6000\n#\nsignaling_port = 6000\n",
                      "sora.conf:3: signaling_port: 6000 is already used by media_port");
    CHECK_PARSE_ERROR("signaling_port = 6000\nmedia_port = 6000\n",
                      "sora.conf:2: media_port: 6000 is already used by signaling_port");
    /* Swapping two ports through a clash that is gone by the end of the file is fine. */
    hk_config_t c;
    CHECK_PARSE_OK(&c, "api_port = 5000\nsignaling_port = 3000\n");
    CHECK_INT_EQ(c.api_port, 5000);
    CHECK_INT_EQ(c.signaling_port, 3000);

    /* Both from the values already in the struct: line 0. */
    char err[ERR_SIZE];
    hk_config_defaults(&c);
    c.api_port = c.signaling_port;
    CHECK_INT_EQ(hk_config_parse(&c, "e2ee = true\n", 12, "sora.conf", err, sizeof err), HK_EINVAL);
    CHECK_STR_EQ(err, "sora.conf:0: api_port: 5000 is already used by signaling_port");
    CHECK_INT_EQ(c.e2ee, false);
}

TEST(config_workers)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "");
    CHECK_INT_EQ(c.workers, 1);
    CHECK_PARSE_OK(&c, "workers = auto\n");
    CHECK_INT_EQ(c.workers, 0);
    CHECK_PARSE_OK(&c, "workers = 4\nmedia_port = 6000\n");
    CHECK_INT_EQ(c.workers, 4);
    CHECK_PARSE_ERROR("workers = 0\n", "sora.conf:1: workers: 0 is out of range (1..64)");
    CHECK_PARSE_ERROR("workers = some\n",
                      "sora.conf:1: workers: \"some\" is neither auto nor a number");
    CHECK_PARSE_ERROR("media_port = 65535\nworkers = 2\n",
                      "sora.conf:2: workers: 2 workers need media ports beyond 65535");
    CHECK_PARSE_ERROR("workers = 3\nmedia_tcp_port = 4998\n",
                      "sora.conf:1: workers: worker 2's media_tcp_port + 2 = 5000 is already used "
                      "by signaling_port");
}

TEST(config_media_tcp_port_and_turn)
{
    /* ICE-TCP may share media_port's number (another protocol), not a TCP port's. */
    hk_config_t c;
    CHECK_PARSE_OK(&c, "media_tcp_port = 5004\n");
    CHECK_INT_EQ(c.media_tcp_port, 5004);
    CHECK_PARSE_ERROR("media_tcp_port = 5000\n",
                      "sora.conf:1: media_tcp_port: 5000 is already used by signaling_port");
    CHECK_PARSE_ERROR("media_tcp_port = 3000\n",
                      "sora.conf:1: media_tcp_port: 3000 is already used by api_port");
    CHECK_PARSE_ERROR("media_tcp_port = 65536\n",
                      "sora.conf:1: media_tcp_port: 65536 is out of range (0..65535)");
    CHECK_PARSE_OK(&c, "turn_urls = turn:a:3478?transport=udp , turns:a:443?transport=tcp\n"
                       "turn_secret = s3cret\nturn_credential_ttl = 2 h\n");
    CHECK_INT_EQ(c.turn_credential_ttl_ms, 2 * 3600 * 1000);
    CHECK_PARSE_ERROR("turn_urls = turn:a:3478\n",
                      "sora.conf:1: turn_secret: must be set when turn_urls is set (coturn's "
                      "static-auth-secret)");
    CHECK_PARSE_ERROR("turn_secret = x\nturn_urls = http://a\n",
                      "sora.conf:2: turn_urls: \"http://a\" is not a turn:, turns: or stun: URL");
    CHECK_PARSE_ERROR("turn_secret = x\nturn_urls = turn:a,turn:b,turn:c,turn:d,turn:e,turn:f\n",
                      "sora.conf:2: turn_urls: more than 5 URLs (Firefox warns at more than 5)");
    CHECK_PARSE_ERROR("turn_credential_ttl = 30 s\n",
                      "sora.conf:1: turn_credential_ttl: 30 s is out of range (1 min..168 h)");
}

TEST(config_error_small_buffer)
{
    hk_config_t c;
    char err[16];
    hk_config_defaults(&c);
    CHECK_INT_EQ(hk_config_parse(&c, "bogus = 1", 9, "sora.conf", err, sizeof err), HK_EINVAL);
    CHECK_STR_EQ(err, "sora.conf:1: bo");
    CHECK_INT_EQ(hk_config_parse(&c, "bogus = 1", 9, "sora.conf", NULL, 0), HK_EINVAL);
    CHECK_INT_EQ(hk_config_parse(&c, "bogus = 1", 9, NULL, err, sizeof err), HK_EINVAL);
    CHECK_STR_EQ(err, "config:1: bogus");
}

TEST(config_load_missing_file)
{
    hk_config_t c;
    char err[ERR_SIZE];
    const char *path = "tests/unit/fixtures/config/does-not-exist.conf";
    CHECK_INT_EQ(hk_config_load(&c, path, err, sizeof err), HK_ENOENT);
    CHECK_STR_EQ(err, "tests/unit/fixtures/config/does-not-exist.conf:0: config: cannot read: "
                      "No such file or directory");
    CHECK_INT_EQ(hk_config_load(&c, "tests/unit/fixtures/config", err, sizeof err), HK_EIO);
    CHECK_STR_EQ(err, "tests/unit/fixtures/config:0: config: cannot read: Is a directory");
}

TEST(config_load_parse_error)
{
    hk_config_t c;
    char err[ERR_SIZE];
    CHECK_INT_EQ(hk_config_load(&c, "tests/unit/fixtures/config/bad.conf", err, sizeof err),
                 HK_EINVAL);
    CHECK_STR_EQ(err, "tests/unit/fixtures/config/bad.conf:4: media_port: 70000 is out of range "
                      "(1..65535)");
    /* hk_config_load starts from the defaults, and a failed parse changes nothing. */
    CHECK_INT_EQ(c.media_port, 5004);
    CHECK_INT_EQ(c.e2ee, false);
}

static void write_file(const char *path, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    const char line[] = "# padding padding padding padding padding padding padding padding\n";
    size_t written = 0;
    while (written + sizeof line - 1 <= size) {
        CHECK(fwrite(line, 1, sizeof line - 1, f) == sizeof line - 1);
        written += sizeof line - 1;
    }
    while (written < size) {
        CHECK(fputc('\n', f) != EOF);
        written++;
    }
    CHECK(fclose(f) == 0);
}

TEST(config_load_size_limit)
{
    char path[] = "/tmp/hisoka-config-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    hk_config_t c;
    char err[ERR_SIZE];

    write_file(path, 1024 * 1024);
    CHECK_INT_EQ(hk_config_load(&c, path, err, sizeof err), HK_OK);

    write_file(path, 1024 * 1024 + 1);
    int rc = hk_config_load(&c, path, err, sizeof err);
    unlink(path);
    CHECK_INT_EQ(rc, HK_ELIMIT);
    char expected[128];
    snprintf(expected, sizeof expected, "%s:0: config: file is larger than 1 MiB", path);
    CHECK_STR_EQ(err, expected);
}

TEST(config_cluster)
{
    hk_config_t c;
    CHECK_PARSE_OK(&c, "cluster_redis_url = redis://10.0.0.5:6380\n"
                       "cluster_node_url = wss://node1.example.com/signaling\n");
    CHECK_STR_EQ(c.cluster_redis_url, "redis://10.0.0.5:6380");
    CHECK_STR_EQ(c.cluster_node_url, "wss://node1.example.com/signaling");
    CHECK_PARSE_ERROR("cluster_redis_url = redis://r\n",
                      "sora.conf:1: cluster_node_url: must be set when cluster_redis_url is set "
                      "(this node's signaling URL, e.g. wss://node1.example.com/signaling, sent "
                      "to clients in redirects)");
    CHECK_PARSE_ERROR("cluster_node_url = ws://a:5000/signaling\n",
                      "sora.conf:1: cluster_redis_url: must be set when cluster_node_url is set "
                      "(no cluster without Redis)");
    CHECK_PARSE_ERROR("cluster_redis_url = redis://r\ncluster_node_url = http://a/signaling\n",
                      "sora.conf:2: cluster_node_url: must be a ws:// or wss:// URL (clients "
                      "are redirected to it)");
    CHECK_PARSE_ERROR("cluster_redis_url = http://r\ncluster_node_url = ws://a/signaling\n",
                      "sora.conf:1: cluster_redis_url: must be redis://host[:port]");
    CHECK_PARSE_ERROR("cluster_redis_url = rediss://r:6380\ncluster_node_url = ws://a/s\n",
                      "sora.conf:1: cluster_redis_url: rediss:// (TLS) is not supported: use "
                      "redis://host[:port] on a private network");
    CHECK_PARSE_ERROR("cluster_redis_url = redis://r:0\ncluster_node_url = ws://a/s\n",
                      "sora.conf:1: cluster_redis_url: port must be a number from 1 to 65535");
}

TEST(config_redis_url)
{
    char host[64];
    int port = 0;
    const char *why = NULL;
    CHECK_INT_EQ(hk_config_parse_redis_url("redis://127.0.0.1", host, sizeof host, &port, &why),
                 HK_OK);
    CHECK_STR_EQ(host, "127.0.0.1");
    CHECK_INT_EQ(port, 6379);
    CHECK_INT_EQ(hk_config_parse_redis_url("redis://redis:7000/", host, sizeof host, &port, &why),
                 HK_OK);
    CHECK_STR_EQ(host, "redis");
    CHECK_INT_EQ(port, 7000);
    static const char *const bad[] = {
        "redis://",      "redis://:6379", "redis://h:",        "redis://h:65536",
        "redis://h:12x", "redis://h/0",   "redis://u:p@h:1",   "redis://h?x=1",
        "redis://h o",   "redis://h:+1",  "redis://h:0006379", "unix:///tmp/redis.sock",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (hk_config_parse_redis_url(bad[i], host, sizeof host, &port, &why) != HK_EINVAL ||
            !why) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            CHECK(0);
        }
    }
    /* A host that does not fit is refused, not cut. */
    CHECK_INT_EQ(hk_config_parse_redis_url("redis://abcdefgh", host, 8, &port, &why), HK_EINVAL);
}

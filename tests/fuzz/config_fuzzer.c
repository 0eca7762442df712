/* libFuzzer target `config`: feeds the input to hk_config_parse over the defaults. On
 * success the struct must satisfy every documented range; on failure the message must be
 * "FILE:LINE: key: reason" and the struct must be untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "config/config.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

static int terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_valid(const hk_config_t *c)
{
    require(terminated(c->listen_address, sizeof c->listen_address));
    require(terminated(c->public_ipv4_address, sizeof c->public_ipv4_address));
    require(terminated(c->tls_certificate_file, sizeof c->tls_certificate_file));
    require(terminated(c->tls_private_key_file, sizeof c->tls_private_key_file));
    require(terminated(c->demo_directory, sizeof c->demo_directory));
    require(c->listen_address[0] != '\0' && c->demo_directory[0] != '\0');
    require(c->signaling_port >= 1 && c->signaling_port <= 65535);
    require(c->api_port >= 1 && c->api_port <= 65535);
    require(c->media_port >= 1 && c->media_port <= 65535);
    require(c->signaling_port != c->api_port && c->signaling_port != c->media_port &&
            c->api_port != c->media_port);
    require(c->max_connections_per_channel >= 1 && c->max_connections_per_channel <= 1000);
    require(c->max_connections >= 1 && c->max_connections <= 100000);
    require(c->max_channels >= 1 && c->max_channels <= 100000);
    require(c->ping_interval_ms >= 1000 && c->ping_interval_ms <= 60000);
    require(c->max_missed_pongs >= 1 && c->max_missed_pongs <= 100);
    require(c->connect_timeout_ms >= 1000 && c->connect_timeout_ms <= 600000);
    require(c->max_message_size_before_connect >= 1024 &&
            c->max_message_size_before_connect <= 16 * 1024 * 1024);
    require(c->max_message_size >= 1024 && c->max_message_size <= 16 * 1024 * 1024);
    require(c->max_key_messages_per_second >= 1 && c->max_key_messages_per_second <= 100000);
    require(c->log_level >= HK_LOG_DEBUG && c->log_level <= HK_LOG_ERROR);
    require(c->log_format == HK_LOG_FORMAT_TEXT || c->log_format == HK_LOG_FORMAT_JSON);
    require((c->tls_certificate_file[0] == '\0') == (c->tls_private_key_file[0] == '\0'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hk_config_t config, before;
    char err[512];
    hk_config_defaults(&config);
    memcpy(&before, &config, sizeof before);

    int rc = hk_config_parse(&config, (const char *)data, size, "fuzz.conf", err, sizeof err);
    if (rc == HK_OK) {
        require(err[0] == '\0');
        check_valid(&config);
    } else {
        require(rc == HK_EINVAL);
        require(strncmp(err, "fuzz.conf:", 10) == 0);
        require(strstr(err + 10, ": ") != NULL);
        require(memcmp(&config, &before, sizeof config) == 0);
    }

    /* No message buffer at all, and one too small for any message. */
    hk_config_defaults(&config);
    require(hk_config_parse(&config, (const char *)data, size, "fuzz.conf", NULL, 0) == rc);
    hk_config_defaults(&config);
    require(hk_config_parse(&config, (const char *)data, size, NULL, err, 5) == rc);
    require(strlen(err) < 5);
    return 0;
}

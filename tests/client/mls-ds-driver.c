/* A line-oriented driver of server/signal/mls_ds.c for tests/client/mls-ds.test.mjs, which
 * builds it with cc (-lcrypto) and runs ts-mls members against the C delivery service.
 *
 * stdin, one command a line:       stdout, for each command:
 *   join <conn_id> <now_ms>          send <conn_id> <hex>     (each message the DS sends)
 *   leave <conn_id> <now_ms>         close <conn_id> <reason> (each close it asks for)
 *   recv <conn_id> <now_ms> <hex>    done <rc> <reason or ->
 *   tick <now_ms>
 *   epoch                            done <epoch> <exists>
 *   leaf <conn_id>                   done <leaf or -1> -
 * argv: [commit_timeout_ms [key_package_timeout_ms]]. The signing seed is fixed (bytes
 * 1..32) so a test can compare the external sender's key. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/signal/mls_ds.h"

static void on_send(void *user, const char *conn_id, const uint8_t *msg, size_t len)
{
    (void)user;
    printf("send %s ", conn_id);
    for (size_t i = 0; i < len; i++)
        printf("%02x", msg[i]);
    printf("\n");
}

static void on_close(void *user, const char *conn_id, const char *reason)
{
    (void)user;
    printf("close %s %s\n", conn_id, reason);
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (s[0] && s[1] && n < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

int main(int argc, char **argv)
{
    hk_mls_ds_config_t cfg;
    if (hk_mls_ds_config_default(&cfg) != 0)
        return 2;
    for (int i = 0; i < 32; i++)
        cfg.signing_seed[i] = (uint8_t)(i + 1);
    if (argc > 1)
        cfg.commit_timeout_ms = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        cfg.key_package_timeout_ms = strtoull(argv[2], NULL, 10);
    hk_mls_ds_callbacks_t cb = {on_send, on_close};
    hk_mls_ds_t *ds = hk_mls_ds_new(&cfg, &cb, NULL);
    if (!ds)
        return 2;
    static char line[600000];
    static uint8_t msg[300000];
    char cmd[16], id[64];
    while (fgets(line, sizeof line, stdin)) {
        uint64_t now = 0;
        const char *err = NULL;
        int rc = 0;
        if (sscanf(line, "%15s", cmd) != 1)
            continue;
        if (strcmp(cmd, "join") == 0 && sscanf(line, "%*s %63s %" SCNu64, id, &now) == 2) {
            rc = hk_mls_ds_join(ds, id, now);
        } else if (strcmp(cmd, "leave") == 0 && sscanf(line, "%*s %63s %" SCNu64, id, &now) == 2) {
            hk_mls_ds_leave(ds, id, now);
        } else if (strcmp(cmd, "recv") == 0 && sscanf(line, "%*s %63s %" SCNu64, id, &now) == 2) {
            const char *hex = strrchr(line, ' ') + 1;
            size_t n = unhex(hex, msg, sizeof msg);
            rc = hk_mls_ds_receive(ds, id, msg, n, now, &err);
        } else if (strcmp(cmd, "tick") == 0 && sscanf(line, "%*s %" SCNu64, &now) == 1) {
            hk_mls_ds_tick(ds, now);
        } else if (strcmp(cmd, "epoch") == 0) {
            int exists = 0;
            uint64_t e = hk_mls_ds_epoch(ds, &exists);
            printf("done %" PRIu64 " %d\n", e, exists);
            fflush(stdout);
            continue;
        } else if (strcmp(cmd, "leaf") == 0 && sscanf(line, "%*s %63s", id) == 1) {
            printf("done %d -\n", hk_mls_ds_leaf_of(ds, id));
            fflush(stdout);
            continue;
        } else {
            rc = -1;
            err = "unknown command";
        }
        printf("done %d %s\n", rc, err ? err : "-");
        fflush(stdout);
    }
    hk_mls_ds_free(ds);
    return 0;
}

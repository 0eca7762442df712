/* libFuzzer target `mls_ds`: drives one delivery service (server/signal/mls_ds.h) with a
 * script read from the input: joins, leaves, clock ticks, key packages (ts-mls's fixture
 * with each member's identity), raw envelopes, INVALID reports, and commits built from the
 * proposals the DS actually sent (any subset, any order, with or without a path and a
 * Welcome), so the acceptance paths are reached too. After every step: no two members
 * share a leaf, the epoch only moves forward within one group, and every message the DS
 * sends is a well-formed envelope. Needs tests/unit/fixtures/mls/key-package.bin (run from
 * the repository root, as tests/fuzz/replay.sh and run.sh do). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/error.h"
#include "server/proto/mls_frame.h"
#include "server/signal/mls_ds.h"

#define N_IDS   4
#define MAX_REF 8

static const char *ids[N_IDS] = {"0000ABCDEFGHJKMNPQRSTVWXYZ", "0001ABCDEFGHJKMNPQRSTVWXYZ",
                                 "0002ABCDEFGHJKMNPQRSTVWXYZ", "0003ABCDEFGHJKMNPQRSTVWXYZ"};
static uint8_t *kp_fixture;
static size_t kp_len, kp_identity_off;

static uint8_t refs[MAX_REF][32];
static int n_refs;
static uint8_t group_id[16];

static void require(int cond)
{
    if (!cond)
        abort();
}

static void on_send(void *user, const char *conn_id, const uint8_t *msg, size_t len)
{
    (void)user;
    (void)conn_id;
    hk_mls_env_t env;
    require(hk_mls_env_parse(msg, len, &env, NULL) == 0);
    if (env.type == HK_MLS_GROUP) {
        require(env.body_len > 20);
        memcpy(group_id, env.body + 4, 16);
    } else if (env.type == HK_MLS_PROPOSAL) {
        hk_mls_message_t m;
        require(hk_mls_message_parse(env.body, env.body_len, &m, NULL) == 0);
        require(m.u.pub.sender_type == HK_MLS_SENDER_EXTERNAL && m.u.pub.epoch == env.epoch);
        require(hk_mls_ref_hash("MLS 1.0 Proposal Reference", m.u.pub.authenticated_content.p,
                                m.u.pub.authenticated_content.len, refs[n_refs % MAX_REF]) == 0);
        n_refs++;
    } else {
        require(env.type != HK_MLS_KEY_PACKAGE && env.type != HK_MLS_COMMIT &&
                env.type != HK_MLS_INVALID);
    }
}

static int closed[N_IDS];

static void on_close(void *user, const char *conn_id, const char *reason)
{
    (void)user;
    require(reason && strncmp(reason, "MLS-", 4) == 0);
    for (int i = 0; i < N_IDS; i++)
        if (strcmp(ids[i], conn_id) == 0)
            closed[i] = 1;
}

static void load_fixture(void)
{
    FILE *f = fopen("tests/unit/fixtures/mls/key-package.bin", "rb");
    require(f != NULL);
    kp_fixture = malloc(4096);
    kp_len = fread(kp_fixture, 1, 4096, f);
    fclose(f);
    hk_mls_message_t m;
    require(hk_mls_message_parse(kp_fixture, kp_len, &m, NULL) == 0);
    kp_identity_off = (size_t)(m.u.key_package.leaf.identity.p - kp_fixture);
}

static size_t key_package(int who, uint8_t *buf)
{
    hk_mls_env_write_header(buf, HK_MLS_KEY_PACKAGE, 0, (uint32_t)kp_len);
    memcpy(buf + HK_MLS_ENV_HEADER, kp_fixture, kp_len);
    memcpy(buf + HK_MLS_ENV_HEADER + kp_identity_off, ids[who], 26);
    return HK_MLS_ENV_HEADER + kp_len;
}

/* A commit from `leaf` at `epoch` referencing the chosen observed proposals, optionally with
 * a path (path 1: naming the committer; 2: naming another member) and a Welcome for the
 * given members' key packages. */
static size_t commit(uint8_t *buf, int who, uint64_t epoch, uint32_t leaf, uint8_t pick, int path,
                     uint8_t welcome_for)
{
    uint8_t *w = buf + HK_MLS_ENV_HEADER;
    size_t n = 0;
    hk_wr16(w, 1);
    hk_wr16(w + 2, 1);
    n = 4;
    n += hk_mls_write_opaque(w + n, 64, group_id, 16);
    hk_wr32(w + n, (uint32_t)(epoch >> 32));
    hk_wr32(w + n + 4, (uint32_t)epoch);
    n += 8;
    w[n++] = HK_MLS_SENDER_MEMBER;
    hk_wr32(w + n, leaf);
    n += 4;
    w[n++] = 0;
    w[n++] = HK_MLS_CONTENT_COMMIT;
    uint8_t tmp[1024];
    size_t t = 0;
    for (int i = 0; i < MAX_REF && i < n_refs; i++) {
        if (!(pick & (1u << i)))
            continue;
        tmp[t++] = 2;
        t += hk_mls_write_opaque(tmp + t, 64, refs[(n_refs - 1 - i) % MAX_REF], 32);
    }
    n += hk_mls_write_opaque(w + n, 1024, tmp, t);
    w[n++] = path ? 1 : 0;
    if (path) {
        /* LeafNode: encryption_key, signature_key, basic credential naming the
         * committer (or another member, when path is 2), empty capabilities, source
         * commit, parent_hash, extensions, signature; then nodes<V> empty. */
        static const uint8_t head[] = {0x01, 0xaa, 0x01, 0xbb, 0x00, 0x01, 26};
        static const uint8_t tail[] = {0, 0, 0, 0, 0, 0x03, 0x00, 0x00, 0x01, 0xcc, 0x00};
        memcpy(w + n, head, sizeof head);
        n += sizeof head;
        memcpy(w + n, ids[(who + (path == 2)) % N_IDS], 26);
        n += 26;
        memcpy(w + n, tail, sizeof tail);
        n += sizeof tail;
    }
    for (int i = 0; i < 3; i++)
        w[n++] = 0; /* signature, confirmation_tag, membership_tag: empty */
    if (welcome_for) {
        hk_wr16(w + n, 1);
        hk_wr16(w + n + 2, 3);
        hk_wr16(w + n + 4, 1);
        n += 6;
        t = 0;
        for (int i = 0; i < N_IDS; i++) {
            if (!(welcome_for & (1u << i)))
                continue;
            uint8_t kp[2048], ref[32];
            size_t len = key_package(i, kp);
            require(hk_mls_ref_hash("MLS 1.0 KeyPackage Reference", kp + HK_MLS_ENV_HEADER + 4,
                                    len - HK_MLS_ENV_HEADER - 4, ref) == 0);
            t += hk_mls_write_opaque(tmp + t, 64, ref, 32);
            tmp[t++] = 0; /* kem_output<V> */
            tmp[t++] = 0; /* ciphertext<V> */
        }
        n += hk_mls_write_opaque(w + n, 1024, tmp, t);
        w[n++] = 0;
    }
    hk_mls_env_write_header(buf, HK_MLS_COMMIT, epoch, (uint32_t)n);
    return HK_MLS_ENV_HEADER + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kp_fixture)
        load_fixture();
    hk_mls_ds_config_t cfg;
    require(hk_mls_ds_config_default(&cfg) == 0);
    cfg.max_members = 3;
    cfg.commit_timeout_ms = 500;
    cfg.key_package_timeout_ms = 2000;
    hk_mls_ds_callbacks_t cb = {on_send, on_close};
    hk_mls_ds_t *ds = hk_mls_ds_new(&cfg, &cb, NULL);
    require(ds != NULL);
    n_refs = 0;
    memset(group_id, 0, sizeof group_id);
    memset(closed, 0, sizeof closed);
    uint64_t now = 1000, last_epoch = 0, last_resets = 0;
    int last_exists = 0;
    static uint8_t buf[8192];
    size_t i = 0;
    while (i + 2 <= size) {
        uint8_t op = data[i] % 8, arg = data[i + 1];
        int who = arg % N_IDS;
        i += 2;
        size_t n;
        switch (op) {
        case 0:
            hk_mls_ds_join(ds, ids[who], now);
            break;
        case 1:
            hk_mls_ds_leave(ds, ids[who], now);
            break;
        case 2:
            now += (uint64_t)arg * 16;
            hk_mls_ds_tick(ds, now);
            break;
        case 3:
            n = key_package(who, buf);
            hk_mls_ds_receive(ds, ids[who], buf, n, now, NULL);
            break;
        case 4: {
            size_t len = i < size ? data[i++] : 0;
            if (len > size - i)
                len = size - i;
            hk_mls_ds_receive(ds, ids[who], data + i, len, now, NULL);
            i += len;
            break;
        }
        case 5: {
            uint8_t pick = i < size ? data[i++] : 0xff;
            uint8_t welcome_for = i < size ? data[i++] : 0;
            int leaf = hk_mls_ds_leaf_of(ds, ids[who]);
            uint64_t epoch = hk_mls_ds_epoch(ds, NULL) - ((arg >> 2) & 1 ? 1 : 0);
            n = commit(buf, who, epoch, leaf < 0 ? (arg >> 4) : (uint32_t)leaf, pick,
                       (arg >> 3) & 3, welcome_for & 0x0f);
            hk_mls_ds_receive(ds, ids[who], buf, n, now, NULL);
            break;
        }
        case 6:
            hk_mls_env_write_header(buf, HK_MLS_INVALID, 0, 0);
            hk_mls_ds_receive(ds, ids[who], buf, HK_MLS_ENV_HEADER, now, NULL);
            break;
        case 7:
            n = key_package(who, buf);
            if (i < size)
                buf[HK_MLS_ENV_HEADER + data[i++] % kp_len] ^= (uint8_t)(arg | 1);
            hk_mls_ds_receive(ds, ids[who], buf, n, now, NULL);
            break;
        }
        /* Invariants. */
        int leaves[N_IDS];
        for (int a = 0; a < N_IDS; a++) {
            leaves[a] = hk_mls_ds_leaf_of(ds, ids[a]);
            for (int b = 0; b < a; b++)
                require(leaves[a] < 0 || leaves[a] != leaves[b]);
        }
        int exists = 0;
        uint64_t epoch = hk_mls_ds_epoch(ds, &exists);
        uint64_t resets = hk_mls_ds_stats(ds)->resets;
        if (exists && last_exists && resets == last_resets)
            require(epoch >= last_epoch && epoch <= last_epoch + 1);
        last_epoch = epoch;
        last_exists = exists;
        last_resets = resets;
    }
    hk_mls_ds_free(ds);
    return 0;
}

/* MLS delivery service and external sender of one channel (docs/protocol.md §6). */
#include "server/signal/mls_ds.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/bytes.h"
#include "common/error.h"
#include "common/id.h"
#include "server/proto/mls_frame.h"

#define REF_LEN         32 /* SHA-256, suite 1 */
#define GROUP_ID_LEN    16
#define MAX_MEMBERS     256
#define NO_LEAF         UINT32_MAX
#define SIGN_LABEL      "MLS 1.0 FramedContentTBS"
#define PROPOSAL_REF    "MLS 1.0 Proposal Reference"
#define KEY_PACKAGE_REF "MLS 1.0 KeyPackage Reference"
#define ED25519_SIG_LEN 64
#define ED25519_KEY_LEN 32

typedef enum {
    M_FREE = 0,
    M_WAIT_KEY_PACKAGE, /* joined or asked to rejoin; owes a key package */
    M_PROPOSED,         /* its Add is pending (or it was chosen to create the group) */
    M_IN_GROUP,         /* holds a leaf */
} member_state_t;

typedef struct {
    member_state_t state;
    char conn_id[HK_ID_LEN + 1];
    uint32_t leaf;
    uint8_t *key_package; /* the KeyPackage struct, while PROPOSED */
    size_t key_package_len;
    uint8_t key_package_ref[REF_LEN];
    uint64_t wait_since_ms;
    uint64_t joined_ms;
    uint64_t rate_window_ms;
    uint32_t rate_count;
    uint32_t malformed;
    uint32_t strikes;
} member_t;

typedef struct {
    uint8_t ref[REF_LEN];
    uint16_t type; /* HK_MLS_PROPOSAL_ADD or _REMOVE */
    int member;    /* add: the member index */
    uint32_t leaf; /* remove: the leaf */
} pending_t;

struct hk_mls_ds_s {
    hk_mls_ds_config_t cfg;
    char identity[64];
    hk_mls_ds_callbacks_t cb;
    void *user;
    EVP_PKEY *key;
    uint8_t public_key[ED25519_KEY_LEN];

    bool group_exists;
    uint8_t group_id[GROUP_ID_LEN];
    uint64_t epoch;
    int leaf_owner[2 * MAX_MEMBERS]; /* member index, -1 free, -2 owner gone */
    uint32_t n_leaves;               /* leaves in use up to the highest */

    pending_t pending[HK_MLS_MAX_REFS];
    size_t n_pending;
    uint64_t commit_deadline_ms; /* 0: none */

    member_t *members;
    uint8_t *scratch; /* one outgoing envelope */
    size_t scratch_cap;
    hk_mls_ds_stats_t stats;
};

/* ---- crypto ------------------------------------------------------------------------ */

int hk_mls_ds_public_key(const uint8_t seed[32], uint8_t out[32])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    size_t n = 32;
    int ok = k && EVP_PKEY_get_raw_public_key(k, out, &n) == 1 && n == 32;
    EVP_PKEY_free(k);
    return ok ? 0 : HK_EIO;
}

int hk_mls_ref_hash(const char *label, const uint8_t *value, size_t len, uint8_t out[32])
{
    uint8_t head[80];
    size_t n = hk_mls_write_opaque(head, sizeof head, (const uint8_t *)label, strlen(label));
    size_t m = n ? hk_mls_varint_write(head + n, sizeof head - n, (uint32_t)len) : 0;
    unsigned int outlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = n && m && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, head, n + m) == 1 && EVP_DigestUpdate(ctx, value, len) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == REF_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : HK_EIO;
}

/* SignWithLabel(key, "FramedContentTBS", tbs) (§5.1.2): Ed25519 over
 * SignContent{ opaque label<V> = "MLS 1.0 FramedContentTBS"; opaque content<V> = tbs; }. */
static int sign_tbs(hk_mls_ds_t *ds, const uint8_t *tbs, size_t len, uint8_t *content_buf,
                    size_t cap, uint8_t sig[ED25519_SIG_LEN])
{
    size_t n =
        hk_mls_write_opaque(content_buf, cap, (const uint8_t *)SIGN_LABEL, strlen(SIGN_LABEL));
    size_t m = n ? hk_mls_write_opaque(content_buf + n, cap - n, tbs, len) : 0;
    size_t siglen = ED25519_SIG_LEN;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = n && m && ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, ds->key) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, content_buf, n + m) == 1 &&
             siglen == ED25519_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : HK_EIO;
}

/* ---- set-up ------------------------------------------------------------------------ */

int hk_mls_ds_config_default(hk_mls_ds_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->identity = "hisoka";
    cfg->max_members = 64;
    cfg->max_message = 65536;
    cfg->max_key_package = 4096;
    cfg->commit_timeout_ms = 2000;
    cfg->key_package_timeout_ms = 10000;
    cfg->max_messages_per_second = 20;
    cfg->max_malformed = 5;
    cfg->max_strikes = 3;
    return RAND_bytes(cfg->signing_seed, sizeof cfg->signing_seed) == 1 ? 0 : HK_EIO;
}

hk_mls_ds_t *hk_mls_ds_new(const hk_mls_ds_config_t *cfg, const hk_mls_ds_callbacks_t *cb,
                           void *user)
{
    hk_mls_ds_t *ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    ds->cfg = *cfg;
    if (!ds->cfg.identity || !ds->cfg.identity[0])
        ds->cfg.identity = "hisoka";
    if (strlen(ds->cfg.identity) >= sizeof ds->identity)
        goto fail;
    strcpy(ds->identity, ds->cfg.identity);
    ds->cfg.identity = ds->identity;
    if (ds->cfg.max_members == 0 || ds->cfg.max_members > MAX_MEMBERS)
        ds->cfg.max_members = ds->cfg.max_members ? MAX_MEMBERS : 64;
    if (ds->cfg.max_message < 1024 || ds->cfg.max_message > HK_MLS_ENV_HEADER + HK_MLS_ENV_MAX_BODY)
        ds->cfg.max_message = 65536;
    if (ds->cfg.max_key_package == 0 || ds->cfg.max_key_package > ds->cfg.max_message / 2)
        ds->cfg.max_key_package = 4096;
    ds->cb = *cb;
    ds->user = user;
    ds->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, cfg->signing_seed, 32);
    if (!ds->key || hk_mls_ds_public_key(cfg->signing_seed, ds->public_key) != 0)
        goto fail;
    ds->members = calloc(ds->cfg.max_members, sizeof *ds->members);
    ds->scratch_cap = ds->cfg.max_message;
    ds->scratch = malloc(ds->scratch_cap);
    if (!ds->members || !ds->scratch)
        goto fail;
    for (size_t i = 0; i < 2 * MAX_MEMBERS; i++)
        ds->leaf_owner[i] = -1;
    return ds;
fail:
    hk_mls_ds_free(ds);
    return NULL;
}

void hk_mls_ds_free(hk_mls_ds_t *ds)
{
    if (!ds)
        return;
    if (ds->members)
        for (uint32_t i = 0; i < ds->cfg.max_members; i++)
            free(ds->members[i].key_package);
    free(ds->members);
    free(ds->scratch);
    EVP_PKEY_free(ds->key);
    free(ds);
}

/* ---- members ----------------------------------------------------------------------- */

static int find(const hk_mls_ds_t *ds, const char *conn_id)
{
    for (uint32_t i = 0; i < ds->cfg.max_members; i++)
        if (ds->members[i].state != M_FREE && strcmp(ds->members[i].conn_id, conn_id) == 0)
            return (int)i;
    return -1;
}

static void drop_key_package(member_t *m)
{
    free(m->key_package);
    m->key_package = NULL;
    m->key_package_len = 0;
}

static void send_env(hk_mls_ds_t *ds, int member, uint8_t type, uint64_t epoch, const uint8_t *body,
                     size_t len)
{
    if (len + HK_MLS_ENV_HEADER > ds->scratch_cap)
        return; /* bodies are bounded by max_message on the way in */
    hk_mls_env_write_header(ds->scratch, type, epoch, (uint32_t)len);
    if (len && body != ds->scratch + HK_MLS_ENV_HEADER)
        memmove(ds->scratch + HK_MLS_ENV_HEADER, body, len);
    ds->cb.send(ds->user, ds->members[member].conn_id, ds->scratch, len + HK_MLS_ENV_HEADER);
}

/* Sends scratch[0..HK_MLS_ENV_HEADER+len), already written, to every member in the group. */
static void broadcast_scratch(hk_mls_ds_t *ds, size_t len)
{
    for (uint32_t i = 0; i < ds->cfg.max_members; i++)
        if (ds->members[i].state == M_IN_GROUP)
            ds->cb.send(ds->user, ds->members[i].conn_id, ds->scratch, len + HK_MLS_ENV_HEADER);
}

static void close_member(hk_mls_ds_t *ds, int i, const char *reason, uint64_t now_ms);

/* HK_MLS_GROUP body: uint8 action, uint16 cipher_suite, group_id<V>, ExternalSender. */
static void send_group(hk_mls_ds_t *ds, int member, uint8_t action)
{
    uint8_t *b = ds->scratch + HK_MLS_ENV_HEADER;
    size_t cap = ds->scratch_cap - HK_MLS_ENV_HEADER, pos = 0;
    b[pos++] = action;
    hk_wr16(b + pos, HK_MLS_SUITE_1);
    pos += 2;
    pos += hk_mls_write_opaque(b + pos, cap - pos, ds->group_id, GROUP_ID_LEN);
    pos += hk_mls_write_external_sender(b + pos, cap - pos, ds->public_key, ED25519_KEY_LEN,
                                        (const uint8_t *)ds->identity, strlen(ds->identity));
    send_env(ds, member, HK_MLS_GROUP, ds->epoch, b, pos);
}

static uint32_t leftmost_free_leaf(const hk_mls_ds_t *ds)
{
    uint32_t i = 0;
    while (i < ds->n_leaves && ds->leaf_owner[i] != -1)
        i++;
    return i;
}

static void set_leaf(hk_mls_ds_t *ds, uint32_t leaf, int owner)
{
    ds->leaf_owner[leaf] = owner;
    if (owner != -1 && leaf >= ds->n_leaves)
        ds->n_leaves = leaf + 1;
    while (ds->n_leaves > 0 && ds->leaf_owner[ds->n_leaves - 1] == -1)
        ds->n_leaves--;
}

static bool anyone_in_group(const hk_mls_ds_t *ds)
{
    for (uint32_t i = 0; i < ds->cfg.max_members; i++)
        if (ds->members[i].state == M_IN_GROUP)
            return true;
    return false;
}

/* ---- proposals --------------------------------------------------------------------- */

/* Builds, signs and broadcasts one external proposal for the current epoch and records it
 * as pending. body: the KeyPackage struct (add) or the removed leaf (remove). */
static int propose(hk_mls_ds_t *ds, uint16_t type, const uint8_t *body, size_t body_len, int member,
                   uint32_t leaf, uint64_t now_ms)
{
    if (ds->n_pending == HK_MLS_MAX_REFS)
        return HK_ELIMIT;
    uint8_t *msg = ds->scratch + HK_MLS_ENV_HEADER;
    size_t cap = ds->scratch_cap - HK_MLS_ENV_HEADER;
    size_t tbs = hk_mls_write_external_proposal_tbs(msg, cap, ds->group_id, GROUP_ID_LEN, ds->epoch,
                                                    0, type, body, body_len);
    uint8_t sig[ED25519_SIG_LEN];
    /* SignContent is written after the message, where the signature will not reach. */
    if (tbs == 0 || cap - tbs < 2 * tbs + 200 ||
        sign_tbs(ds, msg, tbs, msg + tbs + 100, cap - tbs - 100, sig) != 0)
        return HK_EIO;
    size_t n = hk_mls_write_opaque(msg + tbs, cap - tbs, sig, sizeof sig);
    pending_t *p = &ds->pending[ds->n_pending];
    if (n == 0 || hk_mls_ref_hash(PROPOSAL_REF, msg + 2, tbs + n - 2, p->ref) != 0)
        return HK_EIO;
    p->type = type;
    p->member = member;
    p->leaf = leaf;
    ds->n_pending++;
    hk_mls_env_write_header(ds->scratch, HK_MLS_PROPOSAL, ds->epoch, (uint32_t)(tbs + n));
    broadcast_scratch(ds, tbs + n);
    ds->stats.proposals_sent++;
    if (ds->commit_deadline_ms == 0)
        ds->commit_deadline_ms = now_ms + ds->cfg.commit_timeout_ms;
    return 0;
}

static int propose_add(hk_mls_ds_t *ds, int i, uint64_t now_ms)
{
    member_t *m = &ds->members[i];
    m->state = M_PROPOSED;
    int rc =
        propose(ds, HK_MLS_PROPOSAL_ADD, m->key_package, m->key_package_len, i, NO_LEAF, now_ms);
    if (rc != 0) {
        /* Not proposed (too many pending): the member owes a key package again. */
        drop_key_package(m);
        m->state = M_WAIT_KEY_PACKAGE;
        m->wait_since_ms = now_ms;
    }
    return rc;
}

static int propose_remove(hk_mls_ds_t *ds, uint32_t leaf, uint64_t now_ms)
{
    uint8_t body[4];
    hk_wr32(body, leaf);
    ds->leaf_owner[leaf] = -2;
    return propose(ds, HK_MLS_PROPOSAL_REMOVE, body, 4, -1, leaf, now_ms);
}

/* Withdraws a pending Add (its member left before any commit) and tells the group. */
static void revoke_add(hk_mls_ds_t *ds, int member)
{
    for (size_t k = 0; k < ds->n_pending; k++) {
        if (ds->pending[k].type != HK_MLS_PROPOSAL_ADD || ds->pending[k].member != member)
            continue;
        uint8_t *b = ds->scratch + HK_MLS_ENV_HEADER;
        size_t n = hk_mls_write_opaque(b + 1, 64, ds->pending[k].ref, REF_LEN);
        b[0] = (uint8_t)n; /* refs<V>: one ref, length < 64 */
        hk_mls_env_write_header(ds->scratch, HK_MLS_REVOKE, ds->epoch, (uint32_t)(n + 1));
        broadcast_scratch(ds, n + 1);
        ds->stats.revokes_sent++;
        ds->pending[k] = ds->pending[--ds->n_pending];
        break;
    }
    if (ds->n_pending == 0)
        ds->commit_deadline_ms = 0;
}

/* ---- group lifetime ---------------------------------------------------------------- */

/* A new group: `creator` (which holds an unused key package) is its leaf 0 at epoch 0;
 * every other member with a key package is proposed; members in the group are asked for
 * a new key package. */
static void new_group(hk_mls_ds_t *ds, int creator, uint64_t now_ms)
{
    if (hk_random_bytes(ds->group_id, GROUP_ID_LEN) != 0)
        return;
    ds->group_exists = true;
    ds->epoch = 0;
    ds->n_pending = 0;
    ds->commit_deadline_ms = 0;
    for (size_t i = 0; i < 2 * MAX_MEMBERS; i++)
        ds->leaf_owner[i] = -1;
    ds->n_leaves = 0;
    member_t *c = &ds->members[creator];
    c->state = M_IN_GROUP;
    c->leaf = 0;
    set_leaf(ds, 0, creator);
    send_group(ds, creator, HK_MLS_GROUP_CREATE);
    drop_key_package(c);
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        member_t *m = &ds->members[i];
        if ((int)i == creator || m->state == M_FREE)
            continue;
        if (m->state == M_PROPOSED) {
            send_group(ds, (int)i, HK_MLS_GROUP_JOIN);
            propose_add(ds, (int)i, now_ms);
        } else {
            if (m->state == M_IN_GROUP)
                m->wait_since_ms = now_ms;
            m->state = M_WAIT_KEY_PACKAGE;
            send_group(ds, (int)i, HK_MLS_GROUP_REJOIN);
        }
    }
}

/* Called when nobody in the group can commit any more: a member with an unused key
 * package (fewest strikes, earliest joined) creates a new group; without one, the next
 * key package does. */
static void reset(hk_mls_ds_t *ds, uint64_t now_ms)
{
    int best = -1;
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        member_t *m = &ds->members[i];
        if (m->state != M_PROPOSED)
            continue;
        if (best < 0 || m->strikes < ds->members[best].strikes ||
            (m->strikes == ds->members[best].strikes && m->joined_ms < ds->members[best].joined_ms))
            best = (int)i;
    }
    ds->stats.resets++;
    if (best >= 0) {
        new_group(ds, best, now_ms);
        return;
    }
    ds->group_exists = false;
    ds->n_pending = 0;
    ds->commit_deadline_ms = 0;
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        member_t *m = &ds->members[i];
        if (m->state == M_IN_GROUP) {
            m->state = M_WAIT_KEY_PACKAGE;
            m->wait_since_ms = now_ms;
            send_group(ds, (int)i, HK_MLS_GROUP_REJOIN);
        }
    }
}

/* Takes a member out of the group's future: its pending Add is revoked, or its leaf gets a
 * Remove (or, when nobody else is left to commit, the group is replaced). It ends in
 * state `next` (M_FREE when it left, M_WAIT_KEY_PACKAGE when it must rejoin). */
static void withdraw(hk_mls_ds_t *ds, int i, member_state_t next, uint64_t now_ms)
{
    member_t *m = &ds->members[i];
    member_state_t was = m->state;
    if (was == M_PROPOSED)
        revoke_add(ds, i);
    drop_key_package(m);
    m->state = next;
    if (was == M_IN_GROUP) {
        if (anyone_in_group(ds))
            propose_remove(ds, m->leaf, now_ms);
        else
            reset(ds, now_ms);
    }
    m->leaf = NO_LEAF;
}

static void forget(hk_mls_ds_t *ds, int i, uint64_t now_ms)
{
    withdraw(ds, i, M_FREE, now_ms);
}

static void close_member(hk_mls_ds_t *ds, int i, const char *reason, uint64_t now_ms)
{
    char id[HK_ID_LEN + 1];
    memcpy(id, ds->members[i].conn_id, sizeof id);
    ds->stats.closes++;
    forget(ds, i, now_ms);
    ds->cb.close(ds->user, id, reason);
}

/* ---- public calls ------------------------------------------------------------------ */

int hk_mls_ds_join(hk_mls_ds_t *ds, const char *conn_id, uint64_t now_ms)
{
    if (!conn_id || strlen(conn_id) != HK_ID_LEN || !hk_id_valid(conn_id, HK_ID_LEN))
        return HK_EINVAL;
    if (find(ds, conn_id) >= 0)
        return HK_ESTATE;
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        member_t *m = &ds->members[i];
        if (m->state != M_FREE)
            continue;
        memset(m, 0, sizeof *m);
        m->state = M_WAIT_KEY_PACKAGE;
        memcpy(m->conn_id, conn_id, HK_ID_LEN + 1);
        m->leaf = NO_LEAF;
        m->joined_ms = now_ms;
        m->wait_since_ms = now_ms;
        return 0;
    }
    return HK_ELIMIT;
}

void hk_mls_ds_leave(hk_mls_ds_t *ds, const char *conn_id, uint64_t now_ms)
{
    int i = conn_id ? find(ds, conn_id) : -1;
    if (i >= 0)
        forget(ds, i, now_ms);
}

static int malformed(hk_mls_ds_t *ds, int i, uint64_t now_ms, const char **err, const char *why)
{
    if (err)
        *err = why;
    ds->stats.malformed++;
    if (++ds->members[i].malformed >= ds->cfg.max_malformed)
        close_member(ds, i, "MLS-MALFORMED", now_ms);
    return HK_EINVAL;
}

static void refuse(hk_mls_ds_t *ds, int i, uint8_t reason)
{
    ds->stats.commits_refused++;
    send_env(ds, i, HK_MLS_COMMIT_REFUSED, ds->epoch, &reason, 1);
}

static int on_key_package(hk_mls_ds_t *ds, int i, const hk_mls_env_t *env, uint64_t now_ms,
                          const char **err)
{
    member_t *m = &ds->members[i];
    hk_mls_message_t msg;
    const char *why = NULL;
    if (m->state != M_WAIT_KEY_PACKAGE)
        return malformed(ds, i, now_ms, err, "key package from a member that does not owe one");
    if (hk_mls_message_parse(env->body, env->body_len, &msg, &why) != 0)
        return malformed(ds, i, now_ms, err, why);
    const hk_mls_key_package_t *kp = &msg.u.key_package;
    if (msg.wire_format != HK_MLS_WIRE_KEY_PACKAGE)
        return malformed(ds, i, now_ms, err, "not a KeyPackage");
    if (kp->cipher_suite != HK_MLS_SUITE_1)
        return malformed(ds, i, now_ms, err, "key package cipher suite is not 1");
    if (kp->leaf.credential_type != HK_MLS_CREDENTIAL_BASIC || kp->leaf.identity.len != HK_ID_LEN ||
        memcmp(kp->leaf.identity.p, m->conn_id, HK_ID_LEN))
        return malformed(ds, i, now_ms, err,
                         "key package identity is not the sender's connection_id");
    if (kp->whole.len > ds->cfg.max_key_package)
        return malformed(ds, i, now_ms, err, "key package too large");
    m->key_package = malloc(kp->whole.len);
    if (!m->key_package)
        return HK_ENOMEM;
    memcpy(m->key_package, kp->whole.p, kp->whole.len);
    m->key_package_len = kp->whole.len;
    if (hk_mls_ref_hash(KEY_PACKAGE_REF, kp->whole.p, kp->whole.len, m->key_package_ref) != 0)
        return HK_EIO;
    m->state = M_PROPOSED;
    if (!ds->group_exists || !anyone_in_group(ds)) {
        new_group(ds, i, now_ms);
        return 0;
    }
    send_group(ds, i, HK_MLS_GROUP_JOIN);
    return propose_add(ds, i, now_ms);
}

static bool ref_equal(const hk_mls_span_t *s, const uint8_t ref[REF_LEN])
{
    return s->len == REF_LEN && memcmp(s->p, ref, REF_LEN) == 0;
}

static int on_commit(hk_mls_ds_t *ds, int i, const hk_mls_env_t *env, uint64_t now_ms,
                     const char **err)
{
    member_t *m = &ds->members[i];
    hk_mls_message_t commit, welcome;
    welcome.u.welcome.n_secrets = 0;
    size_t used;
    const char *why = NULL;
    /* A member that was just removed, or a group that was just replaced, can have a
     * commit in flight: refused as stale, not counted as malformed. */
    if (m->state != M_IN_GROUP) {
        refuse(ds, i, HK_MLS_REFUSED_STALE_EPOCH);
        return 0;
    }
    if (hk_mls_message_parse_prefix(env->body, env->body_len, &commit, &used, &why) != 0) {
        refuse(ds, i, HK_MLS_REFUSED_MALFORMED);
        return malformed(ds, i, now_ms, err, why);
    }
    const hk_mls_public_t *c = &commit.u.pub;
    if (commit.wire_format == HK_MLS_WIRE_PUBLIC &&
        (c->group_id.len != GROUP_ID_LEN || memcmp(c->group_id.p, ds->group_id, GROUP_ID_LEN))) {
        refuse(ds, i, HK_MLS_REFUSED_STALE_EPOCH);
        return 0;
    }
    if (commit.wire_format != HK_MLS_WIRE_PUBLIC || c->content_type != HK_MLS_CONTENT_COMMIT ||
        c->sender_type != HK_MLS_SENDER_MEMBER || c->sender_index != m->leaf ||
        c->epoch > ds->epoch || env->epoch != c->epoch) {
        refuse(ds, i, HK_MLS_REFUSED_MALFORMED);
        return malformed(ds, i, now_ms, err,
                         "not a PublicMessage commit of this group from its sender");
    }
    bool has_welcome = used < env->body_len;
    if (has_welcome &&
        (hk_mls_message_parse(env->body + used, env->body_len - used, &welcome, &why) != 0 ||
         welcome.wire_format != HK_MLS_WIRE_WELCOME)) {
        refuse(ds, i, HK_MLS_REFUSED_MALFORMED);
        return malformed(ds, i, now_ms, err,
                         why ? why : "bytes after the commit are not a Welcome");
    }
    if (c->epoch < ds->epoch) {
        refuse(ds, i, HK_MLS_REFUSED_STALE_EPOCH);
        return 0;
    }
    if (ds->n_pending == 0) {
        refuse(ds, i, HK_MLS_REFUSED_NOTHING);
        return 0;
    }
    /* Exactly the pending proposals, by reference, each once, in any order. */
    bool seen[HK_MLS_MAX_REFS] = {false};
    int order[HK_MLS_MAX_REFS];
    bool ok = c->n_inline == 0 && c->n_refs == ds->n_pending;
    size_t n_adds = 0, n_removes = 0;
    for (size_t r = 0; ok && r < c->n_refs; r++) {
        ok = false;
        for (size_t k = 0; k < ds->n_pending; k++) {
            if (!seen[k] && ref_equal(&c->refs[r], ds->pending[k].ref)) {
                seen[k] = true;
                order[r] = (int)k;
                ok = true;
                if (ds->pending[k].type == HK_MLS_PROPOSAL_ADD)
                    n_adds++;
                else
                    n_removes++;
                break;
            }
        }
    }
    if (!ok) {
        refuse(ds, i, HK_MLS_REFUSED_PROPOSALS);
        return 0;
    }
    if (n_removes > 0 && !c->has_path) {
        refuse(ds, i, HK_MLS_REFUSED_MALFORMED);
        return malformed(ds, i, now_ms, err, "a commit with removes has no path");
    }
    /* A path may not rename its committer (DAVE: a commit must not change the committer's
     * credential): the new leaf keeps a basic credential with the sender's connection_id. */
    if (c->has_path && (c->path_leaf.credential_type != HK_MLS_CREDENTIAL_BASIC ||
                        c->path_leaf.identity.len != HK_ID_LEN ||
                        memcmp(c->path_leaf.identity.p, m->conn_id, HK_ID_LEN) != 0)) {
        refuse(ds, i, HK_MLS_REFUSED_MALFORMED);
        return malformed(ds, i, now_ms, err, "a commit path changes the committer's identity");
    }
    /* A Welcome for exactly the joiners' key packages. */
    ok = n_adds == 0 ? !has_welcome
                     : has_welcome && welcome.u.welcome.cipher_suite == HK_MLS_SUITE_1 &&
                           welcome.u.welcome.n_secrets == n_adds;
    bool covered[HK_MLS_MAX_REFS] = {false};
    for (size_t k = 0; ok && k < ds->n_pending; k++) {
        if (ds->pending[k].type != HK_MLS_PROPOSAL_ADD)
            continue;
        const member_t *j = &ds->members[ds->pending[k].member];
        ok = false;
        for (size_t s = 0; s < welcome.u.welcome.n_secrets; s++) {
            if (!covered[s] && ref_equal(&welcome.u.welcome.new_members[s], j->key_package_ref)) {
                covered[s] = ok = true;
                break;
            }
        }
    }
    if (!ok) {
        refuse(ds, i, HK_MLS_REFUSED_WELCOME);
        return 0;
    }

    /* The winner: announce it to the group as it was before the commit. */
    ds->stats.commits_accepted++;
    uint64_t old_epoch = ds->epoch;
    hk_mls_env_write_header(ds->scratch, HK_MLS_ANNOUNCE_COMMIT, old_epoch, (uint32_t)used);
    memmove(ds->scratch + HK_MLS_ENV_HEADER, env->body, used);
    broadcast_scratch(ds, used);
    /* RFC 9420 §12.3: removes first, then adds into the leftmost free leaf, in the order
     * the commit lists them. */
    for (size_t r = 0; r < c->n_refs; r++) {
        const pending_t *p = &ds->pending[order[r]];
        if (p->type == HK_MLS_PROPOSAL_REMOVE)
            set_leaf(ds, p->leaf, -1);
    }
    ds->epoch++;
    for (size_t r = 0; r < c->n_refs; r++) {
        const pending_t *p = &ds->pending[order[r]];
        if (p->type != HK_MLS_PROPOSAL_ADD)
            continue;
        member_t *j = &ds->members[p->member];
        j->leaf = leftmost_free_leaf(ds);
        j->state = M_IN_GROUP;
        set_leaf(ds, j->leaf, p->member);
        drop_key_package(j);
        send_env(ds, p->member, HK_MLS_WELCOME, ds->epoch, env->body + used, env->body_len - used);
        ds->stats.welcomes_sent++;
    }
    ds->n_pending = 0;
    ds->commit_deadline_ms = 0;
    m->strikes = 0;
    return 0;
}

/* The member cannot process what it was sent: it leaves the group and rejoins with a
 * new key package. */
static int on_invalid(hk_mls_ds_t *ds, int i, uint64_t now_ms)
{
    member_t *m = &ds->members[i];
    if (++m->strikes >= ds->cfg.max_strikes) {
        close_member(ds, i, "MLS-INVALID", now_ms);
        return 0;
    }
    m->wait_since_ms = now_ms;
    withdraw(ds, i, M_WAIT_KEY_PACKAGE, now_ms);
    send_group(ds, i, HK_MLS_GROUP_REJOIN);
    return 0;
}

int hk_mls_ds_receive(hk_mls_ds_t *ds, const char *conn_id, const uint8_t *msg, size_t len,
                      uint64_t now_ms, const char **err)
{
    int i = conn_id ? find(ds, conn_id) : -1;
    if (i < 0) {
        if (err)
            *err = "not a member of this channel's MLS group";
        return HK_ENOENT;
    }
    member_t *m = &ds->members[i];
    if (now_ms - m->rate_window_ms >= 1000 || now_ms < m->rate_window_ms) {
        m->rate_window_ms = now_ms;
        m->rate_count = 0;
    }
    if (++m->rate_count > ds->cfg.max_messages_per_second) {
        ds->stats.rate_limited++;
        if (err)
            *err = "MLS messages over max_messages_per_second";
        return HK_ELIMIT;
    }
    hk_mls_env_t env;
    const char *why = NULL;
    if (len > ds->cfg.max_message)
        return malformed(ds, i, now_ms, err, "MLS message larger than max_message");
    if (hk_mls_env_parse(msg, len, &env, &why) != 0)
        return malformed(ds, i, now_ms, err, why);
    switch (env.type) {
    case HK_MLS_KEY_PACKAGE:
        return on_key_package(ds, i, &env, now_ms, err);
    case HK_MLS_COMMIT:
        return on_commit(ds, i, &env, now_ms, err);
    case HK_MLS_INVALID:
        return on_invalid(ds, i, now_ms);
    default:
        return malformed(ds, i, now_ms, err, "MLS envelope type not sent by clients");
    }
}

void hk_mls_ds_tick(hk_mls_ds_t *ds, uint64_t now_ms)
{
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        member_t *m = &ds->members[i];
        if (m->state == M_WAIT_KEY_PACKAGE &&
            now_ms - m->wait_since_ms >= ds->cfg.key_package_timeout_ms)
            close_member(ds, (int)i, "MLS-NO-KEY-PACKAGE", now_ms);
    }
    if (ds->commit_deadline_ms == 0 || now_ms < ds->commit_deadline_ms)
        return;
    /* Nobody in the group committed in time: each member there takes a strike (and is
     * closed at max_strikes); the group is replaced, created by someone who was not in it. */
    ds->commit_deadline_ms = 0;
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        member_t *m = &ds->members[i];
        if (m->state == M_IN_GROUP && ++m->strikes >= ds->cfg.max_strikes) {
            char id[HK_ID_LEN + 1];
            memcpy(id, m->conn_id, sizeof id);
            m->state = M_FREE;
            drop_key_package(m);
            ds->stats.closes++;
            ds->cb.close(ds->user, id, "MLS-UNRESPONSIVE");
        }
    }
    reset(ds, now_ms);
}

uint64_t hk_mls_ds_next_deadline(const hk_mls_ds_t *ds)
{
    uint64_t next = ds->commit_deadline_ms ? ds->commit_deadline_ms : UINT64_MAX;
    for (uint32_t i = 0; i < ds->cfg.max_members; i++) {
        const member_t *m = &ds->members[i];
        if (m->state == M_WAIT_KEY_PACKAGE &&
            m->wait_since_ms + ds->cfg.key_package_timeout_ms < next)
            next = m->wait_since_ms + ds->cfg.key_package_timeout_ms;
    }
    return next;
}

uint64_t hk_mls_ds_epoch(const hk_mls_ds_t *ds, int *exists)
{
    if (exists)
        *exists = ds->group_exists;
    return ds->epoch;
}

int hk_mls_ds_leaf_of(const hk_mls_ds_t *ds, const char *conn_id)
{
    int i = find(ds, conn_id);
    return i >= 0 && ds->members[i].state == M_IN_GROUP ? (int)ds->members[i].leaf : -1;
}

const hk_mls_ds_stats_t *hk_mls_ds_stats(const hk_mls_ds_t *ds)
{
    return &ds->stats;
}

/* The MLS delivery service (server/signal/mls_ds.h), driven in memory with a fake clock.
 * Key packages are ts-mls's (tests/unit/fixtures/mls/key-package.bin) with the identity
 * rewritten per member (the DS does not check key package signatures: members do). Commits
 * and Welcomes are built here: the DS reads only their clear structure. The DS's external
 * proposals are parsed back and their Ed25519 signatures verified with OpenSSL; that
 * ts-mls accepts them is tests/client/mls-ds.test.mjs's job. */
#include <openssl/evp.h>

#include "common/bytes.h"
#include "common/error.h"
#include "server/proto/mls_frame.h"
#include "server/signal/mls_ds.h"
#include "tests/unit/unit.h"

#define MAX_OUT 64

typedef struct {
    char to[27];
    uint8_t *msg;
    size_t len;
} sent_t;

static sent_t out[MAX_OUT];
static int n_out;
static char closed_id[8][27];
static char closed_reason[8][32];
static int n_closed;

static void on_send(void *user, const char *conn_id, const uint8_t *msg, size_t len)
{
    (void)user;
    CHECK(n_out < MAX_OUT);
    snprintf(out[n_out].to, sizeof out[n_out].to, "%s", conn_id);
    out[n_out].msg = malloc(len);
    memcpy(out[n_out].msg, msg, len);
    out[n_out].len = len;
    n_out++;
}

static void on_close(void *user, const char *conn_id, const char *reason)
{
    (void)user;
    CHECK(n_closed < 8);
    snprintf(closed_id[n_closed], 27, "%s", conn_id);
    snprintf(closed_reason[n_closed], 32, "%s", reason);
    n_closed++;
}

static void clear_out(void)
{
    for (int i = 0; i < n_out; i++)
        free(out[i].msg);
    n_out = 0;
}

/* The i-th message sent to `to` with envelope type `type`, or NULL. */
static const sent_t *sent(const char *to, uint8_t type, int nth)
{
    for (int i = 0; i < n_out; i++)
        if (strcmp(out[i].to, to) == 0 && out[i].msg[0] == type && nth-- == 0)
            return &out[i];
    return NULL;
}

static int count_type(uint8_t type)
{
    int n = 0;
    for (int i = 0; i < n_out; i++)
        n += out[i].msg[0] == type;
    return n;
}

static const char A[] = "0000ABCDEFGHJKMNPQRSTVWXYZ";
static const char B[] = "0001ABCDEFGHJKMNPQRSTVWXYZ";
static const char C[] = "0002ABCDEFGHJKMNPQRSTVWXYZ";

static hk_mls_ds_t *new_ds(uint32_t max_members, uint32_t max_malformed)
{
    hk_mls_ds_config_t cfg;
    CHECK_INT_EQ(hk_mls_ds_config_default(&cfg), 0);
    for (int i = 0; i < 32; i++)
        cfg.signing_seed[i] = (uint8_t)(i + 1);
    if (max_members)
        cfg.max_members = max_members;
    if (max_malformed)
        cfg.max_malformed = max_malformed;
    hk_mls_ds_callbacks_t cb = {on_send, on_close};
    hk_mls_ds_t *ds = hk_mls_ds_new(&cfg, &cb, NULL);
    CHECK(ds != NULL);
    n_out = 0;
    n_closed = 0;
    return ds;
}

/* KEY_PACKAGE envelope for conn_id: the fixture with its identity replaced. */
static size_t key_package_env(const char *conn_id, uint8_t *buf, size_t cap)
{
    size_t len;
    uint8_t *kp = (uint8_t *)hk_test_read_file("tests/unit/fixtures/mls/key-package.bin", &len);
    hk_mls_message_t m;
    CHECK_INT_EQ(hk_mls_message_parse(kp, len, &m, NULL), 0);
    size_t off = (size_t)(m.u.key_package.leaf.identity.p - kp);
    memcpy(kp + off, conn_id, 26);
    CHECK(len + HK_MLS_ENV_HEADER <= cap);
    hk_mls_env_write_header(buf, HK_MLS_KEY_PACKAGE, 0, (uint32_t)len);
    memcpy(buf + HK_MLS_ENV_HEADER, kp, len);
    free(kp);
    return len + HK_MLS_ENV_HEADER;
}

static void send_key_package(hk_mls_ds_t *ds, const char *conn_id, uint64_t now)
{
    uint8_t buf[2048];
    size_t n = key_package_env(conn_id, buf, sizeof buf);
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_ds_receive(ds, conn_id, buf, n, now, &err), 0);
}

/* Parses a PROPOSAL envelope, checks its external-sender signature, returns its ref. */
static hk_mls_public_t check_proposal(const sent_t *s, uint8_t ref[32])
{
    hk_mls_env_t env;
    hk_mls_message_t m;
    const char *err = NULL;
    CHECK(s != NULL);
    CHECK_INT_EQ(hk_mls_env_parse(s->msg, s->len, &env, &err), 0);
    CHECK_INT_EQ(hk_mls_message_parse(env.body, env.body_len, &m, &err), 0);
    CHECK_INT_EQ(m.wire_format, HK_MLS_WIRE_PUBLIC);
    CHECK_INT_EQ(m.u.pub.sender_type, HK_MLS_SENDER_EXTERNAL);
    CHECK_INT_EQ(m.u.pub.sender_index, 0);
    CHECK_INT_EQ(m.u.pub.content_type, HK_MLS_CONTENT_PROPOSAL);
    CHECK_INT_EQ(m.u.pub.epoch, env.epoch);
    /* SignWithLabel(., "FramedContentTBS", tbs) with the DS's key (seed 1..32). */
    uint8_t seed[32], pub[32], content[4096];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 1);
    CHECK_INT_EQ(hk_mls_ds_public_key(seed, pub), 0);
    const char *label = "MLS 1.0 FramedContentTBS";
    size_t a = hk_mls_write_opaque(content, sizeof content, (const uint8_t *)label, strlen(label));
    size_t b = hk_mls_write_opaque(content + a, sizeof content - a, m.u.pub.tbs.p, m.u.pub.tbs.len);
    CHECK(a && b);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1);
    CHECK(EVP_DigestVerify(ctx, m.u.pub.signature.p, m.u.pub.signature.len, content, a + b) == 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    CHECK_INT_EQ(hk_mls_ref_hash("MLS 1.0 Proposal Reference", m.u.pub.authenticated_content.p,
                                 m.u.pub.authenticated_content.len, ref),
                 0);
    return m.u.pub;
}

typedef struct {
    uint8_t b[4096];
    size_t n;
} buf_t;

static void put(buf_t *w, const void *p, size_t n)
{
    CHECK(w->n + n <= sizeof w->b);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_u8(buf_t *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_opaque(buf_t *w, const uint8_t *p, size_t n)
{
    w->n += hk_mls_write_opaque(w->b + w->n, sizeof w->b - w->n, p, n);
}

static void put_zeros(buf_t *w, size_t n)
{
    uint8_t z[128] = {0};
    put_opaque(w, z, n);
}

/* A COMMIT envelope: PublicMessage commit from `leaf` at `epoch` referencing refs, with a
 * path whose leaf node names path_identity (none when NULL), followed by a Welcome for the
 * given key package refs. */
static size_t commit_env(const uint8_t group_id[16], uint64_t epoch, uint32_t leaf,
                         const uint8_t (*refs)[32], int n_refs, const char *path_identity,
                         const uint8_t (*welcome_for)[32], int n_welcome, uint8_t *dst)
{
    buf_t w = {.n = 0};
    uint8_t be[8];
    put(&w, "\x00\x01\x00\x01", 4);
    put_opaque(&w, group_id, 16);
    hk_wr32(be, (uint32_t)(epoch >> 32));
    hk_wr32(be + 4, (uint32_t)epoch);
    put(&w, be, 8);
    put_u8(&w, HK_MLS_SENDER_MEMBER);
    hk_wr32(be, leaf);
    put(&w, be, 4);
    put_u8(&w, 0);                      /* authenticated_data */
    put_u8(&w, HK_MLS_CONTENT_COMMIT);  /* content_type */
    put_u8(&w, (uint8_t)(n_refs * 34)); /* proposals<V> (< 64 bytes here) */
    for (int i = 0; i < n_refs; i++) {
        put_u8(&w, 2);
        put_opaque(&w, refs[i], 32);
    }
    put_u8(&w, path_identity ? 1 : 0);
    if (path_identity) {
        put_zeros(&w, 32);      /* encryption_key */
        put_zeros(&w, 32);      /* signature_key */
        put(&w, "\x00\x01", 2); /* basic */
        put_opaque(&w, (const uint8_t *)path_identity, 26);
        for (int i = 0; i < 5; i++)
            put_u8(&w, 0); /* capabilities */
        put_u8(&w, 3);     /* source commit */
        put_zeros(&w, 32); /* parent_hash */
        put_u8(&w, 0);     /* extensions */
        put_zeros(&w, 64); /* signature */
        put_u8(&w, 0);     /* nodes<V> */
    }
    put_zeros(&w, 64); /* signature */
    put_zeros(&w, 32); /* confirmation_tag */
    put_zeros(&w, 32); /* membership_tag */
    if (n_welcome > 0) {
        put(&w, "\x00\x01\x00\x03\x00\x01", 6); /* mls10, welcome, suite 1 */
        put_u8(&w, (uint8_t)(n_welcome * (33 + 2 + 2)));
        for (int i = 0; i < n_welcome; i++) {
            put_opaque(&w, welcome_for[i], 32);
            put_zeros(&w, 1);
            put_zeros(&w, 1);
        }
        put_zeros(&w, 8);
    }
    hk_mls_env_write_header(dst, HK_MLS_COMMIT, epoch, (uint32_t)w.n);
    memcpy(dst + HK_MLS_ENV_HEADER, w.b, w.n);
    return w.n + HK_MLS_ENV_HEADER;
}

static uint8_t refused_reason(const char *to)
{
    const sent_t *s = sent(to, HK_MLS_COMMIT_REFUSED, 0);
    CHECK(s != NULL && s->len == HK_MLS_ENV_HEADER + 1);
    return s->msg[HK_MLS_ENV_HEADER];
}

static void key_package_ref_of(const char *conn_id, uint8_t ref[32])
{
    uint8_t buf[2048];
    size_t n = key_package_env(conn_id, buf, sizeof buf);
    CHECK_INT_EQ(hk_mls_ref_hash("MLS 1.0 KeyPackage Reference", buf + HK_MLS_ENV_HEADER + 4,
                                 n - HK_MLS_ENV_HEADER - 4, ref),
                 0);
}

/* A and B in a group at epoch 1 (A leaf 0, B leaf 1); returns the group id. */
static void two_members(hk_mls_ds_t *ds, uint8_t group_id[16])
{
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, B, 0), 0);
    send_key_package(ds, A, 1);
    const sent_t *g = sent(A, HK_MLS_GROUP, 0);
    CHECK(g != NULL);
    memcpy(group_id, g->msg + HK_MLS_ENV_HEADER + 4, 16);
    send_key_package(ds, B, 2);
    uint8_t ref[1][32], kp[1][32];
    check_proposal(sent(A, HK_MLS_PROPOSAL, 0), ref[0]);
    key_package_ref_of(B, kp[0]);
    uint8_t env[4096];
    size_t n = commit_env(group_id, 0, 0, ref, 1, NULL, kp, 1, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 3, NULL), 0);
    CHECK(sent(A, HK_MLS_ANNOUNCE_COMMIT, 0) != NULL);
    CHECK(sent(B, HK_MLS_WELCOME, 0) != NULL);
    clear_out();
}

TEST(mls_ds_first_member_creates_the_group)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    CHECK_INT_EQ(n_out, 0);
    int exists = 1;
    hk_mls_ds_epoch(ds, &exists);
    CHECK_INT_EQ(exists, 0);
    send_key_package(ds, A, 10);
    CHECK_INT_EQ(n_out, 1);
    const sent_t *g = sent(A, HK_MLS_GROUP, 0);
    CHECK(g != NULL);
    /* body: action 1 | suite 0x0001 | group_id<V> (16) | ExternalSender */
    const uint8_t *b = g->msg + HK_MLS_ENV_HEADER;
    CHECK_INT_EQ(b[0], HK_MLS_GROUP_CREATE);
    CHECK_INT_EQ(hk_rd16(b + 1), 1);
    CHECK_INT_EQ(b[3], 16);
    uint8_t seed[32], pub[32], ext[64];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 1);
    CHECK_INT_EQ(hk_mls_ds_public_key(seed, pub), 0);
    size_t n = hk_mls_write_external_sender(ext, sizeof ext, pub, 32, (const uint8_t *)"hisoka", 6);
    CHECK_INT_EQ(g->len, HK_MLS_ENV_HEADER + 4 + 16 + n);
    CHECK_MEM_EQ(b + 20, ext, n);
    CHECK_INT_EQ(hk_mls_ds_epoch(ds, &exists), 0);
    CHECK_INT_EQ(exists, 1);
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, A), 0);
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_key_package_checks)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    uint8_t buf[2048];
    const char *err = NULL;
    /* B's key package sent by A: the identity is not A's connection_id. */
    size_t n = key_package_env(B, buf, sizeof buf);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, buf, n, 1, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "key package identity is not the sender's connection_id");
    /* Cipher suite 2. */
    n = key_package_env(A, buf, sizeof buf);
    buf[HK_MLS_ENV_HEADER + 7] = 2;
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, buf, n, 1, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "key package cipher suite is not 1");
    /* Truncated inside the MLSMessage (the envelope length still right). */
    n = key_package_env(A, buf, sizeof buf);
    hk_mls_env_write_header(buf, HK_MLS_KEY_PACKAGE, 0, (uint32_t)(n - HK_MLS_ENV_HEADER - 1));
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, buf, n - 1, 1, &err), HK_EINVAL);
    CHECK_INT_EQ(n_out, 0);
    /* A non-member. */
    CHECK_INT_EQ(hk_mls_ds_receive(ds, C, buf, n, 1, &err), HK_ENOENT);
    /* The right one; a second one is not owed. */
    n = key_package_env(A, buf, sizeof buf);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, buf, n, 1, &err), 0);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, buf, n, 1, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "key package from a member that does not owe one");
    CHECK_INT_EQ(n_closed, 0);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, buf, n, 1, &err), HK_EINVAL);
    /* Five malformed messages: closed. */
    CHECK_INT_EQ(n_closed, 1);
    CHECK_STR_EQ(closed_id[0], A);
    CHECK_STR_EQ(closed_reason[0], "MLS-MALFORMED");
    CHECK_INT_EQ(hk_mls_ds_stats(ds)->malformed, 5);
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_add_commit_welcome)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, B, 0), 0);
    send_key_package(ds, A, 1);
    uint8_t group_id[16];
    memcpy(group_id, sent(A, HK_MLS_GROUP, 0)->msg + HK_MLS_ENV_HEADER + 4, 16);
    clear_out();
    send_key_package(ds, B, 2);
    /* B: GROUP(join); A: an external Add of B's key package at epoch 0. */
    CHECK_INT_EQ(sent(B, HK_MLS_GROUP, 0)->msg[HK_MLS_ENV_HEADER], HK_MLS_GROUP_JOIN);
    CHECK(sent(B, HK_MLS_PROPOSAL, 0) == NULL);
    uint8_t ref[1][32], kp[1][32], other[1][32];
    hk_mls_public_t p = check_proposal(sent(A, HK_MLS_PROPOSAL, 0), ref[0]);
    CHECK_INT_EQ(p.epoch, 0);
    CHECK_INT_EQ(p.proposal_type, HK_MLS_PROPOSAL_ADD);
    CHECK_MEM_EQ(p.add.leaf.identity.p, B, 26);
    CHECK_MEM_EQ(p.group_id.p, group_id, 16);
    key_package_ref_of(B, kp[0]);
    key_package_ref_of(C, other[0]);
    clear_out();

    uint8_t env[4096];
    size_t n;
    /* No Welcome: refused, reason WELCOME. */
    n = commit_env(group_id, 0, 0, ref, 1, NULL, kp, 0, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 3, NULL), 0);
    CHECK_INT_EQ(refused_reason(A), HK_MLS_REFUSED_WELCOME);
    clear_out();
    /* A Welcome for someone else: refused. */
    n = commit_env(group_id, 0, 0, ref, 1, NULL, other, 1, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 3, NULL), 0);
    CHECK_INT_EQ(refused_reason(A), HK_MLS_REFUSED_WELCOME);
    clear_out();
    /* Another reference: refused, reason PROPOSALS. */
    n = commit_env(group_id, 0, 0, other, 1, NULL, kp, 1, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 3, NULL), 0);
    CHECK_INT_EQ(refused_reason(A), HK_MLS_REFUSED_PROPOSALS);
    clear_out();
    /* The sender claims leaf 1: malformed. */
    n = commit_env(group_id, 0, 1, ref, 1, NULL, kp, 1, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 3, NULL), HK_EINVAL);
    CHECK_INT_EQ(refused_reason(A), HK_MLS_REFUSED_MALFORMED);
    clear_out();
    /* The right one: announced to A (the group as it was), Welcome to B. */
    n = commit_env(group_id, 0, 0, ref, 1, NULL, kp, 1, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 4, NULL), 0);
    const sent_t *ann = sent(A, HK_MLS_ANNOUNCE_COMMIT, 0);
    CHECK(ann != NULL);
    hk_mls_env_t e;
    CHECK_INT_EQ(hk_mls_env_parse(ann->msg, ann->len, &e, NULL), 0);
    CHECK_INT_EQ(e.epoch, 0);
    hk_mls_message_t m;
    CHECK_INT_EQ(hk_mls_message_parse(e.body, e.body_len, &m, NULL), 0);
    CHECK_INT_EQ(m.u.pub.content_type, HK_MLS_CONTENT_COMMIT);
    const sent_t *wel = sent(B, HK_MLS_WELCOME, 0);
    CHECK(wel != NULL);
    CHECK_INT_EQ(hk_mls_env_parse(wel->msg, wel->len, &e, NULL), 0);
    CHECK_INT_EQ(e.epoch, 1);
    CHECK_INT_EQ(hk_mls_message_parse(e.body, e.body_len, &m, NULL), 0);
    CHECK_INT_EQ(m.wire_format, HK_MLS_WIRE_WELCOME);
    CHECK(sent(B, HK_MLS_ANNOUNCE_COMMIT, 0) == NULL);
    CHECK_INT_EQ(hk_mls_ds_epoch(ds, NULL), 1);
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, B), 1);
    clear_out();
    /* The same commit again (a loser of the race): stale. */
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 5, NULL), 0);
    CHECK_INT_EQ(refused_reason(A), HK_MLS_REFUSED_STALE_EPOCH);
    clear_out();
    /* Nothing pending at epoch 1. */
    n = commit_env(group_id, 1, 1, ref, 1, NULL, kp, 0, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, env, n, 6, NULL), 0);
    CHECK_INT_EQ(refused_reason(B), HK_MLS_REFUSED_NOTHING);
    CHECK_INT_EQ(hk_mls_ds_stats(ds)->commits_accepted, 1);
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_leave_is_a_remove_and_leaves_are_reused)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    uint8_t group_id[16];
    two_members(ds, group_id);
    hk_mls_ds_leave(ds, A, 10);
    uint8_t ref[1][32];
    hk_mls_public_t p = check_proposal(sent(B, HK_MLS_PROPOSAL, 0), ref[0]);
    CHECK_INT_EQ(p.proposal_type, HK_MLS_PROPOSAL_REMOVE);
    CHECK_INT_EQ(p.removed, 0);
    CHECK_INT_EQ(p.epoch, 1);
    clear_out();
    uint8_t env[4096];
    /* A remove needs a path. */
    size_t n = commit_env(group_id, 1, 1, ref, 1, NULL, NULL, 0, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, env, n, 11, NULL), HK_EINVAL);
    CHECK_INT_EQ(refused_reason(B), HK_MLS_REFUSED_MALFORMED);
    clear_out();
    /* A path that renames B as A. */
    n = commit_env(group_id, 1, 1, ref, 1, A, NULL, 0, env);
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, env, n, 11, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "a commit path changes the committer's identity");
    CHECK_INT_EQ(refused_reason(B), HK_MLS_REFUSED_MALFORMED);
    clear_out();
    n = commit_env(group_id, 1, 1, ref, 1, B, NULL, 0, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, env, n, 12, NULL), 0);
    CHECK(sent(B, HK_MLS_ANNOUNCE_COMMIT, 0) != NULL);
    CHECK_INT_EQ(hk_mls_ds_epoch(ds, NULL), 2);
    clear_out();
    /* C takes the leftmost free leaf: 0. */
    CHECK_INT_EQ(hk_mls_ds_join(ds, C, 13), 0);
    send_key_package(ds, C, 14);
    uint8_t kp[1][32];
    check_proposal(sent(B, HK_MLS_PROPOSAL, 0), ref[0]);
    key_package_ref_of(C, kp[0]);
    n = commit_env(group_id, 2, 1, ref, 1, NULL, kp, 1, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, env, n, 15, NULL), 0);
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, C), 0);
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, B), 1);
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_joiner_leaving_before_commit_is_revoked)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    uint8_t group_id[16];
    two_members(ds, group_id);
    CHECK_INT_EQ(hk_mls_ds_join(ds, C, 10), 0);
    send_key_package(ds, C, 11);
    uint8_t ref[32];
    check_proposal(sent(A, HK_MLS_PROPOSAL, 0), ref);
    clear_out();
    hk_mls_ds_leave(ds, C, 12);
    CHECK_INT_EQ(count_type(HK_MLS_REVOKE), 2);
    const sent_t *r = sent(A, HK_MLS_REVOKE, 0);
    /* body: refs<V> = 0x21 | ref<V> = 0x20 + 32 bytes */
    CHECK_INT_EQ(r->len, HK_MLS_ENV_HEADER + 34);
    CHECK_INT_EQ(r->msg[HK_MLS_ENV_HEADER], 33);
    CHECK_INT_EQ(r->msg[HK_MLS_ENV_HEADER + 1], 32);
    CHECK_MEM_EQ(r->msg + HK_MLS_ENV_HEADER + 2, ref, 32);
    CHECK_INT_EQ(hk_mls_ds_next_deadline(ds), UINT64_MAX);
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_commit_deadline_replaces_the_group)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    uint8_t group_id[16];
    two_members(ds, group_id);
    CHECK_INT_EQ(hk_mls_ds_join(ds, C, 100), 0);
    send_key_package(ds, C, 100);
    CHECK_INT_EQ(hk_mls_ds_next_deadline(ds), 2100);
    clear_out();
    hk_mls_ds_tick(ds, 2099);
    CHECK_INT_EQ(n_out, 0);
    /* Neither A nor B committed: C creates a new group; A and B must rejoin. */
    hk_mls_ds_tick(ds, 2100);
    CHECK_INT_EQ(sent(C, HK_MLS_GROUP, 0)->msg[HK_MLS_ENV_HEADER], HK_MLS_GROUP_CREATE);
    CHECK_INT_EQ(sent(A, HK_MLS_GROUP, 0)->msg[HK_MLS_ENV_HEADER], HK_MLS_GROUP_REJOIN);
    CHECK_INT_EQ(sent(B, HK_MLS_GROUP, 0)->msg[HK_MLS_ENV_HEADER], HK_MLS_GROUP_REJOIN);
    CHECK(memcmp(sent(C, HK_MLS_GROUP, 0)->msg + HK_MLS_ENV_HEADER + 4, group_id, 16) != 0);
    CHECK_INT_EQ(hk_mls_ds_epoch(ds, NULL), 0);
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, C), 0);
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, A), -1);
    CHECK_INT_EQ(hk_mls_ds_stats(ds)->resets, 1);
    clear_out();
    /* Commits still in flight for the old group: stale, not malformed. */
    uint8_t env[4096], ref[1][32] = {{0}};
    size_t n = commit_env(group_id, 1, 0, ref, 1, A, NULL, 0, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, env, n, 2101, NULL), 0);
    CHECK_INT_EQ(refused_reason(A), HK_MLS_REFUSED_STALE_EPOCH);
    clear_out();
    n = commit_env(group_id, 0, 0, ref, 1, C, NULL, 0, env);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, C, env, n, 2101, NULL), 0);
    CHECK_INT_EQ(refused_reason(C), HK_MLS_REFUSED_STALE_EPOCH);
    CHECK_INT_EQ(hk_mls_ds_stats(ds)->malformed, 0);
    clear_out();
    /* A and B owe key packages now; after key_package_timeout (10 s) they are closed. */
    CHECK_INT_EQ(hk_mls_ds_next_deadline(ds), 12100);
    hk_mls_ds_tick(ds, 12100);
    CHECK_INT_EQ(n_closed, 2);
    CHECK_STR_EQ(closed_reason[0], "MLS-NO-KEY-PACKAGE");
    CHECK_STR_EQ(closed_reason[1], "MLS-NO-KEY-PACKAGE");
    CHECK_INT_EQ(hk_mls_ds_leaf_of(ds, C), 0);
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_invalid_report_means_remove_and_rejoin)
{
    hk_mls_ds_t *ds = new_ds(0, 0);
    uint8_t group_id[16];
    two_members(ds, group_id);
    uint8_t inv[HK_MLS_ENV_HEADER];
    hk_mls_env_write_header(inv, HK_MLS_INVALID, 1, 0);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, inv, sizeof inv, 10, NULL), 0);
    uint8_t ref[32];
    hk_mls_public_t p = check_proposal(sent(A, HK_MLS_PROPOSAL, 0), ref);
    CHECK_INT_EQ(p.proposal_type, HK_MLS_PROPOSAL_REMOVE);
    CHECK_INT_EQ(p.removed, 1);
    CHECK_INT_EQ(sent(B, HK_MLS_GROUP, 0)->msg[HK_MLS_ENV_HEADER], HK_MLS_GROUP_REJOIN);
    clear_out();
    /* B's new key package: an Add at the same epoch, next to the pending Remove. */
    send_key_package(ds, B, 11);
    hk_mls_public_t add = check_proposal(sent(A, HK_MLS_PROPOSAL, 0), ref);
    CHECK_INT_EQ(add.proposal_type, HK_MLS_PROPOSAL_ADD);
    clear_out();
    /* The third INVALID closes. */
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, inv, sizeof inv, 12, NULL), 0);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, inv, sizeof inv, 13, NULL), 0);
    CHECK_INT_EQ(n_closed, 1);
    CHECK_STR_EQ(closed_reason[0], "MLS-INVALID");
    clear_out();
    hk_mls_ds_free(ds);
}

TEST(mls_ds_limits)
{
    hk_mls_ds_t *ds = new_ds(2, 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), HK_ESTATE);
    CHECK_INT_EQ(hk_mls_ds_join(ds, "0000abcdefghjkmnpqrstvwxyz", 0), HK_EINVAL);
    CHECK_INT_EQ(hk_mls_ds_join(ds, "short", 0), HK_EINVAL);
    CHECK_INT_EQ(hk_mls_ds_join(ds, B, 0), 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, C, 0), HK_ELIMIT);
    /* 20 messages a second, then HK_ELIMIT until the next window. */
    uint8_t inv[HK_MLS_ENV_HEADER];
    hk_mls_env_write_header(inv, HK_MLS_PROPOSAL, 0, 0); /* not a client type */
    const char *err = NULL;
    for (int i = 0; i < 4; i++)
        CHECK_INT_EQ(hk_mls_ds_receive(ds, A, inv, sizeof inv, 1000, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "MLS envelope type not sent by clients");
    for (int i = 0; i < 5; i++)
        CHECK_INT_EQ(hk_mls_ds_receive(ds, B, inv, 3, 1000, &err), HK_EINVAL);
    CHECK_INT_EQ(n_closed, 1); /* B at its fifth malformed message */
    CHECK_STR_EQ(closed_id[0], B);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, B, inv, 3, 1000, &err), HK_ENOENT);
    hk_mls_ds_free(ds);

    ds = new_ds(0, 0);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    uint8_t big[HK_MLS_ENV_HEADER + 70000];
    memset(big, 0, sizeof big);
    hk_mls_env_write_header(big, HK_MLS_COMMIT, 0, 70000);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, big, sizeof big, 1, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "MLS message larger than max_message");
    for (int i = 0; i < 19; i++)
        hk_mls_ds_receive(ds, A, big, 0, 1, &err);
    CHECK_INT_EQ(n_closed, 1);
    hk_mls_ds_free(ds);

    /* Rate: 20 messages in a second window, counted valid or not. */
    ds = new_ds(0, 100);
    CHECK_INT_EQ(hk_mls_ds_join(ds, A, 0), 0);
    for (int i = 0; i < 20; i++)
        CHECK_INT_EQ(hk_mls_ds_receive(ds, A, (const uint8_t *)"\x10", 1, 5000, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_mls_ds_receive(ds, A, inv, sizeof inv, 5999, &err), HK_ELIMIT);
    CHECK_STR_EQ(err, "MLS messages over max_messages_per_second");
    send_key_package(ds, A, 6000);
    CHECK_INT_EQ(hk_mls_ds_stats(ds)->rate_limited, 1);
    clear_out();
    hk_mls_ds_free(ds);
}

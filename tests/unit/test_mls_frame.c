/* MLS wire pieces (server/proto/mls_frame.h): RFC 9420 varints with annotated bytes, the
 * hisoka envelope (annotated -> parse -> write back -> memcmp), and real messages made by
 * ts-mls (tests/unit/fixtures/mls/, written by tools/gen-mls-fixtures.mjs): a key
 * package, an external Add proposal, a commit by reference, a Welcome and a
 * PrivateMessage. hisoka's own writer must reproduce ts-mls's FramedContentTBS byte for
 * byte, and the references computed here must equal the ones ts-mls computed. Every strict
 * prefix of every message is refused with a reason. Parsing happens on exact-size heap
 * copies so that ASan sees any read past the end. */
#include "common/error.h"
#include "server/proto/mls_frame.h"
#include "server/signal/mls_ds.h"
#include "tests/unit/unit.h"

static uint8_t *heap_copy(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    CHECK(c != NULL);
    if (n)
        memcpy(c, p, n);
    return c;
}

static uint8_t *fixture(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "tests/unit/fixtures/mls/%s", name);
    return (uint8_t *)hk_test_read_file(path, len);
}

static void ref_from_file(const char *key, uint8_t out[32])
{
    char *text = hk_test_read_file("tests/unit/fixtures/mls/refs.txt", NULL);
    char *p = strstr(text, key);
    CHECK(p != NULL);
    p += strlen(key) + 1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        CHECK(sscanf(p + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    free(text);
}

static void check_prefixes_refused(const uint8_t *msg, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        uint8_t *c = heap_copy(msg, n);
        hk_mls_message_t m;
        const char *err = NULL;
        CHECK_INT_EQ(hk_mls_message_parse(c, n, &m, &err), HK_EINVAL);
        CHECK(err != NULL && err[0] != '\0');
        free(c);
    }
}

TEST(mls_varint_annotated)
{
    /* RFC 9000 §A.1's examples, within MLS's 30-bit range. */
    static const struct {
        uint8_t bytes[4];
        size_t len;
        uint32_t value;
    } ok[] = {
        {{0x25}, 1, 37},                          /* 00 100101 */
        {{0x7b, 0xbd}, 2, 15293},                 /* 01 111011 10111101 */
        {{0x9d, 0x7f, 0x3e, 0x7d}, 4, 494878333}, /* 10 ... */
        {{0x00}, 1, 0},
        {{0x40, 0x40}, 2, 64},
        {{0x80, 0x00, 0x40, 0x00}, 4, 16384},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint32_t v;
        size_t used;
        uint8_t out[4];
        CHECK_INT_EQ(hk_mls_varint_read(ok[i].bytes, ok[i].len, &v, &used), 0);
        CHECK_INT_EQ(v, ok[i].value);
        CHECK_INT_EQ(used, ok[i].len);
        CHECK_INT_EQ(hk_mls_varint_write(out, sizeof out, v), ok[i].len);
        CHECK_MEM_EQ(out, ok[i].bytes, ok[i].len);
    }
    static const struct {
        uint8_t bytes[4];
        size_t len;
    } bad[] = {
        {{0x40, 0x25}, 2},             /* 37 in two bytes: not minimal */
        {{0x80, 0x00, 0x3f, 0xff}, 4}, /* 16383 in four bytes: not minimal */
        {{0xc0, 0, 0, 0}, 4},          /* prefix 11 */
        {{0x7b}, 1},                   /* truncated */
        {{0}, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t v;
        size_t used;
        CHECK_INT_EQ(hk_mls_varint_read(bad[i].bytes, bad[i].len, &v, &used), HK_EINVAL);
    }
    uint8_t out[4];
    CHECK_INT_EQ(hk_mls_varint_write(out, sizeof out, 1u << 30), 0);
    CHECK_INT_EQ(hk_mls_varint_write(out, 1, 64), 0);
}

TEST(mls_envelope_annotated)
{
    /* clang-format off */
    static const uint8_t msg[] = {
        0x17,                                           /* Type COMMIT_REFUSED */
        0x00,                                           /* Reserved */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, /* Epoch 258 */
        0x00, 0x00, 0x00, 0x01,                         /* BodyLength 1 */
        0x01,                                           /* reason: stale epoch */
    };
    /* clang-format on */
    uint8_t *c = heap_copy(msg, sizeof msg);
    hk_mls_env_t env;
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_env_parse(c, sizeof msg, &env, &err), 0);
    CHECK_INT_EQ(env.type, HK_MLS_COMMIT_REFUSED);
    CHECK_INT_EQ(env.epoch, 258);
    CHECK_INT_EQ(env.body_len, 1);
    CHECK(env.body == c + HK_MLS_ENV_HEADER);
    uint8_t out[sizeof msg];
    hk_mls_env_write_header(out, env.type, env.epoch, (uint32_t)env.body_len);
    out[HK_MLS_ENV_HEADER] = env.body[0];
    CHECK_MEM_EQ(out, msg, sizeof msg);

    /* Refusals, each with a reason. */
    uint8_t bad[sizeof msg];
    for (size_t n = 0; n < HK_MLS_ENV_HEADER; n++) {
        CHECK_INT_EQ(hk_mls_env_parse(c, n, &env, &err), HK_EINVAL);
        CHECK_STR_EQ(err, "MLS envelope shorter than its 14-byte header");
    }
    memcpy(bad, msg, sizeof msg);
    bad[0] = 0x02;
    CHECK_INT_EQ(hk_mls_env_parse(bad, sizeof bad, &env, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "unknown MLS envelope type");
    bad[0] = 0x19;
    CHECK_INT_EQ(hk_mls_env_parse(bad, sizeof bad, &env, &err), HK_EINVAL);
    memcpy(bad, msg, sizeof msg);
    bad[1] = 1;
    CHECK_INT_EQ(hk_mls_env_parse(bad, sizeof bad, &env, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "MLS envelope reserved byte is not 0");
    memcpy(bad, msg, sizeof msg);
    bad[13] = 2; /* BodyLength says 2, one byte follows */
    CHECK_INT_EQ(hk_mls_env_parse(bad, sizeof bad, &env, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "MLS envelope BodyLength is not the rest of the message");
    bad[10] = 0x7f; /* 2 GiB */
    CHECK_INT_EQ(hk_mls_env_parse(bad, sizeof bad, &env, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "MLS envelope body too large");
    free(c);
}

TEST(mls_key_package_from_ts_mls)
{
    size_t len;
    uint8_t *msg = fixture("key-package.bin", &len);
    uint8_t *c = heap_copy(msg, len);
    hk_mls_message_t m;
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_message_parse(c, len, &m, &err), 0);
    CHECK_INT_EQ(m.version, HK_MLS_VERSION_10);
    CHECK_INT_EQ(m.wire_format, HK_MLS_WIRE_KEY_PACKAGE);
    const hk_mls_key_package_t *kp = &m.u.key_package;
    CHECK_INT_EQ(kp->version, 1);
    CHECK_INT_EQ(kp->cipher_suite, HK_MLS_SUITE_1);
    CHECK_INT_EQ(kp->init_key.len, 32); /* X25519 */
    CHECK_INT_EQ(kp->leaf.encryption_key.len, 32);
    CHECK_INT_EQ(kp->leaf.signature_key.len, 32); /* Ed25519 */
    CHECK_INT_EQ(kp->leaf.credential_type, HK_MLS_CREDENTIAL_BASIC);
    CHECK_INT_EQ(kp->leaf.identity.len, 26);
    CHECK_MEM_EQ(kp->leaf.identity.p, "0001ABCDEFGHJKMNPQRSTVWXYZ", 26);
    CHECK_INT_EQ(kp->leaf.source, 1);
    CHECK(kp->whole.p == c + 4 && kp->whole.len == len - 4);
    uint8_t want[32], got[32];
    ref_from_file("key_package", want);
    CHECK_INT_EQ(hk_mls_ref_hash("MLS 1.0 KeyPackage Reference", kp->whole.p, kp->whole.len, got),
                 0);
    CHECK_MEM_EQ(got, want, 32);
    check_prefixes_refused(msg, len);
    free(c);
    free(msg);
}

TEST(mls_external_proposal_from_ts_mls_and_our_writer)
{
    size_t len;
    uint8_t *msg = fixture("external-proposal.bin", &len);
    uint8_t *c = heap_copy(msg, len);
    hk_mls_message_t m;
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_message_parse(c, len, &m, &err), 0);
    CHECK_INT_EQ(m.wire_format, HK_MLS_WIRE_PUBLIC);
    const hk_mls_public_t *p = &m.u.pub;
    CHECK_INT_EQ(p->group_id.len, 16);
    CHECK_MEM_EQ(p->group_id.p, "0123456789abcdef", 16);
    CHECK_INT_EQ(p->epoch, 0);
    CHECK_INT_EQ(p->sender_type, HK_MLS_SENDER_EXTERNAL);
    CHECK_INT_EQ(p->sender_index, 0);
    CHECK_INT_EQ(p->content_type, HK_MLS_CONTENT_PROPOSAL);
    CHECK_INT_EQ(p->proposal_type, HK_MLS_PROPOSAL_ADD);
    CHECK_MEM_EQ(p->add.leaf.identity.p, "0001ABCDEFGHJKMNPQRSTVWXYZ", 26);
    CHECK_INT_EQ(p->signature.len, 64);
    /* No membership tag for an external sender: the signature ends the message. */
    CHECK(p->signature.p + p->signature.len == c + len);
    CHECK(p->authenticated_content.p == c + 2 && p->authenticated_content.len == len - 2);

    /* hisoka's writer gives the same FramedContentTBS as ts-mls. */
    uint8_t tbs[2048];
    size_t n =
        hk_mls_write_external_proposal_tbs(tbs, sizeof tbs, p->group_id.p, p->group_id.len, 0, 0,
                                           HK_MLS_PROPOSAL_ADD, p->add.whole.p, p->add.whole.len);
    CHECK_INT_EQ(n, p->tbs.len);
    CHECK_MEM_EQ(tbs, p->tbs.p, n);
    CHECK_INT_EQ(hk_mls_write_external_proposal_tbs(tbs, n - 1, p->group_id.p, p->group_id.len, 0,
                                                    0, HK_MLS_PROPOSAL_ADD, p->add.whole.p,
                                                    p->add.whole.len),
                 0);
    /* ... and the ProposalRef ts-mls stored. */
    uint8_t want[32], got[32];
    ref_from_file("proposal", want);
    CHECK_INT_EQ(hk_mls_ref_hash("MLS 1.0 Proposal Reference", p->authenticated_content.p,
                                 p->authenticated_content.len, got),
                 0);
    CHECK_MEM_EQ(got, want, 32);
    check_prefixes_refused(msg, len);
    free(c);
    free(msg);
}

TEST(mls_commit_and_welcome_from_ts_mls)
{
    size_t len, wlen;
    uint8_t *msg = fixture("commit.bin", &len);
    uint8_t *wel = fixture("welcome.bin", &wlen);
    uint8_t want[32], kp_ref[32];
    ref_from_file("proposal", want);
    ref_from_file("key_package", kp_ref);

    /* commit followed by welcome, as in a COMMIT envelope's body */
    uint8_t *both = malloc(len + wlen);
    memcpy(both, msg, len);
    memcpy(both + len, wel, wlen);
    hk_mls_message_t m;
    size_t used = 0;
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_message_parse_prefix(both, len + wlen, &m, &used, &err), 0);
    CHECK_INT_EQ(used, len);
    CHECK_INT_EQ(hk_mls_message_parse(both, len + wlen, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "bytes after the MLSMessage");

    uint8_t *c = heap_copy(msg, len);
    CHECK_INT_EQ(hk_mls_message_parse(c, len, &m, &err), 0);
    const hk_mls_public_t *p = &m.u.pub;
    CHECK_INT_EQ(p->content_type, HK_MLS_CONTENT_COMMIT);
    CHECK_INT_EQ(p->sender_type, HK_MLS_SENDER_MEMBER);
    CHECK_INT_EQ(p->sender_index, 0);
    CHECK_INT_EQ(p->epoch, 0);
    CHECK_INT_EQ(p->n_inline, 0);
    CHECK_INT_EQ(p->n_refs, 1);
    CHECK_INT_EQ(p->refs[0].len, 32);
    CHECK_MEM_EQ(p->refs[0].p, want, 32);
    check_prefixes_refused(msg, len);
    free(c);

    c = heap_copy(wel, wlen);
    CHECK_INT_EQ(hk_mls_message_parse(c, wlen, &m, &err), 0);
    CHECK_INT_EQ(m.wire_format, HK_MLS_WIRE_WELCOME);
    CHECK_INT_EQ(m.u.welcome.cipher_suite, HK_MLS_SUITE_1);
    CHECK_INT_EQ(m.u.welcome.n_secrets, 1);
    CHECK_INT_EQ(m.u.welcome.new_members[0].len, 32);
    CHECK_MEM_EQ(m.u.welcome.new_members[0].p, kp_ref, 32);
    check_prefixes_refused(wel, wlen);
    free(c);
    free(both);
    free(msg);
    free(wel);
}

TEST(mls_private_message_header_only)
{
    size_t len;
    uint8_t *msg = fixture("private.bin", &len);
    uint8_t *c = heap_copy(msg, len);
    hk_mls_message_t m;
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_message_parse(c, len, &m, &err), 0);
    CHECK_INT_EQ(m.wire_format, HK_MLS_WIRE_PRIVATE);
    CHECK_INT_EQ(m.u.priv.epoch, 1);
    CHECK_INT_EQ(m.u.priv.content_type, HK_MLS_CONTENT_APPLICATION);
    CHECK_MEM_EQ(m.u.priv.group_id.p, "0123456789abcdef", 16);
    check_prefixes_refused(msg, len);
    free(c);
    free(msg);
}

TEST(mls_message_refusals)
{
    /* clang-format off */
    static const uint8_t group_info[] = {0x00, 0x01, 0x00, 0x04, 0x00};
    static const uint8_t version2[] = {0x00, 0x02, 0x00, 0x01};
    static const uint8_t wire9[] = {0x00, 0x01, 0x00, 0x09};
    static const uint8_t sender9[] = {
        0x00, 0x01, 0x00, 0x01,     /* mls10, public */
        0x01, 0xaa,                 /* group_id<V> */
        0, 0, 0, 0, 0, 0, 0, 0,     /* epoch */
        0x09,                       /* sender type 9 */
    };
    static const uint8_t path2[] = {
        0x00, 0x01, 0x00, 0x01, 0x01, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0,
        0x01, 0, 0, 0, 0,           /* member 0 */
        0x00,                       /* authenticated_data */
        0x03,                       /* commit */
        0x00,                       /* proposals<V>: none */
        0x02,                       /* optional<UpdatePath>: 2 */
    };
    static const uint8_t bad_ref_type[] = {
        0x00, 0x01, 0x00, 0x01, 0x01, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0,
        0x01, 0, 0, 0, 0, 0x00, 0x03,
        0x02, 0x03, 0x00,           /* proposals<V>: ProposalOrRef type 3 */
    };
    /* clang-format on */
    hk_mls_message_t m;
    const char *err = NULL;
    CHECK_INT_EQ(hk_mls_message_parse(group_info, sizeof group_info, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "GroupInfo is not read by the delivery service");
    CHECK_INT_EQ(hk_mls_message_parse(version2, sizeof version2, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "MLSMessage version is not mls10");
    CHECK_INT_EQ(hk_mls_message_parse(wire9, sizeof wire9, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "unknown wire format");
    CHECK_INT_EQ(hk_mls_message_parse(sender9, sizeof sender9, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "unknown sender type");
    CHECK_INT_EQ(hk_mls_message_parse(path2, sizeof path2, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "Commit optional path is neither 0 nor 1");
    CHECK_INT_EQ(hk_mls_message_parse(bad_ref_type, sizeof bad_ref_type, &m, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "unknown ProposalOrRef type");
}

TEST(mls_external_sender_writer)
{
    uint8_t key[32], out[64];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    size_t n = hk_mls_write_external_sender(out, sizeof out, key, 32, (const uint8_t *)"hisoka", 6);
    /* signature_key<V> (0x20 + 32) | credential_type 1 | identity<V> (0x06 "hisoka") */
    CHECK_INT_EQ(n, 1 + 32 + 2 + 1 + 6);
    CHECK_INT_EQ(out[0], 0x20);
    CHECK_MEM_EQ(out + 1, key, 32);
    CHECK_INT_EQ(out[33], 0x00);
    CHECK_INT_EQ(out[34], 0x01);
    CHECK_INT_EQ(out[35], 0x06);
    CHECK_MEM_EQ(out + 36, "hisoka", 6);
    CHECK_INT_EQ(hk_mls_write_external_sender(out, 40, key, 32, (const uint8_t *)"hisoka", 6), 0);
}

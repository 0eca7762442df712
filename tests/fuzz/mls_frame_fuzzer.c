/* libFuzzer target `mls_frame`: feeds the input to the hisoka MLS envelope parser and to
 * the RFC 9420 MLSMessage parser (the whole input, and an accepted envelope's body, which
 * for COMMIT is a commit optionally followed by a Welcome). Accepted messages must keep
 * every span inside the input, re-parse to the same length, and an external proposal
 * must be byte-identical to one written back by hisoka's writer from the parsed fields.
 * Refusals must give a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/mls_frame.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

static const uint8_t *lo, *hi;

static void inside(hk_mls_span_t s)
{
    require(s.len == 0 || (s.p >= lo && s.p + s.len <= hi));
}

static void check_key_package(const hk_mls_key_package_t *kp)
{
    inside(kp->whole);
    inside(kp->init_key);
    inside(kp->leaf.encryption_key);
    inside(kp->leaf.signature_key);
    inside(kp->leaf.identity);
    require(kp->version == HK_MLS_VERSION_10 && kp->leaf.source == 1);
}

static void parse_messages(const uint8_t *data, size_t size)
{
    hk_mls_message_t m;
    size_t used = 0;
    const char *err = NULL;
    int rc = hk_mls_message_parse_prefix(data, size, &m, &used, &err);
    if (rc != 0) {
        require(rc == HK_EINVAL && err != NULL && err[0] != '\0');
        return;
    }
    require(used >= 4 && used <= size);
    hk_mls_message_t again;
    require(hk_mls_message_parse(data, used, &again, NULL) == 0);
    switch (m.wire_format) {
    case HK_MLS_WIRE_PUBLIC: {
        const hk_mls_public_t *p = &m.u.pub;
        inside(p->group_id);
        inside(p->signature);
        require(p->tbs.p == data && p->tbs.len <= used);
        require(p->authenticated_content.p == data + 2);
        require(p->authenticated_content.len + 2 <= used);
        for (size_t i = 0; i < p->n_refs; i++)
            inside(p->refs[i]);
        if (p->content_type == HK_MLS_CONTENT_PROPOSAL && p->proposal_type == HK_MLS_PROPOSAL_ADD)
            check_key_package(&p->add);
        if (p->sender_type == HK_MLS_SENDER_EXTERNAL &&
            p->content_type == HK_MLS_CONTENT_PROPOSAL &&
            (p->proposal_type == HK_MLS_PROPOSAL_ADD ||
             p->proposal_type == HK_MLS_PROPOSAL_REMOVE) &&
            data[(size_t)(p->group_id.p - data) + p->group_id.len + 13] == 0) {
            uint8_t body[4];
            const uint8_t *b = body;
            size_t blen = 4;
            if (p->proposal_type == HK_MLS_PROPOSAL_ADD) {
                b = p->add.whole.p;
                blen = p->add.whole.len;
            } else {
                body[0] = (uint8_t)(p->removed >> 24);
                body[1] = (uint8_t)(p->removed >> 16);
                body[2] = (uint8_t)(p->removed >> 8);
                body[3] = (uint8_t)p->removed;
            }
            uint8_t *out = malloc(p->tbs.len + 1);
            require(out != NULL);
            size_t n = hk_mls_write_external_proposal_tbs(
                out, p->tbs.len + 1, p->group_id.p, p->group_id.len, p->epoch, p->sender_index,
                p->proposal_type, b, blen);
            /* The writer always writes an empty authenticated_data (the byte tested
             * above); varints are minimal on both sides, so the bytes must be equal. */
            require(n == p->tbs.len && memcmp(out, p->tbs.p, n) == 0);
            free(out);
        }
        break;
    }
    case HK_MLS_WIRE_PRIVATE:
        inside(m.u.priv.group_id);
        break;
    case HK_MLS_WIRE_WELCOME:
        require(m.u.welcome.n_secrets <= HK_MLS_MAX_REFS);
        for (size_t i = 0; i < m.u.welcome.n_secrets; i++)
            inside(m.u.welcome.new_members[i]);
        break;
    case HK_MLS_WIRE_KEY_PACKAGE:
        check_key_package(&m.u.key_package);
        require(m.u.key_package.whole.p == data + 4 && m.u.key_package.whole.len == used - 4);
        break;
    default:
        abort();
    }
    if (used < size)
        parse_messages(data + used, size - used);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lo = data;
    hi = data + size;
    hk_mls_env_t env;
    const char *err = NULL;
    int rc = hk_mls_env_parse(data, size, &env, &err);
    if (rc == 0) {
        require(env.type >= HK_MLS_ENV_TYPE_MIN && env.type <= HK_MLS_ENV_TYPE_MAX);
        require(env.body == data + HK_MLS_ENV_HEADER && env.body_len == size - HK_MLS_ENV_HEADER);
        uint8_t head[HK_MLS_ENV_HEADER];
        hk_mls_env_write_header(head, env.type, env.epoch, (uint32_t)env.body_len);
        require(memcmp(head, data, HK_MLS_ENV_HEADER) == 0);
        parse_messages(env.body, env.body_len);
    } else {
        require(rc == HK_EINVAL && err != NULL && err[0] != '\0');
        parse_messages(data, size);
    }
    return 0;
}

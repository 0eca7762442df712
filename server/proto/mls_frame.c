/* MLS wire pieces for the delivery service (RFC 9420) and hisoka's MLS envelope. */
#include "server/proto/mls_frame.h"

#include <string.h>

#include "common/bytes.h"
#include "common/error.h"

/* ---- hisoka envelope -------------------------------------------------------------- */

int hk_mls_env_parse(const uint8_t *buf, size_t len, hk_mls_env_t *out, const char **err)
{
    if (len < HK_MLS_ENV_HEADER)
        return hk_fail(err, "MLS envelope shorter than its 14-byte header");
    if (buf[0] < HK_MLS_ENV_TYPE_MIN || buf[0] > HK_MLS_ENV_TYPE_MAX)
        return hk_fail(err, "unknown MLS envelope type");
    if (buf[1] != 0)
        return hk_fail(err, "MLS envelope reserved byte is not 0");
    uint32_t body_len = hk_rd32(buf + 10);
    if (body_len > HK_MLS_ENV_MAX_BODY)
        return hk_fail(err, "MLS envelope body too large");
    if ((size_t)body_len != len - HK_MLS_ENV_HEADER)
        return hk_fail(err, "MLS envelope BodyLength is not the rest of the message");
    out->type = buf[0];
    out->epoch = ((uint64_t)hk_rd32(buf + 2) << 32) | hk_rd32(buf + 6);
    out->body = buf + HK_MLS_ENV_HEADER;
    out->body_len = body_len;
    return 0;
}

void hk_mls_env_write_header(uint8_t *buf, uint8_t type, uint64_t epoch, uint32_t body_len)
{
    buf[0] = type;
    buf[1] = 0;
    hk_wr32(buf + 2, (uint32_t)(epoch >> 32));
    hk_wr32(buf + 6, (uint32_t)epoch);
    hk_wr32(buf + 10, body_len);
}

/* ---- RFC 9420 §2.1.2 varint ----------------------------------------------------------
 *
 *   prefix 00: 1 byte, 6-bit value   01: 2 bytes, 14-bit   10: 4 bytes, 30-bit   11: invalid
 */

int hk_mls_varint_read(const uint8_t *p, size_t len, uint32_t *value, size_t *used)
{
    if (len < 1)
        return HK_EINVAL;
    unsigned prefix = p[0] >> 6;
    size_t n = prefix == 0 ? 1 : prefix == 1 ? 2 : prefix == 2 ? 4 : 0;
    if (n == 0 || len < n)
        return HK_EINVAL;
    uint32_t v = p[0] & 0x3f;
    for (size_t i = 1; i < n; i++)
        v = (v << 8) | p[i];
    if ((n == 2 && v < 64) || (n == 4 && v < 16384))
        return HK_EINVAL;
    *value = v;
    *used = n;
    return 0;
}

size_t hk_mls_varint_write(uint8_t *p, size_t cap, uint32_t value)
{
    if (value < 64) {
        if (cap < 1)
            return 0;
        p[0] = (uint8_t)value;
        return 1;
    }
    if (value < 16384) {
        if (cap < 2)
            return 0;
        hk_wr16(p, (uint16_t)(value | 0x4000));
        return 2;
    }
    if (value < (1u << 30)) {
        if (cap < 4)
            return 0;
        hk_wr32(p, value | 0x80000000u);
        return 4;
    }
    return 0;
}

/* ---- reader ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
    const char *err; /* first failure */
} reader_t;

static int fail(reader_t *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return HK_EINVAL;
}

static int u8(reader_t *r, uint8_t *v, const char *what)
{
    if (r->len - r->pos < 1)
        return fail(r, what);
    *v = r->p[r->pos++];
    return 0;
}

static int u16(reader_t *r, uint16_t *v, const char *what)
{
    if (r->len - r->pos < 2)
        return fail(r, what);
    *v = hk_rd16(r->p + r->pos);
    r->pos += 2;
    return 0;
}

static int u32(reader_t *r, uint32_t *v, const char *what)
{
    if (r->len - r->pos < 4)
        return fail(r, what);
    *v = hk_rd32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int u64(reader_t *r, uint64_t *v, const char *what)
{
    if (r->len - r->pos < 8)
        return fail(r, what);
    *v = ((uint64_t)hk_rd32(r->p + r->pos) << 32) | hk_rd32(r->p + r->pos + 4);
    r->pos += 8;
    return 0;
}

/* opaque data<V>: a varint length, then that many bytes. */
static int opaque(reader_t *r, hk_mls_span_t *out, const char *what)
{
    uint32_t n;
    size_t used;
    if (hk_mls_varint_read(r->p + r->pos, r->len - r->pos, &n, &used) != 0)
        return fail(r, what);
    if (r->len - r->pos - used < n)
        return fail(r, what);
    if (out) {
        out->p = r->p + r->pos + used;
        out->len = n;
    }
    r->pos += used + n;
    return 0;
}

static int skip(reader_t *r, const char *what)
{
    return opaque(r, NULL, what);
}

/* A sub-reader over a vector's contents. */
static int vector(reader_t *r, reader_t *sub, const char *what)
{
    hk_mls_span_t s;
    if (opaque(r, &s, what) != 0)
        return HK_EINVAL;
    sub->p = s.p;
    sub->len = s.len;
    sub->pos = 0;
    sub->err = NULL;
    return 0;
}

/* ---- structures --------------------------------------------------------------------
 *
 * struct {
 *     HPKEPublicKey encryption_key;            opaque<V>
 *     SignaturePublicKey signature_key;        opaque<V>
 *     Credential credential;                   uint16 type; basic: identity<V>;
 *                                              x509: Certificate certificates<V>
 *     Capabilities capabilities;               five vectors<V>
 *     LeafNodeSource leaf_node_source;         uint8
 *     select (leaf_node_source) {
 *         case key_package: Lifetime lifetime; uint64 not_before; uint64 not_after
 *         case update:      struct{};
 *         case commit:      opaque parent_hash<V>;
 *     };
 *     Extension extensions<V>;
 *     opaque signature<V>;
 * } LeafNode;
 */
static int leaf_node(reader_t *r, hk_mls_leaf_t *out)
{
    if (opaque(r, &out->encryption_key, "LeafNode encryption_key truncated") ||
        opaque(r, &out->signature_key, "LeafNode signature_key truncated") ||
        u16(r, &out->credential_type, "LeafNode credential truncated"))
        return HK_EINVAL;
    out->identity.p = NULL;
    out->identity.len = 0;
    if (out->credential_type == HK_MLS_CREDENTIAL_BASIC) {
        if (opaque(r, &out->identity, "basic credential identity truncated"))
            return HK_EINVAL;
    } else if (out->credential_type == HK_MLS_CREDENTIAL_X509) {
        if (skip(r, "x509 credential truncated"))
            return HK_EINVAL;
    } else {
        return fail(r, "unknown credential type");
    }
    for (int i = 0; i < 5; i++)
        if (skip(r, "LeafNode capabilities truncated"))
            return HK_EINVAL;
    if (u8(r, &out->source, "LeafNode source truncated"))
        return HK_EINVAL;
    uint64_t t;
    switch (out->source) {
    case 1:
        if (u64(r, &t, "LeafNode lifetime truncated") || u64(r, &t, "LeafNode lifetime truncated"))
            return HK_EINVAL;
        break;
    case 2:
        break;
    case 3:
        if (skip(r, "LeafNode parent_hash truncated"))
            return HK_EINVAL;
        break;
    default:
        return fail(r, "unknown LeafNode source");
    }
    if (skip(r, "LeafNode extensions truncated") || skip(r, "LeafNode signature truncated"))
        return HK_EINVAL;
    return 0;
}

/* struct {
 *     ProtocolVersion version; CipherSuite cipher_suite; HPKEPublicKey init_key;
 *     LeafNode leaf_node; Extension extensions<V>; opaque signature<V>;
 * } KeyPackage;
 */
static int key_package(reader_t *r, hk_mls_key_package_t *out)
{
    size_t start = r->pos;
    if (u16(r, &out->version, "KeyPackage truncated") ||
        u16(r, &out->cipher_suite, "KeyPackage truncated") ||
        opaque(r, &out->init_key, "KeyPackage init_key truncated") || leaf_node(r, &out->leaf) ||
        skip(r, "KeyPackage extensions truncated") || skip(r, "KeyPackage signature truncated"))
        return HK_EINVAL;
    if (out->version != HK_MLS_VERSION_10)
        return fail(r, "KeyPackage version is not mls10");
    if (out->leaf.source != 1)
        return fail(r, "KeyPackage leaf node source is not key_package");
    out->whole.p = r->p + start;
    out->whole.len = r->pos - start;
    return 0;
}

/* PreSharedKeyID (§8.4): uint8 psktype; external: psk_id<V>; resumption: uint8 usage,
 * group_id<V>, uint64 epoch; then psk_nonce<V>. */
static int psk_id(reader_t *r)
{
    uint8_t type, usage;
    uint64_t epoch;
    if (u8(r, &type, "PreSharedKeyID truncated"))
        return HK_EINVAL;
    if (type == 1) {
        if (skip(r, "PreSharedKeyID psk_id truncated"))
            return HK_EINVAL;
    } else if (type == 2) {
        if (u8(r, &usage, "PreSharedKeyID truncated") || skip(r, "PreSharedKeyID truncated") ||
            u64(r, &epoch, "PreSharedKeyID truncated"))
            return HK_EINVAL;
    } else {
        return fail(r, "unknown PreSharedKeyID type");
    }
    return skip(r, "PreSharedKeyID psk_nonce truncated");
}

/* Proposal (§12.1): uint16 proposal_type, then its body. */
static int proposal(reader_t *r, uint16_t *type, uint32_t *removed, hk_mls_key_package_t *add)
{
    hk_mls_key_package_t kp_scratch;
    hk_mls_leaf_t leaf;
    uint16_t v16;
    uint32_t v32;
    if (u16(r, type, "Proposal truncated"))
        return HK_EINVAL;
    switch (*type) {
    case HK_MLS_PROPOSAL_ADD:
        return key_package(r, add ? add : &kp_scratch);
    case HK_MLS_PROPOSAL_UPDATE:
        return leaf_node(r, &leaf);
    case HK_MLS_PROPOSAL_REMOVE:
        return u32(r, removed ? removed : &v32, "Remove truncated");
    case HK_MLS_PROPOSAL_PSK:
        return psk_id(r);
    case HK_MLS_PROPOSAL_REINIT:
        if (skip(r, "ReInit truncated") || u16(r, &v16, "ReInit truncated") ||
            u16(r, &v16, "ReInit truncated") || skip(r, "ReInit truncated"))
            return HK_EINVAL;
        return 0;
    case HK_MLS_PROPOSAL_EXTERNAL_INIT:
        return skip(r, "ExternalInit truncated");
    case HK_MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS:
        return skip(r, "GroupContextExtensions truncated");
    default:
        return fail(r, "unknown proposal type");
    }
}

/* struct { ProposalOrRef proposals<V>; optional<UpdatePath> path; } Commit;
 * ProposalOrRef: uint8 type; 1 proposal: Proposal; 2 reference: ProposalRef (opaque<V>).
 * UpdatePath: LeafNode leaf_node; UpdatePathNode nodes<V>. */
static int commit(reader_t *r, hk_mls_public_t *out)
{
    reader_t list;
    if (vector(r, &list, "Commit proposals truncated"))
        return HK_EINVAL;
    out->n_refs = 0;
    out->n_inline = 0;
    while (list.pos < list.len) {
        uint8_t type;
        uint16_t ptype;
        u8(&list, &type, "ProposalOrRef truncated");
        if (type == 2) {
            if (out->n_refs == HK_MLS_MAX_REFS)
                return fail(r, "Commit has too many proposal references");
            if (opaque(&list, &out->refs[out->n_refs], "ProposalRef truncated"))
                return fail(r, list.err);
            out->n_refs++;
        } else if (type == 1) {
            if (proposal(&list, &ptype, NULL, NULL))
                return fail(r, list.err);
            out->n_inline++;
        } else {
            return fail(r, "unknown ProposalOrRef type");
        }
    }
    uint8_t present;
    if (u8(r, &present, "Commit path truncated"))
        return HK_EINVAL;
    if (present > 1)
        return fail(r, "Commit optional path is neither 0 nor 1");
    out->has_path = present == 1;
    if (out->has_path) {
        hk_mls_leaf_t *leaf = &out->path_leaf;
        if (leaf_node(r, leaf) || skip(r, "UpdatePath nodes truncated"))
            return HK_EINVAL;
        if (leaf->source != 3)
            return fail(r, "UpdatePath leaf node source is not commit");
    }
    return 0;
}

/* struct {
 *     FramedContent content;        group_id<V>, uint64 epoch, Sender sender,
 *                                   authenticated_data<V>, uint8 content_type, body
 *     FramedContentAuthData auth;   signature<V>; commit: confirmation_tag<V>
 *     select (sender_type) { case member: MAC membership_tag<V>; default: struct{}; };
 * } PublicMessage;
 * Sender: uint8 sender_type; member: uint32 leaf_index; external: uint32 sender_index.
 */
static int public_message(reader_t *r, size_t msg_start, hk_mls_public_t *out)
{
    if (opaque(r, &out->group_id, "FramedContent group_id truncated") ||
        u64(r, &out->epoch, "FramedContent epoch truncated") ||
        u8(r, &out->sender_type, "FramedContent sender truncated"))
        return HK_EINVAL;
    out->sender_index = 0;
    switch (out->sender_type) {
    case HK_MLS_SENDER_MEMBER:
    case HK_MLS_SENDER_EXTERNAL:
        if (u32(r, &out->sender_index, "FramedContent sender truncated"))
            return HK_EINVAL;
        break;
    case HK_MLS_SENDER_NEW_MEMBER_PROPOSAL:
    case HK_MLS_SENDER_NEW_MEMBER_COMMIT:
        break;
    default:
        return fail(r, "unknown sender type");
    }
    if (skip(r, "FramedContent authenticated_data truncated") ||
        u8(r, &out->content_type, "FramedContent content_type truncated"))
        return HK_EINVAL;
    out->proposal_type = 0;
    out->n_refs = 0;
    out->n_inline = 0;
    out->has_path = false;
    switch (out->content_type) {
    case HK_MLS_CONTENT_APPLICATION:
        if (skip(r, "application_data truncated"))
            return HK_EINVAL;
        break;
    case HK_MLS_CONTENT_PROPOSAL:
        if (proposal(r, &out->proposal_type, &out->removed, &out->add))
            return HK_EINVAL;
        break;
    case HK_MLS_CONTENT_COMMIT:
        if (commit(r, out))
            return HK_EINVAL;
        break;
    default:
        return fail(r, "unknown content type");
    }
    out->tbs.p = r->p + msg_start;
    out->tbs.len = r->pos - msg_start;
    if (opaque(r, &out->signature, "FramedContentAuthData signature truncated"))
        return HK_EINVAL;
    if (out->content_type == HK_MLS_CONTENT_COMMIT &&
        skip(r, "FramedContentAuthData confirmation_tag truncated"))
        return HK_EINVAL;
    out->authenticated_content.p = r->p + msg_start + 2;
    out->authenticated_content.len = r->pos - msg_start - 2;
    if (out->sender_type == HK_MLS_SENDER_MEMBER && skip(r, "membership_tag truncated"))
        return HK_EINVAL;
    return 0;
}

/* struct { group_id<V>; uint64 epoch; uint8 content_type; authenticated_data<V>;
 *          encrypted_sender_data<V>; ciphertext<V>; } PrivateMessage; */
static int private_message(reader_t *r, hk_mls_private_t *out)
{
    if (opaque(r, &out->group_id, "PrivateMessage group_id truncated") ||
        u64(r, &out->epoch, "PrivateMessage epoch truncated") ||
        u8(r, &out->content_type, "PrivateMessage content_type truncated") ||
        skip(r, "PrivateMessage authenticated_data truncated") ||
        skip(r, "PrivateMessage encrypted_sender_data truncated") ||
        skip(r, "PrivateMessage ciphertext truncated"))
        return HK_EINVAL;
    if (out->content_type < HK_MLS_CONTENT_APPLICATION || out->content_type > HK_MLS_CONTENT_COMMIT)
        return fail(r, "unknown content type");
    return 0;
}

/* struct { CipherSuite cipher_suite; EncryptedGroupSecrets secrets<V>;
 *          opaque encrypted_group_info<V>; } Welcome;
 * EncryptedGroupSecrets: KeyPackageRef new_member<V>; HPKECiphertext (kem_output<V>,
 * ciphertext<V>). */
static int welcome(reader_t *r, hk_mls_welcome_t *out)
{
    reader_t list;
    if (u16(r, &out->cipher_suite, "Welcome truncated") ||
        vector(r, &list, "Welcome secrets truncated"))
        return HK_EINVAL;
    out->n_secrets = 0;
    while (list.pos < list.len) {
        if (out->n_secrets == HK_MLS_MAX_REFS)
            return fail(r, "Welcome has too many new members");
        if (opaque(&list, &out->new_members[out->n_secrets], "EncryptedGroupSecrets truncated") ||
            skip(&list, "EncryptedGroupSecrets truncated") ||
            skip(&list, "EncryptedGroupSecrets truncated"))
            return fail(r, list.err);
        out->n_secrets++;
    }
    return skip(r, "Welcome encrypted_group_info truncated");
}

/* struct { ProtocolVersion version = mls10; WireFormat wire_format; select ... } MLSMessage; */
int hk_mls_message_parse_prefix(const uint8_t *buf, size_t len, hk_mls_message_t *out, size_t *used,
                                const char **err)
{
    reader_t r = {buf, len, 0, NULL};
    int rc = HK_EINVAL;
    if (u16(&r, &out->version, "MLSMessage truncated") ||
        u16(&r, &out->wire_format, "MLSMessage truncated"))
        goto done;
    if (out->version != HK_MLS_VERSION_10) {
        fail(&r, "MLSMessage version is not mls10");
        goto done;
    }
    switch (out->wire_format) {
    case HK_MLS_WIRE_PUBLIC:
        rc = public_message(&r, 0, &out->u.pub);
        break;
    case HK_MLS_WIRE_PRIVATE:
        rc = private_message(&r, &out->u.priv);
        break;
    case HK_MLS_WIRE_WELCOME:
        rc = welcome(&r, &out->u.welcome);
        break;
    case HK_MLS_WIRE_KEY_PACKAGE:
        rc = key_package(&r, &out->u.key_package);
        break;
    case HK_MLS_WIRE_GROUP_INFO:
        fail(&r, "GroupInfo is not read by the delivery service");
        break;
    default:
        fail(&r, "unknown wire format");
        break;
    }
done:
    if (rc != 0) {
        if (err)
            *err = r.err ? r.err : "MLSMessage malformed";
        return HK_EINVAL;
    }
    *used = r.pos;
    return 0;
}

int hk_mls_message_parse(const uint8_t *buf, size_t len, hk_mls_message_t *out, const char **err)
{
    size_t used;
    int rc = hk_mls_message_parse_prefix(buf, len, out, &used, err);
    if (rc != 0)
        return rc;
    if (used != len)
        return hk_fail(err, "bytes after the MLSMessage");
    return 0;
}

/* ---- writers ----------------------------------------------------------------------- */

size_t hk_mls_write_opaque(uint8_t *buf, size_t cap, const uint8_t *data, size_t len)
{
    if (len >= (1u << 30))
        return 0;
    size_t n = hk_mls_varint_write(buf, cap, (uint32_t)len);
    if (n == 0 || cap - n < len)
        return 0;
    if (len)
        memcpy(buf + n, data, len);
    return n + len;
}

size_t hk_mls_write_external_proposal_tbs(uint8_t *buf, size_t cap, const uint8_t *group_id,
                                          size_t group_id_len, uint64_t epoch,
                                          uint32_t sender_index, uint16_t proposal_type,
                                          const uint8_t *body, size_t body_len)
{
    size_t pos = 0, n;
    if (cap < 4)
        return 0;
    hk_wr16(buf, HK_MLS_VERSION_10);
    hk_wr16(buf + 2, HK_MLS_WIRE_PUBLIC);
    pos = 4;
    n = hk_mls_write_opaque(buf + pos, cap - pos, group_id, group_id_len);
    if (n == 0)
        return 0;
    pos += n;
    if (cap - pos < 8 + 1 + 4 + 1 + 1 + 2 + body_len)
        return 0;
    hk_wr32(buf + pos, (uint32_t)(epoch >> 32));
    hk_wr32(buf + pos + 4, (uint32_t)epoch);
    pos += 8;
    buf[pos++] = HK_MLS_SENDER_EXTERNAL;
    hk_wr32(buf + pos, sender_index);
    pos += 4;
    buf[pos++] = 0; /* authenticated_data<V>: empty */
    buf[pos++] = HK_MLS_CONTENT_PROPOSAL;
    hk_wr16(buf + pos, proposal_type);
    pos += 2;
    memcpy(buf + pos, body, body_len);
    return pos + body_len;
}

size_t hk_mls_write_external_sender(uint8_t *buf, size_t cap, const uint8_t *signature_key,
                                    size_t key_len, const uint8_t *identity, size_t identity_len)
{
    size_t pos = hk_mls_write_opaque(buf, cap, signature_key, key_len);
    if (pos == 0 || cap - pos < 2)
        return 0;
    hk_wr16(buf + pos, HK_MLS_CREDENTIAL_BASIC);
    pos += 2;
    size_t n = hk_mls_write_opaque(buf + pos, cap - pos, identity, identity_len);
    return n ? pos + n : 0;
}

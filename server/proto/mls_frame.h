/* MLS wire pieces the delivery service reads and writes (RFC 9420), and hisoka's binary
 * envelope for MLS messages on the signaling WebSocket (docs/protocol.md §6).
 *
 * Pure codecs: no I/O, no allocation, no globals. Parsed fields are spans that point into
 * the caller's buffer and live as long as it does. Every length is checked before it is
 * used; every variable-length vector uses RFC 9420 §2.1.2's varint, which must be minimal.
 * Nothing encrypted is ever read: a PrivateMessage yields its clear header only, a Welcome
 * its key package references only.
 *
 * hisoka MLS envelope (big-endian):
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  Type (0x10+) |  Reserved = 0 |          Epoch (64 bits) ...  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                     ... Epoch                                 |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  ... Epoch    |           BodyLength (32 bits) ...            |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  | ... BodyLength|  Body (BodyLength bytes, nothing after)       |
 *  +-+-+-+-+-+-+-+-+
 *
 * Types 0..2 are the key messages of docs/protocol.md §3; MLS types start at 0x10 so one
 * look at byte 0 tells the two apart.
 */
#ifndef HK_MLS_FRAME_H
#define HK_MLS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- hisoka envelope -------------------------------------------------------------- */

#define HK_MLS_ENV_HEADER   14
#define HK_MLS_ENV_MAX_BODY (192 * 1024)

enum {
    HK_MLS_KEY_PACKAGE = 0x10,     /* client -> DS: MLSMessage(KeyPackage) */
    HK_MLS_GROUP = 0x11,           /* DS -> client: group id, external sender, what to do */
    HK_MLS_PROPOSAL = 0x12,        /* DS -> members: MLSMessage(PublicMessage proposal) */
    HK_MLS_REVOKE = 0x13,          /* DS -> members: ProposalRef refs<V> */
    HK_MLS_COMMIT = 0x14,          /* member -> DS: MLSMessage(commit) [MLSMessage(Welcome)] */
    HK_MLS_ANNOUNCE_COMMIT = 0x15, /* DS -> members: MLSMessage(commit), the epoch's winner */
    HK_MLS_WELCOME = 0x16,         /* DS -> joiners: MLSMessage(Welcome) */
    HK_MLS_COMMIT_REFUSED = 0x17,  /* DS -> committer: uint8 reason */
    HK_MLS_INVALID = 0x18,         /* client -> DS: I cannot process what I was sent */
};

#define HK_MLS_ENV_TYPE_MIN HK_MLS_KEY_PACKAGE
#define HK_MLS_ENV_TYPE_MAX HK_MLS_INVALID

/* HK_MLS_GROUP actions (first body byte). */
enum {
    HK_MLS_GROUP_CREATE = 1, /* create the group: you are its first member (leaf 0) */
    HK_MLS_GROUP_JOIN = 2,   /* your key package was proposed; a Welcome will follow */
    HK_MLS_GROUP_REJOIN = 3, /* send a new key package (the group was replaced, or you
                              * reported INVALID and were removed) */
};

/* HK_MLS_COMMIT_REFUSED reasons. */
enum {
    HK_MLS_REFUSED_STALE_EPOCH = 1, /* another commit won this epoch: process it, drop yours */
    HK_MLS_REFUSED_PROPOSALS = 2,   /* not exactly the pending proposals: commit again */
    HK_MLS_REFUSED_NOTHING = 3,     /* no proposal is pending: do not commit */
    HK_MLS_REFUSED_WELCOME = 4,     /* adds without a Welcome for exactly the joiners */
    HK_MLS_REFUSED_MALFORMED = 5,   /* not a PublicMessage commit of this group from you */
};

typedef struct {
    uint8_t type;
    uint64_t epoch;
    const uint8_t *body;
    size_t body_len;
} hk_mls_env_t;

/* Validates an envelope: known type, Reserved 0, BodyLength exact and at most
 * HK_MLS_ENV_MAX_BODY. Returns 0, or HK_EINVAL with *err set. */
int hk_mls_env_parse(const uint8_t *buf, size_t len, hk_mls_env_t *out, const char **err);

/* Writes the 14-byte header for a body of body_len bytes. */
void hk_mls_env_write_header(uint8_t *buf, uint8_t type, uint64_t epoch, uint32_t body_len);

/* ---- RFC 9420 ---------------------------------------------------------------------- */

#define HK_MLS_VERSION_10 1
#define HK_MLS_SUITE_1    1 /* MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 */
#define HK_MLS_MAX_REFS   64

enum { /* WireFormat, §6 */
       HK_MLS_WIRE_PUBLIC = 1,
       HK_MLS_WIRE_PRIVATE = 2,
       HK_MLS_WIRE_WELCOME = 3,
       HK_MLS_WIRE_GROUP_INFO = 4,
       HK_MLS_WIRE_KEY_PACKAGE = 5,
};
enum { HK_MLS_CONTENT_APPLICATION = 1, HK_MLS_CONTENT_PROPOSAL = 2, HK_MLS_CONTENT_COMMIT = 3 };
enum {
    HK_MLS_SENDER_MEMBER = 1,
    HK_MLS_SENDER_EXTERNAL = 2,
    HK_MLS_SENDER_NEW_MEMBER_PROPOSAL = 3,
    HK_MLS_SENDER_NEW_MEMBER_COMMIT = 4,
};
enum {
    HK_MLS_PROPOSAL_ADD = 1,
    HK_MLS_PROPOSAL_UPDATE = 2,
    HK_MLS_PROPOSAL_REMOVE = 3,
    HK_MLS_PROPOSAL_PSK = 4,
    HK_MLS_PROPOSAL_REINIT = 5,
    HK_MLS_PROPOSAL_EXTERNAL_INIT = 6,
    HK_MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS = 7,
};
#define HK_MLS_CREDENTIAL_BASIC           1
#define HK_MLS_CREDENTIAL_X509            2
#define HK_MLS_EXTENSION_EXTERNAL_SENDERS 5

typedef struct {
    const uint8_t *p;
    size_t len;
} hk_mls_span_t;

/* A LeafNode (§7.2): the fields the DS looks at. */
typedef struct {
    hk_mls_span_t encryption_key;
    hk_mls_span_t signature_key;
    uint16_t credential_type;
    hk_mls_span_t identity; /* basic credentials only; empty for x509 */
    uint8_t source;         /* 1 key_package, 2 update, 3 commit */
} hk_mls_leaf_t;

/* A KeyPackage (§10). `whole` is the KeyPackage struct (input of KeyPackageRef). */
typedef struct {
    hk_mls_span_t whole;
    uint16_t version;
    uint16_t cipher_suite;
    hk_mls_span_t init_key;
    hk_mls_leaf_t leaf;
} hk_mls_key_package_t;

/* A PublicMessage (§6.2). `tbs` is FramedContentTBS for non-member senders (version,
 * wire_format, FramedContent); `authenticated_content` is AuthenticatedContent (wire
 * format, FramedContent, FramedContentAuthData), the input of a ProposalRef (§5.2). */
typedef struct {
    hk_mls_span_t group_id;
    uint64_t epoch;
    uint8_t sender_type;
    uint32_t sender_index; /* leaf index or external sender index */
    uint8_t content_type;
    hk_mls_span_t tbs;
    hk_mls_span_t authenticated_content;
    hk_mls_span_t signature;
    /* content_type == proposal */
    uint16_t proposal_type;
    uint32_t removed;         /* remove */
    hk_mls_key_package_t add; /* add */
    /* content_type == commit */
    size_t n_refs; /* ProposalOrRef of type reference, in order */
    hk_mls_span_t refs[HK_MLS_MAX_REFS];
    size_t n_inline; /* ProposalOrRef of type proposal */
    bool has_path;
    hk_mls_leaf_t path_leaf; /* the committer's new leaf node, when has_path */
} hk_mls_public_t;

/* A PrivateMessage's clear header (§6.3). */
typedef struct {
    hk_mls_span_t group_id;
    uint64_t epoch;
    uint8_t content_type;
} hk_mls_private_t;

/* A Welcome (§12.4.3.1): the KeyPackageRef of each new member, in order. */
typedef struct {
    uint16_t cipher_suite;
    size_t n_secrets;
    hk_mls_span_t new_members[HK_MLS_MAX_REFS];
} hk_mls_welcome_t;

typedef struct {
    uint16_t version;
    uint16_t wire_format;
    union {
        hk_mls_public_t pub;
        hk_mls_private_t priv;
        hk_mls_welcome_t welcome;
        hk_mls_key_package_t key_package;
    } u;
} hk_mls_message_t;

/* Reads an RFC 9420 §2.1.2 varint at p[0..len): sets *value and *used. Refuses the 0b11
 * prefix and non-minimal encodings. Returns 0 or HK_EINVAL. */
int hk_mls_varint_read(const uint8_t *p, size_t len, uint32_t *value, size_t *used);

/* Writes value (< 2^30) as a minimal varint; returns the bytes written (1, 2 or 4), or 0
 * when value is too large or cap too small. */
size_t hk_mls_varint_write(uint8_t *p, size_t cap, uint32_t value);

/* Parses one MLSMessage at the start of buf and sets *used to its length (the rest of the
 * buffer is not looked at). GroupInfo is refused. Returns 0, or HK_EINVAL with *err. */
int hk_mls_message_parse_prefix(const uint8_t *buf, size_t len, hk_mls_message_t *out, size_t *used,
                                const char **err);

/* As above, and the message must fill buf exactly. */
int hk_mls_message_parse(const uint8_t *buf, size_t len, hk_mls_message_t *out, const char **err);

/* Writes FramedContentTBS (version, wire_format public, FramedContent) of a proposal from
 * external sender sender_index: group_id, epoch, empty authenticated_data, then the
 * Proposal: proposal_type (add or remove) followed by body (the KeyPackage struct for
 * add, uint32 removed leaf for remove). Returns the bytes written, or 0 when cap is too
 * small or a length does not fit. The signed message is this followed by signature<V>
 * (hk_mls_write_opaque). */
size_t hk_mls_write_external_proposal_tbs(uint8_t *buf, size_t cap, const uint8_t *group_id,
                                          size_t group_id_len, uint64_t epoch,
                                          uint32_t sender_index, uint16_t proposal_type,
                                          const uint8_t *body, size_t body_len);

/* Writes opaque data<V>; returns the bytes written or 0. */
size_t hk_mls_write_opaque(uint8_t *buf, size_t cap, const uint8_t *data, size_t len);

/* Writes ExternalSender (§12.1.8.1) with a basic credential: signature_key<V>,
 * credential_type 1, identity<V>. Returns the bytes written or 0. */
size_t hk_mls_write_external_sender(uint8_t *buf, size_t cap, const uint8_t *signature_key,
                                    size_t key_len, const uint8_t *identity, size_t identity_len);

#endif

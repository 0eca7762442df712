/* The MLS delivery service and external sender of one channel (docs/protocol.md §6),
 * in DAVE's manner: hisoka proposes Add when a member brings its key package and Remove
 * when it leaves, signed with the server's external-sender key; members commit; the first
 * valid commit of each epoch is broadcast and the others are refused with a reason.
 *
 * Sans-IO: time is an argument (milliseconds, any monotonic origin); output goes through
 * the callbacks given at creation, synchronously, from inside the call that caused it.
 * The callbacks must not call back into the same hk_mls_ds_t (queue the close instead).
 *
 * Members are named by their 26-character connection_id. The DS reads only the clear
 * parts of MLS messages (server/proto/mls_frame.h); it never holds a group secret.
 */
#ifndef HK_MLS_DS_H
#define HK_MLS_DS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hk_mls_ds_s hk_mls_ds_t;

typedef struct {
    /* Sends one binary WebSocket message (an MLS envelope) to a member. msg is valid only
     * during the call. */
    void (*send)(void *user, const char *conn_id, const uint8_t *msg, size_t len);
    /* Asks for a member's connection to be closed (the reason is a close-frame text such
     * as "MLS-UNRESPONSIVE"); the DS has already forgotten the member. */
    void (*close)(void *user, const char *conn_id, const char *reason);
} hk_mls_ds_callbacks_t;

typedef struct {
    uint8_t signing_seed[32];   /* Ed25519 private key of the external sender (RFC 8032 seed) */
    const char *identity;       /* its basic credential identity; default "hisoka" */
    uint32_t max_members;       /* default 64, at most 256 */
    uint32_t max_message;       /* largest envelope accepted or sent; default 65536 */
    uint32_t max_key_package;   /* default 4096 */
    uint64_t commit_timeout_ms; /* pending proposals without a winning commit; 2000 */
    uint64_t key_package_timeout_ms;  /* a member that owes a key package; 10000 */
    uint32_t max_messages_per_second; /* per member; default 20 */
    uint32_t max_malformed;           /* malformed messages before close; default 5 */
    uint32_t max_strikes; /* missed commit deadlines or INVALID reports before close; 3 */
} hk_mls_ds_config_t;

typedef struct {
    uint64_t proposals_sent;
    uint64_t revokes_sent;
    uint64_t commits_accepted;
    uint64_t commits_refused;
    uint64_t welcomes_sent;
    uint64_t malformed;
    uint64_t rate_limited;
    uint64_t resets;
    uint64_t closes;
} hk_mls_ds_stats_t;

/* Fills cfg with the defaults above and a random signing seed (OpenSSL RAND_bytes).
 * Returns 0 or HK_EIO. */
int hk_mls_ds_config_default(hk_mls_ds_config_t *cfg);

/* Writes the external sender's Ed25519 public key (32 bytes) for a seed. Returns 0 or
 * HK_EIO. */
int hk_mls_ds_public_key(const uint8_t seed[32], uint8_t out[32]);

/* RFC 9420 §5.2 RefHash for suite 1: SHA-256 over RefHashInput{ opaque label<V>;
 * opaque value<V>; }, e.g. label "MLS 1.0 Proposal Reference" over AuthenticatedContent or
 * "MLS 1.0 KeyPackage Reference" over a KeyPackage. Returns 0 or HK_EIO. */
int hk_mls_ref_hash(const char *label, const uint8_t *value, size_t len, uint8_t out[32]);

/* Creates the DS of one channel. cfg is copied (identity too). Returns NULL on
 * allocation or key failure. Freed with hk_mls_ds_free. */
hk_mls_ds_t *hk_mls_ds_new(const hk_mls_ds_config_t *cfg, const hk_mls_ds_callbacks_t *cb,
                           void *user);
void hk_mls_ds_free(hk_mls_ds_t *ds);

/* A connection entered the channel (after its offer). It owes a key package within
 * key_package_timeout_ms. Returns 0, HK_ELIMIT (channel full), HK_EINVAL (bad id) or
 * HK_ESTATE (already a member). */
int hk_mls_ds_join(hk_mls_ds_t *ds, const char *conn_id, uint64_t now_ms);

/* A connection left (closed, disconnected or kicked). Unknown ids are ignored. */
void hk_mls_ds_leave(hk_mls_ds_t *ds, const char *conn_id, uint64_t now_ms);

/* One binary message from a member whose first byte is an MLS envelope type (0x10..0x1f).
 * Returns 0 when it was handled (including a refusal sent back), HK_ENOENT for an
 * unknown member, HK_ELIMIT when rate-limited, HK_EINVAL when malformed (counted; after
 * max_malformed the member is closed with "MLS-MALFORMED"). *err, when not NULL, gets a
 * static reason for logs. */
int hk_mls_ds_receive(hk_mls_ds_t *ds, const char *conn_id, const uint8_t *msg, size_t len,
                      uint64_t now_ms, const char **err);

/* Runs the deadlines due at now_ms. */
void hk_mls_ds_tick(hk_mls_ds_t *ds, uint64_t now_ms);

/* The next time hk_mls_ds_tick has work, or UINT64_MAX. */
uint64_t hk_mls_ds_next_deadline(const hk_mls_ds_t *ds);

/* The group's epoch and whether a group exists (for stats and tests). */
uint64_t hk_mls_ds_epoch(const hk_mls_ds_t *ds, int *exists);

/* The leaf index the DS assigned to a member, or -1 when it is not in the group. */
int hk_mls_ds_leaf_of(const hk_mls_ds_t *ds, const char *conn_id);

const hk_mls_ds_stats_t *hk_mls_ds_stats(const hk_mls_ds_t *ds);

#endif

/* A channel (room): its members, its E2EE mode, notify fan-out and key routing.
 * Ownership: created by hk_channel_join for its first member, freed when its last
 * member leaves. Members are hk_peer_t owned by signaling. */
#ifndef HK_CHANNEL_H
#define HK_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/signal/mls_ds.h"
#include "server/signal/peer.h"
#include "server/proto/sora_msg.h"
#include "server/signal/server.h"

struct hk_channel_s {
    hk_signal_t *sig;
    hk_channel_t *next, *prev;
    char id[HK_CHANNEL_ID_MAX + 1];
    bool e2ee;
    bool mls;             /* e2ee_protocol "mls": keys through mls_ds (docs/protocol.md §6) */
    hk_mls_ds_t *mls_ds;  /* its delivery service when mls, owned */
    uv_timer_t mls_timer; /* armed at hk_mls_ds_next_deadline; when mls, the channel is
                             freed in the timer's close callback */
    int worker;           /* its home media worker (hk_signal_place): its members' media live there,
                             up to channel_spread_threshold of them (hk_channel_member_worker) */
    int members_on[HK_MAX_WORKERS]; /* members whose media each worker carries */
    hk_peer_t *members;
    int n_members;
    size_t metadata_bytes; /* the members' signaling_notify_metadata, as relayed */
};

/* Puts peer into the channel named by msg, creating the channel if needed.
 * Returns 0, or fills *err (close code, reason) and returns a negative code when the
 * channel is full, the E2EE modes differ or the server has too many channels. */
int hk_channel_join(hk_signal_t *sig, hk_peer_t *peer, const hk_connect_msg_t *msg,
                    hk_sora_error_t *err);

/* Removes peer; tells the others (connection.destroyed, re-offers) when it had been
 * announced. Frees the channel when it becomes empty. */
void hk_channel_leave(hk_peer_t *peer);

/* The peer answered its first offer: announce it (connection.created to everyone,
 * with `data` for itself) and forward its tracks to the receiving members. */
void hk_channel_announce(hk_peer_t *peer);

/* MLS channels (docs/protocol.md §6.5): a joiner whose key package the delivery service
 * took, before its answer. Its tracks as its connect asked for them (not simulcast) are
 * offered to the receiving members now, so their renegotiation runs alongside the
 * joiner's own setup and its Add; hk_channel_announce then offers nothing more. */
void hk_channel_offer_early(hk_peer_t *peer);

/* The joiner's answer differs from the tracks offered early: takes them back from every
 * member (and its relays); hk_channel_announce offers what it answered. */
void hk_channel_take_back_early(hk_peer_t *peer);

/* Validates a binary key message from peer and routes it, unchanged, to the member it
 * names. Anything invalid is dropped and counted (never forwarded). */
void hk_channel_relay_key(hk_peer_t *peer, const uint8_t *buf, size_t len);

/* An MLS channel: peer got its offer and owes a key package. Returns 0, or HK_ELIMIT
 * when the group is full (the caller closes the peer). Nothing in other channels. */
int hk_channel_mls_join(hk_peer_t *peer);

/* A binary message whose first byte is an MLS envelope type (0x10..0x1f): handed to the
 * channel's delivery service in an MLS channel, dropped and counted anywhere else. */
void hk_channel_relay_mls(hk_peer_t *peer, const uint8_t *buf, size_t len);

/* The worker a new member's media goes to: the channel's own, until it carries
 * channel_spread_threshold of its members; then the worker with the fewest of them
 * (their media cross between workers through relays, sfu/relay.h). */
int hk_channel_member_worker(const hk_channel_t *channel);

/* Counts of announced members. */
hk_channel_counts_t hk_channel_counts(const hk_channel_t *channel);

/* Finds a member by connection id (len bytes, not NUL-terminated). */
hk_peer_t *hk_channel_find(const hk_channel_t *channel, const char *connection_id, size_t len);

#endif

/* Several nodes as one service, through Redis (README "Cluster"; ARCHITECTURE.md). It
 * implements signal/'s placement interface (server/signal/placement.h) with hiredis on
 * the main libuv loop.
 *
 * Keys (every value written by one node only, and deleted by that node only):
 *   hisoka:node:<id>        hash url, connections, channels, draining; refreshed every
 *                           HK_CLUSTER_REFRESH_MS, expires after HK_CLUSTER_NODE_TTL_MS:
 *                           a node silent that long is dead
 *   hisoka:nodes            set of node ids (ids whose hash expired are swept by lookups)
 *   hisoka:channel:<id>     the owning node's id, SET NX (or taken over from a dead or
 *                           draining owner by compare-and-set), renewed by its owner while
 *                           the channel lives, deleted by its owner only (compare-and-delete)
 * Every read-modify-write is one Lua script, so it is atomic in Redis. */
#ifndef HK_APP_CLUSTER_H
#define HK_APP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "server/signal/placement.h"
#include "server/signal/server.h"

#define HK_CLUSTER_REFRESH_MS     2000  /* node registration and channel renewal */
#define HK_CLUSTER_NODE_TTL_MS    5000  /* a node is dead after this much silence */
#define HK_CLUSTER_CHANNEL_TTL_MS 10000 /* a channel key outlives its dead owner's node key */
#define HK_CLUSTER_REPLY_MS       3000  /* Redis that does not answer this long is down */
#define HK_CLUSTER_NODE_ID_MAX    64
#define HK_CLUSTER_MAX_NODES      64 /* nodes considered for a new channel */

/* One live node as a lookup sees it. */
typedef struct {
    char id[HK_CLUSTER_NODE_ID_MAX + 1];
    char url[HK_CONFIG_STR];
    uint32_t connections, channels;
    bool draining;
} hk_cluster_node_t;

/* What to do with a connect for a channel that is not live here (pure decision). */
typedef enum {
    HK_CLUSTER_ADMIT,    /* this node owns it */
    HK_CLUSTER_REDIRECT, /* a live node owns it: redirect to *location */
    HK_CLUSTER_CLAIM,    /* nobody live owns it: claim it for *target_id (compare-and-set
                            against owner), then act on who holds it */
    HK_CLUSTER_REFUSE,   /* close with *reason */
} hk_cluster_action_t;

/* Decides from a lookup: owner ("" when the channel has no key), the live nodes, whether
 * this node (self_id) drains, and whether the client was already redirected once. An
 * owner that is not among the live nodes, or drains, is gone: the channel is placed
 * anew. A redirected connect is never redirected again (no loops): it is claimed for this
 * node, or refused when a live node holds it. Pure. */
hk_cluster_action_t hk_cluster_decide(const char *self_id, bool self_draining, const char *owner,
                                      const hk_cluster_node_t *nodes, size_t n_nodes,
                                      bool redirected, const char **target_id,
                                      const char **location, const char **reason);

/* The least loaded live node that takes new channels: fewest connections, then fewest
 * channels, then self_id, then the smallest id. NULL when none. Pure. */
const hk_cluster_node_t *hk_cluster_least_loaded(const hk_cluster_node_t *nodes, size_t n_nodes,
                                                 const char *self_id);

/* Parses a lookup's reply, given as its string elements: owner ("" = none), then five
 * per node: id, url, connections, channels, draining ("1"/"0"). Fills at most max nodes
 * (the rest are ignored). Returns the number of nodes, or HK_EINVAL (*why set) when the
 * shape is wrong. Pure. */
int hk_cluster_parse_lookup(const char *const *elements, size_t n, const char **owner,
                            hk_cluster_node_t *nodes, size_t max, const char **why);

typedef struct hk_cluster_s hk_cluster_t;

/* Creates the cluster for config->cluster_redis_url (must be set): sets sig->placement
 * (call before hk_signal_start) and starts connecting to Redis, which is retried with
 * backoff as long as the node runs. Returns NULL on ENOMEM (logged). */
hk_cluster_t *hk_cluster_start(uv_loop_t *loop, const hk_config_t *config, hk_signal_t *sig);

/* SIGTERM: this node takes no new channels from now on, and says so in Redis at once. */
void hk_cluster_drain(hk_cluster_t *cluster);

/* Removes this node's registration (its own key), closes the connection and frees
 * everything, running loop until the handles are closed (at most about a second). Call
 * after hk_signal_close_all and before hk_signal_stop. */
void hk_cluster_stop(hk_cluster_t *cluster);

#endif

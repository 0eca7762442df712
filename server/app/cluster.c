#include "server/app/cluster.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "server/signal/channel.h"

#define KEY_PREFIX   "hisoka:"
#define NODE_PREFIX  KEY_PREFIX "node:"
#define NODES_SET    KEY_PREFIX "nodes"
#define CHAN_PREFIX  KEY_PREFIX "channel:"
#define TICK_MS      500
#define BACKOFF_MIN  200
#define BACKOFF_MAX  3000
#define STOP_WAIT_MS 1000

/* --- pure logic ------------------------------------------------------------------------ */

static const char redirected_reason[] =
    "CLUSTER-REDIRECTED: the channel is on another node than the one this client was "
    "redirected to; connect again";

const hk_cluster_node_t *hk_cluster_least_loaded(const hk_cluster_node_t *nodes, size_t n_nodes,
                                                 const char *self_id)
{
    const hk_cluster_node_t *best = NULL;
    for (size_t i = 0; i < n_nodes; i++) {
        const hk_cluster_node_t *n = &nodes[i];
        if (n->draining)
            continue;
        if (!best) {
            best = n;
            continue;
        }
        bool n_self = strcmp(n->id, self_id) == 0, best_self = strcmp(best->id, self_id) == 0;
        if (n->connections != best->connections ? n->connections < best->connections
            : n->channels != best->channels     ? n->channels < best->channels
            : n_self != best_self               ? n_self
                                                : strcmp(n->id, best->id) < 0)
            best = n;
    }
    return best;
}

hk_cluster_action_t hk_cluster_decide(const char *self_id, bool self_draining, const char *owner,
                                      const hk_cluster_node_t *nodes, size_t n_nodes,
                                      bool redirected, const char **target_id,
                                      const char **location, const char **reason)
{
    const hk_cluster_node_t *owner_node = NULL;
    for (size_t i = 0; owner[0] && i < n_nodes && !owner_node; i++)
        if (strcmp(nodes[i].id, owner) == 0)
            owner_node = &nodes[i];
    if (owner_node && !owner_node->draining) {
        if (strcmp(owner, self_id) == 0)
            return HK_CLUSTER_ADMIT;
        if (redirected) {
            *reason = redirected_reason;
            return HK_CLUSTER_REFUSE;
        }
        *target_id = owner_node->id;
        *location = owner_node->url;
        return HK_CLUSTER_REDIRECT;
    }
    /* Nobody live owns it (no key, or its owner is dead or draining): place it. */
    if (self_draining) {
        *reason = "CLUSTER-DRAINING: this node is shutting down and takes no new channels";
        return HK_CLUSTER_REFUSE;
    }
    const hk_cluster_node_t *best =
        redirected ? NULL : hk_cluster_least_loaded(nodes, n_nodes, self_id);
    /* A redirected client stays here; so does one when no registered node takes channels
     * (this node's own registration may have lapsed while Redis was away). */
    *target_id = best ? best->id : self_id;
    *location = best ? best->url : NULL;
    return HK_CLUSTER_CLAIM;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    if (!s || *s < '0' || *s > '9')
        return HK_EINVAL;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v > UINT32_MAX)
        return HK_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int hk_cluster_parse_lookup(const char *const *elements, size_t n, const char **owner,
                            hk_cluster_node_t *nodes, size_t max, const char **why)
{
    if (n < 1 || (n - 1) % 5 != 0)
        return hk_fail(why, "a lookup reply is the owner and five fields per node");
    for (size_t i = 0; i < n; i++)
        if (!elements[i])
            return hk_fail(why, "a lookup reply field is not a string");
    *owner = elements[0];
    size_t count = 0;
    for (size_t i = 1; i < n && count < max; i += 5) {
        hk_cluster_node_t *node = &nodes[count];
        const char *const *f = &elements[i];
        if (strlen(f[0]) == 0 || strlen(f[0]) > HK_CLUSTER_NODE_ID_MAX)
            return hk_fail(why, "a node id is empty or too long");
        if (strlen(f[1]) >= sizeof node->url)
            return hk_fail(why, "a node URL is too long");
        if (parse_u32(f[2], &node->connections) != 0 || parse_u32(f[3], &node->channels) != 0)
            return hk_fail(why, "a node's load is not a number");
        if (strcmp(f[4], "0") != 0 && strcmp(f[4], "1") != 0)
            return hk_fail(why, "a node's draining flag is not 0 or 1");
        snprintf(node->id, sizeof node->id, "%s", f[0]);
        snprintf(node->url, sizeof node->url, "%s", f[1]);
        node->draining = f[4][0] == '1';
        count++;
    }
    return (int)count;
}

/* --- Lua scripts (each runs atomically in Redis) ---------------------------------------- */

/* KEYS: node key, nodes set. ARGV: id, url, connections, channels, draining, node ttl,
 * channel ttl, then the channels live here. Registers the node and renews its channels:
 * its own keys get a new expiry, expired ones are set again (Redis was away), and the
 * ones another node holds now are returned (never touched). */
static const char refresh_script[] =
    "redis.call('HSET', KEYS[1], 'url', ARGV[2], 'connections', ARGV[3], 'channels', ARGV[4],"
    " 'draining', ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "local lost = {}\n"
    "for i = 8, #ARGV do\n"
    "  local k = '" CHAN_PREFIX "' .. ARGV[i]\n"
    "  local owner = redis.call('GET', k)\n"
    "  if owner == ARGV[1] then redis.call('PEXPIRE', k, ARGV[7])\n"
    "  elseif not owner then redis.call('SET', k, ARGV[1], 'PX', ARGV[7])\n"
    "  else table.insert(lost, ARGV[i]) end\n"
    "end\n"
    "return lost\n";

/* KEYS: channel key, nodes set. Returns the owner ("" = none), then id, url, connections,
 * channels, draining of each live node. Ids whose node key expired are dead: they leave
 * the set (a node that comes back adds itself again with its next refresh). */
static const char lookup_script[] =
    "local owner = redis.call('GET', KEYS[1])\n"
    "local res = {owner or ''}\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  local f = redis.call('HMGET', '" NODE_PREFIX "' .. id, 'url', 'connections', 'channels',"
    " 'draining')\n"
    "  if f[1] then\n"
    "    table.insert(res, id); table.insert(res, f[1]); table.insert(res, f[2] or '0')\n"
    "    table.insert(res, f[3] or '0'); table.insert(res, f[4] or '0')\n"
    "  else redis.call('SREM', KEYS[2], id) end\n"
    "end\n"
    "return res\n";

/* KEYS: channel key. ARGV: new owner, the owner the lookup saw ("" = none), ttl. Sets the
 * key only if it is still what the lookup saw, or gone: a live owner's key is never
 * overwritten. Returns the owner now and its URL ("" when its node key is gone). */
static const char claim_script[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if not cur or cur == ARGV[2] then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]); cur = ARGV[1]\n"
    "end\n"
    "return {cur, redis.call('HGET', '" NODE_PREFIX "' .. cur, 'url') or ''}\n";

/* KEYS: channel key. ARGV: this node's id. Compare-and-delete. */
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* --- state ------------------------------------------------------------------------------- */

struct hk_place_request_s {
    hk_cluster_t *cluster;
    hk_place_request_t *next, *prev;
    bool linked;
    char channel_id[HK_CHANNEL_ID_MAX + 1];
    bool redirected;
    hk_place_done_fn done; /* NULL once finished or cancelled */
    void *arg;
    uint64_t deadline_ms;
    int in_flight; /* Redis replies still to come (each holds a pointer to it) */
};

struct hk_cluster_s {
    uv_loop_t *loop;
    const hk_config_t *config;
    hk_signal_t *sig;
    hk_placement_t placement;
    char node_id[HK_CLUSTER_NODE_ID_MAX + 1];
    char host[HK_CONFIG_STR];
    int port;
    redisAsyncContext *redis; /* NULL while disconnected */
    bool connected;
    bool up; /* connected and the last refresh succeeded */
    bool ever_up, down_logged;
    uv_getaddrinfo_t resolver;
    bool resolving;
    uv_timer_t timer;
    uint64_t backoff_ms, reconnect_at_ms, next_refresh_ms, refresh_sent_ms;
    bool refresh_outstanding;
    bool draining, stopping;
    hk_place_request_t *requests;
    char last_error[160];
    uint64_t last_error_log, last_lost_log;
    /* counters for /metrics */
    uint64_t placed_local, redirects, refused_unavailable, refused_redirected, refused_draining;
    uint64_t conflicts, reconnects, redis_errors;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void set_down(hk_cluster_t *c, const char *why)
{
    snprintf(c->last_error, sizeof c->last_error, "%s", why);
    bool first = c->up || !c->down_logged; /* then again every 30 s while it lasts */
    if (first)
        c->last_error_log = now_ms();
    if (first || hk_log_due(&c->last_error_log, now_ms(), 30000))
        HK_LOG(HK_LOG_ERROR, "cluster", NULL,
               "Redis at %s:%d is unreachable (%s): channels live on this node go on, new "
               "channels are refused with 4503 CLUSTER-UNAVAILABLE until it returns",
               c->host, c->port, why);
    c->down_logged = true;
    c->up = false;
}

static void set_up(hk_cluster_t *c)
{
    if (!c->up)
        HK_LOG(HK_LOG_INFO, "cluster", NULL,
               "Redis at %s:%d is reachable: node %s (%s) places channels", c->host, c->port,
               c->node_id, c->config->cluster_node_url);
    c->up = true;
    c->ever_up = true;
    c->down_logged = false;
    c->last_error[0] = '\0';
}

/* --- placement requests ------------------------------------------------------------------ */

static void unlink_request(hk_place_request_t *r)
{
    if (!r->linked)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        r->cluster->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->linked = false;
}

static void release_request(hk_place_request_t *r)
{
    if (!r->done && r->in_flight == 0 && !r->linked)
        free(r);
}

static void finish(hk_place_request_t *r, const hk_place_result_t *result)
{
    hk_place_done_fn done = r->done;
    r->done = NULL;
    unlink_request(r);
    if (done)
        done(r->arg, result);
    release_request(r);
}

static void refuse(hk_place_request_t *r, int code, const char *reason)
{
    hk_place_result_t result = {.verdict = HK_PLACE_REFUSE, .close_code = code, .reason = reason};
    finish(r, &result);
}

static const char unavailable_reason[] =
    "CLUSTER-UNAVAILABLE: Redis is unreachable, so this node cannot place a new channel; "
    "try again later";

static void refuse_unavailable(hk_place_request_t *r)
{
    r->cluster->refused_unavailable++;
    refuse(r, HK_CLOSE_UNAVAILABLE, unavailable_reason);
}

static void admit_here(hk_place_request_t *r)
{
    r->cluster->placed_local++;
    HK_LOG(HK_LOG_INFO, "cluster", NULL, "channel %s is on this node (%s)", r->channel_id,
           r->cluster->node_id);
    hk_place_result_t result = {.verdict = HK_PLACE_LOCAL};
    finish(r, &result);
}

static void redirect(hk_place_request_t *r, const char *location)
{
    r->cluster->redirects++;
    hk_place_result_t result = {.verdict = HK_PLACE_REDIRECT, .location = location};
    finish(r, &result);
}

/* A reply that is NULL (disconnected) or an error: logged, and Redis counts as down. */
static bool reply_failed(hk_cluster_t *c, const redisReply *reply, const char *what)
{
    if (!reply)
        return true;
    if (reply->type != REDIS_REPLY_ERROR)
        return false;
    c->redis_errors++;
    if (hk_log_due(&c->last_error_log, now_ms(), 5000))
        HK_LOG(HK_LOG_ERROR, "cluster", NULL, "Redis refused the %s script: %s", what, reply->str);
    return true;
}

/* A reply for r has come: NULL when r was cancelled or given up meanwhile (and then
 * freed if nothing else refers to it), else r. */
static hk_place_request_t *replied(void *privdata)
{
    hk_place_request_t *r = privdata;
    r->in_flight--;
    if (r->done)
        return r;
    release_request(r);
    return NULL;
}

static void on_claim(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    hk_place_request_t *r = replied(privdata);
    hk_cluster_t *c = ac->data;
    const redisReply *reply = reply_ptr;
    if (!r)
        return;
    if (reply_failed(c, reply, "claim") || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        refuse_unavailable(r);
        return;
    }
    const char *owner = reply->element[0]->str, *url = reply->element[1]->str;
    if (strcmp(owner, c->node_id) == 0) {
        admit_here(r);
    } else if (r->redirected) {
        c->refused_redirected++;
        refuse(r, HK_CLOSE_UNAVAILABLE, redirected_reason);
    } else if (url[0]) {
        HK_LOG(HK_LOG_INFO, "cluster", NULL, "channel %s is on node %s", r->channel_id, owner);
        redirect(r, url);
    } else {
        refuse_unavailable(r);
    }
}

static void on_lookup(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    hk_place_request_t *r = replied(privdata);
    hk_cluster_t *c = ac->data;
    const redisReply *reply = reply_ptr;
    if (!r)
        return;
    if (reply_failed(c, reply, "lookup") || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements > 1 + 5 * HK_CLUSTER_MAX_NODES * 4) {
        refuse_unavailable(r);
        return;
    }
    const char *elements[1 + 5 * HK_CLUSTER_MAX_NODES * 4];
    for (size_t i = 0; i < reply->elements; i++)
        elements[i] = reply->element[i]->type == REDIS_REPLY_STRING ? reply->element[i]->str : NULL;
    static hk_cluster_node_t nodes[HK_CLUSTER_MAX_NODES]; /* main loop only */
    const char *owner = "", *why = NULL;
    int n = hk_cluster_parse_lookup(elements, reply->elements, &owner, nodes, HK_CLUSTER_MAX_NODES,
                                    &why);
    if (n < 0) {
        if (hk_log_due(&c->last_error_log, now_ms(), 5000))
            HK_LOG(HK_LOG_ERROR, "cluster", NULL, "unexpected lookup reply from Redis: %s", why);
        refuse_unavailable(r);
        return;
    }
    const char *target = NULL, *location = NULL, *reason = NULL;
    switch (hk_cluster_decide(c->node_id, c->draining, owner, nodes, (size_t)n, r->redirected,
                              &target, &location, &reason)) {
    case HK_CLUSTER_ADMIT:
        admit_here(r);
        return;
    case HK_CLUSTER_REDIRECT:
        HK_LOG(HK_LOG_INFO, "cluster", NULL, "channel %s is on node %s", r->channel_id, target);
        redirect(r, location);
        return;
    case HK_CLUSTER_REFUSE:
        if (strncmp(reason, "CLUSTER-DRAINING", 16) == 0)
            c->refused_draining++;
        else
            c->refused_redirected++;
        refuse(r, HK_CLOSE_UNAVAILABLE, reason);
        return;
    case HK_CLUSTER_CLAIM:
        break;
    }
    if (owner[0])
        HK_LOG(HK_LOG_INFO, "cluster", NULL,
               "channel %s: its node %s is gone or draining, placing it on %s", r->channel_id,
               owner, target);
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", HK_CLUSTER_CHANNEL_TTL_MS);
    if (redisAsyncCommand(ac, on_claim, r, "EVAL %s 1 %s%s %s %s %s", claim_script, CHAN_PREFIX,
                          r->channel_id, target, owner, ttl) != REDIS_OK) {
        refuse_unavailable(r);
        return;
    }
    r->in_flight++;
}

/* The channel id goes into a key and a script argument as it is: 1..255 printable ASCII
 * (server/proto/sora_msg.h), binary-safe in Redis either way. hiredis' %s takes it whole;
 * a space in it is fine because each %s is one argument. */
static int place_start(void *impl, const char *channel_id, bool redirected, hk_place_done_fn done,
                       void *arg, hk_place_request_t **request, hk_place_result_t *now)
{
    hk_cluster_t *c = impl;
    if (c->draining || c->stopping) {
        c->refused_draining++;
        *now = (hk_place_result_t){
            .verdict = HK_PLACE_REFUSE,
            .close_code = HK_CLOSE_UNAVAILABLE,
            .reason = "CLUSTER-DRAINING: this node is shutting down and takes no new channels"};
        return 1;
    }
    hk_place_request_t *r = NULL;
    if (c->up && c->redis)
        r = calloc(1, sizeof *r);
    if (r) {
        r->cluster = c;
        snprintf(r->channel_id, sizeof r->channel_id, "%s", channel_id);
        r->redirected = redirected;
        r->done = done;
        r->arg = arg;
        r->deadline_ms = now_ms() + HK_CLUSTER_REPLY_MS;
        if (redisAsyncCommand(c->redis, on_lookup, r, "EVAL %s 2 %s%s %s", lookup_script,
                              CHAN_PREFIX, channel_id, NODES_SET) != REDIS_OK) {
            free(r);
            r = NULL;
        }
    }
    if (!r) {
        c->refused_unavailable++;
        *now = (hk_place_result_t){.verdict = HK_PLACE_REFUSE,
                                   .close_code = HK_CLOSE_UNAVAILABLE,
                                   .reason = unavailable_reason};
        return 1;
    }
    r->in_flight = 1;
    r->linked = true;
    r->next = c->requests;
    if (c->requests)
        c->requests->prev = r;
    c->requests = r;
    *request = r;
    return 0;
}

static void place_cancel(void *impl, hk_place_request_t *r)
{
    (void)impl;
    r->done = NULL;
    unlink_request(r);
    release_request(r);
}

static void on_logged_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    reply_failed(ac->data, reply, privdata);
}

static void channel_ended(void *impl, const char *channel_id)
{
    hk_cluster_t *c = impl;
    /* Without Redis the key expires by itself (HK_CLUSTER_CHANNEL_TTL_MS). */
    if (c->redis && c->connected)
        redisAsyncCommand(c->redis, on_logged_reply, (void *)"release", "EVAL %s 1 %s%s %s",
                          release_script, CHAN_PREFIX, channel_id, c->node_id);
}

static json_t *health(void *impl, bool *degraded)
{
    hk_cluster_t *c = impl;
    *degraded = !c->up;
    return json_pack("{s:s,s:s,s:s,s:b,s:s}", "node_id", c->node_id, "node_url",
                     c->config->cluster_node_url, "redis", c->up ? "up" : "down", "draining",
                     c->draining, "last_error", c->last_error);
}

static char *metrics(void *impl)
{
    hk_cluster_t *c = impl;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f,
            "# HELP hisoka_cluster_redis_up 1 while Redis answers (new channels can be placed).\n"
            "# TYPE hisoka_cluster_redis_up gauge\nhisoka_cluster_redis_up %d\n"
            "# HELP hisoka_cluster_draining 1 once the node takes no new channels (SIGTERM).\n"
            "# TYPE hisoka_cluster_draining gauge\nhisoka_cluster_draining %d\n"
            "# HELP hisoka_cluster_placements_total Connects for channels not live here, by "
            "outcome.\n"
            "# TYPE hisoka_cluster_placements_total counter\n"
            "hisoka_cluster_placements_total{result=\"local\"} %llu\n"
            "hisoka_cluster_placements_total{result=\"redirect\"} %llu\n"
            "hisoka_cluster_placements_total{result=\"refused_unavailable\"} %llu\n"
            "hisoka_cluster_placements_total{result=\"refused_redirected\"} %llu\n"
            "hisoka_cluster_placements_total{result=\"refused_draining\"} %llu\n"
            "# HELP hisoka_cluster_redirects_total Sora redirects sent to clients.\n"
            "# TYPE hisoka_cluster_redirects_total counter\nhisoka_cluster_redirects_total %llu\n"
            "# HELP hisoka_cluster_channel_conflicts_total Renewals that found a channel live "
            "here held by another node in Redis.\n"
            "# TYPE hisoka_cluster_channel_conflicts_total counter\n"
            "hisoka_cluster_channel_conflicts_total %llu\n"
            "# HELP hisoka_cluster_redis_reconnects_total Connections to Redis made again.\n"
            "# TYPE hisoka_cluster_redis_reconnects_total counter\n"
            "hisoka_cluster_redis_reconnects_total %llu\n"
            "# HELP hisoka_cluster_redis_errors_total Error replies from Redis.\n"
            "# TYPE hisoka_cluster_redis_errors_total counter\n"
            "hisoka_cluster_redis_errors_total %llu\n",
            c->up, c->draining, (unsigned long long)c->placed_local,
            (unsigned long long)c->redirects, (unsigned long long)c->refused_unavailable,
            (unsigned long long)c->refused_redirected, (unsigned long long)c->refused_draining,
            (unsigned long long)c->redirects, (unsigned long long)c->conflicts,
            (unsigned long long)c->reconnects, (unsigned long long)c->redis_errors);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* --- registration and renewal ------------------------------------------------------------ */

static void on_refresh(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    (void)privdata;
    hk_cluster_t *c = ac->data;
    const redisReply *reply = reply_ptr;
    c->refresh_outstanding = false;
    if (!reply)
        return; /* disconnected: on_disconnect says so */
    if (reply_failed(c, reply, "refresh") || reply->type != REDIS_REPLY_ARRAY) {
        set_down(c, reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected refresh reply");
        return;
    }
    set_up(c);
    for (size_t i = 0; i < reply->elements; i++) {
        c->conflicts++;
        if (reply->element[i]->type == REDIS_REPLY_STRING &&
            hk_log_due(&c->last_lost_log, now_ms(), 10000))
            HK_LOG(HK_LOG_WARN, "cluster", NULL,
                   "channel %s is live here but Redis gives it to another node (placed there "
                   "while this node could not renew it): new members join the other node",
                   reply->element[i]->str);
    }
}

static void send_refresh(hk_cluster_t *c)
{
    const hk_signal_t *sig = c->sig;
    size_t n = 9 + (size_t)(sig->n_channels > 0 ? sig->n_channels : 0);
    const char **argv = calloc(n, sizeof *argv);
    if (!argv)
        return;
    char node_key[sizeof NODE_PREFIX + HK_CLUSTER_NODE_ID_MAX], conns[16], chans[16], node_ttl[16],
        chan_ttl[16];
    snprintf(node_key, sizeof node_key, "%s%s", NODE_PREFIX, c->node_id);
    snprintf(conns, sizeof conns, "%d", sig->n_connections);
    snprintf(chans, sizeof chans, "%d", sig->n_channels);
    snprintf(node_ttl, sizeof node_ttl, "%d", HK_CLUSTER_NODE_TTL_MS);
    snprintf(chan_ttl, sizeof chan_ttl, "%d", HK_CLUSTER_CHANNEL_TTL_MS);
    size_t argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = refresh_script;
    argv[argc++] = "2";
    argv[argc++] = node_key;
    argv[argc++] = NODES_SET;
    argv[argc++] = c->node_id;
    argv[argc++] = c->config->cluster_node_url;
    argv[argc++] = conns;
    argv[argc++] = chans;
    const char *tail[3] = {c->draining ? "1" : "0", node_ttl, chan_ttl};
    const char **full = realloc(argv, (n + 3) * sizeof *argv);
    if (!full) {
        free(argv);
        return;
    }
    argv = full;
    for (int i = 0; i < 3; i++)
        argv[argc++] = tail[i];
    for (const hk_channel_t *ch = sig->channels; ch && argc < n + 3; ch = ch->next)
        argv[argc++] = ch->id;
    if (redisAsyncCommandArgv(c->redis, on_refresh, NULL, (int)argc, argv, NULL) == REDIS_OK) {
        c->refresh_outstanding = true;
        c->refresh_sent_ms = now_ms();
    }
    free(argv);
    c->next_refresh_ms = now_ms() + HK_CLUSTER_REFRESH_MS;
}

/* --- hiredis on libuv ----------------------------------------------------------------------
 * hiredis 0.14's own adapters/libuv.h drops a poll error (a refused connect is reported as
 * UV_EBADF with no events), so hiredis never hears of it and the connection hangs in
 * "connecting" for ever. This one hands an error to hiredis as the events it waits for,
 * as later hiredis releases do: its read or write then finds the socket error. */

typedef struct {
    redisAsyncContext *context; /* NULL once hiredis let go of it */
    uv_poll_t handle;
    int events;
} redis_events_t;

static void redis_poll(uv_poll_t *handle, int status, int events)
{
    redis_events_t *p = handle->data;
    int ready = status ? p->events : events;
    if (p->context && (ready & UV_READABLE))
        redisAsyncHandleRead(p->context);
    if (p->context && (ready & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

/* Starts or stops watching event (UV_READABLE or UV_WRITABLE) for hiredis. */
static void redis_watch(void *data, int event, bool on)
{
    redis_events_t *p = data;
    p->events = on ? p->events | event : p->events & ~event;
    if (p->events)
        uv_poll_start(&p->handle, p->events, redis_poll);
    else
        uv_poll_stop(&p->handle);
}

static void redis_add_read(void *data)
{
    redis_watch(data, UV_READABLE, true);
}
static void redis_del_read(void *data)
{
    redis_watch(data, UV_READABLE, false);
}
static void redis_add_write(void *data)
{
    redis_watch(data, UV_WRITABLE, true);
}
static void redis_del_write(void *data)
{
    redis_watch(data, UV_WRITABLE, false);
}

static void redis_poll_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void redis_cleanup(void *data)
{
    redis_events_t *p = data;
    p->context = NULL;
    uv_close((uv_handle_t *)&p->handle, redis_poll_closed);
}

static int redis_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    redis_events_t *p = calloc(1, sizeof *p);
    if (!p)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->handle.data = p;
    p->context = ac;
    ac->ev.data = p;
    ac->ev.addRead = redis_add_read;
    ac->ev.delRead = redis_del_read;
    ac->ev.addWrite = redis_add_write;
    ac->ev.delWrite = redis_del_write;
    ac->ev.cleanup = redis_cleanup;
    return REDIS_OK;
}

/* --- connection -------------------------------------------------------------------------- */

static void schedule_reconnect(hk_cluster_t *c)
{
    c->reconnect_at_ms = now_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff_ms * 2;
}

static void fail_requests(hk_cluster_t *c)
{
    while (c->requests)
        refuse_unavailable(c->requests);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    hk_cluster_t *c = ac->data;
    if (c->redis != ac)
        return;
    c->redis = NULL;
    c->connected = false;
    c->refresh_outstanding = false;
    if (c->stopping)
        return;
    set_down(c, status == REDIS_OK ? "connection closed"
                : ac->errstr[0]    ? ac->errstr
                                   : "connection lost");
    fail_requests(c);
    schedule_reconnect(c);
}

static void on_connected(const redisAsyncContext *ac, int status)
{
    hk_cluster_t *c = ac->data;
    if (c->redis != ac)
        return;
    if (status != REDIS_OK) {
        c->redis = NULL; /* hiredis frees it after this callback */
        set_down(c, ac->errstr[0] ? ac->errstr : "cannot connect");
        schedule_reconnect(c);
        return;
    }
    c->connected = true;
    c->backoff_ms = BACKOFF_MIN;
    if (c->ever_up)
        c->reconnects++;
    send_refresh(c); /* up once it is answered */
}

static void connect_to(hk_cluster_t *c, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, c->port);
    if (!ac || ac->err) {
        set_down(c, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    ac->data = c;
    if (redis_attach(ac, c->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        set_down(c, "cannot attach to the event loop");
        schedule_reconnect(c);
        return;
    }
    c->redis = ac;
    redisAsyncSetConnectCallback(ac, on_connected);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    hk_cluster_t *c = req->data;
    c->resolving = false;
    char ip[INET_ADDRSTRLEN] = "";
    if (status == 0 && res && res->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    if (c->stopping)
        return;
    if (!ip[0]) {
        char why[160];
        snprintf(why, sizeof why, "cannot resolve %.64s: %s", c->host,
                 status ? uv_strerror(status) : "no IPv4 address");
        set_down(c, why);
        schedule_reconnect(c);
        return;
    }
    connect_to(c, ip);
}

static void connect_redis(hk_cluster_t *c)
{
    struct in_addr a;
    if (inet_pton(AF_INET, c->host, &a) == 1) {
        connect_to(c, c->host);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    c->resolver.data = c;
    if (uv_getaddrinfo(c->loop, &c->resolver, on_resolved, c->host, NULL, &hints) == 0)
        c->resolving = true;
    else
        schedule_reconnect(c);
}

static void on_tick(uv_timer_t *timer)
{
    hk_cluster_t *c = timer->data;
    uint64_t now = now_ms();
    if (c->stopping)
        return;
    for (hk_place_request_t *r = c->requests, *next; r; r = next) {
        next = r->next;
        if (now >= r->deadline_ms)
            refuse_unavailable(r);
    }
    if (!c->redis && !c->resolving && now >= c->reconnect_at_ms) {
        connect_redis(c);
        return;
    }
    if (!c->connected)
        return;
    if (c->refresh_outstanding && now - c->refresh_sent_ms > HK_CLUSTER_REPLY_MS) {
        /* Connected but silent (a stopped or overloaded Redis): start again. */
        set_down(c, "no reply in time");
        redisAsyncContext *ac = c->redis;
        c->redis = NULL;
        c->connected = false;
        c->refresh_outstanding = false;
        redisAsyncFree(ac);
        fail_requests(c);
        schedule_reconnect(c);
        return;
    }
    if (!c->refresh_outstanding && now >= c->next_refresh_ms)
        send_refresh(c);
}

/* Node ids: the host name (letters, digits, '.', '-', '_') and 8 random characters, new
 * at every start, so a restarted node never inherits what its earlier run held. */
static void make_node_id(char *out, size_t size)
{
    char host[64] = "node";
    gethostname(host, sizeof host - 1);
    host[40] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            *p = '_';
    char id[HK_ID_LEN + 1] = "00000000";
    hk_id_generate(id);
    snprintf(out, size, "%s-%.8s", host, id + HK_ID_LEN - 8);
}

hk_cluster_t *hk_cluster_start(uv_loop_t *loop, const hk_config_t *config, hk_signal_t *sig)
{
    hk_cluster_t *c = calloc(1, sizeof *c);
    const char *why = NULL;
    if (!c) {
        HK_LOG(HK_LOG_ERROR, "cluster", NULL, "out of memory");
        return NULL;
    }
    if (hk_config_parse_redis_url(config->cluster_redis_url, c->host, sizeof c->host, &c->port,
                                  &why) != 0) {
        HK_LOG(HK_LOG_ERROR, "cluster", NULL, "cluster_redis_url: %s", why);
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->config = config;
    c->sig = sig;
    c->backoff_ms = BACKOFF_MIN;
    make_node_id(c->node_id, sizeof c->node_id);
    snprintf(c->last_error, sizeof c->last_error, "not connected yet");
    c->placement = (hk_placement_t){.impl = c,
                                    .start = place_start,
                                    .cancel = place_cancel,
                                    .channel_ended = channel_ended,
                                    .health = health,
                                    .metrics = metrics};
    sig->placement = &c->placement;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_tick, TICK_MS, TICK_MS);
    HK_LOG(HK_LOG_INFO, "cluster", NULL, "node %s (%s), Redis at %s:%d", c->node_id,
           config->cluster_node_url, c->host, c->port);
    connect_redis(c);
    return c;
}

void hk_cluster_drain(hk_cluster_t *c)
{
    if (!c || c->draining)
        return;
    c->draining = true;
    HK_LOG(HK_LOG_INFO, "cluster", NULL, "draining: node %s takes no new channels", c->node_id);
    if (c->connected)
        send_refresh(c);
}

static void on_stop_deadline(uv_timer_t *timer)
{
    *(int *)timer->data = 1;
}

static void on_timer_closed(uv_handle_t *handle)
{
    (void)handle;
}

void hk_cluster_stop(hk_cluster_t *c)
{
    if (!c)
        return;
    c->sig->placement = NULL;
    fail_requests(c);
    c->stopping = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (c->redis && c->connected) {
        /* Its own registration only; its channels' keys went with their last members. */
        char node_key[sizeof NODE_PREFIX + HK_CLUSTER_NODE_ID_MAX];
        snprintf(node_key, sizeof node_key, "%s%s", NODE_PREFIX, c->node_id);
        redisAsyncCommand(c->redis, on_logged_reply, (void *)"deregister", "DEL %s", node_key);
        redisAsyncCommand(c->redis, on_logged_reply, (void *)"deregister", "SREM %s %s", NODES_SET,
                          c->node_id);
        redisAsyncDisconnect(c->redis); /* after the replies */
    } else if (c->redis) {
        redisAsyncContext *ac = c->redis;
        c->redis = NULL;
        redisAsyncFree(ac);
    }
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->resolver);
    int expired = 0;
    uv_timer_t deadline;
    uv_timer_init(c->loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_stop_deadline, STOP_WAIT_MS, 0);
    while ((c->redis || c->resolving) && !expired)
        uv_run(c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, on_timer_closed);
    if (c->redis) {
        redisAsyncContext *ac = c->redis;
        c->redis = NULL;
        redisAsyncFree(ac);
    }
    uv_run(c->loop, UV_RUN_NOWAIT); /* the timers' and the Redis poll handle's close */
    if (c->resolving)
        return; /* the resolver still refers to it: left to the process's exit */
    HK_LOG(HK_LOG_INFO, "cluster", NULL, "node %s left the cluster", c->node_id);
    free(c);
}

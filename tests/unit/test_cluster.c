/* app/cluster.c's pure parts: the least loaded node, the placement decision, and the
 * parsing of a lookup reply (server/app/cluster.h). */
#include "tests/unit/unit.h"

#include "common/error.h"
#include "server/app/cluster.h"

static hk_cluster_node_t node(const char *id, uint32_t connections, uint32_t channels,
                              bool draining)
{
    hk_cluster_node_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.id, sizeof n.id, "%s", id);
    snprintf(n.url, sizeof n.url, "ws://%s:5000/signaling", id);
    n.connections = connections;
    n.channels = channels;
    n.draining = draining;
    return n;
}

TEST(cluster_least_loaded)
{
    hk_cluster_node_t nodes[4] = {node("a", 10, 2, false), node("b", 3, 9, false),
                                  node("c", 3, 1, false), node("d", 0, 0, true)};
    /* Fewest connections, then fewest channels; a draining node never. */
    CHECK_STR_EQ(hk_cluster_least_loaded(nodes, 4, "a")->id, "c");
    /* A tie goes to this node (no redirect), then to the smallest id. */
    nodes[1].channels = 1;
    CHECK_STR_EQ(hk_cluster_least_loaded(nodes, 4, "c")->id, "c");
    CHECK_STR_EQ(hk_cluster_least_loaded(nodes, 4, "b")->id, "b");
    CHECK_STR_EQ(hk_cluster_least_loaded(nodes, 4, "a")->id, "b");
    CHECK(hk_cluster_least_loaded(nodes + 3, 1, "a") == NULL);
    CHECK(hk_cluster_least_loaded(nodes, 0, "a") == NULL);
}

TEST(cluster_decide_owner_alive)
{
    hk_cluster_node_t nodes[2] = {node("a", 5, 1, false), node("b", 0, 0, false)};
    const char *target = NULL, *location = NULL, *reason = NULL;
    /* Its own channel: admitted, redirected or not. */
    CHECK_INT_EQ(hk_cluster_decide("a", false, "a", nodes, 2, false, &target, &location, &reason),
                 HK_CLUSTER_ADMIT);
    CHECK_INT_EQ(hk_cluster_decide("a", false, "a", nodes, 2, true, &target, &location, &reason),
                 HK_CLUSTER_ADMIT);
    /* Another live node's: redirect there, even if it is the busier one. */
    CHECK_INT_EQ(hk_cluster_decide("b", false, "a", nodes, 2, false, &target, &location, &reason),
                 HK_CLUSTER_REDIRECT);
    CHECK_STR_EQ(target, "a");
    CHECK_STR_EQ(location, "ws://a:5000/signaling");
    /* ...but never a second redirect. */
    CHECK_INT_EQ(hk_cluster_decide("b", false, "a", nodes, 2, true, &target, &location, &reason),
                 HK_CLUSTER_REFUSE);
    CHECK(strncmp(reason, "CLUSTER-REDIRECTED", 18) == 0);
}

TEST(cluster_decide_new_channel)
{
    hk_cluster_node_t nodes[3] = {node("a", 5, 1, false), node("b", 1, 1, false),
                                  node("c", 0, 0, true)};
    const char *target = NULL, *location = NULL, *reason = NULL;
    /* No owner: the least loaded node that is not draining. */
    CHECK_INT_EQ(hk_cluster_decide("a", false, "", nodes, 3, false, &target, &location, &reason),
                 HK_CLUSTER_CLAIM);
    CHECK_STR_EQ(target, "b");
    CHECK_STR_EQ(location, "ws://b:5000/signaling");
    /* A redirected client is placed where it is. */
    CHECK_INT_EQ(hk_cluster_decide("a", false, "", nodes, 3, true, &target, &location, &reason),
                 HK_CLUSTER_CLAIM);
    CHECK_STR_EQ(target, "a");
    /* An owner that is gone (not among the live nodes) or draining is replaced. */
    CHECK_INT_EQ(
        hk_cluster_decide("a", false, "dead", nodes, 3, false, &target, &location, &reason),
        HK_CLUSTER_CLAIM);
    CHECK_STR_EQ(target, "b");
    CHECK_INT_EQ(hk_cluster_decide("a", false, "c", nodes, 3, false, &target, &location, &reason),
                 HK_CLUSTER_CLAIM);
    CHECK_STR_EQ(target, "b");
    /* A draining node places nothing. */
    CHECK_INT_EQ(hk_cluster_decide("a", true, "", nodes, 3, false, &target, &location, &reason),
                 HK_CLUSTER_REFUSE);
    CHECK(strncmp(reason, "CLUSTER-DRAINING", 16) == 0);
    /* No live node takes channels (this node's registration lapsed): it takes the channel. */
    CHECK_INT_EQ(
        hk_cluster_decide("a", false, "", nodes + 2, 1, false, &target, &location, &reason),
        HK_CLUSTER_CLAIM);
    CHECK_STR_EQ(target, "a");
}

TEST(cluster_parse_lookup)
{
    hk_cluster_node_t nodes[2];
    const char *owner = NULL, *why = NULL;
    const char *reply[] = {
        "b", "a", "ws://a/signaling", "3", "1", "0", "b", "wss://b/signaling", "0", "0", "1"};
    CHECK_INT_EQ(hk_cluster_parse_lookup(reply, 11, &owner, nodes, 2, &why), 2);
    CHECK_STR_EQ(owner, "b");
    CHECK_STR_EQ(nodes[0].id, "a");
    CHECK_STR_EQ(nodes[0].url, "ws://a/signaling");
    CHECK_INT_EQ(nodes[0].connections, 3);
    CHECK_INT_EQ(nodes[0].channels, 1);
    CHECK_INT_EQ(nodes[0].draining, 0);
    CHECK_STR_EQ(nodes[1].id, "b");
    CHECK_INT_EQ(nodes[1].draining, 1);
    /* More nodes than room: the rest are left out. */
    CHECK_INT_EQ(hk_cluster_parse_lookup(reply, 11, &owner, nodes, 1, &why), 1);
    /* No owner, no nodes. */
    const char *empty[] = {""};
    CHECK_INT_EQ(hk_cluster_parse_lookup(empty, 1, &owner, nodes, 2, &why), 0);
    CHECK_STR_EQ(owner, "");
    /* Wrong shapes. */
    CHECK_INT_EQ(hk_cluster_parse_lookup(reply, 0, &owner, nodes, 2, &why), HK_EINVAL);
    CHECK_INT_EQ(hk_cluster_parse_lookup(reply, 10, &owner, nodes, 2, &why), HK_EINVAL);
    const char *null_field[] = {"", "a", NULL, "0", "0", "0"};
    CHECK_INT_EQ(hk_cluster_parse_lookup(null_field, 6, &owner, nodes, 2, &why), HK_EINVAL);
    const char *bad_load[] = {"", "a", "ws://a", "-1", "0", "0"};
    CHECK_INT_EQ(hk_cluster_parse_lookup(bad_load, 6, &owner, nodes, 2, &why), HK_EINVAL);
    const char *big_load[] = {"", "a", "ws://a", "4294967296", "0", "0"};
    CHECK_INT_EQ(hk_cluster_parse_lookup(big_load, 6, &owner, nodes, 2, &why), HK_EINVAL);
    const char *bad_flag[] = {"", "a", "ws://a", "1", "0", "yes"};
    CHECK_INT_EQ(hk_cluster_parse_lookup(bad_flag, 6, &owner, nodes, 2, &why), HK_EINVAL);
    const char *no_id[] = {"", "", "ws://a", "1", "0", "0"};
    CHECK_INT_EQ(hk_cluster_parse_lookup(no_id, 6, &owner, nodes, 2, &why), HK_EINVAL);
    CHECK(why != NULL);
}

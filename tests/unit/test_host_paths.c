/* rtc/host: the paths of selected tuples (udp / tcp / relayed) and what happens when an
 * ICE-TCP connection closes: its transport forgets that tuple (one map lookup), its media
 * moves to another validated tuple or stops, and the path gauges follow. In memory:
 * fake links, no sockets. */
#include <arpa/inet.h>
#include <stun/usages/ice.h>

#include "server/io/tx.h"
#include "server/rtc/cert.h"
#include "server/rtc/host.h"
#include "server/rtc/transport.h"
#include "tests/unit/unit.h"

typedef struct {
    hk_link_t link;
    uint8_t slot[HK_TX_BUF_SIZE];
    int sent;
} sink_t;

static uint8_t *sink_slot(hk_link_t *link, const hk_tuple_t *to)
{
    (void)to;
    return ((sink_t *)link)->slot;
}

static void sink_commit(hk_link_t *link, size_t len)
{
    (void)len;
    ((sink_t *)link)->sent++;
}

static const hk_link_ops_t sink_ops = {.slot = sink_slot, .commit = sink_commit};

static void on_failed(void *user, int code, const char *reason)
{
    (void)user, (void)code, (void)reason;
}

static const hk_transport_events_t no_events = {.on_failed = on_failed};

/* A valid ICE check (with USE-CANDIDATE) from `from` for transport t. */
static void check_from(hk_rtc_host_t *host, hk_transport_t *t, const hk_tuple_t *from, uint64_t ms)
{
    StunAgent agent;
    static const uint16_t known[] = {STUN_ATTRIBUTE_USERNAME, STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                     STUN_ATTRIBUTE_PRIORITY, STUN_ATTRIBUTE_USE_CANDIDATE, 0};
    stun_agent_init(&agent, known, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    StunMessage msg;
    uint8_t m[512];
    char user[64];
    snprintf(user, sizeof user, "%s:cli", t->ice_ufrag);
    size_t len = stun_usage_ice_conncheck_create(
        &agent, &msg, m, sizeof m, (const uint8_t *)user, strlen(user), (const uint8_t *)t->ice_pwd,
        strlen(t->ice_pwd), true, true, 0x6e7f1eff, 0x0123456789abcdefULL, NULL,
        STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    CHECK(len > 0);
    hk_rtc_host_receive(host, m, len, from, ms * 1000);
}

static struct sockaddr_in addr(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    CHECK(inet_pton(AF_INET, ip, &a.sin_addr) == 1);
    return a;
}

TEST(host_paths_and_closed_tcp_tuples)
{
    hk_config_t config;
    memset(&config, 0, sizeof config);
    config.consent_timeout_ms = 30000;
    config.max_nacks_per_second = 1000;
    hk_cert_t cert;
    CHECK_INT_EQ(hk_cert_generate(&cert), 0);
    hk_rtc_host_t host;
    CHECK_INT_EQ(hk_rtc_host_init(&host, &config, &cert), 0);
    uint32_t relay = addr("192.0.2.3", 0).sin_addr.s_addr;
    hk_rtc_host_set_relays(&host, &relay, 1);
    sink_t udp = {.link.ops = &sink_ops}, tcp_a = {.link.ops = &sink_ops},
           tcp_b = {.link.ops = &sink_ops};
    struct sockaddr_in client = addr("198.51.100.7", 50000);
    struct sockaddr_in relayed = addr("192.0.2.3", 49152);
    hk_tuple_t over_udp = hk_tuple_udp4(&udp.link, &client);
    hk_tuple_t over_relay = hk_tuple_udp4(&udp.link, &relayed);
    hk_tuple_t over_tcp_a = hk_tuple_tcp4(&tcp_a.link, &client);
    hk_tuple_t over_tcp_b = hk_tuple_tcp4(&tcp_b.link, &client); /* the same peer address */
    CHECK_INT_EQ(hk_rtc_host_path(&host, &over_udp), HK_PATH_UDP);
    CHECK_INT_EQ(hk_rtc_host_path(&host, &over_relay), HK_PATH_RELAYED);
    CHECK_INT_EQ(hk_rtc_host_path(&host, &over_tcp_a), HK_PATH_TCP);
    CHECK_STR_EQ(hk_path_name(HK_PATH_RELAYED), "relayed");

    hk_transport_t *t = hk_transport_create(&host, &no_events, NULL, "t", 1000);
    hk_transport_t *other = hk_transport_create(&host, &no_events, NULL, "o", 1000);
    CHECK(t && other);
    /* A relayed check first, then ICE-TCP on two connections: each answer goes back on
     * the link its check came on. The first nominated tuple keeps the media: a later
     * nomination moves it only once that one's consent is gone (or after our own
     * consent check, which these clients do not answer). */
    check_from(&host, t, &over_relay, 1000);
    CHECK_INT_EQ(udp.sent, 1);
    CHECK(t->has_selected && t->path == HK_PATH_RELAYED);
    CHECK_INT_EQ(host.counters.selected_paths[HK_PATH_RELAYED], 1);
    check_from(&host, t, &over_tcp_a, 1001);
    check_from(&host, t, &over_tcp_b, 1002);
    CHECK_INT_EQ(tcp_a.sent, 1);
    CHECK_INT_EQ(tcp_b.sent, 1);
    CHECK_INT_EQ(t->n_tuples, 3);

    /* A tuple that is not the selected one closes: forgotten, the media stays. */
    hk_rtc_host_forget_tuple(&host, &over_tcp_a);
    CHECK_INT_EQ(t->n_tuples, 2);
    CHECK(!hk_transport_has_tuple(t, &over_tcp_a));
    CHECK(hk_map_get(&host.tuples, hk_tuple_key(&over_tcp_a)) == NULL);
    CHECK(hk_tuple_equal(&t->selected, &over_relay));
    CHECK_INT_EQ(host.counters.tuples_closed, 1);
    /* Unknown or already forgotten: nothing happens. */
    hk_rtc_host_forget_tuple(&host, &over_tcp_a);
    CHECK_INT_EQ(host.counters.tuples_closed, 1);

    /* The selected tuple goes (as if the relay's link closed): the media moves to the
     * tuple heard from last, and the gauges follow. */
    hk_rtc_host_forget_tuple(&host, &over_relay);
    CHECK(t->has_selected && hk_tuple_equal(&t->selected, &over_tcp_b));
    CHECK_INT_EQ(t->path, HK_PATH_TCP);
    CHECK_INT_EQ(host.counters.selected_paths[HK_PATH_RELAYED], 0);
    CHECK_INT_EQ(host.counters.selected_paths[HK_PATH_TCP], 1);
    /* The last one goes: nothing selected, nothing counted. */
    hk_rtc_host_forget_tuple(&host, &over_tcp_b);
    CHECK(!t->has_selected);
    CHECK_INT_EQ(t->n_tuples, 0);
    CHECK_INT_EQ(host.counters.selected_paths[HK_PATH_TCP], 0);
    CHECK(!hk_transport_can_send(t));

    /* The other transport's UDP selection is counted, and leaves with it. */
    check_from(&host, other, &over_udp, 1003);
    CHECK_INT_EQ(host.counters.selected_paths[HK_PATH_UDP], 1);
    hk_transport_destroy(other);
    CHECK_INT_EQ(host.counters.selected_paths[HK_PATH_UDP], 0);
    hk_transport_destroy(t);
    hk_rtc_host_free(&host);
    hk_cert_free(&cert);
}

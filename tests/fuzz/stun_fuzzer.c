/* Fuzz target `stun`: RFC 7983 demux, then the ICE-lite Binding handler with one
 * known ufrag ("Sv7q", password "0123456789abcdefABCDEF"), from an IPv4 and an
 * IPv6 source. Checks the handler's contract on every input. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/demux.h"
#include "server/stun.h"

#define FUZZ_UFRAG "Sv7q"
#define FUZZ_PWD   "0123456789abcdefABCDEF"

static int fuzz_peer;

static const char *lookup(void *arg, const char *local_ufrag, void **peer)
{
    (void)arg;
    if (strcmp(local_ufrag, FUZZ_UFRAG) != 0)
        return NULL;
    *peer = &fuzz_peer;
    return FUZZ_PWD;
}

static void handle(hk_stun_t *stun, const uint8_t *data, size_t size, const struct sockaddr *from,
                   socklen_t fromlen)
{
    uint8_t reply[HK_STUN_REPLY_MAX];
    size_t reply_len = sizeof reply;
    hk_stun_result_t res;
    int rc = hk_stun_handle(stun, data, size, from, fromlen, lookup, NULL, reply, &reply_len, &res);
    if (reply_len > sizeof reply)
        abort();
    if ((rc == HK_OK) != (res.status == HK_STUN_OK))
        abort();
    if (res.status == HK_STUN_OK) {
        /* Accepted: a framed Binding request, and a framed success response. */
        if (!hk_stun_is_binding_request(data, size) || res.peer != &fuzz_peer)
            abort();
        if (reply_len < 20 || reply[0] != 0x01 || reply[1] != 0x01)
            abort();
    }
    bool may_reply = res.status == HK_STUN_OK || res.status == HK_STUN_ROLE_CONFLICT ||
                     res.status == HK_STUN_UNKNOWN_ATTRIBUTE;
    if (reply_len > 0 && !may_reply)
        abort();
    if (reply_len > 0 && (size_t)((reply[2] << 8) | reply[3]) != reply_len - 20)
        abort();
    if (!may_reply && (res.peer != NULL || res.remote_ufrag[0] != '\0'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hk_stun_t *stun;
    if (!stun && !(stun = hk_stun_new()))
        abort();

    hk_demux_drop_t reason;
    hk_pkt_type_t type = hk_demux_classify(data, size, &reason);
    if ((type == HK_PKT_DROP) != (reason != HK_DEMUX_DROP_NONE))
        abort();
    (void)hk_demux_type_name(type);
    (void)hk_demux_drop_name(reason);
    if (hk_stun_is_binding_request(data, size) && type != HK_PKT_STUN)
        abort();

    /* The handler must also survive what the demux would have dropped. */
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(50000);
    v4.sin_addr.s_addr = htonl(0xc0000201);
    handle(stun, data, size, (const struct sockaddr *)&v4, sizeof v4);

    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(50001);
    inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
    handle(stun, data, size, (const struct sockaddr *)&v6, sizeof v6);
    return 0;
}

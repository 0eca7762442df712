/* Fuzz target `stun`: RFC 7983 demux, then the ICE-lite Binding handler with one
 * known ufrag ("Sv7q", password "0123456789abcdefABCDEF"), from an IPv4 and an
 * IPv6 source. Checks the handler's contract on every input.
 *
 * Random mutations almost never keep FINGERPRINT and MESSAGE-INTEGRITY right, which
 * would stop the fuzzer at the first check; so each input is also replayed with
 * both recomputed (when present) to reach USERNAME parsing, the lookup, the
 * attribute checks and the reply builders. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/bytes.h"
#include "common/error.h"
#include "server/proto/demux.h"
#include "server/proto/stun.h"

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

/* Rewrites MESSAGE-INTEGRITY (keyed with FUZZ_PWD) and a final FINGERPRINT of a
 * copy of the input. Returns false when there is nothing to repair. */
static bool repair(uint8_t *m, size_t len)
{
    if (len < 20 || len > HK_STUN_MAX_REQUEST)
        return false;
    size_t off = 20, mi = 0, fp = 0;
    while (len - off >= 4) {
        unsigned type = (unsigned)(m[off] << 8 | m[off + 1]);
        size_t alen = (size_t)(m[off + 2] << 8 | m[off + 3]);
        size_t padded = (alen + 3) & ~(size_t)3;
        if (len - off - 4 < padded)
            break;
        if (type == 0x0008 && alen == 20 && !mi)
            mi = off;
        if (type == 0x8028 && alen == 4 && off + 8 == len)
            fp = off;
        off += 4 + padded;
    }
    if (!mi && !fp)
        return false;
    uint8_t saved[2] = {m[2], m[3]};
    if (mi) {
        size_t body = mi + 24 - 20;
        m[2] = (uint8_t)(body >> 8);
        m[3] = (uint8_t)body;
        unsigned int mac_len = 0;
        HMAC(EVP_sha1(), FUZZ_PWD, (int)strlen(FUZZ_PWD), m, mi, m + mi + 4, &mac_len);
        m[2] = saved[0];
        m[3] = saved[1];
    }
    if (fp) {
        uint32_t crc = hk_crc32(m, fp) ^ 0x5354554eu;
        m[fp + 4] = (uint8_t)(crc >> 24);
        m[fp + 5] = (uint8_t)(crc >> 16);
        m[fp + 6] = (uint8_t)(crc >> 8);
        m[fp + 7] = (uint8_t)crc;
    }
    return true;
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

    if (size <= HK_STUN_MAX_REQUEST) {
        uint8_t *copy = malloc(size ? size : 1);
        if (!copy)
            abort();
        memcpy(copy, data, size);
        if (repair(copy, size)) {
            handle(stun, copy, size, (const struct sockaddr *)&v4, sizeof v4);
            handle(stun, copy, size, (const struct sockaddr *)&v6, sizeof v6);
        }
        free(copy);
    }
    return 0;
}

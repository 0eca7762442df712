#include "common/bytes.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/un.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stun/stunagent.h>
#include <stun/usages/ice.h>

#include "common/error.h"
#include "server/proto/stun.h"
#include "tests/unit/unit.h"

/* ---- Test-side STUN helpers: independent of libnice (OpenSSL HMAC, our CRC). ---- */

#define PWD_5769 "VOkJxbRl1RmTxUk/WvJxBt"

/* RFC 5769 §2.1 Sample Request, 108 bytes. */
static const uint8_t rfc5769_request[] = {
    0x00, 0x01, 0x00, 0x58, /* Binding request, length 88 */
    0x21, 0x12, 0xa4, 0x42, /* magic cookie */
    0xb7, 0xe7, 0xa7, 0x01, /* transaction id */
    0xbc, 0x34, 0xd6, 0x86, /* ... */
    0xfa, 0x87, 0xdf, 0xae, /* ... */
    0x80, 0x22, 0x00, 0x10, /* 20: SOFTWARE, 16 bytes */
    0x53, 0x54, 0x55, 0x4e, /* "STUN" */
    0x20, 0x74, 0x65, 0x73, /* " tes" */
    0x74, 0x20, 0x63, 0x6c, /* "t cl" */
    0x69, 0x65, 0x6e, 0x74, /* "ient" */
    0x00, 0x24, 0x00, 0x04, /* 40: PRIORITY */
    0x6e, 0x00, 0x01, 0xff, /* 0x6e0001ff */
    0x80, 0x29, 0x00, 0x08, /* 48: ICE-CONTROLLED, tie-breaker: */
    0x93, 0x2f, 0xf9, 0xb1, /* 0x932ff9b1 */
    0x51, 0x26, 0x3b, 0x36, /* 51263b36 */
    0x00, 0x06, 0x00, 0x09, /* 60: USERNAME, 9 bytes */
    0x65, 0x76, 0x74, 0x6a, /* "evtj" server ufrag */
    0x3a, 0x68, 0x36, 0x76, /* ":h6v" */
    0x59, 0x20, 0x20, 0x20, /* "Y" + 3 padding bytes */
    0x00, 0x08, 0x00, 0x14, /* 76: MESSAGE-INTEGRITY */
    0x9a, 0xea, 0xa7, 0x0c, /* HMAC-SHA1 */
    0xbf, 0xd8, 0xcb, 0x56, /* ... */
    0x78, 0x1e, 0xf2, 0xb5, /* ... */
    0xb2, 0xd3, 0xf2, 0x49, /* ... */
    0xc1, 0xb5, 0x71, 0xa2, /* ... */
    0x80, 0x28, 0x00, 0x04, /* 100: FINGERPRINT */
    0xe5, 0x7a, 0x3b, 0xcf, /* CRC32 ^ 0x5354554e */
};

/* RFC 5769 §2.2 Sample IPv4 Response: a response is never accepted. */
static const uint8_t rfc5769_response_ipv4[] = {
    0x01, 0x01, 0x00, 0x3c, /* Binding success, length 60 */
    0x21, 0x12, 0xa4, 0x42, /* magic cookie */
    0xb7, 0xe7, 0xa7, 0x01, /* transaction id */
    0xbc, 0x34, 0xd6, 0x86, /* ... */
    0xfa, 0x87, 0xdf, 0xae, /* ... */
    0x80, 0x22, 0x00, 0x0b, /* SOFTWARE, 11 bytes */
    0x74, 0x65, 0x73, 0x74, /* "test" */
    0x20, 0x76, 0x65, 0x63, /* " vec" */
    0x74, 0x6f, 0x72, 0x20, /* "tor" + padding */
    0x00, 0x20, 0x00, 0x08, /* XOR-MAPPED-ADDRESS */
    0x00, 0x01, 0xa1, 0x47, /* IPv4, port 32853 ^ 0x2112 */
    0xe1, 0x12, 0xa6, 0x43, /* 192.0.2.1 ^ 0x2112a442 */
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0x2b, 0x91, 0xf5, 0x99, /* ... */
    0xfd, 0x9e, 0x90, 0xc3, /* ... */
    0x8c, 0x74, 0x89, 0xf9, /* ... */
    0x2a, 0xf9, 0xba, 0x53, /* ... */
    0xf0, 0x6b, 0xe7, 0xd7, /* ... */
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xc0, 0x7d, 0x4c, 0x96, /* ... */
};

static const uint8_t tid_5769[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                     0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

/* CRC-32 (ISO 3309, reflected 0xEDB88320), as FINGERPRINT uses (RFC 5389 §15.5). */
/* Rewrites the FINGERPRINT value of a message ending with one. */
static void fix_fingerprint(uint8_t *m, size_t len)
{
    hk_wr32(m + len - 4, hk_crc32(m, len - 8) ^ 0x5354554eu);
}

/* Offset of the first attribute `type` (stopping at none), or 0. */
static size_t find_attr(const uint8_t *m, size_t len, uint16_t type, uint16_t *alen)
{
    size_t off = 20;
    while (off + 4 <= len) {
        uint16_t t = hk_rd16(m + off), l = hk_rd16(m + off + 2);
        if (t == type) {
            *alen = l;
            return off;
        }
        off += 4 + (((size_t)l + 3) & ~(size_t)3);
    }
    return 0;
}

/* Checks MESSAGE-INTEGRITY (RFC 5389 §15.4: HMAC over the message up to the
 * attribute, with the length field counting up to its end) and FINGERPRINT. */
static void check_integrity_and_fingerprint(const uint8_t *m, size_t len, const char *pwd)
{
    uint16_t alen = 0;
    size_t mi = find_attr(m, len, 0x0008, &alen);
    CHECK(mi != 0);
    CHECK_INT_EQ(alen, 20);
    CHECK_INT_EQ(mi + 24 + 8, len); /* MI then FINGERPRINT, nothing else */
    uint8_t copy[2048];
    memcpy(copy, m, mi);
    hk_wr16(copy + 2, (uint16_t)(mi + 24 - 20));
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    CHECK(HMAC(EVP_sha1(), pwd, (int)strlen(pwd), copy, mi, mac, &mac_len) != NULL);
    CHECK_INT_EQ(mac_len, 20);
    CHECK_MEM_EQ(m + mi + 4, mac, 20);
    CHECK_INT_EQ(hk_rd16(m + len - 8), 0x8028);
    CHECK_INT_EQ(hk_rd32(m + len - 4), hk_crc32(m, len - 8) ^ 0x5354554eu);
}

/* A Binding request as Chromium sends it to an ICE-lite server:
 *   USERNAME, GOOG-NETWORK-INFO (0xC057, optional), ICE-CONTROLLING (tie-breaker),
 *   USE-CANDIDATE (when nominating), PRIORITY, MESSAGE-INTEGRITY, FINGERPRINT.
 * Fields allow leaving things out or breaking them for the negative tests. */
typedef struct {
    uint16_t type;        /* 0x0001 unless set */
    const char *username; /* NULL: no USERNAME */
    const char *pwd;      /* NULL: no MESSAGE-INTEGRITY */
    bool no_fingerprint;
    bool use_candidate;
    bool controlled;     /* ICE-CONTROLLED instead of ICE-CONTROLLING */
    uint16_t extra_attr; /* appended before MI with 4 zero bytes when non-zero */
} req_opts_t;

static size_t put_attr(uint8_t *m, size_t off, uint16_t type, const void *v, uint16_t len)
{
    hk_wr16(m + off, type);
    hk_wr16(m + off + 2, len);
    if (len)
        memcpy(m + off + 4, v, len);
    size_t padded = ((size_t)len + 3) & ~(size_t)3;
    memset(m + off + 4 + len, 0, padded - len);
    return off + 4 + padded;
}

static size_t build_request(uint8_t *m, const req_opts_t *o)
{
    hk_wr16(m, o->type ? o->type : 0x0001);
    hk_wr32(m + 4, 0x2112a442);
    memcpy(m + 8, tid_5769, 12);
    size_t off = 20;
    if (o->username)
        off = put_attr(m, off, 0x0006, o->username, (uint16_t)strlen(o->username));
    static const uint8_t netinfo[4] = {0x00, 0x01, 0x00, 0x0a}; /* network id 1, cost 10 */
    off = put_attr(m, off, 0xc057, netinfo, 4);
    static const uint8_t tie[8] = {0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81};
    off = put_attr(m, off, o->controlled ? 0x8029 : 0x802a, tie, 8);
    if (o->use_candidate)
        off = put_attr(m, off, 0x0025, NULL, 0);
    static const uint8_t prio[4] = {0x6e, 0x7f, 0x1e, 0xff}; /* prflx, RFC 8445 §5.1.2 */
    off = put_attr(m, off, 0x0024, prio, 4);
    if (o->extra_attr) {
        static const uint8_t zero[4] = {0};
        off = put_attr(m, off, o->extra_attr, zero, 4);
    }
    if (o->pwd) {
        hk_wr16(m + 2, (uint16_t)(off + 24 - 20));
        unsigned int mac_len = 0;
        uint8_t mac[EVP_MAX_MD_SIZE];
        HMAC(EVP_sha1(), o->pwd, (int)strlen(o->pwd), m, off, mac, &mac_len);
        off = put_attr(m, off, 0x0008, mac, 20);
    }
    if (!o->no_fingerprint) {
        hk_wr16(m + 2, (uint16_t)(off + 8 - 20));
        uint8_t zero[4] = {0};
        off = put_attr(m, off, 0x8028, zero, 4);
        fix_fingerprint(m, off);
    } else {
        hk_wr16(m + 2, (uint16_t)(off - 20));
    }
    return off;
}

/* ---- Lookup fixture: one known ufrag. ---- */

typedef struct {
    const char *ufrag;
    const char *pwd;
    int calls;
    char seen[300];
} fixture_t;

static int peer_marker;

static const char *lookup(void *arg, const char *local_ufrag, void **peer)
{
    fixture_t *f = arg;
    f->calls++;
    snprintf(f->seen, sizeof f->seen, "%s", local_ufrag);
    if (strcmp(local_ufrag, f->ufrag) != 0)
        return NULL;
    *peer = &peer_marker;
    return f->pwd;
}

static struct sockaddr_in v4_source(void)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(32853);
    inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
    return a;
}

typedef struct {
    hk_stun_t *stun;
    fixture_t fx;
    uint8_t reply[HK_STUN_REPLY_MAX];
    size_t reply_len;
    hk_stun_result_t res;
    int rc;
} run_t;

static void run(run_t *r, const uint8_t *req, size_t len, const struct sockaddr *from,
                socklen_t fromlen)
{
    r->reply_len = sizeof r->reply;
    memset(r->reply, 0xee, sizeof r->reply);
    r->rc = hk_stun_handle(r->stun, req, len, from, fromlen, lookup, &r->fx, r->reply,
                           &r->reply_len, &r->res);
}

static void run_v4(run_t *r, const uint8_t *req, size_t len)
{
    struct sockaddr_in a = v4_source();
    run(r, req, len, (const struct sockaddr *)&a, sizeof a);
}

static void setup(run_t *r, const char *ufrag, const char *pwd)
{
    memset(r, 0, sizeof *r);
    r->stun = hk_stun_new();
    CHECK(r->stun != NULL);
    r->fx.ufrag = ufrag;
    r->fx.pwd = pwd;
}

/* Expects a refusal with `status`, HK_E* `rc` and nothing to send. */
static void expect_refused(const run_t *r, hk_stun_status_t status, int rc)
{
    if (r->res.status != status)
        fprintf(stderr, "status %s, expected %s\n", hk_stun_status_name(r->res.status),
                hk_stun_status_name(status));
    CHECK_INT_EQ(r->res.status, status);
    CHECK_INT_EQ(r->rc, rc);
    CHECK_INT_EQ(r->reply_len, 0);
    CHECK(r->res.peer == NULL);
    CHECK_STR_EQ(r->res.remote_ufrag, "");
}

/* ---- RFC 5769 vectors ---- */

TEST(stun_rfc5769_request_authenticates)
{
    run_t r;
    setup(&r, "evtj", PWD_5769);
    CHECK(hk_stun_is_binding_request(rfc5769_request, sizeof rfc5769_request));
    run_v4(&r, rfc5769_request, sizeof rfc5769_request);
    /* USERNAME, MESSAGE-INTEGRITY and FINGERPRINT pass: the lookup saw "evtj" and
     * the peer and remote ufrag are reported. The vector carries ICE-CONTROLLED,
     * which an ICE-lite (always controlled) server answers with 487 Role Conflict,
     * authenticated with the same password. */
    CHECK_INT_EQ(r.fx.calls, 1);
    CHECK_STR_EQ(r.fx.seen, "evtj");
    CHECK_INT_EQ(r.res.status, HK_STUN_ROLE_CONFLICT);
    CHECK_INT_EQ(r.rc, HK_EPERM);
    CHECK(r.res.peer == &peer_marker);
    CHECK_STR_EQ(r.res.remote_ufrag, "h6vY");
    CHECK_INT_EQ(r.res.priority, 0x6e0001ff);
    CHECK(!r.res.use_candidate);
    CHECK(!r.res.ice_controlling);
    CHECK_MEM_EQ(r.res.transaction_id, tid_5769, 12);

    CHECK(r.reply_len > 20);
    CHECK_INT_EQ(hk_rd16(r.reply), 0x0111); /* Binding error response */
    CHECK_INT_EQ(hk_rd16(r.reply + 2), r.reply_len - 20);
    CHECK_INT_EQ(hk_rd32(r.reply + 4), 0x2112a442);
    CHECK_MEM_EQ(r.reply + 8, tid_5769, 12);
    uint16_t alen = 0;
    size_t ec = find_attr(r.reply, r.reply_len, 0x0009, &alen); /* ERROR-CODE */
    CHECK(ec != 0);
    CHECK(alen >= 4);
    CHECK_INT_EQ(r.reply[ec + 4 + 2] & 7, 4); /* class 4 */
    CHECK_INT_EQ(r.reply[ec + 4 + 3], 87);    /* number 87 */
    check_integrity_and_fingerprint(r.reply, r.reply_len, PWD_5769);
    hk_stun_free(r.stun);
}

TEST(stun_rfc5769_request_any_altered_byte_is_refused)
{
    run_t r;
    setup(&r, "evtj", PWD_5769);
    uint8_t m[sizeof rfc5769_request];
    const size_t len = sizeof m;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, rfc5769_request, len);
            m[i] ^= (uint8_t)(1u << bit);
            run_v4(&r, m, len);
            CHECK(r.res.status != HK_STUN_OK && r.res.status != HK_STUN_ROLE_CONFLICT);
            CHECK_INT_EQ(r.reply_len, 0);
            /* Inside the transaction id and attribute values, FINGERPRINT (checked
             * first) catches the change. */
            bool value = (i >= 8 && i < 20) || (i >= 24 && i < 40) || (i >= 44 && i < 48) ||
                         (i >= 52 && i < 60) || (i >= 64 && i < 76) || (i >= 80 && i < 100) ||
                         i >= 104;
            if (value)
                CHECK_INT_EQ(r.res.status, HK_STUN_BAD_FINGERPRINT);
        }
    }
    hk_stun_free(r.stun);
}

TEST(stun_rfc5769_request_altered_with_fixed_fingerprint_fails_integrity)
{
    run_t r;
    setup(&r, "evtj", PWD_5769);
    uint8_t m[sizeof rfc5769_request];
    const size_t len = sizeof m;
    for (size_t i = 8; i < 100; i++) {
        bool header = (i >= 20 && i < 24) || (i >= 40 && i < 44) || (i >= 48 && i < 52) ||
                      (i >= 60 && i < 64) || (i >= 76 && i < 80);
        if (header)
            continue;
        memcpy(m, rfc5769_request, len);
        m[i] ^= 0x01;
        fix_fingerprint(m, len);
        run_v4(&r, m, len);
        CHECK_INT_EQ(r.reply_len, 0);
        if (i >= 64 && i < 68) /* "evtj" -> another server ufrag */
            CHECK_INT_EQ(r.res.status, HK_STUN_UNKNOWN_UFRAG);
        else if (i == 68) /* ':' -> ';' */
            CHECK_INT_EQ(r.res.status, HK_STUN_BAD_USERNAME);
        else
            CHECK_INT_EQ(r.res.status, HK_STUN_BAD_INTEGRITY);
    }
    hk_stun_free(r.stun);
}

TEST(stun_rfc5769_wrong_password_and_ufrag)
{
    run_t r;
    setup(&r, "evtj", "VOkJxbRl1RmTxUk/WvJxBu");
    run_v4(&r, rfc5769_request, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_BAD_INTEGRITY, HK_EPERM);
    hk_stun_free(r.stun);

    setup(&r, "evtk", PWD_5769);
    run_v4(&r, rfc5769_request, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_UNKNOWN_UFRAG, HK_EPERM);
    CHECK_STR_EQ(r.fx.seen, "evtj");
    hk_stun_free(r.stun);

    setup(&r, "evtj", ""); /* an empty password is never a key */
    run_v4(&r, rfc5769_request, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_UNKNOWN_UFRAG, HK_EPERM);
    hk_stun_free(r.stun);
}

TEST(stun_rfc5769_response_is_not_a_request)
{
    run_t r;
    setup(&r, "evtj", PWD_5769);
    CHECK(!hk_stun_is_binding_request(rfc5769_response_ipv4, sizeof rfc5769_response_ipv4));
    run_v4(&r, rfc5769_response_ipv4, sizeof rfc5769_response_ipv4);
    expect_refused(&r, HK_STUN_NOT_BINDING_REQUEST, HK_EINVAL);
    CHECK_INT_EQ(r.fx.calls, 0);
    hk_stun_free(r.stun);
}

/* ---- Success responses ---- */

TEST(stun_reply_ipv4_xor_mapped_address)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {
        .username = "Sv7q:cL1e", .pwd = "0123456789abcdefABCDEF", .use_candidate = true};
    size_t len = build_request(m, &o);
    CHECK(hk_stun_is_binding_request(m, len));
    run_v4(&r, m, len);
    CHECK_INT_EQ(r.res.status, HK_STUN_OK);
    CHECK_INT_EQ(r.rc, HK_OK);
    CHECK(r.res.peer == &peer_marker);
    CHECK_STR_EQ(r.res.remote_ufrag, "cL1e");
    CHECK(r.res.use_candidate);
    CHECK(r.res.ice_controlling);
    CHECK_INT_EQ(r.res.priority, 0x6e7f1eff);

    /* Everything but the MESSAGE-INTEGRITY and FINGERPRINT values is fixed. */
    static const uint8_t expected[] = {
        0x01, 0x01, 0x00, 0x48, /* Binding success, length 72 */
        0x21, 0x12, 0xa4, 0x42, /* magic cookie */
        0xb7, 0xe7, 0xa7, 0x01, /* the request's transaction id */
        0xbc, 0x34, 0xd6, 0x86, /* ... */
        0xfa, 0x87, 0xdf, 0xae, /* ... */
        0x80, 0x22, 0x00, 0x06, /* SOFTWARE, 6 bytes */
        0x68, 0x69, 0x73, 0x6f, /* "hiso" */
        0x6b, 0x61, 0x20, 0x20, /* "ka" + padding (libnice pads with spaces) */
        0x00, 0x20, 0x00, 0x08, /* XOR-MAPPED-ADDRESS */
        0x00, 0x01, 0xa1, 0x47, /* IPv4, port 32853 ^ 0x2112 */
        0xe1, 0x12, 0xa6, 0x43, /* 192.0.2.1 ^ 0x2112a442 (= RFC 5769 §2.2) */
        0x00, 0x06, 0x00, 0x09, /* USERNAME echoed, 9 bytes */
        0x53, 0x76, 0x37, 0x71, /* "Sv7q" */
        0x3a, 0x63, 0x4c, 0x31, /* ":cL1" */
        0x65, 0x20, 0x20, 0x20, /* "e" + padding */
        0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY, value checked below */
    };
    CHECK_INT_EQ(r.reply_len, sizeof expected + 20 + 8);
    CHECK_MEM_EQ(r.reply, expected, sizeof expected);
    check_integrity_and_fingerprint(r.reply, r.reply_len, "0123456789abcdefABCDEF");
    hk_stun_free(r.stun);
}

TEST(stun_reply_ipv6_xor_mapped_address)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {.username = "Sv7q:cL1e", .pwd = "0123456789abcdefABCDEF"};
    size_t len = build_request(m, &o);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(32853);
    inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", &a.sin6_addr);
    run(&r, m, len, (const struct sockaddr *)&a, sizeof a);
    CHECK_INT_EQ(r.res.status, HK_STUN_OK);
    CHECK(!r.res.use_candidate);

    /* With RFC 5769's transaction id, the attribute equals RFC 5769 §2.3's. */
    static const uint8_t xma[] = {
        0x00, 0x20, 0x00, 0x14, /* XOR-MAPPED-ADDRESS, 20 bytes */
        0x00, 0x02, 0xa1, 0x47, /* IPv6, port 32853 ^ 0x2112 */
        0x01, 0x13, 0xa9, 0xfa, /* 2001:0db8:1234:5678:0011:2233:4455:6677 */
        0xa5, 0xd3, 0xf1, 0x79, /* ^ magic cookie || transaction id */
        0xbc, 0x25, 0xf4, 0xb5, /* ... */
        0xbe, 0xd2, 0xb9, 0xd9, /* ... */
    };
    uint16_t alen = 0;
    size_t off = find_attr(r.reply, r.reply_len, 0x0020, &alen);
    CHECK(off != 0);
    CHECK_MEM_EQ(r.reply + off, xma, sizeof xma);
    CHECK_INT_EQ(hk_rd16(r.reply), 0x0101);
    CHECK_MEM_EQ(r.reply + 8, tid_5769, 12);
    check_integrity_and_fingerprint(r.reply, r.reply_len, "0123456789abcdefABCDEF");
    hk_stun_free(r.stun);
}

TEST(stun_use_candidate_detection)
{
    run_t r;
    setup(&r, "abcd", "pwpwpwpwpwpwpwpwpwpwpw");
    uint8_t m[512];
    req_opts_t o = {.username = "abcd:wxyz", .pwd = "pwpwpwpwpwpwpwpwpwpwpw"};
    run_v4(&r, m, build_request(m, &o));
    CHECK_INT_EQ(r.res.status, HK_STUN_OK);
    CHECK(!r.res.use_candidate);
    o.use_candidate = true;
    run_v4(&r, m, build_request(m, &o));
    CHECK_INT_EQ(r.res.status, HK_STUN_OK);
    CHECK(r.res.use_candidate);
    hk_stun_free(r.stun);
}

TEST(stun_libnice_client_request_accepted)
{
    /* Cross-check with libnice's own client side (a separate agent). */
    StunAgent client;
    static const uint16_t known[] = {STUN_ATTRIBUTE_USERNAME, STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                     STUN_ATTRIBUTE_PRIORITY, STUN_ATTRIBUTE_USE_CANDIDATE, 0};
    stun_agent_init(&client, known, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    StunMessage msg;
    uint8_t m[512];
    static const char user[] = "srv1:cli1", pwd[] = "ThePasswordIs22Chars++";
    size_t len = stun_usage_ice_conncheck_create(&client, &msg, m, sizeof m, (const uint8_t *)user,
                                                 strlen(user), (const uint8_t *)pwd, strlen(pwd),
                                                 true, true, 0x6e7f1eff, 0x0123456789abcdefULL,
                                                 NULL, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    CHECK(len > 0);
    StunTransactionId id;
    stun_message_id(&msg, id);
    stun_agent_forget_transaction(&client, id);

    run_t r;
    setup(&r, "srv1", pwd);
    run_v4(&r, m, len);
    CHECK_INT_EQ(r.res.status, HK_STUN_OK);
    CHECK(r.res.use_candidate);
    CHECK(r.res.ice_controlling);
    CHECK_STR_EQ(r.res.remote_ufrag, "cli1");
    check_integrity_and_fingerprint(r.reply, r.reply_len, pwd);
    hk_stun_free(r.stun);
}

/* ---- Refusals ---- */

TEST(stun_wrong_ufrag_and_password)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {.username = "Xv7q:cL1e", .pwd = "0123456789abcdefABCDEF"};
    run_v4(&r, m, build_request(m, &o));
    expect_refused(&r, HK_STUN_UNKNOWN_UFRAG, HK_EPERM);
    CHECK_STR_EQ(r.fx.seen, "Xv7q");

    o.username = "Sv7q:cL1e";
    o.pwd = "0123456789abcdefABCDEG";
    run_v4(&r, m, build_request(m, &o));
    expect_refused(&r, HK_STUN_BAD_INTEGRITY, HK_EPERM);
    hk_stun_free(r.stun);
}

TEST(stun_bad_usernames)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[1600];
    static const char *const bad[] = {
        "Sv7q",       /* no ':' */
        "Sv7q:",      /* empty client ufrag */
        ":cL1e",      /* empty server ufrag */
        "Sv7q:cL 1e", /* space is not an ice-char */
        "Sv7q:cL1e:", /* second ':' */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req_opts_t o = {.username = bad[i], .pwd = "0123456789abcdefABCDEF"};
        run_v4(&r, m, build_request(m, &o));
        expect_refused(&r, HK_STUN_BAD_USERNAME, HK_EPERM);
    }
    CHECK_INT_EQ(r.fx.calls, 0);

    /* A 257-character server ufrag is over RFC 8839's limit. */
    char longname[300];
    memset(longname, 'a', 257);
    memcpy(longname + 257, ":cL1e", 6);
    req_opts_t o = {.username = longname, .pwd = "0123456789abcdefABCDEF"};
    run_v4(&r, m, build_request(m, &o));
    expect_refused(&r, HK_STUN_BAD_USERNAME, HK_EPERM);

    /* Missing USERNAME. */
    o.username = NULL;
    run_v4(&r, m, build_request(m, &o));
    expect_refused(&r, HK_STUN_BAD_USERNAME, HK_EPERM);
    hk_stun_free(r.stun);
}

TEST(stun_missing_or_wrong_integrity_and_fingerprint)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {.username = "Sv7q:cL1e"}; /* no MESSAGE-INTEGRITY */
    run_v4(&r, m, build_request(m, &o));
    expect_refused(&r, HK_STUN_BAD_INTEGRITY, HK_EPERM);

    o.pwd = "0123456789abcdefABCDEF";
    o.no_fingerprint = true;
    run_v4(&r, m, build_request(m, &o));
    expect_refused(&r, HK_STUN_BAD_FINGERPRINT, HK_EPERM);
    CHECK_INT_EQ(r.fx.calls, 0);

    o.no_fingerprint = false;
    size_t len = build_request(m, &o);
    m[len - 1] ^= 0xff; /* wrong CRC */
    run_v4(&r, m, len);
    expect_refused(&r, HK_STUN_BAD_FINGERPRINT, HK_EPERM);
    CHECK_INT_EQ(r.fx.calls, 0);
    hk_stun_free(r.stun);
}

TEST(stun_malformed_framing)
{
    run_t r;
    setup(&r, "evtj", PWD_5769);
    uint8_t m[256];

    /* Under 20 bytes: every prefix of the sample request. */
    for (size_t n = 0; n < 20; n++) {
        run_v4(&r, rfc5769_request, n);
        expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    }
    /* Length field not len - 20: one too many/few, and the datagram truncated. */
    memcpy(m, rfc5769_request, sizeof rfc5769_request);
    hk_wr16(m + 2, 0x5c);
    run_v4(&r, m, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    hk_wr16(m + 2, 0x54);
    run_v4(&r, m, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    run_v4(&r, rfc5769_request, sizeof rfc5769_request - 4);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    /* Length field == len - 20 but not a multiple of 4. */
    memcpy(m, rfc5769_request, sizeof rfc5769_request);
    m[sizeof rfc5769_request] = 0;
    m[sizeof rfc5769_request + 1] = 0;
    hk_wr16(m + 2, 0x5a);
    run_v4(&r, m, sizeof rfc5769_request + 2);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    CHECK(!hk_stun_is_binding_request(m, sizeof rfc5769_request + 2));
    /* An attribute running past the end: USERNAME claims 200 bytes. */
    memcpy(m, rfc5769_request, sizeof rfc5769_request);
    hk_wr16(m + 62, 200);
    run_v4(&r, m, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    /* The last attribute header cut: length field covers 2 bytes of a header. */
    memcpy(m, rfc5769_request, 20);
    hk_wr16(m + 2, 4);
    m[20] = 0x00, m[21] = 0x06, m[22] = 0x00, m[23] = 0x08;
    run_v4(&r, m, 24);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    /* No magic cookie (RFC 3489 style). */
    memcpy(m, rfc5769_request, sizeof rfc5769_request);
    hk_wr32(m + 4, 0x2112a443);
    run_v4(&r, m, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    /* First two bits set (not STUN at all). */
    memcpy(m, rfc5769_request, sizeof rfc5769_request);
    m[0] |= 0x80;
    run_v4(&r, m, sizeof rfc5769_request);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    CHECK_INT_EQ(r.fx.calls, 0);
    hk_stun_free(r.stun);
}

TEST(stun_malformed_attribute_sizes)
{
    /* MESSAGE-INTEGRITY of 4 bytes at the end would make libnice compare 20 bytes
     * past the datagram; FINGERPRINT must be 4 bytes and last. */
    run_t r;
    setup(&r, "evtj", PWD_5769);
    uint8_t m[128];
    memcpy(m, rfc5769_request, 80);
    hk_wr16(m + 2, 64);
    hk_wr16(m + 78, 4); /* MI length 4 */
    memset(m + 80, 0, 4);
    run_v4(&r, m, 84);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);

    memcpy(m, rfc5769_request, sizeof rfc5769_request);
    memcpy(m + 108, "\x80\x22\x00\x00", 4); /* empty SOFTWARE after FINGERPRINT */
    hk_wr16(m + 2, 92);
    run_v4(&r, m, 112);
    expect_refused(&r, HK_STUN_MALFORMED, HK_EINVAL);
    hk_stun_free(r.stun);
}

TEST(stun_other_messages_refused)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    static const struct {
        uint16_t type;
        hk_stun_status_t status;
    } cases[] = {
        {0x0011, HK_STUN_INDICATION},          /* Binding indication */
        {0x0101, HK_STUN_NOT_BINDING_REQUEST}, /* Binding success */
        {0x0111, HK_STUN_NOT_BINDING_REQUEST}, /* Binding error */
        {0x0003, HK_STUN_NOT_BINDING_REQUEST}, /* TURN Allocate request */
        {0x0115, HK_STUN_NOT_BINDING_REQUEST}, /* libnice's "data indication" quirk */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req_opts_t o = {
            .type = cases[i].type, .username = "Sv7q:cL1e", .pwd = "0123456789abcdefABCDEF"};
        size_t len = build_request(m, &o);
        CHECK(!hk_stun_is_binding_request(m, len));
        run_v4(&r, m, len);
        expect_refused(&r, cases[i].status, HK_EINVAL);
    }
    CHECK_INT_EQ(r.fx.calls, 0);
    hk_stun_free(r.stun);
}

TEST(stun_ice_controlled_gets_487)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {.username = "Sv7q:cL1e", .pwd = "0123456789abcdefABCDEF", .controlled = true};
    run_v4(&r, m, build_request(m, &o));
    CHECK_INT_EQ(r.res.status, HK_STUN_ROLE_CONFLICT);
    CHECK_INT_EQ(r.rc, HK_EPERM);
    CHECK_INT_EQ(hk_rd16(r.reply), 0x0111);
    check_integrity_and_fingerprint(r.reply, r.reply_len, "0123456789abcdefABCDEF");
    hk_stun_free(r.stun);
}

TEST(stun_unknown_mandatory_attribute_gets_420)
{
    run_t r;
    setup(&r, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {.username = "Sv7q:cL1e", .pwd = "0123456789abcdefABCDEF", .extra_attr = 0x7001};
    run_v4(&r, m, build_request(m, &o));
    CHECK_INT_EQ(r.res.status, HK_STUN_UNKNOWN_ATTRIBUTE);
    CHECK_INT_EQ(r.rc, HK_EPERM);
    CHECK_INT_EQ(hk_rd16(r.reply), 0x0111);
    uint16_t alen = 0;
    size_t off = find_attr(r.reply, r.reply_len, 0x000a, &alen); /* UNKNOWN-ATTRIBUTES */
    CHECK(off != 0);
    CHECK_INT_EQ(alen, 2);
    CHECK_INT_EQ(hk_rd16(r.reply + off + 4), 0x7001);
    check_integrity_and_fingerprint(r.reply, r.reply_len, "0123456789abcdefABCDEF");

    /* An unknown optional attribute (>= 0x8000) is fine. */
    o.extra_attr = 0xc0de;
    run_v4(&r, m, build_request(m, &o));
    CHECK_INT_EQ(r.res.status, HK_STUN_OK);
    hk_stun_free(r.stun);
}

TEST(stun_bad_address_and_small_buffer)
{
    run_t r;
    setup(&r, "evtj", PWD_5769);
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    run(&r, rfc5769_request, sizeof rfc5769_request, (const struct sockaddr *)&un, sizeof un);
    expect_refused(&r, HK_STUN_BAD_ADDRESS, HK_EINVAL);
    struct sockaddr_in a = v4_source();
    run(&r, rfc5769_request, sizeof rfc5769_request, (const struct sockaddr *)&a, 8);
    expect_refused(&r, HK_STUN_BAD_ADDRESS, HK_EINVAL);
    run(&r, rfc5769_request, sizeof rfc5769_request, NULL, 0);
    expect_refused(&r, HK_STUN_BAD_ADDRESS, HK_EINVAL);

    uint8_t small[HK_STUN_REPLY_MAX - 1];
    size_t small_len = sizeof small;
    hk_stun_result_t res;
    int rc =
        hk_stun_handle(r.stun, rfc5769_request, sizeof rfc5769_request, (const struct sockaddr *)&a,
                       sizeof a, lookup, &r.fx, small, &small_len, &res);
    CHECK_INT_EQ(rc, HK_ENOSPC);
    CHECK_INT_EQ(res.status, HK_STUN_NO_SPACE);
    CHECK_INT_EQ(small_len, 0);
    hk_stun_free(r.stun);
}

TEST(stun_contexts_are_independent)
{
    /* Two contexts, interleaved, give identical answers: no shared state. */
    run_t a, b;
    setup(&a, "Sv7q", "0123456789abcdefABCDEF");
    setup(&b, "Sv7q", "0123456789abcdefABCDEF");
    uint8_t m[512];
    req_opts_t o = {.username = "Sv7q:cL1e", .pwd = "0123456789abcdefABCDEF"};
    size_t len = build_request(m, &o);
    for (int i = 0; i < 300; i++) { /* more than libnice's 200 saved transactions */
        run_v4(&a, m, len);
        run_v4(&b, m, len);
        CHECK_INT_EQ(a.res.status, HK_STUN_OK);
        CHECK_INT_EQ(a.reply_len, b.reply_len);
        CHECK_MEM_EQ(a.reply, b.reply, a.reply_len);
    }
    hk_stun_free(a.stun);
    hk_stun_free(b.stun);
    hk_stun_free(NULL);
}

TEST(stun_status_names)
{
    for (int s = 0; s < HK_STUN_STATUS_COUNT; s++) {
        const char *name = hk_stun_status_name((hk_stun_status_t)s);
        CHECK(name != NULL && strcmp(name, "unknown") != 0);
        for (int t = 0; t < s; t++)
            CHECK(strcmp(name, hk_stun_status_name((hk_stun_status_t)t)) != 0);
    }
}

/* ---- Consent checks the server sends (hk_stun_write_check, hk_stun_is_check_response) ---- */

TEST(stun_check_response_rfc5769)
{
    /* RFC 5769 §2.2: a success response keyed with the sample password. */
    CHECK(hk_stun_is_check_response(rfc5769_response_ipv4, sizeof rfc5769_response_ipv4, tid_5769,
                                    PWD_5769));
    CHECK(!hk_stun_is_check_response(rfc5769_response_ipv4, sizeof rfc5769_response_ipv4, tid_5769,
                                     "wrong-password-wrong-pw"));
    uint8_t other_tid[12];
    memcpy(other_tid, tid_5769, sizeof other_tid);
    other_tid[11] ^= 1;
    CHECK(!hk_stun_is_check_response(rfc5769_response_ipv4, sizeof rfc5769_response_ipv4, other_tid,
                                     PWD_5769));
    /* Any altered byte, truncation, or the request itself: refused. */
    uint8_t m[sizeof rfc5769_response_ipv4];
    for (size_t i = 0; i < sizeof m; i++) {
        memcpy(m, rfc5769_response_ipv4, sizeof m);
        m[i] ^= 0x40;
        CHECK(!hk_stun_is_check_response(m, sizeof m, tid_5769, PWD_5769));
    }
    for (size_t n = 0; n < sizeof m; n++)
        CHECK(!hk_stun_is_check_response(rfc5769_response_ipv4, n, tid_5769, PWD_5769));
    CHECK(!hk_stun_is_check_response(rfc5769_request, sizeof rfc5769_request, tid_5769, PWD_5769));
}

TEST(stun_check_request_round_trip)
{
    /* A check the server writes toward a client ("<client>:<server>", the client's
     * password) is one that a STUN agent holding those credentials accepts; its
     * answer is then recognised, and only with the same transaction id. */
    const uint8_t tid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t req[HK_STUN_CHECK_MAX];
    CHECK_INT_EQ(
        hk_stun_write_check(req, sizeof req - 1, "cl1ent", "s3rv", "client-password-22chars", tid),
        0);
    size_t n =
        hk_stun_write_check(req, sizeof req, "cl1ent", "s3rv", "client-password-22chars", tid);
    CHECK(n > 20 && n % 4 == 0);
    CHECK_INT_EQ(hk_rd16(req + 2), n - 20);
    check_integrity_and_fingerprint(req, n, "client-password-22chars");
    run_t r;
    setup(&r, "cl1ent", "client-password-22chars");
    run_v4(&r, req, n);
    CHECK_INT_EQ(r.res.status, HK_STUN_ROLE_CONFLICT); /* it carries ICE-CONTROLLED */
    CHECK_STR_EQ(r.fx.seen, "cl1ent");
    CHECK_STR_EQ(r.res.remote_ufrag, "s3rv");
    /* A success response keyed with the same password (as the client writes it). */
    uint8_t rsp[200];
    memset(rsp, 0, sizeof rsp);
    hk_wr16(rsp, 0x0101);
    hk_wr32(rsp + 4, 0x2112A442u);
    memcpy(rsp + 8, tid, 12);
    size_t off = 20;
    uint8_t xma[8] = {0, 1, 0x80, 0x55, 1, 2, 3, 4};
    off = put_attr(rsp, off, 0x0020, xma, sizeof xma);
    hk_wr16(rsp + 2, (uint16_t)(off + 24 - 20));
    uint8_t mac[20];
    unsigned int mac_len = 20;
    HMAC(EVP_sha1(), "client-password-22chars", 23, rsp, off, mac, &mac_len);
    off = put_attr(rsp, off, 0x0008, mac, 20);
    hk_wr16(rsp + 2, (uint16_t)(off - 20));
    CHECK(hk_stun_is_check_response(rsp, off, tid, "client-password-22chars"));
    hk_wr16(rsp + 2, (uint16_t)(off + 8 - 20));
    uint8_t crc[4];
    hk_wr32(crc, hk_crc32(rsp, off) ^ 0x5354554eu);
    off = put_attr(rsp, off, 0x8028, crc, 4);
    CHECK(hk_stun_is_check_response(rsp, off, tid, "client-password-22chars"));
    rsp[off - 1] ^= 1; /* FINGERPRINT */
    CHECK(!hk_stun_is_check_response(rsp, off, tid, "client-password-22chars"));
    hk_stun_free(r.stun);
}

/* ICE-lite Binding request check and reply (RFC 8445 §7.3) with libnice's STUN
 * library. See stun.h for the policy. */
#include "server/proto/stun.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>

#include "common/bytes.h"
#include "common/error.h"

struct hk_stun_s {
    StunAgent agent;
};

/* Comprehension-required attributes (type < 0x8000) we understand; any other one
 * in an authenticated request earns a 420. Optional ones are listed for clarity. */
static const uint16_t known_attributes[] = {
    STUN_ATTRIBUTE_USERNAME,           STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
    STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, STUN_ATTRIBUTE_PRIORITY,
    STUN_ATTRIBUTE_USE_CANDIDATE,      STUN_ATTRIBUTE_SOFTWARE,
    STUN_ATTRIBUTE_FINGERPRINT,        STUN_ATTRIBUTE_ICE_CONTROLLED,
    STUN_ATTRIBUTE_ICE_CONTROLLING,    0,
};

/* RFC 5389 §6 message header; §15 attribute TLV.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |0 0|     STUN Message Type     |         Message Length        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         Magic Cookie                          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                     Transaction ID (96 bits)                  |
 *   |                                                               |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Type                  |            Length             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         Value (variable)                ....
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Message type: method bits M0..M11 interleaved with class bits C0 (0x0010) and
 * C1 (0x0100). Binding request 0x0001, indication 0x0011, success 0x0101,
 * error 0x0111. Message Length excludes the header and is a multiple of 4;
 * attribute values are padded to 4 bytes (the padding is not in Length). */
#define HEADER_LEN           20
#define MAGIC_COOKIE         0x2112A442u
#define TYPE_BINDING_REQ     0x0001
#define TYPE_BINDING_IND     0x0011
#define USERNAME_MAX         513 /* RFC 5389 §15.3 */
#define ATTR_MI_LEN          20
#define ATTR_FINGERPRINT_LEN 4

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static bool header_ok(const uint8_t *buf, size_t len)
{
    if (!buf || len < HEADER_LEN || len > HK_STUN_MAX_REQUEST)
        return false;
    if (buf[0] & 0xC0)
        return false;
    if (get32(buf + 4) != MAGIC_COOKIE)
        return false;
    uint16_t body = get16(buf + 2);
    return body == len - HEADER_LEN && body % 4 == 0;
}

bool hk_stun_is_binding_request(const uint8_t *buf, size_t len)
{
    return header_ok(buf, len) && get16(buf) == TYPE_BINDING_REQ;
}

/* Walks the attributes before libnice sees the message: every TLV must fit,
 * MESSAGE-INTEGRITY must be 20 bytes (libnice compares 20 bytes whatever the
 * length says), FINGERPRINT 4 bytes and last (§15.5), USERNAME at most 513 bytes
 * (it is echoed in the reply), ICE attributes their fixed sizes. */
static bool attributes_ok(const uint8_t *buf, size_t len)
{
    size_t off = HEADER_LEN;
    while (off < len) {
        if (len - off < 4)
            return false;
        uint16_t type = get16(buf + off);
        size_t alen = get16(buf + off + 2);
        size_t padded = (alen + 3) & ~(size_t)3;
        if (len - off - 4 < padded)
            return false;
        switch (type) {
        case STUN_ATTRIBUTE_MESSAGE_INTEGRITY:
            if (alen != ATTR_MI_LEN)
                return false;
            break;
        case STUN_ATTRIBUTE_FINGERPRINT:
            if (alen != ATTR_FINGERPRINT_LEN || off + 4 + alen != len)
                return false;
            break;
        case STUN_ATTRIBUTE_USERNAME:
            if (alen > USERNAME_MAX)
                return false;
            break;
        case STUN_ATTRIBUTE_PRIORITY:
            if (alen != 4)
                return false;
            break;
        case STUN_ATTRIBUTE_ICE_CONTROLLED:
        case STUN_ATTRIBUTE_ICE_CONTROLLING:
            if (alen != 8)
                return false;
            break;
        case STUN_ATTRIBUTE_USE_CANDIDATE:
            if (alen != 0)
                return false;
            break;
        default:
            break;
        }
        off += 4 + padded;
    }
    return true;
}

/* ice-char = ALPHA / DIGIT / "+" / "/"  (RFC 8839 §5.4) */
static bool ufrag_ok(const uint8_t *s, size_t len)
{
    if (len == 0 || len > HK_STUN_UFRAG_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alpha && !(c >= '0' && c <= '9') && c != '+' && c != '/')
            return false;
    }
    return true;
}

/* State shared with the libnice validater callback for one request. */
typedef enum {
    AUTH_NOT_CALLED = 0,
    AUTH_BAD_USERNAME,
    AUTH_UNKNOWN_UFRAG,
    AUTH_FOUND
} auth_state_t;

typedef struct {
    hk_stun_lookup_fn lookup;
    void *lookup_arg;
    auth_state_t state;
    void *peer;
    char remote_ufrag[HK_STUN_UFRAG_MAX + 1];
} auth_t;

/* USERNAME is "<server ufrag>:<client ufrag>" (RFC 8445 §7.2.2): the server ufrag
 * selects the password, which is the HMAC key as is (short-term, RFC 5389 §15.4). */
static bool validater(StunAgent *agent, StunMessage *message, uint8_t *username,
                      uint16_t username_len, uint8_t **password, size_t *password_len,
                      void *user_data)
{
    (void)agent;
    (void)message;
    auth_t *auth = user_data;
    auth->state = AUTH_BAD_USERNAME;
    if (!username || username_len == 0)
        return false;
    const uint8_t *colon = memchr(username, ':', username_len);
    if (!colon)
        return false;
    size_t local_len = (size_t)(colon - username);
    size_t remote_len = username_len - local_len - 1;
    if (!ufrag_ok(username, local_len) || !ufrag_ok(colon + 1, remote_len))
        return false;

    char local[HK_STUN_UFRAG_MAX + 1];
    memcpy(local, username, local_len);
    local[local_len] = '\0';
    auth->state = AUTH_UNKNOWN_UFRAG;
    void *peer = NULL;
    const char *pwd = auth->lookup ? auth->lookup(auth->lookup_arg, local, &peer) : NULL;
    if (!pwd || pwd[0] == '\0')
        return false;

    auth->state = AUTH_FOUND;
    auth->peer = peer;
    memcpy(auth->remote_ufrag, colon + 1, remote_len);
    auth->remote_ufrag[remote_len] = '\0';
    /* libnice only reads the key (HMAC over the request and over our reply). */
    *password = (uint8_t *)(uintptr_t)pwd;
    *password_len = strlen(pwd);
    return true;
}

hk_stun_t *hk_stun_new(void)
{
    hk_stun_t *stun = calloc(1, sizeof *stun);
    if (!stun)
        return NULL;
    stun_agent_init(&stun->agent, known_attributes, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    stun_agent_set_software(&stun->agent, HK_STUN_SOFTWARE);
    return stun;
}

void hk_stun_free(hk_stun_t *stun)
{
    free(stun);
}

static bool copy_address(const struct sockaddr *from, socklen_t fromlen,
                         struct sockaddr_storage *out, socklen_t *outlen)
{
    if (!from)
        return false;
    size_t need;
    if (from->sa_family == AF_INET)
        need = sizeof(struct sockaddr_in);
    else if (from->sa_family == AF_INET6)
        need = sizeof(struct sockaddr_in6);
    else
        return false;
    if ((size_t)fromlen < need)
        return false;
    memset(out, 0, sizeof *out);
    memcpy(out, from, need);
    *outlen = (socklen_t)need;
    return true;
}

/* Maps a failed stun_agent_validate to our reason. The header and the attribute
 * layout were checked before, so libnice's remaining refusals are about
 * FINGERPRINT (checked first) and credentials. */
static hk_stun_status_t validation_failure(StunValidationStatus v, const StunMessage *msg,
                                           const auth_t *auth)
{
    switch (v) {
    case STUN_VALIDATION_BAD_REQUEST:
        return HK_STUN_BAD_FINGERPRINT;
    case STUN_VALIDATION_UNAUTHORIZED_BAD_REQUEST:
        if (!stun_message_has_attribute(msg, STUN_ATTRIBUTE_USERNAME))
            return HK_STUN_BAD_USERNAME;
        return HK_STUN_BAD_INTEGRITY;
    case STUN_VALIDATION_UNAUTHORIZED:
        if (auth->state == AUTH_BAD_USERNAME)
            return HK_STUN_BAD_USERNAME;
        if (auth->state == AUTH_UNKNOWN_UFRAG)
            return HK_STUN_UNKNOWN_UFRAG;
        return HK_STUN_BAD_INTEGRITY;
    case STUN_VALIDATION_UNMATCHED_RESPONSE:
        return HK_STUN_NOT_BINDING_REQUEST;
    default:
        return HK_STUN_MALFORMED;
    }
}

static int finish(hk_stun_result_t *result, hk_stun_status_t status, size_t *reply_len,
                  size_t written)
{
    result->status = status;
    *reply_len = written;
    switch (status) {
    case HK_STUN_OK:
        return HK_OK;
    case HK_STUN_NO_SPACE:
        return HK_ENOSPC;
    case HK_STUN_MALFORMED:
    case HK_STUN_NOT_BINDING_REQUEST:
    case HK_STUN_INDICATION:
    case HK_STUN_BAD_ADDRESS:
        return HK_EINVAL;
    default:
        return HK_EPERM;
    }
}

int hk_stun_handle(hk_stun_t *stun, const uint8_t *req, size_t len, const struct sockaddr *from,
                   socklen_t fromlen, hk_stun_lookup_fn lookup, void *lookup_arg, uint8_t *reply,
                   size_t *reply_len, hk_stun_result_t *result)
{
    size_t capacity = *reply_len;
    memset(result, 0, sizeof *result);
    *reply_len = 0;

    /* libnice asserts when its reply does not fit: make sure it always does. */
    if (!reply || capacity < HK_STUN_REPLY_MAX)
        return finish(result, HK_STUN_NO_SPACE, reply_len, 0);
    struct sockaddr_storage src;
    socklen_t srclen;
    if (!copy_address(from, fromlen, &src, &srclen))
        return finish(result, HK_STUN_BAD_ADDRESS, reply_len, 0);

    if (!header_ok(req, len))
        return finish(result, HK_STUN_MALFORMED, reply_len, 0);
    memcpy(result->transaction_id, req + 8, sizeof result->transaction_id);
    if (!attributes_ok(req, len))
        return finish(result, HK_STUN_MALFORMED, reply_len, 0);
    uint16_t type = get16(req);
    if (type == TYPE_BINDING_IND)
        return finish(result, HK_STUN_INDICATION, reply_len, 0);
    if (type != TYPE_BINDING_REQ)
        return finish(result, HK_STUN_NOT_BINDING_REQUEST, reply_len, 0);

    auth_t auth = {.lookup = lookup, .lookup_arg = lookup_arg};
    StunMessage msg;
    StunValidationStatus v = stun_agent_validate(&stun->agent, &msg, req, len, validater, &auth);
    if (v != STUN_VALIDATION_SUCCESS && v != STUN_VALIDATION_UNKNOWN_REQUEST_ATTRIBUTE)
        return finish(result, validation_failure(v, &msg, &auth), reply_len, 0);
    if (auth.state != AUTH_FOUND)
        return finish(result, HK_STUN_BAD_INTEGRITY, reply_len, 0);

    /* Authenticated from here on. */
    result->peer = auth.peer;
    memcpy(result->remote_ufrag, auth.remote_ufrag, sizeof result->remote_ufrag);
    result->use_candidate = stun_usage_ice_conncheck_use_candidate(&msg);
    result->priority = stun_usage_ice_conncheck_priority(&msg);
    result->ice_controlling = stun_message_has_attribute(&msg, STUN_ATTRIBUTE_ICE_CONTROLLING);

    StunMessage out;
    if (v == STUN_VALIDATION_UNKNOWN_REQUEST_ATTRIBUTE) {
        size_t n =
            stun_agent_build_unknown_attributes_error(&stun->agent, &out, reply, capacity, &msg);
        return finish(result, HK_STUN_UNKNOWN_ATTRIBUTE, reply_len, n);
    }

    /* ICE-lite is always controlled (RFC 8445 §6.1.1): a peer that says it is
     * controlled too gets 487 and, per §7.2.5.1, switches to controlling. This is
     * answered here rather than by libnice, whose tie-breaker handling differs
     * between versions and may "switch" our role instead. */
    if (stun_message_has_attribute(&msg, STUN_ATTRIBUTE_ICE_CONTROLLED)) {
        size_t n = 0;
        if (stun_agent_init_error(&stun->agent, &out, reply, capacity, &msg,
                                  STUN_ERROR_ROLE_CONFLICT))
            n = stun_agent_finish_message(&stun->agent, &out, NULL, 0);
        return finish(result, HK_STUN_ROLE_CONFLICT, reply_len, n);
    }

    /* No ICE-CONTROLLED here, so libnice's role-conflict branch (it looks for
     * ICE-CONTROLLED when we are controlled) never runs. */
    bool controlling = false;
    size_t n = capacity;
    StunUsageIceReturn r = stun_usage_ice_conncheck_create_reply(
        &stun->agent, &msg, &out, reply, &n, &src, srclen, &controlling, 0,
        STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    if (r == STUN_USAGE_ICE_RETURN_INVALID_ADDRESS)
        return finish(result, HK_STUN_BAD_ADDRESS, reply_len, 0);
    if (r != STUN_USAGE_ICE_RETURN_SUCCESS || n == 0 ||
        stun_message_get_class(&out) != STUN_RESPONSE)
        return finish(result, HK_STUN_NO_SPACE, reply_len, 0);
    return finish(result, HK_STUN_OK, reply_len, n);
}

const char *hk_stun_status_name(hk_stun_status_t status)
{
    switch (status) {
    case HK_STUN_OK:
        return "ok";
    case HK_STUN_MALFORMED:
        return "malformed";
    case HK_STUN_NOT_BINDING_REQUEST:
        return "not_binding_request";
    case HK_STUN_INDICATION:
        return "indication";
    case HK_STUN_BAD_FINGERPRINT:
        return "bad_fingerprint";
    case HK_STUN_BAD_USERNAME:
        return "bad_username";
    case HK_STUN_UNKNOWN_UFRAG:
        return "unknown_ufrag";
    case HK_STUN_BAD_INTEGRITY:
        return "bad_integrity";
    case HK_STUN_ROLE_CONFLICT:
        return "role_conflict";
    case HK_STUN_UNKNOWN_ATTRIBUTE:
        return "unknown_attribute";
    case HK_STUN_BAD_ADDRESS:
        return "bad_address";
    case HK_STUN_NO_SPACE:
        return "no_space";
    case HK_STUN_STATUS_COUNT:
        break;
    }
    return "unknown";
}

/* --- Consent checks the server sends ------------------------------------------------------ */

#define ATTR_USERNAME          0x0006
#define ATTR_MESSAGE_INTEGRITY 0x0008
#define ATTR_PRIORITY          0x0024
#define ATTR_ICE_CONTROLLED    0x8029
#define ATTR_FINGERPRINT       0x8028
#define STUN_COOKIE            0x2112A442u
#define FINGERPRINT_XOR        0x5354554eu

static size_t put_attr(uint8_t *p, uint16_t type, const void *value, size_t len)
{
    hk_wr16(p, type);
    hk_wr16(p + 2, (uint16_t)len);
    memcpy(p + 4, value, len);
    size_t padded = (len + 3) & ~(size_t)3;
    memset(p + 4 + len, 0, padded - len);
    return 4 + padded;
}

/* HMAC-SHA1 over buf[0..end) with the header's length field covering through the
 * MESSAGE-INTEGRITY attribute at `end` (RFC 5389 §15.4). */
static void integrity(uint8_t *buf, size_t end, const char *password, uint8_t mac[20])
{
    uint8_t saved[2] = {buf[2], buf[3]};
    hk_wr16(buf + 2, (uint16_t)(end + 24 - 20));
    unsigned int mac_len = 20;
    HMAC(EVP_sha1(), password, (int)strlen(password), buf, end, mac, &mac_len);
    buf[2] = saved[0];
    buf[3] = saved[1];
}

size_t hk_stun_write_check(uint8_t *buf, size_t cap, const char *client_ufrag,
                           const char *server_ufrag, const char *client_pwd,
                           const uint8_t tid[HK_STUN_TID_LEN])
{
    size_t cu = strlen(client_ufrag), su = strlen(server_ufrag);
    if (cap < HK_STUN_CHECK_MAX || cu > HK_STUN_UFRAG_MAX || su > HK_STUN_UFRAG_MAX)
        return 0;
    /*  0                   1                   2                   3
     *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
     * |0 0|  Binding request 0x0001     |         Message Length        |
     * |                  Magic Cookie 0x2112A442                        |
     * |                  Transaction ID (96 bits)                       | */
    hk_wr16(buf, 0x0001);
    hk_wr32(buf + 4, STUN_COOKIE);
    memcpy(buf + 8, tid, HK_STUN_TID_LEN);
    size_t n = 20;
    char username[2 * HK_STUN_UFRAG_MAX + 2];
    memcpy(username, client_ufrag, cu);
    username[cu] = ':';
    memcpy(username + cu + 1, server_ufrag, su);
    n += put_attr(buf + n, ATTR_USERNAME, username, cu + 1 + su);
    uint8_t priority[4];
    hk_wr32(priority, 0x7e7fffffu); /* a host candidate's (RFC 8445 §5.1.2.1) */
    n += put_attr(buf + n, ATTR_PRIORITY, priority, sizeof priority);
    uint8_t tie_breaker[8];
    memcpy(tie_breaker, tid, sizeof tie_breaker);
    n += put_attr(buf + n, ATTR_ICE_CONTROLLED, tie_breaker, sizeof tie_breaker);
    uint8_t mac[20];
    integrity(buf, n, client_pwd, mac);
    n += put_attr(buf + n, ATTR_MESSAGE_INTEGRITY, mac, sizeof mac);
    hk_wr16(buf + 2, (uint16_t)(n + 8 - 20));
    uint8_t crc[4];
    hk_wr32(crc, hk_crc32(buf, n) ^ FINGERPRINT_XOR);
    n += put_attr(buf + n, ATTR_FINGERPRINT, crc, sizeof crc);
    return n;
}

bool hk_stun_is_check_response(const uint8_t *buf, size_t len, const uint8_t tid[HK_STUN_TID_LEN],
                               const char *password)
{
    if (len < 20 || len > HK_STUN_MAX_REQUEST || hk_rd16(buf) != 0x0101 ||
        hk_rd32(buf + 4) != STUN_COOKIE || (size_t)hk_rd16(buf + 2) != len - 20 ||
        memcmp(buf + 8, tid, HK_STUN_TID_LEN) != 0)
        return false;
    uint8_t copy[HK_STUN_MAX_REQUEST];
    memcpy(copy, buf, len);
    bool authenticated = false;
    for (size_t pos = 20; pos + 4 <= len;) {
        uint16_t type = hk_rd16(buf + pos), alen = hk_rd16(buf + pos + 2);
        size_t next = pos + 4 + (((size_t)alen + 3) & ~(size_t)3);
        if (next > len)
            return false;
        if (type == ATTR_MESSAGE_INTEGRITY) {
            uint8_t mac[20];
            if (alen != 20)
                return false;
            integrity(copy, pos, password, mac);
            authenticated = CRYPTO_memcmp(mac, buf + pos + 4, 20) == 0;
            if (!authenticated)
                return false;
        } else if (type == ATTR_FINGERPRINT) {
            if (alen != 4 || next != len)
                return false;
            hk_wr16(copy + 2, (uint16_t)(len - 20));
            return authenticated &&
                   (hk_crc32(copy, pos) ^ FINGERPRINT_XOR) == hk_rd32(buf + pos + 4);
        } else if (authenticated) {
            return false; /* only FINGERPRINT may follow MESSAGE-INTEGRITY */
        }
        pos = next;
    }
    return authenticated;
}

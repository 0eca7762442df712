/* ICE-lite STUN Binding handling (RFC 8445 §7.3, RFC 5389) on top of libnice's
 * STUN library. The server never sends connectivity checks: it only checks the
 * Binding requests browsers send to it and answers them.
 *
 * A request is accepted when it is a Binding request (RFC 5389 §6) with a magic
 * cookie, a USERNAME "<server ufrag>:<client ufrag>" (RFC 8445 §7.2.2) whose server
 * ufrag the caller's lookup knows, a MESSAGE-INTEGRITY keyed with that ufrag's
 * ice-pwd (short-term credentials, RFC 5389 §15.4) and a correct FINGERPRINT
 * (RFC 5389 §15.5). The answer is a Binding success response carrying
 * XOR-MAPPED-ADDRESS = the request's source, SOFTWARE "hisoka", the echoed USERNAME,
 * MESSAGE-INTEGRITY (same ice-pwd) and FINGERPRINT.
 *
 * Error responses: requests that fail authentication (missing or bad USERNAME,
 * unknown ufrag, missing or wrong MESSAGE-INTEGRITY, missing or wrong FINGERPRINT)
 * or are malformed get NO response, although RFC 5389 §10.1.2 suggests 400/401:
 * answering unauthenticated packets would turn the media port into a reflector for
 * spoofed sources and let scanners probe ufrags, and a browser just retransmits
 * and times out. Authenticated requests that cannot be accepted get an
 * authenticated error response:
 *   - 487 Role Conflict when the request carries ICE-CONTROLLED: an ICE-lite agent
 *     is always controlled (RFC 8445 §6.1.1, §7.3.1.1), so it keeps its role;
 *   - 420 Unknown Attribute when it carries a comprehension-required attribute we
 *     do not know (RFC 5389 §7.3.1).
 * Binding indications (RFC 7675 consent keep-alives from old agents, RFC 5389 §10)
 * are ignored without a response.
 *
 * No globals: all state is in hk_stun_t (one libnice StunAgent each). libnice's
 * agent is only read while handling requests (its transaction table is used for
 * requests we send, and we send none), so one hk_stun_t serves every peer of a
 * worker. Not thread-safe: one per worker loop. */
#ifndef HK_STUN_H
#define HK_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct hk_stun_s hk_stun_t;

#define HK_STUN_SOFTWARE    "hisoka"
#define HK_STUN_UFRAG_MAX   256  /* ice-ufrag is 4..256 ice-chars, RFC 8839 §5.4 */
#define HK_STUN_MAX_REQUEST 1500 /* longer requests are malformed (one datagram) */
/* Worst case reply: header 20, SOFTWARE 12, XOR-MAPPED-ADDRESS (IPv6) 24,
 * USERNAME echo 4+516, MESSAGE-INTEGRITY 24, FINGERPRINT 8 = 608; a 420 error
 * with up to 256 unknown attribute types is of the same order. */
#define HK_STUN_REPLY_MAX 1024

typedef enum {
    HK_STUN_OK = 0,              /* a Binding success response was written */
    HK_STUN_MALFORMED,           /* framing: < 20 bytes, too long, length field not
                                    len-20 or not a multiple of 4, attribute past the
                                    end, no magic cookie, bad attribute length */
    HK_STUN_NOT_BINDING_REQUEST, /* a response, an error, another method */
    HK_STUN_INDICATION,          /* a Binding indication: ignored, not an error */
    HK_STUN_BAD_FINGERPRINT,     /* FINGERPRINT missing or wrong */
    HK_STUN_BAD_USERNAME,        /* USERNAME missing, or not "<ufrag>:<ufrag>" */
    HK_STUN_UNKNOWN_UFRAG,       /* lookup does not know the server ufrag */
    HK_STUN_BAD_INTEGRITY,       /* MESSAGE-INTEGRITY missing or wrong */
    HK_STUN_ROLE_CONFLICT,       /* authenticated, ICE-CONTROLLED: 487 written */
    HK_STUN_UNKNOWN_ATTRIBUTE,   /* authenticated, unknown mandatory attr: 420 written */
    HK_STUN_BAD_ADDRESS,         /* `from` is not an IPv4/IPv6 socket address */
    HK_STUN_NO_SPACE,            /* reply buffer under HK_STUN_REPLY_MAX */
    HK_STUN_STATUS_COUNT,        /* number of statuses, for counter arrays */
} hk_stun_status_t;

/* Finds the server-side ice-pwd of a server ufrag (NUL-terminated, as found in
 * USERNAME before ':'). Returns the NUL-terminated password, which must stay valid
 * until hk_stun_handle returns, and sets *peer to an opaque pointer handed back in
 * the result; returns NULL for an unknown ufrag. An empty password counts as
 * unknown. Called at most once per hk_stun_handle call. */
typedef const char *(*hk_stun_lookup_fn)(void *arg, const char *local_ufrag, void **peer);

/* peer, remote_ufrag, use_candidate, ice_controlling and priority are only set for
 * authenticated requests (HK_STUN_OK, HK_STUN_ROLE_CONFLICT,
 * HK_STUN_UNKNOWN_ATTRIBUTE); they are zero/empty otherwise. */
typedef struct {
    hk_stun_status_t status;
    void *peer;           /* from the lookup; NULL unless the ufrag was known */
    bool use_candidate;   /* USE-CANDIDATE present (RFC 8445 §7.1.2): nomination */
    bool ice_controlling; /* ICE-CONTROLLING present */
    uint32_t priority;    /* PRIORITY, 0 when absent */
    char remote_ufrag[HK_STUN_UFRAG_MAX + 1]; /* client ufrag (after ':'), "" if unknown */
    uint8_t transaction_id[12];               /* set when the header was readable */
} hk_stun_result_t;

/* Creates a context. Returns NULL when out of memory. Free with hk_stun_free. */
hk_stun_t *hk_stun_new(void);

/* Frees a context; NULL is fine. */
void hk_stun_free(hk_stun_t *stun);

/* Checks one datagram `req` received from `from` and builds the reply in `reply`.
 * *reply_len is the capacity of `reply` on input (at least HK_STUN_REPLY_MAX) and
 * the number of bytes to send back to `from` on output, 0 meaning send nothing.
 * `result` is always filled. Returns 0 when the request was accepted (success
 * response written), HK_EINVAL for malformed or non-request input and for an
 * unusable `from`, HK_EPERM for authentication failures, role conflicts and
 * unknown attributes (a 487/420 reply may still have been written: always look at
 * *reply_len), HK_ENOSPC when the reply buffer is too small. */
int hk_stun_handle(hk_stun_t *stun, const uint8_t *req, size_t len, const struct sockaddr *from,
                   socklen_t fromlen, hk_stun_lookup_fn lookup, void *lookup_arg, uint8_t *reply,
                   size_t *reply_len, hk_stun_result_t *result);

/* Quick header check, no attributes read: true when buf is framed as a STUN Binding
 * request (type 0x0001, magic cookie, length field == len - 20 and a multiple of
 * 4). Pure. */
bool hk_stun_is_binding_request(const uint8_t *buf, size_t len);

/* Static lower-case name of a status for metrics and logs ("bad_integrity", ...). */
const char *hk_stun_status_name(hk_stun_status_t status);

/* --- Consent checks the server sends (RFC 7675) -------------------------------------------
 * Before media moves to a tuple that a client nominated while its current tuple still has
 * consent, the server asks the new tuple for consent itself: a Binding request keyed with
 * the client's own ice-pwd, which only the real client at that address can answer. A
 * spoofed source cannot. */

#define HK_STUN_TID_LEN 12
#define HK_STUN_CHECK_MAX                                                                          \
    600 /* header 20 + USERNAME 4+516 + PRIORITY 8 + ICE-CONTROLLED 12                             \
           + MESSAGE-INTEGRITY 24 + FINGERPRINT 8 */

/* Writes a Binding request (RFC 5389 §6, RFC 8445 §7.2.2) with USERNAME
 * "<client ufrag>:<server ufrag>", PRIORITY, ICE-CONTROLLED (tie-breaker), the transaction id
 * tid, MESSAGE-INTEGRITY keyed with client_pwd and FINGERPRINT. Returns its length, or 0
 * when cap is under HK_STUN_CHECK_MAX or a ufrag is longer than HK_STUN_UFRAG_MAX. Pure. */
size_t hk_stun_write_check(uint8_t *buf, size_t cap, const char *client_ufrag,
                           const char *server_ufrag, const char *client_pwd,
                           const uint8_t tid[HK_STUN_TID_LEN]);

/* Whether buf is a Binding success response with transaction id tid, a MESSAGE-INTEGRITY
 * keyed with password and, when present, a correct FINGERPRINT as its last attribute. Every
 * length is checked before it is read. Pure. */
bool hk_stun_is_check_response(const uint8_t *buf, size_t len, const uint8_t tid[HK_STUN_TID_LEN],
                               const char *password);

#endif

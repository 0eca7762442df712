/* Time-limited TURN credentials of the TURN REST API (draft-uberti-behave-turn-rest-00
 * §2.2), as coturn's use-auth-secret checks them:
 *
 *   username   = "<expiry, UNIX seconds>:<id>"
 *   credential = base64(HMAC-SHA1(static-auth-secret, username))
 *
 * Pure: time and id are arguments. */
#ifndef HK_TURN_REST_H
#define HK_TURN_REST_H

#include <stddef.h>
#include <stdint.h>

#define HK_TURN_USERNAME_MAX   128 /* with the NUL */
#define HK_TURN_CREDENTIAL_MAX 29  /* base64 of 20 bytes, and the NUL */

/* Writes the username for id (printable, no ':' needed) expiring at expiry_unix, and
 * its credential. Returns 0, or HK_EINVAL for an empty secret or an id that does not fit. */
int hk_turn_rest_credential(const char *secret, uint64_t expiry_unix, const char *id,
                            char username[HK_TURN_USERNAME_MAX],
                            char credential[HK_TURN_CREDENTIAL_MAX]);

#endif

/* libwebsockets protocols of the sig: Sora signaling at /signaling on the signaling
 * vhost, and the HTTP API (api.c) on the API vhost. */
#ifndef HK_SIGNALING_H
#define HK_SIGNALING_H

#include <libwebsockets.h>

/* Protocol tables (NULL-terminated) for the two vhosts. */
extern const struct lws_protocols hk_signaling_protocols[];

#endif

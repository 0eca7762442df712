/* The HTTP API on api_port: GET /health, GET /stats (JSON), and the demo page
 * (client/) under /demo/. */
#ifndef HK_API_H
#define HK_API_H

#include <libwebsockets.h>

extern const struct lws_protocols hk_api_protocols[];

#endif

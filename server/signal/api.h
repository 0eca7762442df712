/* The HTTP API on api_port, and the demo page (client/) under /demo/:
 *   GET    /health                    {"status":"ok"} 200, {"status":"stopping"} 503
 *   GET    /metrics                   Prometheus text format 0.0.4, hisoka_* metrics
 *   GET    /stats                     channels, members and every counter (JSON)
 *   GET    /stats/connections         every connection, short form (JSON array)
 *   GET    /stats/connections/<id>    one connection: signaling, ICE, DTLS, SRTP, streams
 *   DELETE /connections/<id>          closes it (4000 "disconnected by the API")
 *   POST   /connections/<id>/disconnect   the same
 *   POST   /  with x-sora-target: Sora_20151104.DisconnectConnection and a JSON body
 *          {"channel_id": ..., "connection_id": ...}   Sora's API, the same close
 * The API has no authentication: bind it to a private address or firewall it. */
#ifndef HK_API_H
#define HK_API_H

#include <libwebsockets.h>

/* Close code and reason of a connection disconnected through the API. */
#define HK_CLOSE_API_DISCONNECT  4000
#define HK_API_DISCONNECT_REASON "disconnected by the API"

extern const struct lws_protocols hk_api_protocols[];

#endif

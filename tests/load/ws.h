/* A minimal WebSocket client (RFC 6455) for the load generator: ws:// only, one
 * non-blocking TCP socket driven by the caller's epoll loop, text messages in and out,
 * pings answered, masking as a client must. Not for production use. */
#ifndef HK_LOAD_WS_H
#define HK_LOAD_WS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { HK_WS_CONNECTING = 0, HK_WS_UPGRADING, HK_WS_OPEN, HK_WS_CLOSED } hk_ws_state_t;

typedef struct {
    int fd;
    hk_ws_state_t state;
    char host[128];
    char path[256];
    char protocol[64]; /* Sec-WebSocket-Protocol to ask for, "" for none */
    char *in;          /* received bytes not consumed yet */
    size_t in_len, in_cap;
    char *out; /* bytes not written yet */
    size_t out_len, out_cap;
    char *msg; /* text message being reassembled from fragments */
    size_t msg_len, msg_cap;
    int close_code; /* from the server's close frame, 0 if none */
} hk_ws_t;

/* Called for each complete text message (NUL-terminated, valid during the call). */
typedef void (*hk_ws_message_fn)(void *arg, char *text, size_t len);

/* Splits "ws://host:port/path" into addr (IPv4 literal or "localhost") and path.
 * Returns 0 or -1. */
int hk_ws_parse_url(const char *url, struct sockaddr_in *addr, char *host, size_t host_size,
                    char *path, size_t path_size);

/* Starts a non-blocking connect; the caller adds ws->fd to its loop (EPOLLIN|EPOLLOUT).
 * protocol (NULL for none) is sent as Sec-WebSocket-Protocol (RFC 6455 §4.1) and must
 * come back in the server's 101 response. Returns 0 or -1. */
int hk_ws_connect(hk_ws_t *ws, const struct sockaddr_in *addr, const char *host, const char *path,
                  const char *protocol);

/* Call when the socket is writable: finishes the connect, sends the upgrade request and
 * anything queued. Returns 0, or -1 when the connection failed. */
int hk_ws_on_writable(hk_ws_t *ws);

/* Call when the socket is readable: reads, completes the upgrade, delivers every complete
 * text message to fn. Returns 0, or -1 when the connection is closed or broken. */
int hk_ws_on_readable(hk_ws_t *ws, hk_ws_message_fn fn, void *arg);

/* Queues a text message (sent at once when possible). Returns 0 or -1. */
int hk_ws_send_text(hk_ws_t *ws, const char *text, size_t len);

/* True when bytes wait to be written (the caller watches EPOLLOUT). */
bool hk_ws_wants_write(const hk_ws_t *ws);

/* Sends a close frame (1000) if open, closes the socket, frees the buffers. */
void hk_ws_close(hk_ws_t *ws);

#endif

#include "server/signal/signaling.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "server/signal/peer.h"
#include "server/signal/webhook.h"
#include "server/signal/server.h"

#define RX_CHUNK 65536

typedef struct {
    hk_peer_t *peer;
    uint32_t address; /* the client's IPv4 address, counted in sockets_per_address; 0 = not */
} session_t;

static hk_signal_t *worker_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* Appends one received piece; dispatches the message when it is complete. */
static void on_receive(hk_peer_t *peer, const void *in, size_t len, struct lws *wsi)
{
    const hk_config_t *config = peer->sig->config;
    size_t limit = peer->state == HK_PEER_WAIT_CONNECT ? config->max_message_size_before_connect
                                                       : config->max_message_size;
    if (peer->state == HK_PEER_CLOSING)
        return;
    if (lws_is_first_fragment(wsi)) {
        peer->rx_len = 0;
        peer->rx_binary = lws_frame_is_binary(wsi);
    }
    if (peer->rx_len + len > limit) {
        peer->sig->counters.refused_too_large++;
        peer->rx_len = 0;
        char reason[96];
        snprintf(reason, sizeof reason, "MESSAGE-TOO-LARGE: messages are limited to %zu bytes",
                 limit);
        hk_peer_close(peer, HK_CLOSE_TOO_LARGE, reason);
        return;
    }
    if (peer->rx_len + len + 1 > peer->rx_cap) {
        size_t cap = peer->rx_cap ? peer->rx_cap : 4096;
        while (cap < peer->rx_len + len + 1)
            cap *= 2;
        char *rx = realloc(peer->rx, cap);
        if (!rx) {
            hk_peer_close(peer, HK_CLOSE_INTERNAL, "out of memory");
            return;
        }
        peer->rx = rx;
        peer->rx_cap = cap;
    }
    memcpy(peer->rx + peer->rx_len, in, len);
    peer->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0)
        return;
    peer->rx[peer->rx_len] = '\0';
    size_t n = peer->rx_len;
    peer->rx_len = 0;
    if (peer->rx_binary)
        hk_peer_on_binary(peer, (const uint8_t *)peer->rx, n);
    else
        hk_peer_on_text(peer, peer->rx, n);
    /* Large buffers are not kept between messages. */
    if (peer->rx_cap > RX_CHUNK) {
        free(peer->rx);
        peer->rx = NULL;
        peer->rx_cap = 0;
    }
}

/* Writes one queued message; closes with the stored reason once the queue is empty. */
static int on_writeable(hk_peer_t *peer, struct lws *wsi)
{
    hk_out_t *out = peer->tx_head;
    if (out) {
        peer->tx_head = out->next;
        if (!peer->tx_head)
            peer->tx_tail = NULL;
        peer->tx_bytes -= out->len;
        int n = lws_write(wsi, out->buf + LWS_PRE, out->len,
                          out->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        free(out);
        if (n < 0)
            return -1;
        if (peer->tx_head || peer->state == HK_PEER_CLOSING)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (peer->state == HK_PEER_CLOSING && !peer->close_sent) {
        /* The close frame is written here: lws 4.1's deferred close (lws_close_reason +
         * return -1) drops the frame. 4 is lws's internal LWS_WRITE_CLOSE (lws-write.h:
         * "handled by lws_close_reason"). Then only our sending side is shut: closing the
         * socket while the client is still sending (a message over the limit) would make
         * the kernel answer with a reset, and the client would never read the frame. What
         * it sends meanwhile is discarded; its own close, or the grace timeout set by
         * hk_peer_close, ends the connection. */
        unsigned char frame[LWS_PRE + 2 + sizeof peer->close_reason];
        size_t reason_len = strlen(peer->close_reason);
        frame[LWS_PRE] = (unsigned char)(peer->close_code >> 8);
        frame[LWS_PRE + 1] = (unsigned char)(peer->close_code & 0xff);
        memcpy(frame + LWS_PRE + 2, peer->close_reason, reason_len);
        if (lws_write(wsi, frame + LWS_PRE, 2 + reason_len, (enum lws_write_protocol)4) < 0)
            return -1;
        peer->close_sent = true;
        if (lws_is_ssl(wsi))
            return -1; /* no half-close under TLS: the record layer needs both ways */
        shutdown(lws_get_socket_fd(wsi), SHUT_WR);
        return 0;
    }
    return 0;
}

/* --- WebSockets per client address (max_connections_per_address) ------------------------- */

static uint32_t remote_ipv4(struct lws *wsi)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&a, &len) != 0 ||
        a.sin_family != AF_INET)
        return 0;
    return ntohl(a.sin_addr.s_addr);
}

static uintptr_t sockets_from(const hk_signal_t *sig, uint32_t address)
{
    return (uintptr_t)hk_map_get(&sig->sockets_per_address, address);
}

/* Whether another WebSocket from this address may open; logs refusals once a second. */
static bool address_has_room(hk_signal_t *sig, uint32_t address)
{
    if (address == 0 ||
        sockets_from(sig, address) < (uintptr_t)sig->config->max_connections_per_address)
        return true;
    sig->counters.refused_per_address++;
    if (hk_log_due(&sig->last_per_address_log, hk_signal_now_ms(sig), 1000))
        HK_LOG(HK_LOG_WARN, "signaling", NULL,
               "%u.%u.%u.%u has max_connections_per_address (%d) WebSockets open: refusing more "
               "(%llu refused so far)",
               address >> 24, (address >> 16) & 255, (address >> 8) & 255, address & 255,
               sig->config->max_connections_per_address,
               (unsigned long long)sig->counters.refused_per_address);
    return false;
}

/* Returns 0, or HK_ENOMEM when the count could not be stored (nothing changed). */
static int count_socket(hk_signal_t *sig, uint32_t address, int delta)
{
    uintptr_t n = sockets_from(sig, address) + (uintptr_t)(intptr_t)delta;
    if (n == 0) {
        hk_map_remove(&sig->sockets_per_address, address);
        return 0;
    }
    return hk_map_put(&sig->sockets_per_address, address, (void *)n);
}

static int callback_signaling(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                              void *in, size_t len)
{
    session_t *session = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 ||
            strcmp(uri, "/signaling") != 0)
            return 1;
        return address_has_room(worker_of(wsi), remote_ipv4(wsi)) ? 0 : 1;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        hk_signal_t *sig = worker_of(wsi);
        if (sig->stopping)
            return -1;
        uint32_t address = remote_ipv4(wsi);
        if (!address_has_room(sig, address))
            return -1;
        if (address && count_socket(sig, address, +1) != 0) {
            sig->counters.refused_out_of_memory++;
            return -1;
        }
        session->address = address;
        session->peer = hk_peer_create(sig, wsi);
        if (!session->peer) {
            sig->counters.refused_out_of_memory++;
            if (address)
                count_socket(sig, address, -1);
            session->address = 0;
            return -1;
        }
        HK_LOG(HK_LOG_DEBUG, "signaling", session->peer->connection_id, "websocket open");
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        if (session->peer)
            on_receive(session->peer, in, len, wsi);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return session->peer ? on_writeable(session->peer, wsi) : 0;
    case LWS_CALLBACK_CLOSED:
        if (session->address) {
            count_socket(worker_of(wsi), session->address, -1);
            session->address = 0;
        }
        if (session->peer) {
            HK_LOG(HK_LOG_DEBUG, "signaling", session->peer->connection_id, "websocket closed");
            hk_peer_destroy(session->peer);
            session->peer = NULL;
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols hk_signaling_protocols[] = {
    {"sora-signaling", callback_signaling, sizeof(session_t), RX_CHUNK, 0, NULL, 0},
    {HK_WEBHOOK_PROTOCOL, hk_webhook_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

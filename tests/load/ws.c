/* Minimal RFC 6455 client; see ws.h. */
#include "tests/load/ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#define MAX_MESSAGE (4u << 20)

int hk_ws_parse_url(const char *url, struct sockaddr_in *addr, char *host, size_t host_size,
                    char *path, size_t path_size)
{
    if (strncmp(url, "ws://", 5) != 0)
        return -1;
    const char *h = url + 5;
    const char *colon = strchr(h, ':');
    const char *slash = strchr(h, '/');
    if (!colon || (slash && slash < colon))
        return -1;
    size_t hl = (size_t)(colon - h);
    if (hl == 0 || hl >= host_size)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    snprintf(path, path_size, "%s", slash ? slash : "/");
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    return inet_pton(AF_INET, ip, &addr->sin_addr) == 1 ? 0 : -1;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static int queue(hk_ws_t *ws, const void *data, size_t len)
{
    if (grow(&ws->out, &ws->out_cap, ws->out_len + len) < 0)
        return -1;
    memcpy(ws->out + ws->out_len, data, len);
    ws->out_len += len;
    return 0;
}

static int flush(hk_ws_t *ws)
{
    while (ws->out_len > 0) {
        ssize_t n = send(ws->fd, ws->out, ws->out_len, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        memmove(ws->out, ws->out + n, ws->out_len - (size_t)n);
        ws->out_len -= (size_t)n;
    }
    return 0;
}

int hk_ws_connect(hk_ws_t *ws, const struct sockaddr_in *addr, const char *host, const char *path,
                  const char *protocol)
{
    memset(ws, 0, sizeof *ws);
    snprintf(ws->host, sizeof ws->host, "%s:%u", host, ntohs(addr->sin_port));
    snprintf(ws->path, sizeof ws->path, "%s", path);
    snprintf(ws->protocol, sizeof ws->protocol, "%s", protocol ? protocol : "");
    ws->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ws->fd < 0)
        return -1;
    if (connect(ws->fd, (const struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
        close(ws->fd);
        ws->fd = -1;
        return -1;
    }
    ws->state = HK_WS_CONNECTING;
    return 0;
}

static int send_upgrade(hk_ws_t *ws)
{
    uint8_t nonce[16];
    RAND_bytes(nonce, sizeof nonce);
    char key[32];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    char proto[100] = "";
    if (ws->protocol[0])
        snprintf(proto, sizeof proto, "Sec-WebSocket-Protocol: %s\r\n", ws->protocol);
    char req[700];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     ws->path, ws->host, key, proto);
    ws->state = HK_WS_UPGRADING;
    return queue(ws, req, (size_t)n);
}

int hk_ws_on_writable(hk_ws_t *ws)
{
    if (ws->state == HK_WS_CLOSED)
        return -1;
    if (ws->state == HK_WS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(ws->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0)
            return -1;
        if (send_upgrade(ws) < 0)
            return -1;
    }
    return flush(ws);
}

/* RFC 6455 §5.2 base framing: FIN|RSV|opcode, MASK|len7, [len16|len64], [mask key]. */
static int send_frame(hk_ws_t *ws, int opcode, const void *data, size_t len)
{
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t mask[4];
    RAND_bytes(mask, 4);
    memcpy(hdr + h, mask, 4);
    h += 4;
    if (queue(ws, hdr, h) < 0 || grow(&ws->out, &ws->out_cap, ws->out_len + len) < 0)
        return -1;
    const uint8_t *src = data;
    uint8_t *dst = (uint8_t *)ws->out + ws->out_len;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ mask[i & 3];
    ws->out_len += len;
    if (ws->state == HK_WS_OPEN)
        return flush(ws);
    return 0;
}

int hk_ws_send_text(hk_ws_t *ws, const char *text, size_t len)
{
    if (ws->state == HK_WS_CLOSED)
        return -1;
    return send_frame(ws, 1, text, len);
}

bool hk_ws_wants_write(const hk_ws_t *ws)
{
    return ws->state == HK_WS_CONNECTING || ws->out_len > 0;
}

/* Consumes complete frames from ws->in. Returns 0, or -1 on close or protocol error. */
static int parse_frames(hk_ws_t *ws, hk_ws_message_fn fn, void *arg)
{
    size_t pos = 0;
    int rc = 0;
    while (rc == 0) {
        const uint8_t *p = (const uint8_t *)ws->in + pos;
        size_t avail = ws->in_len - pos;
        if (avail < 2)
            break;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0f;
        bool masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (len > MAX_MESSAGE)
            return -1;
        uint8_t mask[4] = {0};
        if (masked) {
            if (avail < h + 4)
                break;
            memcpy(mask, p + h, 4);
            h += 4;
        }
        if (avail < h + len)
            break;
        uint8_t *payload = (uint8_t *)ws->in + pos + h;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                payload[i] ^= mask[i & 3];
        pos += h + (size_t)len;
        switch (opcode) {
        case 0: /* continuation */
        case 1: /* text */
            if (opcode == 1)
                ws->msg_len = 0;
            if (grow(&ws->msg, &ws->msg_cap, ws->msg_len + len + 1) < 0)
                return -1;
            memcpy(ws->msg + ws->msg_len, payload, len);
            ws->msg_len += len;
            if (fin) {
                ws->msg[ws->msg_len] = '\0';
                fn(arg, ws->msg, ws->msg_len);
                ws->msg_len = 0;
            }
            break;
        case 8: /* close */
            ws->close_code = len >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
            rc = -1;
            break;
        case 9: /* ping */
            if (send_frame(ws, 10, payload, (size_t)len) < 0)
                rc = -1;
            break;
        default: /* binary, pong: ignored */
            break;
        }
    }
    memmove(ws->in, ws->in + pos, ws->in_len - pos);
    ws->in_len -= pos;
    return rc;
}

int hk_ws_on_readable(hk_ws_t *ws, hk_ws_message_fn fn, void *arg)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        if (grow(&ws->in, &ws->in_cap, ws->in_len + 65536) < 0)
            return -1;
        ssize_t n = recv(ws->fd, ws->in + ws->in_len, ws->in_cap - ws->in_len, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        ws->in_len += (size_t)n;
        if (ws->state == HK_WS_UPGRADING) {
            char *end = memmem(ws->in, ws->in_len, "\r\n\r\n", 4);
            if (!end)
                continue;
            if (ws->in_len < 12 || memcmp(ws->in + 9, "101", 3) != 0)
                return -1;
            size_t hl = (size_t)(end + 4 - ws->in);
            if (ws->protocol[0]) {
                /* the server must have picked our subprotocol (RFC 6455 §4.1, item 6) */
                *end = '\0';
                char *hit = strcasestr(ws->in, "\nSec-WebSocket-Protocol:");
                char *eol = hit ? strchr(hit + 1, '\r') : NULL;
                if (eol)
                    *eol = '\0';
                bool ok = hit && strstr(hit, ws->protocol) != NULL;
                if (eol)
                    *eol = '\r';
                *end = '\r';
                if (!ok)
                    return -1;
            }
            memmove(ws->in, ws->in + hl, ws->in_len - hl);
            ws->in_len -= hl;
            ws->state = HK_WS_OPEN;
            if (flush(ws) < 0)
                return -1;
        }
        if (ws->state == HK_WS_OPEN && parse_frames(ws, fn, arg) < 0)
            return -1;
    }
    return 0;
}

void hk_ws_close(hk_ws_t *ws)
{
    if (ws->fd >= 0) {
        if (ws->state == HK_WS_OPEN) {
            uint8_t code[2] = {0x03, 0xe8};
            send_frame(ws, 8, code, 2);
        }
        close(ws->fd);
    }
    ws->fd = -1;
    ws->state = HK_WS_CLOSED;
    free(ws->in);
    free(ws->out);
    free(ws->msg);
    ws->in = ws->out = ws->msg = NULL;
    ws->in_len = ws->out_len = ws->msg_len = ws->in_cap = ws->out_cap = ws->msg_cap = 0;
}

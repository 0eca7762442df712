#include "server/io/byte_queue.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

int hk_byte_queue_init(hk_byte_queue_t *q, size_t capacity)
{
    memset(q, 0, sizeof *q);
    q->buf = malloc(capacity);
    if (!q->buf)
        return HK_ENOMEM;
    q->capacity = capacity;
    return 0;
}

void hk_byte_queue_free(hk_byte_queue_t *q)
{
    free(q->buf);
    memset(q, 0, sizeof *q);
}

static void put(hk_byte_queue_t *q, const uint8_t *p, size_t n)
{
    size_t tail = (q->head + q->used) % q->capacity;
    size_t first = q->capacity - tail < n ? q->capacity - tail : n;
    memcpy(q->buf + tail, p, first);
    memcpy(q->buf, p + first, n - first);
    q->used += n;
}

int hk_byte_queue_push(hk_byte_queue_t *q, const uint8_t *a, size_t a_len, const uint8_t *b,
                       size_t b_len)
{
    if (a_len + b_len > q->capacity - q->used)
        return HK_ENOSPC;
    if (a_len)
        put(q, a, a_len);
    if (b_len)
        put(q, b, b_len);
    return 0;
}

int hk_byte_queue_iov(const hk_byte_queue_t *q, struct iovec iov[2])
{
    if (q->used == 0)
        return 0;
    size_t first = q->capacity - q->head < q->used ? q->capacity - q->head : q->used;
    iov[0].iov_base = q->buf + q->head;
    iov[0].iov_len = first;
    if (first == q->used)
        return 1;
    iov[1].iov_base = q->buf;
    iov[1].iov_len = q->used - first;
    return 2;
}

void hk_byte_queue_consume(hk_byte_queue_t *q, size_t n)
{
    if (n > q->used)
        n = q->used;
    q->head = (q->head + n) % q->capacity;
    q->used -= n;
    if (q->used == 0)
        q->head = 0;
}

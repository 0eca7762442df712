/* A bounded byte queue (a ring): what an ICE-TCP connection still has to write. Its
 * buffer is allocated once, at init; a push that does not fit is refused whole, so a
 * frame is queued entirely or not at all (a slow reader loses whole packets, never
 * the framing). No allocation after init. */
#ifndef HK_BYTE_QUEUE_H
#define HK_BYTE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct {
    uint8_t *buf;
    size_t capacity;
    size_t head; /* first queued byte */
    size_t used;
} hk_byte_queue_t;

/* Allocates capacity bytes. Returns 0 or HK_ENOMEM. */
int hk_byte_queue_init(hk_byte_queue_t *q, size_t capacity);
void hk_byte_queue_free(hk_byte_queue_t *q);

/* Appends a[0..a_len) then b[0..b_len) (b may be NULL with b_len 0). Returns 0, or
 * HK_ENOSPC when both do not fit (nothing is appended). */
int hk_byte_queue_push(hk_byte_queue_t *q, const uint8_t *a, size_t a_len, const uint8_t *b,
                       size_t b_len);

/* The queued bytes in order, as one or two iovecs (for writev). Returns how many. */
int hk_byte_queue_iov(const hk_byte_queue_t *q, struct iovec iov[2]);

/* Drops the first n queued bytes (n <= used): they were written. */
void hk_byte_queue_consume(hk_byte_queue_t *q, size_t n);

static inline size_t hk_byte_queue_used(const hk_byte_queue_t *q)
{
    return q->used;
}

#endif

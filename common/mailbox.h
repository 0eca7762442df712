/* A mailbox: messages to the thread that runs a libuv loop, from any thread. A message is
 * queued under a mutex and the loop is woken with uv_async_send (h2o's multithread
 * style); the loop runs each message's function, in the order they were posted. It
 * carries what crosses between signaling and the media workers (app/worker.h): their
 * commands and events, never packets.
 * Ownership: a posted message belongs to the mailbox until its function runs; the
 * function frees it (or hands it on). */
#ifndef HK_MAILBOX_H
#define HK_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

typedef struct hk_message_s hk_message_t;
struct hk_message_s {
    hk_message_t *next;
    void (*run)(hk_message_t *m); /* on the mailbox's loop; it owns m from then on */
};

typedef struct {
    uv_async_t async;
    pthread_mutex_t lock;
    hk_message_t *head, *tail;
    bool open;
} hk_mailbox_t;

/* On the loop's thread. Returns 0 or a negative libuv error. */
int hk_mailbox_init(hk_mailbox_t *mb, uv_loop_t *loop);

/* From any thread: m->run will run on the mailbox's loop. Returns false (m not taken)
 * once the mailbox is closed. */
bool hk_mailbox_post(hk_mailbox_t *mb, hk_message_t *m);

/* On the loop's thread: runs what is queued, refuses later posts, and closes the async
 * handle (the loop finishes closing it; the mailbox must outlive that). */
void hk_mailbox_close(hk_mailbox_t *mb);

/* The mutex, once the handle closed and the loop ended. */
void hk_mailbox_free(hk_mailbox_t *mb);

#endif

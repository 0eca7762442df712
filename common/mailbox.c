#include "common/mailbox.h"

static void drain(hk_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->lock);
    hk_message_t *m = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->lock);
    while (m) {
        hk_message_t *next = m->next;
        m->run(m);
        m = next;
    }
}

static void on_async(uv_async_t *async)
{
    drain(async->data);
}

int hk_mailbox_init(hk_mailbox_t *mb, uv_loop_t *loop)
{
    mb->head = mb->tail = NULL;
    mb->open = false;
    if (pthread_mutex_init(&mb->lock, NULL) != 0)
        return UV_ENOMEM;
    int rc = uv_async_init(loop, &mb->async, on_async);
    if (rc != 0) {
        pthread_mutex_destroy(&mb->lock);
        return rc;
    }
    mb->async.data = mb;
    mb->open = true;
    return 0;
}

bool hk_mailbox_post(hk_mailbox_t *mb, hk_message_t *m)
{
    m->next = NULL;
    pthread_mutex_lock(&mb->lock);
    bool open = mb->open;
    if (open) {
        if (mb->tail)
            mb->tail->next = m;
        else
            mb->head = m;
        mb->tail = m;
        /* Under the lock: close cannot free the handle between the check and the send. */
        uv_async_send(&mb->async);
    }
    pthread_mutex_unlock(&mb->lock);
    return open;
}

void hk_mailbox_close(hk_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->lock);
    bool open = mb->open;
    mb->open = false;
    pthread_mutex_unlock(&mb->lock);
    if (!open)
        return;
    drain(mb);
    uv_close((uv_handle_t *)&mb->async, NULL);
}

void hk_mailbox_free(hk_mailbox_t *mb)
{
    pthread_mutex_destroy(&mb->lock);
}

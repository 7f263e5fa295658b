/*
 * notify: a worker's announcements of queued messages to the queue
 * manager, never dropped while the worker runs (notify.c).
 */
#ifndef INDIMAIL_NOTIFY_H
#define INDIMAIL_NOTIFY_H

#include <stddef.h>
#include <uv.h>

struct notify_sender;

struct notify_sender *notify_sender_new(uv_loop_t *, int fd);
/*
 * Message id of queue is in the queue: tell the queue manager (sent with
 * the loop iteration's other lines before the loop waits again).
 */
void	notify_send(struct notify_sender *, int queue, const char *id);
/* What is pending, now (before the worker exits). */
void	notify_flush(struct notify_sender *);
/* The master: a worker died, the queue manager lists the queue again. */
void	notify_rescan(int fd);

#endif

/*
 * notify: a worker telling the queue manager of each message it queued,
 * as lines "QUEUE ID\n" packed into datagrams of at most QMGR_NOTIFY_MAX
 * bytes on the socket pair the master made (master.c keeps both ends, so
 * what was sent waits in the socket while a queue manager restarts). The
 * lines of one loop iteration (a group commit's messages) go together,
 * just before the loop waits again: one send for the batch. The
 * kernel queues only a few datagrams: when the socket is full a line is
 * not dropped but kept here and sent once the socket is writable again,
 * so the queue manager learns of every message acknowledged while it runs
 * and needs no periodic rescan (docs/delivery.md). Loop thread only.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "../deliver/qmgr.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "notify.h"

struct notify_sender {
	uv_poll_t	 poll;
	uv_prepare_t	 prepare;	/* sends the iteration's lines */
	int		 fd;
	int		 polling, batching;
	struct buf	 pending;	/* whole lines not yet sent */
};

/* The longest run of whole lines from the start that fits a datagram. */
static size_t
datagram_len(const struct buf *b)
{
	size_t len = 0;

	for (size_t i = 0; i < b->len && i < QMGR_NOTIFY_MAX; i++)
		if (b->data[i] == '\n')
			len = i + 1;
	return len;
}

static void on_writable(uv_poll_t *, int, int);

/* Sends what the socket takes; polls for room for the rest. */
static void
flush(struct notify_sender *ns)
{
	size_t len;

	while ((len = datagram_len(&ns->pending)) > 0) {
		if (send(ns->fd, ns->pending.data, len, MSG_DONTWAIT) < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS && errno != EINTR)
				log_event(LOG_WARN, "notify_failed", "error=\"%s\"",
				    strerror(errno));
			break;
		}
		buf_consume(&ns->pending, len);
	}
	if (ns->pending.len && !ns->polling)
		uv_poll_start(&ns->poll, UV_WRITABLE, on_writable);
	else if (!ns->pending.len && ns->polling)
		uv_poll_stop(&ns->poll);
	ns->polling = ns->pending.len > 0;
}

static void
on_writable(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	flush(p->data);
}

/* Before the loop waits: what this iteration announced. */
static void
on_prepare(uv_prepare_t *p)
{
	struct notify_sender *ns = p->data;

	uv_prepare_stop(p);
	ns->batching = 0;
	notify_flush(ns);
}

struct notify_sender *
notify_sender_new(uv_loop_t *loop, int fd)
{
	struct notify_sender *ns = xcalloc(1, sizeof(*ns));

	ns->fd = fd;
	uv_poll_init(loop, &ns->poll, fd);
	ns->poll.data = ns;
	uv_prepare_init(loop, &ns->prepare);
	ns->prepare.data = ns;
	return ns;
}

void
notify_send(struct notify_sender *ns, int queue, const char *id)
{
	buf_printf(&ns->pending, "%d %s\n", queue, id);
	if (!ns->polling && !ns->batching) {
		uv_prepare_start(&ns->prepare, on_prepare);
		ns->batching = 1;
	}
}

void
notify_flush(struct notify_sender *ns)
{
	if (!ns->polling)	/* else the socket is full: sent when writable */
		flush(ns);
}

/*
 * The master, when a worker is gone (perhaps with lines it could not send
 * yet): the queue manager lists the queue's ids once more.
 */
void
notify_rescan(int fd)
{
	if (send(fd, QMGR_NOTIFY_SCAN "\n", sizeof(QMGR_NOTIFY_SCAN),
	    MSG_DONTWAIT) < 0)
		log_event(LOG_WARN, "notify_failed", "error=\"%s\"",
		    strerror(errno));
}

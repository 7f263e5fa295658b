/*
 * qmgr_control: the queue manager's control socket (<queue.path>/qmgr.sock)
 * for `indimail queue ...`: one request line per connection (at most
 * CONTROL_LINE_MAX bytes), answered by qmgr_command() and closed. The
 * client's uid comes from the socket (SO_PEERCRED) for the log. Here are
 * the commands that only read (list, show, mailq: the active set, then
 * the messages outside it as qmgr_disk.c reads them, then those a worker
 * acknowledged that it was not told of yet, qmgr_unsettled.c, so the
 * answer may come later) and directory-flush; those that change the queue are
 * qmgr_admin.c's. `active` says how large the active set is;
 * `destinations` shows the destination table (qmgr_dests.c).
 */
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../directory/directory.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define CONTROL_LINE_MAX	4096	/* a request: 64 ids and every filter fit */

struct qmgr_control {
	uv_pipe_t	 pipe;		/* the listening socket */
	struct qmgr	*q;
};

struct control_conn {
	uv_pipe_t	 pipe;
	struct qmgr	*q;
	struct buf	 in;
	long		 uid;		/* the client's, -1: unknown */
};

static void
on_control_closed(uv_handle_t *h)
{
	struct control_conn *c = h->data;

	buf_free(&c->in);
	free(c);
}

static void
on_control_written(uv_write_t *req, int status)
{
	struct control_conn *c = req->data;

	(void)status;
	buf_free((struct buf *)((char *)req + sizeof(*req)));
	free(req);
	uv_close((uv_handle_t *)&c->pipe, on_control_closed);
}

/* A command's answer (qmgr_reply_fn): written, then the socket closed. */
static void
control_reply(void *arg, struct buf *out)
{
	struct control_conn *c = arg;
	uv_write_t *req = xcalloc(1, sizeof(*req) + sizeof(struct buf));
	struct buf *keep = (struct buf *)((char *)req + sizeof(*req));
	uv_buf_t b;

	*keep = *out;
	req->data = c;
	b = uv_buf_init(keep->data, (unsigned)keep->len);
	if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, on_control_written) < 0) {
		buf_free(keep);
		free(req);
		uv_close((uv_handle_t *)&c->pipe, on_control_closed);
	}
}

static void
on_control_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(hint);
	b->len = hint;
}

static void
on_control_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct control_conn *c = s->data;
	char *nl;

	if (n > 0)
		buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	if (n < 0 || c->in.len > CONTROL_LINE_MAX) {
		uv_close((uv_handle_t *)&c->pipe, on_control_closed);
		return;
	}
	if ((nl = memchr(c->in.data, '\n', c->in.len)) == NULL)
		return;
	*nl = '\0';
	uv_read_stop(s);
	qmgr_command(c->q, c->in.data, c->uid, control_reply, c);
}

static long
peer_uid(uv_pipe_t *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)p, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return -1;
	return (long)cred.uid;
}

static void
on_control_connection(uv_stream_t *server, int status)
{
	struct qmgr_control *ctl = server->data;
	struct control_conn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->q = ctl->q;
	uv_pipe_init(ctl->q->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
		uv_close((uv_handle_t *)&c->pipe, on_control_closed);
		return;
	}
	c->uid = peer_uid(&c->pipe);
	uv_read_start((uv_stream_t *)&c->pipe, on_control_alloc, on_control_read);
}

/* Listens on <queue.path>/qmgr.sock. */
void
qmgr_control_open(struct qmgr *q)
{
	struct qmgr_control *ctl = xcalloc(1, sizeof(*ctl));
	struct buf path = BUF_INIT;
	int rc;

	ctl->q = q;
	q->control = ctl;
	buf_printf(&path, "%s/qmgr.sock", q->cfg->queue_path);
	unlink(buf_cstr(&path));
	uv_pipe_init(q->loop, &ctl->pipe, 0);
	ctl->pipe.data = ctl;
	if ((rc = uv_pipe_bind(&ctl->pipe, buf_cstr(&path))) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&ctl->pipe, 16,
	    on_control_connection)) != 0)
		log_event(LOG_ERROR, "control_error", "path=%s error=%s",
		    buf_cstr(&path), uv_strerror(rc));
	else
		chmod(buf_cstr(&path), 0660);
	buf_free(&path);
}


/* ---- the commands ---------------------------------------------------------- */

/*
 * Why recipient i waits: its last temporary failure, else the reason of
 * its destination while that is down (a message held back was never
 * tried and has no error of its own).
 */
static const char *
rcpt_why(const struct qmgr *q, struct qmsg *m, size_t i)
{
	const char *held;

	if (m->why[i].len)
		return buf_cstr(&m->why[i]);
	held = scheduler_held_why(q, m, i);
	return held ? held : "";
}

static void
describe(const struct qmgr *q, struct qmsg *m, struct buf *out)
{
	static const char *names[] = { "pending", "active", "done" };
	uint64_t now = uv_now(q->loop);

	queue_format_entry(out, m->item.env.id, (long long)time(NULL) -
	    m->item.env.received, m->item.size, m->item.env.sender, m->hold);
	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		buf_printf(out, "    %-8s <%s>", names[m->st[i]], m->item.env.rcpts[i]);
		if (m->st[i] == RS_PENDING && (m->attempts || m->next_try > now))
			buf_printf(out, " attempts=%d next_retry=%llds",
			    m->attempts, m->next_try > now ?
			    (long long)(m->next_try - now + 999) / 1000 : 0LL);
		if (m->st[i] == RS_PENDING && *rcpt_why(q, m, i))
			buf_printf(out, " last_error=\"%s\"", rcpt_why(q, m, i));
		buf_appendc(out, '\n');
	}
}

/* Postfix's mailq: recipients not yet final, each with its last deferral. */
static void
mailq_one(const struct qmgr *q, struct qmsg *m, int first, struct buf *out)
{
	const char *last = NULL;
	char status = m->hold ? '!' : ' ';

	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (m->st[i] == RS_BUSY)
			status = m->hold ? '!' : '*';
	queue_mailq_message(out, first, m->item.env.id, status, m->item.size,
	    m->item.env.received, m->item.env.sender);
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (m->st[i] != RS_DONE)
			queue_mailq_rcpt(out, m->item.env.rcpts[i],
			    rcpt_why(q, m, i), &last);
}

/* A list, mailq or show while messages are read from disk. */
struct listing {
	struct buf	 out;
	size_t		 count;
	unsigned long long bytes;
	int		 mailq;
	const char	*show;		/* show: show_id, else NULL */
	char		 show_id[QUEUE_ID_LEN + 1];
	qmgr_reply_fn	 reply;
	void		*arg;
	struct qmgr_unsettled *unsettled;	/* the backend's, not told yet */
};

static void
list_one(struct qmgr *q, struct qmsg *m, struct listing *l)
{
	qmgr_unsettled_shown(l->unsettled, m->item.env.id);
	if (l->mailq)
		mailq_one(q, m, l->count == 0, &l->out);
	else
		describe(q, m, &l->out);
	if (l->show)
		buf_printf(&l->out, "path %s\n", m->item.path);
	l->bytes += m->item.size;
	l->count++;
}

static void
list_disk(struct qmgr *q, struct qmsg *m, struct qwait *e, void *arg)
{
	if (e == NULL) {	/* the table's */
		list_one(q, m, arg);
		return;
	}
	m->next_try = e->due;
	list_one(q, m, arg);
	qmsg_free(m);
}

/* An unsettled message the table and the disk walk did not show. */
static void
list_unsettled(struct qmgr *q, struct qmsg *m, void *arg)
{
	list_one(q, m, arg);
}

static void
list_end(struct qmgr *q, void *arg)
{
	struct listing *l = arg;

	qmgr_unsettled_rest(q, l->unsettled, list_unsettled, l);
	if (l->show && l->count == 0)
		buf_printf(&l->out, "error no message in the queue: %s\n",
		    l->show);
	else {
		if (l->mailq)
			queue_mailq_total(&l->out, l->bytes, l->count);
		buf_printf(&l->out, "ok %zu\n", l->count);
	}
	l->reply(l->arg, &l->out);
	free(l);
}

/* The table, then the disk; the unsettled messages were read first. */
static void
list_start(struct qmgr *q, struct qmgr_unsettled *u, void *arg)
{
	struct listing *l = arg;
	const char *id = l->show;
	struct qmsg *m;

	l->unsettled = u;
	if (id && (m = qmgr_table_find(q->table, id)) != NULL &&
	    m->removed_at == 0)
		list_one(q, m, l);
	for (m = id ? NULL : qmgr_table_first(q->table); m; m = m->next)
		list_one(q, m, l);
	if (id && l->count)
		list_end(q, l);
	else
		qmgr_disk_walk(q, id ? (const char (*)[QUEUE_ID_LEN + 1])id :
		    NULL, id ? 1 : 0, list_disk, list_end, l);
}

/*
 * list and mailq: every message; show: the one of id. A message a worker
 * acknowledged is shown before the queue manager hears of it.
 */
static void
command_list(struct qmgr *q, int mailq, const char *id, qmgr_reply_fn reply,
    void *arg)
{
	struct listing *l = xcalloc(1, sizeof(*l));

	l->mailq = mailq;
	if (id) {
		/* the caller checked strlen(id) <= QUEUE_ID_LEN */
		memcpy(l->show_id, id, strnlen(id, QUEUE_ID_LEN));
		l->show = l->show_id;
	}
	l->reply = reply;
	l->arg = arg;
	qmgr_unsettled_read(q, l->show, list_start, l);
}

/* The active set's size and limit, and the messages outside it. */
static void
command_active(struct qmgr *q, struct buf *out)
{
	buf_printf(out, "active %zu limit %d loading %d waiting %zu\nok 0\n",
	    qmgr_table_count(q->table), q->cfg->delivery.active_limit,
	    q->loading, qmgr_wait_count(q->wait));
}

/* The directory's data changed: every process forgets its answers. */
static void
command_directory_flush(struct qmgr *q, long uid, struct buf *out)
{
	directory_flush_loop(q->loop);
	if (q->dir_changed)
		q->dir_changed(q->dir_changed_arg);
	log_event(LOG_INFO, "directory_flushed", "by=control uid=%ld", uid);
	buf_printf(out, "ok 0\n");
}

void
qmgr_on_directory_change(struct qmgr *q, void (*fn)(void *), void *arg)
{
	q->dir_changed = fn;
	q->dir_changed_arg = arg;
}

/* Answers one control request ("list", "show ID", "hold ALL", ...). */
void
qmgr_command(struct qmgr *q, const char *line, long uid, qmgr_reply_fn reply,
    void *arg)
{
	char cmd[16];
	char id[QUEUE_ID_LEN + 2];
	size_t len = strcspn(line, " ");
	const char *args = line + len + (line[len] == ' ');
	int n = sscanf(line, "%15s %25s", cmd, id);
	struct buf out = BUF_INIT;

	if (n >= 1 && len < sizeof(cmd) &&
	    qmgr_admin(q, cmd, args, uid, reply, arg))
		return;
	if (n == 1 && (strcmp(cmd, "list") == 0 || strcmp(cmd, "mailq") == 0)) {
		command_list(q, cmd[0] == 'm', NULL, reply, arg);
		return;
	}
	if (n == 2 && strcmp(cmd, "show") == 0 && strlen(id) <= QUEUE_ID_LEN) {
		command_list(q, 0, id, reply, arg);
		return;
	}
	if (n == 1 && strcmp(cmd, "directory-flush") == 0)
		command_directory_flush(q, uid, &out);
	else if (n == 1 && strcmp(cmd, "active") == 0)
		command_active(q, &out);
	else if (strcmp(cmd, "destinations") == 0 && (n == 1 ||
	    strcmp(id, "down") == 0))
		qmgr_dests_command(q, n == 2, &out);
	else
		buf_printf(&out, "error unknown command (list, mailq, show ID, "
		    "active, destinations [down], directory-flush, and on ids, ALL or filters: hold, "
		    "release, remove, flush, requeue)\n");
	reply(arg, &out);
}

/*
 * qmgr_control: the queue manager's control socket (<queue.path>/qmgr.sock)
 * for `indimail queue ...`: one request line per connection (at most
 * CONTROL_LINE_MAX bytes), answered by qmgr_command() and closed. The
 * client's uid comes from the socket (SO_PEERCRED) for the log. Here are
 * the commands that only read the table (list, show, mailq) and
 * directory-flush; those that change the queue are qmgr_admin.c's.
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
	free(((struct buf *)((char *)req + sizeof(*req)))->data);
	free(req);
	uv_close((uv_handle_t *)&c->pipe, on_control_closed);
}

static void
control_reply(struct control_conn *c, struct buf *out)
{
	uv_write_t *req = xcalloc(1, sizeof(*req) + sizeof(struct buf));
	struct buf *keep = (struct buf *)((char *)req + sizeof(*req));
	uv_buf_t b;

	*keep = *out;
	req->data = c;
	b = uv_buf_init(keep->data, (unsigned)keep->len);
	if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, on_control_written) < 0) {
		free(keep->data);
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
	struct buf out = BUF_INIT;
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
	qmgr_command(c->q, c->in.data, c->uid, &out);
	control_reply(c, &out);
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

static void
command_list(struct qmgr *q, struct buf *out)
{
	int count = 0;

	for (struct qmsg *x = qmgr_table_first(q->table); x; x = x->next,
	    count++)
		describe(q, x, out);
	buf_printf(out, "ok %d\n", count);
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

static void
command_mailq(struct qmgr *q, struct buf *out)
{
	unsigned long long bytes = 0;
	size_t count = 0;

	for (struct qmsg *x = qmgr_table_first(q->table); x; x = x->next) {
		mailq_one(q, x, count++ == 0, out);
		bytes += x->item.size;
	}
	queue_mailq_total(out, bytes, count);
	buf_printf(out, "ok %zu\n", count);
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

static void
command_show(struct qmgr *q, const char *id, struct buf *out)
{
	struct qmsg *m = qmgr_table_find(q->table, id);

	if (m == NULL || m->removed_at) {
		buf_printf(out, "error no message in the queue: %s\n", id);
		return;
	}
	describe(q, m, out);
	buf_printf(out, "path %s\nok 1\n", m->item.path);
}

/* Answers one control request ("list", "show ID", "hold ALL", ...). */
void
qmgr_command(struct qmgr *q, const char *line, long uid, struct buf *out)
{
	char cmd[16], id[QUEUE_ID_LEN + 2];
	size_t len = strcspn(line, " ");
	const char *args = line + len + (line[len] == ' ');
	int n = sscanf(line, "%15s %25s", cmd, id);

	if (n >= 1 && len < sizeof(cmd) &&
	    qmgr_admin(q, cmd, args, uid, out))
		return;
	if (n == 1 && strcmp(cmd, "list") == 0)
		command_list(q, out);
	else if (n == 1 && strcmp(cmd, "mailq") == 0)
		command_mailq(q, out);
	else if (n == 2 && strcmp(cmd, "show") == 0)
		command_show(q, id, out);
	else if (n == 1 && strcmp(cmd, "directory-flush") == 0)
		command_directory_flush(q, uid, out);
	else
		buf_printf(out, "error unknown command (list, mailq, show ID, "
		    "directory-flush, and on ids, ALL or filters: hold, "
		    "release, remove, flush, requeue)\n");
}

/*
 * qmgr_control: the queue manager's control socket (<queue.path>/qmgr.sock)
 * for `indimail queue ...`: one request line per connection, answered by
 * qmgr_command() and closed. Only socket plumbing lives here.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "qmgr.h"

static uv_loop_t *control_loop;
static uv_pipe_t control;

struct control_conn {
	uv_pipe_t	 pipe;
	struct buf	 in;
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
	if (n < 0 || c->in.len > 1024) {
		uv_close((uv_handle_t *)&c->pipe, on_control_closed);
		return;
	}
	if ((nl = memchr(c->in.data, '\n', c->in.len)) == NULL)
		return;
	*nl = '\0';
	uv_read_stop(s);
	qmgr_command(c->in.data, &out);
	control_reply(c, &out);
}

static void
on_control_connection(uv_stream_t *server, int status)
{
	struct control_conn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	uv_pipe_init(control_loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
		uv_close((uv_handle_t *)&c->pipe, on_control_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, on_control_alloc, on_control_read);
}

void
qmgr_control_open(uv_loop_t *loop, const char *queue_path)
{
	struct buf path = BUF_INIT;
	int rc;

	control_loop = loop;
	buf_printf(&path, "%s/qmgr.sock", queue_path);
	unlink(buf_cstr(&path));
	uv_pipe_init(loop, &control, 0);
	if ((rc = uv_pipe_bind(&control, buf_cstr(&path))) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&control, 16,
	    on_control_connection)) != 0)
		log_event(LOG_ERROR, "control_error", "path=%s error=%s",
		    buf_cstr(&path), uv_strerror(rc));
	else
		chmod(buf_cstr(&path), 0660);
	buf_free(&path);
}


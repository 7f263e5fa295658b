/*
 * rspamd: one /checkv2 request over a non-blocking TCP socket (see
 * rspamd.h).
 *
 * States: CONNECTING -> SENDING (the head, built at the start, and the
 * message in one write) -> DONE. Reading starts at the connect, so a reply
 * that comes before the write completes (an error page) is seen. The check
 * owns its socket, timer, head and reply; it is freed when both handles
 * are closed, so a late libuv callback never touches freed memory.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "rspamd.h"

#define NS_PER_MS	1000000
#define READ_STEP	4096	/* bytes asked of the reply buffer per read */
#define HTTP_OK		200

enum rspamd_state { RSPAMD_CONNECTING, RSPAMD_SENDING, RSPAMD_DONE };

struct rspamd_check {
	enum rspamd_state state;
	uv_tcp_t	 tcp;
	uv_connect_t	 connect;
	uv_write_t	 write;
	uv_timer_t	 timer;
	int		 open_handles;
	const char	*data;		/* the caller's, until DONE */
	size_t		 len;
	struct buf	 where;		/* host:port */
	struct buf	 head, reply, text;
	uint64_t	 start_ns;
	rspamd_done_cb	 cb;
	void		*arg;
};

static void
on_closed(uv_handle_t *h)
{
	struct rspamd_check *k = h->data;

	if (--k->open_handles > 0)
		return;
	buf_free(&k->where);
	buf_free(&k->head);
	buf_free(&k->reply);
	buf_free(&k->text);
	free(k);
}

static void
close_all(struct rspamd_check *k)
{
	k->state = RSPAMD_DONE;
	uv_timer_stop(&k->timer);
	uv_close((uv_handle_t *)&k->tcp, on_closed);
	uv_close((uv_handle_t *)&k->timer, on_closed);
}

/* The check is over: the caller hears r (NULL: the error in text). */
static void
finish(struct rspamd_check *k, struct rspamd_reply *r)
{
	struct rspamd_result res = {
		.reply = r,
		.error = buf_cstr(&k->text),
		.ms = (uv_hrtime() - k->start_ns) / NS_PER_MS,
	};
	rspamd_done_cb cb = k->cb;

	close_all(k);
	if (cb)
		cb(k->arg, &res);
}

/* Ends the check with "rspamd at WHERE: what[: libuv's why]". */
static void
fail(struct rspamd_check *k, const char *what, int uverr)
{
	buf_clear(&k->text);
	buf_printf(&k->text, "rspamd at %s: %s", buf_cstr(&k->where), what);
	if (uverr)
		buf_printf(&k->text, ": %s", uv_strerror(uverr));
	finish(k, NULL);
}

/* A whole HTTP reply is in: its JSON, or why not. */
static void
conclude(struct rspamd_check *k, int status, const char *body, size_t n)
{
	struct rspamd_reply r;
	struct buf err = BUF_INIT;
	char what[64];

	if (status != HTTP_OK) {
		snprintf(what, sizeof(what), "HTTP status %d", status);
		fail(k, what, 0);
	} else if (rspamd_reply_parse(body, n, &r, &err) < 0)
		fail(k, buf_cstr(&err), 0);
	else {
		finish(k, &r);
		rspamd_reply_free(&r);
	}
	buf_free(&err);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct rspamd_check *k = h->data;

	(void)hint;
	buf_reserve(&k->reply, READ_STEP);
	*b = uv_buf_init(k->reply.data + k->reply.len,
	    (unsigned)(k->reply.cap - k->reply.len - 1));
}

/* Reply bytes: done once the HTTP reader has a whole reply. */
static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct rspamd_check *k = st->data;
	struct buf err = BUF_INIT;
	const char *body;
	size_t blen;
	int status, rc;

	(void)b;
	if (k->state == RSPAMD_DONE || nread == 0)
		return;
	if (nread < 0 && nread != UV_EOF) {
		fail(k, "read", (int)nread);
		return;
	}
	if (nread > 0)
		k->reply.len += (size_t)nread;
	rc = rspamd_http_parse(k->reply.data, k->reply.len, nread == UV_EOF,
	    &status, &body, &blen, &err);
	if (rc > 0)
		conclude(k, status, body, blen);
	else if (rc < 0)
		fail(k, buf_cstr(&err), 0);
	buf_free(&err);
}

static void
on_write_done(uv_write_t *req, int status)
{
	struct rspamd_check *k = req->data;

	if (k->state != RSPAMD_DONE && status < 0)
		fail(k, "write", status);
}

static void
on_timeout(uv_timer_t *t)
{
	struct rspamd_check *k = t->data;

	fail(k, k->state == RSPAMD_CONNECTING ? "connect timed out" :
	    "no answer in time", 0);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct rspamd_check *k = req->data;
	uv_buf_t b[2] = {
		uv_buf_init(k->head.data, (unsigned)k->head.len),
		uv_buf_init((char *)k->data, (unsigned)k->len),
	};
	int err;

	if (k->state == RSPAMD_DONE)
		return;
	if (status < 0) {
		fail(k, "connect", status);
		return;
	}
	k->state = RSPAMD_SENDING;
	err = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
	if (err == 0)
		err = uv_write(&k->write, (uv_stream_t *)&k->tcp, b, 2,
		    on_write_done);
	if (err < 0)
		fail(k, "write", err);
}

/* host:port as an address, or -1 with why in err. */
static int
target_addr(const struct rspamd_target *t, struct sockaddr_storage *ss,
    struct buf *err)
{
	if (uv_ip4_addr(t->host, t->port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(t->host, t->port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	buf_printf(err, "rspamd host must be an IPv4 or IPv6 address: %s",
	    t->host);
	return -1;
}

static struct rspamd_check *
check_new(uv_loop_t *loop, const struct rspamd_target *t,
    const struct rspamd_envelope *e, const char *data, size_t len)
{
	struct rspamd_check *k = xcalloc(1, sizeof(*k));
	struct rspamd_envelope env = *e;

	env.length = len;
	k->data = data;
	k->len = len;
	k->start_ns = uv_hrtime();
	buf_printf(&k->where, "%s:%d", t->host, t->port);
	rspamd_request_head(&k->head, buf_cstr(&k->where), &env);
	k->connect.data = k->write.data = k;
	uv_tcp_init(loop, &k->tcp);
	uv_timer_init(loop, &k->timer);
	k->tcp.data = k->timer.data = k;
	k->open_handles = 2;
	return k;
}

struct rspamd_check *
rspamd_check(uv_loop_t *loop, const struct rspamd_target *t,
    const struct rspamd_envelope *e, const char *data, size_t len,
    rspamd_done_cb cb, void *arg, struct buf *err)
{
	struct sockaddr_storage ss;
	struct rspamd_check *k;
	int rc;

	if (target_addr(t, &ss, err) < 0)
		return NULL;
	k = check_new(loop, t, e, data, len);
	rc = uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&ss,
	    on_connect);
	if (rc < 0) {
		buf_printf(err, "rspamd at %s: connect: %s",
		    buf_cstr(&k->where), uv_strerror(rc));
		close_all(k);	/* no callback: k->cb is not set yet */
		return NULL;
	}
	k->cb = cb;
	k->arg = arg;
	uv_timer_start(&k->timer, on_timeout, t->timeout_ms, 0);
	return k;
}

void
rspamd_cancel(struct rspamd_check *k)
{
	if (k == NULL || k->state == RSPAMD_DONE)
		return;
	k->cb = NULL;
	close_all(k);
}

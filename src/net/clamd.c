/*
 * clamd: one INSTREAM scan over a non-blocking socket (see clamd.h).
 *
 * States: CONNECTING -> SENDING (the command, then one chunk per write,
 * each write started by the previous one's completion) -> WAITING (the
 * zero-length chunk went; the reply is read) -> DONE. Reading starts at
 * the connect, so a reply clamd sends early ("INSTREAM size limit
 * exceeded") is seen even when our writes then fail. The scan owns its
 * socket, timer and reply; it is freed when both handles are closed, so a
 * late libuv callback never touches freed memory (it finds DONE).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "../lib/xalloc.h"
#include "clamd.h"

#define NS_PER_MS	1000000
#define READ_STEP	256	/* bytes asked of the reply buffer per read */

enum clamd_state { CLAMD_CONNECTING, CLAMD_SENDING, CLAMD_WAITING, CLAMD_DONE };

struct clamd_scan {
	enum clamd_state state;
	union {
		uv_handle_t	handle;
		uv_stream_t	stream;
		uv_pipe_t	pipe;
		uv_tcp_t	tcp;
	} sock;
	uv_connect_t	 connect;
	uv_write_t	 write;
	uv_timer_t	 timer;
	int		 open_handles;
	const char	*data;		/* the caller's, until DONE */
	size_t		 len, sent;
	unsigned char	 hdr[4];	/* the length of the chunk being written */
	int		 write_error;	/* a failed write, told if no reply came */
	struct buf	 where;		/* the socket path or host:port */
	struct buf	 reply, text;
	uint64_t	 start_ns, timeout_ms;
	clamd_done_cb	 cb;
	void		*arg;
};

static char instream[] = CLAMD_INSTREAM;	/* with its NUL */

static void
on_closed(uv_handle_t *h)
{
	struct clamd_scan *s = h->data;

	if (--s->open_handles > 0)
		return;
	buf_free(&s->where);
	buf_free(&s->reply);
	buf_free(&s->text);
	free(s);
}

static void
close_all(struct clamd_scan *s)
{
	s->state = CLAMD_DONE;
	uv_close(&s->sock.handle, on_closed);
	uv_close((uv_handle_t *)&s->timer, on_closed);
}

/* The scan is over: the caller hears the verdict, the handles close. */
static void
finish(struct clamd_scan *s, enum clamd_verdict v)
{
	struct clamd_result r = {
		.verdict = v,
		.text = buf_cstr(&s->text),
		.ms = (uv_hrtime() - s->start_ns) / NS_PER_MS,
	};
	clamd_done_cb cb = s->cb;

	uv_timer_stop(&s->timer);
	close_all(s);
	if (cb)
		cb(s->arg, &r);
}

/* Ends the scan with "clamd at WHERE: what[: detail]". */
static void
fail(struct clamd_scan *s, const char *what, int uverr)
{
	buf_clear(&s->text);
	buf_printf(&s->text, "clamd at %s: %s", buf_cstr(&s->where), what);
	if (uverr)
		buf_printf(&s->text, ": %s", uv_strerror(uverr));
	finish(s, CLAMD_ERROR);
}

static void on_write_done(uv_write_t *, int);

/* Writes the next chunk (SENDING); the zero-length one ends the stream. */
static void
send_next(struct clamd_scan *s)
{
	size_t n = s->len - s->sent;
	uv_buf_t b[2];
	int err;

	if (n > CLAMD_CHUNK_MAX)
		n = CLAMD_CHUNK_MAX;
	clamd_chunk_header((uint32_t)n, s->hdr);
	b[0] = uv_buf_init((char *)s->hdr, sizeof(s->hdr));
	b[1] = uv_buf_init((char *)s->data + s->sent, (unsigned)n);
	s->sent += n;
	if (n == 0)
		s->state = CLAMD_WAITING;
	err = uv_write(&s->write, &s->sock.stream, b, n ? 2 : 1, on_write_done);
	if (err < 0)
		fail(s, "write", err);
}

/* A write completed: the next chunk, unless the stream is over. */
static void
on_write_done(uv_write_t *req, int status)
{
	struct clamd_scan *s = req->data;

	if (s->state == CLAMD_DONE)
		return;
	if (status < 0) {	/* clamd may have said why: keep reading */
		s->write_error = status;
		s->state = CLAMD_WAITING;
		return;
	}
	if (s->state == CLAMD_SENDING)
		send_next(s);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct clamd_scan *s = h->data;

	(void)hint;
	buf_reserve(&s->reply, READ_STEP);
	*b = uv_buf_init(s->reply.data + s->reply.len,
	    (unsigned)(s->reply.cap - s->reply.len - 1));
}

/* Reply bytes: done at the NUL; EOF or an error before it is a failure. */
static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct clamd_scan *s = st->data;
	long end;

	(void)b;
	if (s->state == CLAMD_DONE || nread == 0)
		return;
	if (nread < 0) {	/* a failed write says more than the EOF after it */
		int why = s->write_error ? s->write_error : (int)nread;
		fail(s, nread == UV_EOF ? "connection closed before the reply" :
		    "read", why == UV_EOF ? 0 : why);
		return;
	}
	s->reply.len += (size_t)nread;
	end = clamd_reply_end(s->reply.data, s->reply.len);
	if (end >= 0)
		finish(s, clamd_reply_parse(s->reply.data, (size_t)end,
		    &s->text));
	else if (s->reply.len > CLAMD_REPLY_MAX)
		fail(s, "reply too long", 0);
}

static uint64_t
elapsed_ms(const struct clamd_scan *s)
{
	return (uv_hrtime() - s->start_ns) / NS_PER_MS;
}

static void
on_timeout(uv_timer_t *t)
{
	struct clamd_scan *s = t->data;

	fail(s, s->state == CLAMD_CONNECTING ? "connect timed out" :
	    "no answer in time", 0);
}

/* Connected: the whole scan's time is what is left of timeout_ms. */
static void
on_connect(uv_connect_t *req, int status)
{
	struct clamd_scan *s = req->data;
	uv_buf_t b = uv_buf_init(instream, sizeof(instream));
	uint64_t spent = elapsed_ms(s);
	int err;

	if (s->state == CLAMD_DONE)
		return;
	if (status < 0) {
		fail(s, "connect", status);
		return;
	}
	s->state = CLAMD_SENDING;
	uv_timer_start(&s->timer, on_timeout,
	    spent < s->timeout_ms ? s->timeout_ms - spent : 1, 0);
	err = uv_read_start(&s->sock.stream, on_alloc, on_read);
	if (err == 0)
		err = uv_write(&s->write, &s->sock.stream, &b, 1, on_write_done);
	if (err < 0)
		fail(s, "write", err);
}

/* The address of t, or -1 with why in err (nothing is opened yet). */
static int
target_addr(const struct clamd_target *t, struct sockaddr_storage *ss,
    struct buf *err)
{
	if (t->socket) {
		if (strlen(t->socket) < sizeof(((struct sockaddr_un *)0)->sun_path))
			return 0;
		buf_printf(err, "clamd socket path too long: %s", t->socket);
		return -1;
	}
	if (uv_ip4_addr(t->host, t->port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(t->host, t->port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	buf_printf(err, "clamd host must be an IPv4 or IPv6 address: %s",
	    t->host);
	return -1;
}

/* Opens the socket and starts its connect; < 0: a libuv error. */
static int
start_connect(struct clamd_scan *s, uv_loop_t *loop,
    const struct clamd_target *t, const struct sockaddr_storage *ss)
{
	if (t->socket) {
		buf_appends(&s->where, t->socket);
		uv_pipe_init(loop, &s->sock.pipe, 0);
		s->sock.handle.data = s;
		uv_pipe_connect(&s->connect, &s->sock.pipe, t->socket, on_connect);
		return 0;
	}
	buf_printf(&s->where, "%s:%d", t->host, t->port);
	uv_tcp_init(loop, &s->sock.tcp);
	s->sock.handle.data = s;
	return uv_tcp_connect(&s->connect, &s->sock.tcp,
	    (const struct sockaddr *)ss, on_connect);
}

int
clamd_scan(uv_loop_t *loop, const struct clamd_target *t, const char *data,
    size_t len, clamd_done_cb cb, void *arg, struct clamd_scan **out,
    struct buf *err)
{
	struct sockaddr_storage ss;
	struct clamd_scan *s;
	int rc;

	if (target_addr(t, &ss, err) < 0)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->data = data;
	s->len = len;
	s->arg = arg;
	s->timeout_ms = t->timeout_ms;
	s->start_ns = uv_hrtime();
	s->connect.data = s->write.data = s;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->open_handles = 2;
	rc = start_connect(s, loop, t, &ss);
	if (rc < 0) {
		buf_printf(err, "clamd at %s: connect: %s",
		    buf_cstr(&s->where), uv_strerror(rc));
		close_all(s);	/* no callback: s->cb is not set yet */
		return -1;
	}
	s->cb = cb;
	uv_timer_start(&s->timer, on_timeout,
	    t->connect_ms < t->timeout_ms ? t->connect_ms : t->timeout_ms, 0);
	*out = s;
	return 0;
}

void
clamd_cancel(struct clamd_scan *s)
{
	if (s == NULL || s->state == CLAMD_DONE)
		return;
	s->cb = NULL;
	uv_timer_stop(&s->timer);
	close_all(s);
}

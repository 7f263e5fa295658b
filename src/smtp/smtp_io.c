/*
 * smtp_io: a session's socket. Replies accumulate in `out` and go out in
 * one write per pipelined group (through the TLS layer when it is on);
 * reading pauses while the client leaves its replies unread or a full
 * input backlog waits for us. Also the timers: the idle timeout within a
 * phase deadline, and the tarpit that holds a reply back. Owns no state
 * of the dialogue: it reads s->state, and sets it only for the tarpit
 * and for the last reply before a close (ST_QUIT).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "smtp_session_int.h"

static void on_timeout(uv_timer_t *);
static void on_read(uv_stream_t *, ssize_t, const uv_buf_t *);

static uv_stream_t *
stream(struct smtp_session *s)
{
	return (uv_stream_t *)&s->h;
}

/* Replies produced but not yet taken by the client. */
size_t
smtp_output_pending(struct smtp_session *s)
{
	return s->out.len + uv_stream_get_write_queue_size(stream(s));
}

/* Keeps srv->held_bytes (the server's memory budget) up to date. */
void
smtp_charge(struct smtp_session *s)
{
	size_t now = s->state == ST_CLOSED ? 0 : s->msg.cap + s->in.skip +
	    s->in.cap;

	s->srv->held_bytes += now - s->charged;	/* modular: may shrink */
	s->charged = now;
}

/* ---- timers -------------------------------------------------------------- */

/* (Re)arms the timeout: ms from now, but never past the phase deadline. */
static void
arm(struct smtp_session *s, uint64_t ms)
{
	uint64_t now = uv_now(s->srv->loop);

	if (s->deadline && now + ms > s->deadline)
		ms = s->deadline > now ? s->deadline - now : 0;
	uv_timer_start(&s->timer, on_timeout, ms, 0);
}

/* A phase that must end within ms whatever the client sends (TLS, DATA). */
void
smtp_deadline(struct smtp_session *s, int ms, int idle_ms)
{
	s->deadline = uv_now(s->srv->loop) + (uint64_t)ms;
	arm(s, (uint64_t)idle_ms);
}

/* The client's turn in the command phase: bytes do not extend it. */
void
smtp_command_turn(struct smtp_session *s)
{
	s->deadline = 0;
	arm(s, (uint64_t)smtp_cfg(s)->timeout_command);
}

static void
on_timeout(uv_timer_t *t)
{
	struct smtp_session *s = t->data;

	if (smtp_busy(s)) {	/* our own work is slow, not the client */
		uv_timer_start(&s->timer, on_timeout, 1000, 0);
		return;
	}
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    smtp_cfg(s)->hostname);
	smtp_log_reject(s, "?", "timeout");
	mail_metrics_reject("?", "421 4.4.2", "");
	smtp_flush_and_close(s);
}

static void
on_tarpit_done(uv_timer_t *t)
{
	struct smtp_session *s = t->data;

	s->state = s->resume;
	smtp_flush(s);		/* the reply held back goes now */
	smtp_process_input(s);
}

/*
 * Past limits.tarpit_after refused recipients, each reply waits a little
 * longer than the last (limits.tarpit_delay more each time, at most
 * TARPIT_MAX_MS) before it is sent and the next command is read; so does
 * the reply to a failed AUTH (smtp_auth_delay), and the reply after a hook
 * said indimail.tarpit (s->hook_delay). The timer waits; nobody
 * else does. Returns 1 if the session now waits.
 */
int
smtp_tarpit(struct smtp_session *s)
{
	const struct config *c = smtp_cfg(s);
	uint64_t ms = 0, auth;

	if (s->state == ST_TARPIT || s->out.len == 0)
		return 0;
	if (c->tarpit_after > 0 && c->tarpit_delay > 0 &&
	    s->bad_rcpts > c->tarpit_after)
		ms = (uint64_t)c->tarpit_delay * (uint64_t)(s->bad_rcpts -
		    c->tarpit_after);
	if ((auth = smtp_auth_delay(s)) > ms)
		ms = auth;
	if (ms > TARPIT_MAX_MS)
		ms = TARPIT_MAX_MS;
	if (s->hook_delay > ms)		/* bounded by limits.tarpit_max */
		ms = s->hook_delay;
	s->hook_delay = 0;
	if (ms == 0)
		return 0;
	s->resume = s->state;
	s->state = ST_TARPIT;
	uv_timer_start(&s->tarpit, on_tarpit_done, ms, 0);
	return 1;
}

/* ---- output ------------------------------------------------------------ */

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_appends(&s->out, "\r\n");
}

#define OUT_KEEP	1024	/* bytes of reply buffer a session keeps */

struct write_req {
	uv_write_t	 req;
	struct smtp_session *s;
	struct buf	 data;
};

static void
on_write_done(uv_write_t *req, int status)
{
	struct write_req *wr = (struct write_req *)req;
	struct smtp_session *s = wr->s;	/* freed only after its handles close */

	buf_free(&wr->data);
	free(wr);
	if (status < 0 || s->state == ST_CLOSED)
		return;		/* a failed write shows up as a read error/EOF */
	if (smtp_output_pending(s) < OUTPUT_HIGH / 2 && !smtp_busy(s))
		smtp_process_input(s);	/* the client reads again: go on */
}

/*
 * Writes data (taking it over) to the socket as it is: first straight
 * away (uv_try_write: no request, no epoll_ctl when the kernel takes it
 * all, the usual case), what is left through a queued uv_write. A buffer
 * written whole is kept for the next replies unless it grew large.
 */
static void
send_raw(struct smtp_session *s, struct buf *data)
{
	struct write_req *wr;
	uv_buf_t b;
	int n;

	if (data->len == 0 || s->state == ST_CLOSED)
		return;
	b = uv_buf_init(data->data, (unsigned)data->len);
	n = uv_try_write(stream(s), &b, 1);
	if (n == (int)data->len || (n < 0 && n != UV_EAGAIN)) {
		if (data->cap > OUT_KEEP)	/* a failed write shows up as a */
			buf_free(data);		/* read error/EOF, as below */
		else
			buf_clear(data);
		return;
	}
	if (n > 0)
		buf_consume(data, (size_t)n);
	wr = xcalloc(1, sizeof(*wr));
	wr->s = s;
	wr->data = *data;		/* take ownership */
	memset(data, 0, sizeof(*data));
	b = uv_buf_init(wr->data.data, (unsigned)wr->data.len);
	if (uv_write(&wr->req, stream(s), &b, 1, on_write_done) < 0) {
		buf_free(&wr->data);
		free(wr);
	}
}

void
smtp_flush(struct smtp_session *s)
{
	struct buf net = BUF_INIT;

	if (s->out.len == 0 || s->state == ST_TARPIT)
		return;
	if (s->tls_on && !s->tls.established)
		return;		/* implicit TLS: the greeting waits for the handshake */
	if (s->tls_on) {
		tls_output(&s->tls, s->out.data, s->out.len, &net);
		buf_clear(&s->out);
		send_raw(s, &net);
		buf_free(&net);
		return;
	}
	send_raw(s, &s->out);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct smtp_session *s = req->data;

	(void)status;
	free(req);
	smtp_session_close(s, NULL);
}

/* Flushes and closes once the last reply has been written. */
void
smtp_flush_and_close(struct smtp_session *s)
{
	uv_shutdown_t *req;

	if (s->state == ST_TARPIT)	/* leaving: the held reply goes now */
		uv_timer_stop(&s->tarpit);
	s->state = ST_QUIT;
	smtp_flush(s);
	smtp_update_reading(s);
	req = xcalloc(1, sizeof(*req));
	req->data = s;
	if (uv_shutdown(req, stream(s), on_shutdown) < 0) {
		free(req);
		smtp_session_close(s, NULL);
	}
}

/*
 * The watchdog's last 421, written straight to the socket (another thread:
 * the loop is stuck). Not during a TLS handshake: it would not be read.
 */
void
smtp_last_words(struct smtp_session *s, const struct buf *line)
{
	struct buf net = BUF_INIT;
	const struct buf *out = line;
	uv_os_fd_t fd;

	if (s->state == ST_CLOSED || uv_fileno((uv_handle_t *)&s->h, &fd) != 0 ||
	    (s->tls_on && !s->tls.established))
		return;
	if (s->tls_on) {
		tls_output(&s->tls, line->data, line->len, &net);
		out = &net;
	}
	if (write(fd, out->data, out->len) < 0) {
		/* the client is gone: nothing to tell */
	}
	buf_free(&net);
}

/* ---- input ------------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct smtp_session *s = h->data;

	(void)hint;
	*b = uv_buf_init(s->srv->readbuf, sizeof(s->srv->readbuf));
}

/*
 * Reading goes on unless the client has not taken its replies, or a full
 * input backlog waits for a hook or the queue: then the kernel's window
 * pushes back on the client instead of our memory growing.
 */
void
smtp_update_reading(struct smtp_session *s)
{
	int want = s->state != ST_QUIT && s->state != ST_CLOSED &&
	    !s->peer_eof && s->in.len <= INPUT_BACKLOG &&
	    smtp_output_pending(s) < OUTPUT_HIGH;

	if (want && !s->reading) {
		s->reading = 1;
		uv_read_start(stream(s), on_alloc, on_read);
	} else if (!want && s->reading) {
		s->reading = 0;
		uv_read_stop(stream(s));
	}
}

/* Bytes through the TLS layer into s->in; -1 when the session closed. */
static int
take_bytes(struct smtp_session *s, const char *p, size_t n)
{
	struct buf net = BUF_INIT, err = BUF_INIT;

	if (!s->tls_on) {
		buf_append(&s->in, p, n);
		return 0;
	}
	if (tls_input(&s->tls, p, n, &s->in, &net, &err) < 0) {
		send_raw(s, &net);
		smtp_session_close(s, buf_cstr(&err));
		buf_free(&net);
		buf_free(&err);
		return -1;
	}
	send_raw(s, &net);	/* handshake records */
	buf_free(&net);
	return 0;
}

/* Bytes arrived: only DATA re-arms its idle timer (within its deadline). */
static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct smtp_session *s = st->data;
	int handshaking = s->tls_on && !s->tls.established;

	if (n == UV_EOF && s->state != ST_CLOSED) {
		/* Half-close: answer what was already sent (QUIT included). */
		s->peer_eof = 1;
		smtp_update_reading(s);
		smtp_process_input(s);
		return;
	}
	if (n < 0) {
		smtp_session_close(s, uv_strerror((int)n));
		return;
	}
	if (n == 0)
		return;
	if (s->tx == TX_DATA)
		arm(s, (uint64_t)smtp_cfg(s)->timeout_data);
	if (take_bytes(s, b->base, (size_t)n) < 0)
		return;
	if (handshaking && s->tls.established)
		smtp_command_turn(s);	/* the handshake deadline is over */
	smtp_process_input(s);
}

/*
 * smtp_session: one SMTP connection from accept to close, and the state
 * machine that says what it is doing now (RFC 5321 with PIPELINING, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS and AUTH). Input is consumed only in
 * COMMAND, LONGLINE and DATA: while a hook, the tarpit or the queue write
 * is in flight it waits, which is what makes pipelining and yielding hooks
 * safe. The TLS handshake is the TLS layer's business (smtp_io.c): it may
 * overlap the connect hook, and commands simply arrive once it is done.
 *
 *  accept -> CONNECT --connect hook--> COMMAND <--> LONGLINE (line too long)
 *  CONNECT, COMMAND, DATA --a hook yields--> HOOK --verdict--> resume
 *  COMMAND, DATA --reply held back--> TARPIT --timer--> resume
 *  COMMAND (MAIL, RCPT, AUTH), DATA (dot) --the directory answers later-->
 *      LOOKUP --answer--> resume
 *  COMMAND --AUTH, 334--> AUTH --the answer line--> COMMAND (or LOOKUP;
 *      LOGIN asks twice; "*", a bad line or an over-long one: COMMAND)
 *  COMMAND --DATA, 354--> DATA --dot, hooks accept--> QUEUE --250/451-->
 *      COMMAND; a refused message goes from DATA to COMMAND at once
 *  CONNECT, COMMAND, LONGLINE, DATA --QUIT, 421, HTTP--> QUIT --> CLOSED
 *  any --read error, EOF--> CLOSED (a queue write in flight holds it)
 *
 * The transaction (s->tx): NONE -MAIL-> MAIL -RCPT-> RCPT -DATA-> DATA,
 * back to NONE after the reply to the dot, RSET, HELO/EHLO or STARTTLS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "../net/connlimit.h"
#include "smtp_session_int.h"

/* Our own work is in flight (the client's bytes wait): not its turn. */
int
smtp_busy(const struct smtp_session *s)
{
	switch (s->state) {
	case ST_HOOK:
	case ST_TARPIT:
	case ST_LOOKUP:
	case ST_QUEUE:
		return 1;
	default:
		return 0;
	}
}

/* ---- hooks ------------------------------------------------------------- */

static void
fill_ctx(struct smtp_session *s)
{
	struct hook_ctx *c = &s->ctx;

	memset(c, 0, sizeof(*c));
	c->session_id = s->id;
	c->ip = s->ip;
	c->port = s->port;
	c->local_ip = s->local_ip;
	c->local_port = s->local_port;
	c->listener = s->listener->name;
	c->helo = s->helo;
	c->esmtp = s->esmtp;
	c->tls = s->tls_on;
	c->tls_version = s->tls_on ? tls_version(&s->tls) : NULL;
	c->tls_cipher = s->tls_on ? tls_cipher(&s->tls) : NULL;
	c->relay = smtp_may_relay(s);
	c->relay_grant = smtp_relay_grant;
	c->relay_arg = s;
	c->auth_user = s->auth_user;
	c->queue_id = s->qid[0] ? s->qid : NULL;
	c->sender = s->tx != TX_NONE ? buf_cstr(&s->sender) : NULL;
	c->rcpts = s->rcpts;
	c->nrcpts = s->nrcpts;
	c->size_hint = s->tx != TX_NONE && s->mail.has_size ? s->mail.size : 0;
	c->holds = &s->holds;
	c->env = &s->env;
	c->session_obj = &s->session_obj;
	c->tx_obj = s->tx != TX_NONE ? &s->tx_obj : NULL;
	c->message = &s->msg;
	c->header_len = s->header_len;
	if (s->hook_stage == HOOK_DATA || s->hook_stage == HOOK_MESSAGE) {
		c->edit = &s->edit;
		c->tx_edit = &smtp_tx_edit;
		c->tx_edit_arg = s;
	}
}

/* A tarpit verdict: the next reply waits (limits.tarpit_max at most). */
static void
take_delay(struct smtp_session *s, const struct hook_verdict *v)
{
	uint64_t ms = v->delay_ms, max = (uint64_t)smtp_cfg(s)->tarpit_max;

	if (ms > max)
		ms = max;
	if (ms > s->hook_delay)
		s->hook_delay = ms;
}

/*
 * Replies with the verdict when it refuses; returns 1 if the step may go on.
 * A discard is remembered: the transaction (from connect, helo or auth the
 * session) is accepted and dropped; so are hold and quarantine, for the
 * commit. A tarpit delays the reply, whatever it is (smtp_tarpit).
 */
int
smtp_verdict_allows(struct smtp_session *s, struct hook_verdict *v)
{
	take_delay(s, v);
	switch (v->action) {
	case VERDICT_ACCEPT:
	case VERDICT_ROUTE:	/* the route hook's: never here */
		return 1;
	case VERDICT_DISCARD:
		smtp_log_verdict(s, v);
		s->discard = 1;
		if (s->hook_stage <= HOOK_AUTH)
			s->discard_session = 1;
		return 1;
	case VERDICT_HOLD:
	case VERDICT_QUARANTINE:
		smtp_log_verdict(s, v);
		smtp_tx_hold(s, v);
		return 1;
	default:
		smtp_log_verdict(s, v);
		smtp_reply(s, "%d %s %s", v->code, v->status,
		    buf_cstr(&v->text));
		return 0;
	}
}

/* ST_HOOK: the verdict is in; back to where the hook started, then on. */
static void
on_hook_done(void *arg, struct hook_verdict *v)
{
	struct smtp_session *s = arg;

	s->hook = NULL;
	s->state = s->resume;
	s->after(s, v);
	hook_verdict_free(v);
	if (s->state == ST_CLOSED)
		return;
	if (s->state == ST_COMMAND)
		smtp_command_turn(s);	/* answered: the client's turn */
	smtp_process_input(s);
}

/* Runs the hooks of a stage, then calls after(s, verdict). */
void
smtp_run_hooks(struct smtp_session *s, enum hook_stage stage,
    after_hook_fn after)
{
	struct hook_verdict v;

	s->hook_stage = stage;
	s->after = after;
	fill_ctx(s);
	if (stage == HOOK_RCPT)
		s->ctx.rcpt = buf_cstr(&s->rcpt.path);
	if (hook_run(s->rt, stage, &s->ctx, &v, on_hook_done, s,
	    &s->hook) == HOOK_DONE) {
		after(s, &v);
		hook_verdict_free(&v);
		return;
	}
	s->resume = s->state;
	s->state = ST_HOOK;
	smtp_flush(s);
}

/* ---- input ------------------------------------------------------------- */

static int
reading_commands(const struct smtp_session *s)
{
	return s->state == ST_COMMAND || s->state == ST_LONGLINE ||
	    s->state == ST_AUTH;
}

/* The longest line now: AUTH's lines may be longer than commands. */
static size_t
line_max(struct smtp_session *s)
{
	if (s->state == ST_AUTH || (s->state == ST_COMMAND && s->in.len >= 5 &&
	    strncasecmp(s->in.data, "AUTH ", 5) == 0))
		return SMTP_AUTH_LINE_MAX;
	return smtp_cfg(s)->max_command_line;
}

/* What is wrong with the line of len bytes (LF excluded), or NULL. */
static const char *
line_error(struct smtp_session *s, size_t len)
{
	if (s->state == ST_LONGLINE) {
		s->state = ST_COMMAND;
		return "500 5.5.2 Syntax error: command line too long";
	}
	if (len == 0 || s->in.data[len - 1] != '\r')
		return "500 5.5.2 Syntax error: command line must end with "
		    "CRLF (bare LF)";
	if (len + 1 > line_max(s))
		return "500 5.5.2 Syntax error: command line too long";
	if (memchr(s->in.data, '\r', len - 1))
		return "500 5.5.2 Syntax error: bare CR in command line";
	return NULL;
}

/* After STARTTLS nothing pipelined in clear may count (RFC 3207 4.2,
 * CVE-2011-0411). */
static void
drop_pipelined(struct smtp_session *s)
{
	struct logline l;

	if (s->in.len == 0)
		return;
	smtp_log_session(s, &l, LOG_WARN, "starttls_pipelined");
	log_kvi(&l, "discarded_bytes", (long long)s->in.len);
	log_end(&l);
	buf_clear(&s->in);
}

/*
 * ST_COMMAND or ST_LONGLINE: takes one command line off the input; returns
 * 0 if none is complete. A line over the limit is dropped as it comes
 * (ST_LONGLINE) and refused when its LF arrives.
 */
static int
command_next(struct smtp_session *s)
{
	char *lf = memchr(s->in.data, '\n', s->in.len);
	int plain = !s->tls_on;
	const char *why;
	size_t len;

	if (lf == NULL) {
		if (s->in.len > line_max(s)) {
			smtp_auth_abort(s);	/* an AUTH answer too */
			s->state = ST_LONGLINE;
			buf_clear(&s->in);
		}
		return 0;
	}
	len = (size_t)(lf - s->in.data);
	if ((why = line_error(s, len)) != NULL) {
		smtp_auth_abort(s);
		smtp_refuse(s, "?", why);
	} else if (s->state == ST_AUTH)
		smtp_auth_response(s, s->in.data, len - 1);
	else
		smtp_command_handle(s, s->in.data, len - 1);
	buf_consume(&s->in, len + 1);
	if (plain && s->tls_on)		/* STARTTLS was just accepted */
		drop_pipelined(s);
	return 1;
}

/* One step of input in the current state; 0 when nothing more can be done. */
static int
input_step(struct smtp_session *s)
{
	if (s->errors >= smtp_cfg(s)->max_errors) {
		smtp_reply(s, "421 4.7.0 %s Too many errors, closing",
		    smtp_cfg(s)->hostname);
		smtp_log_reject(s, "?", "too many errors");
		mail_metrics_reject("?", "421 4.7.0", "");
		smtp_flush_and_close(s);
		return 0;
	}
	if (s->srv->draining && reading_commands(s) && s->tx == TX_NONE) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down",
		    smtp_cfg(s)->hostname);
		smtp_flush_and_close(s);
		return 0;
	}
	if (s->in.len == 0 || smtp_output_pending(s) >= OUTPUT_HIGH)
		return 0;
	if (s->state == ST_DATA) {
		smtp_message_feed(s);
		return 1;
	}
	return command_next(s);
}

/* The states that consume input. */
static int
takes_input(const struct smtp_session *s)
{
	return reading_commands(s) || s->state == ST_DATA;
}

/* Runs the input until a step can do nothing more; the replies stay in out. */
static void
run_input(struct smtp_session *s)
{
	size_t answered = s->out.len;

	while (takes_input(s)) {
		if (smtp_tarpit(s) || !input_step(s))
			break;
		if (s->out.len > answered && (s->state == ST_COMMAND ||
		    s->state == ST_AUTH))
			smtp_command_turn(s);	/* replied: the client's turn */
		answered = s->out.len;
	}
}

/*
 * Runs the input and sends the replies. A run stopped by OUTPUT_HIGH of
 * replies goes on once the kernel took them at once (the write callback,
 * which also runs the input, comes only for a write that had to wait): a
 * client that sent all its pipelined commands sends nothing more to wake
 * us.
 */
void
smtp_process_input(struct smtp_session *s)
{
	int full;

	do {
		run_input(s);
		if (s->state == ST_CLOSED)
			return;
		full = takes_input(s) && s->in.len > 0 &&
		    smtp_output_pending(s) >= OUTPUT_HIGH;
		if (s->state != ST_QUIT)
			smtp_flush(s);
	} while (full && smtp_output_pending(s) < OUTPUT_HIGH / 2 &&
	    !smtp_busy(s));
	smtp_charge(s);
	if (s->peer_eof && !smtp_busy(s) && s->state != ST_QUIT) {
		s->state = ST_QUIT;
		smtp_flush(s);
		smtp_session_close(s, "eof");
		return;
	}
	smtp_update_reading(s);
}

/* Drain: a session between transactions gets its 421 now. */
void
smtp_session_drain(struct smtp_session *s)
{
	if (!smtp_busy(s) && s->state != ST_DATA)
		smtp_process_input(s);
}

/* ---- lifetime ---------------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
	struct smtp_session *s = h->data;

	if (--s->handles_open > 0)
		return;
	if (s->queue_holds)
		return;		/* the queue's callback finishes the job */
	buf_free(&s->in);
	buf_free(&s->out);
	buf_free(&s->sender);
	buf_free(&s->mail.path);
	buf_free(&s->rcpt.path);
	smtp_tx_reset(s);
	hook_verdict_free(&s->data_verdict);
	hook_ref_release(s->rt, &s->session_obj);
	free(s->helo);
	free(s->auth_user);
	free(s->auth_try);
	smtp_sasl_free(s);
	if (s->tls.ssl)
		tls_conn_free(&s->tls);
	directory_put(s->dir);		/* before its configuration goes */
	runtime_unref(s->rt);
	smtp_server_gone(s->srv);
	free(s);
}

/* What the connection limits count this session by (NULL: the total only). */
static const struct sockaddr *
peer_key(const struct smtp_session *s)
{
	return s->listener->local ? NULL : (const struct sockaddr *)&s->peer;
}

static void
close_handles(struct smtp_session *s)
{
	s->handles_open = 3;
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->tarpit, on_handle_closed);
	uv_close((uv_handle_t *)&s->h, on_handle_closed);
}

/* Any state -> ST_CLOSED; again once closed: frees what is left. */
void
smtp_session_close(struct smtp_session *s, const char *why)
{
	struct logline l;

	if (s->state == ST_CLOSED) {
		if (!s->queue_holds && s->handles_open == 0)
			on_handle_closed((uv_handle_t *)&s->h);
		return;
	}
	s->state = ST_CLOSED;
	/* released before the line: once it is logged, the session no
	 * longer counts against any limit */
	hook_cancel(s->hook);
	s->hook = NULL;
	hook_holds_release(&s->holds);	/* indimail.counter.hold */
	directory_cancel(s->dirq);
	s->dirq = NULL;
	if (s->counted)
		connlimit_release(s->srv->conns, s->srv->index, peer_key(s));
	smtp_log_session(s, &l, LOG_INFO, "disconnect");
	if (why)
		log_kv(&l, "reason", why);
	log_end(&l);
	smtp_server_unlink(s->srv, s);
	smtp_charge(s);
	close_handles(s);
}

/* CONNECT: the connect hook's verdict; the greeting, or a last reply. */
static void
after_connect(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		smtp_flush_and_close(s);
		return;
	}
	s->state = ST_COMMAND;
	smtp_reply(s, "220 %s ESMTP indimail", smtp_cfg(s)->hostname);
}

static void
log_connect(struct smtp_session *s)
{
	struct logline l;

	smtp_log_session(s, &l, LOG_INFO, "connect");
	log_kv(&l, "ip", s->ip);
	log_kvi(&l, "port", s->port);
	if (s->uid >= 0)
		log_kvi(&l, "uid", s->uid);
	log_kv(&l, "listener", s->listener->name);
	log_end(&l);
}

static void
start_session(struct smtp_session *s)
{
	int rc;

	log_connect(s);
	metric_inc(s->listener->connections);
	/* Local submissions count toward the total only, not 127.0.0.1's. */
	rc = connlimit_acquire(s->srv->conns, s->srv->index, peer_key(s),
	    smtp_cfg(s)->max_connections, smtp_cfg(s)->max_connections_per_ip);
	if (rc < 0) {
		smtp_reply(s, rc == -1 ? "421 4.7.0 %s Too many connections, "
		    "try later" : "421 4.7.0 %s Too many connections from your "
		    "address", smtp_cfg(s)->hostname);
		smtp_log_reject(s, "connect", rc == -1 ? "connection limit" :
		    "per-IP connection limit");
		mail_metrics_reject("connect", "421 4.7.0", "");
		smtp_flush_and_close(s);
		return;
	}
	s->counted = 1;
	smtp_update_reading(s);
	if (s->listener->tls == TLS_IMPLICIT) {
		tls_conn_init(&s->tls, s->listener->tls_ctx);
		s->tls_on = 1;
		smtp_deadline(s, smtp_cfg(s)->timeout_tls,
		    smtp_cfg(s)->timeout_tls);
	} else
		smtp_command_turn(s);
	smtp_run_hooks(s, HOOK_CONNECT, after_connect);
	if (s->state == ST_COMMAND)
		smtp_tarpit(s);		/* a tarpit verdict holds the greeting */
	smtp_flush(s);
}

static void
addr_text(const struct sockaddr_storage *ss, char *ip, size_t n, int *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		uv_ip6_name(a, ip, n);
		*port = ntohs(a->sin6_port);
	} else {
		const struct sockaddr_in *a = (const void *)ss;
		uv_ip4_name(a, ip, n);
		*port = ntohs(a->sin_port);
	}
}

/* A local user: "127.0.0.1" to policies, the uid in the logs. */
static void
identify_local(struct smtp_session *s)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&s->peer;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	uv_os_fd_t fd;

	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(s->ip, sizeof(s->ip), "127.0.0.1");
	snprintf(s->local_ip, sizeof(s->local_ip), "127.0.0.1");
	if (uv_fileno((uv_handle_t *)&s->h, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
		s->uid = (long)cred.uid;
	s->relay = 1;	/* like Postfix's pickup: local users may send */
}

/* Who is at the other end: an address and port, or a local user's uid. */
static void
identify_peer(struct smtp_session *s)
{
	struct sockaddr_storage local;
	int len;

	s->uid = -1;
	if (s->listener->local) {
		identify_local(s);
		return;
	}
	uv_tcp_nodelay(&s->h.tcp, 1);
	len = sizeof(s->peer);
	uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&s->peer, &len);
	addr_text(&s->peer, s->ip, sizeof(s->ip), &s->port);
	len = sizeof(local);
	uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)&local, &len);
	addr_text(&local, s->local_ip, sizeof(s->local_ip), &s->local_port);
	s->relay = cidr_match_sockaddr(smtp_cfg(s)->relay_from,
	    smtp_cfg(s)->nrelay_from, (struct sockaddr *)&s->peer);
}

/* Accepts one connection from the listener; logs and drops on error. */
void
smtp_session_accept(struct smtp_listener *l)
{
	struct smtp_server *srv = l->server;
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->session_obj = s->tx_obj = HOOK_NO_OBJECT;
	s->srv = srv;
	s->rt = srv->rt;
	runtime_ref(s->rt);
	s->dir = directory_get(s->srv->loop, smtp_cfg(s));
	s->listener = l;
	smtp_auth_init(s);
	s->state = ST_CONNECT;
	hook_verdict_init(&s->data_verdict);
	if (l->local)
		uv_pipe_init(srv->loop, &s->h.pipe, 0);
	else
		uv_tcp_init(srv->loop, &s->h.tcp);
	uv_timer_init(srv->loop, &s->timer);
	uv_timer_init(srv->loop, &s->tarpit);
	s->h.tcp.data = s->timer.data = s->tarpit.data = s;
	smtp_server_enter(srv);
	if (uv_accept((uv_stream_t *)&l->h, (uv_stream_t *)&s->h) != 0) {
		s->state = ST_CLOSED;
		close_handles(s);
		return;
	}
	smtp_server_link(srv, s);
	snprintf(s->id, sizeof(s->id), "%lX.%lX", (unsigned long)getpid(),
	    ++srv->session_counter);
	identify_peer(s);
	start_session(s);
}

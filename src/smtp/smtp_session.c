/*
 * smtp_session: the SMTP server state machine (RFC 5321, with PIPELINING
 * RFC 2920, SIZE RFC 1870, 8BITMIME, ENHANCEDSTATUSCODES RFC 2034 and
 * STARTTLS RFC 3207).
 *
 * Each command goes through smtp_check_X (is it allowed now, are its
 * arguments valid: returns the reply on refusal) and smtp_proceed_X (run
 * the hook, act, reply). Replies accumulate in `out` and are flushed when
 * the input is exhausted or the session starts waiting, so a pipelined
 * group gets its replies in one write. While `waiting` is set (hook or
 * queue write in flight) no input is consumed.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../daemon/smtpd.h"
#include "../lib/xalloc.h"
#include "../directory/directory.h"
#include "../lua/lua_hook.h"
#include "../net/connlimit.h"
#include "../net/tls.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtp_session.h"

enum phase { PH_CONNECT, PH_COMMAND, PH_DATA, PH_CLOSED };

struct smtp_session {
	struct worker	*w;
	struct worker_listener *listener;
	struct smtp_session *prev, *next;
	struct runtime	*rt;		/* referenced for the session's life */
	union {
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;	/* local submission */
	} h;
	uv_timer_t	 timer;		/* timeouts and deadlines */
	uv_timer_t	 tarpit;	/* holds a reply back (harvesting) */
	int		 handles_open;
	char		 id[32];
	char		 ip[INET6_ADDRSTRLEN], local_ip[INET6_ADDRSTRLEN];
	int		 port, local_port;
	long		 uid;		/* local submission: the peer's uid; else -1 */
	struct sockaddr_storage peer;
	int		 counted;	/* holds a connlimit slot */
	enum phase	 phase;
	int		 waiting;	/* hook, queue write or tarpit in flight */
	int		 tarpitting;	/* the pending reply waits for s->tarpit */
	int		 quit;		/* close once output is flushed */
	int		 skip_line;	/* discarding an over-long command */
	int		 errors;
	int		 junk;		/* NOOP, HELP, VRFY, RSET since the last message */
	int		 bad_rcpts;	/* refused recipients this session */
	uint64_t	 deadline;	/* uv_now() by which the phase must end; 0: none */
	size_t		 charged;	/* bytes counted in w->held_bytes */
	int		 over_budget;	/* DATA dropped: the worker's memory budget */
	size_t		 scanned;	/* header-end search done up to here */
	struct buf	 in, out;
	struct tls_conn	 tls;
	int		 tls_on;
	struct hook_call *hook;
	struct hook_ctx	 ctx;
	enum hook_stage	 hook_stage;
	/* session */
	char		*helo;
	int		 esmtp;
	int		 relay;
	int		 discard_session;
	/* transaction */
	int		 has_mail;
	struct buf	 sender;
	char		**rcpts;
	size_t		 nrcpts;
	size_t		 rcpt_bytes;	/* their lines in the queued envelope */
	struct smtp_mail_arg mail;
	struct smtp_rcpt_arg rcpt;
	struct envvars	 env;
	int		 discard;
	char		 qid[QUEUE_ID_LEN + 1];
	struct smtp_data data;
	struct buf	 msg;
	struct buf	 received;
	size_t		 header_len;
	int		 headers_done;
	struct hook_verdict data_verdict;	/* from the data hook */
	uint64_t	 data_started;
	int		 queue_writing;
	struct expansion expanded;	/* recipients after aliases */
	int		 starttls_now;	/* discard input pipelined after STARTTLS */
	int		 reading;	/* uv_read_start is in effect */
	int		 peer_eof;	/* the client half-closed its side */
	void		(*after)(struct smtp_session *, struct hook_verdict *);
};

/* Input kept while a hook or the queue is busy before reading pauses. */
#define INPUT_BACKLOG	(256 * 1024)
/*
 * Replies not yet taken by the client before reading (and answering)
 * pauses: a client that never reads cannot make us buffer without bound.
 */
#define OUTPUT_HIGH	(64 * 1024)
/* Longest a tarpit holds one reply back. */
#define TARPIT_MAX_MS	(30 * 1000)

static void process_input(struct smtp_session *);
static void session_close(struct smtp_session *, const char *why);
static void flush(struct smtp_session *);
static int find_header_end(struct smtp_session *);
static void on_timeout(uv_timer_t *);
static void update_reading(struct smtp_session *);

/* The configuration the session started with (a reload applies to new
 * sessions; an open one finishes under the rules it began with). */
static struct config *
cfg(struct smtp_session *s)
{
	return &s->rt->cfg;
}

static uv_stream_t *
stream(struct smtp_session *s)
{
	return (uv_stream_t *)&s->h;
}

/* Replies produced but not yet taken by the client. */
static size_t
output_pending(struct smtp_session *s)
{
	return s->out.len + uv_stream_get_write_queue_size(stream(s));
}

/* Keeps w->held_bytes (the worker's memory budget) up to date. */
static void
charge(struct smtp_session *s)
{
	size_t now = s->phase == PH_CLOSED ? 0 : s->msg.cap + s->in.cap;

	s->w->held_bytes += now - s->charged;	/* modular: may shrink */
	s->charged = now;
}

/* ---- timers -------------------------------------------------------------- */

/* (Re)arms the timeout: ms from now, but never past the phase deadline. */
static void
arm(struct smtp_session *s, uint64_t ms)
{
	uint64_t now = uv_now(s->w->loop);

	if (s->deadline && now + ms > s->deadline)
		ms = s->deadline > now ? s->deadline - now : 0;
	uv_timer_start(&s->timer, on_timeout, ms, 0);
}

/* A phase that must end within ms whatever the client sends (TLS, DATA). */
static void
start_deadline(struct smtp_session *s, int ms, int idle_ms)
{
	s->deadline = uv_now(s->w->loop) + (uint64_t)ms;
	arm(s, (uint64_t)idle_ms);
}

/* The client's turn in the command phase: bytes do not extend it. */
static void
command_turn(struct smtp_session *s)
{
	s->deadline = 0;
	arm(s, (uint64_t)cfg(s)->timeout_command);
}

/* ---- output ------------------------------------------------------------ */

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_appends(&s->out, "\r\n");
}

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
	if (status < 0 || s->phase == PH_CLOSED)
		return;		/* a failed write shows up as a read error/EOF */
	if (output_pending(s) < OUTPUT_HIGH / 2 && !s->waiting)
		process_input(s);	/* the client reads again: go on */
}

static void
send_raw(struct smtp_session *s, struct buf *data)
{
	struct write_req *wr;
	uv_buf_t b;

	if (data->len == 0 || s->phase == PH_CLOSED)
		return;
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

static void
flush(struct smtp_session *s)
{
	struct buf net = BUF_INIT;

	if (s->out.len == 0 || s->tarpitting)
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
	session_close(s, NULL);
}

/* Flushes and closes once the last reply has been written. */
static void
flush_and_close(struct smtp_session *s)
{
	uv_shutdown_t *req;

	if (s->tarpitting) {		/* leaving: the held reply goes now */
		s->tarpitting = 0;
		uv_timer_stop(&s->tarpit);
	}
	flush(s);
	s->quit = 1;
	update_reading(s);
	req = xcalloc(1, sizeof(*req));
	req->data = s;
	if (uv_shutdown(req, stream(s), on_shutdown) < 0) {
		free(req);
		session_close(s, NULL);
	}
}

/* ---- logging ----------------------------------------------------------- */

static void
log_session(struct smtp_session *s, struct logline *l, enum log_level lvl,
    const char *event)
{
	log_begin(l, lvl, event);
	log_kv(l, "session", s->id);
	if (s->qid[0])
		log_kv(l, "qid", s->qid);
}

static void
log_verdict(struct smtp_session *s, const struct hook_verdict *v)
{
	static const char *names[] = { "accept", "reject", "tempfail", "discard" };
	struct logline l;

	log_session(s, &l, LOG_INFO, "verdict");
	log_kv(&l, "stage", hook_stage_name(s->hook_stage));
	log_kv(&l, "policy", v->policy);
	log_kv(&l, "action", names[v->action]);
	if (v->action == VERDICT_REJECT || v->action == VERDICT_TEMPFAIL) {
		log_kvi(&l, "code", v->code);
		log_kv(&l, "status", v->status);
		log_kv(&l, "text", buf_cstr((struct buf *)&v->text));
	}
	log_end(&l);
}

static void
log_reject(struct smtp_session *s, const char *cmd, const char *why)
{
	struct logline l;

	log_session(s, &l, LOG_INFO, "reject");
	log_kv(&l, "command", cmd);
	log_kv(&l, "reply", why);
	log_end(&l);
}

/* ---- transaction ------------------------------------------------------- */

static void
tx_reset(struct smtp_session *s)
{
	s->has_mail = 0;
	buf_clear(&s->sender);
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->rcpt_bytes = 0;
	envvars_free(&s->env);
	s->discard = s->discard_session;
	s->qid[0] = '\0';
	buf_free(&s->msg);
	buf_free(&s->received);
	expansion_free(&s->expanded);
	s->header_len = 0;
	s->headers_done = 0;
	s->scanned = 0;
	s->over_budget = 0;
	charge(s);
	hook_verdict_free(&s->data_verdict);
	hook_verdict_init(&s->data_verdict);
	/* s->mail (SIZE=, BODY=) is refilled by the next MAIL's parse */
}

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
	c->relay = s->relay;
	c->queue_id = s->qid[0] ? s->qid : NULL;
	c->sender = s->has_mail ? buf_cstr(&s->sender) : NULL;
	c->rcpts = s->rcpts;
	c->nrcpts = s->nrcpts;
	c->size_hint = s->has_mail && s->mail.has_size ? s->mail.size : 0;
	c->env = &s->env;
	c->message = &s->msg;
	c->header_len = s->header_len;
}

/* ---- hooks ------------------------------------------------------------- */

typedef void (*after_hook_fn)(struct smtp_session *, struct hook_verdict *);

/*
 * Replies with the verdict when it refuses; returns 1 if the step may go on.
 * A discard is remembered: the transaction is accepted and dropped.
 */
static int
verdict_allows(struct smtp_session *s, struct hook_verdict *v)
{
	if (v->action == VERDICT_ACCEPT)
		return 1;
	log_verdict(s, v);
	if (v->action == VERDICT_DISCARD) {
		s->discard = 1;
		if (s->hook_stage <= HOOK_HELO)
			s->discard_session = 1;
		return 1;
	}
	reply(s, "%d %s %s", v->code, v->status, buf_cstr(&v->text));
	return 0;
}

static void on_read(uv_stream_t *, ssize_t, const uv_buf_t *);
static void on_alloc(uv_handle_t *, size_t, uv_buf_t *);

/*
 * Reading goes on unless the client has not taken its replies, or a full
 * input backlog waits for a hook or the queue: then the kernel's window
 * pushes back on the client instead of our memory growing.
 */
static void
update_reading(struct smtp_session *s)
{
	int want = !s->quit && !s->peer_eof && s->phase != PH_CLOSED &&
	    s->in.len <= INPUT_BACKLOG && output_pending(s) < OUTPUT_HIGH;

	if (want && !s->reading) {
		s->reading = 1;
		uv_read_start(stream(s), on_alloc, on_read);
	} else if (!want && s->reading) {
		s->reading = 0;
		uv_read_stop(stream(s));
	}
}

static void
on_hook_done(void *arg, struct hook_verdict *v)
{
	struct smtp_session *s = arg;

	s->hook = NULL;
	s->waiting = 0;
	s->after(s, v);
	hook_verdict_free(v);
	if (s->phase == PH_CLOSED)
		return;
	if (s->phase == PH_COMMAND && !s->waiting)
		command_turn(s);	/* answered: the client's turn */
	process_input(s);
}

/* Runs the hooks of a stage, then calls after(s, verdict). */
static void
run_hooks(struct smtp_session *s, enum hook_stage stage, after_hook_fn after)
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
	s->waiting = 1;
	flush(s);
}

/* ---- commands ---------------------------------------------------------- */

static void
after_connect(struct smtp_session *s, struct hook_verdict *v)
{
	if (!verdict_allows(s, v)) {
		flush_and_close(s);
		return;
	}
	s->phase = PH_COMMAND;
	reply(s, "220 %s ESMTP indimail", cfg(s)->hostname);
}

static void
after_helo(struct smtp_session *s, struct hook_verdict *v)
{
	if (!verdict_allows(s, v)) {
		free(s->helo);
		s->helo = NULL;
		return;
	}
	if (!s->esmtp) {
		reply(s, "250 %s", cfg(s)->hostname);
		return;
	}
	reply(s, "250-%s Hello %s [%s]", cfg(s)->hostname, s->helo, s->ip);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %zu", cfg(s)->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->listener->tls == TLS_STARTTLS && !s->tls_on &&
	    s->listener->tls_ctx)
		reply(s, "250-STARTTLS");
	reply(s, "250 HELP");
}

static void
proceed_helo(struct smtp_session *s, const struct smtp_command *c, int esmtp)
{
	const char *why;

	if (smtp_parse_helo(c->arg, c->arglen, &why) < 0) {
		reply(s, "%s", why);
		s->errors++;
		return;
	}
	tx_reset(s);		/* RFC 5321 4.1.4: EHLO/HELO reset the state */
	free(s->helo);
	s->helo = xstrndup(c->arg, c->arglen);
	s->esmtp = esmtp;
	run_hooks(s, HOOK_HELO, after_helo);
}

static const char *
check_mail(struct smtp_session *s, const struct smtp_command *c)
{
	const char *why;

	if (s->helo == NULL)
		return "503 5.5.1 Send HELO/EHLO first";
	if (s->has_mail)
		return "503 5.5.1 Sender already specified";
	if (smtp_parse_mail(c->arg, c->arglen, &s->mail, &why) < 0)
		return why;
	if (!s->esmtp && (s->mail.has_size || s->mail.body != SMTP_BODY_NONE))
		return "555 5.5.4 MAIL parameters need EHLO";
	if (s->mail.has_size && s->mail.size > cfg(s)->max_message_size)
		return "552 5.3.4 Message size exceeds fixed maximum message size";
	return NULL;
}

static void
after_mail(struct smtp_session *s, struct hook_verdict *v)
{
	if (!verdict_allows(s, v)) {
		tx_reset(s);
		return;
	}
	reply(s, "250 2.1.0 Sender <%s> OK", buf_cstr(&s->sender));
}

static void
proceed_mail(struct smtp_session *s)
{
	s->has_mail = 1;	/* check_mail made sure no transaction was open */
	buf_set(&s->sender, s->mail.path.data ? s->mail.path.data : "",
	    s->mail.path.len);
	run_hooks(s, HOOK_MAIL, after_mail);
}

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for the envelope's tls line. */
#define TLS_DESC_MAX	128

/*
 * The envelope of the transaction, without its recipients: a view that
 * borrows the session's strings (never freed; the queue copies what it
 * keeps), so sizing it at every RCPT allocates nothing.
 */
static void
fill_envelope(struct smtp_session *s, struct envelope *e,
    char tlsdesc[TLS_DESC_MAX])
{
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", s->qid);
	e->received = time(NULL);
	e->ip = s->ip;
	e->helo = s->helo;
	e->listener = s->listener->name;
	if (s->tls_on) {
		snprintf(tlsdesc, TLS_DESC_MAX, "%s %s", tls_version(&s->tls),
		    tls_cipher(&s->tls));
		e->tls = tlsdesc;
	}
	e->sender = (char *)buf_cstr(&s->sender);
	e->vars = s->env;
	e->body = s->mail.body == SMTP_BODY_8BITMIME ? ENVELOPE_BODY_8BITMIME :
	    s->mail.body == SMTP_BODY_7BIT ? ENVELOPE_BODY_7BIT :
	    ENVELOPE_BODY_NONE;
}

/* Would one more recipient make the envelope too big for the queue? */
static int
envelope_full(struct smtp_session *s, const char *rcpt)
{
	struct envelope e;
	char tlsdesc[TLS_DESC_MAX];
	size_t size;

	fill_envelope(s, &e, tlsdesc);
	size = queue_envelope_size(&e) + QUEUE_ID_LEN;	/* the id comes at DATA */
	size += s->rcpt_bytes + queue_envelope_rcpt_size(rcpt, NULL);
	return size > QUEUE_ENVELOPE_MAX;
}

static const char *
check_rcpt(struct smtp_session *s, const struct smtp_command *c)
{
	const char *why;

	if (!s->has_mail)
		return "503 5.5.1 Need MAIL command first";
	if (smtp_parse_rcpt(c->arg, c->arglen, &s->rcpt, &why) < 0)
		return why;
	if (s->nrcpts >= cfg(s)->max_recipients)
		return "452 4.5.3 Too many recipients";
	if (envelope_full(s, buf_cstr(&s->rcpt.path)))
		return "452 4.5.3 Too many recipients: the envelope of this "
		    "message is full, send the others in another message";
	if (s->rcpt.postmaster)
		return NULL;
	switch (directory_lookup(cfg(s), buf_cstr(&s->rcpt.path))) {
	case DIR_NOT_LOCAL:
		if (!s->relay)
			return "554 5.7.1 Relay access denied: not a local domain";
		break;
	case DIR_UNKNOWN:
		return "550 5.1.1 Recipient address rejected: no such user here";
	case DIR_BAD_NAME:	/* refused now: a later bounce would be backscatter */
		return "550 5.1.3 Recipient address rejected: not a valid "
		    "mailbox name here (" DIRECTORY_NAME_RULE ")";
	default:
		break;
	}
	return NULL;
}

static void
add_rcpt(struct smtp_session *s)
{
	const char *r = buf_cstr(&s->rcpt.path);

	for (size_t i = 0; i < s->nrcpts; i++)
		if (strcmp(s->rcpts[i], r) == 0)
			return;		/* a duplicate is delivered once */
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(char *));
	s->rcpts[s->nrcpts++] = xstrdup(r);
	s->rcpt_bytes += queue_envelope_rcpt_size(r, NULL);
}

/*
 * A refused recipient (5xx) counts as an error, and past limits.tarpit_after
 * of them every reply is held back a little longer (see maybe_tarpit): an
 * address harvester gets few answers, slowly.
 */
static void
rcpt_refused(struct smtp_session *s, int code)
{
	if (code / 100 != 5)
		return;
	s->bad_rcpts++;
	if (code / 10 != 50)	/* refuse() already counted syntax errors */
		s->errors++;
}

static void
after_rcpt(struct smtp_session *s, struct hook_verdict *v)
{
	if (!verdict_allows(s, v)) {
		rcpt_refused(s, v->code);
		return;
	}
	add_rcpt(s);
	reply(s, "250 2.1.5 Recipient <%s> OK", buf_cstr(&s->rcpt.path));
}

static void
proceed_rcpt(struct smtp_session *s)
{
	struct hook_verdict v;

	if (s->rcpt.postmaster) {	/* RFC 5321 4.5.1: always accepted */
		hook_verdict_init(&v);
		after_rcpt(s, &v);
		return;
	}
	run_hooks(s, HOOK_RCPT, after_rcpt);
}

static const char *
check_data(struct smtp_session *s)
{
	if (!s->has_mail)
		return "503 5.5.1 Need MAIL command first";
	if (s->nrcpts == 0)
		return "554 5.5.1 No valid recipients";
	return NULL;
}

static void
proceed_data(struct smtp_session *s)
{
	queue_new_id(s->qid);
	smtp_data_init(&s->data, cfg(s)->max_text_line,
	    cfg(s)->max_message_size);
	buf_reserve(&s->msg, s->mail.has_size && s->mail.size < (1 << 20) ?
	    (size_t)s->mail.size + 64 : 4096);
	s->phase = PH_DATA;
	s->data_started = uv_hrtime();
	start_deadline(s, cfg(s)->timeout_data_total, cfg(s)->timeout_data);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
proceed_starttls(struct smtp_session *s)
{
	reply(s, "220 2.0.0 Ready to start TLS");
	flush(s);
	tls_conn_init(&s->tls, s->listener->tls_ctx);
	s->tls_on = 1;
	free(s->helo);		/* RFC 3207 4.2: forget what came before */
	s->helo = NULL;
	s->esmtp = 0;
	tx_reset(s);
	s->starttls_now = 1;
}

static const char *
check_starttls(struct smtp_session *s)
{
	if (s->listener->tls != TLS_STARTTLS || s->listener->tls_ctx == NULL)
		return "502 5.5.1 STARTTLS not available on this port";
	if (s->tls_on)
		return "503 5.5.1 TLS already active";
	return NULL;
}

/*
 * NOOP, HELP, VRFY and RSET cost us a reply and the client nothing: past
 * limits.junk_commands of them without a message (Postfix's junk command
 * limit) each one counts as an error.
 */
static void
count_junk(struct smtp_session *s)
{
	if (++s->junk > cfg(s)->max_junk)
		s->errors++;
}

static void
simple_command(struct smtp_session *s, const struct smtp_command *c)
{
	if (c->cmd == SMTP_CMD_RSET || c->cmd == SMTP_CMD_NOOP ||
	    c->cmd == SMTP_CMD_VRFY || c->cmd == SMTP_CMD_HELP)
		count_junk(s);
	switch (c->cmd) {
	case SMTP_CMD_RSET:
		tx_reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_QUIT:
		reply(s, "221 2.0.0 %s closing connection", cfg(s)->hostname);
		flush_and_close(s);
		break;
	case SMTP_CMD_VRFY:
		if (c->arglen == 0)
			reply(s, "501 5.5.4 Syntax: VRFY address");
		else
			reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
			    "message and attempt delivery");
		break;
	case SMTP_CMD_EXPN:
		reply(s, "502 5.5.1 EXPN is disabled");
		break;
	case SMTP_CMD_HELP:
		reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
		    "NOOP QUIT VRFY HELP STARTTLS");
		break;
	case SMTP_CMD_AUTH:
		reply(s, "502 5.5.1 AUTH is not available on this port");
		break;
	case SMTP_CMD_ETRN:
		reply(s, "502 5.5.1 ETRN is not available");
		break;
	case SMTP_CMD_BDAT:
		reply(s, "502 5.5.1 BDAT (CHUNKING) is not supported");
		break;
	default:
		reply(s, "500 5.5.1 Command unrecognized");
	}
}

static void
refuse(struct smtp_session *s, const char *cmd, const char *why)
{
	reply(s, "%s", why);
	log_reject(s, cmd, why);
	if (why[0] == '5' && why[1] == '0')	/* syntax and sequence errors */
		s->errors++;
}

static void
handle_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command c;
	const char *why = NULL;
	char verb[16];

	if (smtp_parse_command(line, len, &c, &why) < 0) {
		refuse(s, "?", why);
		return;
	}
	if (c.cmd == SMTP_CMD_HTTP) {	/* cross-protocol: never answer it */
		struct logline l;
		log_session(s, &l, LOG_WARN, "not_smtp");
		log_kvn(&l, "line", line, len < 100 ? len : 100);
		log_end(&l);
		reply(s, "221 2.7.0 %s Error: this is an SMTP server, not HTTP; "
		    "closing", cfg(s)->hostname);
		flush_and_close(s);
		return;
	}
	snprintf(verb, sizeof(verb), "%.*s", (int)(c.verblen < 15 ?
	    c.verblen : 15), c.verb);
	switch (c.cmd) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		proceed_helo(s, &c, c.cmd == SMTP_CMD_EHLO);
		return;
	case SMTP_CMD_MAIL:
		if ((why = check_mail(s, &c)) == NULL)
			proceed_mail(s);
		break;
	case SMTP_CMD_RCPT:
		if ((why = check_rcpt(s, &c)) == NULL)
			proceed_rcpt(s);
		else
			rcpt_refused(s, atoi(why));
		break;
	case SMTP_CMD_DATA:
		if ((why = check_data(s)) == NULL)
			proceed_data(s);
		break;
	case SMTP_CMD_STARTTLS:
		if ((why = check_starttls(s)) == NULL) {
			proceed_starttls(s);
			start_deadline(s, cfg(s)->timeout_tls, cfg(s)->timeout_tls);
		}
		break;
	default:
		simple_command(s, &c);
	}
	if (why)
		refuse(s, verb, why);
}

/* ---- end of data ------------------------------------------------------- */

static void
build_received(struct smtp_session *s)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	const char *proto = s->esmtp ? (s->tls_on ? "ESMTPS" : "ESMTP") : "SMTP";

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->uid >= 0)	/* local submission: who ran sendmail */
		buf_printf(&s->received, "Received: from %s (invoked by uid %ld)"
		    "\n\tby %s (indimail) with %s id %s", s->helo ? s->helo :
		    "localhost", s->uid, cfg(s)->hostname, proto, s->qid);
	else
		buf_printf(&s->received, "Received: from %s ([%s])\n\tby %s "
		    "(indimail) with %s id %s", s->helo ? s->helo : "unknown",
		    s->ip, cfg(s)->hostname, proto, s->qid);
	if (s->tls_on)
		buf_printf(&s->received, "\n\t(using %s with cipher %s)",
		    tls_version(&s->tls), tls_cipher(&s->tls));
	if (s->nrcpts == 1)
		buf_printf(&s->received, "\n\tfor <%s>", s->rcpts[0]);
	buf_printf(&s->received, "; %s\n", date);
}

static void
end_transaction(struct smtp_session *s)
{
	tx_reset(s);
	s->phase = PH_COMMAND;
	command_turn(s);
}

/* Recipients named in event=queued; delivery logs every one anyway. */
#define LOG_RCPTS	10

static void
log_queued(struct smtp_session *s, const char *event, double secs)
{
	struct logline l;

	log_session(s, &l, LOG_INFO, event);
	if (s->uid >= 0)
		log_kvi(&l, "uid", s->uid);
	log_kv(&l, "from", buf_cstr(&s->sender));
	log_kvi(&l, "nrcpt", (long long)s->nrcpts);
	for (size_t i = 0; i < s->nrcpts && i < LOG_RCPTS; i++)
		log_kv(&l, "to", s->rcpts[i]);
	if (s->nrcpts > LOG_RCPTS)
		log_kvi(&l, "to_omitted", (long long)(s->nrcpts - LOG_RCPTS));
	log_kvi(&l, "size", (long long)s->msg.len);
	log_kvi(&l, "ms", (long long)(secs * 1000));
	log_end(&l);
}

/*
 * The queue has the message; a discarded one went to the null backend,
 * which keeps nothing: no notice to the queue manager for it.
 */
static void
queued(struct smtp_session *s, int ok, const char *error, double secs,
    int queue)
{
	struct logline l;

	if (ok && s->discard) {
		log_queued(s, "discarded", 0);
		reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
	} else if (ok) {
		log_queued(s, "queued", secs);
		worker_notify_queued(s->w, queue, s->qid);
		reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		s->junk = 0;
	} else {
		log_session(s, &l, LOG_ERROR, "queue_error");
		log_kv(&l, "error", error);
		log_end(&l);
		reply(s, "451 4.3.0 Queue write failed, try again later");
	}
}

static void
on_queued(void *arg, int ok, const char *error, double secs, int queue)
{
	struct smtp_session *s = arg;

	s->queue_writing = 0;
	s->waiting = 0;
	queued(s, ok, error, secs, queue);
	if (s->phase == PH_CLOSED) {	/* client left while we wrote */
		session_close(s, NULL);
		return;
	}
	end_transaction(s);
	process_input(s);
}

/*
 * The recipients' envelope after alias expansion must still fit the queue.
 * Over the limit the fault is ours (an alias that expands to more than a
 * message can carry): 451, never a 5xx, and an error line that tells the
 * admin which transaction to look at; the client retries once the alias
 * is split.
 */
static int
envelope_fits(struct smtp_session *s, const struct envelope *e)
{
	struct logline l;
	size_t size = queue_envelope_size(e);

	if (size <= QUEUE_ENVELOPE_MAX)
		return 1;
	log_session(s, &l, LOG_ERROR, "envelope_too_big");
	log_kvi(&l, "bytes", (long long)size);
	log_kvi(&l, "limit", QUEUE_ENVELOPE_MAX);
	log_kv(&l, "action", "split the aliases this message expands");
	log_end(&l);
	reply(s, "451 4.3.0 Too many recipients after alias expansion: the "
	    "envelope would take %zu bytes, the limit is %d; try again later",
	    size, QUEUE_ENVELOPE_MAX);
	end_transaction(s);
	return 0;
}

/* Aliases expanded into s->expanded; 0 (answered) on a loop. */
static int
expand_rcpts(struct smtp_session *s)
{
	expansion_free(&s->expanded);
	if (directory_expand(cfg(s), s->rcpts, s->nrcpts, &s->expanded) == 0)
		return 1;
	log_reject(s, "DATA", "alias loop in the configuration");
	reply(s, "451 4.3.0 Alias expansion failed (loop), try again later");
	end_transaction(s);
	return 0;
}

/*
 * Hands the transaction to the queue. A discarded one goes to the null
 * backend as the client sent it (no aliases, no Received: nothing is kept).
 */
static void
commit(struct smtp_session *s)
{
	const struct queue_backend *qb = s->discard ? &queue_null :
	    s->w->queue.backend;
	struct envelope e;
	char tlsdesc[TLS_DESC_MAX];

	if (!s->discard && !expand_rcpts(s))
		return;
	fill_envelope(s, &e, tlsdesc);
	e.rcpts = s->discard ? s->rcpts : s->expanded.rcpt;
	e.orcpts = s->discard ? NULL : s->expanded.orcpt;
	e.nrcpts = s->discard ? s->nrcpts : s->expanded.n;
	if (!s->discard && !envelope_fits(s, &e))
		return;
	if (!s->discard)
		build_received(s);
	if (qb->write(s->w->loop, &s->w->queue, &e, &s->received, &s->msg,
	    on_queued, s) == QUEUE_WRITE_PENDING) {
		s->waiting = 1;
		s->queue_writing = 1;
		return;
	}
	queued(s, 1, NULL, 0, -1);
	end_transaction(s);
}

static void
after_message(struct smtp_session *s, struct hook_verdict *v)
{
	if (!verdict_allows(s, v)) {
		end_transaction(s);
		return;
	}
	commit(s);
}

static void
after_data_at_end(struct smtp_session *s, struct hook_verdict *v)
{
	if (!verdict_allows(s, v)) {
		end_transaction(s);
		return;
	}
	run_hooks(s, HOOK_MESSAGE, after_message);
}

static void
end_of_data(struct smtp_session *s)
{
	const char *why = smtp_data_reject_reply(&s->data);

	if (why == NULL && s->over_budget)
		why = "451 4.3.1 Insufficient system resources: this server "
		    "holds too many messages in memory, try again later";
	if (why) {
		refuse(s, "DATA", why);
		end_transaction(s);
		return;
	}
	if (!s->headers_done) {
		if (!find_header_end(s))
			s->header_len = s->msg.len;	/* all header */
		s->headers_done = 1;
		run_hooks(s, HOOK_DATA, after_data_at_end);
		return;
	}
	if (!verdict_allows(s, &s->data_verdict)) {
		end_transaction(s);
		return;
	}
	run_hooks(s, HOOK_MESSAGE, after_message);
}

static void
after_data_early(struct smtp_session *s, struct hook_verdict *v)
{
	/* Kept until the end of data: replies come only after the dot. */
	hook_verdict_free(&s->data_verdict);
	hook_verdict_move(&s->data_verdict, v);
}

/*
 * Looks for the end of the header section in what arrived so far, from
 * where the last look stopped (a message without a blank line is scanned
 * once in all, not once per read).
 */
static int
find_header_end(struct smtp_session *s)
{
	size_t from = s->scanned ? s->scanned - 1 : 0;
	const char *p;

	if (s->msg.len > 0 && s->msg.data[0] == '\n')
		p = s->msg.data;
	else if (s->msg.len > from && (p = memmem(s->msg.data + from,
	    s->msg.len - from, "\n\n", 2)) != NULL)
		p++;
	else {
		s->scanned = s->msg.len;
		return 0;
	}
	s->header_len = (size_t)(p - s->msg.data);
	return 1;
}

/* The data hook runs as soon as the header section is complete. */
static void
check_headers(struct smtp_session *s)
{
	if (s->headers_done || !find_header_end(s))
		return;
	s->headers_done = 1;
	run_hooks(s, HOOK_DATA, after_data_early);
}

/*
 * Past the worker's budget for message bytes (limits.data_memory) the rest
 * of this message is read and dropped, and answered 451 after the dot: the
 * box never runs out of memory, whatever many slow senders do.
 */
/* What s->msg would grow by if all of s->in became message (as buf does). */
static size_t
growth(const struct smtp_session *s)
{
	size_t need = s->msg.len + s->in.len + 1;
	size_t cap = s->msg.cap ? s->msg.cap : 64;

	if (need <= s->msg.cap)
		return 0;
	while (cap < need)
		cap *= 2;
	return cap - s->msg.cap;
}

static void
check_budget(struct smtp_session *s)
{
	struct logline l;
	size_t more = growth(s);

	if (s->over_budget || more == 0 ||
	    s->w->held_bytes + more <= cfg(s)->data_memory)
		return;
	s->over_budget = 1;
	log_session(s, &l, LOG_WARN, "data_memory_exhausted");
	log_kvi(&l, "held_bytes", (long long)s->w->held_bytes);
	log_kvi(&l, "limit", (long long)cfg(s)->data_memory);
	log_end(&l);
	buf_free(&s->msg);
	charge(s);
}

static void
feed_data(struct smtp_session *s)
{
	struct buf dropped = BUF_INIT;
	size_t used;

	check_budget(s);
	used = smtp_data_feed(&s->data, s->in.data, s->in.len,
	    s->over_budget ? &dropped : &s->msg);
	buf_free(&dropped);
	buf_consume(&s->in, used);
	charge(s);
	if (!s->data.done) {
		if (!s->over_budget)
			check_headers(s);
		return;
	}
	end_of_data(s);
}

/* ---- input ------------------------------------------------------------- */

/* Takes one command line off the input; returns 0 if none is complete. */
static int
next_command(struct smtp_session *s)
{
	char *lf = memchr(s->in.data, '\n', s->in.len);
	size_t len;

	if (lf == NULL) {
		if (s->in.len > cfg(s)->max_command_line) {
			s->skip_line = 1;
			buf_clear(&s->in);
		}
		return 0;
	}
	len = (size_t)(lf - s->in.data);
	if (s->skip_line) {
		s->skip_line = 0;
		refuse(s, "?", "500 5.5.2 Syntax error: command line too long");
	} else if (len == 0 || s->in.data[len - 1] != '\r')
		refuse(s, "?", "500 5.5.2 Syntax error: command line must end "
		    "with CRLF (bare LF)");
	else if (len + 1 > cfg(s)->max_command_line)
		refuse(s, "?", "500 5.5.2 Syntax error: command line too long");
	else if (memchr(s->in.data, '\r', len - 1))
		refuse(s, "?", "500 5.5.2 Syntax error: bare CR in command line");
	else
		handle_command(s, s->in.data, len - 1);
	buf_consume(&s->in, len + 1);
	if (s->starttls_now) {	/* RFC 3207 section 4.2, CVE-2011-0411 */
		s->starttls_now = 0;
		if (s->in.len) {
			struct logline l;
			log_session(s, &l, LOG_WARN, "starttls_pipelined");
			log_kvi(&l, "discarded_bytes", (long long)s->in.len);
			log_end(&l);
			buf_clear(&s->in);
		}
	}
	return 1;
}

static void
on_tarpit_done(uv_timer_t *t)
{
	struct smtp_session *s = t->data;

	s->tarpitting = 0;
	s->waiting = 0;
	flush(s);		/* the reply held back goes now */
	process_input(s);
}

/*
 * Past limits.tarpit_after refused recipients, each reply waits a little
 * longer than the last (limits.tarpit_delay more each time, at most
 * TARPIT_MAX_MS) before it is sent and the next command is read. The
 * timer waits; nobody else does.
 */
static int
maybe_tarpit(struct smtp_session *s)
{
	const struct config *c = cfg(s);
	uint64_t ms;

	if (s->tarpitting || s->out.len == 0 || c->tarpit_after <= 0 ||
	    c->tarpit_delay <= 0 || s->bad_rcpts <= c->tarpit_after)
		return 0;
	ms = (uint64_t)c->tarpit_delay * (uint64_t)(s->bad_rcpts -
	    c->tarpit_after);
	s->tarpitting = 1;
	s->waiting = 1;
	uv_timer_start(&s->tarpit, on_tarpit_done, ms < TARPIT_MAX_MS ? ms :
	    TARPIT_MAX_MS, 0);
	return 1;
}

/* One step of input in the current phase; 0 when nothing more can be done. */
static int
input_step(struct smtp_session *s)
{
	if (s->errors >= cfg(s)->max_errors) {
		reply(s, "421 4.7.0 %s Too many errors, closing", cfg(s)->hostname);
		log_reject(s, "?", "too many errors");
		flush_and_close(s);
		return 0;
	}
	if (s->w->draining && s->phase == PH_COMMAND && !s->has_mail) {
		reply(s, "421 4.3.2 %s Service shutting down", cfg(s)->hostname);
		flush_and_close(s);
		return 0;
	}
	if (s->in.len == 0 || output_pending(s) >= OUTPUT_HIGH)
		return 0;
	if (s->phase == PH_DATA) {
		feed_data(s);
		return 1;
	}
	return s->phase == PH_COMMAND && next_command(s);
}

static void
process_input(struct smtp_session *s)
{
	size_t answered = s->out.len;

	while (!s->waiting && !s->quit && s->phase != PH_CLOSED) {
		if (maybe_tarpit(s) || !input_step(s))
			break;
		if (s->out.len > answered && s->phase == PH_COMMAND && !s->waiting)
			command_turn(s);	/* replied: the client's turn again */
		answered = s->out.len;
	}
	if (s->phase == PH_CLOSED)
		return;
	if (!s->quit)
		flush(s);
	charge(s);
	if (s->peer_eof && !s->waiting && !s->quit) {
		s->quit = 1;
		flush(s);
		session_close(s, "eof");
		return;
	}
	update_reading(s);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct smtp_session *s = h->data;

	(void)hint;
	*b = uv_buf_init(s->w->readbuf, sizeof(s->w->readbuf));
}

/* Bytes arrived: only DATA re-arms its idle timer (within its deadline). */
static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct smtp_session *s = st->data;
	struct buf net = BUF_INIT, err = BUF_INIT;
	int handshaking = s->tls_on && !s->tls.established;

	if (n == UV_EOF && s->phase != PH_CLOSED) {
		/* Half-close: answer what was already sent (QUIT included). */
		s->peer_eof = 1;
		update_reading(s);
		process_input(s);
		return;
	}
	if (n < 0) {
		session_close(s, uv_strerror((int)n));
		return;
	}
	if (n == 0)
		return;
	if (s->phase == PH_DATA)
		arm(s, (uint64_t)cfg(s)->timeout_data);
	if (!s->tls_on)
		buf_append(&s->in, b->base, (size_t)n);
	else if (tls_input(&s->tls, b->base, (size_t)n, &s->in, &net, &err) < 0) {
		send_raw(s, &net);
		session_close(s, buf_cstr(&err));
		buf_free(&net);
		buf_free(&err);
		return;
	}
	send_raw(s, &net);
	buf_free(&net);
	if (handshaking && s->tls.established)
		command_turn(s);	/* the handshake deadline is over */
	process_input(s);
}

static void
on_timeout(uv_timer_t *t)
{
	struct smtp_session *s = t->data;

	if (s->waiting) {	/* our own work is slow, not the client */
		uv_timer_start(&s->timer, on_timeout, 1000, 0);
		return;
	}
	reply(s, "421 4.4.2 %s Error: timeout exceeded", cfg(s)->hostname);
	log_reject(s, "?", "timeout");
	flush_and_close(s);
}

/* ---- lifetime ---------------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
	struct smtp_session *s = h->data;

	if (--s->handles_open > 0)
		return;
	if (s->queue_writing)
		return;		/* on_queued finishes the job */
	buf_free(&s->in);
	buf_free(&s->out);
	buf_free(&s->sender);
	buf_free(&s->mail.path);
	buf_free(&s->rcpt.path);
	tx_reset(s);
	hook_verdict_free(&s->data_verdict);
	free(s->helo);
	if (s->tls.ssl)
		tls_conn_free(&s->tls);
	runtime_unref(s->rt);
	worker_session_gone(s->w);
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

static void
session_close(struct smtp_session *s, const char *why)
{
	struct logline l;
	struct worker *w = s->w;

	if (s->phase == PH_CLOSED) {
		if (!s->queue_writing && s->handles_open == 0)
			on_handle_closed((uv_handle_t *)&s->h);
		return;
	}
	s->phase = PH_CLOSED;
	log_session(s, &l, LOG_INFO, "disconnect");
	if (why)
		log_kv(&l, "reason", why);
	log_end(&l);
	hook_cancel(s->hook);
	s->hook = NULL;
	if (s->counted)
		connlimit_release(w->conns, w->index, peer_key(s));
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	charge(s);
	close_handles(s);
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

static void
start_session(struct smtp_session *s)
{
	struct logline l;
	int rc;

	log_session(s, &l, LOG_INFO, "connect");
	log_kv(&l, "ip", s->ip);
	log_kvi(&l, "port", s->port);
	if (s->uid >= 0)
		log_kvi(&l, "uid", s->uid);
	log_kv(&l, "listener", s->listener->name);
	log_end(&l);
	/* Local submissions count toward the total only, not 127.0.0.1's. */
	rc = connlimit_acquire(s->w->conns, s->w->index, peer_key(s),
	    cfg(s)->max_connections, cfg(s)->max_connections_per_ip);
	if (rc < 0) {
		reply(s, rc == -1 ? "421 4.7.0 %s Too many connections, try later"
		    : "421 4.7.0 %s Too many connections from your address",
		    cfg(s)->hostname);
		log_reject(s, "connect", rc == -1 ? "connection limit" :
		    "per-IP connection limit");
		flush_and_close(s);
		return;
	}
	s->counted = 1;
	update_reading(s);
	if (s->listener->tls == TLS_IMPLICIT) {
		tls_conn_init(&s->tls, s->listener->tls_ctx);
		s->tls_on = 1;
		start_deadline(s, cfg(s)->timeout_tls, cfg(s)->timeout_tls);
	} else
		command_turn(s);
	run_hooks(s, HOOK_CONNECT, after_connect);
	flush(s);
}

/* Who is at the other end: an address and port, or a local user's uid. */
static void
identify_peer(struct smtp_session *s)
{
	struct sockaddr_storage local;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	uv_os_fd_t fd;
	int len;

	s->uid = -1;
	if (s->listener->local) {
		/* A local user: "127.0.0.1" to policies, the uid in the logs. */
		struct sockaddr_in *in = (struct sockaddr_in *)&s->peer;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		snprintf(s->ip, sizeof(s->ip), "127.0.0.1");
		snprintf(s->local_ip, sizeof(s->local_ip), "127.0.0.1");
		if (uv_fileno((uv_handle_t *)&s->h, &fd) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
			s->uid = (long)cred.uid;
		s->relay = 1;	/* like Postfix's pickup: local users may send */
		return;
	}
	uv_tcp_nodelay(&s->h.tcp, 1);
	len = sizeof(s->peer);
	uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&s->peer, &len);
	addr_text(&s->peer, s->ip, sizeof(s->ip), &s->port);
	len = sizeof(local);
	uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)&local, &len);
	addr_text(&local, s->local_ip, sizeof(s->local_ip), &s->local_port);
	s->relay = cidr_match_sockaddr(cfg(s)->relay_from,
	    cfg(s)->nrelay_from, (struct sockaddr *)&s->peer);
}

void
smtp_session_accept(struct worker_listener *wl)
{
	struct worker *w = wl->w;
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->w = w;
	s->rt = w->rt;
	runtime_ref(s->rt);
	s->listener = wl;
	hook_verdict_init(&s->data_verdict);
	if (wl->local)
		uv_pipe_init(w->loop, &s->h.pipe, 0);
	else
		uv_tcp_init(w->loop, &s->h.tcp);
	uv_timer_init(w->loop, &s->timer);
	uv_timer_init(w->loop, &s->tarpit);
	s->h.tcp.data = s->timer.data = s->tarpit.data = s;
	w->nsessions++;
	if (uv_accept((uv_stream_t *)&wl->h, stream(s)) != 0) {
		s->phase = PH_CLOSED;
		close_handles(s);
		return;
	}
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	snprintf(s->id, sizeof(s->id), "%lX.%lX", (unsigned long)getpid(),
	    ++w->session_counter);
	identify_peer(s);
	start_session(s);
}

void
smtp_session_drain_all(struct worker *w)
{
	struct smtp_session *s, *next;

	for (s = w->sessions; s; s = next) {
		next = s->next;
		if (!s->waiting && s->phase != PH_DATA)
			process_input(s);
	}
}

void
smtp_session_watchdog(void *arg)
{
	struct worker *w = arg;
	struct buf line = BUF_INIT;

	for (struct smtp_session *s = w->sessions; s; s = s->next) {
		struct buf net = BUF_INIT;
		uv_os_fd_t fd;
		const struct buf *out = &line;

		buf_clear(&line);
		buf_printf(&line, "421 4.3.2 %s Service restarting (a policy "
		    "hook is stuck), try again later\r\n", cfg(s)->hostname);
		if (s->phase == PH_CLOSED || uv_fileno((uv_handle_t *)&s->h,
		    &fd) != 0 || (s->tls_on && !s->tls.established))
			continue;
		if (s->tls_on) {
			tls_output(&s->tls, line.data, line.len, &net);
			out = &net;
		}
		if (write(fd, out->data, out->len) < 0) {
			/* the client is gone: nothing to tell */
		}
		buf_free(&net);
	}
	buf_free(&line);
}

/*
 * smtp_tx: the mail transaction, from MAIL to the reply after the dot.
 * Owns the envelope as the client builds it (sender, recipients, the
 * size they will take in the queue), the Received header, alias
 * expansion (which also marks the recipients of domains local by the
 * database only, for the queue manager), and the commit to the queue
 * (ST_QUEUE) with its answer.
 * The envelope never grows past what the queue accepts: a recipient that
 * would not fit is refused at RCPT, an expansion that does not is 451.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "smtp_session_int.h"

_Static_assert(sizeof(((struct envelope *)0)->id) ==
    sizeof(((struct smtp_session *)0)->qid), "one id size");

void
smtp_tx_reset(struct smtp_session *s)
{
	s->tx = TX_NONE;
	s->tx_relay_grant = 0;
	buf_clear(&s->sender);
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->rcpt_bytes = 0;
	envvars_free(&s->env);
	hook_ref_release(s->rt, &s->tx_obj);
	buf_free(&s->hold);
	buf_free(&s->quarantine);
	buf_free(&s->quarantine_why);
	s->discard = s->discard_session;
	s->qid[0] = '\0';
	buf_free(&s->msg);
	buf_free(&s->received);
	expansion_free(&s->expanded);
	s->header_len = 0;
	s->headers_done = 0;
	s->scanned = 0;
	s->over_budget = 0;
	smtp_charge(s);
	hook_verdict_free(&s->data_verdict);
	hook_verdict_init(&s->data_verdict);
	msg_edit_free(&s->edit);
	smtp_submit_free(s);
	s->header_applied = 0;
	buf_free(&s->dkim_field);
	/* s->mail (SIZE=, BODY=) is refilled by the next MAIL's parse */
}

/* A hold or quarantine verdict: the last one of each kind counts. */
void
smtp_tx_hold(struct smtp_session *s, const struct hook_verdict *v)
{
	const struct buf *why = &v->text;

	if (v->action == VERDICT_HOLD) {
		buf_set(&s->hold, why->data, why->len);
		return;
	}
	buf_set(&s->quarantine, v->address.data, v->address.len);
	buf_set(&s->quarantine_why, why->data, why->len);
}

/* The reply to the dot is out (or the transaction failed): next command. */
void
smtp_tx_end(struct smtp_session *s)
{
	smtp_tx_reset(s);
	s->state = ST_COMMAND;
	smtp_command_turn(s);
}

void
smtp_tx_add_rcpt(struct smtp_session *s)
{
	const char *r = buf_cstr(&s->rcpt.path);

	for (size_t i = 0; i < s->nrcpts; i++)
		if (strcmp(s->rcpts[i], r) == 0)
			return;		/* a duplicate is delivered once */
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(char *));
	s->rcpts[s->nrcpts++] = xstrdup(r);
	/* a local one's "route local" line (after expansion: directory's) */
	s->rcpt_bytes += queue_envelope_rcpt_size(r, NULL,
	    s->rcpt.postmaster || s->rcpt_dir != DIR_NOT_LOCAL);
	s->tx = TX_RCPT;
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
	memcpy(e->id, s->qid, sizeof(e->id));	/* "" until DATA; per RCPT */
	e->received = time(NULL);
	e->ip = s->ip;
	e->helo = s->helo;
	e->listener = s->listener->name;
	e->auth_user = s->auth_user;
	if (s->tls_on) {
		snprintf(tlsdesc, TLS_DESC_MAX, "%s %s", tls_version(&s->tls),
		    tls_cipher(&s->tls));
		e->tls = tlsdesc;
	}
	e->sender = (char *)buf_cstr(&s->sender);
	e->vars = s->env;
	e->hold = s->hold.len ? (char *)buf_cstr(&s->hold) : NULL;
	e->body = s->mail.body == SMTP_BODY_8BITMIME ? ENVELOPE_BODY_8BITMIME :
	    s->mail.body == SMTP_BODY_7BIT ? ENVELOPE_BODY_7BIT :
	    ENVELOPE_BODY_NONE;
}

int
smtp_tx_envelope_fits(struct smtp_session *s, size_t rcpt_bytes)
{
	struct envelope e;
	char tlsdesc[TLS_DESC_MAX];
	size_t size;

	fill_envelope(s, &e, tlsdesc);
	size = queue_envelope_size(&e) + QUEUE_ID_LEN;	/* the id comes at DATA */
	return size + rcpt_bytes <= QUEUE_ENVELOPE_MAX;
}

/* Would one more recipient make the envelope too big for the queue? */
int
smtp_tx_envelope_full(struct smtp_session *s, const char *rcpt)
{
	return !smtp_tx_envelope_fits(s, s->rcpt_bytes +
	    queue_envelope_rcpt_size(rcpt, NULL, 1));
}

static void
build_received(struct smtp_session *s)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	static const char *protos[] = { "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" };
	const char *proto = s->esmtp ? protos[(s->tls_on ? 1 : 0) +
	    (s->auth_user ? 2 : 0)] : "SMTP";	/* RFC 3848 */

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->uid >= 0)	/* local submission: who ran sendmail */
		buf_printf(&s->received, "Received: from %s (invoked by uid %ld)"
		    "\n\tby %s (indimail) with %s id %s", s->helo ? s->helo :
		    "localhost", s->uid, smtp_cfg(s)->hostname, proto, s->qid);
	else
		buf_printf(&s->received, "Received: from %s ([%s])\n\tby %s "
		    "(indimail) with %s id %s", s->helo ? s->helo : "unknown",
		    s->ip, smtp_cfg(s)->hostname, proto, s->qid);
	if (s->tls_on)
		buf_printf(&s->received, "\n\t(using %s with cipher %s)",
		    tls_version(&s->tls), tls_cipher(&s->tls));
	if (s->nrcpts == 1)
		buf_printf(&s->received, "\n\tfor <%s>", s->rcpts[0]);
	buf_printf(&s->received, "; %s\n", date);
}

static void
log_held(struct smtp_session *s)
{
	struct logline l;

	smtp_log_session(s, &l, LOG_INFO, "held");
	log_kv(&l, "reason", buf_cstr(&s->hold));
	log_kv(&l, "release", "indimail queue release ID");
	log_end(&l);
}

/*
 * The answer to the dot once the queue has the message (or failed). A
 * discarded one went to the null backend, which keeps nothing: no notice
 * to the queue manager for it.
 */
static void
queued(struct smtp_session *s, int ok, const char *error, double secs,
    int queue)
{
	struct logline l;

	if (ok && s->discard) {
		smtp_log_queued(s, "discarded", 0);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
	} else if (ok) {
		smtp_log_queued(s, "queued", secs);
		metric_inc(s->listener->accepted);
		if (s->hold.len)
			log_held(s);
		if (s->srv->queued != NULL &&
		    !s->srv->queue->backend->announces)
			s->srv->queued(s->srv, queue, s->qid);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		s->junk = 0;
	} else {
		smtp_log_session(s, &l, LOG_ERROR, "queue_error");
		log_kv(&l, "error", error);
		log_end(&l);
		smtp_reply(s, "451 4.3.0 Queue write failed, try again later");
		mail_metrics_reject("DATA", "451 4.3.0", "");
	}
}

/* ST_QUEUE: the queue write is done (or failed); answer the dot. */
static void
on_queued(void *arg, int ok, const char *error, double secs, int queue)
{
	struct smtp_session *s = arg;

	s->queue_holds = 0;
	queued(s, ok, error, secs, queue);
	if (s->state == ST_CLOSED) {	/* client left while we wrote */
		smtp_session_close(s, NULL);
		return;
	}
	if (ok && smtp_submit_start(s))
		return;		/* indimail.submit's messages end it */
	smtp_tx_end(s);
	smtp_process_input(s);
}

size_t
smtp_tx_pieces(struct smtp_session *s, struct msg_piece *p)
{
	size_t n = 0, from = 0;

	if (s->edit.header_changed) {
		if (!s->header_applied)
			msg_edit_header(&s->edit, s->msg.data, &s->received);
		s->header_applied = 1;
		from = s->header_len;
	}
	if (s->edit.trace.len > 0)
		p[n++] = (struct msg_piece){ s->edit.trace.data,
		    s->edit.trace.len };
	p[n++] = (struct msg_piece){ s->received.data, s->received.len };
	return n + msg_edit_pieces(&s->edit, s->msg.data, s->msg.len, from,
	    p + n);
}

/*
 * Hands the envelope and the message to a queue backend: the DKIM
 * signature if one was made, the Received line (and the edited header
 * section, if a hook changed it), then the message as pieces with the
 * hooks' body insertions (msg_edit.h). No second copy of the message is
 * made.
 */
static void
write_to(struct smtp_session *s, const struct queue_backend *qb,
    const struct envelope *e)
{
	struct msg_piece p[QUEUE_PIECES_MAX];
	size_t n = 0;

	if (s->dkim_field.len)
		p[n++] = (struct msg_piece){ s->dkim_field.data,
		    s->dkim_field.len };
	n += smtp_tx_pieces(s, p + n);
	if (qb->write(s->srv->loop, s->srv->queue, e, p, n,
	    on_queued, s) == QUEUE_WRITE_PENDING) {
		s->state = ST_QUEUE;
		s->queue_holds = 1;
		return;
	}
	queued(s, 1, NULL, 0, -1);
	if (!smtp_submit_start(s))
		smtp_tx_end(s);
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
	smtp_log_session(s, &l, LOG_ERROR, "envelope_too_big");
	log_kvi(&l, "bytes", (long long)size);
	log_kvi(&l, "limit", QUEUE_ENVELOPE_MAX);
	log_kv(&l, "action", "split the aliases this message expands");
	log_end(&l);
	smtp_reply(s, "451 4.3.0 Too many recipients after alias expansion: the "
	    "envelope would take %zu bytes, the limit is %d; try again later",
	    size, QUEUE_ENVELOPE_MAX);
	smtp_tx_end(s);
	return 0;
}

/*
 * A quarantined message says why and for whom it came, under its
 * Received line (reason and addresses are single-line: lua_verdict.c and
 * the RCPT parser made sure).
 */
static void
quarantine_headers(struct smtp_session *s)
{
	struct logline l;

	buf_printf(&s->received, "X-Quarantine-Reason: %s\n",
	    buf_cstr(&s->quarantine_why));
	buf_appends(&s->received, "X-Quarantine-Recipients:");
	for (size_t i = 0; i < s->nrcpts; i++)
		buf_printf(&s->received, "%s<%s>%s", i ? "\n\t" : " ",
		    s->rcpts[i], i + 1 < s->nrcpts ? "," : "");
	buf_appendc(&s->received, '\n');
	smtp_log_session(s, &l, LOG_INFO, "quarantined");
	log_kv(&l, "address", buf_cstr(&s->quarantine));
	log_kv(&l, "reason", buf_cstr(&s->quarantine_why));
	log_kvi(&l, "nrcpt", (long long)s->nrcpts);
	log_end(&l);
}

/* The expanded recipients' envelope (a view of the session's strings). */
static void
expanded_envelope(struct smtp_session *s, struct envelope *e,
    char tlsdesc[TLS_DESC_MAX])
{
	fill_envelope(s, e, tlsdesc);
	e->rcpts = s->expanded.rcpt;
	e->orcpts = s->expanded.orcpt;
	e->local = s->expanded.local;	/* the queue manager routes by it */
	e->nrcpts = s->expanded.n;
}

/* Signed (or not asked to be): into the queue. */
static void
write_expanded(struct smtp_session *s)
{
	struct envelope e;
	char tlsdesc[TLS_DESC_MAX];

	expanded_envelope(s, &e, tlsdesc);
	write_to(s, s->srv->queue->backend, &e);
}

/* The recipients are expanded (s->expanded): signed, then queued. */
static void
commit_expanded(struct smtp_session *s)
{
	struct envelope e;
	char tlsdesc[TLS_DESC_MAX];

	if (s->expanded.status != DIR_OK) {
		smtp_log_reject(s, "DATA", s->expanded.status == DIR_LOOP ?
		    "alias loop in the configuration" : "directory lookup failed");
		mail_metrics_reject("DATA", "451 4.3.0", "");
		smtp_reply(s, "451 4.3.0 Alias expansion failed%s, try again "
		    "later", s->expanded.status == DIR_LOOP ? " (loop)" : "");
		smtp_tx_end(s);
		return;
	}
	expanded_envelope(s, &e, tlsdesc);
	if (!envelope_fits(s, &e))
		return;
	build_received(s);
	if (s->quarantine.len)
		quarantine_headers(s);
	smtp_dkim_sign(s, write_expanded);
}

/* ST_LOOKUP: the directory expanded the recipients. */
static void
on_expanded(void *arg)
{
	struct smtp_session *s = arg;

	s->dirq = NULL;
	s->state = s->resume;
	commit_expanded(s);
	smtp_process_input(s);
}

/*
 * Every hook accepted the message: into the queue (or dropped, discard;
 * for the quarantine address only, quarantine).
 */
void
smtp_tx_commit(struct smtp_session *s)
{
	char *q = (char *)buf_cstr(&s->quarantine);

	if (s->discard) {	/* as the client sent it: nothing is kept */
		struct envelope e;
		char tlsdesc[TLS_DESC_MAX];

		fill_envelope(s, &e, tlsdesc);
		e.rcpts = s->rcpts;
		e.nrcpts = s->nrcpts;
		write_to(s, &queue_null, &e);
		return;
	}
	expansion_free(&s->expanded);
	if (directory_expand(s->dir, s->quarantine.len ? &q : s->rcpts,
	    s->quarantine.len ? 1 : s->nrcpts, &s->expanded,
	    on_expanded, s, &s->dirq) == DIR_PENDING) {
		s->resume = s->state;
		s->state = ST_LOOKUP;
		return;
	}
	commit_expanded(s);
}

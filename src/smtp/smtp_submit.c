/*
 * smtp_submit: the messages a message hook sends with indimail.submit
 * (an auto-reply), owned by the transaction. They are queued only once
 * the message they answer is (ST_QUEUE), never for a message refused,
 * discarded or quarantined: one after the other, each through alias
 * expansion (ST_LOOKUP, which also marks recipients local by the
 * database) and the same durable queue write as any message, with a
 * Received line of its own, and each announced to the queue manager.
 * A failure is logged (event=submit_error) and costs only that message:
 * the one received is already queued, so the client still gets its 250.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "smtp_session_int.h"

#define SUBMIT_PER_TX	16	/* submissions one transaction may make */

struct smtp_submission {
	char		*sender;	/* "" for <> */
	char	       **rcpts;
	size_t		 n;
	struct buf	 msg;
	char		*policy;	/* who asked */
};

static void
free_one(struct smtp_submission *m)
{
	free(m->sender);
	for (size_t i = 0; i < m->n; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	buf_free(&m->msg);
	free(m->policy);
}

void
smtp_submit_free(struct smtp_session *s)
{
	for (size_t i = 0; i < s->nsubs; i++)
		free_one(&s->subs[i]);
	free(s->subs);
	s->subs = NULL;
	s->nsubs = s->isub = 0;
	expansion_free(&s->sub_exp);
}

/* struct hook_tx_edit's submit: checked, then kept for after the queue. */
const char *
smtp_submit_add(void *arg, const char *sender, const char *const *rcpts,
    size_t n, struct buf *msg, const char *policy)
{
	struct smtp_session *s = arg;
	struct smtp_submission *m;
	const char *err;

	if (s->nsubs == SUBMIT_PER_TX)
		return "this message already made 16 submissions";
	if (*sender && (err = smtp_edit_check_address(sender, 1)) != NULL)
		return err;
	for (size_t i = 0; i < n; i++)
		if ((err = smtp_edit_check_address(rcpts[i], 0)) != NULL)
			return err;
	s->subs = xrealloc(s->subs, (s->nsubs + 1) * sizeof(*s->subs));
	m = &s->subs[s->nsubs++];
	m->sender = xstrdup(sender);
	m->rcpts = xcalloc(n, sizeof(char *));
	for (m->n = 0; m->n < n; m->n++)
		m->rcpts[m->n] = xstrdup(rcpts[m->n]);
	m->msg = *msg;			/* taken */
	*msg = (struct buf)BUF_INIT;
	m->policy = xstrdup(policy);
	return NULL;
}

/* One line per submission queued (or not). */
static void
log_submitted(struct smtp_session *s, const struct smtp_submission *m,
    int ok, const char *error)
{
	struct logline l;

	smtp_log_session(s, &l, ok ? LOG_INFO : LOG_ERROR, ok ? "submitted" :
	    "submit_error");
	log_kv(&l, "id", s->sub_qid);
	log_kv(&l, "policy", m->policy);
	log_kv(&l, "from", m->sender);
	for (size_t i = 0; i < m->n; i++)
		log_kv(&l, "to", m->rcpts[i]);
	log_kvi(&l, "size", (long long)m->msg.len);
	if (error)
		log_kv(&l, "error", error);
	log_end(&l);
}

/* Submission isub is done (queued or failed): the next one's turn. */
static void
sub_done(struct smtp_session *s, int ok, const char *error, int queue)
{
	log_submitted(s, &s->subs[s->isub], ok, error);
	if (ok && s->srv->queued != NULL &&
	    !s->srv->queue->backend->announces)	/* it tells the qmgr later */
		s->srv->queued(s->srv, queue, s->sub_qid);
	s->isub++;
}

static void
sub_received(struct smtp_session *s, const struct smtp_submission *m,
    struct buf *r)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_printf(r, "Received: by %s (indimail) with LOCAL id %s\n\t"
	    "(submitted by policy %s for message %s); %s\n",
	    smtp_cfg(s)->hostname, s->sub_qid, m->policy, s->qid, date);
}

static int
has_8bit(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] & 0x80)
			return 1;
	return 0;
}

static void on_sub_queued(void *, int, const char *, double, int);
static void on_sub_expanded(void *);

/* The expanded submission into the queue: 1 if the write is pending. */
static int
sub_write(struct smtp_session *s)
{
	struct smtp_submission *m = &s->subs[s->isub];
	struct envelope e = { .ip = "127.0.0.1" };
	struct buf *r = &s->received;	/* the message's was written: reused */
	struct msg_piece p[2];
	int rc;

	queue_new_id(s->sub_qid);
	if (s->sub_exp.status != DIR_OK) {
		sub_done(s, 0, "alias expansion failed", -1);
		return 0;
	}
	memcpy(e.id, s->sub_qid, sizeof(e.id));
	e.received = time(NULL);
	e.helo = smtp_cfg(s)->hostname;
	e.listener = s->listener->name;
	e.sender = m->sender;
	e.rcpts = s->sub_exp.rcpt;
	e.orcpts = s->sub_exp.orcpt;
	e.local = s->sub_exp.local;
	e.nrcpts = s->sub_exp.n;
	e.body = has_8bit(&m->msg) ? ENVELOPE_BODY_8BITMIME : ENVELOPE_BODY_7BIT;
	buf_clear(r);
	sub_received(s, m, r);
	p[0] = (struct msg_piece){ r->data, r->len };
	p[1] = (struct msg_piece){ m->msg.data, m->msg.len };
	rc = s->srv->queue->backend->write(s->srv->loop, s->srv->queue, &e, p,
	    2, on_sub_queued, s);
	if (rc == QUEUE_WRITE_PENDING) {
		s->state = ST_QUEUE;
		s->queue_holds = 1;
		return 1;
	}
	sub_done(s, 1, NULL, -1);
	return 0;
}

/*
 * From submission isub on, until one waits (1: its callback goes on) or
 * none is left (0: the caller ends the transaction).
 */
static int
sub_next(struct smtp_session *s)
{
	while (s->isub < s->nsubs) {
		struct smtp_submission *m = &s->subs[s->isub];

		expansion_free(&s->sub_exp);
		if (directory_expand(s->dir, m->rcpts, m->n, &s->sub_exp,
		    on_sub_expanded, s, &s->dirq) == DIR_PENDING) {
			s->state = ST_LOOKUP;
			return 1;
		}
		if (sub_write(s))
			return 1;
	}
	return 0;
}

/* Every submission is done: the transaction ends as after any message. */
static void
sub_finish(struct smtp_session *s)
{
	smtp_tx_end(s);
	smtp_process_input(s);
}

/* ST_LOOKUP: the submission's recipients are expanded. */
static void
on_sub_expanded(void *arg)
{
	struct smtp_session *s = arg;

	s->dirq = NULL;
	if (sub_write(s) || sub_next(s))
		return;
	sub_finish(s);
}

/* ST_QUEUE: a submission's write is done (or failed). */
static void
on_sub_queued(void *arg, int ok, const char *error, double secs, int queue)
{
	struct smtp_session *s = arg;

	(void)secs;
	s->queue_holds = 0;
	sub_done(s, ok, error, queue);
	if (s->state == ST_CLOSED) {	/* the client left: the rest stays */
		smtp_session_close(s, NULL);
		return;
	}
	if (sub_next(s))
		return;
	sub_finish(s);
}

int
smtp_submit_start(struct smtp_session *s)
{
	struct logline l;

	if (s->nsubs == 0)
		return 0;
	if (s->discard || s->quarantine.len) {
		smtp_log_session(s, &l, LOG_INFO, "submit_dropped");
		log_kvi(&l, "count", (long long)s->nsubs);
		log_kv(&l, "reason", s->discard ? "discarded" : "quarantined");
		log_end(&l);
		return 0;
	}
	return sub_next(s);	/* the 250 waits (and keeps any tarpit) */
}

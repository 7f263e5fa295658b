/*
 * smtp_dkim: the DKIM signature a policy asked for (msg:dkim_sign), made
 * on the final message: after every hook's edits, the Received line and
 * the edited header section, just before the queue write, on the thread
 * pool (dkim_job.h). The session waits as it does for the queue write
 * (ST_QUEUE, queue_holds: the job reads its message). A failure to sign
 * is 451 (never an unsigned accept the policy did not allow).
 */
#include <string.h>

#include "../net/dkim_job.h"
#include "smtp_session_int.h"

static void
log_signed(struct smtp_session *s, const struct dkim_key_conf *k,
    const char *error)
{
	struct logline l;

	smtp_log_session(s, &l, error ? LOG_ERROR : LOG_INFO, error ?
	    "dkim_sign_failed" : "dkim_signed");
	log_kv(&l, "domain", s->edit.dkim_domain);
	if (k) {
		log_kv(&l, "selector", k->selector);
		log_kv(&l, "algorithm", k->ed25519 ? "ed25519-sha256" :
		    "rsa-sha256");
	}
	if (error) {
		log_kv(&l, "error", error);
		log_kv(&l, "action", s->edit.dkim_fail_pass ? "queued unsigned" :
		    "451");
	}
	log_end(&l);
}

/* Signed, or why not: go on unsigned if allowed, else 451. */
static void
signed_or_not(struct smtp_session *s, const struct dkim_key_conf *k,
    const char *error)
{
	log_signed(s, k, error);
	if (error && !s->edit.dkim_fail_pass) {
		smtp_reply(s, "451 4.3.0 Signing the message (DKIM) failed, "
		    "try again later");
		smtp_tx_end(s);
		return;
	}
	s->dkim_next(s);
}

/* On the loop: the job is done. */
static void
on_signed(void *arg, struct dkim_msg_answer *a)
{
	struct smtp_session *s = arg;

	s->queue_holds = 0;
	if (s->state == ST_CLOSED) {	/* client left while we signed */
		dkim_msg_answer_free(a);
		smtp_session_close(s, NULL);
		return;
	}
	s->state = s->resume;
	if (a->field)
		buf_set(&s->dkim_field, a->field, strlen(a->field));
	signed_or_not(s, config_dkim_key(smtp_cfg(s), s->edit.dkim_domain),
	    a->field ? NULL : a->error ? a->error : "no signature");
	dkim_msg_answer_free(a);
	smtp_process_input(s);
}

void
smtp_dkim_sign(struct smtp_session *s, void (*next)(struct smtp_session *))
{
	const struct dkim_key_conf *k;
	struct msg_piece p[QUEUE_PIECES_MAX];
	size_t n;

	s->dkim_next = next;
	if (s->edit.dkim_domain == NULL) {
		next(s);
		return;
	}
	if ((k = config_dkim_key(smtp_cfg(s), s->edit.dkim_domain)) == NULL) {
		signed_or_not(s, NULL, "no key for the domain in dkim.keys");
		return;
	}
	n = smtp_tx_pieces(s, p);
	dkim_jobs_setup(s->srv->loop, smtp_cfg(s)->dkim_jobs);
	s->resume = s->state;
	s->state = ST_QUEUE;
	s->queue_holds = 1;
	dkim_jobs_sign(k, p, n, on_signed, s);
}

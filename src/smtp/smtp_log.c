/*
 * smtp_log: the log lines of a session. Every line names the session and,
 * once DATA gave it one, the queue id; verdicts, rejections and queued
 * (or discarded) messages have one shape each, wherever they happen.
 */
#include <stdio.h>

#include "../lib/log.h"
#include "smtp_session_int.h"

/* "550 5.7.1": a verdict's code and status, as a reply starts. */
#define REPLY_HEAD_MAX	48

/* Recipients named in event=queued; delivery logs every one anyway. */
#define LOG_RCPTS	10

void
smtp_log_session(struct smtp_session *s, struct logline *l,
    enum log_level lvl, const char *event)
{
	log_begin(l, lvl, event);
	log_kv(l, "session", s->id);
	if (s->qid[0])
		log_kv(l, "qid", s->qid);
}

/* A policy's refusal: indimail_messages_rejected_total. */
static void
count_refusal(struct smtp_session *s, const struct hook_verdict *v)
{
	char head[REPLY_HEAD_MAX];

	snprintf(head, sizeof(head), "%d %s", v->code, v->status);
	mail_metrics_reject(hook_stage_name(s->hook_stage), head, v->policy);
}

void
smtp_log_verdict(struct smtp_session *s, const struct hook_verdict *v)
{
	static const char *names[] = { "accept", "reject", "tempfail", "discard",
	    "route", "hold", "quarantine" };
	struct logline l;

	smtp_log_session(s, &l, LOG_INFO, "verdict");
	log_kv(&l, "stage", hook_stage_name(s->hook_stage));
	log_kv(&l, "policy", v->policy);
	log_kv(&l, "action", names[v->action]);
	if (v->action == VERDICT_REJECT || v->action == VERDICT_TEMPFAIL) {
		count_refusal(s, v);
		log_kvi(&l, "code", v->code);
		log_kv(&l, "status", v->status);
		log_kv(&l, "text", buf_cstr((struct buf *)&v->text));
	}
	if (v->action == VERDICT_QUARANTINE)
		log_kv(&l, "address", buf_cstr((struct buf *)&v->address));
	if (v->action == VERDICT_HOLD || v->action == VERDICT_QUARANTINE)
		log_kv(&l, "reason", buf_cstr((struct buf *)&v->text));
	log_end(&l);
}

void
smtp_log_reject(struct smtp_session *s, const char *cmd, const char *why)
{
	struct logline l;

	if (why[0] >= '0' && why[0] <= '9')	/* a reply; else the caller counts */
		mail_metrics_reject(cmd, why, "");
	smtp_log_session(s, &l, LOG_INFO, "reject");
	log_kv(&l, "command", cmd);
	log_kv(&l, "reply", why);
	log_end(&l);
}

void
smtp_log_queued(struct smtp_session *s, const char *event, double secs)
{
	struct logline l;

	smtp_log_session(s, &l, LOG_INFO, event);
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

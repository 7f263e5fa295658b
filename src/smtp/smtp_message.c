/*
 * smtp_message: the DATA phase (ST_DATA). Bytes go through smtp_data's
 * state machine into s->msg; the data hook starts as soon as the header
 * section is complete, and its verdict waits for the dot (replies come
 * only after it). Past the server's budget for message bytes
 * (limits.data_memory) the rest of a message is read and dropped, and
 * answered 451 after the dot: the box never runs out of memory, whatever
 * many slow senders do.
 */
#include <string.h>

#include "../mail/header.h"
#include "smtp_session_int.h"

/* DATA was accepted: 354, and the message's deadline starts. */
void
smtp_message_start(struct smtp_session *s)
{
	queue_new_id(s->qid);
	smtp_data_init(&s->data, smtp_cfg(s)->max_text_line,
	    smtp_cfg(s)->max_message_size);
	buf_reserve(&s->msg, s->mail.has_size && s->mail.size < (1 << 20) ?
	    (size_t)s->mail.size + 64 : 4096);
	s->state = ST_DATA;
	s->tx = TX_DATA;
	smtp_deadline(s, smtp_cfg(s)->timeout_data_total,
	    smtp_cfg(s)->timeout_data);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * Looks for the end of the header section in what arrived so far, from
 * where the last look stopped (a message without a blank line is scanned
 * once in all, not once per read).
 */
static int
find_header_end(struct smtp_session *s)
{
	size_t end;

	if (!header_end(s->msg.data, s->msg.len, s->scanned, &end)) {
		s->scanned = end;
		return 0;
	}
	s->header_len = end;
	return 1;
}

static void
after_message(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		smtp_tx_end(s);
		return;
	}
	smtp_tx_commit(s);
}

static void
after_data_at_end(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		smtp_tx_end(s);
		return;
	}
	smtp_run_hooks(s, HOOK_MESSAGE, after_message);
}

static void
after_data_early(struct smtp_session *s, struct hook_verdict *v)
{
	/* Kept until the end of data: replies come only after the dot. */
	hook_verdict_free(&s->data_verdict);
	hook_verdict_move(&s->data_verdict, v);
}

/* The data hook runs as soon as the header section is complete. */
static void
check_headers(struct smtp_session *s)
{
	if (s->headers_done || !find_header_end(s))
		return;
	s->headers_done = 1;
	smtp_run_hooks(s, HOOK_DATA, after_data_early);
}

/* The dot: refuse a bad message, else the data and message hooks. */
static void
end_of_data(struct smtp_session *s)
{
	const char *why = smtp_data_reject_reply(&s->data);

	if (why == NULL && s->over_budget)
		why = "451 4.3.1 Insufficient system resources: this server "
		    "holds too many messages in memory, try again later";
	if (why) {
		smtp_refuse(s, "DATA", why);
		smtp_tx_end(s);
		return;
	}
	if (!s->headers_done) {
		if (!find_header_end(s))
			s->header_len = s->msg.len;	/* all header */
		s->headers_done = 1;
		smtp_run_hooks(s, HOOK_DATA, after_data_at_end);
		return;
	}
	if (!smtp_verdict_allows(s, &s->data_verdict)) {
		smtp_tx_end(s);
		return;
	}
	smtp_run_hooks(s, HOOK_MESSAGE, after_message);
}

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
	    s->srv->held_bytes + more <= smtp_cfg(s)->data_memory)
		return;
	s->over_budget = 1;
	smtp_log_session(s, &l, LOG_WARN, "data_memory_exhausted");
	log_kvi(&l, "held_bytes", (long long)s->srv->held_bytes);
	log_kvi(&l, "limit", (long long)smtp_cfg(s)->data_memory);
	log_end(&l);
	buf_free(&s->msg);
	smtp_charge(s);
}

/* ST_DATA: takes what arrived into the message. */
void
smtp_message_feed(struct smtp_session *s)
{
	struct buf dropped = BUF_INIT;
	size_t used;

	check_budget(s);
	used = smtp_data_feed(&s->data, s->in.data, s->in.len,
	    s->over_budget ? &dropped : &s->msg);
	buf_free(&dropped);
	buf_consume(&s->in, used);
	smtp_charge(s);
	if (!s->data.done) {
		if (!s->over_budget)
			check_headers(s);
		return;
	}
	end_of_data(s);
}

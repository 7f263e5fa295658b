/*
 * smtp_client_txn: the transactions of an outgoing SMTP connection: MAIL,
 * RCPT and DATA pipelined when the server offers PIPELINING (RFC 2920),
 * one reply awaited per command in order, each recipient's result classed
 * OK / TEMP / PERM. The message goes out in wire form (smtp_client_wire).
 */
#include <string.h>

#include "../lib/xalloc.h"
#include "smtp_client_int.h"

/* ---- transactions ------------------------------------------------------ */

static enum expect
expected(struct smtp_client *c, size_t i)
{
	if (i == 0)
		return X_MAIL;
	return i <= c->txn->nrcpts ? X_RCPT : X_DATA;
}

static void
send_command(struct smtp_client *c, size_t i)
{
	struct client_txn *t = c->txn;

	switch (expected(c, i)) {
	case X_MAIL: {
		struct buf m = BUF_INIT;
		buf_printf(&m, "MAIL FROM:<%s>", t->sender);
		if (c->ext_size)
			buf_printf(&m, " SIZE=%zu", t->size);
		if (c->ext_8bit && t->body8)
			buf_appends(&m, " BODY=8BITMIME");
		client_send_line(c, "%s", buf_cstr(&m));
		buf_free(&m);
		break;
	}
	case X_RCPT:
		client_send_line(c, "RCPT TO:<%s>", t->rcpts[i - 1]);
		break;
	case X_DATA:
		client_send_line(c, "DATA");
		break;
	}
}

/*
 * Only a transaction that ended with the reply to the final dot leaves the
 * server ready for a new MAIL; after any other ending (refused MAIL or
 * DATA, no recipient accepted) the connection is not reused.
 */
static void
txn_done(struct smtp_client *c)
{
	if (!c->clean)
		c->broken = 1;
	uv_timer_stop(&c->timer);
	c->state = C_READY;
	c->txn_cb(c->arg, c);
}

static void
all_results(struct smtp_client *c, enum result_class cls, const char *text,
    int only_accepted)
{
	for (size_t i = 0; i < c->txn->nrcpts; i++) {
		struct rcpt_result *r = &c->txn->results[i];
		if (only_accepted && r->cls != RESULT_OK)
			continue;
		r->cls = cls;
		buf_set(&r->text, text, strlen(text));
	}
}

void
client_txn_reply(struct smtp_client *c, int code, const char *text)
{
	size_t i = c->next_reply++;

	if (code == 421)	/* the server is closing: the destination's fault */
		c->txn->closing = 1;
	if (c->state == C_DOT) {
		all_results(c, client_class_of(code), text, 1);
		c->clean = 1;	/* the server closed this transaction itself */
		txn_done(c);
		return;
	}
	switch (expected(c, i)) {
	case X_MAIL:
		if (code / 100 != 2) {
			c->mail_failed = 1;
			c->txn->mail_deferred = code / 100 == 4;
			all_results(c, client_class_of(code), text, 0);
		}
		break;
	case X_RCPT:
		if (!c->mail_failed) {
			struct rcpt_result *r = &c->txn->results[i - 1];
			r->cls = code / 100 == 2 ? RESULT_OK : client_class_of(code);
			buf_set(&r->text, text, strlen(text));
			c->accepted += r->cls == RESULT_OK;
		}
		break;
	case X_DATA:
		if (code == 354 && c->accepted > 0 && !c->mail_failed) {
			c->state = C_DOT;
			client_arm(c, c->opts.timeouts.data);
			client_write_data(c, c->txn->wire->data, c->txn->wire->len);
			return;
		}
		if (code == 354) {	/* nothing to send after all */
			c->state = C_DOT;
			client_write_data(c, ".\r\n", 3);
			c->broken = 1;
			return;
		}
		if (!c->mail_failed && c->accepted > 0)
			all_results(c, client_class_of(code), text, 1);
		txn_done(c);
		return;
	}
	if (c->mail_failed && !c->ext_pipelining) {
		c->broken = 1;	/* do not reuse after a refused MAIL */
		txn_done(c);
		return;
	}
	if (c->accepted == 0 && i == c->txn->nrcpts && !c->ext_pipelining) {
		txn_done(c);	/* nobody to send to: skip DATA */
		return;
	}
	if (!c->ext_pipelining)
		send_command(c, c->next_reply);
	client_arm(c, c->opts.timeouts.command);
}

void
smtp_client_send(struct smtp_client *c, struct client_txn *t, client_txn_cb cb,
    void *arg)
{
	c->txn = t;
	c->txn_cb = cb;
	c->arg = arg;
	c->next_reply = 0;
	c->nexpect = t->nrcpts + 2;
	c->accepted = 0;
	c->mail_failed = 0;
	c->clean = 0;
	t->closing = t->mail_deferred = 0;
	for (size_t i = 0; i < t->nrcpts; i++) {
		t->results[i].cls = RESULT_TEMP;
		buf_clear(&t->results[i].text);
	}
	c->state = C_TXN;
	client_arm(c, c->opts.timeouts.command);
	if (c->ext_pipelining)
		for (size_t i = 0; i < c->nexpect; i++)
			send_command(c, i);
	else
		send_command(c, 0);
}

void
smtp_client_wire(const char *msg, size_t len, struct buf *out)
{
	size_t i = 0;

	buf_reserve(out, len + len / 32 + 8);
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		if (msg[i] == '.')
			buf_appendc(out, '.');
		buf_append(out, msg + i, end - i);
		buf_appends(out, "\r\n");
		i = end + 1;
	}
	buf_appends(out, ".\r\n");
}

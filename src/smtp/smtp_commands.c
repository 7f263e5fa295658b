/*
 * smtp_commands: the command table. A command line (framed by
 * smtp_session.c) is parsed; then its entry in `commands`
 * says everything about the verb, as OpenSMTPD does: `check` (allowed in
 * this state? arguments valid? returns the reply on refusal), how such a
 * refusal is answered, whether it is a junk command, and `proceed` (act;
 * returns 1 when the entry's hook stage must run next, with `after` taking
 * its verdict). Every rejection has its one home here, but for the
 * sender and relay rules (smtp_sender.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "smtp_session_int.h"

/* How a check's refusal is answered. */
enum refusal {
	REFUSE_LOGGED,	/* reply, event=reject; 50x counts as an error */
	REFUSE_COUNTED,	/* reply, counts as an error, not logged */
	REFUSE_PLAIN,	/* reply only */
};

struct smtp_verb {
	const char	*(*check)(struct smtp_session *,
			    const struct smtp_command *);
	enum refusal	 refusal;
	int		 junk;		/* counts toward limits.junk_commands */
	enum hook_stage	 stage;		/* run when proceed returns 1 */
	after_hook_fn	 after;		/* takes the stage's verdict */
	int		(*proceed)(struct smtp_session *,
			    const struct smtp_command *);
};

void
smtp_refuse(struct smtp_session *s, const char *cmd, const char *why)
{
	smtp_reply(s, "%s", why);
	smtp_log_reject(s, cmd, why);
	if (why[0] == '5' && why[1] == '0')	/* syntax and sequence errors */
		s->errors++;
}

/*
 * NOOP, HELP, VRFY and RSET cost us a reply and the client nothing: past
 * limits.junk_commands of them without a message (Postfix's junk command
 * limit) each one counts as an error.
 */
static void
count_junk(struct smtp_session *s)
{
	if (++s->junk > smtp_cfg(s)->max_junk)
		s->errors++;
}

/*
 * A refused recipient (5xx) counts as an error, and past limits.tarpit_after
 * of them every reply is held back a little longer (see smtp_tarpit): an
 * address harvester gets few answers, slowly.
 */
static void
rcpt_refused(struct smtp_session *s, int code)
{
	if (code / 100 != 5)
		return;
	s->bad_rcpts++;
	if (code / 10 != 50)	/* smtp_refuse() already counted syntax errors */
		s->errors++;
}

/* ---- HELO, EHLO -------------------------------------------------------- */

static const char *
check_helo(struct smtp_session *s, const struct smtp_command *c)
{
	const char *why;

	(void)s;
	if (smtp_parse_helo(c->arg, c->arglen, &why) < 0)
		return why;
	return NULL;
}

static void
after_helo(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		free(s->helo);
		s->helo = NULL;
		return;
	}
	if (!s->esmtp) {
		smtp_reply(s, "250 %s", smtp_cfg(s)->hostname);
		return;
	}
	smtp_reply(s, "250-%s Hello %s [%s]", smtp_cfg(s)->hostname, s->helo,
	    s->ip);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %zu", smtp_cfg(s)->max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->listener->tls == TLS_STARTTLS && !s->tls_on &&
	    s->listener->tls_ctx)
		smtp_reply(s, "250-STARTTLS");
	if (smtp_auth_offered(s)) {
		struct buf names = BUF_INIT;

		smtp_auth_mech_names(s, &names);
		smtp_reply(s, "250-AUTH %s", buf_cstr(&names));
		buf_free(&names);
	}
	smtp_reply(s, "250 HELP");
}

static int
greet(struct smtp_session *s, const struct smtp_command *c, int esmtp)
{
	smtp_tx_reset(s);	/* RFC 5321 4.1.4: EHLO/HELO reset the state */
	free(s->helo);
	s->helo = xstrndup(c->arg, c->arglen);
	s->esmtp = esmtp;
	return 1;
}

static int
proceed_helo(struct smtp_session *s, const struct smtp_command *c)
{
	return greet(s, c, 0);
}

static int
proceed_ehlo(struct smtp_session *s, const struct smtp_command *c)
{
	return greet(s, c, 1);
}

/* ---- MAIL -------------------------------------------------------------- */

static const char *
check_mail(struct smtp_session *s, const struct smtp_command *c)
{
	const char *why;

	if (s->helo == NULL)
		return "503 5.5.1 Send HELO/EHLO first";
	if (s->tx != TX_NONE)
		return "503 5.5.1 Sender already specified";
	if ((why = smtp_auth_required(s)) != NULL)
		return why;
	if (smtp_parse_mail(c->arg, c->arglen, &s->mail, &why) < 0)
		return why;
	if (!s->esmtp && (s->mail.has_size || s->mail.body != SMTP_BODY_NONE))
		return "555 5.5.4 MAIL parameters need EHLO";
	if (s->mail.has_size && s->mail.size > smtp_cfg(s)->max_message_size)
		return "552 5.3.4 Message size exceeds fixed maximum message size";
	return NULL;
}

static void
after_mail(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		smtp_tx_reset(s);
		return;
	}
	smtp_reply(s, "250 2.1.0 Sender <%s> OK", buf_cstr(&s->sender));
}

/* ST_LOOKUP: the directory answered about the sender (smtp_sender.c). */
static void
on_sender_looked_up(void *arg)
{
	struct smtp_session *s = arg;

	s->dirq = NULL;
	s->state = s->resume;
	if (!smtp_sender_refused(s))
		smtp_run_hooks(s, HOOK_MAIL, after_mail);
	if (s->state == ST_COMMAND)
		smtp_command_turn(s);	/* answered: the client's turn */
	smtp_process_input(s);
}

/*
 * The sender is checked (smtp_sender.c) before the mail hook: a local
 * domain needs a login, a logged-in user sends as itself (the directory
 * may answer later). Returns 1 when the hooks run now.
 */
static int
proceed_mail(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	s->tx = TX_MAIL;	/* check_mail made sure no transaction was open */
	buf_set(&s->sender, s->mail.path.data ? s->mail.path.data : "",
	    s->mail.path.len);
	if (smtp_sender_lookup(s, on_sender_looked_up) == DIR_PENDING) {
		s->resume = s->state;
		s->state = ST_LOOKUP;
		smtp_flush(s);
		return 0;
	}
	return !smtp_sender_refused(s);
}

/* ---- RCPT -------------------------------------------------------------- */

struct smtp_verb;
static const struct smtp_verb commands[];
static void refused(struct smtp_session *, const struct smtp_verb *,
    const struct smtp_command *, const char *why);

static const char *
check_rcpt(struct smtp_session *s, const struct smtp_command *c)
{
	const char *why;

	if (s->tx == TX_NONE)
		return "503 5.5.1 Need MAIL command first";
	if (smtp_parse_rcpt(c->arg, c->arglen, &s->rcpt, &why) < 0)
		return why;
	if (s->nrcpts >= smtp_cfg(s)->max_recipients)
		return "452 4.5.3 Too many recipients";
	if (smtp_tx_envelope_full(s, buf_cstr(&s->rcpt.path)))
		return "452 4.5.3 Too many recipients: the envelope of this "
		    "message is full, send the others in another message";
	return NULL;
}

/* The directory's answer for the RCPT: the refusal, or NULL. */
static const char *
rcpt_dir_reply(struct smtp_session *s)
{
	switch (s->rcpt_dir) {
	case DIR_NOT_LOCAL:
		if (!smtp_may_relay(s))
			return "554 5.7.1 Relay access denied: not a local domain";
		break;
	case DIR_UNKNOWN:
		return "550 5.1.1 Recipient address rejected: no such user here";
	case DIR_BAD_NAME:	/* refused now: a later bounce would be backscatter */
		return "550 5.1.3 Recipient address rejected: not a valid "
		    "mailbox name here (" DIRECTORY_NAME_RULE ")";
	case DIR_LOOKUP_FAILED:
		return "451 4.3.0 Recipient lookup failed, try again later";
	case DIR_DISABLED:
		return "550 5.2.1 Recipient address rejected: mailbox disabled";
	case DIR_OVER_QUOTA:
		return smtp_cfg(s)->directory.over_quota_reject ?
		    "552 5.2.2 Mailbox full" : "452 4.2.2 Mailbox full";
	default:
		break;
	}
	return NULL;
}

/* check_rcpt, and a refused recipient counts toward the tarpit. */
static const char *
check_rcpt_counted(struct smtp_session *s, const struct smtp_command *c)
{
	const char *why = check_rcpt(s, c);

	if (why)
		rcpt_refused(s, atoi(why));
	return why;
}

static void
after_rcpt(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		rcpt_refused(s, v->code);
		return;
	}
	smtp_tx_add_rcpt(s);
	smtp_reply(s, "250 2.1.5 Recipient <%s> OK", buf_cstr(&s->rcpt.path));
}

/* ST_LOOKUP: the directory answered the RCPT; refuse or run the hooks. */
static void
on_rcpt_looked_up(void *arg)
{
	struct smtp_session *s = arg;
	const char *why = rcpt_dir_reply(s);
	int code;

	s->dirq = NULL;
	s->state = s->resume;
	if (s->rcpt_dir == DIR_NOT_LOCAL && (code = smtp_relay_denied(s)))
		rcpt_refused(s, code);
	else if (why) {
		rcpt_refused(s, atoi(why));
		smtp_refuse(s, "RCPT", why);
	} else
		smtp_run_hooks(s, HOOK_RCPT, after_rcpt);
	if (s->state == ST_COMMAND)
		smtp_command_turn(s);	/* answered: the client's turn */
	smtp_process_input(s);
}

/*
 * The postmaster is always accepted (RFC 5321 4.5.1); anyone else is
 * looked up in the directory first. Returns 1 when the hooks run now.
 */
static int
proceed_rcpt(struct smtp_session *s, const struct smtp_command *c)
{
	struct hook_verdict v;
	const char *why;
	int code;

	if (s->rcpt.postmaster) {
		hook_verdict_init(&v);
		after_rcpt(s, &v);
		return 0;
	}
	if (directory_lookup(s->dir, buf_cstr(&s->rcpt.path),
	    s->mail.has_size ? s->mail.size : 0, &s->rcpt_dir,
	    on_rcpt_looked_up, s, &s->dirq) == DIR_PENDING) {
		s->resume = s->state;
		s->state = ST_LOOKUP;
		smtp_flush(s);
		return 0;
	}
	if (s->rcpt_dir == DIR_NOT_LOCAL && (code = smtp_relay_denied(s))) {
		rcpt_refused(s, code);
		return 0;
	}
	if ((why = rcpt_dir_reply(s)) == NULL)
		return 1;
	rcpt_refused(s, atoi(why));
	refused(s, &commands[SMTP_CMD_RCPT], c, why);
	return 0;
}

/* ---- DATA, STARTTLS ---------------------------------------------------- */

static const char *
check_data(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	if (s->tx == TX_NONE)
		return "503 5.5.1 Need MAIL command first";
	if (s->tx == TX_MAIL)
		return "554 5.5.1 No valid recipients";
	return NULL;
}

static int
proceed_data(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_message_start(s);
	return 0;
}

static const char *
check_starttls(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	if (s->listener->tls != TLS_STARTTLS || s->listener->tls_ctx == NULL)
		return "502 5.5.1 STARTTLS not available on this port";
	if (s->tls_on)
		return "503 5.5.1 TLS already active";
	return NULL;
}

static int
proceed_starttls(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	smtp_flush(s);
	tls_conn_init(&s->tls, s->listener->tls_ctx);
	s->tls_on = 1;
	free(s->helo);		/* RFC 3207 4.2: forget what came before */
	s->helo = NULL;
	s->esmtp = 0;
	smtp_tx_reset(s);
	smtp_auth_reset(s);
	smtp_relay_forget(s);
	smtp_deadline(s, smtp_cfg(s)->timeout_tls, smtp_cfg(s)->timeout_tls);
	return 0;
}

/* ---- the others -------------------------------------------------------- */

static int
proceed_rset(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_tx_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
proceed_noop(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
proceed_quit(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_reply(s, "221 2.0.0 %s closing connection", smtp_cfg(s)->hostname);
	smtp_flush_and_close(s);
	return 0;
}

static const char *
check_vrfy(struct smtp_session *s, const struct smtp_command *c)
{
	(void)s;
	return c->arglen == 0 ? "501 5.5.4 Syntax: VRFY address" : NULL;
}

static int
proceed_vrfy(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
	return 0;
}

static int
proceed_help(struct smtp_session *s, const struct smtp_command *c)
{
	(void)c;
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP "
	    "QUIT VRFY HELP STARTTLS AUTH");
	return 0;
}

/* Commands we know and never do: the check is their whole answer. */
static const char *
check_expn(struct smtp_session *s, const struct smtp_command *c)
{
	(void)s, (void)c;
	return "502 5.5.1 EXPN is disabled";
}

static const char *
check_etrn(struct smtp_session *s, const struct smtp_command *c)
{
	(void)s, (void)c;
	return "502 5.5.1 ETRN is not available";
}

static const char *
check_bdat(struct smtp_session *s, const struct smtp_command *c)
{
	(void)s, (void)c;
	return "502 5.5.1 BDAT (CHUNKING) is not supported";
}

static const char *
check_unknown(struct smtp_session *s, const struct smtp_command *c)
{
	(void)s, (void)c;
	return "500 5.5.1 Command unrecognized";
}

/* GET, POST...: a browser or a cross-protocol attack; never answer it. */
static int
proceed_http(struct smtp_session *s, const struct smtp_command *c)
{
	struct logline l;

	smtp_log_session(s, &l, LOG_WARN, "not_smtp");
	log_kvn(&l, "line", c->line, c->linelen < 100 ? c->linelen : 100);
	log_end(&l);
	smtp_reply(s, "221 2.7.0 %s Error: this is an SMTP server, not HTTP; "
	    "closing", smtp_cfg(s)->hostname);
	smtp_flush_and_close(s);
	return 0;
}

/* ---- the table ----------------------------------------------------------- */

#define LOGGED	REFUSE_LOGGED
#define COUNTED	REFUSE_COUNTED
#define PLAIN	REFUSE_PLAIN

static const struct smtp_verb commands[] = {
	/*		  check		refusal junk stage	after	proceed */
	[SMTP_CMD_HELO]	= { check_helo, COUNTED, 0, HOOK_HELO, after_helo,
			    proceed_helo },
	[SMTP_CMD_EHLO]	= { check_helo, COUNTED, 0, HOOK_HELO, after_helo,
			    proceed_ehlo },
	[SMTP_CMD_MAIL]	= { check_mail, LOGGED, 0, HOOK_MAIL, after_mail,
			    proceed_mail },
	[SMTP_CMD_RCPT]	= { check_rcpt_counted, LOGGED, 0, HOOK_RCPT,
			    after_rcpt, proceed_rcpt },
	[SMTP_CMD_DATA]	= { check_data, LOGGED, 0, 0, NULL, proceed_data },
	[SMTP_CMD_STARTTLS] = { check_starttls, LOGGED, 0, 0, NULL,
			    proceed_starttls },
	[SMTP_CMD_RSET]	= { NULL, PLAIN, 1, 0, NULL, proceed_rset },
	[SMTP_CMD_NOOP]	= { NULL, PLAIN, 1, 0, NULL, proceed_noop },
	[SMTP_CMD_QUIT]	= { NULL, PLAIN, 0, 0, NULL, proceed_quit },
	[SMTP_CMD_VRFY]	= { check_vrfy, PLAIN, 1, 0, NULL, proceed_vrfy },
	[SMTP_CMD_HELP]	= { NULL, PLAIN, 1, 0, NULL, proceed_help },
	[SMTP_CMD_EXPN]	= { check_expn, PLAIN, 0, 0, NULL, NULL },
	[SMTP_CMD_AUTH]	= { smtp_auth_check, LOGGED, 0, 0, NULL,
			    smtp_auth_proceed },
	[SMTP_CMD_ETRN]	= { check_etrn, PLAIN, 0, 0, NULL, NULL },
	[SMTP_CMD_BDAT]	= { check_bdat, PLAIN, 0, 0, NULL, NULL },
	[SMTP_CMD_HTTP]	= { NULL, PLAIN, 0, 0, NULL, proceed_http },
	[SMTP_CMD_UNKNOWN] = { check_unknown, PLAIN, 0, 0, NULL, NULL },
};

static void
refused(struct smtp_session *s, const struct smtp_verb *v,
    const struct smtp_command *c, const char *why)
{
	char verb[16];

	switch (v->refusal) {
	case REFUSE_LOGGED:
		snprintf(verb, sizeof(verb), "%.*s", (int)(c->verblen < 15 ?
		    c->verblen : 15), c->verb);
		smtp_refuse(s, verb, why);
		break;
	case REFUSE_COUNTED:
		smtp_reply(s, "%s", why);
		s->errors++;
		break;
	case REFUSE_PLAIN:
		smtp_reply(s, "%s", why);
		break;
	}
}

/* One command line (CRLF removed): parse, check, proceed. */
void
smtp_command_handle(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_verb *v;
	struct smtp_command c;
	const char *why = NULL;

	if (smtp_parse_command(line, len, &c, &why) < 0) {
		smtp_refuse(s, "?", why);
		return;
	}
	v = &commands[c.cmd];
	if (v->junk)
		count_junk(s);
	if (v->check != NULL && (why = v->check(s, &c)) != NULL) {
		refused(s, v, &c, why);
		return;
	}
	if (v->proceed(s, &c) && v->after != NULL)
		smtp_run_hooks(s, v->stage, v->after);
}

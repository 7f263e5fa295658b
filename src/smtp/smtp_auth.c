/*
 * smtp_auth: SMTP AUTH (RFC 4954) on the server side, mechanisms PLAIN and
 * LOGIN. Owns the AUTH command's check and proceed (listed in the command
 * table), the exchange after a 334 (state AUTH: the next line is the
 * client's base64 answer, up to 12288 octets, "*" cancels), the directory
 * check of the password (state LOOKUP, off the loop), the auth hook, and
 * what a failure costs: 535, a log line without the password, an error
 * counted, and a reply held back longer after each failure (smtp_tarpit),
 * here and, through the counts all workers share, on the next connection
 * too (smtp_auth_limit.c, which also refuses AUTH past the limits).
 * A password lives only in a buffer wiped before it is freed.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/base64.h"
#include "../lib/xalloc.h"
#include "smtp_session_int.h"

/* Within ST_AUTH: what the next line answers. */
enum { AUTH_PLAIN, AUTH_LOGIN_USER, AUTH_LOGIN_PASS, AUTH_SASL };

#define AUTH_USER_MAX	255
#define AUTH_PASS_MAX	1024
/* The first failure's reply waits this long, each further one twice as long. */
#define AUTH_DELAY_MS	1000

/* This listener's settings (NULL for the local socket: no AUTH there). */
void
smtp_auth_init(struct smtp_session *s)
{
	const struct config *c = smtp_cfg(s);

	for (size_t i = 0; !s->listener->local && i < c->nlisten; i++)
		if (strcmp(c->listen[i].name, s->listener->name) == 0)
			s->lconf = &c->listen[i];
}

/* EHLO says AUTH only where AUTH would be taken now. */
int
smtp_auth_offered(const struct smtp_session *s)
{
	return s->lconf && s->lconf->auth && s->auth_user == NULL &&
	    (s->tls_on || s->lconf->auth_plaintext);
}

/* MAIL on a listener with require_auth: the refusal, or NULL. */
const char *
smtp_auth_required(const struct smtp_session *s)
{
	if (s->lconf && s->lconf->require_auth && s->auth_user == NULL)
		return "530 5.7.0 Authentication required";
	return NULL;
}

/* Forgets the exchange and the login (STARTTLS, close). */
void
smtp_auth_reset(struct smtp_session *s)
{
	free(s->auth_user);
	s->auth_user = NULL;
	s->auth_no_relay = 0;
	smtp_auth_abort(s);
}

/* Ends an exchange under way: back to commands. */
void
smtp_auth_abort(struct smtp_session *s)
{
	free(s->auth_try);
	s->auth_try = NULL;
	smtp_sasl_free(s);
	if (s->state == ST_AUTH)
		s->state = ST_COMMAND;
}

/*
 * How long the reply to the last failure waits (smtp_tarpit); 0: none.
 * The longer of this session's delay and the one its client has earned
 * in every session (smtp_auth_shared_delay).
 */
uint64_t
smtp_auth_delay(struct smtp_session *s)
{
	int n = s->auth_failures < 6 ? s->auth_failures : 6;
	uint64_t ms, shared;

	if (!s->auth_hold)
		return 0;
	s->auth_hold = 0;
	ms = (uint64_t)AUTH_DELAY_MS << (n - 1);
	shared = smtp_auth_shared_delay(s);
	return shared > ms ? shared : ms;
}

/* A user name we may look up and log: printable, no NUL, not too long. */
int
smtp_auth_plausible(const char *u, size_t n)
{
	if (n == 0 || n > AUTH_USER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f)
			return 0;
	return 1;
}

/* ---- the outcome --------------------------------------------------------- */

static void
log_auth(struct smtp_session *s, enum log_level lvl, const char *event,
    const char *user, const char *why)
{
	struct logline l;

	smtp_log_session(s, &l, lvl, event);
	log_kv(&l, "user", user ? user : "");
	log_kv(&l, "ip", s->ip);
	if (why)
		log_kv(&l, "reason", why);
	log_end(&l);
}

/* 535, logged, counted (here and shared), and held back longer each time:
 * every failure. */
void
smtp_auth_failed(struct smtp_session *s, const char *why)
{
	log_auth(s, LOG_WARN, "auth_failed", s->auth_try, why);
	smtp_auth_count_failure(s, s->auth_try);
	smtp_auth_abort(s);
	s->auth_failures++;
	s->errors++;
	s->auth_hold = 1;
	smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
}

static void
after_auth_hook(struct smtp_session *s, struct hook_verdict *v)
{
	if (!smtp_verdict_allows(s, v)) {
		log_auth(s, LOG_WARN, "auth_refused", s->auth_user, "policy");
		free(s->auth_user);
		s->auth_user = NULL;
		return;
	}
	log_auth(s, LOG_INFO, "auth", s->auth_user, NULL);
	smtp_reply(s, "235 2.7.0 Authentication successful");
}

/* The credentials are right: s->auth_try logs in if the auth hook agrees. */
void
smtp_auth_granted(struct smtp_session *s)
{
	s->auth_user = s->auth_try;
	s->auth_try = NULL;
	smtp_auth_abort(s);
	smtp_run_hooks(s, HOOK_AUTH, after_auth_hook);
}

/* The directory failed: 454, not counted as a failure. */
void
smtp_auth_tempfail(struct smtp_session *s)
{
	log_auth(s, LOG_WARN, "auth_tempfail", s->auth_try,
	    "directory lookup failed");
	smtp_auth_abort(s);
	smtp_reply(s, "454 4.7.0 Temporary authentication failure");
}

/* The directory's answer is in s->auth_result. */
static void
auth_answer(struct smtp_session *s)
{
	switch (s->auth_result.status) {
	case DIR_OK:
		s->auth_no_relay = s->auth_result.no_relay;
		smtp_auth_granted(s);
		break;
	case DIR_TEMPFAIL:
		smtp_auth_tempfail(s);
		break;
	case DIR_REFUSED:
		smtp_auth_failed(s, "user may not log in");
		break;
	default:
		smtp_auth_failed(s, "no such user or wrong password");
	}
}

/* ST_LOOKUP: the password check is over. */
static void
on_auth_checked(void *arg)
{
	struct smtp_session *s = arg;

	s->dirq = NULL;
	s->state = s->resume;
	auth_answer(s);
	if (s->state == ST_COMMAND)
		smtp_command_turn(s);	/* answered: the client's turn */
	smtp_process_input(s);
}

/*
 * The exchange is over: the user being tried (NULL: not a usable name);
 * 0, or 1 when the limits refused it (answered 454, nothing checked).
 */
static int
auth_try_user(struct smtp_session *s, const char *user, size_t ulen)
{
	char *u = smtp_auth_plausible(user, ulen) ? xstrndup(user, ulen) : NULL;

	s->state = ST_COMMAND;
	free(s->auth_try);	/* user may be it: copied first */
	s->auth_try = u;
	if (!smtp_auth_locked(s, u))
		return 0;
	smtp_auth_abort(s);
	return 1;
}

/* Asks the directory (user is NUL-ended; password is wiped by the caller). */
static void
auth_check(struct smtp_session *s, const char *user, size_t ulen,
    const char *password, size_t plen)
{
	if (auth_try_user(s, user, ulen))
		return;
	if (s->auth_try == NULL || plen == 0 || plen > AUTH_PASS_MAX ||
	    memchr(password, '\0', plen)) {
		smtp_auth_failed(s, "malformed credentials");
		return;
	}
	if (directory_authenticate(s->dir, s->auth_try, password,
	    &s->auth_result, on_auth_checked, s, &s->dirq) == DIR_PENDING) {
		s->resume = ST_COMMAND;
		s->state = ST_LOOKUP;
		smtp_flush(s);
		return;
	}
	auth_answer(s);
}

/* PLAIN: authzid NUL authcid NUL passwd; authzid empty or the same user. */
static void
auth_plain(struct smtp_session *s, const struct buf *m)
{
	struct smtp_plain pl;

	if (smtp_parse_plain(m->data ? m->data : "", m->len, &pl) < 0) {
		smtp_auth_abort(s);
		smtp_refuse(s, "AUTH", "501 5.5.2 Malformed PLAIN response");
		return;
	}
	if (pl.authzlen > 0 && (pl.authzlen != pl.userlen ||
	    memcmp(pl.authz, pl.user, pl.userlen) != 0)) {
		if (!auth_try_user(s, pl.user, pl.userlen))
			smtp_auth_failed(s, "authorization identity differs");
		return;
	}
	auth_check(s, pl.user, pl.userlen, pl.pass, pl.passlen);
}

/* ---- the exchange -------------------------------------------------------- */

/* A base64 answer (the initial response, or a line in ST_AUTH). */
static void
auth_step(struct smtp_session *s, const char *resp, size_t n)
{
	struct buf m = BUF_INIT;

	if (base64_decode(resp, n, &m) < 0) {
		smtp_auth_abort(s);
		smtp_refuse(s, "AUTH", "501 5.5.2 Cannot decode the response "
		    "(not base64)");
	} else if (s->auth_step == AUTH_SASL)
		smtp_sasl_response(s, buf_cstr(&m), m.len);
	else if (s->auth_step == AUTH_PLAIN)
		auth_plain(s, &m);
	else if (s->auth_step == AUTH_LOGIN_USER) {
		free(s->auth_try);
		s->auth_try = xstrndup(buf_cstr(&m), m.len);
		s->auth_step = AUTH_LOGIN_PASS;
		s->state = ST_AUTH;
		smtp_reply(s, "334 UGFzc3dvcmQ6");	/* "Password:" */
	} else
		auth_check(s, s->auth_try, strlen(s->auth_try), buf_cstr(&m),
		    m.len);
	buf_wipe(&m);
}

/* ST_AUTH: one line (CRLF removed) answering our 334. */
void
smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		smtp_auth_abort(s);
		smtp_refuse(s, "AUTH", "501 5.0.0 Authentication cancelled");
		return;
	}
	auth_step(s, line, len);
}

/* Is the AUTH command allowed now? The refusal, or NULL. */
const char *
smtp_auth_check(struct smtp_session *s, const struct smtp_command *c)
{
	if (s->lconf == NULL || !s->lconf->auth)
		return "502 5.5.1 AUTH is not available on this port";
	if (s->helo == NULL || !s->esmtp)
		return "503 5.5.1 Send EHLO first";
	if (s->auth_user)
		return "503 5.5.1 Already authenticated";
	if (s->tx != TX_NONE)
		return "503 5.5.1 AUTH not permitted during a mail transaction";
	if (!s->tls_on && !s->lconf->auth_plaintext)
		return "538 5.7.11 Encryption required for requested "
		    "authentication mechanism";
	if (c->arglen == 0)
		return "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
	return NULL;
}

static const struct {
	const char	*name;
	unsigned	 bit;
} mechs[] = {
	{ "PLAIN", AUTH_MECH_PLAIN }, { "LOGIN", AUTH_MECH_LOGIN },
	{ "CRAM-MD5", AUTH_MECH_CRAM_MD5 },
	{ "SCRAM-SHA-256", AUTH_MECH_SCRAM_SHA256 },
};

/* The listener's mechanisms, space separated ("PLAIN LOGIN"). */
void
smtp_auth_mech_names(const struct smtp_session *s, struct buf *out)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (s->lconf && (s->lconf->auth_mechs & mechs[i].bit))
			buf_printf(out, "%s%s", out->len ? " " : "",
			    mechs[i].name);
}

/* The mechanism named [m, m + n) if this listener takes it; else 0. */
static unsigned
mech_bit(const struct smtp_session *s, const char *m, size_t n)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == n &&
		    strncasecmp(m, mechs[i].name, n) == 0)
			return s->lconf->auth_mechs & mechs[i].bit;
	return 0;
}

/* CRAM-MD5, SCRAM-SHA-256: 1 when the initial response is to be read. */
static int
start_mech(struct smtp_session *s, unsigned bit, int has_ir)
{
	struct buf names = BUF_INIT;

	s->auth_step = AUTH_SASL;
	if (bit == AUTH_MECH_CRAM_MD5 || bit == AUTH_MECH_SCRAM_SHA256)
		return smtp_sasl_start(s, bit == AUTH_MECH_CRAM_MD5 ?
		    DIR_MECH_CRAM_MD5 : DIR_MECH_SCRAM_SHA256, has_ir);
	smtp_auth_mech_names(s, &names);
	smtp_reply(s, "504 5.5.4 Unrecognized authentication type (%s "
	    "offered)", buf_cstr(&names));
	smtp_log_reject(s, "AUTH", "504 5.5.4 Unrecognized authentication "
	    "type");
	s->errors++;
	buf_free(&names);
	return 0;
}

/* AUTH mechanism [initial-response]: 334, or the check at once. */
int
smtp_auth_proceed(struct smtp_session *s, const struct smtp_command *c)
{
	const char *sp = memchr(c->arg, ' ', c->arglen);
	size_t ml = sp ? (size_t)(sp - c->arg) : c->arglen;
	const char *ir = sp ? sp + 1 : NULL;
	size_t irlen = sp ? c->arglen - ml - 1 : 0;
	unsigned bit = mech_bit(s, c->arg, ml);

	if (bit == AUTH_MECH_PLAIN)
		s->auth_step = AUTH_PLAIN;
	else if (bit == AUTH_MECH_LOGIN)
		s->auth_step = AUTH_LOGIN_USER;
	else if (!start_mech(s, bit, ir != NULL))
		return 0;
	if (ir && irlen == 1 && ir[0] == '=')	/* an empty initial response */
		irlen = 0;
	if (ir) {
		auth_step(s, ir, irlen);
		return 0;
	}
	s->state = ST_AUTH;
	smtp_reply(s, s->auth_step == AUTH_PLAIN ? "334 " :
	    "334 VXNlcm5hbWU6");	/* "Username:" */
	return 0;
}

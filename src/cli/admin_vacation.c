/*
 * admin_vacation: `indimail user vacation ADDRESS on|off|show`, a user's
 * autoresponder in the vacation table (docs/policies/autoresponder.md):
 * `on` stores the whole setting (subject, the text of --message-file,
 * the optional --from/--until window, the --interval between two replies
 * to one sender) and turns it on; `off` keeps it but turns it off. The
 * daemon reads it with the user (directory_sql.c); the policy
 * lua/policies/autoresponder.lua sends the replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"

#define VACATION_MESSAGE_MAX	16384		/* bytes of the reply's text */
#define VACATION_INTERVAL_DEFAULT (7 * 86400LL)	/* RFC 3834 4: 7 days */
#define VACATION_INTERVAL_MAX	(366 * 86400LL)	/* indimail.counter's window */
#define DAY_SECONDS		86400

/* N, Ns, Nm, Nh or Nd: seconds in [1 s, 366 d]. 0 or EX_DATAERR. */
static int
parse_interval(const char *s, long long *out)
{
	static const struct { char unit; long long mul; } u[] = {
	    { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', DAY_SECONDS } };
	char *end;
	long long v = strtoll(s, &end, 10), mul = end[0] ? 0 : 1;

	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]) && end[0]; i++)
		if (end[0] == u[i].unit && end[1] == '\0')
			mul = u[i].mul;
	if (end == s || mul == 0 || v < 1 || v > VACATION_INTERVAL_MAX / mul)
		return admin_fail(EX_DATAERR, "--interval '%s': a number with "
		    "s, m, h or d, from 1s to 366d", s);
	*out = v * mul;
	return 0;
}

/*
 * YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], local time; a date alone starts
 * (from) or ends (until: midnight after it) the day. 0 or EX_DATAERR.
 */
static int
parse_date(const char *opt, const char *s, int until, long long *out)
{
	struct tm tm = { .tm_isdst = -1 };
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	int date_only = end && *end == '\0';

	if (end && *end == 'T')
		end = strptime(end + 1, "%H:%M", &tm);
	if (end && *end == ':')
		end = strptime(end + 1, "%S", &tm);
	if (end == NULL || *end != '\0')
		return admin_fail(EX_DATAERR, "%s '%s': not YYYY-MM-DD or "
		    "YYYY-MM-DDTHH:MM[:SS]", opt, s);
	if (date_only && until)
		tm.tm_mday++;
	*out = (long long)mktime(&tm);
	return 0;
}

/* Only tabs and newlines among control characters; no bare CR. */
static int
message_text_ok(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if ((c < ' ' && c != '\t' && c != '\n') || c == 127)
			return 0;
	}
	return b->len > 0;
}

/* The reply's text from path, CRLF made LF. 0 or an exit code. */
static int
read_message(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	int c, prev = -1;

	if (f == NULL)
		return admin_fail(EX_NOINPUT, "--message-file %s: cannot be "
		    "opened", path);
	while ((c = getc(f)) != EOF && out->len <= VACATION_MESSAGE_MAX) {
		if (prev == '\r' && c == '\n')
			out->data[--out->len] = '\0';	/* CRLF: the CR goes */
		buf_appendc(out, (char)c);
		prev = c;
	}
	fclose(f);
	if (out->len > VACATION_MESSAGE_MAX)
		return admin_fail(EX_DATAERR, "--message-file %s: over %d bytes",
		    path, VACATION_MESSAGE_MAX);
	if (!message_text_ok(out))
		return admin_fail(EX_DATAERR, "--message-file %s: empty, or "
		    "control characters other than tab and newline", path);
	return 0;
}

/* The settings of `on`, checked: 0 or an exit code. */
static int
vacation_settings(struct admin *a, struct buf *msg, long long *from,
    long long *until, long long *interval)
{
	const struct admin_opts *o = &a->o;
	int rc = 0;

	*from = *until = 0;
	*interval = VACATION_INTERVAL_DEFAULT;
	if (o->vac_message == NULL)
		return admin_fail(EX_USAGE, "user vacation on: needs "
		    "--message-file FILE");
	if ((o->vac_subject && (rc = admin_check_text("--subject",
	    o->vac_subject))) || (rc = read_message(o->vac_message, msg)) ||
	    (o->vac_from && (rc = parse_date("--from", o->vac_from, 0, from))) ||
	    (o->vac_until && (rc = parse_date("--until", o->vac_until, 1,
	    until))) || (o->vac_interval && (rc = parse_interval(
	    o->vac_interval, interval))))
		return rc;
	if (*from && *until && *until <= *from)
		return admin_fail(EX_DATAERR, "--until is not after --from");
	return 0;
}

static int
vacation_on(struct admin *a, const char *local, const char *domain)
{
	struct buf msg = BUF_INIT;
	long long from, until, interval;
	int rc = vacation_settings(a, &msg, &from, &until, &interval);

	if (rc == 0)
		rc = admin_run(a, admin_stmt(a, "REPLACE INTO vacation (local, "
		    "domain, enabled, subject, message, start_at, end_at, "
		    "interval_s) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)",
		    "ssssiii", local, domain, a->o.vac_subject, buf_cstr(&msg),
		    from, until, interval));
	buf_free(&msg);
	return rc;
}

#define VACATION_COLUMNS \
	"SELECT u.local || '@' || u.domain AS address, " \
	"coalesce(v.enabled, 0) AS enabled, v.subject, v.start_at AS \"from\", " \
	"v.end_at AS \"until\", v.interval_s AS \"interval\", v.message " \
	"FROM users u LEFT JOIN vacation v ON v.local = u.local AND " \
	"v.domain = u.domain WHERE u.local = ?1 AND u.domain = ?2"

/* vacation ADDRESS on|off|show; the user exists (admin_user.c checked). */
int
admin_user_vacation(struct admin *a, const char *local, const char *domain)
{
	const char *what = a->o.pos[1];

	if (strcmp(what, "on") == 0)
		return vacation_on(a, local, domain);
	if (strcmp(what, "off") == 0)
		return admin_run(a, admin_stmt(a, "UPDATE vacation SET enabled "
		    "= 0 WHERE local = ?1 AND domain = ?2", "ss", local, domain));
	if (strcmp(what, "show") == 0)
		return admin_print_rows(a, admin_stmt(a, VACATION_COLUMNS,
		    "ss", local, domain), 1);
	return admin_fail(EX_USAGE, "user vacation: on, off or show, not %s",
	    what);
}

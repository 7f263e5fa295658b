/*
 * sendmail: the sendmail-compatible injector (bin/sendmail, also run as
 * mailq and newaliases). It reads no configuration: it submits over the
 * local submission socket ($INDIMAIL_SUBMIT_SOCKET, else the compiled-in
 * path), where the server records the caller's uid and applies the
 * policies of any client. This file reads the options, checks every
 * address before anything is sent, and runs the modes. Exit codes
 * (sysexits.h) are listed in docs/sendmail.md.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "../smtp/smtp_parse.h"
#include "sendmail.h"

#ifndef INDIMAIL_SUBMIT_SOCKET
#define INDIMAIL_SUBMIT_SOCKET "/var/spool/indimail/public/submit.sock"
#endif

#define ADDR_SHOWN	200	/* bytes of a bad address quoted in an error */

int
sendmail_error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("sendmail: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

void
addr_list_add(struct addr_list *l, const char *a)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
	l->v[l->n++] = xstrdup(a);
}

void
addr_list_free(struct addr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* a"\r\n as "a\"\r\n" (C escapes), cut after ADDR_SHOWN bytes. */
void
addr_quote(struct buf *b, const char *a)
{
	size_t i;

	buf_appendc(b, '"');
	for (i = 0; i < ADDR_SHOWN && a[i]; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c == '\r' || c == '\n' || c == '\t')
			buf_printf(b, "\\%c", c == '\r' ? 'r' : c == '\n' ? 'n' : 't');
		else if (c < 32 || c == 127)
			buf_printf(b, "\\x%02x", c);
		else if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else
			buf_appendc(b, (char)c);
	}
	buf_appends(b, i == ADDR_SHOWN && a[i] ? "...\"" : "\"");
}

/*
 * Whether addr is one RFC 5321 mailbox, checked by the server's own parser
 * on "FROM:<addr>" / "TO:<addr>": the path must be all of addr (nothing
 * closes the brackets early, no parameters, no source route). A bare local
 * part is checked as local@localhost: it is qualified once connected. The
 * sender may be empty (the null sender). Returns 1 or 0.
 */
int
addr_valid(const char *addr, int sender)
{
	struct smtp_mail_arg m = { BUF_INIT, 0, 0, SMTP_BODY_NONE };
	struct smtp_rcpt_arg r = { BUF_INIT, 0 };
	struct buf line = BUF_INIT;
	const char *why, *suffix = strchr(addr, '@') ? "" : "@localhost";
	size_t want = strlen(addr) + strlen(suffix);
	int ok;

	if (sender && *addr == '\0')
		return 1;
	buf_printf(&line, "%s:<%s%s>", sender ? "FROM" : "TO", addr, suffix);
	if (sender)
		ok = smtp_parse_mail(line.data, line.len, &m, &why) == 0 &&
		    m.path.len == want;
	else
		ok = smtp_parse_rcpt(line.data, line.len, &r, &why) == 0 &&
		    r.path.len == want;
	buf_free(&line);
	buf_free(&m.path);
	buf_free(&r.path);
	return ok;
}

/* Checks and adds one command-line recipient argument: a, b, c. */
static int
add_arg_rcpts(struct opts *o, const char *arg)
{
	char *copy = xstrdup(arg), *p = copy, *a;
	int rc = 0;

	while (rc == 0 && (a = strsep(&p, ",")) != NULL) {
		while (*a == ' ' || *a == '\t')
			a++;
		for (size_t n = strlen(a); n && (a[n - 1] == ' ' || a[n - 1] == '\t');)
			a[--n] = '\0';
		if (*a == '\0' && p != NULL)
			continue;	/* "a, ,b" and a trailing comma */
		if (addr_valid(a, 0))
			addr_list_add(&o->rcpts, a);
		else {
			struct buf q = BUF_INIT;
			addr_quote(&q, arg);
			rc = sendmail_error(EX_USAGE, "invalid recipient address %s "
			    "(RFC 5321: local@domain, no spaces, brackets or control "
			    "characters)", buf_cstr(&q));
			buf_free(&q);
		}
	}
	free(copy);
	return rc;
}

/* The value of an option: attached (-fa@b) or the next argument. */
static const char *
opt_value(int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	if (a[2] != '\0')
		return a + 2;
	if (*i + 1 < argc)
		return argv[++*i];
	sendmail_error(EX_USAGE, "option %s needs a value", a);
	return NULL;
}

/* -bX: the mode. Returns 0, or EX_USAGE for a mode we do not have. */
static int
opt_mode(struct opts *o, const char *a)
{
	static const struct {
		const char		*flag;
		enum sendmail_mode	 mode;
	} modes[] = {
		{ "-bm", MODE_SEND }, { "-bs", MODE_SMTP }, { "-bv", MODE_VERIFY },
		{ "-bp", MODE_LIST }, { "-bi", MODE_ALIASES },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(a, modes[i].flag) == 0) {
			o->mode = modes[i].mode;
			return 0;
		}
	return sendmail_error(EX_USAGE, "unsupported mode %s (have -bm, -bs, "
	    "-bv, -bp, -bi)", a);
}

/* One option that takes a value; the ignored ones are consumed too. */
static int
opt_valued(struct opts *o, int argc, char **argv, int *i)
{
	char letter = argv[*i][1];
	const char *v = opt_value(argc, argv, i);

	if (v == NULL)
		return EX_USAGE;
	if (letter == 'f' || letter == 'r')
		o->sender = v;
	else if (letter == 'F')
		o->fullname = v;
	else if (letter == 'B')
		o->body8 = strcasecmp(v, "8BITMIME") == 0;
	/* -C file, -N dsn, -R ret, -V envid, -O opt=val, -h hops, -L tag:
	 * accepted and ignored (no configuration is ever read) */
	return 0;
}

/* One option argument at argv[*i]; may consume the next one. */
static int
parse_option(struct opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	if (a[1] != '\0' && strchr("frFBCNRVOhL", a[1]))
		return opt_valued(o, argc, argv, i);
	if (a[1] == 'b')
		return opt_mode(o, a);
	if (strcmp(a, "-oi") == 0 || strcmp(a, "-i") == 0)
		o->dot_is_data = 1;
	else if (strcmp(a, "-o") == 0)
		return opt_value(argc, argv, i) ? 0 : EX_USAGE;
	else if (strcmp(a, "-t") == 0)
		o->from_headers = 1;
	else if (strcmp(a, "-v") == 0)
		o->verbose = 1;
	else if (strcmp(a, "-q") == 0)
		o->mode = MODE_FLUSH;
	else if (a[1] == 'q')
		return sendmail_error(EX_USAGE, "%s: no periodic or selective queue "
		    "runs; the queue manager retries on its own (-q flushes now)", a);
	else if (strcmp(a, "-I") == 0)
		o->mode = MODE_ALIASES;
	else if (strncmp(a, "-o", 2) == 0 || strcmp(a, "-m") == 0 ||
	    strcmp(a, "-n") == 0 || strcmp(a, "-G") == 0 || strcmp(a, "-U") == 0)
		;	/* -oem, -odb, ...: sendmail.cf settings, meaningless here */
	else
		return sendmail_error(EX_USAGE, "unknown option %s", a);
	return 0;
}

/* Options, then recipients; each argument checked. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	int i, rc = 0;

	for (i = 1; rc == 0 && i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		rc = parse_option(o, argc, argv, &i);
	}
	for (; rc == 0 && i < argc; i++)
		rc = add_arg_rcpts(o, argv[i]);
	return rc;
}

/* -f and -F: what the generated envelope and From: will carry. */
static int
check_sender(struct opts *o)
{
	struct buf q = BUF_INIT;
	int rc = 0;

	if (o->sender && strcmp(o->sender, "<>") == 0)
		o->sender = "";		/* the null sender, as in sendmail */
	if (o->sender && !addr_valid(o->sender, 1)) {
		addr_quote(&q, o->sender);
		rc = sendmail_error(EX_USAGE, "invalid sender address %s (RFC 5321: "
		    "local@domain or <>, no spaces, brackets or control characters)",
		    buf_cstr(&q));
	}
	for (const char *p = o->fullname; rc == 0 && p && *p; p++)
		if ((unsigned char)*p < 32 || *p == 127) {
			addr_quote(&q, o->fullname);
			rc = sendmail_error(EX_USAGE, "invalid full name %s: control "
			    "characters", buf_cstr(&q));
		}
	buf_free(&q);
	return rc;
}

/*
 * The admin command: the installed path an installed build has compiled
 * in (sendmail in /usr/sbin, indimail in /usr/bin), else the one beside
 * us (bin/ of the tree). Returns 0, or -1 if our own folder is unknown.
 */
static int
queue_tool_path(char *self, size_t size)
{
#ifdef INDIMAIL_CLI
	snprintf(self, size, "%s", INDIMAIL_CLI);
#else
	ssize_t n = readlink("/proc/self/exe", self, size - 16);
	char *slash;

	if (n <= 0 || (slash = memrchr(self, '/', (size_t)n)) == NULL)
		return -1;
	/* readlink left 16 bytes free: "indimail" fits after the slash */
	snprintf(slash + 1, 16, "indimail");
#endif
	return 0;
}

/* Runs `indimail [-c $INDIMAIL_CONFIG_FILE] queue VERB`. */
static int
run_queue_tool(const char *verb)
{
	char self[PATH_MAX], *argv[6];
	const char *config = getenv("INDIMAIL_CONFIG_FILE");
	int argc = 0;

	if (queue_tool_path(self, sizeof(self)) < 0)
		return sendmail_error(EX_OSERR, "cannot find my own folder "
		    "(/proc/self/exe) to run indimail queue %s", verb);
	argv[argc++] = self;
	if (config) {
		argv[argc++] = "-c";
		argv[argc++] = (char *)config;
	}
	argv[argc++] = "queue";
	argv[argc++] = (char *)verb;
	argv[argc] = NULL;
	fflush(NULL);
	signal(SIGPIPE, SIG_DFL);	/* `mailq | head` ends indimail quietly */
	execv(self, argv);
	return sendmail_error(EX_UNAVAILABLE, "cannot run %s: %s", self,
	    strerror(errno));
}

static int
print_aliases(void)
{
	printf("Aliases live in the Lua configuration (mailboxes.aliases in "
	    "indimail.lua, docs/delivery.md);\nthere is no database to rebuild. "
	    "After editing, reload with SIGHUP to the indimaild master:\n"
	    "  kill -HUP <pid of the indimaild master>\n");
	return 0;
}

/* The caller's login, for the default sender; not from the environment. */
static const char *
login_name(void)
{
	static char fallback[32];
	struct passwd *pw = getpwuid(getuid());

	if (pw && addr_valid(pw->pw_name, 1))
		return pw->pw_name;
	snprintf(fallback, sizeof(fallback), "uid%lu", (unsigned long)getuid());
	return fallback;
}

static int
no_recipients(void)
{
	return sendmail_error(EX_USAGE, "no recipients (give addresses, or -t "
	    "to read them from To:, Cc: and Bcc:)");
}

static int
send_message(const struct opts *o, const char *path)
{
	struct message m;
	int rc;

	memset(&m, 0, sizeof(m));
	if (!o->from_headers && o->rcpts.n == 0)	/* before reading stdin */
		return no_recipients();
	if ((rc = input_read(o, &m)) == 0)
		rc = o->rcpts.n + m.rcpts.n ? smtp_submit(o, path, login_name(),
		    &m) : no_recipients();
	g_object_unref(m.spool);
	addr_list_free(&m.rcpts);
	return rc;
}

static int
run_mode(const struct opts *o, const char *path)
{
	g_mime_init();
	switch (o->mode) {
	case MODE_LIST:
		return run_queue_tool("mailq");
	case MODE_FLUSH:
		return run_queue_tool("flush");
	case MODE_ALIASES:
		return print_aliases();
	case MODE_SMTP:
		return smtp_stdio(path);
	case MODE_VERIFY:
		return smtp_verify(o, path, login_name());
	default:
		return send_message(o, path);
	}
}

int
main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *path = getenv("INDIMAIL_SUBMIT_SOCKET");
	struct opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	signal(SIGPIPE, SIG_IGN);	/* a closed socket is an error, not a kill */
	if (path == NULL || *path == '\0')
		path = INDIMAIL_SUBMIT_SOCKET;
	if (strcmp(name, "mailq") == 0)
		o.mode = MODE_LIST;
	else if (strcmp(name, "newaliases") == 0)
		o.mode = MODE_ALIASES;
	if ((rc = parse_args(argc, argv, &o)) == 0 && (rc = check_sender(&o)) == 0)
		rc = run_mode(&o, path);
	addr_list_free(&o.rcpts);
	return rc;
}

/*
 * smtp_parse: command line and address grammar of RFC 5321 §4.1, pure and
 * bounded. Paths are checked against §4.1.2 (dot-string or quoted local
 * part, domain or address literal, optional source route that is dropped)
 * and the size limits of §4.5.3.1. The domain is stored in lower case.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "../mail/address.h"
#include "smtp_parse.h"

#define LOCAL_MAX	64
#define PATH_MAX_LEN	254	/* 256 with the angle brackets, 4.5.3.1.3 */

static const struct {
	const char	*verb;
	enum smtp_cmd	 cmd;
	int		 noarg;	/* 1: arguments are a syntax error */
} verbs[] = {
	{ "HELO", SMTP_CMD_HELO, 0 }, { "EHLO", SMTP_CMD_EHLO, 0 },
	{ "MAIL", SMTP_CMD_MAIL, 0 }, { "RCPT", SMTP_CMD_RCPT, 0 },
	{ "DATA", SMTP_CMD_DATA, 1 }, { "RSET", SMTP_CMD_RSET, 1 },
	{ "NOOP", SMTP_CMD_NOOP, 0 }, { "QUIT", SMTP_CMD_QUIT, 1 },
	{ "VRFY", SMTP_CMD_VRFY, 0 }, { "EXPN", SMTP_CMD_EXPN, 0 },
	{ "HELP", SMTP_CMD_HELP, 0 }, { "STARTTLS", SMTP_CMD_STARTTLS, 1 },
	{ "AUTH", SMTP_CMD_AUTH, 0 }, { "ETRN", SMTP_CMD_ETRN, 0 },
	{ "BDAT", SMTP_CMD_BDAT, 0 },
	/* A browser or proxy speaking to the SMTP port (cross-protocol). */
	{ "GET", SMTP_CMD_HTTP, 0 }, { "HEAD", SMTP_CMD_HTTP, 0 },
	{ "POST", SMTP_CMD_HTTP, 0 }, { "PUT", SMTP_CMD_HTTP, 0 },
	{ "CONNECT", SMTP_CMD_HTTP, 0 },
};

int
smtp_parse_command(const char *line, size_t len, struct smtp_command *c,
    const char **reply)
{
	size_t i, vl;

	memset(c, 0, sizeof(*c));
	c->line = line;
	c->linelen = len;
	if (memchr(line, '\0', len)) {
		*reply = "500 5.5.2 Syntax error: NUL byte in command";
		return -1;
	}
	while (len > 0 && line[len - 1] == ' ')	/* trailing blanks */
		len--;
	if (len == 0) {
		*reply = "500 5.5.2 Syntax error: empty command";
		return -1;
	}
	for (vl = 0; vl < len && line[vl] != ' '; vl++)
		;
	c->verb = line;
	c->verblen = vl;
	i = vl;
	while (i < len && line[i] == ' ')
		i++;
	c->arg = line + i;
	c->arglen = len - i;
	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++) {
		if (strlen(verbs[k].verb) != vl ||
		    strncasecmp(verbs[k].verb, line, vl) != 0)
			continue;
		c->cmd = verbs[k].cmd;
		if (verbs[k].noarg && c->arglen > 0) {
			*reply = "501 5.5.4 Syntax error: this command takes no arguments";
			return -1;
		}
		return 0;
	}
	*reply = "500 5.5.1 Command unrecognized";
	return -1;
}

static int
is_atext(unsigned char c)
{
	return (c < 128 && isalnum(c)) ||
	    (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* [1.2.3.4] or [IPv6:...]; s points at '[' and len covers through ']'. */
static int
valid_literal(const char *s, size_t len)
{
	char tmp[64];
	unsigned char addr[16];

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(tmp) ||
	    memchr(s, '\0', len) != NULL)	/* inet_pton would stop at a NUL */
		return 0;
	memcpy(tmp, s + 1, len - 2);
	tmp[len - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, addr) == 1;
	return inet_pton(AF_INET, tmp, addr) == 1;
}

int
smtp_parse_helo(const char *arg, size_t len, const char **reply)
{
	if (len == 0) {
		*reply = "501 5.5.4 Syntax: HELO/EHLO hostname";
		return -1;
	}
	if (arg[0] == '[' ? valid_literal(arg, len) : address_valid_domain(arg, len))
		return 0;
	*reply = "501 5.5.4 Syntax: HELO/EHLO needs a valid domain name or address literal";
	return -1;
}

/* Dot-string local part: atoms separated by single dots. Returns its length. */
static size_t
scan_dot_string(const char *s, size_t len)
{
	size_t i = 0;

	for (;;) {
		size_t start = i;
		while (i < len && is_atext((unsigned char)s[i]))
			i++;
		if (i == start)
			return 0;
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

/* Quoted-string local part including both quotes. Returns its length. */
static size_t
scan_quoted(const char *s, size_t len)
{
	size_t i = 1;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c == '\\') {
			if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
				return 0;
			i += 2;
			continue;
		}
		if (c < 32 || c > 126)
			return 0;
		i++;
	}
	return 0;
}

/* Skips an RFC 5321 A-d-l ("@a,@b:") if present. Returns bytes skipped or -1. */
static long
skip_source_route(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || s[0] != '@')
		return 0;
	for (;;) {
		size_t start = ++i;	/* past '@' */
		while (i < len && s[i] != ',' && s[i] != ':')
			i++;
		if (i >= len || !address_valid_domain(s + start, i - start))
			return -1;
		if (s[i] == ':')
			return (long)(i + 1);
		if (++i >= len || s[i] != '@')	/* after ',' */
			return -1;
	}
}

/*
 * Parses "<...>" at the start of s. On success stores the mailbox (domain
 * lowered) in out and returns the bytes consumed; -1 on a syntax error.
 * allow_empty: "<>" is valid (MAIL). postmaster: set if "<postmaster>".
 */
static long
parse_path(const char *s, size_t len, struct buf *out, int allow_empty,
    int *postmaster)
{
	const char *close, *m;
	size_t plen, mlen, lp, i;
	long route;

	buf_clear(out);
	if (len < 2 || s[0] != '<')
		return -1;
	if (s[1] == '>')
		return allow_empty ? 2 : -1;
	/* The closing '>' must be outside a quoted local part. */
	for (i = 1, close = NULL; i < len; i++) {
		if (s[i] == '"') {
			size_t q = scan_quoted(s + i, len - i);
			if (q == 0)
				return -1;
			i += q - 1;
		} else if (s[i] == '>') {
			close = s + i;
			break;
		}
	}
	if (close == NULL)
		return -1;
	plen = (size_t)(close - s) - 1;
	if (plen > PATH_MAX_LEN)
		return -1;
	route = skip_source_route(s + 1, plen);
	if (route < 0)
		return -1;
	m = s + 1 + route;
	mlen = plen - (size_t)route;
	if (postmaster && mlen == 10 && strncasecmp(m, "postmaster", 10) == 0) {
		*postmaster = 1;
		buf_set(out, m, mlen);
		return (long)(plen + 2);
	}
	lp = (mlen > 0 && m[0] == '"') ? scan_quoted(m, mlen) : scan_dot_string(m, mlen);
	if (lp == 0 || lp > LOCAL_MAX || lp >= mlen || m[lp] != '@')
		return -1;
	if (m[lp + 1] == '[' ? !valid_literal(m + lp + 1, mlen - lp - 1)
	    : !address_valid_domain(m + lp + 1, mlen - lp - 1))
		return -1;
	buf_set(out, m, mlen);
	for (i = lp + 1; i < mlen; i++)
		out->data[i] = (char)tolower((unsigned char)out->data[i]);
	return (long)(plen + 2);
}

/* "FROM:" or "TO:" prefix, then optional blanks (a common client habit). */
static long
skip_prefix(const char *arg, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix), i;

	if (len < pl || strncasecmp(arg, prefix, pl) != 0)
		return -1;
	for (i = pl; i < len && arg[i] == ' '; i++)
		;
	return (long)i;
}

static int
parse_size(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

static int
mail_param(struct smtp_mail_arg *out, const char *p, size_t n,
    const char **reply)
{
	const char *eq = memchr(p, '=', n);
	size_t kl = eq ? (size_t)(eq - p) : n;
	const char *v = eq ? eq + 1 : "";
	size_t vl = eq ? n - kl - 1 : 0;

	if (kl == 4 && strncasecmp(p, "SIZE", 4) == 0) {
		if (!eq || parse_size(v, vl, &out->size) < 0) {
			*reply = "501 5.5.4 Syntax error in SIZE parameter";
			return -1;
		}
		out->has_size = 1;
		return 0;
	}
	if (kl == 4 && strncasecmp(p, "BODY", 4) == 0) {
		if (vl == 4 && strncasecmp(v, "7BIT", 4) == 0)
			out->body = SMTP_BODY_7BIT;
		else if (vl == 8 && strncasecmp(v, "8BITMIME", 8) == 0)
			out->body = SMTP_BODY_8BITMIME;
		else {
			*reply = "501 5.5.4 Syntax error in BODY parameter (7BIT or 8BITMIME)";
			return -1;
		}
		return 0;
	}
	*reply = "555 5.5.4 Unsupported MAIL FROM parameter";
	return -1;
}

/* Splits params on blanks and calls fn for each keyword[=value]. */
static int
each_param(const char *p, size_t n, struct smtp_mail_arg *mail,
    const char **reply)
{
	size_t i = 0;

	while (i < n) {
		size_t start;
		while (i < n && p[i] == ' ')
			i++;
		start = i;
		while (i < n && p[i] != ' ')
			i++;
		if (i == start)
			break;
		if (mail == NULL) {
			*reply = "555 5.5.4 Unsupported RCPT TO parameter";
			return -1;
		}
		if (mail_param(mail, p + start, i - start, reply) < 0)
			return -1;
	}
	return 0;
}

int
smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_arg *out,
    const char **reply)
{
	long pre, n;

	out->has_size = 0;
	out->size = 0;
	out->body = SMTP_BODY_NONE;
	pre = skip_prefix(arg, len, "FROM:");
	if (pre < 0) {
		*reply = "501 5.5.4 Syntax: MAIL FROM:<address>";
		return -1;
	}
	n = parse_path(arg + pre, len - (size_t)pre, &out->path, 1, NULL);
	if (n < 0) {
		*reply = "501 5.1.7 Bad sender address syntax";
		return -1;
	}
	pre += n;
	if ((size_t)pre < len && arg[pre] != ' ') {
		*reply = "501 5.1.7 Bad sender address syntax";
		return -1;
	}
	return each_param(arg + pre, len - (size_t)pre, out, reply);
}

int
smtp_parse_rcpt(const char *arg, size_t len, struct smtp_rcpt_arg *out,
    const char **reply)
{
	long pre, n;

	out->postmaster = 0;
	pre = skip_prefix(arg, len, "TO:");
	if (pre < 0) {
		*reply = "501 5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	n = parse_path(arg + pre, len - (size_t)pre, &out->path, 0,
	    &out->postmaster);
	if (n < 0) {
		*reply = "501 5.1.3 Bad recipient address syntax";
		return -1;
	}
	pre += n;
	if ((size_t)pre < len && arg[pre] != ' ') {
		*reply = "501 5.1.3 Bad recipient address syntax";
		return -1;
	}
	return each_param(arg + pre, len - (size_t)pre, NULL, reply);
}

int
smtp_parse_plain(const char *m, size_t len, struct smtp_plain *out)
{
	const char *end = m + len;
	const char *u = len ? memchr(m, '\0', len) : NULL, *p;

	p = u ? memchr(u + 1, '\0', (size_t)(end - u - 1)) : NULL;
	if (p == NULL)
		return -1;
	out->authz = m;
	out->authzlen = (size_t)(u - m);
	out->user = u + 1;
	out->userlen = (size_t)(p - u - 1);
	out->pass = p + 1;
	out->passlen = (size_t)(end - p - 1);
	return 0;
}

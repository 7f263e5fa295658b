/*
 * smtp_reply: RFC 5321 4.2 reply syntax. A reply is one or more lines
 * "ddd-text" ended by "ddd text" (or just "ddd"), all with the same code
 * between 100 and 599. A line that breaks the rule ends the reply at once
 * as malformed (code 0), so a peer cannot make us wait on garbage.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"

static int
line_code(const char *l, size_t n)
{
	if (n < 3 || !isdigit((unsigned char)l[0]) ||
	    !isdigit((unsigned char)l[1]) || !isdigit((unsigned char)l[2]))
		return 0;
	if (n > 3 && l[3] != ' ' && l[3] != '-')
		return 0;
	return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

long
smtp_reply_parse(const char *p, size_t n, int *code, struct buf *text)
{
	size_t pos = 0;
	int first = -1, bad = 0;

	buf_clear(text);
	for (;;) {
		const char *nl = memchr(p + pos, '\n', n - pos);
		size_t ll, start = pos;
		int c;

		if (nl == NULL)
			return n - pos > SMTP_REPLY_MAX || pos > SMTP_REPLY_MAX ?
			    -1 : 0;
		ll = (size_t)(nl - (p + start));
		pos = ll + start + 1;
		if (pos > SMTP_REPLY_MAX)
			return -1;
		if (ll && p[start + ll - 1] == '\r')
			ll--;
		c = line_code(p + start, ll);
		if (first < 0)
			first = c;
		/* A code out of range can start no reply: malformed, now. */
		if (c < 100 || c > 599 || c != first)
			bad = 1;
		if (text->len)
			buf_appendc(text, '\n');
		buf_append(text, p + start, ll);
		if (bad || ll == 3 || p[start + 3] != '-')
			break;	/* last line (a malformed line ends it too) */
	}
	*code = bad || first < 100 || first > 599 ? 0 : first;
	return (long)pos;
}

/* Does the keyword line (after "250-") start with kw as a whole word? */
static int
keyword(const char *line, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	return n >= k && strncasecmp(line, kw, k) == 0 &&
	    (n == k || line[k] == ' ' || line[k] == '=');
}

static unsigned
auth_caps(const char *mechs, size_t n)
{
	unsigned caps = 0;
	size_t i = 0;

	while (i < n) {
		size_t start;
		while (i < n && (mechs[i] == ' ' || mechs[i] == '='))
			i++;
		start = i;
		while (i < n && mechs[i] != ' ')
			i++;
		if (i - start == 5 && strncasecmp(mechs + start, "PLAIN", 5) == 0)
			caps |= EHLO_AUTH_PLAIN;
		if (i - start == 5 && strncasecmp(mechs + start, "LOGIN", 5) == 0)
			caps |= EHLO_AUTH_LOGIN;
	}
	return caps;
}

unsigned
smtp_ehlo_caps(const char *text)
{
	const char *line = strchr(text, '\n');	/* skip the greeting line */
	unsigned caps = 0;

	while (line) {
		const char *kw = line + 1, *nl;
		size_t n;
		if (strlen(kw) < 4)
			break;
		kw += 4;
		nl = strchr(kw, '\n');
		n = nl ? (size_t)(nl - kw) : strlen(kw);
		if (keyword(kw, n, "PIPELINING"))
			caps |= EHLO_PIPELINING;
		else if (keyword(kw, n, "STARTTLS"))
			caps |= EHLO_STARTTLS;
		else if (keyword(kw, n, "8BITMIME"))
			caps |= EHLO_8BITMIME;
		else if (keyword(kw, n, "SIZE"))
			caps |= EHLO_SIZE;
		else if (keyword(kw, n, "AUTH"))
			caps |= auth_caps(kw + 4, n - 4);
		line = nl;
	}
	return caps;
}

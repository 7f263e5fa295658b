/*
 * rspamd_wire: rspamd's request head and reply (see rspamd_wire.h). The
 * HTTP reader is the small part of HTTP/1.x an rspamd reply uses: one
 * status line, header lines up to a blank line, a Content-Length body or
 * one that ends at EOF; chunked bodies are refused. The JSON is jansson's.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "rspamd_wire.h"

#define HTTP_VERSION_LEN	(sizeof("HTTP/1.x") - 1)
#define STATUS_DIGITS		3

/* "Name: value\r\n", unless value is NULL or would break the line. */
static void
header(struct buf *out, const char *name, const char *value)
{
	if (value == NULL || value[strcspn(value, "\r\n")] != '\0')
		return;
	buf_printf(out, "%s: %s\r\n", name, value);
}

void
rspamd_request_head(struct buf *out, const char *host,
    const struct rspamd_envelope *e)
{
	buf_appends(out, "POST /checkv2 HTTP/1.1\r\n");
	header(out, "Host", host);
	buf_appends(out, "Connection: close\r\n");
	buf_printf(out, "Content-Length: %zu\r\n", e->length);
	header(out, "IP", e->ip);
	header(out, "Helo", e->helo);
	header(out, "From", e->from);
	for (size_t i = 0; i < e->nrcpts; i++)
		header(out, "Rcpt", e->rcpts[i]);
	header(out, "Queue-Id", e->queue_id);
	header(out, "User", e->user);
	header(out, "Password", e->password);
	buf_appends(out, "\r\n");
}

/* The end of the head (after its blank line) in p[0..n), or 0. */
static size_t
head_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The value of header name in head[0..n) (its length in *len), or NULL. */
static const char *
find_header(const char *head, size_t n, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *line = memchr(head, '\n', n), *end = head + n;

	while (line && ++line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		size_t ll = eol ? (size_t)(eol - line) : (size_t)(end - line);

		if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1;
			while (v < line + ll && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(line + ll - v);
			while (*len && (v[*len - 1] == '\r' || v[*len - 1] == ' '))
				(*len)--;
			return v;
		}
		line = eol;
	}
	return NULL;
}

/* "HTTP/1.x NNN ...": the status, or -1. */
static int
status_line(const char *p, size_t n)
{
	int s = 0;

	if (n < HTTP_VERSION_LEN + 1 + STATUS_DIGITS ||
	    strncmp(p, "HTTP/1.", HTTP_VERSION_LEN - 1) != 0 ||
	    p[HTTP_VERSION_LEN] != ' ')
		return -1;
	for (size_t i = HTTP_VERSION_LEN + 1;
	    i < HTTP_VERSION_LEN + 1 + STATUS_DIGITS; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		s = s * 10 + (p[i] - '0');
	}
	return s;
}

/* Content-Length as a number: >= 0, or -1 when it is not one. */
static long
content_length(const char *v, size_t len)
{
	long n = 0;

	if (len == 0 || len > 9)	/* RSPAMD_REPLY_MAX has fewer digits */
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

static int
http_fail(struct buf *err, const char *why)
{
	buf_appends(err, why);
	return -1;
}

int
rspamd_http_parse(const char *p, size_t n, int eof, int *status,
    const char **body, size_t *body_len, struct buf *err)
{
	size_t head = head_end(p, n), vlen;
	const char *v;
	long cl;

	if (head == 0)
		return n > RSPAMD_REPLY_MAX ? http_fail(err, "reply too long") :
		    eof ? http_fail(err, "connection closed in the reply's head") : 0;
	if ((*status = status_line(p, head)) < 0)
		return http_fail(err, "not an HTTP reply");
	if (find_header(p, head, "Transfer-Encoding", &vlen))
		return http_fail(err, "chunked replies are not read");
	*body = p + head;
	if ((v = find_header(p, head, "Content-Length", &vlen)) == NULL) {
		*body_len = n - head;
		return eof ? 1 : n > RSPAMD_REPLY_MAX ?
		    http_fail(err, "reply too long") : 0;
	}
	if ((cl = content_length(v, vlen)) < 0 || cl > RSPAMD_REPLY_MAX)
		return http_fail(err, "bad Content-Length");
	if (n - head < (size_t)cl)
		return eof ? http_fail(err, "connection closed in the body") : 0;
	*body_len = (size_t)cl;
	return 1;
}

/* A copy of s, printable ASCII ('?' for others), at most RSPAMD_TEXT_MAX. */
static char *
clean_copy(const char *s)
{
	size_t n = strnlen(s, RSPAMD_TEXT_MAX);
	char *c = xmalloc(n + 1);

	for (size_t i = 0; i < n; i++)
		c[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
	c[n] = '\0';
	return c;
}

/* symbols: { NAME = { name =, score = }, ... } into r (bounded). */
static void
read_symbols(json_t *syms, struct rspamd_reply *r)
{
	const char *key;
	json_t *v;
	size_t cap = json_object_size(syms);

	if (cap > RSPAMD_SYMBOLS_MAX)
		cap = RSPAMD_SYMBOLS_MAX;
	r->symbols = xcalloc(cap ? cap : 1, sizeof(*r->symbols));
	json_object_foreach(syms, key, v) {
		if (r->nsymbols == cap)
			break;
		r->symbols[r->nsymbols].name = clean_copy(key);
		r->symbols[r->nsymbols++].score =
		    json_number_value(json_object_get(v, "score"));
	}
}

int
rspamd_reply_parse(const char *body, size_t n, struct rspamd_reply *r,
    struct buf *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, n, JSON_REJECT_DUPLICATES, &jerr);
	json_t *action = j ? json_object_get(j, "action") : NULL;
	json_t *score = j ? json_object_get(j, "score") : NULL;
	json_t *subject = j ? json_object_get(j, "subject") : NULL;

	memset(r, 0, sizeof(*r));
	if (!json_is_string(action) || !json_is_number(score)) {
		buf_appends(err, j ? "no action or score in the reply" :
		    "the reply is not JSON");
		json_decref(j);
		return -1;
	}
	r->action = clean_copy(json_string_value(action));
	r->score = json_number_value(score);
	r->required_score = json_number_value(json_object_get(j,
	    "required_score"));
	if (json_is_string(subject))
		r->subject = clean_copy(json_string_value(subject));
	if (json_is_object(json_object_get(j, "symbols")))
		read_symbols(json_object_get(j, "symbols"), r);
	json_decref(j);
	return 0;
}

void
rspamd_reply_free(struct rspamd_reply *r)
{
	for (size_t i = 0; i < r->nsymbols; i++)
		free(r->symbols[i].name);
	free(r->symbols);
	free(r->action);
	free(r->subject);
	memset(r, 0, sizeof(*r));
}

/*
 * logparse: one line of log.c's output back into fields (see logparse.h).
 * The decoded text never outgrows the line (quotes and escapes only
 * shrink, and every NUL takes the place of a separator), so the store is
 * reserved once and the field pointers into it never move. Every read is
 * bounded by the line's length; a malformed line is refused, not guessed.
 * A line that starts with '{' is log.c's JSON form (log_json.c), read
 * with jansson into the same fields: a byte log_json.c escaped as a code
 * point 0x80..0xff comes back as that code point's UTF-8.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "logparse.h"

/* "2026-11-25T08:24:06.772017Z" and a little room for longer fractions. */
#define LOGREC_TS_MAX	40

struct cursor {
	const char	*p;
	size_t		 n, pos;
};

static int
at_end(const struct cursor *c)
{
	return c->pos >= c->n;
}

/* The next space-separated token (may be empty); the cursor skips it. */
static size_t
token(struct cursor *c, const char **start)
{
	size_t from = c->pos;

	*start = c->p + from;
	while (!at_end(c) && c->p[c->pos] != ' ')
		c->pos++;
	return c->pos - from;
}

/* Appends bytes and a NUL to the reserved store; -1 if it would move. */
static const char *
put(struct buf *s, const char *v, size_t n)
{
	const char *at = s->data + s->len;

	if (s->len + n + 1 > s->cap)
		return NULL;
	memcpy(s->data + s->len, v, n);
	s->len += n;
	s->data[s->len++] = '\0';
	return at;
}

static int
parse_time(struct logrec *r, const char *t, size_t n)
{
	char ts[LOGREC_TS_MAX + 1];
	struct tm tm;
	const char *rest;

	if (n == 0 || n > LOGREC_TS_MAX || memchr(t, '\0', n))
		return -1;
	memcpy(ts, t, n);
	ts[n] = '\0';
	memset(&tm, 0, sizeof(tm));
	rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return -1;
	if (*rest == '.')
		for (rest++; isdigit((unsigned char)*rest); rest++)
			;
	if (strcmp(rest, "Z") != 0)
		return -1;
	r->when = timegm(&tm);
	return 0;
}

/* "smtp[4700]" → role "smtp". */
static int
parse_role(struct logrec *r, const char *t, size_t n)
{
	const char *lb = memchr(t, '[', n);
	size_t i;

	if (lb == NULL || lb == t || n < 3 || t[n - 1] != ']')
		return -1;
	for (i = (size_t)(lb - t) + 1; i < n - 1; i++)
		if (!isdigit((unsigned char)t[i]))
			return -1;
	if (i == (size_t)(lb - t) + 1)
		return -1;
	return (r->role = put(&r->store, t, (size_t)(lb - t))) ? 0 : -1;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One escape after a backslash at c->pos; the decoded byte, or -1. */
static int
unescape(struct cursor *c)
{
	static const char from[] = "\"\\nrt", to[] = "\"\\\n\r\t";
	const char *e;
	int hi, lo;

	if (at_end(c))
		return -1;
	if ((e = memchr(from, c->p[c->pos], sizeof(from) - 1)) != NULL) {
		c->pos++;
		return (unsigned char)to[e - from];
	}
	if (c->p[c->pos] != 'x' || c->n - c->pos < 3)
		return -1;
	hi = hexval(c->p[c->pos + 1]);
	lo = hexval(c->p[c->pos + 2]);
	c->pos += 3;
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* A "..." value, decoded in place at the end of the store. */
static int
quoted(struct logrec *r, struct cursor *c, struct logfield *f)
{
	struct buf *s = &r->store;
	int ch;

	f->val = s->data + s->len;
	for (c->pos++; !at_end(c) && c->p[c->pos] != '"';) {
		if (c->p[c->pos] == '\\') {
			c->pos++;
			ch = unescape(c);
		} else
			ch = (unsigned char)c->p[c->pos++];
		if (ch < 0 || s->len + 2 > s->cap)
			return -1;
		s->data[s->len++] = (char)ch;
	}
	if (at_end(c))
		return -1;	/* no closing quote */
	c->pos++;
	f->vlen = (size_t)(s->data + s->len - f->val);
	s->data[s->len++] = '\0';
	return at_end(c) || c->p[c->pos] == ' ' ? 0 : -1;
}

static int
is_key(const char *k, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]) &&
		    k[i] != '_')
			return 0;
	return 1;
}

/*
 * A plain value ends at the next space, except that words without "key="
 * after it belong to it: log_event() writes some values (strerror) as is.
 */
static int
plain(struct logrec *r, struct cursor *c, struct logfield *f)
{
	size_t from = c->pos, save;
	const char *t, *eq;
	size_t n;

	for (;;) {
		(void)token(c, &t);
		if (at_end(c))
			break;
		save = c->pos++;
		n = token(c, &t);
		eq = memchr(t, '=', n);
		c->pos = save;
		if (eq && is_key(t, (size_t)(eq - t)))
			break;
		c->pos++;
	}
	if (memchr(c->p + from, '"', c->pos - from))
		return -1;
	f->vlen = c->pos - from;
	return (f->val = put(&r->store, c->p + from, f->vlen)) ? 0 : -1;
}

static int
field(struct logrec *r, struct cursor *c)
{
	struct logfield *f = &r->f[r->nf];
	const char *k = c->p + c->pos;
	size_t kn = 0;

	while (c->pos + kn < c->n && c->p[c->pos + kn] != '=')
		kn++;
	if (c->pos + kn >= c->n || !is_key(k, kn))
		return -1;
	c->pos += kn + 1;
	if ((f->key = put(&r->store, k, kn)) == NULL)
		return -1;
	if ((!at_end(c) && c->p[c->pos] == '"' ? quoted(r, c, f) :
	    plain(r, c, f)) < 0)
		return -1;
	r->nf++;
	return 0;
}

/* ---- the JSON form ----------------------------------------------------- */

static const char *
json_str(json_t *o, const char *key, size_t *len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* One field: a string, or an integer written as text. */
static int
json_field(struct logrec *r, const char *key, json_t *v)
{
	struct logfield *f = &r->f[r->nf];
	char num[24];
	const char *s = num;
	size_t n;

	if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
	} else if (json_is_integer(v))
		n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else
		return -1;
	if (!is_key(key, strlen(key)) || (f->key = put(&r->store, key,
	    strlen(key))) == NULL || (f->val = put(&r->store, s, n)) == NULL)
		return -1;
	f->vlen = n;
	r->nf++;
	return 0;
}

static int
json_head(struct logrec *r, json_t *o)
{
	const char *ts, *role, *level;
	size_t tn, rn, ln;

	if ((ts = json_str(o, "ts", &tn)) == NULL || parse_time(r, ts, tn) < 0 ||
	    (role = json_str(o, "role", &rn)) == NULL || rn == 0 ||
	    (level = json_str(o, "level", &ln)) == NULL || ln == 0 ||
	    memchr(role, '\0', rn) || memchr(level, '\0', ln))
		return -1;
	r->role = put(&r->store, role, rn);
	r->level = put(&r->store, level, ln);
	return r->role && r->level ? 0 : -1;
}

/* Event first, then every other field but the head's. */
static int
json_fields(struct logrec *r, json_t *o)
{
	const char *key;
	json_t *v;

	if (json_field(r, "event", json_object_get(o, "event")) < 0)
		return -1;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "ts") == 0 || strcmp(key, "role") == 0 ||
		    strcmp(key, "level") == 0 || strcmp(key, "pid") == 0 ||
		    strcmp(key, "event") == 0)
			continue;
		if (r->nf >= LOGREC_FIELDS)
			break;
		if (json_field(r, key, v) < 0)
			return -1;
	}
	return 0;
}

static int
logrec_parse_json(struct logrec *r, const char *line, size_t n)
{
	json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES |
	    JSON_ALLOW_NUL, NULL);
	int rc = -1;

	if (json_is_object(o) && json_head(r, o) == 0 && json_fields(r, o) == 0)
		rc = 0;
	json_decref(o);
	return rc;
}

int
logrec_parse(struct logrec *r, const char *line, size_t n)
{
	struct cursor c = { line, n, 0 };
	const char *t;
	size_t tn;

	while (c.n > 0 && (line[c.n - 1] == '\n' || line[c.n - 1] == '\r'))
		c.n--;
	r->nf = 0;
	buf_clear(&r->store);
	buf_reserve(&r->store, c.n + 2);
	if (c.n > 0 && line[0] == '{')
		return logrec_parse_json(r, line, c.n);
	tn = token(&c, &t);
	if (parse_time(r, t, tn) < 0 || at_end(&c))
		return -1;
	c.pos++;
	tn = token(&c, &t);
	if (parse_role(r, t, tn) < 0 || at_end(&c))
		return -1;
	c.pos++;
	tn = token(&c, &t);
	if (tn == 0 || (r->level = put(&r->store, t, tn)) == NULL)
		return -1;
	while (!at_end(&c) && r->nf < LOGREC_FIELDS) {
		c.pos++;	/* the space before each field */
		if (field(r, &c) < 0)
			return -1;
	}
	return r->nf > 0 && strcmp(r->f[0].key, "event") == 0 ? 0 : -1;
}

const char *
logrec_get(const struct logrec *r, const char *key)
{
	for (size_t i = 0; i < r->nf; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return r->f[i].val;
	return NULL;
}

void
logrec_free(struct logrec *r)
{
	buf_free(&r->store);
	r->nf = 0;
}

/*
 * authres: RFC 8601 2.2 Authentication-Results, read with one cursor over
 * the value, left to right, no backtracking but one (a quoted pvalue
 * followed by '@' is read again as written). Every string goes into the
 * caller's scratch area, each byte written for a byte consumed, so n bytes
 * always suffice. The first error stops the parse and is kept with its
 * byte offset. Strict RFC 8601 except pvalue (see read_pvalue).
 */
#include <string.h>

#include "authres.h"

#define STR_(x)	#x
#define STR(x)	STR_(x)

struct cur {
	const char	*p;	/* next byte to read */
	const char	*end;
	const char	*start;
	char		*out;	/* next free byte of the scratch area */
	struct authres	*ar;
};

static int
fail(struct cur *c, const char *why)
{
	if (c->ar->error == NULL) {
		c->ar->error = why;
		c->ar->errpos = (size_t)(c->p - c->start);
	}
	return -1;
}

static int
peek(const struct cur *c)
{
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

static int
is_wsp(int ch)
{
	return ch == ' ' || ch == '\t';
}

/* Visible characters; bytes of UTF-8 too (RFC 6532). */
static int
is_text(int ch)
{
	return ch > 0x20 && ch != 0x7f;
}

static int
is_alnum(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z');
}

/* RFC 2045 token: no space, controls or tspecials. */
static int
is_token(int ch)
{
	return is_text(ch) && strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

/* What read_pvalue takes without quotes. */
static int
is_pchar(int ch)
{
	return is_text(ch) && strchr("();\"\\", ch) == NULL;
}

static int
is_word(struct authres_span s, const char *w)
{
	return s.len == strlen(w) && memcmp(s.s, w, s.len) == 0;
}

static struct authres_span
span_open(const struct cur *c)
{
	struct authres_span s = { c->out, 0 };

	return s;
}

/* Appends ch to s, the span being written at the end of the scratch area. */
static int
emit(struct cur *c, struct authres_span *s, int ch)
{
	if (s->len >= AUTHRES_MAX_VALUE)
		return fail(c, "a value longer than " STR(AUTHRES_MAX_VALUE)
		    " bytes");
	*c->out++ = (char)ch;
	s->len++;
	return 0;
}

/* Appends the byte at the cursor to s and moves past it. */
static int
take(struct cur *c, struct authres_span *s)
{
	if (emit(c, s, (unsigned char)*c->p) < 0)
		return -1;
	c->p++;
	return 0;
}

/* CRLF or LF at the cursor: its length, or 0. */
static size_t
line_break(const struct cur *c)
{
	if (peek(c) == '\n')
		return 1;
	if (c->end - c->p >= 2 && c->p[0] == '\r' && c->p[1] == '\n')
		return 2;
	return 0;
}

/*
 * FWS: white space, and line breaks each followed by white space; a break
 * that ends the value ends the field. 1 if it skipped any, else 0 or -1.
 */
static int
skip_fws(struct cur *c)
{
	const char *from = c->p;
	size_t lb;

	for (;;) {
		if (is_wsp(peek(c))) {
			c->p++;
			continue;
		}
		if ((lb = line_break(c)) == 0)
			break;
		if (c->p + lb < c->end && !is_wsp(c->p[lb]))
			return fail(c, "a line break not followed by white space");
		c->p += lb;
	}
	return c->p != from;
}

/* A backslash and the character it quotes. */
static int
quoted_pair(struct cur *c)
{
	if (c->end - c->p < 2 || !(is_text((unsigned char)c->p[1]) ||
	    is_wsp(c->p[1])))
		return fail(c, "a backslash not followed by a character");
	c->p += 2;
	return 0;
}

/* A comment (the cursor on its '('), with the comments nested in it. */
static int
skip_comment(struct cur *c)
{
	size_t depth = 0;

	do {
		if (skip_fws(c) < 0)
			return -1;
		if (peek(c) < 0)
			return fail(c, "an unterminated comment");
		if (*c->p == '\\') {
			if (quoted_pair(c) < 0)
				return -1;
			continue;
		}
		if (*c->p == '(')
			depth++;
		else if (*c->p == ')')
			depth--;
		else if (!is_text((unsigned char)*c->p))
			return fail(c, "a control character in a comment");
		c->p++;
	} while (depth > 0);
	return 0;
}

/* CFWS: white space, folding and comments. 1 if it skipped any. */
static int
skip_cfws(struct cur *c)
{
	const char *from = c->p;

	for (;;) {
		if (skip_fws(c) < 0)
			return -1;
		if (peek(c) != '(')
			break;
		if (skip_comment(c) < 0)
			return -1;
	}
	return c->p != from;
}

/* Keeps the white space of FWS inside a quoted-string, drops its breaks. */
static int
quoted_fws(struct cur *c, struct authres_span *s)
{
	const char *ws = c->p;

	if (skip_fws(c) < 0)
		return -1;
	for (; ws < c->p; ws++)
		if (is_wsp(*ws) && emit(c, s, *ws) < 0)
			return -1;
	return 0;
}

/*
 * A quoted-string (the cursor on its '"') appended to s: its content, or
 * with raw, as written (quotes and backslashes kept, breaks dropped).
 */
static int
quoted_into(struct cur *c, struct authres_span *s, int raw)
{
	c->p++;
	if (raw && emit(c, s, '"') < 0)
		return -1;
	for (;;) {
		if (quoted_fws(c, s) < 0)
			return -1;
		if (peek(c) < 0)
			return fail(c, "an unterminated quoted-string");
		if (*c->p == '"')
			break;
		if (*c->p == '\\') {
			if (quoted_pair(c) < 0 || (raw && emit(c, s, '\\') < 0))
				return -1;
			c->p--;	/* to the quoted character, taken below */
		} else if (!is_text((unsigned char)*c->p))
			return fail(c, "a control character in a quoted-string");
		if (take(c, s) < 0)
			return -1;
	}
	c->p++;
	return raw ? emit(c, s, '"') : 0;
}

/* Keyword (RFC 5321: Let-dig [Ldh-str]) appended to s, in lower case. */
static int
keyword_into(struct cur *c, struct authres_span *s, const char *missing)
{
	int ch;

	if (!is_alnum(peek(c)))
		return fail(c, missing);
	while (is_alnum(ch = peek(c)) || ch == '-') {
		if (emit(c, s, ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch) < 0)
			return -1;
		c->p++;
	}
	if (s->s[s->len - 1] == '-')
		return fail(c, "a keyword that ends with '-'");
	return 0;
}

static int
read_keyword(struct cur *c, struct authres_span *s, const char *missing)
{
	*s = span_open(c);
	return keyword_into(c, s, missing);
}

/* 1*DIGIT, at most AUTHRES_MAX_DIGITS. */
static int
read_digits(struct cur *c, struct authres_span *s, const char *missing)
{
	*s = span_open(c);
	if (peek(c) < '0' || peek(c) > '9')
		return fail(c, missing);
	while (peek(c) >= '0' && peek(c) <= '9') {
		if (s->len == AUTHRES_MAX_DIGITS)
			return fail(c, "a version longer than "
			    STR(AUTHRES_MAX_DIGITS) " digits");
		if (take(c, s) < 0)
			return -1;
	}
	return 0;
}

/* RFC 2045 value: a token or a quoted-string. */
static int
read_value(struct cur *c, struct authres_span *s, const char *missing)
{
	*s = span_open(c);
	if (peek(c) == '"')
		return quoted_into(c, s, 0);
	if (!is_token(peek(c)))
		return fail(c, missing);
	while (is_token(peek(c)))
		if (take(c, s) < 0)
			return -1;
	return 0;
}

static int
pchars_into(struct cur *c, struct authres_span *s, const char *missing)
{
	if (!is_pchar(peek(c)))
		return fail(c, missing);
	while (is_pchar(peek(c)))
		if (take(c, s) < 0)
			return -1;
	return 0;
}

/*
 * pvalue (RFC 8601: value / [[local-part] "@"] domain-name), read as a
 * quoted-string (a quoted local-part before '@' is kept as written) or a
 * run of visible characters but ( ) ; " \ : what headers in the wild put
 * there and RFC 2045 tokens refuse, as base64 header.b=ab/c= (our own
 * dkim_verify writes those) or an IPv6 address, is taken.
 */
static int
read_pvalue(struct cur *c, struct authres_span *s)
{
	const char *from = c->p;

	*s = span_open(c);
	if (peek(c) != '"')
		return pchars_into(c, s, "expected a property value after '='");
	if (quoted_into(c, s, 0) < 0)
		return -1;
	if (peek(c) != '@')
		return 0;
	c->p = from;
	c->out -= s->len;
	s->len = 0;
	if (quoted_into(c, s, 1) < 0)
		return -1;
	return pchars_into(c, s, "expected a domain after '@'");
}

/* authserv-id [CFWS authres-version] [CFWS]. */
static int
parse_id(struct cur *c)
{
	struct authres *ar = c->ar;
	int had;

	if (skip_cfws(c) < 0)
		return -1;
	if (read_value(c, &ar->authserv_id,
	    "expected the authserv-id (a host name) first") < 0) {
		ar->authserv_id.s = NULL;
		ar->authserv_id.len = 0;
		return -1;
	}
	if ((had = skip_cfws(c)) < 0)
		return -1;
	if (had && peek(c) >= '0' && peek(c) <= '9')
		if (read_digits(c, &ar->version, "") < 0 || skip_cfws(c) < 0)
			return -1;
	return 0;
}

/* "/" [CFWS] method-version [CFWS], the cursor on the '/'. */
static int
read_method_version(struct cur *c, struct authres_result *r)
{
	c->p++;
	if (skip_cfws(c) < 0 || read_digits(c, &r->version,
	    "expected a method version (digits) after '/'") < 0)
		return -1;
	return skip_cfws(c) < 0 ? -1 : 0;
}

/* "reason" [CFWS] "=" [CFWS] value [CFWS], the cursor on the '='. */
static int
read_reason(struct cur *c, struct authres_result *r)
{
	c->p++;
	if (skip_cfws(c) < 0 || read_value(c, &r->reason,
	    "expected a reason (a token or a quoted-string) after '='") < 0)
		return -1;
	return skip_cfws(c);
}

/* ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue [CFWS]; the ptype
 * read (key), the cursor after the CFWS that follows it. */
static int
read_prop(struct cur *c, struct authres_result *r, struct authres_span key)
{
	struct authres_prop *pr;

	if (r->nprops == AUTHRES_MAX_PROPS)
		return fail(c, "more than " STR(AUTHRES_MAX_PROPS)
		    " properties in one result");
	pr = &r->props[r->nprops];
	pr->key = key;
	if (peek(c) != '.')
		return fail(c, "expected '.' after the property type"
		    " (as in header.d=)");
	c->p++;
	if (emit(c, &pr->key, '.') < 0 || skip_cfws(c) < 0 ||
	    keyword_into(c, &pr->key, "expected a property after '.'") < 0 ||
	    skip_cfws(c) < 0)
		return -1;
	if (peek(c) != '=')
		return fail(c, "expected '=' after the property");
	c->p++;
	if (skip_cfws(c) < 0 || read_pvalue(c, &pr->value) < 0)
		return -1;
	r->nprops++;
	return skip_cfws(c);
}

/* [CFWS reasonspec] [CFWS 1*propspec], up to the next ';' or the end;
 * had: whether CFWS came after the result. */
static int
parse_tail(struct cur *c, struct authres_result *r, int had)
{
	struct authres_span kw;

	while (had >= 0 && peek(c) >= 0 && peek(c) != ';') {
		if (!had)
			return fail(c, "expected white space, ';' or the end"
			    " after a result or a property");
		if (read_keyword(c, &kw, "expected a property (as in"
		    " header.d=) or ';'") < 0 || skip_cfws(c) < 0)
			return -1;
		if (peek(c) == '=' && is_word(kw, "reason")) {
			if (r->nprops > 0 || r->reason.s != NULL)
				return fail(c, "reason= comes once, before"
				    " the properties");
			had = read_reason(c, r);
		} else
			had = read_prop(c, r, kw);
	}
	return had < 0 ? -1 : 0;
}

/*
 * [CFWS] method [CFWS] ["/" version] "=" [CFWS] result and its tail, the
 * cursor after the ';' and its CFWS. 1: it was the lone "none".
 */
static int
parse_resinfo(struct cur *c, struct authres_result *r, int first)
{
	int had;

	if (read_keyword(c, &r->method, "expected a method (as in dkim=)"
	    " after ';'") < 0 || skip_cfws(c) < 0)
		return -1;
	if (peek(c) != '=' && peek(c) != '/' && is_word(r->method, "none"))
		return first && peek(c) < 0 ? 1 :
		    fail(c, "\"none\" must stand alone after the authserv-id");
	if (peek(c) == '/' && read_method_version(c, r) < 0)
		return -1;
	if (peek(c) != '=')
		return fail(c, "expected '=' after the method");
	c->p++;
	if (skip_cfws(c) < 0 || read_keyword(c, &r->result,
	    "expected a result (as in pass) after '='") < 0)
		return -1;
	if ((had = skip_cfws(c)) < 0)
		return -1;
	return parse_tail(c, r, had);
}

/* ( no-result / 1*resinfo ), each after a ';'. */
static int
parse_results(struct cur *c)
{
	struct authres *ar = c->ar;
	int rc;

	if (peek(c) < 0)
		return fail(c, "expected ';' and the results (or none) after"
		    " the authserv-id");
	while (peek(c) >= 0) {
		if (peek(c) != ';')
			return fail(c, "expected ';' before a result");
		if (ar->nresults == AUTHRES_MAX_RESULTS)
			return fail(c, "more than " STR(AUTHRES_MAX_RESULTS)
			    " results");
		c->p++;
		if (skip_cfws(c) < 0)
			return -1;
		rc = parse_resinfo(c, &ar->results[ar->nresults],
		    ar->nresults == 0);
		if (rc < 0)
			return -1;
		if (rc == 0)
			ar->nresults++;
	}
	return 0;
}

int
authres_parse(const char *v, size_t n, char *scratch, struct authres *ar)
{
	struct cur c;

	memset(ar, 0, sizeof(*ar));
	c = (struct cur){ v, v + n, v, scratch, ar };
	if (n > AUTHRES_MAX_FIELD)
		return fail(&c, "a field longer than " STR(AUTHRES_MAX_FIELD)
		    " bytes");
	if (parse_id(&c) < 0 || parse_results(&c) < 0)
		return -1;
	return 0;
}

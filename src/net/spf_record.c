/*
 * spf_record: see spf_record.h. The parser follows RFC 7208 section 12's
 * ABNF rule by rule: terms split on SP only; a name followed by '=' is a
 * modifier, else it must be one of the eight mechanisms; domain-specs are
 * macro-strings (section 7.1) whose domain-end is a macro or "." and a
 * valid toplabel; CIDR lengths have no leading zero and stay in range.
 * Every refusal says which term and why.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "spf_record.h"

#define VERSION		"v=spf1"
#define VERSION_LEN	(sizeof(VERSION) - 1)
#define CIDR4_MAX	32
#define CIDR6_MAX	128
#define DECIMAL_DIGITS_MAX	3
#define IP6_TEXT_MAX	INET6_ADDRSTRLEN
#define TERM_SHOWN_MAX	64	/* bytes of a bad term quoted in why */

/* What a macro-string may use: a domain-spec is refused c, r and t. */
#define LETTERS_ALL	"slodiphcrtv"
#define LETTERS_DOMAIN	"slodiphv"
#define DELIMITERS	".-+,/_="

static const struct {
	const char		*name;
	enum spf_term_kind	 kind;
} mechanisms[] = {
	{ "all", SPF_T_ALL }, { "include", SPF_T_INCLUDE }, { "a", SPF_T_A },
	{ "mx", SPF_T_MX }, { "ptr", SPF_T_PTR }, { "ip4", SPF_T_IP4 },
	{ "ip6", SPF_T_IP6 }, { "exists", SPF_T_EXISTS },
};

int
spf_record_is_spf(const char *text, size_t len)
{
	return len >= VERSION_LEN && strncasecmp(text, VERSION,
	    VERSION_LEN) == 0 && (len == VERSION_LEN || text[VERSION_LEN] == ' ');
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The length of the macro-expand at p (p[0] == '%'), 0 if it is none. */
static size_t
macro_expand(const char *p, size_t n, const char *letters)
{
	size_t i = 2;

	if (n >= 2 && (p[1] == '%' || p[1] == '_' || p[1] == '-'))
		return 2;
	if (n < 4 || p[1] != '{' || !is_alpha(p[2]) ||
	    strchr(letters, p[2] | 0x20) == NULL)
		return 0;
	for (i = 3; i < n && is_digit(p[i]); i++)
		;
	if (i < n && (p[i] == 'r' || p[i] == 'R'))
		i++;
	while (i < n && p[i] != '\0' && strchr(DELIMITERS, p[i]) != NULL)
		i++;
	return i < n && p[i] == '}' ? i + 1 : 0;
}

/*
 * Walks the macro-string p[0..n); NULL, or what is wrong. *tail: where the
 * literal text after the last macro-expand starts.
 */
static const char *
macro_string(const char *p, size_t n, const char *letters, size_t *tail)
{
	*tail = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];
		size_t m;

		if (c == '%') {
			if ((m = macro_expand(p + i, n - i, letters)) == 0)
				return "a '%' that starts no valid macro";
			i += m;
			*tail = i;
		} else if (c < 0x21 || c > 0x7e)
			return "a control, space or non-ASCII byte";
		else
			i++;
	}
	return NULL;
}

/* RFC 7208 toplabel: alphanumerics and '-', not at either end; a label
 * without '-' needs a letter (so it is no number). */
static int
toplabel(const char *p, size_t n)
{
	int alpha = 0, hyphen = 0;

	if (n == 0 || p[0] == '-' || p[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '-')
			hyphen = 1;
		else if (is_alpha(p[i]))
			alpha = 1;
		else if (!is_digit(p[i]))
			return 0;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end; NULL, or what is wrong. */
static const char *
domain_spec(const char *p, size_t n)
{
	const char *why, *dot;
	size_t tail;

	if (n == 0)
		return "an empty domain-spec";
	if ((why = macro_string(p, n, LETTERS_DOMAIN, &tail)) != NULL)
		return why;
	if (tail == n)
		return NULL;		/* domain-end is a macro-expand */
	if (p[n - 1] == '.')
		n--;			/* [ "." ] after the toplabel */
	dot = memrchr(p + tail, '.', n > tail ? n - tail : 0);
	if (dot == NULL || !toplabel(dot + 1, (size_t)(p + n - dot - 1)))
		return "a domain-spec whose last label is no valid top label";
	return NULL;
}

/* The decimal p[0..n) (a CIDR length, a qnum): its value, or -1 when
 * it has a leading 0, is no number or is over max. */
static int
decimal(const char *p, size_t n, int max)
{
	int v = 0;

	if (n == 0 || n > DECIMAL_DIGITS_MAX || (n > 1 && p[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v <= max ? v : -1;
}

/* The length of the "/" 1*DIGIT that ends p[0..n), 0 if none. */
static size_t
slash_digits(const char *p, size_t n)
{
	size_t i = n;

	while (i > 0 && is_digit(p[i - 1]))
		i--;
	return i < n && i > 0 && p[i - 1] == '/' ? n - i + 1 : 0;
}

/* Takes a dual-cidr-length off the end of t's argument. NULL, or why. */
static const char *
dual_cidr(struct spf_term *t)
{
	size_t k = slash_digits(t->arg, t->arglen);

	if (k > 0 && k < t->arglen && t->arg[t->arglen - k - 1] == '/') {
		t->cidr6 = decimal(t->arg + t->arglen - k + 1, k - 1,
		    CIDR6_MAX);
		if (t->cidr6 < 0)
			return "an IPv6 CIDR length that is not 0 to 128";
		t->arglen -= k + 1;
		k = slash_digits(t->arg, t->arglen);
	}
	if (k > 0) {
		t->cidr4 = decimal(t->arg + t->arglen - k + 1, k - 1,
		    CIDR4_MAX);
		if (t->cidr4 < 0)
			return "an IPv4 CIDR length that is not 0 to 32";
		t->arglen -= k;
	}
	return NULL;
}

/* qnum "." qnum "." qnum "." qnum, no leading zeros. */
static int
ip4_network(const char *p, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start;
		if (part > 0 && (i >= n || p[i++] != '.'))
			return 0;
		start = i;
		while (i < n && is_digit(p[i]) && i - start < DECIMAL_DIGITS_MAX)
			i++;
		if (decimal(p + start, i - start, UINT8_MAX) < 0)
			return 0;
	}
	return i == n;
}

static int
ip6_network(const char *p, size_t n)
{
	char s[IP6_TEXT_MAX];
	unsigned char a[sizeof(struct in6_addr)];

	if (n == 0 || n >= sizeof(s) || memchr(p, '\0', n) != NULL)
		return 0;
	memcpy(s, p, n);
	s[n] = '\0';
	return inet_pton(AF_INET6, s, a) == 1;
}

/* ip4 / ip6: network [ "/" length ]. NULL, or what is wrong. */
static const char *
ip_network(struct spf_term *t)
{
	int v6 = t->kind == SPF_T_IP6;
	const char *slash = memchr(t->arg, '/', t->arglen);
	size_t netlen = slash ? (size_t)(slash - t->arg) : t->arglen;
	int *cidr = v6 ? &t->cidr6 : &t->cidr4;

	if (slash) {
		*cidr = decimal(slash + 1, t->arglen - netlen - 1,
		    v6 ? CIDR6_MAX : CIDR4_MAX);
		if (*cidr < 0)
			return v6 ? "an IPv6 CIDR length that is not 0 to 128"
			    : "an IPv4 CIDR length that is not 0 to 32";
	}
	t->arglen = netlen;
	if (v6 ? !ip6_network(t->arg, netlen) : !ip4_network(t->arg, netlen))
		return v6 ? "no IPv6 network" : "no IPv4 network";
	return NULL;
}

/* A mechanism's argument: t->arg holds what follows its name. */
static const char *
mechanism_arg(struct spf_term *t)
{
	const char *why;

	switch (t->kind) {
	case SPF_T_ALL:
		return t->arglen ? "text after \"all\"" : NULL;
	case SPF_T_A:
	case SPF_T_MX:
		if ((why = dual_cidr(t)) != NULL)
			return why;
		/* FALLTHROUGH */
	case SPF_T_PTR:
		if (t->arglen == 0) {
			t->arg = NULL;
			return NULL;
		}
		break;
	default:
		break;
	}
	if (t->arglen == 0 || t->arg[0] != ':')
		return "a mechanism without its ':' argument";
	t->arg++;
	t->arglen--;
	if (t->kind == SPF_T_IP4 || t->kind == SPF_T_IP6)
		return ip_network(t);
	return domain_spec(t->arg, t->arglen);
}

/* The mechanism named p[0..n) (any case), or -1. */
static int
mechanism_kind(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(mechanisms) / sizeof(mechanisms[0]); i++)
		if (strlen(mechanisms[i].name) == n &&
		    strncasecmp(p, mechanisms[i].name, n) == 0)
			return (int)mechanisms[i].kind;
	return -1;
}

/* name "=" value: redirect, exp or an unknown modifier. */
static const char *
modifier(struct spf_term *t, size_t namelen)
{
	size_t tail;

	if (t->qualifier)
		return "a qualifier before a modifier";
	if (namelen == 8 && strncasecmp(t->text, "redirect", 8) == 0)
		t->kind = SPF_T_REDIRECT;
	else if (namelen == 3 && strncasecmp(t->text, "exp", 3) == 0)
		t->kind = SPF_T_EXP;
	else {
		t->kind = SPF_T_UNKNOWN;
		return macro_string(t->arg, t->arglen, LETTERS_ALL, &tail);
	}
	return domain_spec(t->arg, t->arglen);
}

/* One term p[0..n) into t: NULL, or what is wrong. */
static const char *
parse_term(const char *p, size_t n, struct spf_term *t)
{
	size_t i = 0;
	int kind;

	memset(t, 0, sizeof(*t));
	t->cidr4 = t->cidr6 = SPF_CIDR_NONE;
	if (p[0] != '\0' && strchr("+-~?", p[0]) != NULL)
		t->qualifier = p[i++];
	t->text = p + i;
	if (i >= n || !is_alpha(p[i]))
		return "a term that does not start with a name";
	while (i < n && (is_alpha(p[i]) || is_digit(p[i]) ||
	    (p[i] != '\0' && strchr("-_.", p[i]) != NULL)))
		i++;
	t->arg = p + i;
	t->arglen = n - i;
	t->len = (size_t)(p + n - t->text);
	if (i < n && p[i] == '=') {
		t->arg++;
		t->arglen--;
		return modifier(t, (size_t)(p + i - t->text));
	}
	if ((kind = mechanism_kind(t->text, (size_t)(p + i - t->text))) < 0)
		return "an unknown mechanism";
	t->kind = (enum spf_term_kind)kind;
	return mechanism_arg(t);
}

/* Adds the term p[0..n) to r; NULL, or what is wrong. */
static const char *
add_term(struct spf_record *r, const char *p, size_t n, int *seen)
{
	struct spf_term *t = &r->terms[r->n];
	const char *why = parse_term(p, n, t);

	if (why)
		return why;
	r->n++;
	if (t->kind == SPF_T_ALL)
		r->has_all = 1;
	if (t->kind == SPF_T_REDIRECT || t->kind == SPF_T_EXP) {
		if (seen[t->kind == SPF_T_EXP]++)
			return t->kind == SPF_T_EXP ? "a second exp=" :
			    "a second redirect=";
	}
	return NULL;
}

static void
refuse(char *why, const char *p, size_t n, const char *what)
{
	int shown = n > TERM_SHOWN_MAX ? TERM_SHOWN_MAX : (int)n;

	snprintf(why, SPF_RECORD_WHY_MAX, "%s in '%.*s%s'", what, shown, p,
	    (size_t)shown < n ? "..." : "");
}

int
spf_record_parse(const char *text, size_t len, struct spf_record *r,
    char *why)
{
	int seen[2] = { 0, 0 };		/* redirect=, exp= */
	size_t i = VERSION_LEN;

	memset(r, 0, sizeof(*r));
	if (!spf_record_is_spf(text, len)) {
		snprintf(why, SPF_RECORD_WHY_MAX, "no \"v=spf1\" record");
		return -1;
	}
	r->terms = xcalloc(len / 2 + 1, sizeof(*r->terms));
	while (i < len) {
		size_t start, n;
		const char *bad;
		while (i < len && text[i] == ' ')
			i++;
		for (start = i; i < len && text[i] != ' '; i++)
			;
		if ((n = i - start) == 0)
			continue;
		if ((bad = add_term(r, text + start, n, seen)) != NULL) {
			refuse(why, text + start, n, bad);
			spf_record_free(r);
			return -1;
		}
	}
	return 0;
}

void
spf_record_free(struct spf_record *r)
{
	free(r->terms);
	memset(r, 0, sizeof(*r));
}

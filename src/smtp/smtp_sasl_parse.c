/*
 * smtp_sasl_parse: CRAM-MD5's response and SCRAM-SHA-256's client-first
 * and client-final messages (smtp_sasl_parse.h), strictly by the RFC
 * grammars: a saslname is decoded (=2C ',' and =3D '='; any other '=' is
 * an error), a nonce is printable without ',', and an unknown mandatory
 * extension ("m=") is refused. No allocation, no state.
 */
#include <string.h>

#include "smtp_sasl_parse.h"

const char *
smtp_parse_cram(const char *m, size_t n, struct smtp_cram *c)
{
	const char *sp = NULL;

	for (size_t i = 0; i < n; i++)
		if (m[i] == ' ')
			sp = m + i;
	if (sp == NULL || sp == m)
		return "CRAM-MD5 response is not \"user digest\"";
	if (m + n - (sp + 1) != 32)
		return "CRAM-MD5 digest is not 32 hex digits";
	for (const char *p = sp + 1; p < m + n; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return "CRAM-MD5 digest is not 32 lowercase hex digits";
	c->user = m;
	c->userlen = (size_t)(sp - m);
	c->digest = sp + 1;
	return NULL;
}

/* The attribute "k=" at [p, e) up to the next ',' or e: value end. */
static const char *
attr_end(const char *p, const char *e)
{
	const char *c = memchr(p, ',', (size_t)(e - p));

	return c ? c : e;
}

/* saslname [p, e) decoded into out: length, or -1. */
static long
saslname(const char *p, const char *e, char *out)
{
	size_t o = 0;

	if (p == e)
		return -1;
	for (; p < e; p++) {
		char c = *p;

		if (c == '=') {
			if (e - p >= 3 && p[1] == '2' && p[2] == 'C')
				c = ',';
			else if (e - p >= 3 && p[1] == '3' && p[2] == 'D')
				c = '=';
			else
				return -1;
			p += 2;
		} else if (c == '\0')
			return -1;
		if (o == SMTP_SASL_NAME_MAX)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

/* A nonce: printable ASCII except ','. */
static int
printable(const char *p, const char *e)
{
	if (p == e)
		return 0;
	for (; p < e; p++)
		if (*p < 0x21 || *p > 0x7e || *p == ',')
			return 0;
	return 1;
}

/* gs2-header: "n,", "y," or "p=..." refused, then [a=authzid] ",". */
static const char *
gs2_header(const char *m, const char *e, struct smtp_scram_first *f)
{
	const char *p, *a;
	long len = 0;

	if (e - m >= 2 && m[0] == 'p' && m[1] == '=')
		return "SCRAM channel binding is not supported";
	if (e - m < 3 || (m[0] != 'n' && m[0] != 'y') || m[1] != ',')
		return "SCRAM gs2 header must start with n, or y,";
	f->cbind = m[0];
	p = m + 2;
	a = attr_end(p, e);
	if (a == e)
		return "SCRAM gs2 header has no second comma";
	if (a > p && (a - p < 3 || p[0] != 'a' || p[1] != '=' ||
	    (len = saslname(p + 2, a, f->authz)) < 0))
		return "SCRAM authorization identity is malformed";
	f->authz[len] = '\0';
	f->authzlen = (size_t)len;
	f->gs2len = (size_t)(a + 1 - m);
	return NULL;
}

const char *
smtp_parse_scram_first(const char *m, size_t n, struct smtp_scram_first *f)
{
	const char *e = m + n, *p, *a, *why;
	long len;

	if ((why = gs2_header(m, e, f)) != NULL)
		return why;
	f->bare = p = m + f->gs2len;
	f->barelen = (size_t)(e - p);
	if (e - p >= 2 && p[0] == 'm' && p[1] == '=')
		return "SCRAM mandatory extension not supported";
	a = attr_end(p, e);
	if (a - p < 3 || p[0] != 'n' || p[1] != '=' ||
	    (len = saslname(p + 2, a, f->user)) < 0)
		return "SCRAM user name (n=) is malformed";
	f->userlen = (size_t)len;
	if (a == e)
		return "SCRAM client nonce (r=) is missing";
	p = a + 1;
	a = attr_end(p, e);
	if (a - p < 3 || p[0] != 'r' || p[1] != '=' || !printable(p + 2, a))
		return "SCRAM client nonce (r=) is malformed";
	f->nonce = p + 2;
	f->noncelen = (size_t)(a - p - 2);
	return NULL;
}

/* "k=" at p with a value up to a: the value, or NULL. */
static const char *
value_of(char k, const char *p, const char *a)
{
	return a - p >= 3 && p[0] == k && p[1] == '=' ? p + 2 : NULL;
}

const char *
smtp_parse_scram_final(const char *m, size_t n, struct smtp_scram_final *f)
{
	const char *e = m + n, *p = m, *a = attr_end(p, e), *last;

	if ((f->cbind = value_of('c', p, a)) == NULL || a == e)
		return "SCRAM channel binding (c=) is missing";
	f->cbindlen = (size_t)(a - f->cbind);
	p = a + 1;
	a = attr_end(p, e);
	if ((f->nonce = value_of('r', p, a)) == NULL || a == e ||
	    !printable(f->nonce, a))
		return "SCRAM nonce (r=) is missing or malformed";
	f->noncelen = (size_t)(a - f->nonce);
	for (last = a; a < e; a = attr_end(a + 1, e))
		last = a;	/* the comma before the last attribute */
	if ((f->proof = value_of('p', last + 1, e)) == NULL)
		return "SCRAM proof (p=) is missing or not last";
	f->prooflen = (size_t)(e - f->proof);
	f->without_proof = (size_t)(last - m);
	return NULL;
}

/*
 * dkim: see dkim.h. libopendkim reads the message as it comes (dkim_chunk
 * splits header and body itself) with bare LFs taken as CRLF, which is
 * how we hold messages. Its DNS goes through our layer: query_start asks
 * our servers at once (this is a pool thread, blocking is its job) and
 * hands libopendkim the raw reply, which it reads; waitreply gives what
 * query_start got. Results map to RFC 8601's words here: a key that DNS
 * did not give in time is a temperror, a bad signature or body hash a
 * fail, any other error (no key, bad tags, expired) a permerror.
 * Two messages are not given to libopendkim at all (both found by
 * fuzz_dkim_verify): one with a NUL byte (2.11 reads past a header field
 * holding one; SMTP refuses them anyway, 554 5.6.0), and one without a
 * header section (it asserts on the empty first line: the worker would
 * abort); the second has no signature, so its answer is none.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <opendkim/dkim.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "dkim.h"

#define DKIM_ID			((const unsigned char *)"indimail")
#define FIELD_NAME		"DKIM-Signature: "
#define B_SHORT			8	/* header.b: enough to tell sigs apart */
#define DKIM_MSG_KEYBITS_MIN	1024	/* RFC 8301 3.2 */

/* One query's outcome, from query_start to waitreply. */
struct dns_query {
	int		 len;	/* -1: no answer */
};

static _Thread_local DKIM_LIB *tl_lib;
static _Thread_local struct spf_dns_ctx *tl_dns;
static _Thread_local struct dns_query tl_query;

const char *
dkim_msg_result_name(enum dkim_msg_result r)
{
	static const char *n[] = { "pass", "fail", "neutral", "temperror",
	    "permerror", "none" };

	return (size_t)r < sizeof(n) / sizeof(n[0]) ? n[r] : "temperror";
}

static int
dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
    size_t buflen, void **qh)
{
	(void)srv;
	tl_query.len = tl_dns == NULL ? -1 : spf_dns_query_raw(tl_dns,
	    (const char *)query, type, buf, buflen);
	*qh = &tl_query;
	return DKIM_DNS_SUCCESS;
}

static int
dns_cancel(void *srv, void *qh)
{
	(void)srv;
	(void)qh;
	return DKIM_DNS_SUCCESS;
}

static int
dns_wait(void *srv, void *qh, struct timeval *to, size_t *bytes, int *error,
    int *dnssec)
{
	struct dns_query *q = qh;

	(void)srv;
	(void)to;
	if (dnssec)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	if (q->len < 0) {
		if (error)
			*error = -1;
		return DKIM_DNS_ERROR;
	}
	*bytes = (size_t)q->len;
	if (error)
		*error = 0;
	return DKIM_DNS_SUCCESS;
}

/* This thread's library handle (made on first use, kept for the thread). */
static DKIM_LIB *
lib(void)
{
	unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
	unsigned int bits = DKIM_MSG_KEYBITS_MIN;
	const char *over[] = { "from", NULL };

	if (tl_lib)
		return tl_lib;
	if ((tl_lib = dkim_init(NULL, NULL)) == NULL)
		return NULL;
	dkim_options(tl_lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags));
	dkim_options(tl_lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &bits,
	    sizeof(bits));
	dkim_options(tl_lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, over,
	    sizeof(over));
	dkim_dns_set_query_service(tl_lib, NULL);
	dkim_dns_set_query_start(tl_lib, dns_start);
	dkim_dns_set_query_cancel(tl_lib, dns_cancel);
	dkim_dns_set_query_waitreply(tl_lib, dns_wait);
	return tl_lib;
}

/* Feeds the pieces as one message; the status of the end of message. */
static DKIM_STAT
feed(DKIM *d, const struct msg_piece *p, size_t n)
{
	DKIM_STAT st = DKIM_STAT_OK;

	for (size_t i = 0; i < n && st == DKIM_STAT_OK; i++)
		if (p[i].len)
			st = dkim_chunk(d, (u_char *)p[i].data, p[i].len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	return st == DKIM_STAT_OK ? dkim_eom(d, NULL) : st;
}

/* b's text as a string of its own; b is freed. */
static char *
take(struct buf *b)
{
	char *s = xstrdup(buf_cstr(b));

	buf_free(b);
	return s;
}

/* "DKIM-Signature: v\n" with libopendkim's CRLF folds as LF folds. */
static char *
field_of(const u_char *v, size_t len)
{
	struct buf b = BUF_INIT;

	buf_appends(&b, FIELD_NAME);
	for (size_t i = 0; i < len; i++)
		if (v[i] != '\r')
			buf_appendc(&b, (char)v[i]);
	buf_appendc(&b, '\n');
	return take(&b);
}

static void
sign_error(struct dkim_msg_answer *a, DKIM *d, DKIM_STAT st)
{
	const char *e = d ? dkim_geterror(d) : NULL;
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s%s%s", dkim_getresultstr(st), e && *e ? ": " : "",
	    e ? e : "");
	a->error = take(&b);
}

static DKIM *
sign_handle(const struct dkim_key_conf *k, DKIM_STAT *st)
{
	DKIM_LIB *l = lib();

	if (l == NULL) {
		*st = DKIM_STAT_NORESOURCE;
		return NULL;
	}
	return dkim_sign(l, DKIM_ID, NULL, (dkim_sigkey_t)k->key,
	    (const u_char *)k->selector, (const u_char *)k->domain,
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, k->ed25519 ?
	    DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, -1, st);
}

int
dkim_msg_sign(const struct dkim_key_conf *k, const struct msg_piece *p,
    size_t n, struct dkim_msg_answer *a)
{
	DKIM_STAT st;
	DKIM *d;
	u_char *v = NULL;
	size_t vlen = 0;

	memset(a, 0, sizeof(*a));
	if ((d = sign_handle(k, &st)) == NULL) {
		sign_error(a, NULL, st);
		return -1;
	}
	if ((st = feed(d, p, n)) == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, strlen(FIELD_NAME), &v, &vlen);
	if (st != DKIM_STAT_OK)
		sign_error(a, d, st);
	else
		a->field = field_of(v, vlen);
	dkim_free(d);
	return a->field ? 0 : -1;
}

const char *
dkim_msg_key_check(const struct dkim_key_conf *k)
{
	static _Thread_local char why[256];
	static const char probe[] = "From: a@b.example\n\nprobe\n";
	struct msg_piece p = { probe, sizeof(probe) - 1 };
	struct dkim_msg_answer a;

	if (dkim_msg_sign(k, &p, 1, &a) == 0) {
		dkim_msg_answer_free(&a);
		return NULL;
	}
	snprintf(why, sizeof(why), "%s", a.error ? a.error : "unusable key");
	dkim_msg_answer_free(&a);
	return why;
}

static char *
dup_u(const u_char *s)
{
	return s ? xstrdup((const char *)s) : NULL;
}

static const char *
alg_name(DKIM_SIGINFO *sig)
{
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

	dkim_sig_getsignalg(sig, &alg);
	switch (alg) {
	case DKIM_SIGN_RSASHA256:
		return "rsa-sha256";
	case DKIM_SIGN_RSASHA1:
		return "rsa-sha1";
	case DKIM_SIGN_ED25519SHA256:
		return "ed25519-sha256";
	default:
		return "unknown";
	}
}

/* RFC 8601 2.7.1's word for what libopendkim says of one signature. */
static enum dkim_msg_result
result_of(DKIM_SIGINFO *sig)
{
	int err = dkim_sig_geterror(sig);

	if (DKIM_SIG_CHECK(sig))
		return DKIM_MSG_PASS;
	if (err == DKIM_SIGERROR_KEYFAIL)
		return DKIM_MSG_TEMPERROR;
	if (err == DKIM_SIGERROR_BADSIG || (err == DKIM_SIGERROR_OK &&
	    (dkim_sig_getflags(sig) & DKIM_SIGFLAG_PROCESSED)))
		return DKIM_MSG_FAIL;	/* a bad signature or body hash */
	if (err == DKIM_SIGERROR_OK)
		return DKIM_MSG_NEUTRAL;	/* not processed */
	return DKIM_MSG_PERMERROR;
}

static void
read_sig(DKIM_SIGINFO *sig, struct dkim_msg_sig *o)
{
	const u_char *b = dkim_sig_gettagvalue(sig, false, (u_char *)"b");
	int err = dkim_sig_geterror(sig);

	o->result = result_of(sig);
	o->domain = dup_u(dkim_sig_getdomain(sig));
	o->selector = dup_u(dkim_sig_getselector(sig));
	o->algorithm = xstrdup(alg_name(sig));
	o->b = b ? xstrndup((const char *)b, strnlen((const char *)b,
	    B_SHORT)) : NULL;	/* xstrndup copies n bytes */
	if (o->result == DKIM_MSG_FAIL && err == DKIM_SIGERROR_OK)
		o->error = xstrdup("body hash mismatch");
	else if (o->result != DKIM_MSG_PASS)
		o->error = xstrdup(dkim_sig_geterrorstr(err) ?
		    dkim_sig_geterrorstr(err) : "unknown error");
}

static void
read_sigs(DKIM *d, struct dkim_msg_answer *a)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;

	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK)
		return;
	for (int i = 0; i < nsigs && a->n < DKIM_MSG_SIGS_MAX; i++)
		read_sig(sigs[i], &a->sig[a->n++]);
}

/* The message starts with its empty line (or is empty). */
static int
no_header(const char *msg, size_t len)
{
	return len == 0 || msg[0] == '\n' || (msg[0] == '\r' &&
	    (len == 1 || msg[1] == '\n'));
}

int
dkim_msg_verify(const struct dkim_msg_limits *lim, const char *msg,
    size_t len, struct dkim_msg_answer *a)
{
	struct spf_dns_ctx ctx = { .servers = &lim->servers,
	    .query_timeout_ms = lim->dns_timeout_ms,
	    .deadline_ms = spf_dns_now_ms() + (uint64_t)lim->timeout_ms };
	struct msg_piece p = { msg, len };
	DKIM_LIB *l = lib();
	DKIM_STAT st = DKIM_STAT_NORESOURCE;
	DKIM *d = l ? dkim_verify(l, DKIM_ID, NULL, &st) : NULL;

	memset(a, 0, sizeof(*a));
	if (d && no_header(msg, len)) {
		dkim_free(d);
		return 0;
	}
	if (d == NULL || memchr(msg, '\0', len) != NULL) {
		sign_error(a, NULL, d ? DKIM_STAT_SYNTAX : st);
		if (d)
			dkim_free(d);
		return -1;
	}
	tl_dns = &ctx;
	st = feed(d, &p, 1);
	tl_dns = NULL;
	if (st != DKIM_STAT_NOSIG)
		read_sigs(d, a);
	dkim_free(d);
	return 0;
}

void
dkim_msg_answer_free(struct dkim_msg_answer *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->sig[i].domain);
		free(a->sig[i].selector);
		free(a->sig[i].algorithm);
		free(a->sig[i].b);
		free(a->sig[i].error);
	}
	free(a->field);
	free(a->error);
	memset(a, 0, sizeof(*a));
}

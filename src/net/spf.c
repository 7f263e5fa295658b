/*
 * spf: see spf.h. The evaluation is libspf2's (SPF_server_get_record and
 * SPF_record_interpret, the steps of SPF_request_query_mailfrom without
 * its "localhost always passes" shortcut: RFC 7208 has none, and a
 * loopback client is the relay policy's business). Two outcomes are ours:
 * a check past its deadline is a temperror, one past the void lookup
 * limit a permerror (libspf2 1.2.10 predates RFC 7208's limit). Every
 * string that reaches the header is made printable ASCII here.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "spf.h"
#include "spf_get.h"

#define EXPLANATION_MAX	256
/* where an IPv4-mapped IPv6 address (::ffff:a.b.c.d) keeps a.b.c.d */
#define IPV4_IN_MAPPED	12
/* A fail's explanation when the record has no exp= (RFC 7208 6.2): none;
 * the libspf2 default sends people to openspf.org, which is gone. */
#define DEFAULT_EXPLANATION	""

static _Thread_local SPF_server_t *tl_server;
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void
spf_quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

/* libspf2 would print its warnings and debugging to stdout/stderr. */
static void
silence_libspf2(void)
{
	SPF_warning_handler = spf_quiet;
	SPF_info_handler = spf_quiet;
	SPF_debug_handler = spf_quiet;
}

const char *
spf_result_name(enum spf_result r)
{
	static const char *n[] = { "pass", "fail", "softfail", "neutral",
	    "none", "temperror", "permerror" };

	return (size_t)r < sizeof(n) / sizeof(n[0]) ? n[r] : "temperror";
}

static enum spf_result
from_libspf2(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS:
		return SPF_R_PASS;
	case SPF_RESULT_FAIL:
		return SPF_R_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return SPF_R_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:
		return SPF_R_NEUTRAL;
	case SPF_RESULT_NONE:
		return SPF_R_NONE;
	case SPF_RESULT_PERMERROR:
	case SPF_RESULT_INVALID:	/* a record libspf2 could not read */
		return SPF_R_PERMERROR;
	default:
		return SPF_R_TEMPERROR;
	}
}

/* s with every byte outside printable ASCII as '?', at most max bytes. */
static char *
printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *o = xstrndup(s, n);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)o[i] < 0x20 || (unsigned char)o[i] > 0x7e)
			o[i] = '?';
	return o;
}

static SPF_server_t *
thread_server(const char *receiver)
{
	pthread_once(&quiet_once, silence_libspf2);
	if (tl_server == NULL) {
		SPF_response_t *resp = NULL;
		SPF_dns_server_t *layer = spf_dns_layer();
		layer->get_spf = spf_get_record;	/* the strict reading */
		if ((tl_server = SPF_server_new_dns(layer, 0)) == NULL)
			return NULL;
		SPF_server_set_explanation(tl_server, DEFAULT_EXPLANATION,
		    &resp);
		if (resp)
			SPF_response_free(resp);
	}
	SPF_server_set_rec_dom(tl_server, receiver ? receiver : "localhost");
	return tl_server;
}

/*
 * The client address into req; -1 if ip is none. An IPv4-mapped IPv6
 * address is the IPv4 address (RFC 7208 5: it "MUST still be considered
 * an IPv4 address"); libspf2 would match it against ip6: and AAAA.
 */
static int
set_client(SPF_request_t *req, const char *ip)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, ip, &a4) == 1)
		return SPF_request_set_ipv4(req, a4) == SPF_E_SUCCESS ? 0 : -1;
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[IPV4_IN_MAPPED], sizeof(a4));
		return SPF_request_set_ipv4(req, a4) == SPF_E_SUCCESS ? 0 : -1;
	}
	return SPF_request_set_ipv6(req, a6) == SPF_E_SUCCESS ? 0 : -1;
}

/* The libspf2 request for q; NULL when ip is no address (why set). */
static SPF_request_t *
make_request(SPF_server_t *srv, const struct spf_query *q, const char **why)
{
	SPF_request_t *req = SPF_request_new(srv);
	int helo_only = q->sender == NULL || q->sender[0] == '\0';

	if (req == NULL) {
		*why = "out of memory";
		return NULL;
	}
	if (set_client(req, q->ip) < 0)
		*why = "the client address is not an IP address";
	else if (helo_only && (q->helo == NULL || q->helo[0] == '\0'))
		*why = "neither a sender nor a HELO name to check";
	else {
		if (q->helo && q->helo[0])
			SPF_request_set_helo_dom(req, q->helo);
		if (!helo_only)
			SPF_request_set_env_from(req, q->sender);
		req->use_helo = (char)helo_only;
		req->cur_dom = helo_only ? req->helo_dom : req->env_from_dp;
		return req;
	}
	SPF_request_free(req);
	return NULL;
}

/*
 * What a record lookup that failed gives: libspf2 1.2.10 leaves the result
 * unset (INVALID) when the record did not compile and when the DNS failed,
 * so the DNS layer tells which: no answer is a temperror.
 */
static SPF_result_t
failed_lookup(SPF_response_t *resp, const struct spf_dns_ctx *ctx)
{
	if (ctx->last_tempfail)
		return SPF_RESULT_TEMPERROR;
	if (resp->result == SPF_RESULT_INVALID)
		return SPF_RESULT_PERMERROR;
	return resp->result;
}

/* SPF_request_query_mailfrom, less its loopback pass. */
static SPF_response_t *
evaluate(SPF_server_t *srv, SPF_request_t *req, const struct spf_dns_ctx *ctx)
{
	SPF_response_t *resp = SPF_response_new(req);
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;

	if (resp == NULL)
		return NULL;
	err = SPF_server_get_record(srv, req, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec)
			SPF_record_free(rec);
		SPF_i_done(resp, failed_lookup(resp, ctx), resp->reason, err);
		return resp;
	}
	resp->spf_record_exp = rec;
	SPF_record_interpret(rec, req, resp, 0);
	SPF_record_free(rec);
	return resp;
}

/* The comment of RFC 7208 9.1's example, with why for the errors. */
static void
put_comment(struct buf *b, const struct spf_query *q, const char *who,
    enum spf_result r, const char *why)
{
	const char *ip = q->ip;

	buf_printf(b, "%s: ", q->receiver ? q->receiver : "localhost");
	switch (r) {
	case SPF_R_PASS:
		buf_printf(b, "domain of %s designates %s as permitted sender",
		    who, ip);
		break;
	case SPF_R_FAIL:
	case SPF_R_SOFTFAIL:
		buf_printf(b, "%sdomain of %s does not designate %s as "
		    "permitted sender", r == SPF_R_SOFTFAIL ? "transitioning "
		    : "", who, ip);
		break;
	case SPF_R_NEUTRAL:
		buf_printf(b, "%s is neither permitted nor denied by domain "
		    "of %s", ip, who);
		break;
	case SPF_R_NONE:
		buf_printf(b, "domain of %s does not provide an SPF record",
		    who);
		break;
	default:
		buf_printf(b, "error in processing during lookup of %s: %s",
		    who, why);
	}
}

/* A key=value of RFC 7208 9.1: a dot-atom as is, else a quoted-string. */
static void
put_pair(struct buf *b, const char *key, const char *v)
{
	int atom = v[0] != '\0' && v[0] != '.';

	for (const char *p = v; *p && atom; p++)
		atom = strchr("()<>[]:;@\\,\" ", *p) == NULL &&
		    (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
	buf_printf(b, " %s=", key);
	if (atom) {
		buf_appends(b, v);
		buf_appendc(b, ';');
		return;
	}
	buf_appendc(b, '"');
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_appendc(b, '\\');
		buf_appendc(b, *p);
	}
	buf_appends(b, "\";");
}

/* The comment and the Received-SPF value into a; why: the error text. */
static void
describe(const struct spf_query *q, const char *env_from, const char *why,
    struct spf_answer *a)
{
	struct buf c = BUF_INIT, h = BUF_INIT;
	char *who = printable(env_from, EXPLANATION_MAX);
	char *helo = printable(q->helo ? q->helo : "", EXPLANATION_MAX);

	put_comment(&c, q, who, a->result, why);
	a->comment = printable(buf_cstr(&c), c.len);
	buf_printf(&h, "%s (", spf_result_name(a->result));
	for (const char *p = a->comment; *p; p++) {	/* RFC 5322 ctext */
		if (*p == '(' || *p == ')' || *p == '\\')
			buf_appendc(&h, '\\');
		buf_appendc(&h, *p);
	}
	buf_appendc(&h, ')');
	put_pair(&h, "client-ip", q->ip);
	put_pair(&h, "envelope-from", who);
	if (helo[0])
		put_pair(&h, "helo", helo);
	put_pair(&h, "receiver", q->receiver ? q->receiver : "localhost");
	put_pair(&h, "identity", a->identity);
	h.data[--h.len] = '\0';		/* the last ';' */
	a->header = xstrdup(buf_cstr(&h));
	buf_free(&c);
	buf_free(&h);
	free(who);
	free(helo);
}

/* Reads libspf2's response, then applies the deadline and void limit. */
static const char *
read_response(SPF_response_t *resp, const struct spf_dns_ctx *ctx,
    const struct spf_limits *lim, struct spf_answer *a)
{
	const char *why = resp ? SPF_strerror(resp->err) : "out of memory";

	a->result = resp ? from_libspf2(resp->result) : SPF_R_TEMPERROR;
	if (ctx->timed_out) {
		a->result = SPF_R_TEMPERROR;
		why = "the check ran out of time";
	} else if (ctx->voids > lim->void_max && a->result != SPF_R_NONE) {
		a->result = SPF_R_PERMERROR;
		why = "too many lookups that found nothing";
	} else if (ctx->refused[0] && a->result == SPF_R_PERMERROR)
		why = ctx->refused;	/* spf_get found a syntax error */
	if (resp && resp->explanation && resp->explanation[0] &&
	    a->result == SPF_R_FAIL)
		a->explanation = printable(resp->explanation, EXPLANATION_MAX);
	return why;
}

int
spf_check(const struct spf_limits *lim, const struct spf_query *q,
    struct spf_answer *a)
{
	struct spf_dns_ctx ctx = { .servers = &lim->servers,
	    .query_timeout_ms = lim->dns_timeout_ms, .void_max = lim->void_max,
	    .deadline_ms = spf_dns_now_ms() + (uint64_t)lim->timeout_ms };
	SPF_server_t *srv = thread_server(q->receiver);
	const char *why = "out of memory";
	SPF_request_t *req = srv ? make_request(srv, q, &why) : NULL;
	SPF_response_t *resp;

	memset(a, 0, sizeof(*a));
	a->identity = q->sender && q->sender[0] ? "mailfrom" : "helo";
	if (req == NULL) {
		a->result = SPF_R_PERMERROR;
		a->comment = xstrdup(why);
		return -1;
	}
	spf_dns_begin(&ctx);
	resp = evaluate(srv, req, &ctx);
	spf_dns_end();
	why = read_response(resp, &ctx, lim, a);
	a->domain = printable(req->cur_dom, EXPLANATION_MAX);
	a->lookups = ctx.lookups;
	describe(q, req->env_from, why, a);
	if (resp)
		SPF_response_free(resp);
	SPF_request_free(req);
	return 0;
}

void
spf_answer_free(struct spf_answer *a)
{
	free(a->domain);
	free(a->comment);
	free(a->explanation);
	free(a->header);
	memset(a, 0, sizeof(*a));
}

/*
 * spf_get: see spf_get.h. What libspf2 1.2.10's SPF_server_get_record
 * does (TXT only: the type SPF is retired), with the record checked by
 * spf_record_parse and rewritten by spf_record_rewrite before
 * SPF_record_compile: libspf2 accepts much RFC 7208 refuses, and refuses
 * or misreads a little it allows. The TXT strings keep their length, so a
 * NUL inside a record is seen, not taken for its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "spf_get.h"
#include "spf_record.h"

/* The "v=spf1" records among a domain's TXT records. */
struct spf_txts {
	struct buf	 first;		/* the first one, as sent */
	int		 n;
};

static int
add_txt(void *arg, const void *data, size_t len)
{
	struct spf_txts *t = arg;

	if (spf_record_is_spf(data, len) && t->n++ == 0)
		buf_set(&t->first, data, len);
	return 0;
}

static void
reset_txts(void *arg)
{
	struct spf_txts *t = arg;

	buf_clear(&t->first);
	t->n = 0;
}

static SPF_errcode_t
give(SPF_response_t *resp, SPF_result_t result, SPF_errcode_t code,
    const char *what, const char *domain)
{
	resp->result = result;
	resp->reason = SPF_REASON_FAILURE;
	return SPF_response_add_error(resp, code, "%s '%s'", what, domain);
}

/* A record spf_record refuses: permerror; the first reason is kept. */
static SPF_errcode_t
refuse(SPF_response_t *resp, const char *domain, const char *why)
{
	struct spf_dns_ctx *ctx = spf_dns_current();

	if (ctx && ctx->refused[0] == '\0')
		snprintf(ctx->refused, sizeof(ctx->refused),
		    "the SPF record of %s is invalid: %s", domain, why);
	return give(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX,
	    "Invalid SPF record for", domain);
}

/* The one record txt, checked, rewritten and compiled into *recp. */
static SPF_errcode_t
compile(SPF_server_t *srv, SPF_request_t *req, SPF_response_t *resp,
    struct buf *txt, SPF_record_t **recp)
{
	char why[SPF_RECORD_WHY_MAX];
	struct spf_record r;
	struct buf text = BUF_INIT;
	SPF_errcode_t err;

	if (spf_record_parse(txt->data, txt->len, &r, why) < 0)
		return refuse(resp, req->cur_dom, why);
	spf_record_rewrite(&r, req->client_ver == AF_INET6 ? 6 : 4, &text);
	spf_record_free(&r);
	err = SPF_record_compile(srv, resp, recp, buf_cstr(&text));
	buf_free(&text);
	if (err != SPF_E_SUCCESS)
		return SPF_response_add_error(resp, SPF_E_NOT_SPF,
		    "Failed to compile SPF record for '%s'", req->cur_dom);
	return SPF_E_SUCCESS;
}

SPF_errcode_t
spf_get_record(SPF_server_t *srv, SPF_request_t *req, SPF_response_t *resp,
    SPF_record_t **recp)
{
	struct spf_txts txts = { BUF_INIT, 0 };
	struct spf_dns_sink sink = { add_txt, reset_txts, &txts };
	const char *dom = req->cur_dom;
	SPF_errcode_t err;

	*recp = NULL;
	switch (spf_dns_txt(dom, &sink)) {
	case NETDB_SUCCESS:
		break;
	case TRY_AGAIN:
		return give(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
		    "Temporary DNS failure for", dom);
	default:
		return give(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF,
		    "No DNS data for", dom);
	}
	if (txts.n == 0)
		err = give(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF,
		    "No SPF records for", dom);
	else if (txts.n > 1)
		err = give(resp, SPF_RESULT_PERMERROR, SPF_E_MULTIPLE_RECORDS,
		    "Multiple SPF records for", dom);
	else
		err = compile(srv, req, resp, &txts.first, recp);
	buf_free(&txts.first);
	return err;
}

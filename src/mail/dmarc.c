/*
 * dmarc: see dmarc.h. Who does what: GMime reads the From: address lists
 * (no address parser of ours), libpsl gives Organizational Domains from
 * the Public Suffix List Debian ships (psl_latest: the newer of the
 * publicsuffix package's public_suffix_list.dafsa and libpsl's built-in
 * copy), libopendmarc
 * reads the record's tags. Alignment is decided here with libpsl and not
 * by libopendmarc, whose test is a parent/child suffix match on labels:
 * without its own copy of the list (another parser of the same file) it
 * calls a.example.com and b.example.com unaligned, and a d=co.uk aligned
 * with example.co.uk. libopendmarc is never asked to do DNS: the record
 * is handed to it (opendmarc_policy_store_dmarc), and rua= is read
 * without its external-destination lookups.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <gmime/gmime.h>
#include <libpsl.h>
#include <opendmarc/dmarc.h>

#include "../lib/buf.h"
#include "../lib/diag.h"
#include "address.h"
#include "dmarc.h"
#include "header.h"

#define PCT_ALL		100
#define IP_UNKNOWN	((u_char *)"0.0.0.0")	/* libopendmarc wants one */

static const psl_ctx_t *psl;

void
dmarc_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	g_mime_init();
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = psl_builtin();
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	static const char *n[] = { "none", "pass", "fail", "temperror",
	    "permerror" };

	return n[r];
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	static const char *n[] = { "none", "quarantine", "reject" };

	return n[p];
}

/* addr's domain, lower case, into dom; 0, or -1 if it has none. */
static int
domain_of(const char *addr, char *dom)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	size_t n;

	if (at == NULL || !address_valid_domain(at + 1, strlen(at + 1)))
		return -1;
	n = strlen(at + 1);
	for (size_t i = 0; i <= n; i++)
		dom[i] = (char)tolower((unsigned char)at[1 + i]);
	return 0;
}

/* The mailboxes of one From: value into dom; how many domains (0, 1, 2). */
static int
field_domains(const char *value, char *dom)
{
	InternetAddressList *l = internet_address_list_parse(NULL, value);
	char d[DMARC_DOMAIN_MAX];
	int n = 0;

	for (int i = 0; l && i < internet_address_list_length(l) && n < 2; i++) {
		InternetAddress *a = internet_address_list_get_address(l, i);
		if (!INTERNET_ADDRESS_IS_MAILBOX(a) ||
		    domain_of(internet_address_mailbox_get_idn_addr(
		    INTERNET_ADDRESS_MAILBOX(a)), d) < 0)
			continue;
		if (n == 0 || strcmp(d, dom) != 0)
			n++;
		memcpy(dom, d, strlen(d) + 1);
	}
	if (l)
		g_object_unref(l);
	return n;
}

enum dmarc_from
dmarc_from_domain(const char *msg, size_t len, char *dom)
{
	struct header_field f;
	struct buf v = BUF_INIT;
	size_t pos = 0;
	int fields = 0, domains = 0;

	dmarc_init();
	while (header_next(msg, len, &pos, &f))
		if (f.colon && header_name_is(&f, "From", 4) && ++fields == 1) {
			header_value(&v, &f);
			domains = field_domains(buf_cstr(&v), dom);
		}
	buf_free(&v);
	if (fields > 1 || domains > 1)
		return DMARC_FROM_MULTIPLE;
	return domains == 1 ? DMARC_FROM_ONE : DMARC_FROM_ABSENT;
}

int
dmarc_is_record(const char *txt, size_t len)
{
	static const char V[] = "DMARC1";
	size_t i = 0;

	if (len == 0 || txt[i++] != 'v')
		return 0;
	while (i < len && (txt[i] == ' ' || txt[i] == '\t'))
		i++;
	if (i >= len || txt[i++] != '=')
		return 0;
	while (i < len && (txt[i] == ' ' || txt[i] == '\t'))
		i++;
	if (len - i < sizeof(V) - 1 || memcmp(txt + i, V, sizeof(V) - 1) != 0)
		return 0;
	for (i += sizeof(V) - 1; i < len && (txt[i] == ' ' || txt[i] == '\t'); i++)
		;
	return i == len || txt[i] == ';';
}

int
dmarc_org_domain(const char *domain, char *org)
{
	const char *r;

	dmarc_init();
	if (psl == NULL || (r = psl_registrable_domain(psl, domain)) == NULL ||
	    strlen(r) >= DMARC_DOMAIN_MAX)
		return -1;
	memcpy(org, r, strlen(r) + 1);
	return 0;
}

int
dmarc_aligned(const char *a, const char *b, int strict)
{
	char oa[DMARC_DOMAIN_MAX], ob[DMARC_DOMAIN_MAX];

	if (a == NULL || b == NULL)
		return 0;
	if (strcasecmp(a, b) == 0)
		return 1;
	if (strict || dmarc_org_domain(a, oa) < 0 || dmarc_org_domain(b, ob) < 0)
		return 0;
	return strcasecmp(oa, ob) == 0;
}

static enum dmarc_policy
policy_of(int tag)
{
	switch (tag) {
	case DMARC_RECORD_P_REJECT:
		return DMARC_P_REJECT;
	case DMARC_RECORD_P_QUARANTINE:
		return DMARC_P_QUARANTINE;
	default:
		return DMARC_P_NONE;
	}
}

/* rua= as "uri,uri" into out (bounded; the rest is cut). */
static void
read_rua(DMARC_POLICY_T *pctx, struct dmarc_outcome *out)
{
	u_char **l = opendmarc_policy_fetch_rua(pctx, NULL, 0, 1);
	size_t n = 0;

	for (int i = 0; l && l[i]; i++) {
		int k = snprintf(out->rua + n, sizeof(out->rua) - n, "%s%s",
		    i ? "," : "", (const char *)l[i]);
		if (k < 0 || (size_t)k >= sizeof(out->rua) - n)
			break;
		n += (size_t)k;
	}
}

/* The tags of the parsed record. */
static void
read_tags(DMARC_POLICY_T *pctx, int from_org, struct dmarc_outcome *out)
{
	int p = 0, sp = 0, adkim = 0, aspf = 0, pct = PCT_ALL;

	opendmarc_policy_fetch_p(pctx, &p);
	opendmarc_policy_fetch_sp(pctx, &sp);
	opendmarc_policy_fetch_adkim(pctx, &adkim);
	opendmarc_policy_fetch_aspf(pctx, &aspf);
	opendmarc_policy_fetch_pct(pctx, &pct);
	out->p = policy_of(p);
	out->sp_used = from_org && sp != DMARC_RECORD_P_UNSPECIFIED;
	out->sp = out->sp_used ? policy_of(sp) : out->p;
	out->adkim_strict = adkim == DMARC_RECORD_A_STRICT;
	out->aspf_strict = aspf == DMARC_RECORD_A_STRICT;
	out->pct = pct;
	out->policy = from_org ? out->sp : out->p;
	read_rua(pctx, out);
}

/* pct's sampling (6.6.4): a message left out gets the next milder policy. */
static enum dmarc_policy
sampled(enum dmarc_policy p, int pct, unsigned draw)
{
	if ((int)draw < pct || p == DMARC_P_NONE)
		return p;
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

/* Alignment of SPF and of each passing signature; the result. */
static void
decide(const struct dmarc_input *in, struct dmarc_outcome *out)
{
	out->spf_aligned = in->spf.pass &&
	    dmarc_aligned(in->from_domain, in->spf.domain, out->aspf_strict);
	for (size_t i = 0; i < in->ndkim && !out->dkim_aligned; i++)
		if (in->dkim[i].pass && dmarc_aligned(in->from_domain,
		    in->dkim[i].domain, out->adkim_strict)) {
			out->dkim_aligned = 1;
			out->dkim_domain = in->dkim[i].domain;
		}
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RESULT_PASS;
		out->disposition = DMARC_P_NONE;
	} else {
		out->result = DMARC_RESULT_FAIL;
		out->disposition = sampled(out->policy, out->pct, in->draw);
	}
}

void
dmarc_evaluate(const struct dmarc_input *in, struct dmarc_outcome *out)
{
	DMARC_POLICY_T *pctx = opendmarc_policy_connect_init(IP_UNKNOWN, 0);
	OPENDMARC_STATUS_T st;

	memset(out, 0, sizeof(*out));
	if (pctx == NULL)
		panic("opendmarc_policy_connect_init: out of memory");
	st = opendmarc_policy_store_dmarc(pctx, (u_char *)in->record,
	    (u_char *)in->from_domain, NULL);
	if (st != DMARC_PARSE_OKAY) {
		out->result = DMARC_RESULT_PERMERROR;
		snprintf(out->reason, sizeof(out->reason), "%s",
		    opendmarc_policy_status_to_str(st));
	} else {
		read_tags(pctx, in->from_org, out);
		decide(in, out);
	}
	opendmarc_policy_connect_shutdown(pctx);
}

/*
 * spf_record_rewrite: a record spf_record_parse accepted, written so that
 * libspf2 1.2.10 compiles it and evaluates it as RFC 7208 means, for one
 * client's address family. Each change is exactly equivalent for that
 * client, and only these are made:
 * - redirect= when the record has "all": RFC 7208 6.1 ignores it (libspf2
 *   would follow it);
 * - unknown modifiers: RFC 7208 6 ignores them (libspf2 refuses names
 *   with '.');
 * - ip4:N/0 and ip6:N/0 (libspf2 refuses /0): the two halves /1 of the
 *   family's space, with the same qualifier; neither costs a lookup;
 * - a and mx: the CIDR length of the other family, which this client's
 *   check never reads (a/0 for an IPv6 client is "a");
 * - a/0 for an IPv4 client is exists (RFC 7208 5.3 and 5.7: both match
 *   when the name has an A record, both cost one lookup, and a void one
 *   counts alike).
 * a//0 for an IPv6 client and mx/0 for an IPv4 one have no equivalent
 * and are written as they are (libspf2 then refuses the record).
 */
#include <string.h>

#include "spf_record.h"

/* The term as written, its qualifier included. */
static void
put_as_is(const struct spf_term *t, struct buf *out)
{
	if (t->qualifier)
		buf_appendc(out, t->qualifier);
	buf_append(out, t->text, t->len);
}

/* ip4:N/0 or ip6:N/0 as the two halves of the family's space. */
static void
put_halves(const struct spf_term *t, struct buf *out)
{
	char q[2] = { t->qualifier, '\0' };

	if (t->kind == SPF_T_IP6)
		buf_printf(out, "%sip6:::/1 %sip6:8000::/1", q, q);
	else
		buf_printf(out, "%sip4:0.0.0.0/1 %sip4:128.0.0.0/1", q, q);
}

/* a or mx with only the CIDR length that a client of family reads. */
static void
put_host_mechanism(const struct spf_term *t, int family, struct buf *out)
{
	int cidr = family == 4 ? t->cidr4 : t->cidr6;

	if (t->qualifier)
		buf_appendc(out, t->qualifier);
	if (t->kind == SPF_T_A && family == 4 && cidr == 0) {
		buf_appends(out, "exists:");
		if (t->arg)
			buf_append(out, t->arg, t->arglen);
		else
			buf_appends(out, "%{d}");
		return;
	}
	buf_appends(out, t->kind == SPF_T_A ? "a" : "mx");
	if (t->arg) {
		buf_appendc(out, ':');
		buf_append(out, t->arg, t->arglen);
	}
	if (cidr != SPF_CIDR_NONE)
		buf_printf(out, "%s%d", family == 4 ? "/" : "//", cidr);
}

/* Term t as libspf2 should read it, after a space; or nothing. */
static void
put_term(const struct spf_record *r, const struct spf_term *t, int family,
    struct buf *out)
{
	switch (t->kind) {
	case SPF_T_UNKNOWN:
		return;
	case SPF_T_REDIRECT:
		if (r->has_all)
			return;
		break;
	case SPF_T_IP4:
	case SPF_T_IP6:
		if ((t->kind == SPF_T_IP4 ? t->cidr4 : t->cidr6) == 0) {
			buf_appendc(out, ' ');
			put_halves(t, out);
			return;
		}
		break;
	case SPF_T_A:
	case SPF_T_MX:
		buf_appendc(out, ' ');
		put_host_mechanism(t, family, out);
		return;
	default:
		break;
	}
	buf_appendc(out, ' ');
	put_as_is(t, out);
}

void
spf_record_rewrite(const struct spf_record *r, int family, struct buf *out)
{
	buf_appends(out, "v=spf1");
	for (size_t i = 0; i < r->n; i++)
		put_term(r, &r->terms[i], family, out);
}

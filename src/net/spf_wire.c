/*
 * spf_wire: see spf_wire.h. The query is written by hand (labels checked:
 * 1..63 bytes, 255 in all); the reply is read with the resolver library's
 * bounds-checked ns_initparse/ns_parserr, after its header and question
 * were matched against ours. Keeps no state between calls.
 */
#include <arpa/nameser.h>
#include <resolv.h>
#include <string.h>

#include "spf_wire.h"

#define HEADER_LEN	12
#define OPT_LEN		11	/* root name, type, class=size, ttl, rdlen */
#define LABEL_MAX	63
#define NAME_MAX_WIRE	255

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Encodes name (a trailing dot allowed) at out; its length, or -1. */
static int
put_name(const char *name, unsigned char *out)
{
	size_t n = strlen(name), off = 0;
	const char *p = name, *dot;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n + 2 > NAME_MAX_WIRE)
		return -1;
	while (p < name + n) {
		dot = memchr(p, '.', (size_t)(name + n - p));
		size_t l = dot ? (size_t)(dot - p) : (size_t)(name + n - p);
		if (l == 0 || l > LABEL_MAX)
			return -1;
		out[off++] = (unsigned char)l;
		memcpy(out + off, p, l);
		off += l;
		p += l + (dot != NULL);
	}
	out[off++] = 0;
	return (int)off;
}

int
spf_wire_query(const char *name, int qtype, uint16_t id,
    unsigned char out[SPF_WIRE_QUERY_MAX])
{
	int nl;
	unsigned char *p;

	memset(out, 0, HEADER_LEN);
	put16(out, id);
	out[2] = 0x01;		/* RD */
	put16(out + 4, 1);	/* QDCOUNT */
	put16(out + 10, 1);	/* ARCOUNT: the OPT record */
	if ((nl = put_name(name, out + HEADER_LEN)) < 0)
		return -1;
	p = out + HEADER_LEN + nl;
	put16(p, (unsigned)qtype);
	put16(p + 2, ns_c_in);
	p += 4;
	memset(p, 0, OPT_LEN);
	put16(p + 1, ns_t_opt);
	put16(p + 3, SPF_WIRE_UDP_MAX);
	return (int)(p + OPT_LEN - out);
}

static unsigned
lower(unsigned c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The id and the question of msg are q's (names compared in any case). */
static int
same_question(const unsigned char *q, size_t qlen, const unsigned char *m,
    size_t len)
{
	size_t qend = qlen - OPT_LEN;

	if (qlen < HEADER_LEN + OPT_LEN + 5 || len < qend)
		return 0;
	if (memcmp(q, m, 2) != 0 || !(m[2] & 0x80) || m[4] != 0 || m[5] != 1)
		return 0;
	for (size_t i = HEADER_LEN; i < qend; i++)
		if (lower(q[i]) != lower(m[i]))	/* length bytes are < 'A' */
			return 0;
	return 1;
}

/* TXT RDATA: the character-strings joined; -1 when one overruns. */
static int
add_txt(const unsigned char *rd, size_t rdlen, spf_wire_add_fn add, void *arg)
{
	char out[65536];
	size_t o = 0, i = 0;

	while (i < rdlen) {
		size_t l = rd[i++];
		if (l > rdlen - i)
			return -1;
		memcpy(out + o, rd + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	return add(arg, out, o);
}

/* One answer record of the asked type to add; -1: malformed or stop. */
static int
add_record(const ns_msg *h, const ns_rr *rr, int qtype, spf_wire_add_fn add,
    void *arg)
{
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rdlen = ns_rr_rdlen(*rr);
	char name[NS_MAXDNAME];

	switch (qtype) {
	case ns_t_a:
	case ns_t_aaaa:
		if (rdlen != (qtype == ns_t_a ? 4u : 16u))
			return -1;
		memcpy(name, rd, rdlen);	/* NUL-terminated like the rest */
		name[rdlen] = '\0';
		return add(arg, name, rdlen);
	case ns_t_txt:
		return add_txt(rd, rdlen, add, arg);
	case ns_t_mx:
		if (rdlen < 2)
			return -1;
		rd += 2;
		/* FALLTHROUGH */
	case ns_t_ptr:
		if (ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), rd,
		    name, sizeof(name)) < 0)
			return -1;
		return add(arg, name, strlen(name));
	}
	return -1;
}

static enum spf_wire_status
rcode_status(int rcode)
{
	switch (rcode) {
	case ns_r_noerror:
		return SPF_WIRE_NODATA;
	case ns_r_nxdomain:
		return SPF_WIRE_NXDOMAIN;
	default:
		return SPF_WIRE_TEMPFAIL;
	}
}

enum spf_wire_status
spf_wire_answer(const unsigned char *q, size_t qlen, const unsigned char *msg,
    size_t len, int qtype, spf_wire_add_fn add, void *arg)
{
	ns_msg h;
	ns_rr rr;
	int n, found = 0;
	enum spf_wire_status st;

	if (!same_question(q, qlen, msg, len) || ns_initparse(msg, (int)len,
	    &h) < 0)
		return SPF_WIRE_BAD;
	if (ns_msg_getflag(h, ns_f_tc))
		return SPF_WIRE_TRUNCATED;
	if ((st = rcode_status(ns_msg_getflag(h, ns_f_rcode))) !=
	    SPF_WIRE_NODATA)
		return st;
	n = ns_msg_count(h, ns_s_an);
	for (int i = 0; i < n; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return SPF_WIRE_BAD;
		if ((int)ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in)
			continue;	/* a CNAME on the way, or noise */
		if (add_record(&h, &rr, qtype, add, arg) < 0)
			return SPF_WIRE_BAD;
		found++;
	}
	return found ? SPF_WIRE_OK : SPF_WIRE_NODATA;
}

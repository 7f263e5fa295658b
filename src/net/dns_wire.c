/*
 * dns_wire: see dns_wire.h. A reader of the reply's sections that only
 * moves an offset forward: names are skipped label by label (a pointer
 * ends a name, it is never followed, so there is no loop to guard), each
 * record's fixed part and RDATA are checked against the length first.
 * Owns nothing; keeps no state between calls. Fuzzed by fuzz/fuzz_dns.c.
 */
#include "dns_wire.h"

#define HEADER_LEN	12
#define RR_FIXED	10	/* type, class, ttl, rdlength */
#define T_SOA		6
#define SOA_FIXED	20	/* serial, refresh, retry, expire, minimum */

static uint32_t
get16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

/* RFC 2181 8: a TTL with the top bit set is read as zero. */
static uint32_t
get_ttl(const unsigned char *p)
{
	uint32_t v = get16(p) << 16 | get16(p + 2);

	return v & 0x80000000u ? 0 : v;
}

/* Moves *off past the name there, ending before limit; -1: malformed. */
static int
skip_name(const unsigned char *m, size_t limit, size_t *off)
{
	while (*off < limit) {
		unsigned c = m[*off];
		if (c == 0) {
			*off += 1;
			return 0;
		}
		if ((c & 0xc0) == 0xc0) {
			if (limit - *off < 2)
				return -1;
			*off += 2;
			return 0;
		}
		if (c & 0xc0)		/* 0x40, 0x80: no such label type */
			return -1;
		*off += 1 + c;
	}
	return -1;
}

static int
skip_questions(const unsigned char *m, size_t len, size_t *off, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (skip_name(m, len, off) < 0 || len - *off < 4)
			return -1;
		*off += 4;
	}
	return 0;
}

/* min(SOA TTL, MINIMUM) from the SOA record whose RDATA is at [rd, end). */
static int
soa_ttl(const unsigned char *m, size_t rd, size_t end, uint32_t ttl,
    uint32_t *out)
{
	uint32_t min;

	if (skip_name(m, end, &rd) < 0 || skip_name(m, end, &rd) < 0 ||
	    end - rd < SOA_FIXED)
		return -1;
	min = get_ttl(m + rd + 16);
	*out = min < ttl ? min : ttl;
	return 0;
}

static void
keep_min(int *has, uint32_t *cur, uint32_t v)
{
	if (!*has || v < *cur)
		*cur = v;
	*has = 1;
}

/* One record at *off of section sec (1 answer, 2 authority). */
static int
read_rr(const unsigned char *m, size_t len, size_t *off, int sec,
    struct dns_wire_ttl *w)
{
	uint32_t type, ttl, rdlen, soa;
	size_t rd;

	if (skip_name(m, len, off) < 0 || len - *off < RR_FIXED)
		return -1;
	type = get16(m + *off);
	ttl = get_ttl(m + *off + 4);
	rdlen = get16(m + *off + 8);
	rd = *off + RR_FIXED;
	if (len - rd < rdlen)
		return -1;
	*off = rd + rdlen;
	if (sec == 1)
		keep_min(&w->has_answer, &w->answer_ttl, ttl);
	else if (type == T_SOA) {
		if (soa_ttl(m, rd, rd + rdlen, ttl, &soa) < 0)
			return -1;
		keep_min(&w->has_soa, &w->soa_ttl, soa);
	}
	return 0;
}

int
dns_wire_ttls(const unsigned char *m, size_t len, struct dns_wire_ttl *w)
{
	size_t off = HEADER_LEN;
	uint32_t n[2];

	*w = (struct dns_wire_ttl){ 0 };
	if (m == NULL || len < HEADER_LEN)
		return -1;
	n[0] = get16(m + 6);	/* ANCOUNT */
	n[1] = get16(m + 8);	/* NSCOUNT */
	if (skip_questions(m, len, &off, get16(m + 4)) < 0)
		return -1;
	for (int sec = 0; sec < 2; sec++)
		for (uint32_t i = 0; i < n[sec]; i++)
			if (read_rr(m, len, &off, sec + 1, w) < 0)
				return -1;
	return 0;
}

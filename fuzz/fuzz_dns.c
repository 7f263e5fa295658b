/*
 * fuzz_dns: a DNS reply as the resolver's socket delivers it, read by
 * dns_wire_ttls (src/net/dns_wire.c) for the cache's TTLs. Invariants: the
 * same bytes give the same answer; a TTL is at most 2^31-1 (RFC 2181 8);
 * an answer TTL needs ANCOUNT > 0 and an SOA TTL NSCOUNT > 0; bytes after
 * the authority section (the additional section, trailing junk) and the
 * ARCOUNT field change nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/dns_wire.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static int
same(const struct dns_wire_ttl *a, const struct dns_wire_ttl *b)
{
	return a->has_answer == b->has_answer && a->has_soa == b->has_soa &&
	    (!a->has_answer || a->answer_ttl == b->answer_ttl) &&
	    (!a->has_soa || a->soa_ttl == b->soa_ttl);
}

/* The reply with 7 bytes appended and ARCOUNT changed: the same result. */
static void
check_tail(const uint8_t *data, size_t size, const struct dns_wire_ttl *w)
{
	unsigned char *m = malloc(size + 7);
	struct dns_wire_ttl w2;

	memcpy(m, data, size);
	memcpy(m + size, "\x03" "abc\x00\x00\x01", 7);
	m[10] ^= 0x5a;
	check(dns_wire_ttls(m, size + 7, &w2) == 0 && same(w, &w2));
	free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_wire_ttl w, w2;
	int rc = dns_wire_ttls(data, size, &w);

	check(rc == dns_wire_ttls(data, size, &w2));
	if (rc < 0)
		return 0;
	check(same(&w, &w2));
	check(!w.has_answer || (w.answer_ttl <= 0x7fffffffu &&
	    (data[6] | data[7]) != 0));
	check(!w.has_soa || (w.soa_ttl <= 0x7fffffffu &&
	    (data[8] | data[9]) != 0));
	check_tail(data, size, &w);
	return 0;
}

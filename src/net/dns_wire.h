/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * dns_wire: the TTLs of a DNS reply (RFC 1035 4.1), which c-ares 1.18's
 * parsers do not all expose: the smallest TTL of the answer section, and
 * the negative-caching TTL of an SOA in the authority section (RFC 2308 5:
 * the smaller of the SOA record's TTL and its MINIMUM field).
 */
#ifndef INDIMAIL_DNS_WIRE_H
#define INDIMAIL_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct dns_wire_ttl {
	int		 has_answer;	/* the answer section holds records */
	uint32_t	 answer_ttl;	/* the smallest of their TTLs */
	int		 has_soa;	/* the authority section holds an SOA */
	uint32_t	 soa_ttl;	/* min(its TTL, its MINIMUM) */
};

/*
 * Reads the reply of len bytes (network input: every offset is checked,
 * compression pointers are skipped, never followed). 0, or -1 when the
 * reply is cut short or malformed (then *w says nothing).
 */
int	dns_wire_ttls(const unsigned char *msg, size_t len, struct dns_wire_ttl *w);

#endif

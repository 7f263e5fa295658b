/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * spf_wire: the two ends of one DNS exchange for the SPF checker
 * (spf_dns.c), pure and fuzzed (fuzz/fuzz_spf_wire.c): a query (RFC 1035
 * 4.1, with an EDNS0 OPT record so a long TXT answer fits a datagram) and
 * the reading of its reply into records of the asked type. Owns nothing.
 */
#ifndef INDIMAIL_SPF_WIRE_H
#define INDIMAIL_SPF_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Longest query: header, 255-byte name, type, class, OPT record. */
#define SPF_WIRE_QUERY_MAX	300
/* The datagram size we announce in EDNS0 and read into. */
#define SPF_WIRE_UDP_MAX	4096

enum spf_wire_status {
	SPF_WIRE_OK,		/* records of the type were added */
	SPF_WIRE_NODATA,	/* NOERROR, no record of the type */
	SPF_WIRE_NXDOMAIN,
	SPF_WIRE_TEMPFAIL,	/* SERVFAIL, REFUSED, ...: try later */
	SPF_WIRE_BAD,		/* malformed, or not the reply to our query */
	SPF_WIRE_TRUNCATED,	/* TC set: ask again over TCP */
};

/*
 * One record of the asked type: A 4 bytes, AAAA 16, MX and PTR the name
 * (no trailing dot), TXT the character-strings joined. data is NUL
 * terminated after len bytes. Returns 0, or -1 to stop (out of room).
 */
typedef int (*spf_wire_add_fn)(void *arg, const void *data, size_t len);

/* Writes the query for name/qtype into out; its length, or -1 (bad name). */
int	spf_wire_query(const char *name, int qtype, uint16_t id,
	    unsigned char out[SPF_WIRE_QUERY_MAX]);
/*
 * Reads the reply msg[len] to query q[qlen] (same id and question, any
 * case): hands each answer record of type qtype to add.
 */
enum spf_wire_status spf_wire_answer(const unsigned char *q, size_t qlen,
	    const unsigned char *msg, size_t len, int qtype,
	    spf_wire_add_fn add, void *arg);

#endif

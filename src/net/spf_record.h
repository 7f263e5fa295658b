/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * spf_record: an SPF record's text read by RFC 7208's ABNF (section 12),
 * strictly, before libspf2 compiles it: libspf2 1.2.10 lets through much
 * that the RFC calls a syntax error (a permerror). Pure: no DNS, no
 * libspf2; the record comes from the network, so it is fuzzed
 * (fuzz/fuzz_spf_record.c). spf_record_rewrite then writes a record
 * libspf2 reads with exactly the same meaning for one client (see it).
 */
#ifndef INDIMAIL_SPF_RECORD_H
#define INDIMAIL_SPF_RECORD_H

#include <stddef.h>

#include "../lib/buf.h"

#define SPF_RECORD_WHY_MAX	160
#define SPF_CIDR_NONE		(-1)

enum spf_term_kind {
	SPF_T_ALL, SPF_T_INCLUDE, SPF_T_A, SPF_T_MX, SPF_T_PTR, SPF_T_IP4,
	SPF_T_IP6, SPF_T_EXISTS,	/* mechanisms, then modifiers: */
	SPF_T_REDIRECT, SPF_T_EXP, SPF_T_UNKNOWN,
};

/* One term; the pointers borrow the record's text. */
struct spf_term {
	enum spf_term_kind kind;
	char		 qualifier;	/* '+' '-' '~' '?', or 0 when none */
	const char	*text;		/* the term as written */
	size_t		 len;
	const char	*arg;		/* domain-spec or network; NULL if none */
	size_t		 arglen;
	int		 cidr4, cidr6;	/* SPF_CIDR_NONE when not given */
};

struct spf_record {
	struct spf_term	*terms;
	size_t		 n;
	int		 has_all;	/* an "all" mechanism */
};

/* 1 if text[0..len) is an SPF record: "v=spf1", then SP or its end. */
int	spf_record_is_spf(const char *text, size_t len);
/*
 * Reads text[0..len) (which may hold any byte, NUL too) into r: 0, or -1
 * with what is wrong in why (SPF_RECORD_WHY_MAX bytes; r is then empty).
 * r borrows text; spf_record_free releases it.
 */
int	spf_record_parse(const char *text, size_t len, struct spf_record *r,
	    char *why);
void	spf_record_free(struct spf_record *);
/*
 * r as libspf2 1.2.10 reads it the way RFC 7208 means it, for a client
 * of the given family (4 or 6), into out: redirect= dropped when there is
 * an "all", unknown modifiers dropped, ip4:/0 and ip6:/0 as two /1 halves,
 * the CIDR of the other family dropped from a and mx, and a/0 for an IPv4
 * client as exists. Whatever else is written as it was.
 */
void	spf_record_rewrite(const struct spf_record *r, int family,
	    struct buf *out);

#endif

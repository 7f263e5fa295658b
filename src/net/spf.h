/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * spf: one SPF check (RFC 7208) with libspf2, blocking: it is run on a
 * thread-pool thread (spf_job.h), never on the loop. Each thread has its
 * own libspf2 server over our DNS layer (spf_dns.h), so checks on two
 * threads share nothing. The answer carries the result, the comment and
 * the Received-SPF value (RFC 7208 9.1) built here from sanitised pieces.
 */
#ifndef INDIMAIL_SPF_H
#define INDIMAIL_SPF_H

#include "spf_dns.h"

enum spf_result {
	SPF_R_PASS, SPF_R_FAIL, SPF_R_SOFTFAIL, SPF_R_NEUTRAL, SPF_R_NONE,
	SPF_R_TEMPERROR, SPF_R_PERMERROR,
};

/* RFC 7208 4.6.4: at most two lookups that answer nothing */
#define SPF_VOID_MAX	2

/* What bounds a check; shared read-only by every thread. */
struct spf_limits {
	struct spf_dns_servers servers;
	int		 dns_timeout_ms;	/* one query, one server */
	int		 timeout_ms;		/* the whole check */
	int		 void_max;
};

struct spf_query {
	const char	*ip;		/* the client, IPv4 or IPv6 text */
	const char	*helo;		/* may be NULL */
	const char	*sender;	/* NULL or "": the HELO identity */
	const char	*receiver;	/* our host name, for the header */
};

struct spf_answer {
	enum spf_result	 result;
	const char	*identity;	/* "mailfrom" or "helo" */
	char		*domain;	/* whose record was checked */
	char		*comment;	/* the Received-SPF comment */
	char		*explanation;	/* fail: what the domain says, or NULL */
	char		*header;	/* the Received-SPF field value */
	int		 lookups;	/* DNS queries it took */
};

/*
 * Runs the check in the calling thread. 0, or -1 when the query is
 * unusable (ip not an address, no domain to check): a->comment says why.
 */
int	spf_check(const struct spf_limits *, const struct spf_query *,
	    struct spf_answer *);
void	spf_answer_free(struct spf_answer *);
/* "pass", "fail", ... as RFC 7208 names them */
const char *spf_result_name(enum spf_result);

#endif

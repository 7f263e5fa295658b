/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * dns: asynchronous DNS through c-ares driven by the libuv loop (uv_poll per
 * resolver socket, one timer for c-ares' timeouts). One resolver per loop.
 */
#ifndef INDIMAIL_DNS_H
#define INDIMAIL_DNS_H

#include <uv.h>

#include "../lib/buf.h"

enum dns_type { DNS_A, DNS_AAAA, DNS_MX, DNS_TXT, DNS_PTR };

enum dns_status {
	DNS_OK,		/* answers present */
	DNS_NODATA,	/* name exists, no record of that type */
	DNS_NXDOMAIN,	/* name does not exist */
	DNS_TEMPFAIL,	/* timeout, SERVFAIL, refused...: try later */
};

struct dns_answer {
	int		 preference;	/* MX only */
	char		*value;		/* address, MX host, TXT string, PTR name */
};

struct dns_result {
	enum dns_status	 status;
	const char	*error;		/* c-ares' text when not DNS_OK */
	struct dns_answer *answers;
	size_t		 n;
};

struct dns;
struct dns_cache;
typedef void (*dns_cb)(void *arg, const struct dns_result *);

struct dns *dns_new(uv_loop_t *, const char *servers, int timeout_ms,
	    struct buf *err);
/* cb is always called exactly once, possibly from dns_free. */
void	dns_query(struct dns *, const char *name, enum dns_type, dns_cb,
	    void *arg);
/*
 * The cache's answer now, for a caller that can take it without waiting:
 * 1 and *r filled (dns_result_free), or 0 (not cached: dns_query).
 */
int	dns_cached(struct dns *, const char *name, enum dns_type,
	    struct dns_result *r);
void	dns_free(struct dns *);
/*
 * Every resolver made after this call (in this process and the children
 * it forks) keeps its answers in c and answers from it; NULL: no cache.
 */
void	dns_share_cache(struct dns_cache *c);
void	dns_result_free(struct dns_result *);
int	dns_type_parse(const char *, enum dns_type *);

#endif

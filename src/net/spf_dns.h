/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * spf_dns: the DNS layer libspf2 asks (an SPF_dns_server_t): blocking
 * queries over UDP (TCP when the answer is truncated) to the configured
 * servers, meant for a thread-pool thread. What bounds them lives in a
 * per-check context that the calling thread installs: a deadline for the
 * whole check, a per-query timeout, and the count of void lookups (RFC
 * 7208 4.6.4). Private to spf.c.
 */
#ifndef INDIMAIL_SPF_DNS_H
#define INDIMAIL_SPF_DNS_H

#include <stdint.h>
#include <sys/socket.h>

#include <netinet/in.h>	/* libspf2 needs it first */
#include <spf2/spf.h>

#include "spf_wire.h"

#define SPF_DNS_SERVERS_MAX	4
/* why a record was refused: its domain and spf_record's reason */
#define SPF_DNS_REFUSED_MAX	448

struct spf_dns_servers {
	struct sockaddr_storage addr[SPF_DNS_SERVERS_MAX];
	socklen_t	 len[SPF_DNS_SERVERS_MAX];
	size_t		 n;
};

struct spf_dns_ctx {
	const struct spf_dns_servers *servers;
	int		 query_timeout_ms;	/* one server's turn */
	uint64_t	 deadline_ms;		/* spf_dns_now_ms() clock */
	int		 void_max;
	int		 voids;			/* NXDOMAIN/NODATA answers */
	int		 lookups;
	int		 timed_out;		/* the deadline cut a query */
	int		 last_tempfail;		/* the latest query got no answer */
	char		 refused[SPF_DNS_REFUSED_MAX];	/* "": none was */
};

/*
 * "ip[:port],..." or "[ip6]:port,..." (dns.servers' form); NULL or "":
 * /etc/resolv.conf's servers. 0, or -1 with the bad part in why.
 */
int	spf_dns_servers_parse(const char *csv, struct spf_dns_servers *,
	    char *why, size_t whylen);
uint64_t spf_dns_now_ms(void);
/* This thread's layer (made on first use; lives as long as the thread). */
SPF_dns_server_t *spf_dns_layer(void);
/* The context the thread's queries obey until spf_dns_end. */
void	spf_dns_begin(struct spf_dns_ctx *);
void	spf_dns_end(void);
/* That context, NULL outside a check. */
struct spf_dns_ctx *spf_dns_current(void);
/* Where a query's records go; reset drops those a reply gave before it
 * turned out truncated or bad. */
struct spf_dns_sink {
	spf_wire_add_fn	 add;
	void		(*reset)(void *arg);
	void		*arg;
};
/*
 * The TXT records of domain, each handed to s->add with its length (any
 * bytes, NUL too), in the check's context; how the query went, as
 * libspf2 reads it: NETDB_SUCCESS (at least one record), NO_DATA,
 * HOST_NOT_FOUND or TRY_AGAIN (also outside a check).
 */
SPF_dns_stat_t spf_dns_txt(const char *domain, const struct spf_dns_sink *s);
/*
 * dkim: the raw reply to name/qtype (for a library that reads the wire
 * form itself, libopendkim) from the first server that answers within c's
 * limits, UDP then TCP when truncated; its length in ans, or -1.
 */
int	spf_dns_query_raw(struct spf_dns_ctx *c, const char *name, int qtype,
	    unsigned char *ans, size_t anslen);

#endif

/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * connlimit: connection counts shared by all workers (anonymous shared
 * memory mapped by the master before it forks). Each worker writes only its
 * own row, so no locks are needed and the master can zero the row of a
 * worker that died. Client addresses are hashed into slots; a collision can
 * only make a limit stricter, never looser. An IPv6 client is counted by
 * its /64 (one host, or one customer, gets a /64 to roam in).
 */
#ifndef INDIMAIL_CONNLIMIT_H
#define INDIMAIL_CONNLIMIT_H

#include <sys/socket.h>

struct connlimit;

struct connlimit *connlimit_create(int nworkers);
/*
 * 0: admitted and counted; -1: total limit reached; -2: per-IP limit. A
 * NULL address (a local user) counts toward the total only.
 */
int	connlimit_acquire(struct connlimit *, int worker,
	    const struct sockaddr *, int max_total, int max_per_ip);
void	connlimit_release(struct connlimit *, int worker,
	    const struct sockaddr *);
void	connlimit_reset(struct connlimit *, int worker);

#endif

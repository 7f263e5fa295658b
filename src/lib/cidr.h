/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * cidr: network prefixes for access lists (relay_from, and later the
 * policies' tables). Parsed once at configuration load, matched per
 * connection.
 */
#ifndef INDIMAIL_CIDR_H
#define INDIMAIL_CIDR_H

#include <stddef.h>
#include <sys/socket.h>

struct cidr {
	int		 family;
	unsigned char	 addr[16];
	int		 bits;
};

/* "addr" or "addr/bits"; 0, or -1 when it is not a prefix. */
int	cidr_parse(const char *, struct cidr *);
/* Does sa fall in any of list[0..n)? */
int	cidr_match_sockaddr(const struct cidr *list, size_t n,
	    const struct sockaddr *sa);

#endif

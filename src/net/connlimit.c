/*
 * connlimit: see connlimit.h. Rows are read with relaxed atomic loads; a
 * count racing with another worker's accept may be off by one for an
 * instant, which is the precision a connection limit needs. Addresses
 * share a slot by a keyed hash (made in the master, so every worker has
 * the same key): a client cannot pick addresses that land in another's
 * slot and use up its per-IP limit.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "../lib/siphash.h"
#include "../lib/xalloc.h"
#include "connlimit.h"

#define SLOTS 4096

struct row {
	uint32_t	total;
	uint16_t	slot[SLOTS];
};

struct connlimit {
	int		 nworkers;
	struct row	*rows;
	struct siphash_key key;
};

struct connlimit *
connlimit_create(int nworkers)
{
	struct connlimit *c = xcalloc(1, sizeof(*c));
	size_t size = sizeof(struct row) * (size_t)nworkers;

	c->nworkers = nworkers;
	siphash_key_random(&c->key);
	c->rows = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->rows == MAP_FAILED)
		panic("mmap of %zu bytes for connection counts failed", size);
	return c;
}

static unsigned
slot_of(const struct connlimit *c, const struct sockaddr *sa)
{
	const unsigned char *a;
	size_t n;

	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *i6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		a = (const unsigned char *)i6;
		n = 8;		/* one IPv6 client owns a whole /64 */
		if (IN6_IS_ADDR_V4MAPPED(i6))
			a += 12, n = 4;
	} else {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		n = 4;
	}
	return (unsigned)(siphash24(&c->key, a, n) % SLOTS);
}

int
connlimit_acquire(struct connlimit *c, int w, const struct sockaddr *sa,
    int max_total, int max_per_ip)
{
	unsigned s = sa ? slot_of(c, sa) : 0;
	long total = 0, ip = 0;

	for (int i = 0; i < c->nworkers; i++) {
		total += __atomic_load_n(&c->rows[i].total, __ATOMIC_RELAXED);
		if (sa)
			ip += __atomic_load_n(&c->rows[i].slot[s],
			    __ATOMIC_RELAXED);
	}
	if (total >= max_total)
		return -1;
	if (sa && ip >= max_per_ip)
		return -2;
	__atomic_add_fetch(&c->rows[w].total, 1, __ATOMIC_RELAXED);
	if (sa)
		__atomic_add_fetch(&c->rows[w].slot[s], 1, __ATOMIC_RELAXED);
	return 0;
}

void
connlimit_release(struct connlimit *c, int w, const struct sockaddr *sa)
{
	unsigned s = sa ? slot_of(c, sa) : 0;

	if (c->rows[w].total > 0)
		__atomic_sub_fetch(&c->rows[w].total, 1, __ATOMIC_RELAXED);
	if (sa && c->rows[w].slot[s] > 0)
		__atomic_sub_fetch(&c->rows[w].slot[s], 1, __ATOMIC_RELAXED);
}

void
connlimit_reset(struct connlimit *c, int w)
{
	memset(&c->rows[w], 0, sizeof(c->rows[w]));
}

/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * dns_cache: DNS answers shared by every process the master forks (the
 * SMTP workers and the queue manager), in one table of fixed slots mapped
 * before the fork (src/lib/shm.h, like the shared counters): keyed by
 * (name, type), holding the status (ok, nodata, nxdomain; never a
 * temporary failure) and the records, until an expiry the caller derives
 * from the TTLs (dns.c). The table survives a reload, not a restart.
 *
 * Memory bounds, by design: size slots (rounded up to a power of two) of
 * sizeof(struct dns_cache_slot) ≈ 1.3 KB each, allocated once: 4096
 * slots ≈ 5.3 MB. A name is at most DNS_CACHE_NAME_MAX bytes and the
 * records at most DNS_CACHE_DATA_MAX bytes (2 + the text + 1 each): a
 * larger answer is answered but not kept. A key lives in one of
 * DNS_CACHE_PROBE slots after its hash; when they are all live, the one
 * that expires first is evicted.
 */
#ifndef INDIMAIL_DNS_CACHE_H
#define INDIMAIL_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns.h"

#define DNS_CACHE_NAME_MAX	255
#define DNS_CACHE_DATA_MAX	1024
#define DNS_CACHE_PROBE		8

struct dns_cache;

/* A table of size slots; panics without memory. */
struct dns_cache *dns_cache_create(size_t size);
void	dns_cache_destroy(struct dns_cache *);
size_t	dns_cache_size(const struct dns_cache *);
/* The TTL caps, read by every process at each store (the master's reload). */
void	dns_cache_set_ttls(struct dns_cache *, uint32_t max_ttl,
	    uint32_t negative_ttl);
void	dns_cache_ttls(struct dns_cache *, uint32_t *max_ttl,
	    uint32_t *negative_ttl);
/*
 * 1 and *r filled (its answers allocated: dns_result_free) when name/type
 * is cached and not expired; 0 otherwise.
 */
int	dns_cache_get(struct dns_cache *, const char *name, enum dns_type,
	    struct dns_result *r);
/* Keeps r for ttl_s seconds; a tempfail, ttl 0 or an oversize answer: not. */
void	dns_cache_put(struct dns_cache *, const char *name, enum dns_type,
	    const struct dns_result *r, uint32_t ttl_s);

#endif

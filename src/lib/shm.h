/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * shm: what the tables shared by the master's children have in common
 * (counter.c, src/net/dns_cache.c): one anonymous shared mapping, made by
 * the master before it forks, that starts with a process-shared robust
 * mutex and a random hash key; a keyed hash of keys (SipHash: peers pick
 * many of them, DNS names for one); a monotonic clock.
 */
#ifndef INDIMAIL_SHM_H
#define INDIMAIL_SHM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "siphash.h"

/* The head of every shared table; the table's own fields follow it. */
struct shm_head {
	pthread_mutex_t	 mu;
	struct siphash_key key;
};

/*
 * A zeroed shared mapping of size bytes (at least a shm_head) whose head
 * is ready; what names the table in a panic without memory.
 */
void	*shm_map(size_t size, const char *what);
void	 shm_unmap(void *, size_t size);
/* Holds the lock; a holder that died leaves it usable (EOWNERDEAD). */
void	 shm_lock(struct shm_head *);
void	 shm_unlock(struct shm_head *);
/* SipHash-2-4 of a string with the table's key. */
uint64_t shm_hash(const struct shm_head *, const char *key);
/* CLOCK_MONOTONIC in milliseconds (kept across fork, not across boots). */
int64_t	 shm_now_ms(void);

#endif

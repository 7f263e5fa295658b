/*
 * shm: see shm.h. Owns nothing but the mapping it hands out; the tables
 * built on it keep their own invariants. The mutex is robust so that a
 * child killed while holding it (a crash, the watchdog) never wedges the
 * others: the next locker marks it consistent and carries on.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "shm.h"
#include "siphash.h"

int64_t
shm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
shm_hash(const struct shm_head *sh, const char *key)
{
	return siphash24(&sh->key, key, strlen(key));
}

/* From getrandom(); else a guess only the local machine can make. */
static struct siphash_key
random_key(void)
{
	struct siphash_key k = { (uint64_t)shm_now_ms() * 2654435761u,
	    (uint64_t)getpid() };

	siphash_key_random(&k);
	return k;
}

static void
init_mutex(pthread_mutex_t *mu, const char *what)
{
	pthread_mutexattr_t a;

	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(mu, &a) != 0)
		panic("%s: cannot make a process-shared robust mutex", what);
	pthread_mutexattr_destroy(&a);
}

void *
shm_map(size_t size, const char *what)
{
	struct shm_head *sh;

	sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		panic("mmap of %zu bytes for %s failed", size, what);
	init_mutex(&sh->mu, what);
	sh->key = random_key();
	return sh;
}

void
shm_unmap(void *p, size_t size)
{
	munmap(p, size);
}

/* A holder that died mid-update left at most one slot half written. */
void
shm_lock(struct shm_head *sh)
{
	int e = pthread_mutex_lock(&sh->mu);

	if (e == EOWNERDEAD)
		pthread_mutex_consistent(&sh->mu);
	else if (e != 0)
		panic("shared table: lock failed: %s", strerror(e));
}

void
shm_unlock(struct shm_head *sh)
{
	pthread_mutex_unlock(&sh->mu);
}

/*
 * shm: see shm.h. Owns nothing but the mapping it hands out; the tables
 * built on it keep their own invariants. The mutex is robust so that a
 * child killed while holding it (a crash, the watchdog) never wedges the
 * others: the next locker marks it consistent and carries on.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "shm.h"

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
	uint64_t h = 14695981039346656037ull ^ sh->seed;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ^ (h >> 29);
}

static uint64_t
random_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)shm_now_ms() * 2654435761u ^ (uint64_t)getpid();
	return seed;
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
	sh->seed = random_seed();
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

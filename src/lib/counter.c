/*
 * counter: see counter.h. The table is one mapping: a robust process-shared
 * mutex, the hash seed, and the slots. Owns nothing outside it; every
 * function takes the lock, probes at most COUNTER_PROBE slots, and lets go.
 * Invariant: a slot with end_ms == 0 is empty; a key is in at most one of
 * the slots its hash probes (a lookup always scans all of them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "diag.h"
#include "xalloc.h"

struct slot {
	uint64_t	 hash;		/* of the whole key, seeded */
	int64_t		 start_ms;	/* the window began (CLOCK_MONOTONIC) */
	int64_t		 end_ms;	/* and ends; 0: the slot is empty */
	long		 count;
	char		 key[COUNTER_KEY_MAX + 1];
};

struct shared {
	pthread_mutex_t	 mu;
	uint64_t	 seed;
	size_t		 mask;		/* slots - 1, a power of two */
	struct slot	 slots[];
};

struct counter_table {
	struct shared	*sh;
	size_t		 size;		/* of the mapping */
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a over the key, from a per-table random seed. */
static uint64_t
hash_key(const struct shared *sh, const char *key)
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
		seed = (uint64_t)now_ms() * 2654435761u ^ (uint64_t)getpid();
	return seed;
}

static void
init_mutex(pthread_mutex_t *mu)
{
	pthread_mutexattr_t a;

	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(mu, &a) != 0)
		panic("counter: cannot make a process-shared robust mutex");
	pthread_mutexattr_destroy(&a);
}

struct counter_table *
counter_create(size_t nslots)
{
	struct counter_table *t = xcalloc(1, sizeof(*t));
	size_t n = COUNTER_PROBE;

	while (n < nslots)
		n <<= 1;
	t->size = sizeof(struct shared) + n * sizeof(struct slot);
	t->sh = mmap(NULL, t->size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t->sh == MAP_FAILED)
		panic("mmap of %zu bytes for shared counters failed", t->size);
	init_mutex(&t->sh->mu);
	t->sh->seed = random_seed();
	t->sh->mask = n - 1;
	return t;
}

void
counter_destroy(struct counter_table *t)
{
	if (t == NULL)
		return;
	munmap(t->sh, t->size);
	free(t);
}

/* A holder that died mid-update left at most one slot half written. */
static void
table_lock(struct shared *sh)
{
	int e = pthread_mutex_lock(&sh->mu);

	if (e == EOWNERDEAD)
		pthread_mutex_consistent(&sh->mu);
	else if (e != 0)
		panic("counter: lock failed: %s", strerror(e));
}

static void
table_unlock(struct shared *sh)
{
	pthread_mutex_unlock(&sh->mu);
}

/* Which slot to give up first: empty, then expired, then the oldest. */
static int
better_victim(const struct slot *a, const struct slot *b, int64_t now)
{
	int ra = a->end_ms == 0 ? 0 : a->end_ms <= now ? 1 : 2;
	int rb = b->end_ms == 0 ? 0 : b->end_ms <= now ? 1 : 2;

	if (ra != rb)
		return ra < rb;
	return a->start_ms < b->start_ms;
}

/* key's slot, or (want_free) the slot it should take; NULL: neither. */
static struct slot *
slot_find(struct shared *sh, const char *key, uint64_t h, int64_t now,
    int want_free)
{
	struct slot *victim = NULL;

	for (size_t i = 0; i < COUNTER_PROBE; i++) {
		struct slot *s = &sh->slots[(h + i) & sh->mask];
		if (s->end_ms != 0 && s->hash == h &&
		    strncmp(s->key, key, COUNTER_KEY_MAX) == 0)
			return s;
		if (victim == NULL || better_victim(s, victim, now))
			victim = s;
	}
	if (!want_free)
		return NULL;
	victim->hash = h;
	victim->end_ms = 0;
	strncpy(victim->key, key, COUNTER_KEY_MAX);
	victim->key[COUNTER_KEY_MAX] = '\0';
	return victim;
}

long
counter_add(struct counter_table *t, const char *key, unsigned window_s,
    long delta)
{
	uint64_t h = hash_key(t->sh, key);
	int64_t now = now_ms();
	struct slot *s;
	long n;

	table_lock(t->sh);
	s = slot_find(t->sh, key, h, now, 1);
	if (s->end_ms <= now) {		/* new, or its window passed */
		s->count = 0;
		s->start_ms = now;
		s->end_ms = now + (int64_t)(window_s ? window_s : 1) * 1000;
	}
	n = s->count += delta;
	table_unlock(t->sh);
	return n;
}

long
counter_get(struct counter_table *t, const char *key)
{
	uint64_t h = hash_key(t->sh, key);
	int64_t now = now_ms();
	struct slot *s;
	long n = 0;

	table_lock(t->sh);
	s = slot_find(t->sh, key, h, now, 0);
	if (s && s->end_ms > now)
		n = s->count;
	table_unlock(t->sh);
	return n;
}

/*
 * counter: see counter.h. The table is one mapping (shm.h): a robust
 * process-shared mutex, the hash seed, and the slots. Owns nothing outside it; every
 * function takes the lock, probes at most COUNTER_PROBE slots, and lets go.
 * Invariant: a slot with end_ms == 0 is empty; a key is in at most one of
 * the slots its hash probes (a lookup always scans all of them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "shm.h"
#include "xalloc.h"

struct slot {
	uint64_t	 hash;		/* of the whole key, seeded */
	int64_t		 start_ms;	/* the window began (CLOCK_MONOTONIC) */
	int64_t		 end_ms;	/* and ends; 0: the slot is empty */
	long		 count;
	char		 key[COUNTER_KEY_MAX + 1];
};

struct shared {
	struct shm_head	 head;		/* lock and seed (shm.h) */
	size_t		 mask;		/* slots - 1, a power of two */
	struct slot	 slots[];
};

struct counter_table {
	struct shared	*sh;
	size_t		 size;		/* of the mapping */
};

struct counter_table *
counter_create(size_t nslots)
{
	struct counter_table *t = xcalloc(1, sizeof(*t));
	size_t n = COUNTER_PROBE;

	while (n < nslots)
		n <<= 1;
	t->size = sizeof(struct shared) + n * sizeof(struct slot);
	t->sh = shm_map(t->size, "shared counters");
	t->sh->mask = n - 1;
	return t;
}

void
counter_destroy(struct counter_table *t)
{
	if (t == NULL)
		return;
	shm_unmap(t->sh, t->size);
	free(t);
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
	uint64_t h = shm_hash(&t->sh->head, key);
	int64_t now = shm_now_ms();
	struct slot *s;
	long n;

	shm_lock(&t->sh->head);
	s = slot_find(t->sh, key, h, now, 1);
	if (s->end_ms <= now) {		/* new, or its window passed */
		s->count = 0;
		s->start_ms = now;
		s->end_ms = now + (int64_t)(window_s ? window_s : 1) * 1000;
	}
	n = s->count += delta;
	shm_unlock(&t->sh->head);
	return n;
}

long
counter_get(struct counter_table *t, const char *key)
{
	uint64_t h = shm_hash(&t->sh->head, key);
	int64_t now = shm_now_ms();
	struct slot *s;
	long n = 0;

	shm_lock(&t->sh->head);
	s = slot_find(t->sh, key, h, now, 0);
	if (s && s->end_ms > now)
		n = s->count;
	shm_unlock(&t->sh->head);
	return n;
}

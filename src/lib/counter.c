/*
 * counter: see counter.h. The table is one mapping (shm.h): a robust
 * process-shared mutex, the hash seed, and the slots. Owns nothing outside it; every
 * function takes the lock, probes at most COUNTER_PROBE slots, and lets go.
 * Invariant: a slot with end_ms == 0 is empty; a key is in at most one of
 * the slots its hash probes (a lookup always scans all of them). A hold's
 * slots end at HOLD_END (never) and are emptied when their count is zero.
 */
#include <stdint.h>
#include <stdio.h>
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
	long		 owner;		/* a hold's share: its pid; else 0 */
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
	victim->owner = 0;
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

#define HOLD_END	INT64_MAX

/* A hold key's slot; a new one (create) starts at zero, else NULL. */
static struct slot *
hold_slot(struct shared *sh, const char *key, long owner, int64_t now,
    int create)
{
	struct slot *s = slot_find(sh, key, shm_hash(&sh->head, key), now, create);

	if (s && s->end_ms <= now) {
		if (!create)
			return NULL;
		s->count = 0;
		s->start_ms = now;
		s->end_ms = HOLD_END;
		s->owner = owner;
	}
	return s;
}

/* Adds delta, never below zero; a count back at zero frees its slot. */
static long
hold_move(struct slot *s, long delta)
{
	if (s == NULL)
		return 0;
	s->count += delta;
	if (s->count <= 0) {
		s->count = 0;
		s->end_ms = 0;
	}
	return s->count;
}

long
counter_hold(struct counter_table *t, const char *key, long owner,
    long delta)
{
	char share[COUNTER_KEY_MAX + 1];
	int64_t now = shm_now_ms();
	long n;

	if (owner <= 0 || strlen(key) > COUNTER_HOLD_KEY_MAX)
		return -1;
	snprintf(share, sizeof(share), "%s\x1f%ld", key, owner);
	shm_lock(&t->sh->head);
	hold_move(hold_slot(t->sh, share, owner, now, delta > 0), delta);
	n = hold_move(hold_slot(t->sh, key, 0, now, delta > 0), delta);
	shm_unlock(&t->sh->head);
	return n;
}

/* Empties one share of owner, and takes what it held off its key. */
static void
forget_share(struct shared *sh, struct slot *s, int64_t now)
{
	char key[COUNTER_KEY_MAX + 1];
	char *cut;
	long n = s->count;

	memcpy(key, s->key, sizeof(key));
	s->count = 0;
	s->end_ms = 0;
	s->owner = 0;
	if ((cut = strrchr(key, '\x1f')) != NULL) {
		*cut = '\0';
		hold_move(hold_slot(sh, key, 0, now, 0), -n);
	}
}

void
counter_forget_owner(struct counter_table *t, long owner)
{
	int64_t now = shm_now_ms();

	if (t == NULL || owner <= 0)
		return;
	shm_lock(&t->sh->head);
	for (size_t i = 0; i <= t->sh->mask; i++) {
		struct slot *s = &t->sh->slots[i];

		if (s->end_ms != 0 && s->owner == owner)
			forget_share(t->sh, s, now);
	}
	shm_unlock(&t->sh->head);
}

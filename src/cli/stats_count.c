/*
 * stats_count: counts per string in an open-addressing hash (FNV-1a,
 * linear probing) of twice STATS_COUNT_KEYS slots, so probes stay short.
 * Pruning rebuilds the table from the survivors: deletion in place would
 * need tombstones, and a rebuild happens at most once per quarter-table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "stats_count.h"

#define STATS_COUNT_SLOTS	(2 * STATS_COUNT_KEYS)

static size_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h % STATS_COUNT_SLOTS);
}

static struct stats_entry *
find(struct stats_entry *slot, const char *key)
{
	size_t i = hash(key);

	while (slot[i].key && strcmp(slot[i].key, key) != 0)
		i = (i + 1) % STATS_COUNT_SLOTS;
	return &slot[i];
}

static int
ascending(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* The count at or under which keys go so that at most 3/4 remain. */
static long long
cut_for(const struct stats_count *c)
{
	long long *n = xcalloc(c->used, sizeof(*n)), cut;
	size_t k = 0;

	for (size_t i = 0; i < STATS_COUNT_SLOTS; i++)
		if (c->slot[i].key)
			n[k++] = c->slot[i].n;
	qsort(n, k, sizeof(*n), ascending);
	cut = n[k - STATS_COUNT_KEYS * 3 / 4];
	free(n);
	return cut > c->floor ? cut : c->floor;
}

/* Drops the smallest counts (ties go together): a quarter at least. */
static void
prune(struct stats_count *c)
{
	struct stats_entry *old = c->slot;
	long long cut = cut_for(c);

	c->slot = xcalloc(STATS_COUNT_SLOTS, sizeof(*c->slot));
	c->used = 0;
	for (size_t i = 0; i < STATS_COUNT_SLOTS; i++) {
		if (old[i].key == NULL)
			continue;
		if (old[i].n <= cut) {
			free(old[i].key);
			c->pruned++;
			continue;
		}
		*find(c->slot, old[i].key) = old[i];
		c->used++;
	}
	c->floor = cut;
	free(old);
}

void
stats_count_add(struct stats_count *c, const char *key, long long n)
{
	struct stats_entry *e;

	if (c->slot == NULL)
		c->slot = xcalloc(STATS_COUNT_SLOTS, sizeof(*c->slot));
	e = find(c->slot, key);
	if (e->key == NULL) {
		if (c->used >= STATS_COUNT_KEYS) {
			prune(c);
			e = find(c->slot, key);
		}
		e->key = xstrdup(key);
		c->used++;
	}
	e->n += n;
}

static int
by_count(const void *a, const void *b)
{
	const struct stats_entry *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(x->key, y->key);
}

struct stats_entry *
stats_count_top(const struct stats_count *c, size_t n, size_t *got)
{
	struct stats_entry *all = xcalloc(c->used + 1, sizeof(*all));
	size_t k = 0;

	for (size_t i = 0; c->slot && i < STATS_COUNT_SLOTS; i++)
		if (c->slot[i].key)
			all[k++] = c->slot[i];
	qsort(all, k, sizeof(*all), by_count);
	*got = k < n ? k : n;
	return all;
}

void
stats_count_free(struct stats_count *c)
{
	for (size_t i = 0; c->slot && i < STATS_COUNT_SLOTS; i++)
		free(c->slot[i].key);
	free(c->slot);
	memset(c, 0, sizeof(*c));
}

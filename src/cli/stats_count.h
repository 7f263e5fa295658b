/*
 * stats_count: a bounded table of counts per string (senders, recipients,
 * client addresses ...) for `indimail stats`. It holds at most
 * STATS_COUNT_KEYS keys: when full, the keys with the smallest counts are
 * dropped (at least a quarter of them) and `pruned` says the counts of
 * what remains may be low by up to `floor`. Memory stays bounded whatever
 * a log holds; the top of a skewed distribution stays exact.
 */
#ifndef INDIMAIL_STATS_COUNT_H
#define INDIMAIL_STATS_COUNT_H

#include <stddef.h>

#define STATS_COUNT_KEYS	20000

struct stats_entry {
	char		*key;
	long long	 n;
};

struct stats_count {
	struct stats_entry *slot;	/* open addressing, STATS_COUNT_SLOTS */
	size_t		 used;
	long long	 floor;		/* highest count ever dropped */
	long long	 pruned;	/* keys dropped */
};

void	stats_count_add(struct stats_count *, const char *key, long long n);
/* The top n entries, highest first (ties by key); *got how many. The
 * array borrows the keys; free() it. */
struct stats_entry *stats_count_top(const struct stats_count *, size_t n,
	    size_t *got);
void	stats_count_free(struct stats_count *);

#endif

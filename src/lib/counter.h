/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * counter: counts shared by every worker. A fixed table of (key, count,
 * window) in anonymous shared memory, mapped by the master before it forks,
 * so every child, and every child forked again after a crash or a reload,
 * sees the same counts. A count lives for its window: the first add starts
 * it, and once `window_s` seconds have passed the count starts from zero.
 *
 * Limits, by design:
 * - keys are strings of up to COUNTER_KEY_MAX bytes; a longer key is kept
 *   as its first COUNTER_KEY_MAX bytes and the hash of the whole, so two
 *   long keys alike in both share a count (a limit gets stricter, never
 *   looser);
 * - a key lives in one of COUNTER_PROBE slots after its (seeded) hash;
 *   when all of them hold live counts, the one whose window started first
 *   is evicted: a full table forgets, it never refuses and never grows;
 * - one process-shared robust mutex guards the table: a holder that dies
 *   leaves it usable (EOWNERDEAD is marked consistent), and it is held only
 *   for a probe of COUNTER_PROBE slots, never across anything slow;
 * - the clock is CLOCK_MONOTONIC in milliseconds: counts survive a reload,
 *   not a restart of the master (the memory goes with it).
 *
 * Holds (concurrency): counter_hold keeps a count without a window, and
 * beside it the share of one owner (a worker's pid) under "key\x1fpid".
 * When the master reaps a dead worker, counter_forget_owner subtracts
 * what that worker still held, so a crash never leaks a count.
 */
#ifndef INDIMAIL_COUNTER_H
#define INDIMAIL_COUNTER_H

#include <stddef.h>

#define COUNTER_KEY_MAX	287
#define COUNTER_PROBE	16

struct counter_table;

/* A table of nslots (rounded up to a power of two); panics without memory. */
struct counter_table *counter_create(size_t nslots);
/* Unmaps it (the other processes keep their mapping). */
void	counter_destroy(struct counter_table *);
/*
 * Adds delta to key's count, starting a window of window_s seconds when
 * the key is new or its window has passed; returns the count after it.
 */
long	counter_add(struct counter_table *, const char *key, unsigned window_s,
	    long delta);
/* key's count in its current window; 0 when absent or the window passed. */
long	counter_get(struct counter_table *, const char *key);
/* Hold keys: at most this long (room for the owner's suffix). */
#define COUNTER_HOLD_KEY_MAX	(COUNTER_KEY_MAX - 24)
/*
 * Adds delta (+1 take, -1 give back) to key's held count and to owner's
 * share of it; neither goes below zero. Returns the count after it, or -1
 * when key is longer than COUNTER_HOLD_KEY_MAX or owner is not positive.
 */
long	counter_hold(struct counter_table *, const char *key, long owner,
	    long delta);
/* Gives back every share owner still holds (the master, for a dead child). */
void	counter_forget_owner(struct counter_table *, long owner);

#endif

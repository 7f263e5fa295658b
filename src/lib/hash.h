/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * hash: FNV-1a, the string hash of the in-memory tables (the queue
 * manager's messages and entries, the connection limits, the directory
 * cache). Not keyed: a table whose keys a peer chooses bounds its chains
 * or its slots by other means, or hashes with siphash.h (the queue
 * manager's destinations).
 */
#ifndef INDIMAIL_HASH_H
#define INDIMAIL_HASH_H

#define HASH_FNV_BASIS	2166136261u
#define HASH_FNV_PRIME	16777619u

/* One more byte into h (start from HASH_FNV_BASIS). */
static inline unsigned
hash_fnv1a_step(unsigned h, unsigned char c)
{
	return (h ^ c) * HASH_FNV_PRIME;
}

static inline unsigned
hash_fnv1a(const char *s)
{
	unsigned h = HASH_FNV_BASIS;

	for (; *s; s++)
		h = hash_fnv1a_step(h, (unsigned char)*s);
	return h;
}

#endif

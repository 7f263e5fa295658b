/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * siphash: SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed hash for
 * the tables whose keys a peer chooses: without the key, which stays in
 * the process, nobody can pick names that share a chain. 64-bit output,
 * as the reference implementation's (tests/unit/siphash_spec.lua checks
 * its 64 test vectors).
 */
#ifndef INDIMAIL_SIPHASH_H
#define INDIMAIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN	16

struct siphash_key {
	uint64_t	k0, k1;
};

/* The key from 16 bytes, read little-endian as the reference does. */
struct siphash_key siphash_key_from(const unsigned char bytes[SIPHASH_KEY_LEN]);
/* A fresh key from getrandom(); -1 (key left as it was) if that failed. */
int	siphash_key_random(struct siphash_key *);
uint64_t siphash24(const struct siphash_key *, const void *data, size_t len);

#endif

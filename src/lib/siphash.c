/*
 * siphash: SipHash-2-4 (siphash.h), written from the paper's description:
 * four 64-bit words of state, two SipRounds per 8-byte block, the last
 * block padded with the length in its top byte, four rounds to finish.
 * Pure computation; siphash_key_random() is the one call to the kernel.
 */
#include <sys/random.h>

#include "siphash.h"

#define SIP_C_ROUNDS	2	/* rounds per message block */
#define SIP_D_ROUNDS	4	/* rounds of the finalization */

/* The initial state's constants: "somepseudorandomlygeneratedbytes". */
#define SIP_IV0	0x736f6d6570736575ULL
#define SIP_IV1	0x646f72616e646f6dULL
#define SIP_IV2	0x6c7967656e657261ULL
#define SIP_IV3	0x7465646279746573ULL
#define SIP_FINAL	0xff

struct sip_state {
	uint64_t	v0, v1, v2, v3;
};

static inline uint64_t
rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t
load_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
sip_rounds(struct sip_state *s, int n)
{
	while (n-- > 0) {
		s->v0 += s->v1;
		s->v1 = rotl(s->v1, 13) ^ s->v0;
		s->v0 = rotl(s->v0, 32);
		s->v2 += s->v3;
		s->v3 = rotl(s->v3, 16) ^ s->v2;
		s->v0 += s->v3;
		s->v3 = rotl(s->v3, 21) ^ s->v0;
		s->v2 += s->v1;
		s->v1 = rotl(s->v1, 17) ^ s->v2;
		s->v2 = rotl(s->v2, 32);
	}
}

static void
sip_block(struct sip_state *s, uint64_t m)
{
	s->v3 ^= m;
	sip_rounds(s, SIP_C_ROUNDS);
	s->v0 ^= m;
}

/* The last 0 to 7 bytes, with the message length (mod 256) on top. */
static uint64_t
last_block(const unsigned char *p, size_t len)
{
	uint64_t b = (uint64_t)len << 56;

	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[i] << (8 * i);
	return b;
}

uint64_t
siphash24(const struct siphash_key *k, const void *data, size_t len)
{
	const unsigned char *p = data;
	struct sip_state s = { k->k0 ^ SIP_IV0, k->k1 ^ SIP_IV1,
	    k->k0 ^ SIP_IV2, k->k1 ^ SIP_IV3 };
	size_t full = len & ~(size_t)7;

	for (size_t i = 0; i < full; i += 8)
		sip_block(&s, load_le64(p + i));
	sip_block(&s, last_block(p + full, len));
	s.v2 ^= SIP_FINAL;
	sip_rounds(&s, SIP_D_ROUNDS);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

struct siphash_key
siphash_key_from(const unsigned char bytes[SIPHASH_KEY_LEN])
{
	struct siphash_key k = { load_le64(bytes), load_le64(bytes + 8) };

	return k;
}

int
siphash_key_random(struct siphash_key *k)
{
	unsigned char b[SIPHASH_KEY_LEN];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	*k = siphash_key_from(b);
	return 0;
}

/*
 * dns_cache: see dns_cache.h. One shared mapping: the shm head (lock,
 * seed), the TTL caps, then the slots. The records of a slot are packed
 * as (2-byte preference, text, NUL) n times. Every function takes the
 * lock, probes at most DNS_CACHE_PROBE slots, copies, and lets go.
 * Invariant: a slot with expires_ms == 0 is empty; a key is in at most one
 * of its probe slots (a store reuses the key's slot when it has one).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/shm.h"
#include "../lib/xalloc.h"
#include "dns_cache.h"

struct dns_cache_slot {
	uint64_t	 hash;		/* of the name, seeded, mixed with type */
	int64_t		 expires_ms;	/* shm_now_ms(); 0: the slot is empty */
	uint8_t		 type;
	uint8_t		 status;
	uint16_t	 n;		/* records */
	uint16_t	 len;		/* bytes of data used */
	char		 name[DNS_CACHE_NAME_MAX + 1];
	unsigned char	 data[DNS_CACHE_DATA_MAX];
};

struct shared {
	struct shm_head	 head;
	uint32_t	 max_ttl, negative_ttl;
	size_t		 mask;		/* slots - 1, a power of two */
	struct dns_cache_slot slots[];
};

struct dns_cache {
	struct shared	*sh;
	size_t		 size;		/* of the mapping */
};

struct dns_cache *
dns_cache_create(size_t size)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));
	size_t n = DNS_CACHE_PROBE;

	while (n < size)
		n <<= 1;
	c->size = sizeof(struct shared) + n * sizeof(struct dns_cache_slot);
	c->sh = shm_map(c->size, "the DNS cache");
	c->sh->mask = n - 1;
	c->sh->max_ttl = 3600;
	c->sh->negative_ttl = 300;
	return c;
}

void
dns_cache_destroy(struct dns_cache *c)
{
	if (c == NULL)
		return;
	shm_unmap(c->sh, c->size);
	free(c);
}

size_t
dns_cache_size(const struct dns_cache *c)
{
	return c->sh->mask + 1;
}

void
dns_cache_set_ttls(struct dns_cache *c, uint32_t max_ttl, uint32_t negative_ttl)
{
	shm_lock(&c->sh->head);
	c->sh->max_ttl = max_ttl;
	c->sh->negative_ttl = negative_ttl;
	shm_unlock(&c->sh->head);
}

void
dns_cache_ttls(struct dns_cache *c, uint32_t *max_ttl, uint32_t *negative_ttl)
{
	shm_lock(&c->sh->head);
	*max_ttl = c->sh->max_ttl;
	*negative_ttl = c->sh->negative_ttl;
	shm_unlock(&c->sh->head);
}

/* name lowercased into key (DNS names compare without case); -1: too long. */
static int
cache_key(const char *name, char key[DNS_CACHE_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i]; i++) {
		if (i == DNS_CACHE_NAME_MAX)
			return -1;
		key[i] = (char)tolower((unsigned char)name[i]);
	}
	key[i] = '\0';
	return 0;
}

static uint64_t
cache_hash(struct shared *sh, const char *key, enum dns_type t)
{
	return shm_hash(&sh->head, key) ^ ((uint64_t)t + 1) * 0x9e3779b97f4a7c15ull;
}

/* Which slot to give up first: empty, then expired, then expiring first. */
static int
better_victim(const struct dns_cache_slot *a, const struct dns_cache_slot *b,
    int64_t now)
{
	int ra = a->expires_ms == 0 ? 0 : a->expires_ms <= now ? 1 : 2;
	int rb = b->expires_ms == 0 ? 0 : b->expires_ms <= now ? 1 : 2;

	if (ra != rb)
		return ra < rb;
	return a->expires_ms < b->expires_ms;
}

/* The key's slot, or (want_free) the one it should take; NULL: neither. */
static struct dns_cache_slot *
slot_find(struct shared *sh, const char *key, enum dns_type t, uint64_t h,
    int want_free)
{
	struct dns_cache_slot *victim = NULL;
	int64_t now = shm_now_ms();

	for (size_t i = 0; i < DNS_CACHE_PROBE; i++) {
		struct dns_cache_slot *s = &sh->slots[(h + i) & sh->mask];
		if (s->expires_ms != 0 && s->hash == h && s->type == t &&
		    strcmp(s->name, key) == 0)
			return s;
		if (victim == NULL || better_victim(s, victim, now))
			victim = s;
	}
	return want_free ? victim : NULL;
}

/* Packs r's records into buf; their length, or -1 when they do not fit. */
static int
pack(const struct dns_result *r, unsigned char *buf)
{
	size_t off = 0, l;

	for (size_t i = 0; i < r->n; i++) {
		l = strlen(r->answers[i].value) + 1;
		if (DNS_CACHE_DATA_MAX - off < 2 + l)
			return -1;
		buf[off] = (unsigned char)(r->answers[i].preference >> 8);
		buf[off + 1] = (unsigned char)r->answers[i].preference;
		memcpy(buf + off + 2, r->answers[i].value, l);
		off += 2 + l;
	}
	return (int)off;
}

/* Reads within s->len only, though a store never leaves a slot torn. */
static void
unpack(const struct dns_cache_slot *s, struct dns_result *r)
{
	const unsigned char *end;
	size_t off = 0;

	r->status = (enum dns_status)s->status;
	r->error = NULL;
	r->n = 0;
	r->answers = xcalloc(s->n ? s->n : 1, sizeof(*r->answers));
	for (size_t i = 0; i < s->n && s->len - off > 2; i++) {
		end = memchr(s->data + off + 2, '\0', s->len - off - 2);
		if (end == NULL)
			break;
		r->answers[i].preference = s->data[off] << 8 | s->data[off + 1];
		r->answers[i].value = xstrdup((const char *)s->data + off + 2);
		off = (size_t)(end - s->data) + 1;
		r->n++;
	}
}

int
dns_cache_get(struct dns_cache *c, const char *name, enum dns_type t,
    struct dns_result *r)
{
	char key[DNS_CACHE_NAME_MAX + 1];
	struct dns_cache_slot *s;
	int hit = 0;

	if (cache_key(name, key) < 0)
		return 0;
	shm_lock(&c->sh->head);
	s = slot_find(c->sh, key, t, cache_hash(c->sh, key, t), 0);
	if (s && s->expires_ms > shm_now_ms()) {
		unpack(s, r);
		hit = 1;
	}
	shm_unlock(&c->sh->head);
	return hit;
}

void
dns_cache_put(struct dns_cache *c, const char *name, enum dns_type t,
    const struct dns_result *r, uint32_t ttl_s)
{
	unsigned char data[DNS_CACHE_DATA_MAX];
	char key[DNS_CACHE_NAME_MAX + 1];
	struct dns_cache_slot *s;
	uint64_t h;
	int len;

	if (r->status == DNS_TEMPFAIL || ttl_s == 0 || r->n > UINT16_MAX ||
	    cache_key(name, key) < 0 || (len = pack(r, data)) < 0)
		return;
	h = cache_hash(c->sh, key, t);
	shm_lock(&c->sh->head);
	s = slot_find(c->sh, key, t, h, 1);
	s->expires_ms = 0;	/* empty until whole: a writer may die midway */
	s->hash = h;
	s->type = (uint8_t)t;
	s->status = (uint8_t)r->status;
	s->n = (uint16_t)r->n;
	s->len = (uint16_t)len;
	memcpy(s->name, key, strlen(key) + 1);
	memcpy(s->data, data, (size_t)len);
	s->expires_ms = shm_now_ms() + (int64_t)ttl_s * 1000;
	shm_unlock(&c->sh->head);
}

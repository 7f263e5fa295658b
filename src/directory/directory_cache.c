/*
 * directory_cache: the answers of a backend that is not in memory, kept a
 * little while so a busy RCPT phase does not ask the database each time.
 * Direct-mapped: DIR_CACHE_SLOTS slots, a key hashes to one slot and a new
 * answer replaces the old one there, so the memory is bounded and nothing
 * needs evicting. Found answers live directory.cache_ttl, "not found" ones
 * directory.negative_ttl (60 s and 10 s by default); failures are never
 * kept. Changes: directory_flush, or the lifetimes (docs/directory.md).
 */
#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

#include "../lib/hash.h"
#include "../lib/xalloc.h"
#include "../mail/mail_metrics.h"
#include "directory_int.h"

#define DIR_CACHE_SLOTS		1024

struct dir_cache_slot {
	char		*key;		/* NULL: empty */
	enum dir_kind	 kind;
	uint64_t	 expires;	/* uv_now() */
	struct dir_result r;
};

struct dir_cache {
	uint64_t	 ttl, negative_ttl;	/* ms */
	struct dir_cache_slot slot[DIR_CACHE_SLOTS];
};

struct dir_cache *
dir_cache_new(const struct config *cfg)
{
	struct dir_cache *c = xcalloc(1, sizeof(struct dir_cache));

	c->ttl = (uint64_t)cfg->directory.cache_ttl_ms;
	c->negative_ttl = (uint64_t)cfg->directory.negative_ttl_ms;
	return c;
}

static void
slot_clear(struct dir_cache_slot *s)
{
	free(s->key);
	s->key = NULL;
	dir_result_free(&s->r);
}

void
dir_cache_flush(struct dir_cache *c)
{
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
		slot_clear(&c->slot[i]);
}

void
dir_cache_free(struct dir_cache *c)
{
	dir_cache_flush(c);
	free(c);
}

/* Addresses and domains compare without case: so does the hash. */
static struct dir_cache_slot *
slot_of(struct dir_cache *c, enum dir_kind kind, const char *key)
{
	unsigned h = HASH_FNV_BASIS ^ (unsigned)kind;

	for (; *key; key++)
		h = hash_fnv1a_step(h, (unsigned char)tolower((unsigned char)*key));
	return &c->slot[h % DIR_CACHE_SLOTS];
}

int
dir_cache_get(struct dir_cache *c, uint64_t now, enum dir_kind kind,
    const char *key, struct dir_result *r)
{
	struct dir_cache_slot *s = slot_of(c, kind, key);

	if (s->key == NULL || s->kind != kind || strcasecmp(s->key, key) != 0) {
		metric_inc(mail_metrics_cache(MM_CACHE_MISS));
		return 0;
	}
	if (now >= s->expires) {
		slot_clear(s);
		metric_inc(mail_metrics_cache(MM_CACHE_MISS));
		return 0;
	}
	dir_result_copy(r, &s->r);
	metric_inc(mail_metrics_cache(s->r.status == DIR_OK ? MM_CACHE_HIT :
	    MM_CACHE_NEGATIVE_HIT));
	return 1;
}

void
dir_cache_put(struct dir_cache *c, uint64_t now, enum dir_kind kind,
    const char *key, const struct dir_result *r)
{
	struct dir_cache_slot *s = slot_of(c, kind, key);

	uint64_t ttl = r->status == DIR_OK ? c->ttl : c->negative_ttl;

	if ((r->status != DIR_OK && r->status != DIR_NOTFOUND) || ttl == 0)
		return;
	slot_clear(s);
	s->key = xstrdup(key);
	s->kind = kind;
	s->expires = now + ttl;
	dir_result_copy(&s->r, r);
}

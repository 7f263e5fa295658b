/*
 * fuzz_spf_record: an SPF record as a domain's TXT answer gives it (any
 * bytes, NUL too), read by spf_record_parse and rewritten by
 * spf_record_rewrite (src/net/spf_record*.c). Invariants: the same bytes
 * give the same verdict; a refusal says why; every term lies inside the
 * record with CIDR lengths in range; a rewrite for either family is a
 * record the parser accepts, with no unknown modifier, no ip4:/0 or
 * ip6:/0, no redirect= beside "all", and rewriting it again changes
 * nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/spf_record.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
check_terms(const struct spf_record *r, const char *text, size_t len)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct spf_term *t = &r->terms[i];
		check(t->text >= text && t->text + t->len <= text + len);
		check(t->arg == NULL || (t->arg >= t->text &&
		    t->arg + t->arglen <= t->text + t->len));
		check(t->cidr4 >= SPF_CIDR_NONE && t->cidr4 <= 32);
		check(t->cidr6 >= SPF_CIDR_NONE && t->cidr6 <= 128);
	}
}

/* What spf_record_rewrite promises of its output. */
static void
check_rewritten(const struct spf_record *w)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct spf_term *t = &w->terms[i];
		check(t->kind != SPF_T_UNKNOWN);
		check(!(t->kind == SPF_T_REDIRECT && w->has_all));
		check(!(t->kind == SPF_T_IP4 && t->cidr4 == 0));
		check(!(t->kind == SPF_T_IP6 && t->cidr6 == 0));
	}
}

static void
rewrite_for(const struct spf_record *r, int family)
{
	char why[SPF_RECORD_WHY_MAX];
	struct buf once = BUF_INIT, twice = BUF_INIT;
	struct spf_record w;

	spf_record_rewrite(r, family, &once);
	check(spf_record_parse(once.data, once.len, &w, why) == 0);
	check_rewritten(&w);
	spf_record_rewrite(&w, family, &twice);
	check(twice.len == once.len && memcmp(twice.data, once.data,
	    once.len) == 0);
	spf_record_free(&w);
	buf_free(&once);
	buf_free(&twice);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[SPF_RECORD_WHY_MAX], why2[SPF_RECORD_WHY_MAX];
	const char *text = (const char *)data;
	struct spf_record r, r2;
	int rc = spf_record_parse(text, size, &r, why);

	check(spf_record_parse(text, size, &r2, why2) == rc);
	if (rc < 0) {
		check(why[0] != '\0' && strnlen(why, sizeof(why)) < sizeof(why));
		check(strcmp(why, why2) == 0);
		return 0;
	}
	check(r.n == r2.n);
	check_terms(&r, text, size);
	rewrite_for(&r, 4);
	rewrite_for(&r, 6);
	spf_record_free(&r);
	spf_record_free(&r2);
	return 0;
}

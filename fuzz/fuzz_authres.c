/*
 * fuzz_authres: an Authentication-Results field value, as a client sends
 * it, given to src/mail/authres.c (dkim_verify reads every such field of
 * an incoming message). Invariants: an error has a reason and an offset
 * inside the input; every string lies in the scratch area (the parser never
 * writes past the input's length) and within the bounds; methods, results
 * and property keys are lower-case keywords (a key holds one '.'); the
 * same bytes parse the same; an accepted field written back in a canonical
 * form (every value a quoted-string) parses to the same results.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/buf.h"
#include "../src/mail/authres.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
check_span(struct authres_span s, const char *scratch, size_t n)
{
	if (s.s == NULL) {
		check(s.len == 0);
		return;
	}
	check(s.s >= scratch && s.s + s.len <= scratch + n);
	check(s.len <= AUTHRES_MAX_VALUE);
}

static void
check_keyword(struct authres_span s, size_t dots)
{
	size_t i, seen = 0;

	check(s.s != NULL && s.len > 0);
	for (i = 0; i < s.len; i++) {
		char ch = s.s[i];
		seen += ch == '.';
		check((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.');
	}
	check(seen == dots);
}

static void
check_result(const struct authres_result *r, const char *scratch, size_t n)
{
	size_t i;

	check_span(r->method, scratch, n);
	check_span(r->version, scratch, n);
	check_span(r->result, scratch, n);
	check_span(r->reason, scratch, n);
	check_keyword(r->method, 0);
	check_keyword(r->result, 0);
	check(r->version.len <= AUTHRES_MAX_DIGITS);
	check(r->nprops <= AUTHRES_MAX_PROPS);
	for (i = 0; i < r->nprops; i++) {
		check_span(r->props[i].key, scratch, n);
		check_span(r->props[i].value, scratch, n);
		check_keyword(r->props[i].key, 1);
		check(r->props[i].value.s != NULL);
	}
}

static void
put_quoted(struct buf *b, struct authres_span s)
{
	size_t i;

	buf_appendc(b, '"');
	for (i = 0; i < s.len; i++) {
		if (s.s[i] == '"' || s.s[i] == '\\')
			buf_appendc(b, '\\');
		buf_appendc(b, s.s[i]);
	}
	buf_appendc(b, '"');
}

static void
put_span(struct buf *b, struct authres_span s)
{
	buf_append(b, s.s, s.len);
}

/* The canonical form: folded, commented, every value quoted. */
static void
write_back(struct buf *b, const struct authres *ar)
{
	put_quoted(b, ar->authserv_id);
	if (ar->version.s != NULL)
		buf_appendc(b, ' '), put_span(b, ar->version);
	if (ar->nresults == 0)
		buf_appends(b, "; (nothing)\r\n none");
	for (size_t i = 0; i < ar->nresults; i++) {
		const struct authres_result *r = &ar->results[i];
		buf_appends(b, ";\r\n\t");
		put_span(b, r->method);
		if (r->version.s != NULL)
			buf_appendc(b, '/'), put_span(b, r->version);
		buf_appendc(b, '='), put_span(b, r->result);
		if (r->reason.s != NULL)
			buf_appends(b, " reason="), put_quoted(b, r->reason);
		for (size_t j = 0; j < r->nprops; j++) {
			buf_appends(b, " (c) "), put_span(b, r->props[j].key);
			buf_appendc(b, '='), put_quoted(b, r->props[j].value);
		}
	}
}

static int
same_span(struct authres_span a, struct authres_span b)
{
	return (a.s == NULL) == (b.s == NULL) && a.len == b.len &&
	    (a.len == 0 || memcmp(a.s, b.s, a.len) == 0);
}

static void
check_same(const struct authres *a, const struct authres *b)
{
	check(same_span(a->authserv_id, b->authserv_id));
	check(same_span(a->version, b->version));
	check(a->nresults == b->nresults);
	for (size_t i = 0; i < a->nresults; i++) {
		const struct authres_result *x = &a->results[i];
		const struct authres_result *y = &b->results[i];
		check(same_span(x->method, y->method));
		check(same_span(x->version, y->version));
		check(same_span(x->result, y->result));
		check(same_span(x->reason, y->reason));
		check(x->nprops == y->nprops);
		for (size_t j = 0; j < x->nprops; j++) {
			check(same_span(x->props[j].key, y->props[j].key));
			check(same_span(x->props[j].value, y->props[j].value));
		}
	}
}

static void
check_round_trip(const struct authres *ar)
{
	struct buf b = BUF_INIT;
	static struct authres again;
	char *scratch;

	write_back(&b, ar);
	if (b.len <= AUTHRES_MAX_FIELD) {
		scratch = malloc(b.len);
		check(authres_parse(b.data, b.len, scratch, &again) == 0);
		check_same(ar, &again);
		free(scratch);
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct authres ar, ar2;
	const char *v = (const char *)data;
	/* exactly size bytes, so ASan sees any write past them */
	char *scratch = malloc(size + !size), *scratch2 = malloc(size + !size);
	int rc = authres_parse(v, size, scratch, &ar);

	check(authres_parse(v, size, scratch2, &ar2) == rc);
	if (rc < 0) {
		check(ar.error != NULL && ar.errpos <= size);
		check(ar2.error == ar.error && ar2.errpos == ar.errpos);
		check_span(ar.authserv_id, scratch, size);
	} else {
		check(rc == 0 && ar.error == NULL);
		check(ar.authserv_id.s != NULL);
		check_span(ar.authserv_id, scratch, size);
		check_span(ar.version, scratch, size);
		check(ar.nresults <= AUTHRES_MAX_RESULTS);
		for (size_t i = 0; i < ar.nresults; i++)
			check_result(&ar.results[i], scratch, size);
		check_same(&ar, &ar2);
		check_round_trip(&ar);
	}
	free(scratch);
	free(scratch2);
	return 0;
}

/*
 * fuzz_logparse: log lines read back by `indimail stats`
 * (src/lib/logparse.c). Values in the log carry a peer's bytes, so the
 * input is tried two ways. As a whole line: any bytes are refused or give
 * fields whose keys are [a-z0-9_]+, the first one "event", no more than
 * LOGREC_FIELDS, every value inside the store, which never outgrows the
 * line. As a value: written by log.c's own log_kvn (quoted and escaped as
 * the daemon does) between two other fields, the line parses back to
 * exactly the same bytes, and the fields around it are intact. As a
 * value in the JSON form (log_json.c): the object parses back (jansson,
 * through logparse) with the same fields, and ASCII values exactly. The
 * seeds include JSON lines (json_*), which logparse reads with jansson.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/log.h"
#include "../src/lib/logparse.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
as_line(const char *p, size_t n)
{
	struct logrec r = LOGREC_INIT;

	if (logrec_parse(&r, p, n) == 0) {
		check(r.nf >= 1 && r.nf <= LOGREC_FIELDS);
		check(strcmp(r.f[0].key, "event") == 0);
		check(r.store.len <= n + 2);
		for (size_t i = 0; i < r.nf; i++) {
			check(r.f[i].key[0] != '\0');
			check(strspn(r.f[i].key, "abcdefghijklmnopqrstuvwxyz"
			    "0123456789_") == strlen(r.f[i].key));
			check(r.f[i].val >= r.store.data && r.f[i].val +
			    r.f[i].vlen < r.store.data + r.store.len);
			check(r.f[i].val[r.f[i].vlen] == '\0');
		}
	}
	logrec_free(&r);
}

static void
as_value(const char *p, size_t n)
{
	struct logrec r = LOGREC_INIT;
	struct logline l;

	log_begin(&l, LOG_ERROR, "fuzz");
	log_kv(&l, "before", "x y");
	log_kvn(&l, "v", p, n);
	log_kvi(&l, "after", 42);
	check(logrec_parse(&r, l.b.data, l.b.len) == 0);
	check(r.nf == 4 && strcmp(r.f[2].key, "v") == 0);
	check(r.f[2].vlen == n && memcmp(r.f[2].val, p, n) == 0);
	check(strcmp(logrec_get(&r, "before"), "x y") == 0);
	check(strcmp(logrec_get(&r, "after"), "42") == 0);
	check(strcmp(logrec_get(&r, "event"), "fuzz") == 0);
	buf_free(&l.b);
	logrec_free(&r);
}

static int
ascii(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80 || p[i] == '\0')
			return 0;
	return 1;
}

static void
as_json_value(const char *p, size_t n)
{
	struct logrec r = LOGREC_INIT;
	struct buf json = BUF_INIT;
	struct logline l;

	log_begin(&l, LOG_ERROR, "fuzz");
	log_kv(&l, "before", "x y");
	log_kvn(&l, "v", p, n);
	log_kvi(&l, "after", 42);
	log_json_line(&json, l.b.data, l.b.len, l.head);
	check(memchr(json.data, '\n', json.len) == NULL);
	check(logrec_parse(&r, json.data, json.len) == 0);
	check(r.nf == 4 && strcmp(r.f[2].key, "v") == 0);
	check(!ascii(p, n) || (r.f[2].vlen == n && memcmp(r.f[2].val, p, n) == 0));
	check(strcmp(logrec_get(&r, "before"), "x y") == 0);
	check(strcmp(logrec_get(&r, "after"), "42") == 0);
	check(strcmp(logrec_get(&r, "event"), "fuzz") == 0);
	buf_free(&json);
	buf_free(&l.b);
	logrec_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_line((const char *)data, size);
	as_value((const char *)data, size);
	as_json_value((const char *)data, size);
	return 0;
}

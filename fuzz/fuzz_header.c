/*
 * fuzz_header: a stored message (LF line ends) given to the header walker
 * (src/mail/header.c), as msg:header() and local delivery see it.
 * Invariants: the walk moves forward and stops exactly where header_end()
 * and an independent reference put the empty line; spans stay inside the
 * input, names hold no LF (nor a colon when one follows), every LF in a
 * value starts a fold; a growing message searched in two steps gives the
 * same end; unfolded values hold no LF, no more bytes than the raw ones
 * and no SP or HT at either end; a field's own name and value are counted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/mail/header.h"

#define check(x) do { if (!(x)) abort(); } while (0)

/* The empty line, found line by line: the first LF at a line start. */
static size_t
ref_end(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] == '\n'))
			return i;
	return n;
}

static void
check_field(const char *p, size_t n, const struct header_field *f, size_t pos)
{
	check(f->name >= p && f->name + f->name_len <= p + pos);
	check(memchr(f->name, '\n', f->name_len) == NULL);
	check(!f->colon || (memchr(f->name, ':', f->name_len) == NULL &&
	    f->name[f->name_len] == ':' && f->value == f->name + f->name_len + 1));
	check(f->colon || f->value_len == 0);
	check(!f->colon || f->value + f->value_len <= p + pos);
	for (size_t i = 0; i < f->value_len; i++)
		check(f->value[i] != '\n' || (i + 1 < f->value_len &&
		    (f->value[i + 1] == ' ' || f->value[i + 1] == '\t')));
	check(pos == n || p[pos - 1] == '\n');
}

/* The field is counted by its name, and by its name and value. */
static void
check_count(const char *p, size_t n, const struct header_field *f)
{
	char *name, *val = malloc(f->value_len + 1);
	size_t vl = header_unfold(val, f->value, f->value_len);

	check(vl <= f->value_len && memchr(val, '\n', vl) == NULL);
	check(vl == 0 || (val[0] != ' ' && val[0] != '\t' &&
	    val[vl - 1] != ' ' && val[vl - 1] != '\t'));
	val[vl] = '\0';
	name = strndup(f->name, f->name_len);
	if (f->colon && strlen(name) == f->name_len) {
		size_t all = header_count(p, n, name, NULL);
		check(all >= 1);
		if (strlen(val) == vl)
			check(header_count(p, n, name, val) >= 1);
		check(header_count(p, n, name, val) <= all);
	}
	free(name);
	free(val);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct header_field f;
	size_t pos = 0, last, end, end2, k;
	int found, fields = 0;

	do {
		last = pos;
		if (!header_next(p, size, &pos, &f))
			break;
		check(pos > last && pos <= size);
		check_field(p, size, &f, pos);
		if (fields++ < 8)
			check_count(p, size, &f);
	} while (1);
	found = header_end(p, size, 0, &end);
	check(end == pos && end == ref_end(p, size));
	check(found == (end < size));
	k = size ? (size_t)data[0] % size : 0;	/* a first, shorter look */
	if (!header_end(p, k, 0, &end2)) {
		check(end2 == k);
		check(header_end(p, size, end2, &end2) == found && end2 == end);
	} else
		check(end2 == end);
	return 0;
}

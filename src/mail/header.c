/*
 * header: walks the header section of a message stored with LF line ends.
 * Rules followed (RFC 5322): a field is a name, a colon and a value (2.2);
 * a line starting with SP or HT continues the field above it, and unfolding
 * removes the line break before it (2.2.3); the section ends at the first
 * empty line (2.1). Tolerated on purpose, because peers send it: a line
 * without a colon (a field with colon = 0 and an empty value), spaces
 * before the colon (kept in the name, so it matches no name), CR and NUL
 * bytes (ordinary bytes), no empty line and no final LF (the section then
 * ends with the data), a body-only message (an empty section).
 */
#include <string.h>

#include "header.h"

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : (unsigned char)c;
}

/* Offset of the LF ending the field whose value starts at i (or len). */
static size_t
field_end(const char *p, size_t len, size_t i)
{
	for (; i < len; i++)
		if (p[i] == '\n' && (i + 1 >= len || !is_wsp(p[i + 1])))
			break;
	return i;
}

int
header_next(const char *msg, size_t len, size_t *pos, struct header_field *f)
{
	size_t i = *pos, colon, end;

	if (i >= len || msg[i] == '\n')
		return 0;
	for (colon = i; colon < len && msg[colon] != ':' && msg[colon] != '\n';
	    colon++)
		;
	end = field_end(msg, len, colon);
	f->name = msg + i;
	f->name_len = colon - i;
	f->colon = colon < len && msg[colon] == ':';
	f->value = f->colon ? msg + colon + 1 : "";
	f->value_len = f->colon ? end - colon - 1 : 0;
	*pos = end < len ? end + 1 : len;
	return 1;
}

/* 1 if a[0..n) and b[0..n) differ only in ASCII case. */
static int
same_ci(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

int
header_name_is(const struct header_field *f, const char *name, size_t n)
{
	return f->name_len == n && same_ci(f->name, name, n);
}

/*
 * Drops SP, HT and LF from both ends of v[0..n): the same as dropping SP
 * and HT from both ends of the value once unfolded, as 2.2.3 has it (first
 * unfold, then read the value), so "Subject:\n x" is "x", not " x".
 */
static void
trim(const char **v, size_t *n)
{
	while (*n && (is_wsp(**v) || **v == '\n'))
		(*v)++, (*n)--;
	while (*n && (is_wsp((*v)[*n - 1]) || (*v)[*n - 1] == '\n'))
		(*n)--;
}

size_t
header_unfold(char *dst, const char *v, size_t n)
{
	size_t k = 0;

	trim(&v, &n);
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\n')
			dst[k++] = v[i];
	return k;
}

void
header_value(struct buf *out, const struct header_field *f)
{
	buf_clear(out);
	buf_reserve(out, f->value_len);
	out->len = header_unfold(out->data, f->value, f->value_len);
	out->data[out->len] = '\0';
}

int
header_end(const char *msg, size_t len, size_t from, size_t *end)
{
	const char *p;
	size_t start = from > 0 && from <= len ? from - 1 : 0;

	*end = len;
	if (len == 0)
		return 0;
	if (msg[0] == '\n') {		/* no header at all */
		*end = 0;
		return 1;
	}
	if ((p = memmem(msg + start, len - start, "\n\n", 2)) == NULL)
		return 0;
	*end = (size_t)(p - msg) + 1;
	return 1;
}

/* 1 if the raw value v[0..n), unfolded and trimmed, is want (any case). */
static int
value_is(const char *v, size_t n, const char *want)
{
	size_t k = 0;

	trim(&v, &n);
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\n')
			continue;
		if (want[k] == '\0' || lower(v[i]) != lower(want[k]))
			return 0;
		k++;
	}
	return want[k] == '\0';
}

size_t
header_count(const char *msg, size_t len, const char *name, const char *value)
{
	struct header_field f;
	size_t pos = 0, n = 0, nl = strlen(name);

	while (header_next(msg, len, &pos, &f))
		if (f.colon && header_name_is(&f, name, nl) && (value == NULL ||
		    value_is(f.value, f.value_len, value)))
			n++;
	return n;
}

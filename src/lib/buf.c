/*
 * buf: growable byte buffer. Owns its memory; buf_free releases it.
 * Invariant: data[len] == '\0' whenever data != NULL, so a buffer holding
 * text can be handed to C string functions (it may still contain NULs).
 * Consuming from the front only moves data forward (skip grows); the live
 * bytes move back to the start when the room at the end runs out, and
 * only when that costs no more than what was consumed, so taking a burst
 * of lines off an input buffer one by one is linear, not quadratic.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

/* Moves the live bytes and their NUL to the start of the allocation. */
static void
compact(struct buf *b)
{
	char *base = b->data - b->skip;

	memmove(base, b->data, b->len + 1);
	b->data = base;
	b->cap += b->skip;
	b->skip = 0;
}

/*
 * A larger allocation: at least need bytes and twice the live bytes, so the
 * room left at the end pays for the next move. From 64 bytes, doubling.
 */
static void
grow(struct buf *b, size_t need)
{
	size_t cap = b->skip + b->cap;

	if (b->skip)
		compact(b);	/* realloc then copies live bytes only */
	if (cap == 0)
		cap = 64;
	while (cap < need || cap / 2 < b->len)
		cap *= 2;
	if (cap == b->cap)
		return;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need < b->len)
		panic("buf_reserve: size overflow");
	if (need <= b->cap)
		return;
	if (b->skip >= b->len && need <= b->skip + b->cap)
		compact(b);	/* moves no more than was consumed */
	else
		grow(b, need);
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_appends(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_appendc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t room;
	int n;

	buf_reserve(b, 64);
	room = b->cap - b->len;
	va_copy(ap2, ap);
	n = vsnprintf(b->data + b->len, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		panic("buf_vprintf: bad format");
	if ((size_t)n >= room) {	/* did not fit: grow and format again */
		buf_reserve(b, (size_t)n);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_set(struct buf *b, const void *p, size_t n)
{
	buf_clear(b);
	buf_append(b, p, n);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_clear(b);
		return;
	}
	b->data += n;		/* data[len] stays the NUL */
	b->len -= n;
	b->cap -= n;
	b->skip += n;
}

/* Empty, with all of the allocation as room again (nothing to move). */
void
buf_clear(struct buf *b)
{
	b->len = 0;
	if (b->data == NULL)
		return;
	b->data -= b->skip;
	b->cap += b->skip;
	b->skip = 0;
	b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	if (b->data)
		free(b->data - b->skip);
	b->data = NULL;
	b->len = b->cap = b->skip = 0;
}

void
buf_wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data - b->skip, b->skip + b->cap);
	buf_free(b);
}

const char *
buf_cstr(struct buf *b)
{
	return b->data ? b->data : "";
}

static int
escaped(unsigned char c, const char *also)
{
	return c < 0x20 || c == 0x7f || c == '%' || (c && also &&
	    strchr(also, c) != NULL);
}

size_t
buf_escape(struct buf *b, const char *v, const char *also)
{
	size_t n = 0;

	while (*v) {
		size_t run = 0;
		while (v[run] && !escaped((unsigned char)v[run], also))
			run++;
		if (b && run)
			buf_append(b, v, run);	/* plain bytes in one go */
		n += run;
		v += run;
		if (*v) {
			if (b)
				buf_printf(b, "%%%02X", (unsigned char)*v);
			n += 3;
			v++;
		}
	}
	return n;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : -1;
}

size_t
buf_unescape(char *dst, const char *src, size_t n)
{
	char *o = dst;

	for (size_t i = 0; i < n; i++) {
		if (src[i] == '%' && i + 2 < n && hexval(src[i + 1]) >= 0 &&
		    hexval(src[i + 2]) >= 0) {
			*o++ = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
			i += 2;
		} else
			*o++ = src[i];
	}
	*o = '\0';
	return (size_t)(o - dst);
}

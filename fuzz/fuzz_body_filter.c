/*
 * fuzz_body_filter: msg:filter_body's walk (src/mail/body_filter.c and
 * body_codec.c) on a message a client sent, applied through msg_edit as
 * lua_edit.c does. Input: a mode byte, then the message (LF line ends).
 * Mode bit 2: the filter returns each chunk as a replacement (so every
 * chunk is decoded, re-encoded and replaced); with bit 1 the filter
 * upper-cases ASCII letters. Invariants: chunks are at most
 * BODY_CHUNK_MAX bytes; the header section is kept; no line starting
 * with "--" is added (a filter cannot make a boundary delimiter); the
 * edited message walks again to the same number of filtered parts. Bit 2
 * off: the filter keeps every chunk, and the output is the input.
 * msg:parts()' leaf walk runs on every input too: each leaf's body fits
 * the message, its file name is a string of at most MIME_FILENAME_MAX,
 * and it lists at least the parts the filter walk filtered.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/mail/body_filter.h"
#include "../src/mail/header.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static int mode;

static int
filter(void *arg, const struct body_part *p, const char *chunk, size_t n,
    int last, struct buf *out)
{
	(void)arg, (void)p, (void)last;
	check(n <= BODY_CHUNK_MAX);
	if (!(mode & 4))
		return 0;
	buf_set(out, chunk, n);
	if (mode & 2)
		for (size_t i = 0; i < out->len; i++)
			out->data[i] = (char)toupper((unsigned char)out->data[i]);
	return 1;
}

/* How many lines start with "--". */
static size_t
dash_lines(const char *m, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		const char *lf = memchr(m + i, '\n', len - i);
		size_t e = lf ? (size_t)(lf - m) + 1 : len;
		n += e - i >= 2 && m[i] == '-' && m[i + 1] == '-';
		i = e;
	}
	return n;
}

static void
apply(const struct msg_edit *e, const char *m, size_t len, struct buf *out)
{
	struct msg_piece *p = calloc(MSG_EDIT_PIECES_MAX, sizeof(*p));
	size_t np = msg_edit_pieces(e, m, len, 0, p);

	for (size_t k = 0; k < np; k++)
		buf_append(out, p[k].data, p[k].len);
	free(p);
}

static size_t
walk(const char *m, size_t len)
{
	struct body_filter f;
	size_t parts;
	int saved = mode;

	mode = 0;
	body_filter_init(&f);
	f.fn = filter;
	f.max = 1 << 24;
	check(body_filter_run(&f, m, len) == 0);
	parts = f.parts;
	body_filter_free(&f);
	mode = saved;
	return parts;
}

static void
on_leaf(void *arg, const struct mime_entity *en, size_t body_len, int sealed)
{
	size_t *n = arg;

	(void)sealed;
	check(body_len <= n[1]);
	check(strlen(en->filename) <= MIME_FILENAME_MAX);
	n[0]++;
}

/* The leaf walk of msg:parts(): how many leaves. */
static size_t
leaves(const char *m, size_t len)
{
	struct body_filter f;
	size_t n[2] = { 0, len };

	body_filter_init(&f);
	f.leaf = on_leaf;
	f.arg = n;
	check(body_filter_run(&f, m, len) == 0);
	body_filter_free(&f);
	return n[0];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct body_filter f;
	struct msg_edit e;
	struct buf out = BUF_INIT;
	size_t len, hlen;
	char *m;

	if (size < 1)
		return 0;
	mode = data[0];
	len = size - 1;
	m = malloc(len + 1);
	memcpy(m, data + 1, len);
	if (len > 0 && m[len - 1] != '\n')
		m[len++] = '\n';
	body_filter_init(&f);
	f.fn = filter;
	f.max = 1 << 24;
	msg_edit_init(&e);
	if (body_filter_run(&f, m, len) == 0 &&
	    msg_edit_replace_body(&e, &f.rep, f.max) == NULL) {
		apply(&e, m, len, &out);
		if (!(mode & 4))
			check(out.len == len && (len == 0 ||
			    memcmp(out.data, m, len) == 0));
		header_end(m, len, 0, &hlen);
		check(out.len >= hlen && (hlen == 0 ||
		    memcmp(out.data, m, hlen) == 0));
		check(dash_lines(out.data, out.len) <= dash_lines(m, len));
		check(walk(out.data, out.len) == f.parts);
		check(leaves(m, len) >= f.parts);
	}
	buf_free(&out);
	msg_edit_free(&e);
	body_filter_free(&f);
	free(m);
	return 0;
}

/*
 * fuzz_mime_text: msg:append_text() on a message a client sent: the MIME
 * walk (src/mail/mime_text.c) finds the points, each is rendered and
 * inserted through msg_edit as lua_edit.c does. Input: a flags byte (bit
 * 0: an HTML text too), a length byte and the text, [a length byte and
 * the HTML], then the message (LF line ends, ending with LF). Texts are
 * made printable without '-' so they cannot look like a boundary.
 * Invariants: points inside the message, none in a signed or encrypted
 * one (nor when a top Content-Type says so; then the output is the
 * input); as many lines start with "--" after as before, and each one no
 * insertion falls inside (HTML before "</body") is kept whole; the walk
 * of the output finds as many points and skipped parts as the input's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/mail/header.h"
#include "../src/mail/mime_text.h"
#include "../src/mail/msg_edit.h"

#define check(x) do { if (!(x)) abort(); } while (0)

/* A text of n input bytes: printable, LF and HT kept, no '-'. */
static char *
make_text(const uint8_t **p, size_t *left)
{
	size_t n;
	char *t;

	if (*left < 1 || (n = (*p)[0] % 128 + 1) > *left - 1)
		return NULL;
	t = malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (*p)[1 + i];
		t[i] = c == '\n' || c == '\t' ? (char)c : (char)(32 + c % 95);
		if (t[i] == '-')
			t[i] = '_';
	}
	t[n] = '\0';
	*p += n + 1;
	*left -= n + 1;
	return t;
}

/* The next line starting with "--" in m[*i..len): [*b, *e). */
static int
next_dash(const char *m, size_t len, size_t *i, size_t *b, size_t *e)
{
	while (*i < len) {
		const char *lf = memchr(m + *i, '\n', len - *i);
		*b = *i;
		*e = lf ? (size_t)(lf - m) : len;
		*i = lf ? *e + 1 : len;
		if (*e - *b >= 2 && m[*b] == '-' && m[*b + 1] == '-')
			return 1;
	}
	return 0;
}

/*
 * As many "--" lines out as in, and each one no insertion falls inside
 * (only HTML before a "</body" can) is in the output whole, as a line.
 */
static void
same_dashes(const char *a, size_t an, const struct buf *o,
    const struct msg_edit *e)
{
	size_t i = 0, j = 0, b, end, ob, oe, na = 0, no = 0, at, k;

	while (next_dash(o->data, o->len, &j, &ob, &oe))
		no++;
	while (next_dash(a, an, &i, &b, &end)) {
		na++;
		for (k = 0, at = b; k < e->nins && e->ins[k].off <= end; k++)
			if (e->ins[k].off <= b)
				at += e->ins[k].text.len;
			else
				break;
		if (k < e->nins && e->ins[k].off > b && e->ins[k].off < end)
			continue;
		check(at + end - b <= o->len);
		check(at == 0 || o->data[at - 1] == '\n');
		check(memcmp(o->data + at, a + b, end - b) == 0);
		check(at + end - b == o->len || o->data[at + end - b] == '\n');
	}
	check(na == no);
}

static void
check_points(const struct mime_text *mt, size_t len)
{
	check(mt->n <= MIME_TEXT_POINTS_MAX);
	check(!mt->is_signed || mt->n == 0);
	for (size_t i = 0; i < mt->n; i++)
		check(mt->pt[i].off <= len);
}

/* Does any Content-Type of the top header say signed or encrypted? */
static int
signed_top(const char *m, size_t hlen)
{
	struct header_field f;
	struct buf v = BUF_INIT;
	size_t pos = 0, n;
	int is = 0;

	while (header_next(m, hlen, &pos, &f))
		if (header_name_is(&f, "Content-Type", 12)) {
			header_value(&v, &f);
			n = strcspn(buf_cstr(&v), "; \t");
			is |= (n == 16 && strncasecmp(v.data, "multipart/signed",
			    16) == 0) || (n == 19 && strncasecmp(v.data,
			    "multipart/encrypted", 19) == 0);
		}
	buf_free(&v);
	return is;
}

/* Renders and inserts every point into e, then the whole message out. */
static void
append(const struct mime_text *mt, const char *m, size_t len,
    const char *text, const char *html, struct msg_edit *e, struct buf *out)
{
	struct buf t = BUF_INIT;
	struct msg_piece p[MSG_EDIT_PIECES_MAX];
	size_t np;

	for (size_t i = 0; i < mt->n; i++) {
		buf_clear(&t);
		mime_text_render(&mt->pt[i], m, len, text, html, &t);
		check(msg_edit_insert(e, mt->pt[i].off, t.data, t.len) == NULL);
	}
	np = msg_edit_pieces(e, m, len, 0, p);
	for (size_t k = 0; k < np; k++)
		buf_append(out, p[k].data, p[k].len);
	buf_free(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 1;
	size_t left = size ? size - 1 : 0, len, hlen;
	char *text, *html = NULL, *m;
	struct mime_text mt, mt2;
	struct buf out = BUF_INIT;
	struct msg_edit e;

	if (size < 1 || (text = make_text(&p, &left)) == NULL)
		return 0;
	if ((data[0] & 1) && (html = make_text(&p, &left)) == NULL) {
		free(text);
		return 0;
	}
	m = malloc(left + 1);
	memcpy(m, p, left);
	len = left;
	if (len > 0 && m[len - 1] != '\n')
		m[len++] = '\n';
	header_end(m, len, 0, &hlen);
	if (mime_text_check(text, strlen(text)) == NULL && (html == NULL ||
	    mime_text_check(html, strlen(html)) == NULL)) {
		mime_text_find(m, len, hlen, &mt);
		check_points(&mt, len);
		check(!signed_top(m, hlen) || mt.n == 0);
		msg_edit_init(&e);
		append(&mt, m, len, text, html, &e, &out);
		check(mt.n > 0 || (out.len == len &&
		    (len == 0 || memcmp(out.data, m, len) == 0)));
		same_dashes(m, len, &out, &e);
		msg_edit_free(&e);
		header_end(out.data, out.len, 0, &hlen);
		mime_text_find(out.data, out.len, hlen, &mt2);
		check(mt2.n == mt.n && mt2.skipped == mt.skipped &&
		    mt2.is_signed == mt.is_signed);
	}
	buf_free(&out);
	free(m);
	free(text);
	free(html);
	return 0;
}

/*
 * body_codec: decoded chunks of a text part and the encoders back
 * (body_codec.h). Every chunk ends where the encoding is in a clean state,
 * so what replaces it needs nothing of its neighbours: identity parts cut
 * anywhere (after an LF if one is within BODY_CHUNK_MAX bytes); quoted-
 * printable ones after an encoded line (a hard line end preferred), or, in
 * a line longer than a chunk, between two decoded bytes (never inside =XX
 * or a trailing blank run); base64 ones anywhere in the decoded bytes, the
 * chunk telling which quantum holds its first byte (a replacement starts
 * re-encoding there). Malformed input decodes as mail readers do: a bad
 * "=" is itself, characters outside the base64 alphabet are skipped.
 */
#include <string.h>

#include "body_codec.h"

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
body_reader_init(struct body_reader *r, const char *m, size_t b, size_t e,
    enum mime_cte cte)
{
	memset(r, 0, sizeof(*r));
	r->m = m;
	r->b = r->pos = b;
	r->e = e;
	r->cte = cte;
	buf_reserve(&r->dec, 4);	/* data is never NULL, even empty */
}

void
body_reader_free(struct body_reader *r)
{
	buf_free(&r->dec);
}

/* ---- identity (7bit, 8bit, binary) ------------------------------------ */

static void
next_identity(struct body_reader *r, struct body_chunk *c)
{
	size_t n = r->e - r->pos;
	const char *lf;

	if (n > BODY_CHUNK_MAX) {
		lf = memrchr(r->m + r->pos, '\n', BODY_CHUNK_MAX);
		n = lf ? (size_t)(lf - (r->m + r->pos)) + 1 : BODY_CHUNK_MAX;
	}
	*c = (struct body_chunk){ r->m + r->pos, n, r->pos, r->pos + n, 0,
	    r->pos + n == r->e };
}

/* ---- quoted-printable ------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The end of the blank run at m[i..e). */
static size_t
blanks(const char *m, size_t i, size_t e)
{
	while (i < e && (m[i] == ' ' || m[i] == '\t'))
		i++;
	return i;
}

/* How a decoded line ended. */
enum qp_end { QP_ROOM, QP_HARD, QP_SOFT };

/* One "=": an escape, a soft break (2 out), or itself. Returns the next i. */
static size_t
qp_equals(const char *m, size_t i, size_t e, struct buf *out, int *soft)
{
	size_t j = blanks(m, i + 1, e);

	if (i + 2 < e && hexval(m[i + 1]) >= 0 && hexval(m[i + 2]) >= 0) {
		buf_appendc(out, (char)(hexval(m[i + 1]) * 16 + hexval(m[i + 2])));
		return i + 3;
	}
	if (j == e || m[j] == '\n') {
		*soft = 1;
		return j < e ? j + 1 : e;
	}
	buf_appendc(out, '=');
	return i + 1;
}

/*
 * Decodes the encoded line at m[*i..e) into out, as long as out stays
 * within max bytes. *i: where it stopped. Returns how the line ended
 * (QP_ROOM: out is full, the line goes on at *i).
 */
static enum qp_end
qp_line(const char *m, size_t *i, size_t e, struct buf *out, size_t max)
{
	int soft = 0;

	while (*i < e && out->len < max) {
		size_t j;
		if (m[*i] == '\n') {
			buf_appendc(out, '\n');
			(*i)++;
			return QP_HARD;
		}
		if (m[*i] == '=') {
			*i = qp_equals(m, *i, e, out, &soft);
			if (soft)
				return QP_SOFT;
			continue;
		}
		if ((j = blanks(m, *i, e)) > *i) {	/* trailing: dropped */
			if (j == e || m[j] == '\n')
				*i = j;
			else
				for (; *i < j && out->len < max; (*i)++)
					buf_appendc(out, m[*i]);
			continue;
		}
		buf_appendc(out, m[(*i)++]);
	}
	return *i == e ? QP_HARD : QP_ROOM;
}

/* Encoded and decoded ends of a chunk candidate. */
struct qp_cut {
	size_t	 pos, len;
	int	 set;
};

static void
next_qp(struct body_reader *r, struct body_chunk *c)
{
	struct qp_cut hard = { 0 }, any = { 0 };
	size_t i = r->pos;
	enum qp_end how = QP_HARD;

	buf_clear(&r->dec);
	while (i < r->e) {
		if ((how = qp_line(r->m, &i, r->e, &r->dec, BODY_CHUNK_MAX)) ==
		    QP_ROOM) {
			struct qp_cut *cut = hard.set ? &hard : any.set ? &any : NULL;
			if (cut != NULL) {
				i = cut->pos;
				r->dec.len = cut->len;
			}
			break;
		}
		any = (struct qp_cut){ i, r->dec.len, 1 };
		if (how == QP_HARD)
			hard = any;
	}
	*c = (struct body_chunk){ r->dec.data, r->dec.len, r->pos, i, 0,
	    i == r->e };
}

/* ---- base64 ------------------------------------------------------------ */

/*
 * Reads the quantum at m[*i..e): its bytes into out (0 to 3). Returns 0
 * when the data ended in it (padding, or the end of the part).
 */
static int
b64_quantum(const char *m, size_t *i, size_t e, struct buf *out)
{
	unsigned v = 0, k = 0;
	const char *p;

	while (*i < e && k < 4) {
		char ch = m[(*i)++];
		if (ch == '=') {
			*i = e;		/* padding: the data ends here */
			break;
		}
		if (ch == '\0' || (p = strchr(B64, ch)) == NULL)
			continue;
		v = v << 6 | (unsigned)(p - B64);
		k++;
	}
	v <<= 6 * (4 - k);
	for (unsigned b = 0; b + 1 < k; b++)
		buf_appendc(out, (char)(v >> (16 - 8 * b) & 0xff));
	return k == 4 && *i < e;
}

/* Skips n quanta from i; returns where the next one starts. */
static size_t
b64_skip(const char *m, size_t i, size_t e, size_t n)
{
	struct buf none = BUF_INIT;

	for (size_t q = 0; q < n && i < e; q++) {
		buf_clear(&none);
		b64_quantum(m, &i, e, &none);
	}
	buf_free(&none);
	return i;
}

static void
next_b64(struct body_reader *r, struct body_chunk *c)
{
	size_t i = r->pos, n;
	int more = 1;
	const char *lf;

	buf_clear(&r->dec);
	while (more && r->dec.len - r->skip < BODY_CHUNK_MAX)
		more = b64_quantum(r->m, &i, r->e, &r->dec);
	n = r->dec.len - r->skip;
	if (more || n > BODY_CHUNK_MAX) {
		if (n > BODY_CHUNK_MAX)
			n = BODY_CHUNK_MAX;
		lf = memrchr(r->dec.data + r->skip, '\n', n);
		n = lf ? (size_t)(lf - (r->dec.data + r->skip)) + 1 : n;
		more = 1;
	}
	*c = (struct body_chunk){ r->dec.data + r->skip, n, r->pos, r->e,
	    r->skip, !more };
	if (more) {
		c->to = b64_skip(r->m, r->pos, r->e, (r->skip + n) / 3);
		r->skip = (r->skip + n) % 3;
	}
}

int
body_reader_next(struct body_reader *r, struct body_chunk *c)
{
	if (r->done)
		return 0;
	switch (r->cte) {
	case MIME_CTE_QP:
		next_qp(r, c);
		break;
	case MIME_CTE_BASE64:
		next_b64(r, c);
		break;
	default:
		next_identity(r, c);
	}
	r->pos = c->to;
	r->done = c->last;
	return 1;
}

/* ---- encoders ---------------------------------------------------------- */

/* Does byte i of t[0..n) need =XX at column col? */
static int
qp_escape(const char *t, size_t n, size_t i, size_t col)
{
	unsigned char c = (unsigned char)t[i];

	if (c == ' ' || c == '\t')
		return i + 1 == n || t[i + 1] == '\n';
	if (c == '-' && col == 0)
		return 1;
	return c == '=' || c < 32 || c > 126;
}

void
body_qp_encode(struct buf *out, const char *t, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		int enc;
		if (t[i] == '\n') {
			buf_appendc(out, '\n');
			col = 0;
			continue;
		}
		enc = qp_escape(t, n, i, col);
		if (col + (enc ? 3 : 1) > BODY_LINE_ENCODED - 1) {
			buf_appends(out, "=\n");
			col = 0;
			enc = qp_escape(t, n, i, col);
		}
		if (enc)
			buf_printf(out, "=%02X", (unsigned char)t[i]);
		else
			buf_appendc(out, t[i]);
		col += enc ? 3 : 1;
	}
}

/* Four characters for the group g[0..3) (n of them real). */
static void
b64_group(struct body_b64 *b, struct buf *out, const unsigned char *g,
    size_t n)
{
	unsigned v = (unsigned)g[0] << 16 | (unsigned)(n > 1 ? g[1] : 0) << 8 |
	    (n > 2 ? g[2] : 0);
	char q[4];

	for (int k = 0; k < 4; k++)
		q[k] = (size_t)k <= n ? B64[v >> (18 - 6 * k) & 63] : '=';
	if (b->col + 4 > BODY_LINE_ENCODED) {
		buf_appendc(out, '\n');
		b->col = 0;
	}
	buf_append(out, q, 4);
	b->col += 4;
}

void
body_b64_feed(struct body_b64 *b, struct buf *out, const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		b->tail[b->ntail++] = (unsigned char)t[i];
		if (b->ntail == 3) {
			b64_group(b, out, b->tail, 3);
			b->ntail = 0;
		}
	}
}

void
body_b64_end(struct body_b64 *b, struct buf *out)
{
	if (b->ntail)
		b64_group(b, out, b->tail, b->ntail);
	b->ntail = 0;
	if (b->col)
		buf_appendc(out, '\n');
	b->col = 0;
}

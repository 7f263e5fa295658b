/*
 * mime_text: finds where an appended text goes in a MIME message and
 * renders it for the part (mime_text.h). A line-level walk is enough for
 * what it handles: a part's body ends at the LF before the next boundary
 * line (RFC 2046 5.1.1: that LF belongs to the delimiter), so a text
 * inserted just before it lands at the end of the part, and no boundary,
 * header or other part is rewritten. Parts in base64 or an unknown
 * encoding are skipped (counted), never re-encoded.
 */
#include <string.h>
#include <strings.h>

#include "header.h"
#include "mime_text.h"

#define DEPTH_MAX	MIME_DEPTH_MAX

/* One walk: the message and what it found. */
struct walk {
	const char	*m;
	size_t		 len;
	struct mime_text *out;
};

static void scan(const struct walk *, size_t, size_t, int);

const char *
mime_text_check(const char *t, size_t n)
{
	size_t line = 0;

	if (n == 0 || n > MIME_TEXT_MAX)
		return "the text must be 1 to 8192 bytes";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '\n') {
			line = 0;
			continue;
		}
		if ((c < 32 && c != '\t') || c > 126)
			return "the text must be printable ASCII, tabs and LFs "
			    "(no CR)";
		if (++line > 900)
			return "a line of the text is at most 900 bytes";
	}
	return NULL;
}

/* The value of parameter name in a Content-Type value, or "". */
static void
param(const char *v, const char *name, char *out, size_t max)
{
	size_t nl = strlen(name), n = 0;
	const char *p = v;

	out[0] = '\0';
	while ((p = strchr(p, ';')) != NULL) {
		p += 1 + strspn(p + 1, " \t");
		if (strncasecmp(p, name, nl) != 0 || p[nl] != '=')
			continue;
		p += nl + 1;
		if (*p == '"')
			for (p++; *p && *p != '"' && n < max; p++)
				out[n++] = *p;
		else
			for (; *p && !strchr("; \t", *p) && n < max; p++)
				out[n++] = *p;
		out[n] = '\0';
		return;
	}
}

static void
read_type(struct mime_entity *en, const char *v)
{
	size_t n = strcspn(v, "; \t");

	if (n >= sizeof(en->type))
		n = sizeof(en->type) - 1;
	for (size_t i = 0; i < n; i++)
		en->type[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
	en->type[n] = '\0';
	/* Any of several Content-Type fields: a reader may take that one. */
	en->sealed |= strcmp(en->type, "multipart/signed") == 0 ||
	    strcmp(en->type, "multipart/encrypted") == 0;
	param(v, "boundary", en->boundary, MIME_BOUNDARY_MAX);
	param(v, "charset", en->charset, sizeof(en->charset) - 1);
}

static void
read_cte(struct mime_entity *en, const char *v)
{
	static const char *const names[] = { "7bit", "8bit", "binary",
	    "quoted-printable", "base64" };

	en->cte = *v ? MIME_CTE_UNKNOWN : MIME_CTE_7BIT;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(v, names[i]) == 0)
			en->cte = (enum mime_cte)i;
	en->qp = en->cte == MIME_CTE_QP;
	en->opaque = en->cte == MIME_CTE_BASE64 || en->cte == MIME_CTE_UNKNOWN;
}

/*
 * The file name of an attachment: Content-Disposition's filename (RFC
 * 2183), else Content-Type's name; an RFC 2231 "filename*=charset''x"
 * gives x as written (percent escapes kept). Encoded words stay encoded.
 */
static void
read_filename(struct mime_entity *en, const char *v, int disposition)
{
	char f[MIME_FILENAME_MAX + 1];
	const char *q;

	if (!disposition) {
		if (!en->from_disposition)
			param(v, "name", en->filename, MIME_FILENAME_MAX);
		return;
	}
	param(v, "filename", f, MIME_FILENAME_MAX);
	if (f[0] == '\0') {
		param(v, "filename*", f, MIME_FILENAME_MAX);
		if ((q = strstr(f, "''")) != NULL)
			memmove(f, q + 2, strlen(q + 2) + 1);
	}
	if (f[0] != '\0') {
		memcpy(en->filename, f, sizeof(f));
		en->from_disposition = 1;
	}
}

void
mime_entity_read(const char *h, size_t n, struct mime_entity *en)
{
	struct header_field f;
	struct buf v = BUF_INIT;
	size_t pos = 0;

	memset(en, 0, sizeof(*en));
	strcpy(en->type, "text/plain");		/* RFC 2045 5.2 */
	while (header_next(h, n, &pos, &f)) {
		if (header_name_is(&f, "Content-Type", 12)) {
			header_value(&v, &f);
			read_type(en, buf_cstr(&v));
			read_filename(en, buf_cstr(&v), 0);
		} else if (header_name_is(&f, "Content-Disposition", 19)) {
			header_value(&v, &f);
			read_filename(en, buf_cstr(&v), 1);
		} else if (header_name_is(&f, "Content-Transfer-Encoding", 25)) {
			header_value(&v, &f);
			read_cte(en, buf_cstr(&v));
		}
	}
	buf_free(&v);
}

static void
add_point(struct mime_text *out, size_t off, enum mime_part kind,
    enum mime_where where, int qp)
{
	if (out->n < MIME_TEXT_POINTS_MAX)
		out->pt[out->n++] = (struct mime_point){ off, kind, where, qp };
}

/* Does the line holding m[i] (lines of m[b..)) start with "--"? */
static int
dash_line(const char *m, size_t b, size_t i)
{
	while (i > b && m[i - 1] != '\n')
		i--;
	return m[i] == '-' && m[i + 1] == '-';
}

/*
 * The last "</body" in m[b..e), or e. Not one on a line starting with
 * "--": a text starting with blanks put before it would make that line
 * a boundary delimiter.
 */
static size_t
body_tag(const char *m, size_t b, size_t e)
{
	for (size_t i = e; i-- > b;)
		if (e - i >= 6 && strncasecmp(m + i, "</body", 6) == 0 &&
		    !dash_line(m, b, i))
			return i;
	return e;
}

/* A text part m[b..e) (its body): its point. */
static void
text_part(const struct walk *w, size_t b, size_t e,
    const struct mime_entity *en)
{
	int html = strcmp(en->type, "text/html") == 0;
	size_t at = html ? body_tag(w->m, b, e) : e;

	if (en->opaque || b > e) {
		w->out->skipped++;
		return;
	}
	add_point(w->out, at, html ? MIME_PART_HTML : MIME_PART_PLAIN,
	    at < e ? MIME_BEFORE_BODY_TAG : e == w->len ? MIME_AT_END :
	    MIME_BEFORE_DELIMITER, en->qp);
}

int
mime_delimiter(const char *m, size_t i, size_t e, const char *bd, size_t bl)
{
	size_t j = i + 2 + bl;

	if (e - i < 2 + bl || m[i] != '-' || m[i + 1] != '-' ||
	    memcmp(m + i + 2, bd, bl) != 0)
		return 0;
	if (j + 1 < e && m[j] == '-' && m[j + 1] == '-')
		return 2;
	while (j < e && (m[j] == ' ' || m[j] == '\t'))
		j++;
	return j == e || m[j] == '\n' ? 1 : 0;
}

size_t
mime_next_line(const char *m, size_t i, size_t e)
{
	const char *lf = memchr(m + i, '\n', e - i);

	return lf ? (size_t)(lf - m) + 1 : e;
}

/* The parts of a multipart body m[b..e): all (alternative) or the first. */
static void
multipart(const struct walk *w, size_t b, size_t e,
    const struct mime_entity *en, int depth, int all)
{
	const char *m = w->m;
	size_t bl = strlen(en->boundary), part = 0, nparts = 0;
	int d;

	for (size_t i = b; i < e; i = mime_next_line(m, i, e)) {
		if ((d = mime_delimiter(m, i, e, en->boundary, bl)) == 0)
			continue;
		if (nparts && (all || nparts == 1))
			scan(w, part, i > part && m[i - 1] == '\n' ? i - 1 : i,
			    depth + 1);
		if (d == 2 || (!all && nparts == 1))
			return;
		part = mime_next_line(m, i, e);
		nparts++;
	}
	if (nparts && (all || nparts == 1))
		scan(w, part, e, depth + 1);
}

/* The entity m[b..e): header, then its body by type. */
static void
scan(const struct walk *w, size_t b, size_t e, int depth)
{
	struct mime_entity en;
	size_t hend;
	int found = header_end(w->m + b, e - b, 0, &hend);

	mime_entity_read(w->m + b, hend, &en);
	hend = b + hend + (found ? 1 : 0);	/* the body's start */
	if (en.sealed)
		w->out->is_signed = 1;
	else if (strncmp(en.type, "multipart/", 10) == 0 && en.boundary[0] &&
	    depth < DEPTH_MAX)
		multipart(w, hend, e, &en, depth,
		    strcmp(en.type, "multipart/alternative") == 0);
	else if (strcmp(en.type, "text/plain") == 0 ||
	    strcmp(en.type, "text/html") == 0)
		text_part(w, found ? hend : e + 1, e, &en);
}

void
mime_text_find(const char *m, size_t len, size_t hlen, struct mime_text *out)
{
	struct walk w;

	(void)hlen;	/* scan finds it again, as for every part */
	memset(out, 0, sizeof(*out));
	if (len == 0)	/* an empty message: no part, and m may be NULL */
		return;
	w = (struct walk){ m, len, out };
	scan(&w, 0, len, 0);
	if (out->is_signed)
		out->n = 0;
}

/* Appends t[0..n) quoted-printable (RFC 2045 6.7): =, trailing blanks,
 * lines over 76 with soft breaks. t is printable ASCII, HT and LF. */
static void
qp_encode(struct buf *out, const char *t, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		int last = i + 1 == n || t[i + 1] == '\n';
		int enc = c == '=' || ((c == ' ' || c == '\t') && last);
		if (c == '\n') {
			buf_appendc(out, '\n');
			col = 0;
			continue;
		}
		if (col + (enc ? 3 : 1) > 75) {
			buf_appends(out, "=\n");
			col = 0;
		}
		if (enc)
			buf_printf(out, "=%02X", (unsigned char)c);
		else
			buf_appendc(out, c);
		col += enc ? 3 : 1;
	}
}

/* The text as HTML: &, <, >, " escaped, each line ending <br>. */
static void
html_escape(struct buf *out, const char *t)
{
	for (; *t; t++)
		switch (*t) {
		case '&': buf_appends(out, "&amp;"); break;
		case '<': buf_appends(out, "&lt;"); break;
		case '>': buf_appends(out, "&gt;"); break;
		case '"': buf_appends(out, "&quot;"); break;
		case '\n': buf_appends(out, "<br>\n"); break;
		default: buf_appendc(out, *t);
		}
}

/* Does the quoted-printable line before p end with a soft break? */
static int
soft_break_before(const struct mime_point *p, const char *m)
{
	size_t i = p->off;

	if (p->where == MIME_AT_END && i > 0 && m[i - 1] == '\n')
		i--;
	return i > 0 && m[i - 1] == '=';
}

void
mime_text_render(const struct mime_point *p, const char *m, size_t len,
    const char *text, const char *html, struct buf *out)
{
	struct buf t = BUF_INIT;
	size_t n;

	if (p->kind == MIME_PART_HTML && html == NULL)
		html_escape(&t, text);
	else
		buf_appends(&t, p->kind == MIME_PART_HTML ? html : text);
	for (n = t.len; n > 0 && t.data[n - 1] == '\n'; n--)
		;
	if (p->qp && soft_break_before(p, m))	/* "=" LF would join us */
		buf_appendc(out, '\n');
	if (p->where == MIME_BEFORE_DELIMITER ||
	    (p->where == MIME_AT_END && len > 0 && m[len - 1] != '\n'))
		buf_appendc(out, '\n');
	if (p->qp)
		qp_encode(out, t.data, n);
	else
		buf_append(out, t.data, n);
	if (p->where != MIME_BEFORE_DELIMITER)
		buf_appendc(out, '\n');
	buf_free(&t);
}

/*
 * body_filter: the walk behind msg:filter_body (body_filter.h). Each
 * chunk's replacement goes back in the part's encoding, so the MIME
 * structure stays as received:
 *   7bit, 8bit, binary  as is, after checks (no NUL or bare CR, 7bit only
 *                       ASCII, lines of at most 998; no line that is a
 *                       delimiter of an enclosing multipart, and a chunk
 *                       that ended a line still ends one);
 *   quoted-printable    encoded (body_qp_encode: lines of 76, no line
 *                       starting with '-'); a replacement that does not
 *                       end a line ends with a soft break;
 *   base64              from the quantum of the first changed chunk to
 *                       the part's end, re-encoded (kept chunks after it
 *                       too: a length change shifts every later quantum).
 * A 7bit part whose replacement holds 8-bit bytes is refused rather than
 * switched to quoted-printable: the chunks kept before it were passed on
 * as they are and are not valid quoted-printable in general.
 */
#include <string.h>
#include <strings.h>

#include "header.h"
#include "body_filter.h"

/* One part being filtered. */
struct part_run {
	struct body_part p;
	size_t		 b, e;
	int		 open;		/* base64: re-encoding since open_at */
	size_t		 open_at;
	struct body_b64	 b64;
	int		 changed;
};

void
body_filter_init(struct body_filter *f)
{
	memset(f, 0, sizeof(*f));
}

void
body_filter_free(struct body_filter *f)
{
	msg_replaces_free(&f->rep);
	buf_free(&f->err);
	buf_free(&f->out);
	buf_free(&f->enc);
}

static int
fail(struct body_filter *f, const char *why)
{
	buf_clear(&f->err);
	buf_appends(&f->err, why);
	return -1;
}

static int
add_range(struct body_filter *f, size_t off, size_t len)
{
	const char *err = msg_replaces_add(&f->rep, off, len, f->enc.data,
	    f->enc.len, f->max);

	return err ? fail(f, err) : 0;
}

/* Drops each CR that comes right before an LF in f->out. */
static void
crlf_to_lf(struct buf *b)
{
	size_t k = 0;

	for (size_t i = 0; i < b->len; i++)
		if (!(b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n'))
			b->data[k++] = b->data[i];
	b->len = k;
}

/* Is the line l[0..n) (a whole one: full; else its start) a delimiter of
 * an enclosing multipart, or could it become one? */
static int
is_delimiter(const struct body_filter *f, const char *l, size_t n, int full)
{
	for (size_t k = 0; k < f->nbounds; k++) {
		size_t bl = strlen(f->bounds[k]);
		if (n >= 2 + bl && l[0] == '-' && l[1] == '-' &&
		    memcmp(l + 2, f->bounds[k], bl) == 0)
			return 1;
		if (!full && n < 2 + bl && n > 0 && memcmp(l, "--", n < 2 ? n : 2)
		    == 0 && (n <= 2 || memcmp(l + 2, f->bounds[k], n - 2) == 0))
			return 1;
	}
	return 0;
}

/* A byte an identity part may not take, or NULL. */
static const char *
bad_byte(unsigned char c, enum mime_cte cte)
{
	if (cte == MIME_CTE_BINARY)
		return NULL;
	if (c == '\0')
		return "a replacement may not hold a NUL byte (7bit/8bit part)";
	if (c == '\r')
		return "a replacement may not hold a CR but before an LF";
	if (c > 127 && cte == MIME_CTE_7BIT)
		return "a replacement for a 7bit part must be ASCII (the part's "
		    "Content-Transfer-Encoding is kept)";
	return NULL;
}

/* Checks the replacement f->out of chunk c of an identity part. */
static int
check_identity(struct body_filter *f, const struct part_run *pr,
    const struct body_chunk *c)
{
	const char *t = f->out.data, *why;
	size_t n = f->out.len, start = 0;

	if (!c->last && c->len && c->data[c->len - 1] == '\n' && n &&
	    t[n - 1] != '\n')
		return fail(f, "the replacement of a chunk that ends a line must "
		    "end with an LF too (7bit/8bit part)");
	for (size_t i = 0; i <= n; i++) {
		if (i < n && t[i] != '\n') {
			if ((why = bad_byte((unsigned char)t[i], pr->p.cte)))
				return fail(f, why);
			continue;
		}
		if (i - start > BODY_LINE_MAX && pr->p.cte != MIME_CTE_BINARY)
			return fail(f, "a line of a replacement is at most 998 "
			    "bytes (7bit/8bit part)");
		if (is_delimiter(f, t + start, i - start, i < n || c->last ||
		    (c->len && c->data[c->len - 1] == '\n')))
			return fail(f, "a replacement may not hold a boundary "
			    "line of the message");
		start = i + 1;
	}
	return 0;
}

/* Is offset i of the message inside a line (not at the part's start)? */
static int
mid_line(const struct body_filter *f, const struct part_run *pr, size_t i)
{
	return i > pr->b && f->m[i - 1] != '\n';
}

static int
replace_qp(struct body_filter *f, const struct part_run *pr,
    const struct body_chunk *c)
{
	const struct buf *o = &f->out;

	buf_clear(&f->enc);
	if (mid_line(f, pr, c->from) && o->len)
		buf_appends(&f->enc, "=\n");
	body_qp_encode(&f->enc, o->data, o->len);
	if (!c->last && o->len && o->data[o->len - 1] != '\n')
		buf_appends(&f->enc, "=\n");
	return add_range(f, c->from, c->to - c->from);
}

/* A base64 part: from the first replaced chunk on, all is re-encoded. */
static int
chunk_b64(struct body_filter *f, struct part_run *pr,
    const struct body_chunk *c, int rep)
{
	if (!pr->open && !rep)
		return 0;
	if (!pr->open) {
		pr->open = 1;
		pr->open_at = c->from;
		buf_clear(&f->enc);
		if (mid_line(f, pr, c->from))
			buf_appendc(&f->enc, '\n');
		body_b64_feed(&pr->b64, &f->enc, c->data - c->npre, c->npre);
	}
	if (rep)
		body_b64_feed(&pr->b64, &f->enc, f->out.data, f->out.len);
	else
		body_b64_feed(&pr->b64, &f->enc, c->data, c->len);
	if (f->rep.bytes + f->enc.len > f->max)
		return fail(f, "the body filter's replacements would pass the "
		    "message size limit (limits.message_size)");
	if (!c->last)
		return 0;
	body_b64_end(&pr->b64, &f->enc);
	return add_range(f, pr->open_at, pr->e - pr->open_at);
}

static int
one_chunk(struct body_filter *f, struct part_run *pr,
    const struct body_chunk *c)
{
	int rep;

	buf_clear(&f->out);
	if ((rep = f->fn(f->arg, &pr->p, c->data, c->len, c->last, &f->out)) < 0)
		return -1;
	if (rep) {
		crlf_to_lf(&f->out);
		pr->changed = 1;
	}
	if (pr->p.cte == MIME_CTE_BASE64)
		return chunk_b64(f, pr, c, rep);
	if (!rep)
		return 0;
	if (pr->p.cte == MIME_CTE_QP)
		return replace_qp(f, pr, c);
	if (check_identity(f, pr, c) < 0)
		return -1;
	buf_set(&f->enc, f->out.data, f->out.len);
	return add_range(f, c->from, c->to - c->from);
}

/* The text part en with body m[b..e). */
static int
filter_part(struct body_filter *f, const struct mime_entity *en, size_t b,
    size_t e)
{
	struct part_run pr = { .b = b, .e = e };
	struct body_reader r;
	struct body_chunk c;
	int rc = 0;

	pr.p = (struct body_part){ en->type, en->charset, (int)++f->parts,
	    en->cte };
	body_reader_init(&r, f->m, b, e, en->cte);
	while (rc == 0 && body_reader_next(&r, &c))
		rc = one_chunk(f, &pr, &c);
	body_reader_free(&r);
	f->changed += pr.changed;
	return rc;
}

static int
wanted(const struct body_filter *f, const char *type)
{
	if (f->ntypes == 0)
		return strcmp(type, "text/plain") == 0 ||
		    strcmp(type, "text/html") == 0;
	for (size_t i = 0; i < f->ntypes; i++)
		if (strcasecmp(type, f->types[i]) == 0)
			return 1;
	return 0;
}

static int walk(struct body_filter *, size_t, size_t, int);

/* Every part of the multipart body m[b..e) with boundary en->boundary. */
static int
parts(struct body_filter *f, size_t b, size_t e, const struct mime_entity *en,
    int depth)
{
	const char *m = f->m;
	size_t bl = strlen(en->boundary), part = 0, n = 0, i;
	int d = 0, rc = 0;

	f->bounds[f->nbounds++] = en->boundary;
	for (i = b; rc == 0 && i < e; i = mime_next_line(m, i, e)) {
		if ((d = mime_delimiter(m, i, e, en->boundary, bl)) == 0)
			continue;
		if (n)
			rc = walk(f, part, i > part && m[i - 1] == '\n' ? i - 1 : i,
			    depth + 1);
		if (d == 2)
			break;
		part = mime_next_line(m, i, e);
		n++;
	}
	if (rc == 0 && d != 2 && n)
		rc = walk(f, part, e, depth + 1);
	f->nbounds--;
	return rc;
}

/* A multipart's parts, counting the signed/encrypted ones around. */
static int
sealed_parts(struct body_filter *f, size_t b, size_t e,
    const struct mime_entity *en, int depth)
{
	int rc;

	f->in_sealed += en->sealed;
	rc = parts(f, b, e, en, depth);
	f->in_sealed -= en->sealed;
	return rc;
}

/* The entity m[b..e): its header, then its body by type. */
static int
walk(struct body_filter *f, size_t b, size_t e, int depth)
{
	struct mime_entity en;
	size_t hend;
	int found = header_end(f->m + b, e - b, 0, &hend);

	mime_entity_read(f->m + b, hend, &en);
	hend = b + hend + (found ? 1 : 0);
	if (hend > e)
		hend = e;
	if (en.sealed && f->leaf == NULL) {
		f->sealed++;
		return 0;
	}
	if (strncmp(en.type, "multipart/", 10) == 0 && en.boundary[0] &&
	    depth < MIME_DEPTH_MAX)
		return sealed_parts(f, hend, e, &en, depth);
	if (f->leaf) {
		f->leaf(f->arg, &en, e - hend, f->in_sealed > 0);
		return 0;
	}
	if (found && wanted(f, en.type) && en.cte != MIME_CTE_UNKNOWN)
		return filter_part(f, &en, hend, e);
	return 0;
}

int
body_filter_run(struct body_filter *f, const char *m, size_t len)
{
	f->m = m;
	f->len = len;
	if (len == 0)
		return 0;
	return walk(f, 0, len, 0);
}

/*
 * smtp_data: end-of-data detection and dot-unstuffing. States name where
 * we are in the current line; "clean" line starts are those reached through
 * a real CRLF, and only they can begin the terminating ".".
 */
#include <string.h>

#include "smtp_data.h"

enum {
	ST_START_CLEAN,	/* line start after CRLF (or right after DATA) */
	ST_START_DIRTY,	/* line start after a bare LF */
	ST_DOT,		/* clean line start, saw '.' */
	ST_DOT_CR,	/* clean line start, saw ".\r" */
	ST_LINE,	/* inside a line */
	ST_CR,		/* inside a line, saw '\r' */
};

void
smtp_data_init(struct smtp_data *d, size_t max_line, size_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->state = ST_START_CLEAN;
	d->max_line = max_line;
	d->max_size = max_size;
}

static void
put(struct smtp_data *d, struct buf *out, char c)
{
	if (d->max_size && out->len >= d->max_size) {
		d->flags |= SMTP_DATA_TOO_BIG;
		return;
	}
	buf_appendc(out, c);
}

/* An ordinary byte inside a line. */
static void
line_byte(struct smtp_data *d, struct buf *out, char c)
{
	if (c == '\0')
		d->flags |= SMTP_DATA_NUL;
	if (++d->line_len + 2 > d->max_line && d->max_line)
		d->flags |= SMTP_DATA_LONG_LINE;
	put(d, out, c);
	d->state = ST_LINE;
}

static void
end_line(struct smtp_data *d, struct buf *out, int clean)
{
	put(d, out, '\n');
	d->line_len = 0;
	d->state = clean ? ST_START_CLEAN : ST_START_DIRTY;
}

/* Length of the run of bytes before the first CR, LF or NUL of p[0..n). */
static size_t
ordinary_run(const char *p, size_t n)
{
	const char *stop;

	if ((stop = memchr(p, '\r', n)) != NULL)	/* memchr: word/SIMD */
		n = (size_t)(stop - p);			/* wide, not bytewise */
	if ((stop = memchr(p, '\n', n)) != NULL)
		n = (size_t)(stop - p);
	if ((stop = memchr(p, '\0', n)) != NULL)
		n = (size_t)(stop - p);
	return n;
}

/* Fast path: copy a run of ordinary bytes inside a line. */
static size_t
line_run(struct smtp_data *d, const char *p, size_t n, struct buf *out)
{
	size_t k = ordinary_run(p, n);

	if (k == 0)
		return 0;
	d->line_len += k;
	if (d->max_line && d->line_len + 2 > d->max_line)
		d->flags |= SMTP_DATA_LONG_LINE;
	if (d->max_size && out->len + k > d->max_size) {
		d->flags |= SMTP_DATA_TOO_BIG;
		if (out->len < d->max_size)
			buf_append(out, p, d->max_size - out->len);
	} else
		buf_append(out, p, k);
	return k;
}

static void
step(struct smtp_data *d, char c, struct buf *out)
{
	switch (d->state) {
	case ST_START_CLEAN:
		if (c == '.') {
			d->line_len = 1;
			d->state = ST_DOT;
			return;
		}
		/* FALLTHROUGH */
	case ST_START_DIRTY:
	case ST_LINE:
		if (c == '\r')
			d->state = ST_CR;
		else if (c == '\n') {
			d->flags |= SMTP_DATA_BARE_LF;
			end_line(d, out, 0);
		} else
			line_byte(d, out, c);
		return;
	case ST_DOT:
		if (c == '\r') {
			d->state = ST_DOT_CR;
			return;
		}
		/* A leading dot followed by more text is removed (§4.5.2). */
		d->state = ST_LINE;
		step(d, c, out);
		return;
	case ST_DOT_CR:
		if (c == '\n') {
			d->done = 1;
			return;
		}
		/* ".\r" then something else: a bare CR inside a line. */
		d->flags |= SMTP_DATA_BARE_CR;
		line_byte(d, out, '\r');
		step(d, c, out);
		return;
	case ST_CR:
		if (c == '\n') {
			end_line(d, out, 1);
			return;
		}
		d->flags |= SMTP_DATA_BARE_CR;
		line_byte(d, out, '\r');
		step(d, c, out);
		return;
	}
}

size_t
smtp_data_feed(struct smtp_data *d, const char *p, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n && !d->done) {
		if (d->state == ST_LINE) {
			size_t k = line_run(d, p + i, n - i, out);
			if (k) {
				i += k;
				continue;
			}
		}
		step(d, p[i++], out);
	}
	d->wire_size += i;
	return i;
}

const char *
smtp_data_reject_reply(const struct smtp_data *d)
{
	if (d->flags & SMTP_DATA_TOO_BIG)
		return "552 5.3.4 Message size exceeds fixed maximum message size";
	if (d->flags & SMTP_DATA_NUL)
		return "554 5.6.0 Message contains NUL bytes; not accepted";
	if (d->flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR))
		return "554 5.6.0 Message contains bare CR or LF (RFC 5321 section 2.3.8); lines must end with CRLF";
	if (d->flags & SMTP_DATA_LONG_LINE)
		return "554 5.6.0 Message has a text line longer than the limit (RFC 5321 section 4.5.3.1.6)";
	return NULL;
}

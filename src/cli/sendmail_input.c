/*
 * sendmail_input: reads the message from standard input into the spool,
 * the only place it is held (memory up to 64 KiB, then an unlinked file in
 * $TMPDIR). The header section (at most 1 MiB) is read line by line: a
 * field with a bare CR or a NUL is refused, Bcc is removed, lines over 998
 * bytes are folded, and with -t To, Cc and Bcc give the recipients. The
 * body is streamed in chunks through a small state machine: LF, CRLF and
 * bare CR all become LF, and a lone "." ends the input unless -i.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "sendmail.h"

#define HEAD_MAX	(1024 * 1024)	/* bytes of header section we hold */
#define SPOOL_MEM	(64 * 1024)	/* past this the spool is a file */
#define CHUNK		(64 * 1024)

enum body_state {
	BODY_START,		/* at the start of a line */
	BODY_DOT,		/* a line that so far is "." */
	BODY_LINE,		/* inside a line */
	BODY_CR,		/* a CR just ended a line: a LF may follow */
	BODY_END,		/* a lone "." was read: the input is over */
};

struct reader {
	const struct opts *o;
	struct message	*m;
	struct buf	 field;		/* the header field being read */
	size_t		 head_bytes;
	size_t		 head_lines;
	size_t		 spooled;
	enum body_state	 state;
	size_t		 line_len;
	struct buf	 out;		/* normalised body bytes for the spool */
};

/* Moves the spool from memory to an unlinked file in $TMPDIR. */
static int
spool_to_file(struct reader *r)
{
	const char *dir = getenv("TMPDIR");
	struct buf path = BUF_INIT;
	GMimeStream *file;
	int fd;

	buf_printf(&path, "%s/sendmail.XXXXXX", dir && *dir ? dir : "/tmp");
	if ((fd = mkstemp(path.data)) < 0) {
		int e = errno;
		buf_free(&path);
		return sendmail_error(EX_TEMPFAIL, "cannot create a spool file "
		    "in %s: %s", dir && *dir ? dir : "/tmp", strerror(e));
	}
	unlink(path.data);
	buf_free(&path);
	file = g_mime_stream_fs_new(fd);
	g_mime_stream_reset(r->m->spool);
	if (g_mime_stream_write_to_stream(r->m->spool, file) < 0) {
		g_object_unref(file);
		return sendmail_error(EX_TEMPFAIL, "cannot write the spool file: %s",
		    strerror(errno));
	}
	g_object_unref(r->m->spool);
	r->m->spool = file;
	return 0;
}

static int
spool_write(struct reader *r, const char *p, size_t n)
{
	int rc;

	if (r->spooled <= SPOOL_MEM && r->spooled + n > SPOOL_MEM &&
	    (rc = spool_to_file(r)) != 0)
		return rc;
	r->spooled += n;
	if (n && g_mime_stream_write(r->m->spool, p, n) != (ssize_t)n)
		return sendmail_error(EX_TEMPFAIL, "cannot write the spool file: %s",
		    strerror(errno));
	return 0;
}

/* Bytes before the ':' of "Name: value" (blanks before it allowed), or 0. */
static size_t
field_name_len(const char *s, size_t n)
{
	size_t i = 0, name;

	while (i < n && s[i] > 32 && s[i] < 127 && s[i] != ':')
		i++;
	name = i;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return name > 0 && i < n && s[i] == ':' ? i : 0;
}

static int
is_named(const char *f, size_t colon, const char *name)
{
	size_t n = strlen(name);

	while (colon > 0 && (f[colon - 1] == ' ' || f[colon - 1] == '\t'))
		colon--;
	return colon == n && strncasecmp(f, name, n) == 0;
}

/* One line over WIRE_LINE bytes, broken before blanks (RFC 5322 folding). */
static int
fold_line(const char *s, size_t n, struct buf *out)
{
	while (n > WIRE_LINE) {
		size_t cut = WIRE_LINE;
		while (cut > 0 && !((s[cut] == ' ' || s[cut] == '\t') &&
		    s[cut - 1] != ' ' && s[cut - 1] != '\t'))
			cut--;
		if (cut == 0)
			return -1;
		buf_append(out, s, cut);
		buf_appendc(out, '\n');
		s += cut;
		n -= cut;
	}
	buf_append(out, s, n);
	return 0;
}

/* The field, folded where a line is too long, and its LF to the spool. */
static int
spool_field(struct reader *r, const char *f, size_t n, size_t colon)
{
	struct buf out = BUF_INIT;
	size_t start = 0;
	int rc = 0;

	while (rc == 0 && start <= n) {
		const char *nl = memchr(f + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - f) : n;
		if (fold_line(f + start, end - start, &out) < 0)
			rc = sendmail_error(EX_DATAERR, "header %.*s has a line over "
			    "%d bytes without a blank to fold it at", (int)colon, f,
			    WIRE_LINE);
		buf_appendc(&out, '\n');
		start = end + 1;
	}
	if (rc == 0)
		rc = spool_write(r, out.data, out.len);
	buf_free(&out);
	return rc;
}

/* To, Cc and Bcc with -t: the value unfolded, each address checked. */
static int
field_recipients(struct reader *r, const char *f, size_t n, size_t colon)
{
	struct buf name = BUF_INIT, value = BUF_INIT;
	int rc;

	buf_append(&name, f, colon);
	for (size_t i = colon + 1; i < n; i++)
		if (f[i] != '\n')
			buf_appendc(&value, f[i]);
	rc = mime_recipients(buf_cstr(&name), buf_cstr(&value), &r->m->rcpts);
	buf_free(&name);
	buf_free(&value);
	return rc;
}

/* A complete header field: checked, noted, and spooled unless Bcc. */
static int
end_field(struct reader *r)
{
	const char *f = r->field.data;
	size_t n = r->field.len, colon = field_name_len(f, n);
	int rc = 0;

	if (n == 0)
		return 0;
	if (memchr(f, '\r', n) || memchr(f, '\0', n)) {
		struct buf q = BUF_INIT;
		addr_quote(&q, buf_cstr(&r->field));
		rc = sendmail_error(EX_DATAERR, "header %.*s has a bare CR or a NUL "
		    "in it: %s", (int)colon, f, buf_cstr(&q));
		buf_free(&q);
		return rc;
	}
	r->m->has_from |= is_named(f, colon, "From");
	r->m->has_date |= is_named(f, colon, "Date");
	r->m->has_msgid |= is_named(f, colon, "Message-ID");
	r->m->has_mime |= is_named(f, colon, "MIME-Version");
	for (size_t i = 0; i < n; i++)
		r->m->has_8bit |= (unsigned char)f[i] >= 128;
	if (r->o->from_headers && (is_named(f, colon, "To") ||
	    is_named(f, colon, "Cc") || is_named(f, colon, "Bcc")))
		rc = field_recipients(r, f, n, colon);
	if (rc == 0 && !is_named(f, colon, "Bcc"))	/* never sent */
		rc = spool_field(r, f, n, colon);
	buf_clear(&r->field);
	return rc;
}

/* A byte of body text inside a line. */
static void
body_text(struct reader *r, unsigned char c)
{
	buf_appendc(&r->out, (char)c);
	if (++r->line_len > WIRE_LINE || c == '\0')
		r->m->reencode = 1;
	r->m->has_8bit |= c >= 128;
	r->state = BODY_LINE;
}

static void
body_byte(struct reader *r, unsigned char c)
{
	switch (r->state) {
	case BODY_CR:		/* a LF right after the CR belongs to it */
		r->state = BODY_START;
		if (c == '\n')
			return;
		/* FALLTHROUGH */
	case BODY_START:
		if (c == '.' && !r->o->dot_is_data) {
			r->state = BODY_DOT;
			return;
		}
		break;
	case BODY_DOT:
		if (c == '\n' || c == '\r') {
			r->state = BODY_END;
			return;
		}
		body_text(r, '.');
		break;
	default:
		break;
	}
	if (c == '\n' || c == '\r') {
		buf_appendc(&r->out, '\n');
		r->line_len = 0;
		r->state = c == '\r' ? BODY_CR : BODY_START;
	} else
		body_text(r, c);
}

static int
body_feed(struct reader *r, const char *p, size_t n)
{
	int rc;

	for (size_t i = 0; i < n && r->state != BODY_END; i++)
		body_byte(r, (unsigned char)p[i]);
	rc = spool_write(r, r->out.data, r->out.len);
	buf_clear(&r->out);
	return rc;
}

/* One line of the header section without its line end: 1, 0 at the end, -1 too much. */
static int
head_line(struct reader *r, struct buf *line, int *eol)
{
	int c;

	buf_clear(line);
	*eol = 0;
	r->head_lines++;
	while ((c = getc_unlocked(stdin)) != EOF) {
		if (++r->head_bytes > HEAD_MAX)
			return -1;
		if (c == '\n') {
			*eol = 1;
			break;
		}
		buf_appendc(line, (char)c);
	}
	while (line->len && line->data[line->len - 1] == '\r')
		line->data[--line->len] = '\0';	/* CRLF (and CR CR LF) */
	return *eol || line->len ? 1 : 0;
}

/* A line that is no header field: the blank line, then the body. */
static int
start_body(struct reader *r, struct buf *line, int eol)
{
	int rc;

	if (eol)
		buf_appendc(line, '\n');
	if ((rc = end_field(r)) != 0 || (rc = spool_write(r, "\n", 1)) != 0)
		return rc;
	return body_feed(r, line->data, line->len);
}

/*
 * The header section up to its blank line; a line that is no header field
 * starts the body (the blank line is then added).
 */
static int
read_head(struct reader *r)
{
	struct buf line = BUF_INIT;
	int eol, n, rc = 0;

	while (rc == 0 && (n = head_line(r, &line, &eol)) > 0) {
		if (r->head_lines == 1 && line.len > 5 &&
		    strncmp(line.data, "From ", 5) == 0)
			continue;	/* an mbox "From " line first: dropped */
		if (!r->o->dot_is_data && line.len == 1 && line.data[0] == '.') {
			r->state = BODY_END;
			break;
		}
		if (line.len == 0)
			break;
		if ((line.data[0] == ' ' || line.data[0] == '\t') && r->field.len) {
			buf_appendc(&r->field, '\n');
			buf_append(&r->field, line.data, line.len);
		} else if (field_name_len(line.data, line.len) > 0) {
			rc = end_field(r);
			buf_set(&r->field, line.data, line.len);
		} else {
			rc = start_body(r, &line, eol);
			buf_free(&line);
			return rc;	/* the rest is read in chunks */
		}
	}
	buf_free(&line);
	if (n < 0)
		return sendmail_error(EX_DATAERR, "the header section is over %d "
		    "bytes", HEAD_MAX);
	rc = rc ? rc : end_field(r);
	return rc ? rc : spool_write(r, "\n", 1);
}

int
input_read(const struct opts *o, struct message *m)
{
	static char chunk[CHUNK];
	struct reader r;
	size_t n;
	int rc;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.m = m;
	m->spool = g_mime_stream_mem_new();
	rc = read_head(&r);
	while (rc == 0 && r.state != BODY_END &&
	    (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		rc = body_feed(&r, chunk, n);
	if (rc == 0 && ferror(stdin))
		rc = sendmail_error(EX_IOERR, "cannot read the message from "
		    "standard input: %s", strerror(errno));
	buf_free(&r.field);
	buf_free(&r.out);
	g_mime_stream_reset(m->spool);
	return rc;
}

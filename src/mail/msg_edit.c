/*
 * msg_edit: a message's header section as a list of fields that policies
 * edit (add at the top or the bottom, remove by name, replace), and the
 * texts inserted into its body. Fields as received stay spans of the
 * message (offsets: the message may still grow while the data hook runs);
 * only added fields own bytes, bounded by MSG_EDIT_ADDED_MAX. Every value
 * is checked before it is kept, so an edited section is as well formed as
 * the checks: no bare CR, no LF but a fold, no empty continuation line.
 * Replaced body ranges are kept sorted and disjoint, so the pieces are
 * one merge of insertions and replacements in message order.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "header.h"
#include "msg_edit.h"

void
msg_edit_init(struct msg_edit *e)
{
	memset(e, 0, sizeof(*e));
}

void
msg_edit_free(struct msg_edit *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->f[i].own);
	free(e->f);
	for (size_t i = 0; i < e->nins; i++)
		buf_free(&e->ins[i].text);
	msg_replaces_free(&e->rep);
	buf_free(&e->trace);
	free(e->dkim_domain);
	msg_edit_init(e);
}

const char *
msg_edit_check_name(const char *name, size_t n)
{
	if (n == 0)
		return "a header name may not be empty";
	if (n > MSG_EDIT_NAME_MAX)
		return "a header name is at most 76 bytes";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 33 || (unsigned char)name[i] > 126 ||
		    name[i] == ':')
			return "a header name is printable ASCII without a colon "
			    "or spaces (RFC 5322 3.6.8)";
	return NULL;
}

/* One line of a value, v[0..n) without its LF: no control byte but HT. */
static const char *
check_line(const char *v, size_t n, int first)
{
	size_t ws = 0;

	if (n > MSG_EDIT_LINE_MAX)
		return "a header line is at most 998 bytes";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\r')
			return "a header value may not hold a CR";
		if ((c < 32 && c != '\t') || c == 127)
			return "a header value may not hold control characters";
		ws += c == ' ' || c == '\t';
	}
	if (!first && (n == 0 || (v[0] != ' ' && v[0] != '\t')))
		return "a header value may hold a line break only as a fold "
		    "(LF followed by a space or a tab)";
	if (!first && ws == n)
		return "a folded header line may not be blank";
	return NULL;
}

const char *
msg_edit_check_value(const char *v, size_t n)
{
	const char *err = NULL;
	size_t start = 0;

	if (n > MSG_EDIT_VALUE_MAX)
		return "a header value is at most 4096 bytes";
	for (size_t i = 0; err == NULL && i <= n; i++)
		if (i == n || v[i] == '\n') {
			err = check_line(v + start, i - start, start == 0);
			start = i + 1;
		}
	return err;
}

/* The header section as fields, on first use. */
static void
start(struct msg_edit *e, const char *msg, size_t hlen)
{
	size_t pos = 0, at = 0;
	struct header_field f;

	if (e->started)
		return;
	e->started = 1;
	while (header_next(msg, hlen, &pos, &f)) {
		if (e->n == e->cap) {
			e->cap = e->cap ? e->cap * 2 : 32;
			e->f = xrealloc(e->f, e->cap * sizeof(*e->f));
		}
		e->f[e->n++] = (struct msg_field){ at, pos - at, f.colon ?
		    f.name_len : 0, NULL };
		at = pos;
	}
}

static const char *
field_text(const struct msg_field *f, const char *msg)
{
	return f->own ? f->own : msg + f->off;
}

static int
field_is(const struct msg_field *f, const char *msg, const char *name,
    size_t n)
{
	return f->name_len == n && strncasecmp(field_text(f, msg), name, n) == 0;
}

/* "Name: value\n", or NULL when the added bytes would pass their bound. */
static char *
make_field(struct msg_edit *e, const char *name, size_t nlen, const char *v,
    size_t vlen)
{
	size_t size = nlen + 2 + vlen + 1;
	char *p;

	if (e->added + size > MSG_EDIT_ADDED_MAX)
		return NULL;
	e->added += size;
	p = xmalloc(size + 1);
	memcpy(p, name, nlen);
	memcpy(p + nlen, ": ", 2);
	memcpy(p + nlen + 2, v, vlen);
	p[size - 1] = '\n';
	p[size] = '\0';
	return p;
}

static const char *
insert_field(struct msg_edit *e, size_t at, char *own, size_t nlen)
{
	if (own == NULL)
		return "the added headers would pass 64 KiB";
	if (e->n == MSG_EDIT_FIELDS_MAX) {
		free(own);
		return "the header section would pass 2048 fields";
	}
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 32;
		e->f = xrealloc(e->f, e->cap * sizeof(*e->f));
	}
	memmove(e->f + at + 1, e->f + at, (e->n - at) * sizeof(*e->f));
	e->f[at] = (struct msg_field){ 0, strlen(own), nlen, own };
	e->n++;
	e->header_changed = 1;
	return NULL;
}

const char *
msg_edit_add(struct msg_edit *e, const char *msg, size_t hlen,
    const char *name, size_t nlen, const char *v, size_t vlen, int append)
{
	start(e, msg, hlen);
	return insert_field(e, append ? e->n : 0,
	    make_field(e, name, nlen, v, vlen), nlen);
}

const char *
msg_edit_add_trace(struct msg_edit *e, const char *name, size_t nlen,
    const char *v, size_t vlen)
{
	char *own = make_field(e, name, nlen, v, vlen);
	struct buf above = BUF_INIT;

	if (own == NULL)
		return "the added headers would pass 64 KiB";
	buf_appends(&above, own);
	buf_append(&above, e->trace.data, e->trace.len);
	buf_free(&e->trace);
	e->trace = above;
	free(own);
	return NULL;
}

static void
drop_field(struct msg_edit *e, size_t i)
{
	free(e->f[i].own);
	memmove(e->f + i, e->f + i + 1, (e->n - i - 1) * sizeof(*e->f));
	e->n--;
	e->header_changed = 1;
}

/* Removes the fields named name from index from on; returns how many. */
static size_t
remove_from(struct msg_edit *e, const char *msg, const char *name,
    size_t nlen, size_t from)
{
	size_t count = 0;

	for (size_t i = e->n; i-- > from;)
		if (field_is(&e->f[i], msg, name, nlen)) {
			drop_field(e, i);
			count++;
		}
	return count;
}

const char *
msg_edit_remove(struct msg_edit *e, const char *msg, size_t hlen,
    const char *name, size_t nlen, size_t *count)
{
	start(e, msg, hlen);
	*count = remove_from(e, msg, name, nlen, 0);
	return NULL;
}

const char *
msg_edit_replace(struct msg_edit *e, const char *msg, size_t hlen,
    const char *name, size_t nlen, const char *v, size_t vlen, size_t *count)
{
	size_t first = 0;
	char *own;

	start(e, msg, hlen);
	while (first < e->n && !field_is(&e->f[first], msg, name, nlen))
		first++;
	*count = 0;
	if ((own = make_field(e, name, nlen, v, vlen)) == NULL)
		return "the added headers would pass 64 KiB";
	if (first == e->n)
		return insert_field(e, 0, own, nlen);
	free(e->f[first].own);
	e->f[first] = (struct msg_field){ 0, strlen(own), nlen, own };
	e->header_changed = 1;
	*count = 1 + remove_from(e, msg, name, nlen, first + 1);
	return NULL;
}

const char *
msg_edit_insert(struct msg_edit *e, size_t off, const char *t, size_t n)
{
	size_t at = e->nins;

	if (e->nins == MSG_EDIT_INSERTS_MAX)
		return "a message takes at most 16 body insertions";
	while (at > 0 && e->ins[at - 1].off > off)
		at--;
	memmove(e->ins + at + 1, e->ins + at, (e->nins - at) * sizeof(*e->ins));
	memset(&e->ins[at], 0, sizeof(e->ins[at]));
	e->ins[at].off = off;
	buf_set(&e->ins[at].text, t, n);
	e->nins++;
	return NULL;
}

void
msg_edit_header(const struct msg_edit *e, const char *msg, struct buf *out)
{
	for (size_t i = 0; i < e->n; i++)
		buf_append(out, field_text(&e->f[i], msg), e->f[i].len);
}

#define TOO_MANY_RANGES	"the body filter would replace more than 256 ranges " \
	"(MSG_EDIT_REPLACES_MAX)"
#define TOO_MANY_BYTES	"the body filter's replacements would pass the " \
	"message size limit (limits.message_size)"

void
msg_replaces_free(struct msg_replaces *r)
{
	for (size_t i = 0; i < r->n; i++)
		buf_free(&r->r[i].text);
	free(r->r);
	memset(r, 0, sizeof(*r));
}

static void
replaces_grow(struct msg_replaces *r, size_t need)
{
	if (need <= r->cap)
		return;
	r->cap = r->cap ? r->cap * 2 : 8;
	if (r->cap < need)
		r->cap = need;
	r->r = xrealloc(r->r, r->cap * sizeof(*r->r));
}

const char *
msg_replaces_add(struct msg_replaces *r, size_t off, size_t len,
    const char *t, size_t n, size_t max)
{
	struct msg_replace *last = r->n ? &r->r[r->n - 1] : NULL;

	if (r->bytes + n > max)
		return TOO_MANY_BYTES;
	r->bytes += n;
	if (last && last->off + last->len == off) {
		last->len += len;
		buf_append(&last->text, t, n);
		return NULL;
	}
	if (r->n == MSG_EDIT_REPLACES_MAX)
		return TOO_MANY_RANGES;
	replaces_grow(r, r->n + 1);
	r->r[r->n] = (struct msg_replace){ off, len, BUF_INIT };
	buf_append(&r->r[r->n++].text, t, n);
	return NULL;
}

/* Where x goes among k's ranges (*at); 0: it overlaps one of them. */
static int
replace_slot(const struct msg_replaces *k, const struct msg_replace *x,
    size_t *at)
{
	size_t i = 0;

	while (i < k->n && k->r[i].off + k->r[i].len <= x->off)
		i++;
	*at = i;
	return i == k->n || x->off + x->len <= k->r[i].off;
}

const char *
msg_edit_replace_body(struct msg_edit *e, struct msg_replaces *r, size_t max)
{
	struct msg_replaces *k = &e->rep;
	size_t at;

	if (k->n + r->n > MSG_EDIT_REPLACES_MAX)
		return TOO_MANY_RANGES;
	if (k->bytes + r->bytes > max)
		return TOO_MANY_BYTES;
	for (size_t i = 0; i < r->n; i++)
		if (!replace_slot(k, &r->r[i], &at))
			return "a part of the body was filtered already (one "
			    "msg:filter_body() per part)";
	replaces_grow(k, k->n + r->n);
	for (size_t i = 0; i < r->n; i++) {
		replace_slot(k, &r->r[i], &at);
		memmove(k->r + at + 1, k->r + at, (k->n - at) * sizeof(*k->r));
		k->r[at] = r->r[i];
		k->n++;
	}
	k->bytes += r->bytes;
	r->n = 0;
	msg_replaces_free(r);
	return NULL;
}

/* One piece of the message, unless empty. */
static void
span(struct msg_piece *out, size_t *n, const char *p, size_t len)
{
	if (len > 0)
		out[(*n)++] = (struct msg_piece){ p, len };
}

size_t
msg_edit_pieces(const struct msg_edit *e, const char *msg, size_t len,
    size_t from, struct msg_piece *out)
{
	const struct msg_replaces *k = &e->rep;
	size_t n = 0, at = from, i = 0, j = 0;

	while (i < e->nins || j < k->n) {
		int ins = i < e->nins && (j == k->n || e->ins[i].off <= k->r[j].off);
		size_t off = ins ? e->ins[i].off : k->r[j].off;
		if (off > len)
			off = len;
		if (off > at) {
			span(out, &n, msg + at, off - at);
			at = off;
		}
		if (ins) {
			out[n++] = (struct msg_piece){ e->ins[i].text.data,
			    e->ins[i].text.len };
			i++;
			continue;
		}
		span(out, &n, k->r[j].text.data, k->r[j].text.len);
		if (k->r[j].off + k->r[j].len > at)
			at = k->r[j].off + k->r[j].len;
		j++;
	}
	span(out, &n, msg + at, len > at ? len - at : 0);
	return n;
}

/*
 * fuzz_msg_edit: header edits (src/mail/msg_edit.c) as a policy makes them
 * on a message a client sent. The input is an edit program, then the
 * message (LF line ends, ending with LF as smtp_data stores it). Program:
 * byte 0 = number of ops (low 3 bits); each op = kind byte, name length,
 * name, value length, value (a kind with bit 7 set names the field of the
 * message chosen by the next byte instead). Names and values go through
 * msg_edit_check_* as lua_edit.c does. Invariants: every kept field ends
 * with LF, added ones hold no CR and no LF but folds; after a remove no
 * field of that name is left, after a replace exactly one with the value;
 * the output keeps its empty line right after the edited section and the
 * body byte for byte; the edited section reads back as the field list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/mail/header.h"
#include "../src/mail/msg_edit.h"

#define check(x) do { if (!(x)) abort(); } while (0)

struct in {
	const uint8_t	*p;
	size_t		 n;
};

static int
take(struct in *in, size_t k, const char **out)
{
	if (in->n < k)
		return 0;
	*out = (const char *)in->p;
	in->p += k;
	in->n -= k;
	return 1;
}

static int
byte(struct in *in)
{
	const char *c;

	return take(in, 1, &c) ? (unsigned char)*c : -1;
}

/* Fields of the edited list named name[0..n), and whether all end in LF. */
static size_t
count_named(const struct msg_edit *e, const char *msg, const char *name,
    size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < e->n; i++) {
		const char *t = e->f[i].own ? e->f[i].own : msg + e->f[i].off;
		check(e->f[i].len > 0 && t[e->f[i].len - 1] == '\n');
		if (e->f[i].name_len == n && strncasecmp(t, name, n) == 0)
			c++;
	}
	return c;
}

/* An added field: "name: value\n", no CR, every inner LF a fold. */
static void
check_own(const struct msg_field *f)
{
	const char *t = f->own;

	check(t[f->name_len] == ':' && f->len == strlen(t));
	for (size_t i = 0; i < f->len; i++) {
		check(t[i] != '\r');
		check(t[i] != '\n' || i + 1 == f->len || t[i + 1] == ' ' ||
		    t[i + 1] == '\t');
	}
}

/* The field of the message chosen by k, as a name. */
static int
pick_name(const char *msg, size_t hlen, int k, const char **name, size_t *n)
{
	struct header_field f;
	size_t pos = 0;
	int i = 0, got = 0;

	while (header_next(msg, hlen, &pos, &f))
		if (f.colon && (!got || i++ < k % 16)) {
			*name = f.name;
			*n = f.name_len;
			got = 1;
		}
	return got;
}

static void
value_is(const struct msg_edit *e, const char *msg, const char *name,
    size_t n, const char *v, size_t vn)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct msg_field *f = &e->f[i];
		const char *t = f->own ? f->own : msg + f->off;
		if (f->name_len == n && strncasecmp(t, name, n) == 0)
			check(f->own && f->len == n + 3 + vn &&
			    memcmp(t + n + 2, v, vn) == 0);
	}
}

/* One op; returns 0 when the program ends. */
static int
one_op(struct in *in, struct msg_edit *e, const char *msg, size_t hlen)
{
	int kind = byte(in), nl, vl;
	const char *name, *v = "";
	size_t n, vn = 0, count, before;

	if (kind < 0)
		return 0;
	if (kind & 0x80) {
		if ((nl = byte(in)) < 0 || !pick_name(msg, hlen, nl, &name, &n))
			return 0;
	} else if ((nl = byte(in)) < 0 || !take(in, n = (size_t)nl % 24, &name))
		return 0;
	if ((kind & 3) != 2 && ((vl = byte(in)) < 0 ||
	    !take(in, vn = (size_t)vl, &v)))
		return 0;
	if (msg_edit_check_name(name, n) || msg_edit_check_value(v, vn))
		return 1;
	msg_edit_remove(e, msg, hlen, "X-Probe", 7, &count);	/* starts it */
	before = count_named(e, msg, name, n);
	switch (kind & 3) {
	case 0:
	case 1:
		if (msg_edit_add(e, msg, hlen, name, n, v, vn, kind & 1) == NULL)
			check(count_named(e, msg, name, n) == before + 1);
		break;
	case 2:
		msg_edit_remove(e, msg, hlen, name, n, &count);
		check(count == before && count_named(e, msg, name, n) == 0);
		break;
	case 3:
		if (msg_edit_replace(e, msg, hlen, name, n, v, vn, &count))
			break;
		check(count == before && count_named(e, msg, name, n) == 1);
		value_is(e, msg, name, n, v, vn);
		break;
	}
	return 1;
}

/* The edited section reads back as the list, then the empty line. */
static void
check_output(const struct msg_edit *e, const char *msg, size_t len,
    size_t hlen, int found)
{
	struct buf out = BUF_INIT;
	struct msg_piece p[MSG_EDIT_PIECES_MAX];
	struct header_field f;
	size_t np, h, pos = 0, i = 0, end, at = 0;

	msg_edit_header(e, msg, &out);
	h = out.len;
	np = msg_edit_pieces(e, msg, len, hlen, p);
	for (size_t k = 0; k < np; k++)
		buf_append(&out, p[k].data, p[k].len);
	check(out.len - h == len - hlen && (len == hlen ||
	    memcmp(out.data + h, msg + hlen, len - hlen) == 0));
	check(header_end(out.data, out.len, 0, &end) == found && end == h);
	/* A first line starting with SP or HT folds into whatever goes on
	 * top of it (the Received line does so too): header.c tolerates it. */
	if (e->n > 0 && e->f[0].own && len > 0 && (msg[0] == ' ' ||
	    msg[0] == '\t'))
		goto out;
	for (; header_next(out.data, h, &pos, &f); i++) {
		check(i < e->n && f.name == out.data + at);
		at += e->f[i].len;
		check(pos == at);
	}
	check(i == e->n);
out:
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct msg_edit e;
	int ops = byte(&in), found;
	char *msg;
	size_t len, hlen;

	if (ops < 0)
		return 0;
	/* The message is what follows the program: find it first. */
	struct in prog = in;
	for (int k = 0; k < (ops & 7); k++) {
		int kind = byte(&prog), nl = byte(&prog), vl;
		const char *s;
		if (kind < 0 || nl < 0 || (!(kind & 0x80) &&
		    !take(&prog, (size_t)nl % 24, &s)) || ((kind & 3) != 2 &&
		    ((vl = byte(&prog)) < 0 || !take(&prog, (size_t)vl, &s))))
			return 0;
	}
	len = prog.n;
	msg = malloc(len + 1);
	memcpy(msg, prog.p, len);
	if (len > 0 && msg[len - 1] != '\n')
		msg[len++] = '\n';
	found = header_end(msg, len, 0, &hlen);
	msg_edit_init(&e);
	for (int k = 0; k < (ops & 7) && one_op(&in, &e, msg, hlen); k++)
		;
	for (size_t i = 0; i < e.n; i++)
		if (e.f[i].own)
			check_own(&e.f[i]);
	if (e.started)
		check_output(&e, msg, len, hlen, found);
	msg_edit_free(&e);
	free(msg);
	return 0;
}

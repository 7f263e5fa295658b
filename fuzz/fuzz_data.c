/*
 * fuzz_data: libFuzzer target for the DATA state machine (smtp_data.c).
 * The first three input bytes choose max_line, max_size and how the rest
 * is split into feeds; the rest is the stream after "DATA\r\n". Checked:
 * consumed <= input; one-shot, byte-at-a-time and random splits agree;
 * the result matches an independent reference model (end = first CRLF .
 * CRLF, flags, unstuffed message); a clean message re-stuffed and fed
 * again comes back identical; nothing past max_size is stored.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/buf.h"
#include "../src/smtp/smtp_data.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define HDR	3

enum { FEED_ONCE, FEED_BYTES, FEED_RANDOM };

struct result {
	struct smtp_data	d;
	struct buf		out;
	size_t			consumed;
};

static void
check(int cond)
{
	if (!cond)
		abort();
}

static uint32_t
rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static void
run(const char *p, size_t n, size_t max_line, size_t max_size, int mode,
    uint32_t seed, struct result *r)
{
	size_t off = 0, want, k;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&r->d, max_line, max_size);
	while (off < n && !r->d.done) {
		if (mode == FEED_ONCE)
			want = n - off;
		else if (mode == FEED_BYTES)
			want = 1;
		else
			want = 1 + rnd(&seed) % (1 + (seed >> 8) % 64);
		if (want > n - off)
			want = n - off;
		k = smtp_data_feed(&r->d, p + off, want, &r->out);
		check(k <= want);
		check(k == want || r->d.done);	/* only the end stops a feed */
		off += k;
	}
	r->consumed = off;
	check(r->consumed <= n);
	check(r->d.wire_size == r->consumed);
	check(!r->d.done || r->consumed >= 3);
	if (max_size)
		check(r->out.len <= max_size);
	if (r->d.done)	/* once done, nothing more is taken */
		check(smtp_data_feed(&r->d, "x\r\n", 3, &r->out) == 0);
}

static void
same(const struct result *a, const struct result *b)
{
	check(a->consumed == b->consumed);
	check(a->d.done == b->d.done);
	check(a->d.flags == b->d.flags);
	check(a->d.wire_size == b->d.wire_size);
	check(a->out.len == b->out.len);
	check(a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0);
}

/*
 * The reference model, written from the rules rather than as a state
 * machine: the message ends at the first CRLF "." CRLF of CRLF + input;
 * lines are split at LF; a line is "clean" when the line before it ended
 * in CRLF (or it is the first); a clean line loses one leading dot; a CR
 * right before LF (or pending at the end of the input) is not stored.
 */
static void
reference(const char *p, size_t n, size_t max_line, size_t max_size,
    struct result *r)
{
	size_t body, a, b, i, cs, ce, len;

	memset(r, 0, sizeof(*r));
	r->consumed = n;
	if (n >= 3 && memcmp(p, ".\r\n", 3) == 0) {
		r->consumed = 3;
		r->d.done = 1;
	} else
		for (i = 0; i + 5 <= n; i++)
			if (memcmp(p + i, "\r\n.\r\n", 5) == 0) {
				r->consumed = i + 5;
				r->d.done = 1;
				break;
			}
	r->d.wire_size = r->consumed;
	body = r->d.done ? r->consumed - 3 : r->consumed;

	for (i = 0; i < body; i++) {
		if (p[i] == '\0')
			r->d.flags |= SMTP_DATA_NUL;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			r->d.flags |= SMTP_DATA_BARE_LF;
		if (p[i] == '\r' && i + 1 < body && p[i + 1] != '\n')
			r->d.flags |= SMTP_DATA_BARE_CR;
	}
	for (a = 0; a < body; a = b + 1) {
		int clean = a == 0 || (a >= 2 && p[a - 2] == '\r');
		const char *lf = memchr(p + a, '\n', body - a);

		b = lf ? (size_t)(lf - p) : body;
		len = b - a;
		if (len > 0 && p[b - 1] == '\r')
			len--;
		if (max_line && len + 2 > max_line)
			r->d.flags |= SMTP_DATA_LONG_LINE;
		cs = a + (clean && b > a && p[a] == '.');
		ce = b;
		if (ce > cs && p[ce - 1] == '\r')
			ce--;
		buf_append(&r->out, p + cs, ce - cs);
		if (lf != NULL)
			buf_appendc(&r->out, '\n');
	}
	if (max_size && r->out.len > max_size) {
		r->d.flags |= SMTP_DATA_TOO_BIG;
		r->out.len = max_size;
	}
}

/* Dot-stuffs an LF message back onto the wire, then appends CRLF.CRLF. */
static void
restuff(const struct buf *msg, struct buf *wire)
{
	size_t a = 0, b;

	while (a < msg->len) {
		const char *lf = memchr(msg->data + a, '\n', msg->len - a);

		check(lf != NULL);	/* a clean message ends in LF */
		b = (size_t)(lf - msg->data);
		if (b > a && msg->data[a] == '.')
			buf_appendc(wire, '.');
		buf_append(wire, msg->data + a, b - a);
		buf_append(wire, "\r\n", 2);
		a = b + 1;
	}
	buf_append(wire, ".\r\n", 3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR] = { 0, 0, 0 };
	const char *p;
	size_t n, max_line, max_size, wlen;
	struct result once, bytes, random, ref, again;
	struct buf wire = BUF_INIT;

	if (size >= HDR) {
		memcpy(h, data, HDR);
		data += HDR;
		size -= HDR;
	}
	p = (const char *)data;
	n = size;
	switch (h[0] & 3) {
	case 0:
		max_line = 1000;
		break;
	case 1:
		max_line = 0;
		break;
	default:	/* 3..66: small enough to hit; the "." line always fits */
		max_line = 3 + (h[0] >> 2);
		break;
	}
	max_size = (h[1] & 1) ? 0 : (size_t)(h[1] >> 1);

	run(p, n, max_line, max_size, FEED_ONCE, 0, &once);
	run(p, n, max_line, max_size, FEED_BYTES, 0, &bytes);
	run(p, n, max_line, max_size, FEED_RANDOM, h[2] * 2654435761u + 1,
	    &random);
	same(&once, &bytes);
	same(&once, &random);
	reference(p, n, max_line, max_size, &ref);
	same(&once, &ref);
	if (smtp_data_reject_reply(&once.d) != NULL)
		check(once.d.flags != 0);
	else
		check(once.d.flags == 0);

	if (once.d.done && once.d.flags == 0) {
		restuff(&once.out, &wire);
		wlen = wire.len;
		buf_append(&wire, "QUIT\r\n", 6);	/* must not be taken */
		run(wire.data, wire.len, max_line, max_size, FEED_ONCE, 0,
		    &again);
		check(again.d.done && again.d.flags == 0);
		check(again.consumed == wlen);
		check(again.out.len == once.out.len);
		check(once.out.len == 0 ||
		    memcmp(again.out.data, once.out.data, once.out.len) == 0);
		buf_free(&again.out);
	}
	buf_free(&wire);
	buf_free(&once.out);
	buf_free(&bytes.out);
	buf_free(&random.out);
	buf_free(&ref.out);
	return 0;
}

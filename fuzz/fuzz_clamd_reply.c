/*
 * fuzz_clamd_reply: what clamd sends back to our INSTREAM client
 * (src/net/clamd_wire.c). The input is the byte stream as read: the reply
 * is taken up to its NUL as clamd.c does. Invariants: the reply end lies
 * inside the input and is a NUL; the verdict is one of the three; a virus
 * has a non-empty one-token name and a clean reply no text; every text is
 * printable ASCII and at most CLAMD_TEXT_MAX bytes; parsing is the same
 * whatever follows the NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/clamd_wire.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
check_text(const struct buf *t)
{
	check(t->len <= CLAMD_TEXT_MAX);
	for (size_t i = 0; i < t->len; i++)
		check(t->data[i] >= 0x20 && t->data[i] < 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf text = BUF_INIT, again = BUF_INIT;
	long end = clamd_reply_end(p, size);
	size_t n = end < 0 ? size : (size_t)end;
	enum clamd_verdict v, v2;

	check(end < 0 || ((size_t)end < size && p[end] == '\0'));
	v = clamd_reply_parse(p, n, &text);
	check(v == CLAMD_CLEAN || v == CLAMD_VIRUS || v == CLAMD_ERROR);
	check_text(&text);
	check(v != CLAMD_CLEAN || text.len == 0);
	check(v != CLAMD_VIRUS || (text.len > 0 &&
	    memchr(text.data, ' ', text.len) == NULL));
	check(v != CLAMD_ERROR || text.len > 0);
	v2 = clamd_reply_parse(p, n, &again);	/* same bytes, same answer */
	check(v2 == v && again.len == text.len);
	check(text.len == 0 || memcmp(again.data, text.data, text.len) == 0);
	buf_free(&text);
	buf_free(&again);
	return 0;
}

/*
 * fuzz_reply: what a remote SMTP server sends to our client
 * (src/deliver/smtp_reply.c). The input is a byte stream; replies are taken
 * off it one by one as smtp_client.c does. Invariants: a reply spans at
 * least one line ending in LF and never more than the input; the text has
 * no CR and no more bytes than it spanned; the code is 0 or 100-599; the
 * same stream split in two pieces yields the same first reply; the EHLO
 * capability parser accepts any reply text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/deliver/smtp_reply.h"

#define check(x) do { if (!(x)) abort(); } while (0)

/*
 * "Need more input" is right only if every complete line left is a
 * continuation line ("ddd-...") carrying the code of the first one.
 */
static int
only_continuations(const char *p, size_t n)
{
	const char *nl;
	size_t pos = 0;

	while ((nl = memchr(p + pos, '\n', n - pos)) != NULL) {
		size_t ll = (size_t)(nl - (p + pos));
		if (ll < 4 || p[pos + 3] != '-' || memcmp(p + pos, p, 3) != 0 ||
		    p[pos] < '1' || p[pos] > '5' || p[pos + 1] < '0' ||
		    p[pos + 1] > '9' || p[pos + 2] < '0' || p[pos + 2] > '9')
			return 0;
		pos += ll + 1;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf text = BUF_INIT, again = BUF_INIT;
	size_t pos = 0;
	int code, code2, rounds = 0;
	long used, used2;

	while (pos < size && rounds++ < 1000) {
		used = smtp_reply_parse(p + pos, size - pos, &code, &text);
		if (used <= 0) {
			check(used == -1 || only_continuations(p + pos, size - pos));
			break;
		}
		check((size_t)used <= size - pos);
		check(p[pos + (size_t)used - 1] == '\n');
		check(code == 0 || (code >= 100 && code <= 599));
		check(text.len < (size_t)used);
		check(memchr(text.data, '\r', text.len) == NULL ||
		    memchr(p + pos, '\r', (size_t)used) != NULL);
		/* The same reply parsed from exactly its own bytes. */
		used2 = smtp_reply_parse(p + pos, (size_t)used, &code2, &again);
		check(used2 == used && code2 == code);
		check(again.len == text.len && memcmp(again.data, text.data,
		    text.len) == 0);
		(void)smtp_ehlo_caps(buf_cstr(&text));
		pos += (size_t)used;
	}
	buf_free(&text);
	buf_free(&again);
	return 0;
}

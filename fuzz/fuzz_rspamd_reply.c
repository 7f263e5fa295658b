/*
 * fuzz_rspamd_reply: what rspamd sends back to our /checkv2 client
 * (src/net/rspamd_wire.c): the bytes as read, given to the HTTP reader
 * with and without EOF, then the body to the JSON reader. Invariants: a
 * complete reply's body lies inside the input; reading more bytes never
 * turns a complete reply into an error; a parsed reply has an action and
 * every string is printable ASCII of at most RSPAMD_TEXT_MAX bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/rspamd_wire.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
check_text(const char *s)
{
	size_t n = strlen(s);

	check(n <= RSPAMD_TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		check(s[i] >= 0x20 && s[i] < 0x7f);
}

static void
check_reply(const char *body, size_t n)
{
	struct rspamd_reply r;
	struct buf err = BUF_INIT;

	if (rspamd_reply_parse(body, n, &r, &err) == 0) {
		check(r.action != NULL);
		check_text(r.action);
		if (r.subject)
			check_text(r.subject);
		check(r.nsymbols <= RSPAMD_SYMBOLS_MAX);
		for (size_t i = 0; i < r.nsymbols; i++)
			check_text(r.symbols[i].name);
		rspamd_reply_free(&r);
	} else
		check(err.len > 0);
	buf_free(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *body = NULL;
	struct buf err = BUF_INIT;
	size_t blen = 0;
	int status = 0;
	int open = rspamd_http_parse(p, size, 0, &status, &body, &blen, &err);
	int closed = rspamd_http_parse(p, size, 1, &status, &body, &blen, &err);

	check(open >= -1 && open <= 1 && closed >= -1 && closed <= 1);
	check(open != 1 || closed == 1);	/* EOF after a whole reply */
	check(closed != 0);			/* at EOF there is an answer */
	if (closed == 1) {
		check(body >= p && body + blen <= p + size);
		check(status >= 0 && status <= 999);
		check_reply(body, blen);
	}
	buf_free(&err);
	return 0;
}

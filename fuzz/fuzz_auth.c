/*
 * fuzz_auth: what an SMTP AUTH client sends, as src/smtp/smtp_auth.c reads
 * it: a base64 line (src/lib/base64.c, strict) and, decoded, a PLAIN
 * message (smtp_parse_plain). Invariants: the input is accepted exactly
 * when an independent strict checker says it is base64, and then decodes
 * to the bytes an independent decoder gets; any bytes encode and decode
 * back to themselves; PLAIN spans stay inside the message, hold no NUL in
 * authzid and authcid, and with the two separators make up the whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/base64.h"
#include "../src/smtp/smtp_parse.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static int
val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Independent strict decoder: out gets the bytes; -1 if not base64. */
static long
ref_decode(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int last = i + 4 == n;
		int a = val(in[i]), b = val(in[i + 1]);
		int c = in[i + 2] == '=' && last ? -2 : val(in[i + 2]);
		int d = in[i + 3] == '=' && last ? -2 : val(in[i + 3]);
		if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (c >= 0)
			out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (d >= 0)
			out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	return (long)o;
}

static void
check_plain(const char *m, size_t n)
{
	struct smtp_plain p;
	size_t nuls = 0;

	for (size_t i = 0; i < n; i++)
		nuls += m[i] == '\0';
	if (smtp_parse_plain(m, n, &p) < 0) {
		check(nuls < 2);
		return;
	}
	check(p.authz == m && p.user == m + p.authzlen + 1);
	check(p.pass == p.user + p.userlen + 1);
	check(p.authzlen + p.userlen + p.passlen + 2 == n);
	check(memchr(p.authz, '\0', p.authzlen) == NULL);
	check(memchr(p.user, '\0', p.userlen) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b = BUF_INIT, e = BUF_INIT;
	unsigned char *ref = malloc(size + 1);
	long r = ref_decode(data, size, ref);

	check(ref != NULL);
	check((base64_decode((const char *)data, size, &b) == 0) == (r >= 0));
	if (r >= 0)
		check(b.len == (size_t)r && memcmp(b.data, ref, b.len) == 0);
	base64_encode((const char *)data, size, &e);
	check(base64_decode(e.data, e.len, &b) == 0);
	check(b.len == size && memcmp(b.data, data, size) == 0);
	check_plain((const char *)data, size);
	buf_free(&b);
	buf_free(&e);
	free(ref);
	return 0;
}

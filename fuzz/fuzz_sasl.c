/*
 * fuzz_sasl: the decoded client messages of SMTP AUTH CRAM-MD5 and
 * SCRAM-SHA-256 as src/smtp/smtp_sasl.c reads them (smtp_sasl_parse.c).
 * Invariants: every span stays inside the message; a CRAM digest is 32
 * lowercase hex digits after the last space; a SCRAM user name is
 * non-empty, holds no NUL and decodes no longer than its text; the nonce
 * is printable without a comma; client-final's proof is its last
 * attribute and without_proof ends at the comma before it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/smtp/smtp_sasl_parse.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static int
inside(const char *m, size_t n, const char *p, size_t len)
{
	return p >= m && p + len <= m + n;
}

static void
check_cram(const char *m, size_t n)
{
	struct smtp_cram c;

	if (smtp_parse_cram(m, n, &c) != NULL)
		return;
	check(c.userlen > 0 && c.user == m && inside(m, n, c.digest, 32));
	check(c.digest == m + c.userlen + 1 && m[c.userlen] == ' ');
	check(c.digest + 32 == m + n && !memchr(c.digest, ' ', 32));
}

static void
check_first(const char *m, size_t n)
{
	struct smtp_scram_first f;

	if (smtp_parse_scram_first(m, n, &f) != NULL)
		return;
	check(f.cbind == 'n' || f.cbind == 'y');
	check(f.gs2len <= n && m[f.gs2len - 1] == ',');
	check(f.bare == m + f.gs2len && f.barelen == n - f.gs2len);
	check(f.userlen > 0 && strlen(f.user) == f.userlen);
	check(f.userlen <= f.barelen && strlen(f.authz) == f.authzlen);
	check(inside(m, n, f.nonce, f.noncelen) && f.noncelen > 0);
	for (size_t i = 0; i < f.noncelen; i++)
		check(f.nonce[i] > 0x20 && f.nonce[i] < 0x7f &&
		    f.nonce[i] != ',');
}

static void
check_final(const char *m, size_t n)
{
	struct smtp_scram_final f;

	if (smtp_parse_scram_final(m, n, &f) != NULL)
		return;
	check(f.cbind == m + 2 && inside(m, n, f.cbind, f.cbindlen));
	check(inside(m, n, f.nonce, f.noncelen) && f.noncelen > 0);
	check(f.proof + f.prooflen == m + n && f.prooflen > 0);
	check(f.without_proof < n && m[f.without_proof] == ',');
	check(f.proof == m + f.without_proof + 3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *m = (const char *)data;

	check_cram(m, size);
	check_first(m, size);
	check_final(m, size);
	return 0;
}

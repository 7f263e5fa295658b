/*
 * fuzz_address: libFuzzer target for the path and domain grammar. The
 * input goes to smtp_parse_mail/_rcpt/_helo and address_valid_domain, raw
 * and wrapped in "FROM:<...>" / "TO:<...>". address_valid_domain must agree
 * with a reference; an accepted path must be <= 256 bytes, free of CR, LF
 * and NUL, with a lower-case valid domain, and must reparse to itself.
 * -DFUZZ_ALLOW_NUL_IN_LITERAL (make KNOWN_BUGS=1) skips inputs that hit
 * the known bug: "[1.2.3.4<NUL>any bytes]" passes as an address literal.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/lib/buf.h"
#include "../src/mail/address.h"
#include "../src/smtp/smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int cond)
{
	if (!cond)
		abort();
}

/* RFC 1035 preferred syntax, written differently from address_valid_domain. */
static int
ref_valid_domain(const char *s, size_t n)
{
	size_t start = 0, i;

	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];

			if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
			    !(c >= '0' && c <= '9') && c != '-')
				return 0;
			continue;
		}
		if (i == start || i - start > 63)
			return 0;
		if (s[start] == '-' || s[i - 1] == '-')
			return 0;
		start = i + 1;
	}
	return 1;
}

/* Fresh heap copy of prefix + s + suffix, so ASan sees every overread. */
static char *
wrap(const char *prefix, const char *s, size_t n, const char *suffix,
    size_t *outlen)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *p = malloc(pl + n + sl + 1);

	if (p == NULL)
		abort();
	memcpy(p, prefix, pl);
	if (n)
		memcpy(p + pl, s, n);
	memcpy(p + pl + n, suffix, sl);
	*outlen = pl + n + sl;
	return p;
}

static void
check_reply(const char *reply)
{
	check(reply != NULL && reply[0] == '5' && reply[3] == ' ');
}

/* Invariants of any non-empty mailbox a parser stored. */
static void
check_mailbox(const struct buf *path, int postmaster)
{
	const char *at, *dom, *p = path->data;
	size_t n = path->len, dl, i;

	check(n > 0 && n <= 256);
	check(p[n] == '\0');
	check(memchr(p, '\0', n) == NULL);
	check(memchr(p, '\r', n) == NULL && memchr(p, '\n', n) == NULL);
	if (postmaster) {
		check(n == 10 && strncasecmp(p, "postmaster", 10) == 0);
		return;
	}
	at = memrchr(p, '@', n);
	check(at != NULL);
	check(at > p && (size_t)(at - p) <= 64);	/* local part */
	dom = at + 1;
	dl = n - (size_t)(dom - p);
	for (i = 0; i < dl; i++)
		check(!isupper((unsigned char)dom[i]));
	if (dl > 0 && dom[0] == '[')
		check(dl >= 3 && dom[dl - 1] == ']');
	else
		check(ref_valid_domain(dom, dl));
}

/* The stored path, wrapped again, must parse to exactly itself. */
static void
check_reparse(const struct buf *path, int is_mail, int postmaster)
{
	const char *reply = NULL;
	size_t n;
	char *again;
	int rc;

	if (is_mail) {
		struct smtp_mail_arg m;

		memset(&m, 0, sizeof(m));
		again = wrap("FROM:<", path->data, path->len, ">", &n);
		rc = smtp_parse_mail(again, n, &m, &reply);
		check(rc == 0);
		check(m.path.len == path->len &&
		    memcmp(m.path.data, path->data, path->len) == 0);
		buf_free(&m.path);
	} else {
		struct smtp_rcpt_arg r;

		memset(&r, 0, sizeof(r));
		again = wrap("TO:<", path->data, path->len, ">", &n);
		rc = smtp_parse_rcpt(again, n, &r, &reply);
		check(rc == 0);
		check(r.postmaster == postmaster);
		check(r.path.len == path->len &&
		    memcmp(r.path.data, path->data, path->len) == 0);
		buf_free(&r.path);
	}
	free(again);
}

static void
try_mail(const char *s, size_t n)
{
	const char *reply = NULL;
	struct smtp_mail_arg m;

	memset(&m, 0, sizeof(m));
	if (smtp_parse_mail(s, n, &m, &reply) == 0) {
		if (m.path.len > 0) {
			check_mailbox(&m.path, 0);
			check_reparse(&m.path, 1, 0);
		}
		check(m.body == SMTP_BODY_NONE || m.body == SMTP_BODY_7BIT ||
		    m.body == SMTP_BODY_8BITMIME);
	} else
		check_reply(reply);
	buf_free(&m.path);
}

static void
try_rcpt(const char *s, size_t n)
{
	const char *reply = NULL;
	struct smtp_rcpt_arg r;

	memset(&r, 0, sizeof(r));
	if (smtp_parse_rcpt(s, n, &r, &reply) == 0) {
		check_mailbox(&r.path, r.postmaster);
		check_reparse(&r.path, 0, r.postmaster);
	} else
		check_reply(reply);
	buf_free(&r.path);
}

static void
try_helo(const char *s, size_t n)
{
	const char *reply = NULL;
	int ok = smtp_parse_helo(s, n, &reply) == 0;

	if (!ok) {
		check_reply(reply);
		return;
	}
	if (s[0] == '[') {
		check(n >= 3 && s[n - 1] == ']');
		check(memchr(s, '\0', n) == NULL);
		check(memchr(s, '\r', n) == NULL && memchr(s, '\n', n) == NULL);
	} else
		check(ref_valid_domain(s, n));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t n;
	char *w;

	check(address_valid_domain(in, size) == ref_valid_domain(in, size));
	try_mail(in, size);
	try_rcpt(in, size);
	try_helo(in, size);

	w = wrap("FROM:<", in, size, ">", &n);
	try_mail(w, n);
	free(w);
	w = wrap("TO:<", in, size, ">", &n);
	try_rcpt(w, n);
	free(w);
	w = wrap("FROM:", in, size, "", &n);
	try_mail(w, n);
	free(w);
	w = wrap("TO:", in, size, "", &n);
	try_rcpt(w, n);
	free(w);
	return 0;
}

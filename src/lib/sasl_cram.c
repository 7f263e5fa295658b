/*
 * sasl_cram: CRAM-MD5 (RFC 2195) with Dovecot's stored form: HMAC-MD5
 * keyed with the password is MD5(K^opad, MD5(K^ipad, text)); the MD5
 * states after the 64-byte K^opad and K^ipad blocks are kept (outer then
 * inner, A B C D as little-endian words, 64 hex digits), so the check
 * resumes them. Anyone who has them can answer any challenge: the secret
 * is plaintext-equivalent for CRAM-MD5 (docs/directory.md). Resuming an
 * MD5 state needs OpenSSL's low-level MD5 API, deprecated since 3.0: this
 * file alone suppresses the warning.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/md5.h>

#include "sasl.h"

#define CRAM_HEX	64

static void
pad_states(const char *pw, size_t n, MD5_CTX *in, MD5_CTX *out)
{
	unsigned char key[64], blk[64];

	memset(key, 0, sizeof(key));
	if (n > sizeof(key))
		MD5((const unsigned char *)pw, n, key);
	else
		memcpy(key, pw, n);
	for (int i = 0; i < 64; i++)
		blk[i] = key[i] ^ 0x36;
	MD5_Init(in);
	MD5_Update(in, blk, 64);
	for (int i = 0; i < 64; i++)
		blk[i] = key[i] ^ 0x5c;
	MD5_Init(out);
	MD5_Update(out, blk, 64);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(blk, sizeof(blk));
}

static void
put_state(struct buf *b, const MD5_CTX *c)
{
	const MD5_LONG w[4] = { c->A, c->B, c->C, c->D };

	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			buf_printf(b, "%02x", (unsigned)(w[i] >> (8 * j)) & 0xff);
}

int
sasl_cram_make(const char *pw, size_t n, struct buf *out)
{
	MD5_CTX in, o;

	pad_states(pw, n, &in, &o);
	buf_appends(out, SASL_CRAM_PREFIX);
	put_state(out, &o);
	put_state(out, &in);
	OPENSSL_cleanse(&in, sizeof(in));
	OPENSSL_cleanse(&o, sizeof(o));
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 8 words from 64 hex digits (little-endian bytes): 0, or -1. */
static int
get_words(const char *h, MD5_LONG w[8])
{
	for (int i = 0; i < 32; i++) {
		int hi = hexval(h[2 * i]), lo = hi < 0 ? -1 :
		    hexval(h[2 * i + 1]);

		if (lo < 0)
			return -1;
		if (i % 4 == 0)
			w[i / 4] = 0;
		w[i / 4] |= (MD5_LONG)(hi << 4 | lo) << (8 * (i % 4));
	}
	return 0;
}

/* An MD5 state after one 64-byte block. */
static void
resume(MD5_CTX *c, const MD5_LONG *w)
{
	memset(c, 0, sizeof(*c));
	c->A = w[0];
	c->B = w[1];
	c->C = w[2];
	c->D = w[3];
	c->Nl = 512;
}

/* Hex digest of HMAC-MD5 from the stored states: 0, or -1. */
static int
cram_digest(const char *secret, const char *chal, size_t clen,
    char hex[33])
{
	MD5_LONG w[8];
	MD5_CTX c;
	unsigned char d[MD5_DIGEST_LENGTH];

	if (strncmp(secret, SASL_CRAM_PREFIX, strlen(SASL_CRAM_PREFIX)) != 0)
		return -1;
	secret += strlen(SASL_CRAM_PREFIX);
	if (strlen(secret) != CRAM_HEX || get_words(secret, w) < 0)
		return -1;
	resume(&c, w + 4);
	MD5_Update(&c, chal, clen);
	MD5_Final(d, &c);
	resume(&c, w);
	MD5_Update(&c, d, sizeof(d));
	MD5_Final(d, &c);
	for (int i = 0; i < MD5_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	OPENSSL_cleanse(w, sizeof(w));
	return 0;
}

int
sasl_cram_check(const char *secret, const char *chal, size_t clen,
    const char *hex, size_t hexlen)
{
	char want[33];
	int ok;

	if (cram_digest(secret, chal, clen, want) < 0 || hexlen != 32)
		return 0;
	ok = CRYPTO_memcmp(want, hex, 32) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

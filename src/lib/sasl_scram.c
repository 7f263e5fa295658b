/*
 * sasl_scram: SCRAM-SHA-256's stored secret and the server's proof check
 * (RFC 5802 section 3, RFC 7677). SaltedPassword = PBKDF2-HMAC-SHA-256
 * (password, salt, iter); StoredKey = H(HMAC(SaltedPassword, "Client
 * Key")); ServerKey = HMAC(SaltedPassword, "Server Key"). Only the two
 * keys are kept. The password is taken as given (no SASLprep: ASCII
 * passwords are unaffected). Intermediate keys are wiped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.h"
#include "sasl.h"

void
sasl_hmac_sha256(const void *key, size_t klen, const void *m, size_t n,
    unsigned char out[SASL_SHA256_LEN])
{
	unsigned int len = SASL_SHA256_LEN;

	HMAC(EVP_sha256(), key, (int)klen, m, n, out, &len);
}

static void
put_b64(struct buf *out, const unsigned char *p, size_t n)
{
	base64_encode((const char *)p, n, out);
}

int
sasl_scram_make(const char *pw, size_t n, const unsigned char *salt,
    size_t saltlen, unsigned iter, struct buf *out)
{
	unsigned char salted[SASL_SHA256_LEN], ck[SASL_SHA256_LEN];
	unsigned char stored[SASL_SHA256_LEN], sk[SASL_SHA256_LEN];

	if (iter < 1 || iter > SASL_SCRAM_ITER_MAX || saltlen == 0 ||
	    saltlen > SASL_SCRAM_SALT_MAX || n > 0x7fffffff ||
	    PKCS5_PBKDF2_HMAC(pw, (int)n, salt, (int)saltlen, (int)iter,
	    EVP_sha256(), sizeof(salted), salted) != 1)
		return -1;
	sasl_hmac_sha256(salted, sizeof(salted), "Client Key", 10, ck);
	SHA256(ck, sizeof(ck), stored);
	sasl_hmac_sha256(salted, sizeof(salted), "Server Key", 10, sk);
	buf_printf(out, "%s%u:", SASL_SCRAM_PREFIX, iter);
	put_b64(out, salt, saltlen);
	buf_append(out, "$", 1);
	put_b64(out, stored, sizeof(stored));
	buf_append(out, ":", 1);
	put_b64(out, sk, sizeof(sk));
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(sk, sizeof(sk));
	return 0;
}

int
sasl_scram_new(const char *pw, size_t n, struct buf *out)
{
	unsigned char salt[SASL_SCRAM_SALT_LEN];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	return sasl_scram_make(pw, n, salt, sizeof(salt), SASL_SCRAM_ITER,
	    out);
}

/* base64 text of [s, e) into exactly want bytes (0: up to max). */
static int
get_b64(const char *s, const char *e, unsigned char *dst, size_t want,
    size_t max, size_t *got)
{
	struct buf b = BUF_INIT;
	int ok;

	ok = e > s && base64_decode(s, (size_t)(e - s), &b) == 0 &&
	    (want ? b.len == want : b.len > 0 && b.len <= max);
	if (ok) {
		memcpy(dst, b.data, b.len);
		if (got)
			*got = b.len;
	}
	buf_free(&b);
	return ok ? 0 : -1;
}

int
sasl_scram_parse(const char *secret, struct sasl_scram_keys *k)
{
	const char *p = secret, *colon, *dollar, *colon2;
	char *end;
	unsigned long it;

	if (strncmp(p, SASL_SCRAM_PREFIX, strlen(SASL_SCRAM_PREFIX)) != 0)
		return -1;
	p += strlen(SASL_SCRAM_PREFIX);
	it = strtoul(p, &end, 10);
	if (end == p || *end != ':' || it < 1 || it > SASL_SCRAM_ITER_MAX)
		return -1;
	k->iter = (unsigned)it;
	colon = end;
	if ((dollar = strchr(colon, '$')) == NULL ||
	    (colon2 = strchr(dollar, ':')) == NULL)
		return -1;
	return get_b64(colon + 1, dollar, k->salt, 0, SASL_SCRAM_SALT_MAX,
	    &k->saltlen) < 0 || get_b64(dollar + 1, colon2, k->stored_key,
	    SASL_SHA256_LEN, 0, NULL) < 0 || get_b64(colon2 + 1, colon2 + 1 +
	    strlen(colon2 + 1), k->server_key, SASL_SHA256_LEN, 0, NULL) < 0 ?
	    -1 : 0;
}

int
sasl_scram_check(const struct sasl_scram_keys *k, const char *am,
    size_t amlen, const unsigned char *proof, size_t prooflen,
    unsigned char sig[SASL_SHA256_LEN])
{
	unsigned char csig[SASL_SHA256_LEN], ck[SASL_SHA256_LEN];
	unsigned char h[SASL_SHA256_LEN];
	int ok;

	if (prooflen != SASL_SHA256_LEN)
		return 0;
	sasl_hmac_sha256(k->stored_key, SASL_SHA256_LEN, am, amlen, csig);
	for (size_t i = 0; i < SASL_SHA256_LEN; i++)
		ck[i] = proof[i] ^ csig[i];
	SHA256(ck, sizeof(ck), h);
	ok = CRYPTO_memcmp(h, k->stored_key, SASL_SHA256_LEN) == 0;
	sasl_hmac_sha256(k->server_key, SASL_SHA256_LEN, am, amlen, sig);
	OPENSSL_cleanse(ck, sizeof(ck));
	return ok;
}

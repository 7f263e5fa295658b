/*
 * base64: see base64.h. OpenSSL does the arithmetic; what is ours is the
 * strictness EVP_DecodeBlock lacks (it accepts white space and counts
 * padding bytes as data), checked before it runs.
 */
#include <openssl/evp.h>
#include <string.h>

#include "base64.h"

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
base64_encode(const char *in, size_t n, struct buf *out)
{
	buf_reserve(out, 4 * ((n + 2) / 3) + 1);
	out->len += (size_t)EVP_EncodeBlock((unsigned char *)out->data +
	    out->len, (const unsigned char *)in, (int)n);
	out->data[out->len] = '\0';
}

/* Whole groups of the alphabet, then at most two '=' at the very end. */
static int
well_formed(const char *in, size_t n, size_t *pad)
{
	*pad = 0;
	if (n % 4 != 0 || n > (size_t)1 << 30)
		return 0;
	if (n > 0 && in[n - 1] == '=')
		*pad = in[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - *pad; i++)
		if (in[i] == '\0' || strchr(ALPHABET, in[i]) == NULL)
			return 0;
	return 1;
}

int
base64_decode(const char *in, size_t n, struct buf *out)
{
	size_t pad;
	int r;

	buf_clear(out);
	buf_reserve(out, n / 4 * 3 + 1);
	out->data[0] = '\0';
	if (!well_formed(in, n, &pad))
		return -1;
	r = EVP_DecodeBlock((unsigned char *)out->data,
	    (const unsigned char *)in, (int)n);
	if (r < 0 || (size_t)r < pad)
		return -1;
	out->len = (size_t)r - pad;
	out->data[out->len] = '\0';
	return 0;
}

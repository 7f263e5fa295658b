/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * base64: RFC 4648 base64 (standard alphabet, padded) through OpenSSL's
 * EVP_EncodeBlock/EVP_DecodeBlock. Encoding appends; decoding is strict:
 * only whole 4-character groups of the alphabet, '=' only as padding at
 * the end, no white space, and never more than the padding says.
 */
#ifndef INDIMAIL_BASE64_H
#define INDIMAIL_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Appends the encoding of in[0..n) to out (NUL-ended). */
void	base64_encode(const char *in, size_t n, struct buf *out);
/* Replaces out with the decoding of in[0..n) (NUL-ended); -1 if invalid. */
int	base64_decode(const char *in, size_t n, struct buf *out);

#endif

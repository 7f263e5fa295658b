/*
 * sasl: the stored secrets of SMTP AUTH's challenge-response mechanisms
 * and their checks (the exchange itself is src/smtp/smtp_sasl.c).
 * SCRAM-SHA-256 (RFC 5802, RFC 7677): the RFC 5803 style string
 * "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>", from
 * which a proof can be checked but no password recovered (sasl_scram.c).
 * CRAM-MD5 (RFC 2195): Dovecot's "{CRAM-MD5}<64 hex>", the HMAC-MD5 outer
 * and inner MD5 states after the padded key; it is plaintext-equivalent
 * for CRAM-MD5 (sasl_cram.c). Every check compares in constant time.
 */
#ifndef INDIMAIL_SASL_H
#define INDIMAIL_SASL_H

#include <stddef.h>

#include "buf.h"

#define SASL_SCRAM_PREFIX	"SCRAM-SHA-256$"
#define SASL_SCRAM_ITER		4096	/* at least (RFC 7677) */
#define SASL_SCRAM_ITER_MAX	10000000
#define SASL_SCRAM_SALT_LEN	16
#define SASL_SCRAM_SALT_MAX	64
#define SASL_SHA256_LEN		32
#define SASL_CRAM_PREFIX	"{CRAM-MD5}"

struct sasl_scram_keys {
	unsigned	 iter;
	unsigned char	 salt[SASL_SCRAM_SALT_MAX];
	size_t		 saltlen;
	unsigned char	 stored_key[SASL_SHA256_LEN];
	unsigned char	 server_key[SASL_SHA256_LEN];
};

/* The secret of a password with this salt: 0, or -1 (bad arguments). */
int	sasl_scram_make(const char *pw, size_t n, const unsigned char *salt,
	    size_t saltlen, unsigned iter, struct buf *out);
/* The same with a random salt and SASL_SCRAM_ITER iterations. */
int	sasl_scram_new(const char *pw, size_t n, struct buf *out);
/* A stored secret read back: 0, or -1 when it is not one. */
int	sasl_scram_parse(const char *secret, struct sasl_scram_keys *);
/*
 * The client's proof of an AuthMessage: 1 right (sig gets the
 * ServerSignature), 0 wrong.
 */
int	sasl_scram_check(const struct sasl_scram_keys *, const char *am,
	    size_t amlen, const unsigned char *proof, size_t prooflen,
	    unsigned char sig[SASL_SHA256_LEN]);
/* HMAC-SHA-256 (a fake salt for unknown users). */
void	sasl_hmac_sha256(const void *key, size_t klen, const void *m,
	    size_t n, unsigned char out[SASL_SHA256_LEN]);

/* The CRAM-MD5 secret of a password: 0, or -1. */
int	sasl_cram_make(const char *pw, size_t n, struct buf *out);
/* The client's hex digest of the challenge: 1 right, 0 wrong or bad secret. */
int	sasl_cram_check(const char *secret, const char *chal, size_t clen,
	    const char *hex, size_t hexlen);

#endif

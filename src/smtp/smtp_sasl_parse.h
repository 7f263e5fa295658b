/*
 * smtp_sasl_parse: the client messages of SMTP AUTH CRAM-MD5 (RFC 2195)
 * and SCRAM-SHA-256 (RFC 5802 section 7, RFC 7677), read after base64
 * decoding and before any account is looked up. Pure: spans point into
 * the message, user names are decoded into the caller's struct. Each
 * parser returns NULL, or what was wrong (for the 501 text).
 */
#ifndef INDIMAIL_SMTP_SASL_PARSE_H
#define INDIMAIL_SMTP_SASL_PARSE_H

#include <stddef.h>

#define SMTP_SASL_NAME_MAX	255

/* CRAM-MD5: "user SP digest", the digest 32 lowercase hex digits. */
struct smtp_cram {
	const char	*user, *digest;
	size_t		 userlen;
};

/* client-first-message: gs2-header client-first-message-bare. */
struct smtp_scram_first {
	char		 cbind;		/* 'n' or 'y' ("p=" is refused) */
	size_t		 gs2len;	/* the gs2 header with its two commas */
	char		 authz[SMTP_SASL_NAME_MAX + 1];	/* decoded, "" none */
	char		 user[SMTP_SASL_NAME_MAX + 1];	/* decoded */
	size_t		 authzlen, userlen;
	const char	*bare, *nonce;
	size_t		 barelen, noncelen;
};

/* client-final-message: c=, r=, [extensions,] p= last. */
struct smtp_scram_final {
	const char	*cbind, *nonce, *proof;	/* base64 / printable / base64 */
	size_t		 cbindlen, noncelen, prooflen;
	size_t		 without_proof;	/* client-final-message-without-proof */
};

const char *smtp_parse_cram(const char *m, size_t n, struct smtp_cram *);
const char *smtp_parse_scram_first(const char *m, size_t n,
	    struct smtp_scram_first *);
const char *smtp_parse_scram_final(const char *m, size_t n,
	    struct smtp_scram_final *);

#endif

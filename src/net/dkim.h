/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * dkim: DKIM (RFC 6376; Ed25519-SHA256, RFC 8463) with libopendkim,
 * blocking: it runs on a thread-pool thread (dkim_job.h), never on the
 * loop. Signing reads the message as the queue will store it (pieces,
 * msg_edit.h) and gives the DKIM-Signature field; verifying reads a
 * message, fetches keys through our DNS layer (spf_dns.h, its servers and
 * deadline) and gives one result per signature. Each thread has its own
 * libopendkim handle, so two threads share nothing.
 */
#ifndef INDIMAIL_DKIM_H
#define INDIMAIL_DKIM_H

#include <stddef.h>

#include "../mail/config.h"
#include "../mail/msg_edit.h"
#include "spf_dns.h"

#define DKIM_MSG_SIGS_MAX	8	/* signatures of a message we verify */
#define DKIM_MSG_KEY_MAX	16384	/* bytes of a private key file */

enum dkim_msg_result {
	DKIM_MSG_PASS, DKIM_MSG_FAIL, DKIM_MSG_NEUTRAL, DKIM_MSG_TEMPERROR,
	DKIM_MSG_PERMERROR, DKIM_MSG_NONE,
};

/* What bounds a verification; read-only, shared by threads. */
struct dkim_msg_limits {
	struct spf_dns_servers servers;
	int		 dns_timeout_ms;	/* one query, one server */
	int		 timeout_ms;		/* the whole verification */
};

struct dkim_msg_sig {
	enum dkim_msg_result result;
	char		*domain, *selector, *algorithm;
	char		*b;		/* the signature's first 8 characters */
	char		*error;		/* why not pass, or NULL */
};

struct dkim_msg_answer {
	struct dkim_msg_sig sig[DKIM_MSG_SIGS_MAX];
	size_t		 n;		/* 0: no signature (result none) */
	char		*field;		/* signing: "DKIM-Signature: ...\n" */
	char		*error;		/* signing failed: why */
};

/* 0 with a->field, or -1 with a->error. */
int	dkim_msg_sign(const struct dkim_key_conf *, const struct msg_piece *,
	    size_t n, struct dkim_msg_answer *a);
/* Fills a; -1 only when libopendkim could not start (a->error). */
int	dkim_msg_verify(const struct dkim_msg_limits *, const char *msg,
	    size_t len, struct dkim_msg_answer *a);
void	dkim_msg_answer_free(struct dkim_msg_answer *);
/* "pass", "fail", ... as RFC 8601 names them */
const char *dkim_msg_result_name(enum dkim_msg_result);
/* NULL if the key loads in libopendkim for signing, else why not. */
const char *dkim_msg_key_check(const struct dkim_key_conf *);

#endif

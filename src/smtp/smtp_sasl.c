/*
 * smtp_sasl: SMTP AUTH CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802,
 * RFC 7677, no channel binding) on the server side. Owns the exchange's
 * state (struct smtp_sasl, one per exchange, freed with it), the
 * challenge and nonces, and the check against the secret the directory
 * stores for the user's domain (directory_secret, state LOOKUP while it is
 * asked). The outcome goes through smtp_auth.c: smtp_auth_failed (535,
 * log, delay), smtp_auth_granted (the auth hook) or smtp_auth_tempfail.
 * A SCRAM user that is unknown or without a secret still gets a salt,
 * derived from its name with a per-process key, so the exchange tells
 * nothing of who exists; it fails after the proof.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "../lib/base64.h"
#include "../lib/sasl.h"
#include "../lib/xalloc.h"
#include "smtp_sasl_parse.h"
#include "smtp_session_int.h"

#define SCRAM_NONCE_BYTES	24	/* the server's part: at least 18 */

enum sasl_step { CRAM_ANSWER, SCRAM_FIRST, SCRAM_FINAL, SCRAM_DONE };

struct smtp_sasl {
	enum dir_mech	 mech;
	enum sasl_step	 step;
	struct buf	 text;		/* CRAM: challenge; SCRAM: AuthMessage */
	struct buf	 gs2;		/* SCRAM: the gs2 header, for c= */
	struct buf	 nonce;		/* SCRAM: client and server nonce */
	char		 digest[33];	/* CRAM: the answer, while looking up */
	struct dir_secret sec;		/* the directory's answer */
	const char	*why;		/* SCRAM: will fail whatever the proof */
	struct sasl_scram_keys keys;
};

static unsigned char fake_key[32];
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;

static void
fake_init(void)
{
	if (RAND_bytes(fake_key, sizeof(fake_key)) != 1)
		abort();	/* no randomness: nothing is safe */
}

void
smtp_sasl_free(struct smtp_session *s)
{
	struct smtp_sasl *x = s->sasl;

	if (x == NULL)
		return;
	dir_secret_free(&x->sec);
	buf_free(&x->text);
	buf_free(&x->gs2);
	buf_free(&x->nonce);
	explicit_bzero(x, sizeof(*x));
	free(x);
	s->sasl = NULL;
}

/* 334 with the base64 of [p, p + n). */
static void
challenge(struct smtp_session *s, const void *p, size_t n)
{
	struct buf b = BUF_INIT;

	base64_encode(p, n, &b);
	s->state = ST_AUTH;
	smtp_reply(s, "334 %s", buf_cstr(&b));
	buf_free(&b);
}

/* A client message we cannot read: 501, the exchange ends. */
static void
malformed(struct smtp_session *s, const char *why)
{
	smtp_auth_abort(s);
	smtp_refuse(s, "AUTH", why);
}

static void
malformed_scram(struct smtp_session *s, const char *why)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "501 5.5.2 Malformed SCRAM-SHA-256 message: %s", why);
	malformed(s, buf_cstr(&b));
	buf_free(&b);
}

/*
 * The user of the exchange (logged even if it fails); -1 when the exchange
 * ended: a malformed name (535) or failed logins past auth_fail_limit (454,
 * before any secret is looked up; smtp_auth_limit.c).
 */
static int
set_user(struct smtp_session *s, const char *u, size_t n)
{
	free(s->auth_try);
	s->auth_try = smtp_auth_plausible(u, n) ? xstrndup(u, n) : NULL;
	if (s->auth_try == NULL) {
		smtp_auth_failed(s, "malformed user name");
		return -1;
	}
	if (smtp_auth_locked(s, s->auth_try)) {
		smtp_auth_abort(s);
		return -1;
	}
	return 0;
}

/* ---- CRAM-MD5 ------------------------------------------------------------- */

static void
cram_start(struct smtp_session *s)
{
	struct smtp_sasl *x = s->sasl;
	unsigned long long r = 0;

	RAND_bytes((unsigned char *)&r, sizeof(r));
	buf_printf(&x->text, "<%llu.%lld@%s>", r, (long long)time(NULL),
	    smtp_cfg(s)->hostname);
	x->step = CRAM_ANSWER;
	challenge(s, x->text.data, x->text.len);
}

static void
cram_answer(struct smtp_session *s)
{
	struct smtp_sasl *x = s->sasl;

	if (x->sec.secret == NULL)
		smtp_auth_failed(s, x->sec.status == DIR_NOTFOUND ?
		    "no such user or wrong password" :
		    "CRAM-MD5 is not enabled for the user's domain");
	else if (!sasl_cram_check(x->sec.secret, x->text.data, x->text.len,
	    x->digest, 32))
		smtp_auth_failed(s, "no such user or wrong password");
	else if (x->sec.status == DIR_REFUSED)
		smtp_auth_failed(s, "user may not log in");
	else {
		s->auth_no_relay = x->sec.no_relay;
		smtp_auth_granted(s);
	}
}

static void lookup(struct smtp_session *);

static void
cram_response(struct smtp_session *s, const char *m, size_t n)
{
	struct smtp_cram c;
	const char *why = smtp_parse_cram(m, n, &c);

	if (why) {
		malformed(s, "501 5.5.2 Malformed CRAM-MD5 response");
		return;
	}
	memcpy(s->sasl->digest, c.digest, 32);
	if (set_user(s, c.user, c.userlen) == 0)
		lookup(s);
}

/* ---- SCRAM-SHA-256 -------------------------------------------------------- */

/* The keys of the user, or a deterministic fake and the reason to fail. */
static void
scram_keys(struct smtp_session *s)
{
	struct smtp_sasl *x = s->sasl;
	unsigned char h[SASL_SHA256_LEN];

	if (x->sec.secret && sasl_scram_parse(x->sec.secret, &x->keys) == 0) {
		if (x->sec.status == DIR_REFUSED)
			x->why = "user may not log in";
		return;
	}
	x->why = x->sec.status == DIR_NOTFOUND ?
	    "no such user or wrong password" : x->sec.secret ?
	    "stored SCRAM-SHA-256 secret is malformed" :
	    "SCRAM-SHA-256 is not enabled for the user's domain";
	pthread_once(&fake_once, fake_init);
	sasl_hmac_sha256(fake_key, sizeof(fake_key), s->auth_try,
	    strlen(s->auth_try), h);
	memcpy(x->keys.salt, h, SASL_SCRAM_SALT_LEN);
	x->keys.saltlen = SASL_SCRAM_SALT_LEN;
	x->keys.iter = SASL_SCRAM_ITER;
	RAND_bytes(x->keys.stored_key, SASL_SHA256_LEN);
}

/* server-first-message: r=<client+server nonce>,s=<salt>,i=<iter>. */
static void
scram_server_first(struct smtp_session *s)
{
	struct smtp_sasl *x = s->sasl;
	unsigned char rnd[SCRAM_NONCE_BYTES];
	struct buf sf = BUF_INIT;
	size_t at;

	scram_keys(s);
	RAND_bytes(rnd, sizeof(rnd));
	base64_encode((const char *)rnd, sizeof(rnd), &x->nonce);
	buf_printf(&sf, "r=%s,s=", buf_cstr(&x->nonce));
	base64_encode((const char *)x->keys.salt, x->keys.saltlen, &sf);
	buf_printf(&sf, ",i=%u", x->keys.iter);
	at = x->text.len;
	buf_printf(&x->text, ",%s,", buf_cstr(&sf));
	x->step = SCRAM_FINAL;
	challenge(s, x->text.data + at + 1, sf.len);
	buf_free(&sf);
}

static void
scram_first(struct smtp_session *s, const char *m, size_t n)
{
	struct smtp_sasl *x = s->sasl;
	struct smtp_scram_first f;
	const char *why = smtp_parse_scram_first(m, n, &f);

	if (why) {
		malformed_scram(s, why);
		return;
	}
	if (set_user(s, f.user, f.userlen) < 0)
		return;
	if (f.authzlen && strcmp(f.authz, f.user) != 0) {
		smtp_auth_failed(s, "authorization identity differs");
		return;
	}
	buf_set(&x->gs2, m, f.gs2len);
	buf_set(&x->nonce, f.nonce, f.noncelen);
	buf_set(&x->text, f.bare, f.barelen);
	lookup(s);
}

/* c= must be the base64 of our gs2 header ("biws" for "n,,"). */
static int
same_cbind(struct smtp_sasl *x, const struct smtp_scram_final *f)
{
	struct buf b = BUF_INIT;
	int ok = base64_decode(f->cbind, f->cbindlen, &b) == 0 &&
	    b.len == x->gs2.len && memcmp(b.data, x->gs2.data, b.len) == 0;

	buf_free(&b);
	return ok;
}

static void
scram_final(struct smtp_session *s, const char *m, size_t n)
{
	struct smtp_sasl *x = s->sasl;
	struct smtp_scram_final f;
	struct buf proof = BUF_INIT, v = BUF_INIT;
	unsigned char sig[SASL_SHA256_LEN];
	const char *why = smtp_parse_scram_final(m, n, &f);
	int ok;

	if (why || base64_decode(f.proof, f.prooflen, &proof) < 0) {
		buf_free(&proof);
		malformed_scram(s, why ? why : "proof is not base64");
		return;
	}
	buf_append(&x->text, m, f.without_proof);
	ok = sasl_scram_check(&x->keys, x->text.data, x->text.len,
	    (const unsigned char *)proof.data, proof.len, sig);
	buf_free(&proof);
	if (!same_cbind(x, &f) || f.noncelen != x->nonce.len ||
	    memcmp(f.nonce, x->nonce.data, f.noncelen) != 0)
		smtp_auth_failed(s, "SCRAM channel binding or nonce differs");
	else if (!ok || x->why)
		smtp_auth_failed(s, x->why ? x->why :
		    "no such user or wrong password");
	else {
		buf_appends(&v, "v=");
		base64_encode((const char *)sig, sizeof(sig), &v);
		x->step = SCRAM_DONE;
		challenge(s, v.data, v.len);
	}
	buf_free(&v);
}

/* ---- the exchange ------------------------------------------------------- */

static void
answer(struct smtp_session *s)
{
	if (s->sasl->sec.status == DIR_TEMPFAIL)
		smtp_auth_tempfail(s);
	else if (s->sasl->mech == DIR_MECH_CRAM_MD5)
		cram_answer(s);
	else
		scram_server_first(s);
}

/* ST_LOOKUP: the secret is here. */
static void
on_secret(void *arg)
{
	struct smtp_session *s = arg;

	s->dirq = NULL;
	s->state = s->resume;
	answer(s);
	if (s->state == ST_COMMAND || s->state == ST_AUTH)
		smtp_command_turn(s);	/* answered: the client's turn */
	smtp_process_input(s);
}

static void
lookup(struct smtp_session *s)
{
	struct smtp_sasl *x = s->sasl;

	s->state = ST_COMMAND;
	dir_secret_free(&x->sec);
	if (directory_secret(s->dir, s->auth_try, x->mech, &x->sec, on_secret,
	    s, &s->dirq) == DIR_PENDING) {
		s->resume = ST_COMMAND;
		s->state = ST_LOOKUP;
		smtp_flush(s);
		return;
	}
	answer(s);
}

/* A decoded answer to our 334. */
void
smtp_sasl_response(struct smtp_session *s, const char *m, size_t n)
{
	switch (s->sasl->step) {
	case CRAM_ANSWER:
		cram_response(s, m, n);
		break;
	case SCRAM_FIRST:
		scram_first(s, m, n);
		break;
	case SCRAM_FINAL:
		scram_final(s, m, n);
		break;
	case SCRAM_DONE:	/* the client saw v=: an empty line */
		if (n == 0) {
			s->auth_no_relay = s->sasl->sec.no_relay;
			smtp_auth_granted(s);
		} else
			malformed(s, "501 5.5.2 Expected an empty response");
		break;
	}
}

/*
 * AUTH CRAM-MD5 / SCRAM-SHA-256 [initial-response]: 1 when the caller
 * should now feed the initial response (has_ir), else 0 (answered).
 */
int
smtp_sasl_start(struct smtp_session *s, enum dir_mech mech, int has_ir)
{
	smtp_sasl_free(s);
	s->sasl = xcalloc(1, sizeof(*s->sasl));
	s->sasl->mech = mech;
	if (mech == DIR_MECH_CRAM_MD5) {
		if (has_ir)
			malformed(s, "501 5.5.2 CRAM-MD5 takes no initial "
			    "response");
		else
			cram_start(s);
		return 0;
	}
	s->sasl->step = SCRAM_FIRST;
	if (has_ir)
		return 1;
	s->state = ST_AUTH;
	smtp_reply(s, "334 ");
	return 0;
}

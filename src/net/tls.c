/*
 * tls: memory-BIO TLS. Handshake and records are driven purely by the bytes
 * the session hands in, which keeps TLS independent of libuv and easy to
 * reason about: every call leaves pending output in net_out. Server
 * contexts (one per listener profile) follow Mozilla's "intermediate"
 * profile unless the listener says otherwise; client contexts accept any
 * TLS >= 1.2 (for opportunistic TLS anything beats plaintext).
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "tls.h"

static void
drain(struct tls_conn *t, struct buf *net_out)
{
	char tmp[16384];
	int n;

	while ((n = BIO_read(t->wbio, tmp, sizeof(tmp))) > 0)
		buf_append(net_out, tmp, (size_t)n);
}

static void
ssl_error(struct buf *err)
{
	unsigned long e = ERR_get_error();
	char tmp[256];

	if (e == 0) {
		buf_appends(err, "TLS protocol error");
		return;
	}
	ERR_error_string_n(e, tmp, sizeof(tmp));
	buf_appends(err, tmp);
	ERR_clear_error();
}

/*
 * Mozilla's "intermediate" TLS 1.2 suites (ssl-config.mozilla.org, v5.7):
 * forward secret and AEAD only, in the server's order of preference.
 */
#define INTERMEDIATE_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
	"DHE-RSA-CHACHA20-POLY1305"

/*
 * Every name of a TLS 1.3 suite list must be known: OpenSSL would skip an
 * unknown one silently (a typo would quietly drop a suite).
 */
static int
set_suites(SSL_CTX *ctx, const char *list, struct buf *err)
{
	char *copy = xstrdup(list), *save = NULL, *name;
	int rc = 0, n = 0;

	for (name = strtok_r(copy, ":", &save); name && rc == 0;
	    name = strtok_r(NULL, ":", &save), n++)
		if (SSL_CTX_set_ciphersuites(ctx, name) != 1) {
			buf_printf(err, "tls_ciphersuites: OpenSSL knows no "
			    "TLS 1.3 cipher suite \"%s\"", name);
			rc = -1;
		}
	free(copy);
	ERR_clear_error();
	if (rc == 0 && (n == 0 ||
	    SSL_CTX_set_ciphersuites(ctx, list) != 1)) {
		buf_printf(err, "tls_ciphersuites: \"%s\" names no TLS 1.3 "
		    "cipher suite", list);
		rc = -1;
	}
	return rc;
}

/* The server profile: p's settings, else intermediate (TLS 1.3: OpenSSL's). */
static int
server_profile(SSL_CTX *ctx, const struct tls_profile *p, struct buf *err)
{
	const char *ciphers = p && p->ciphers ? p->ciphers : INTERMEDIATE_CIPHERS;

	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		buf_printf(err, "tls_ciphers: OpenSSL knows no TLS 1.2 cipher in "
		    "\"%s\"", ciphers);
		ERR_clear_error();
		return -1;
	}
	if (p && p->ciphersuites && set_suites(ctx, p->ciphersuites, err) < 0)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, p && p->min_version ?
	    p->min_version : TLS1_2_VERSION);
	SSL_CTX_set_dh_auto(ctx, 1);	/* DHE with RFC 7919 groups */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	return 0;
}

int
tls_profile_check(const struct tls_profile *p, struct buf *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int rc;

	if (ctx == NULL) {
		ssl_error(err);
		return -1;
	}
	rc = server_profile(ctx, p, err);
	SSL_CTX_free(ctx);
	return rc;
}

/* The leaf certificate, then any chain certificates, from PEM text. */
static int
use_cert_chain(SSL_CTX *ctx, const struct buf *pem)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	X509 *x;
	int ok;

	if (bio == NULL)
		return 0;
	x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
	ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			ok = 0;
		}
	ERR_clear_error();	/* the end of the chain reads as an error */
	BIO_free(bio);
	return ok;
}

static int
use_key(SSL_CTX *ctx, const struct buf *pem)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	int ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;

	EVP_PKEY_free(k);
	BIO_free(bio);
	return ok;
}

SSL_CTX *
tls_server_ctx_pem(const struct buf *cert, const struct buf *key,
    const char *what, const struct tls_profile *p, struct buf *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_error(err);
		return NULL;
	}
	if (server_profile(ctx, p, err) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!use_cert_chain(ctx, cert) || !use_key(ctx, key) ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		buf_printf(err, "%s: ", what);
		ssl_error(err);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int
same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void
profile_of(const struct listen_conf *l, struct tls_profile *p)
{
	p->ciphers = l->tls_ciphers;
	p->ciphersuites = l->tls_ciphersuites;
	p->min_version = l->tls_min_version;
}

/* An earlier listener's context for the same profile (one more ref). */
static SSL_CTX *
shared_ctx(const struct config *c, SSL_CTX **ctx, size_t i)
{
	const struct listen_conf *l = &c->listen[i], *o;

	for (size_t j = 0; j < i; j++) {
		o = &c->listen[j];
		if (ctx[j] && same_string(o->tls_ciphers, l->tls_ciphers) &&
		    same_string(o->tls_ciphersuites, l->tls_ciphersuites) &&
		    o->tls_min_version == l->tls_min_version &&
		    SSL_CTX_up_ref(ctx[j]) == 1)
			return ctx[j];
	}
	return NULL;
}

SSL_CTX **
tls_listener_ctxs(const struct config *c, const struct buf *cert,
    const struct buf *key, struct buf *err)
{
	struct buf what = BUF_INIT;
	SSL_CTX **ctx = xcalloc(c->nlisten ? c->nlisten : 1, sizeof(*ctx));
	struct tls_profile p;

	for (size_t i = 0; i < c->nlisten; i++) {
		if (c->listen[i].tls == TLS_NONE ||
		    (ctx[i] = shared_ctx(c, ctx, i)) != NULL)
			continue;
		profile_of(&c->listen[i], &p);
		buf_clear(&what);
		buf_printf(&what, "tls cert %s / key %s", c->tls_cert, c->tls_key);
		ctx[i] = tls_server_ctx_pem(cert, key, buf_cstr(&what), &p, err);
		if (ctx[i] == NULL) {
			buf_printf(err, " (listener %s)", c->listen[i].name);
			tls_listener_ctxs_free(ctx, c->nlisten);
			ctx = NULL;
			break;
		}
	}
	buf_free(&what);
	return ctx;
}

void
tls_listener_ctxs_free(SSL_CTX **ctx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		SSL_CTX_free(ctx[i]);	/* shared ones are counted */
	free(ctx);
}

SSL_CTX *
tls_client_ctx(int verify, struct buf *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ssl_error(err);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	if (verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_default_verify_paths(ctx);
	}
	return ctx;
}

static int
ip_literal(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/* SNI never carries an address (RFC 6066 3); an address is checked as one. */
void
tls_conn_init_client(struct tls_conn *t, SSL_CTX *ctx, const char *host)
{
	int literal = ip_literal(host);

	tls_conn_init(t, ctx);
	SSL_set_connect_state(t->ssl);
	if (!literal)
		SSL_set_tlsext_host_name(t->ssl, host);
	if (!(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER))
		return;
	if (literal)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
	else
		SSL_set1_host(t->ssl, host);
}

int
tls_start(struct tls_conn *t, struct buf *net_out, struct buf *err)
{
	struct buf plain = BUF_INIT;
	int rc = tls_input(t, NULL, 0, &plain, net_out, err);

	buf_free(&plain);
	return rc;
}

void
tls_conn_init(struct tls_conn *t, SSL_CTX *ctx)
{
	memset(t, 0, sizeof(*t));
	t->ssl = SSL_new(ctx);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL)
		abort();	/* out of memory */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);	/* SSL owns both now */
	SSL_set_accept_state(t->ssl);
}

void
tls_conn_free(struct tls_conn *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	memset(t, 0, sizeof(*t));
}

int
tls_input(struct tls_conn *t, const char *p, size_t n, struct buf *plain,
    struct buf *net_out, struct buf *err)
{
	char tmp[16384];
	int r;

	if (n && BIO_write(t->rbio, p, (int)n) != (int)n) {
		buf_appends(err, "TLS buffer write failed");
		return -1;
	}
	if (!t->established) {
		r = SSL_do_handshake(t->ssl);
		drain(t, net_out);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			ssl_error(err);
			return -1;
		}
		t->established = 1;
	}
	for (;;) {
		r = SSL_read(t->ssl, tmp, sizeof(tmp));
		if (r > 0) {
			buf_append(plain, tmp, (size_t)r);
			continue;
		}
		drain(t, net_out);
		switch (SSL_get_error(t->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			return 0;
		case SSL_ERROR_ZERO_RETURN:
			buf_appends(err, "TLS session closed by peer");
			return -1;
		default:
			ssl_error(err);
			return -1;
		}
	}
}

int
tls_output(struct tls_conn *t, const char *p, size_t n, struct buf *net_out)
{
	if (n && SSL_write(t->ssl, p, (int)n) <= 0)
		return -1;
	drain(t, net_out);
	return 0;
}

const char *
tls_version(const struct tls_conn *t)
{
	return t->ssl ? SSL_get_version(t->ssl) : NULL;
}

const char *
tls_cipher(const struct tls_conn *t)
{
	return t->ssl ? SSL_get_cipher_name(t->ssl) : NULL;
}

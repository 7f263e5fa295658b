/*
 * tls: memory-BIO TLS. Handshake and records are driven purely by the bytes
 * the session hands in, which keeps TLS independent of libuv and easy to
 * reason about: every call leaves pending output in net_out.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

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
    const char *what, struct buf *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_error(err);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
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

SSL_CTX *
tls_client_ctx(int verify, struct buf *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ssl_error(err);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_default_verify_paths(ctx);
	}
	return ctx;
}

void
tls_conn_init_client(struct tls_conn *t, SSL_CTX *ctx, const char *host)
{
	tls_conn_init(t, ctx);
	SSL_set_connect_state(t->ssl);
	SSL_set_tlsext_host_name(t->ssl, host);
	if (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER)
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

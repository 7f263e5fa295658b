/*
 * tls: OpenSSL server side over a byte stream we do not own (the libuv TCP
 * handle). Ciphertext goes in with tls_input and out through net_out; the
 * caller writes net_out to the socket. No OpenSSL call ever touches the fd.
 */
#ifndef INDIMAIL_TLS_H
#define INDIMAIL_TLS_H

#include <openssl/ssl.h>

#include "../core/buf.h"

struct tls_conn {
	SSL	*ssl;
	BIO	*rbio;		/* network → OpenSSL */
	BIO	*wbio;		/* OpenSSL → network */
	int	 established;
};

/*
 * A server context from PEM text already in memory (the master reads the
 * files as root, then builds contexts as the unprivileged account); what
 * names the files in errors.
 */
SSL_CTX	*tls_server_ctx_pem(const struct buf *cert, const struct buf *key,
	    const char *what, struct buf *err);
/* verify: check the peer's chain against the system CAs. */
SSL_CTX	*tls_client_ctx(int verify, struct buf *err);
void	 tls_conn_init(struct tls_conn *, SSL_CTX *);
/* Client side; host is used for SNI and, with a verifying ctx, checked. */
void	 tls_conn_init_client(struct tls_conn *, SSL_CTX *, const char *host);
/* Starts (or continues) a client handshake: output in net_out. */
int	 tls_start(struct tls_conn *, struct buf *net_out, struct buf *err);
void	 tls_conn_free(struct tls_conn *);
/*
 * Feeds ciphertext; appends decrypted bytes to plain and bytes to send to
 * net_out. Returns 0, or -1 on a fatal TLS error (reason in err).
 */
int	 tls_input(struct tls_conn *, const char *, size_t, struct buf *plain,
	    struct buf *net_out, struct buf *err);
/* Encrypts plaintext into net_out. */
int	 tls_output(struct tls_conn *, const char *, size_t,
	    struct buf *net_out);
const char *tls_version(const struct tls_conn *);
const char *tls_cipher(const struct tls_conn *);

#endif

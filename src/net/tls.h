/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * tls: OpenSSL server side over a byte stream we do not own (the libuv TCP
 * handle). Ciphertext goes in with tls_input and out through net_out; the
 * caller writes net_out to the socket. No OpenSSL call ever touches the fd.
 */
#ifndef INDIMAIL_TLS_H
#define INDIMAIL_TLS_H

#include <openssl/ssl.h>

#include "../lib/buf.h"
#include "../mail/config.h"

struct tls_conn {
	SSL	*ssl;
	BIO	*rbio;		/* network → OpenSSL */
	BIO	*wbio;		/* OpenSSL → network */
	int	 established;
};

/* A listener's TLS settings; NULL/0 fields: Mozilla "intermediate". */
struct tls_profile {
	const char	*ciphers;	/* TLS <= 1.2: OpenSSL cipher list */
	const char	*ciphersuites;	/* TLS 1.3: OpenSSL suite names */
	int		 min_version;	/* TLS1_2_VERSION or TLS1_3_VERSION */
};

/*
 * A server context from PEM text already in memory (the master reads the
 * files as root, then builds contexts as the unprivileged account); what
 * names the files in errors.
 */
SSL_CTX	*tls_server_ctx_pem(const struct buf *cert, const struct buf *key,
	    const char *what, const struct tls_profile *, struct buf *err);
/* Checks a profile's strings; err then starts with the key at fault. */
int	 tls_profile_check(const struct tls_profile *, struct buf *err);
/*
 * One server context per TLS listener of c (NULL for the others; equal
 * profiles share one), or NULL with the reason in err.
 */
SSL_CTX	**tls_listener_ctxs(const struct config *c, const struct buf *cert,
	    const struct buf *key, struct buf *err);
void	 tls_listener_ctxs_free(SSL_CTX **, size_t n);
/* verify: check the peer's chain against the system CAs. */
SSL_CTX	*tls_client_ctx(int verify, struct buf *err);
void	 tls_conn_init(struct tls_conn *, SSL_CTX *);
/*
 * Client side; host is the name we looked up (never an "ip:port" label):
 * sent as SNI and, with a verifying ctx, matched against the certificate.
 */
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

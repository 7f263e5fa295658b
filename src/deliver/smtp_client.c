/*
 * smtp_client: the outgoing SMTP state machine. Each state expects one
 * reply; on_reply dispatches on the state. Replies are parsed from `in`
 * as complete multi-line replies ("250-..." lines up to "250 ...").
 * Who frees what: the client owns its buffers and handles and frees itself
 * after smtp_client_close once both handles are closed.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "../mail/config.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "smtp_client.h"
#include "smtp_reply.h"

enum cstate {
	C_CONNECT, C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_TLS_HANDSHAKE,
	C_AUTH_PLAIN, C_AUTH_LOGIN_USER, C_AUTH_LOGIN_PASS, C_AUTH_LOGIN_DONE,
	C_READY, C_TXN, C_DOT, C_QUIT, C_DEAD,
};

/* Replies a pipelined transaction waits for, in order. */
enum expect { X_MAIL, X_RCPT, X_DATA };

struct smtp_client {
	uv_loop_t	*loop;
	uv_tcp_t	 tcp;
	uv_timer_t	 timer;
	uv_connect_t	 connect_req;
	int		 handles;
	enum cstate	 state;
	struct client_opts opts;
	char		*host;		/* as looked up: SNI, verification */
	char		 peer[128];	/* host[ip]:port, for messages */
	struct buf	 in;
	struct tls_conn	 tls;
	int		 tls_on;
	int		 ext_pipelining, ext_starttls, ext_8bit, ext_size;
	int		 ext_auth_plain, ext_auth_login;
	int		 authed, ehlo_again, broken, closing;
	client_ready_cb	 ready_cb;
	client_txn_cb	 txn_cb;
	void		*arg;
	struct client_txn *txn;
	size_t		 next_reply;	/* index into the expected replies */
	size_t		 nexpect;
	int		 accepted;	/* recipients the server took */
	int		 mail_failed;
	int		 clean;		/* last transaction ended at the dot */
};

static void send_line(struct smtp_client *, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail_connection(struct smtp_client *, enum result_class,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
on_closed(uv_handle_t *h)
{
	struct smtp_client *c = h->data;

	if (--c->handles > 0)
		return;
	buf_free(&c->in);
	free(c->host);
	if (c->tls.ssl)
		tls_conn_free(&c->tls);
	free(c);
}

static void
arm(struct smtp_client *c, int ms);

static void
on_write(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

static void
write_raw(struct smtp_client *c, const char *p, size_t n)
{
	uv_write_t *req;
	uv_buf_t b;
	char *copy;

	if (n == 0 || c->state == C_DEAD)
		return;
	req = xcalloc(1, sizeof(*req));
	copy = xmalloc(n);
	memcpy(copy, p, n);
	req->data = copy;
	b = uv_buf_init(copy, (unsigned)n);
	if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
		free(copy);
		free(req);
	}
}

static void
write_data(struct smtp_client *c, const char *p, size_t n)
{
	struct buf net = BUF_INIT;

	if (!c->tls_on) {
		write_raw(c, p, n);
		return;
	}
	tls_output(&c->tls, p, n, &net);
	write_raw(c, net.data, net.len);
	buf_free(&net);
}

static void
send_line(struct smtp_client *c, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_appends(&b, "\r\n");
	write_data(c, b.data, b.len);
	buf_free(&b);
}

static enum result_class
class_of(int code)
{
	return code >= 200 && code < 400 ? RESULT_OK :
	    code >= 500 && code < 600 ? RESULT_PERM : RESULT_TEMP;
}

/* Ends the connection phase or a transaction with a connection failure. */
static void
fail_connection(struct smtp_client *c, enum result_class cls,
    const char *fmt, ...)
{
	struct buf why = BUF_INIT;
	va_list ap;
	enum cstate was = c->state;

	va_start(ap, fmt);
	buf_vprintf(&why, fmt, ap);
	va_end(ap);
	c->broken = 1;
	if (was == C_TXN || was == C_DOT) {
		for (size_t i = 0; i < c->txn->nrcpts; i++) {
			struct rcpt_result *r = &c->txn->results[i];
			if (r->text.len && r->cls != RESULT_OK)
				continue;	/* already refused at RCPT */
			r->cls = RESULT_TEMP;
			buf_set(&r->text, why.data, why.len);
		}
		c->state = C_READY;
		c->txn_cb(c->arg, c);
	} else if (was < C_READY) {
		c->state = C_READY;
		c->ready_cb(c->arg, c, cls, buf_cstr(&why));
	}
	buf_free(&why);
}

static void
on_timeout(uv_timer_t *t)
{
	struct smtp_client *c = t->data;

	fail_connection(c, RESULT_TEMP, "timeout talking to %s", c->peer);
}

static void
arm(struct smtp_client *c, int ms)
{
	uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
}

static void
ready(struct smtp_client *c)
{
	uv_timer_stop(&c->timer);
	c->state = C_READY;
	c->ready_cb(c->arg, c, RESULT_OK, "");
}

static void
b64(const char *in, size_t n, struct buf *out)
{
	buf_reserve(out, 4 * ((n + 2) / 3) + 1);
	out->len += (size_t)EVP_EncodeBlock((unsigned char *)out->data + out->len,
	    (const unsigned char *)in, (int)n);
	out->data[out->len] = '\0';
}

/* AUTH PLAIN (initial response) or LOGIN, whichever the server offers. */
static void
start_auth(struct smtp_client *c)
{
	struct buf cred = BUF_INIT, enc = BUF_INIT;

	if (c->ext_auth_plain) {
		buf_appendc(&cred, '\0');
		buf_appends(&cred, c->opts.auth_user);
		buf_appendc(&cred, '\0');
		buf_appends(&cred, c->opts.auth_password ?
		    c->opts.auth_password : "");
		b64(cred.data, cred.len, &enc);
		c->state = C_AUTH_PLAIN;
		send_line(c, "AUTH PLAIN %s", buf_cstr(&enc));
	} else if (c->ext_auth_login) {
		c->state = C_AUTH_LOGIN_USER;
		send_line(c, "AUTH LOGIN");
	} else
		fail_connection(c, RESULT_TEMP, "%s offers no AUTH "
		    "mechanism we know (PLAIN, LOGIN)", c->peer);
	buf_free(&cred);
	buf_free(&enc);
}

/*
 * After EHLO (or HELO): TLS first, then AUTH, then ready. Credentials never
 * go out in clear (a 454 to STARTTLS is all a man in the middle needs)
 * unless the route explicitly says auth_plaintext.
 */
static void
after_hello(struct smtp_client *c)
{
	if (!c->tls_on && c->ext_starttls && c->opts.tls != CLIENT_TLS_NONE &&
	    c->opts.tls_ctx) {
		c->state = C_STARTTLS;
		send_line(c, "STARTTLS");
		return;
	}
	if (!c->tls_on && c->opts.tls == CLIENT_TLS_VERIFY) {
		fail_connection(c, RESULT_TEMP, "%s does not offer STARTTLS "
		    "and the route requires TLS", c->peer);
		return;
	}
	if (c->opts.auth_user && !c->authed) {
		if (!c->tls_on && !c->opts.auth_plaintext)
			fail_connection(c, RESULT_TEMP, "refusing to send "
			    "credentials for %s over an unencrypted connection",
			    c->opts.route ? c->opts.route : c->peer);
		else
			start_auth(c);
		return;
	}
	ready(c);
}

static void
parse_ehlo(struct smtp_client *c, const char *text)
{
	unsigned caps = smtp_ehlo_caps(text);

	c->ext_pipelining = (caps & EHLO_PIPELINING) != 0;
	c->ext_starttls = (caps & EHLO_STARTTLS) != 0;
	c->ext_8bit = (caps & EHLO_8BITMIME) != 0;
	c->ext_size = (caps & EHLO_SIZE) != 0;
	c->ext_auth_plain = (caps & EHLO_AUTH_PLAIN) != 0;
	c->ext_auth_login = (caps & EHLO_AUTH_LOGIN) != 0;
}

static void start_tls(struct smtp_client *);
static void txn_reply(struct smtp_client *, int, const char *);

static void
auth_reply(struct smtp_client *c, int code, const char *text)
{
	struct buf enc = BUF_INIT;

	switch (c->state) {
	case C_AUTH_LOGIN_USER:
		if (code != 334)
			break;
		b64(c->opts.auth_user, strlen(c->opts.auth_user), &enc);
		c->state = C_AUTH_LOGIN_PASS;
		send_line(c, "%s", buf_cstr(&enc));
		buf_free(&enc);
		return;
	case C_AUTH_LOGIN_PASS:
		if (code != 334)
			break;
		b64(c->opts.auth_password ? c->opts.auth_password : "",
		    c->opts.auth_password ? strlen(c->opts.auth_password) : 0, &enc);
		c->state = C_AUTH_LOGIN_DONE;
		send_line(c, "%s", buf_cstr(&enc));
		buf_free(&enc);
		return;
	default:
		if (code == 235) {
			c->authed = 1;
			ready(c);
			return;
		}
	}
	/* A refused login is our configuration's problem: defer, never bounce. */
	fail_connection(c, RESULT_TEMP, "authentication to %s failed: %s",
	    c->peer, text);
}

static void
on_reply(struct smtp_client *c, int code, const char *text)
{
	switch (c->state) {
	case C_GREETING:
		if (code != 220) {
			fail_connection(c, RESULT_TEMP, "%s greeted with: %s",
			    c->peer, text);
			return;
		}
		c->state = C_EHLO;
		arm(c, c->opts.timeouts.command);
		send_line(c, "EHLO %s", c->opts.helo);
		return;
	case C_EHLO:
		if (code / 100 == 2) {
			parse_ehlo(c, text);
			after_hello(c);
		} else if (!c->tls_on) {
			c->state = C_HELO;
			send_line(c, "HELO %s", c->opts.helo);
		} else
			fail_connection(c, RESULT_TEMP, "EHLO after STARTTLS "
			    "refused by %s: %s", c->peer, text);
		return;
	case C_HELO:
		if (code / 100 != 2) {
			fail_connection(c, RESULT_TEMP, "HELO refused by %s: %s",
			    c->peer, text);
			return;
		}
		after_hello(c);
		return;
	case C_STARTTLS:
		if (code == 220) {
			start_tls(c);
			return;
		}
		if (c->opts.tls == CLIENT_TLS_VERIFY) {
			fail_connection(c, RESULT_TEMP, "STARTTLS refused by %s: %s",
			    c->peer, text);
			return;
		}
		c->ext_starttls = 0;	/* go on in plain text */
		after_hello(c);
		return;
	case C_AUTH_PLAIN:
	case C_AUTH_LOGIN_USER:
	case C_AUTH_LOGIN_PASS:
	case C_AUTH_LOGIN_DONE:
		auth_reply(c, code, text);
		return;
	case C_TXN:
	case C_DOT:
		txn_reply(c, code, text);
		return;
	case C_QUIT:
		return;
	default:
		/* A reply nobody asked for: the peer is confused. */
		c->broken = 1;
		return;
	}
}

/* Hands every complete reply in c->in to on_reply. */
static void
parse_replies(struct smtp_client *c)
{
	struct buf text = BUF_INIT;
	int code;
	long used;

	while ((used = smtp_reply_parse(c->in.data, c->in.len, &code,
	    &text)) != 0) {
		if (used < 0) {
			buf_clear(&c->in);
			fail_connection(c, RESULT_TEMP, "%s sent a reply longer "
			    "than %d bytes", c->peer, SMTP_REPLY_MAX);
			break;
		}
		buf_consume(&c->in, (size_t)used);
		on_reply(c, code, buf_cstr(&text));
		if (c->state == C_DEAD || c->closing || c->state == C_TLS_HANDSHAKE)
			break;
	}
	buf_free(&text);
}

static void
handshake_step(struct smtp_client *c, const char *p, size_t n)
{
	struct buf net = BUF_INIT, plain = BUF_INIT, err = BUF_INIT;

	if (tls_input(&c->tls, p, n, &plain, &net, &err) < 0) {
		write_raw(c, net.data, net.len);
		fail_connection(c, RESULT_TEMP, "TLS with %s failed: %s",
		    c->peer, buf_cstr(&err));
	} else {
		write_raw(c, net.data, net.len);
		if (c->tls.established && c->state == C_TLS_HANDSHAKE) {
			c->tls_on = 1;
			c->state = C_EHLO;
			send_line(c, "EHLO %s", c->opts.helo);
		}
		buf_append(&c->in, plain.data, plain.len);
	}
	buf_free(&net);
	buf_free(&plain);
	buf_free(&err);
}

static void
start_tls(struct smtp_client *c)
{
	struct buf net = BUF_INIT, err = BUF_INIT;

	c->state = C_TLS_HANDSHAKE;
	buf_clear(&c->in);	/* nothing may be pipelined before TLS */
	tls_conn_init_client(&c->tls, c->opts.tls_ctx, c->host);
	if (tls_start(&c->tls, &net, &err) < 0)
		fail_connection(c, RESULT_TEMP, "TLS with %s failed: %s",
		    c->peer, buf_cstr(&err));
	write_raw(c, net.data, net.len);
	buf_free(&net);
	buf_free(&err);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(hint);
	b->len = hint;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct smtp_client *c = s->data;

	if (n < 0) {
		free(b->base);
		uv_read_stop(s);
		if (c->state != C_QUIT && c->state != C_DEAD) {
			c->broken = 1;
			if (c->state != C_READY)
				fail_connection(c, RESULT_TEMP, "connection to %s "
				    "lost: %s", c->peer, uv_strerror((int)n));
		}
		return;
	}
	if (c->state == C_TLS_HANDSHAKE)
		handshake_step(c, b->base, (size_t)n);
	else if (c->tls_on) {
		struct buf net = BUF_INIT, err = BUF_INIT;
		if (tls_input(&c->tls, b->base, (size_t)n, &c->in, &net, &err) < 0)
			c->broken = 1;
		write_raw(c, net.data, net.len);
		buf_free(&net);
		buf_free(&err);
	} else
		buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	parse_replies(c);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct smtp_client *c = req->data;

	if (c->closing)
		return;
	if (status < 0) {
		fail_connection(c, RESULT_TEMP, "cannot connect to %s: %s",
		    c->peer, uv_strerror(status));
		return;
	}
	c->state = C_GREETING;
	arm(c, c->opts.timeouts.greeting);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

struct smtp_client *
smtp_client_open(uv_loop_t *loop, const struct sockaddr *sa,
    const char *host_name, const struct client_opts *o, client_ready_cb cb,
    void *arg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	char ip[64];
	int port, rc;

	c->loop = loop;
	c->opts = *o;
	c->ready_cb = cb;
	c->arg = arg;
	c->state = C_CONNECT;
	c->host = xstrdup(host_name);
	if (sa->sa_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof(ip));
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else {
		uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof(ip));
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	}
	snprintf(c->peer, sizeof(c->peer), "%s[%s]:%d", host_name, ip, port);
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	c->tcp.data = c->timer.data = c->connect_req.data = c;
	c->handles = 2;
	if (o->bind_address) {
		struct sockaddr_storage b;
		if (uv_ip4_addr(o->bind_address, 0, (struct sockaddr_in *)&b) != 0)
			uv_ip6_addr(o->bind_address, 0, (struct sockaddr_in6 *)&b);
		uv_tcp_bind(&c->tcp, (struct sockaddr *)&b, 0);
	}
	arm(c, o->timeouts.connect);
	rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
	if (rc < 0)
		fail_connection(c, RESULT_TEMP, "cannot connect to %s: %s",
		    c->peer, uv_strerror(rc));
	return c;
}

/* ---- transactions ------------------------------------------------------ */

static enum expect
expected(struct smtp_client *c, size_t i)
{
	if (i == 0)
		return X_MAIL;
	return i <= c->txn->nrcpts ? X_RCPT : X_DATA;
}

static void
send_command(struct smtp_client *c, size_t i)
{
	struct client_txn *t = c->txn;

	switch (expected(c, i)) {
	case X_MAIL: {
		struct buf m = BUF_INIT;
		buf_printf(&m, "MAIL FROM:<%s>", t->sender);
		if (c->ext_size)
			buf_printf(&m, " SIZE=%zu", t->size);
		if (c->ext_8bit && t->body8)
			buf_appends(&m, " BODY=8BITMIME");
		send_line(c, "%s", buf_cstr(&m));
		buf_free(&m);
		break;
	}
	case X_RCPT:
		send_line(c, "RCPT TO:<%s>", t->rcpts[i - 1]);
		break;
	case X_DATA:
		send_line(c, "DATA");
		break;
	}
}

/*
 * Only a transaction that ended with the reply to the final dot leaves the
 * server ready for a new MAIL; after any other ending (refused MAIL or
 * DATA, no recipient accepted) the connection is not reused.
 */
static void
txn_done(struct smtp_client *c)
{
	if (!c->clean)
		c->broken = 1;
	uv_timer_stop(&c->timer);
	c->state = C_READY;
	c->txn_cb(c->arg, c);
}

static void
all_results(struct smtp_client *c, enum result_class cls, const char *text,
    int only_accepted)
{
	for (size_t i = 0; i < c->txn->nrcpts; i++) {
		struct rcpt_result *r = &c->txn->results[i];
		if (only_accepted && r->cls != RESULT_OK)
			continue;
		r->cls = cls;
		buf_set(&r->text, text, strlen(text));
	}
}

static void
txn_reply(struct smtp_client *c, int code, const char *text)
{
	size_t i = c->next_reply++;

	if (c->state == C_DOT) {
		all_results(c, class_of(code), text, 1);
		c->clean = 1;	/* the server closed this transaction itself */
		txn_done(c);
		return;
	}
	switch (expected(c, i)) {
	case X_MAIL:
		if (code / 100 != 2) {
			c->mail_failed = 1;
			all_results(c, class_of(code), text, 0);
		}
		break;
	case X_RCPT:
		if (!c->mail_failed) {
			struct rcpt_result *r = &c->txn->results[i - 1];
			r->cls = code / 100 == 2 ? RESULT_OK : class_of(code);
			buf_set(&r->text, text, strlen(text));
			c->accepted += r->cls == RESULT_OK;
		}
		break;
	case X_DATA:
		if (code == 354 && c->accepted > 0 && !c->mail_failed) {
			c->state = C_DOT;
			arm(c, c->opts.timeouts.data);
			write_data(c, c->txn->wire->data, c->txn->wire->len);
			return;
		}
		if (code == 354) {	/* nothing to send after all */
			c->state = C_DOT;
			write_data(c, ".\r\n", 3);
			c->broken = 1;
			return;
		}
		if (!c->mail_failed && c->accepted > 0)
			all_results(c, class_of(code), text, 1);
		txn_done(c);
		return;
	}
	if (c->mail_failed && !c->ext_pipelining) {
		c->broken = 1;	/* do not reuse after a refused MAIL */
		txn_done(c);
		return;
	}
	if (c->accepted == 0 && i == c->txn->nrcpts && !c->ext_pipelining) {
		txn_done(c);	/* nobody to send to: skip DATA */
		return;
	}
	if (!c->ext_pipelining)
		send_command(c, c->next_reply);
	arm(c, c->opts.timeouts.command);
}

void
smtp_client_send(struct smtp_client *c, struct client_txn *t, client_txn_cb cb,
    void *arg)
{
	c->txn = t;
	c->txn_cb = cb;
	c->arg = arg;
	c->next_reply = 0;
	c->nexpect = t->nrcpts + 2;
	c->accepted = 0;
	c->mail_failed = 0;
	c->clean = 0;
	for (size_t i = 0; i < t->nrcpts; i++) {
		t->results[i].cls = RESULT_TEMP;
		buf_clear(&t->results[i].text);
	}
	c->state = C_TXN;
	arm(c, c->opts.timeouts.command);
	if (c->ext_pipelining)
		for (size_t i = 0; i < c->nexpect; i++)
			send_command(c, i);
	else
		send_command(c, 0);
}

int
smtp_client_reusable(const struct smtp_client *c)
{
	return c->state == C_READY && !c->broken && !c->closing;
}

void
smtp_client_close(struct smtp_client *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->state == C_READY && !c->broken) {
		c->state = C_QUIT;
		send_line(c, "QUIT");
	}
	c->state = C_DEAD;
	uv_close((uv_handle_t *)&c->timer, on_closed);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

const char *
smtp_client_peer(const struct smtp_client *c)
{
	return c->peer;
}

int
smtp_client_tls(const struct smtp_client *c)
{
	return c->tls_on;
}

void
smtp_client_wire(const char *msg, size_t len, struct buf *out)
{
	size_t i = 0;

	buf_reserve(out, len + len / 32 + 8);
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		if (msg[i] == '.')
			buf_appendc(out, '.');
		buf_append(out, msg + i, end - i);
		buf_appends(out, "\r\n");
		i = end + 1;
	}
	buf_appends(out, ".\r\n");
}

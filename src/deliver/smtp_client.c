/*
 * smtp_client: the outgoing SMTP state machine. Each state expects one
 * reply; on_reply dispatches on the state. Replies are parsed from `in`
 * as complete multi-line replies ("250-..." lines up to "250 ...").
 * Who frees what: the client owns its buffers and handles and frees itself
 * after smtp_client_close once both handles are closed.
 */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "../mail/config.h"
#include "../lib/base64.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "smtp_client_int.h"
#include "smtp_reply.h"

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

void
client_write_data(struct smtp_client *c, const char *p, size_t n)
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

void
client_send_line(struct smtp_client *c, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_appends(&b, "\r\n");
	client_write_data(c, b.data, b.len);
	buf_free(&b);
}

enum result_class
client_class_of(int code)
{
	return code >= 200 && code < 400 ? RESULT_OK :
	    code >= 500 && code < 600 ? RESULT_PERM : RESULT_TEMP;
}

/* Ends the connection phase or a transaction with a connection failure. */
void
client_fail_connection(struct smtp_client *c, enum result_class cls,
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

	client_fail_connection(c, RESULT_TEMP, "timeout talking to %s", c->peer);
}

void
client_arm(struct smtp_client *c, int ms)
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
		base64_encode(cred.data, cred.len, &enc);
		c->state = C_AUTH_PLAIN;
		client_send_line(c, "AUTH PLAIN %s", buf_cstr(&enc));
	} else if (c->ext_auth_login) {
		c->state = C_AUTH_LOGIN_USER;
		client_send_line(c, "AUTH LOGIN");
	} else {
		c->login_failed = 1;
		client_fail_connection(c, RESULT_TEMP, "%s offers no AUTH "
		    "mechanism we know (PLAIN, LOGIN)", c->peer);
	}
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
		client_send_line(c, "STARTTLS");
		return;
	}
	if (!c->tls_on && c->opts.tls == CLIENT_TLS_VERIFY) {
		client_fail_connection(c, RESULT_TEMP, "%s does not offer STARTTLS "
		    "and the route requires TLS", c->peer);
		return;
	}
	if (c->opts.auth_user && !c->authed) {
		if (!c->tls_on && !c->opts.auth_plaintext) {
			c->login_failed = 1;
			client_fail_connection(c, RESULT_TEMP, "refusing to send "
			    "credentials for %s over an unencrypted connection",
			    c->opts.route ? c->opts.route : c->peer);
		} else
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

static void
auth_reply(struct smtp_client *c, int code, const char *text)
{
	struct buf enc = BUF_INIT;

	switch (c->state) {
	case C_AUTH_LOGIN_USER:
		if (code != 334)
			break;
		base64_encode(c->opts.auth_user, strlen(c->opts.auth_user), &enc);
		c->state = C_AUTH_LOGIN_PASS;
		client_send_line(c, "%s", buf_cstr(&enc));
		buf_free(&enc);
		return;
	case C_AUTH_LOGIN_PASS:
		if (code != 334)
			break;
		base64_encode(c->opts.auth_password ? c->opts.auth_password : "",
		    c->opts.auth_password ? strlen(c->opts.auth_password) : 0, &enc);
		c->state = C_AUTH_LOGIN_DONE;
		client_send_line(c, "%s", buf_cstr(&enc));
		buf_free(&enc);
		return;
	default:
		if (code == 235) {
			c->authed = 1;
			ready(c);
			return;
		}
	}
	/*
	 * A refused login is our configuration's problem: defer, never bounce;
	 * and the route's, not the destination's (a 421 is the server's).
	 */
	c->login_failed = code != 421;
	client_fail_connection(c, RESULT_TEMP, "authentication to %s failed: %s",
	    c->peer, text);
}

/* The greeting, EHLO and HELO replies. */
static void
hello_reply(struct smtp_client *c, int code, const char *text)
{
	if (c->state == C_GREETING) {
		if (code != 220) {
			client_fail_connection(c, RESULT_TEMP, "%s greeted with: %s",
			    c->peer, text);
			return;
		}
		c->state = C_EHLO;
		client_arm(c, c->opts.timeouts.command);
		client_send_line(c, "EHLO %s", c->opts.helo);
	} else if (code / 100 == 2) {
		if (c->state == C_EHLO)
			parse_ehlo(c, text);
		after_hello(c);
	} else if (c->state == C_EHLO && !c->tls_on) {
		c->state = C_HELO;
		client_send_line(c, "HELO %s", c->opts.helo);
	} else if (c->state == C_EHLO)
		client_fail_connection(c, RESULT_TEMP, "EHLO after STARTTLS "
		    "refused by %s: %s", c->peer, text);
	else
		client_fail_connection(c, RESULT_TEMP, "HELO refused by %s: %s",
		    c->peer, text);
}

static void
starttls_reply(struct smtp_client *c, int code, const char *text)
{
	if (code == 220) {
		start_tls(c);
		return;
	}
	if (c->opts.tls == CLIENT_TLS_VERIFY) {
		client_fail_connection(c, RESULT_TEMP, "STARTTLS refused by %s: %s",
		    c->peer, text);
		return;
	}
	c->ext_starttls = 0;	/* go on in plain text */
	after_hello(c);
}

static void
on_reply(struct smtp_client *c, int code, const char *text)
{
	switch (c->state) {
	case C_GREETING:
	case C_EHLO:
	case C_HELO:
		hello_reply(c, code, text);
		return;
	case C_STARTTLS:
		starttls_reply(c, code, text);
		return;
	case C_AUTH_PLAIN:
	case C_AUTH_LOGIN_USER:
	case C_AUTH_LOGIN_PASS:
	case C_AUTH_LOGIN_DONE:
		auth_reply(c, code, text);
		return;
	case C_TXN:
	case C_DOT:
		client_txn_reply(c, code, text);
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
			client_fail_connection(c, RESULT_TEMP, "%s sent a reply longer "
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
		client_fail_connection(c, RESULT_TEMP, "TLS with %s failed: %s",
		    c->peer, buf_cstr(&err));
	} else {
		write_raw(c, net.data, net.len);
		if (c->tls.established && c->state == C_TLS_HANDSHAKE) {
			c->tls_on = 1;
			c->state = C_EHLO;
			client_send_line(c, "EHLO %s", c->opts.helo);
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
		client_fail_connection(c, RESULT_TEMP, "TLS with %s failed: %s",
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
				client_fail_connection(c, RESULT_TEMP, "connection to %s "
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
		client_fail_connection(c, RESULT_TEMP, "cannot connect to %s: %s",
		    c->peer, uv_strerror(status));
		return;
	}
	c->state = C_GREETING;
	client_arm(c, c->opts.timeouts.greeting);
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
	client_arm(c, o->timeouts.connect);
	rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
	if (rc < 0)
		client_fail_connection(c, RESULT_TEMP, "cannot connect to %s: %s",
		    c->peer, uv_strerror(rc));
	return c;
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
		client_send_line(c, "QUIT");
	}
	c->state = C_DEAD;
	uv_close((uv_handle_t *)&c->timer, on_closed);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

int
smtp_client_login_failed(const struct smtp_client *c)
{
	return c->login_failed;
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

/*
 * remote: one delivery attempt = read the message, find the addresses to
 * try (relay host, or MX hosts in preference order, then their A/AAAA),
 * then for each address in turn: connect, greet, transact. A connection
 * failure or a 4xx greeting moves on to the next address; the first
 * completed transaction decides. The request's verdict says whether the
 * destination itself failed (no address gave a session, a 421, MAIL
 * deferred), for the queue manager's destination table (dest.c). Idle
 * connections are kept per destination for reuse by the next message,
 * keyed by everything that shapes a session (relay, login, TLS policy,
 * source address, HELO), so a message never travels on a connection
 * logged in for another route.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../net/dns.h"
#include "../net/tls.h"
#include "remote.h"

struct idle {
	struct idle	*next;
	char		*key;
	struct smtp_client *client;
	uint64_t	 since;
};

struct remote_ctx {
	uv_loop_t	*loop;
	struct dns	*dns;
	const struct config *cfg;
	SSL_CTX		*tls_any, *tls_verify;
	struct idle	*idle;
	unsigned char	 salt[32];	/* for passwords in idle keys */
};

struct target {
	struct sockaddr_storage addr;
	char		*name;
};

struct attempt {
	uv_work_t	 work;
	struct remote_ctx *ctx;
	struct remote_req *req;
	remote_done_cb	 cb;
	void		*arg;
	struct buf	 msg, wire;
	int		 read_ok;
	char		*key;
	char		*label;		/* the route, for messages */
	struct target	*targets;
	size_t		 ntargets, next;
	char	       **mx;		/* MX hosts still to resolve */
	size_t		 nmx, mx_next;
	int		 dns_family;	/* resolving A then AAAA */
	struct buf	 last_error;
	enum result_class last_class;
	int		 login_failed;	/* an address refused the route's login */
	struct smtp_client *client;
	struct client_txn txn;
	struct client_opts opts;
};

struct remote_ctx *
remote_ctx_new(uv_loop_t *loop, struct dns *dns, const struct config *cfg)
{
	struct remote_ctx *r = xcalloc(1, sizeof(*r));
	struct buf err = BUF_INIT;

	r->loop = loop;
	r->dns = dns;
	r->cfg = cfg;
	r->tls_any = tls_client_ctx(0, &err);
	r->tls_verify = tls_client_ctx(1, &err);
	if (RAND_bytes(r->salt, sizeof(r->salt)) != 1)
		abort();	/* no randomness: nothing is safe */
	buf_free(&err);
	return r;
}

void
remote_ctx_set_config(struct remote_ctx *r, const struct config *cfg)
{
	r->cfg = cfg;
}

static void
finish(struct attempt *a)
{
	struct remote_req *q = a->req;

	for (size_t i = 0; i < a->ntargets; i++)
		free(a->targets[i].name);
	free(a->targets);
	for (size_t i = 0; i < a->nmx; i++)
		free(a->mx[i]);
	free(a->mx);
	buf_free(&a->msg);
	buf_free(&a->wire);
	buf_free(&a->last_error);
	free(a->key);
	free(a->label);
	a->cb(a->arg, q);
	free(a);
}

/* Every recipient gets the same outcome (no transaction happened). */
static void
fail_all(struct attempt *a, enum result_class cls, const char *text)
{
	for (size_t i = 0; i < a->req->n; i++) {
		a->req->results[i].cls = cls;
		buf_set(&a->req->results[i].text, text, strlen(text));
	}
	finish(a);
}

static void try_next(struct attempt *);

static void
park(struct remote_ctx *r, const char *key, struct smtp_client *c)
{
	struct idle *i = xcalloc(1, sizeof(*i));

	i->key = xstrdup(key);
	i->client = c;
	i->since = uv_now(r->loop);
	i->next = r->idle;
	r->idle = i;
}

static struct smtp_client *
unpark(struct remote_ctx *r, const char *key)
{
	for (struct idle **pp = &r->idle; *pp; pp = &(*pp)->next) {
		struct idle *i = *pp;
		struct smtp_client *c;
		if (strcmp(i->key, key) != 0)
			continue;
		*pp = i->next;
		c = i->client;
		free(i->key);
		free(i);
		if (smtp_client_reusable(c))
			return c;
		smtp_client_close(c);
		return unpark(r, key);
	}
	return NULL;
}

void
remote_sweep(struct remote_ctx *r, uint64_t max_idle)
{
	uint64_t now = uv_now(r->loop);

	for (struct idle **pp = &r->idle; *pp;) {
		struct idle *i = *pp;
		if (max_idle && now - i->since < max_idle &&
		    smtp_client_reusable(i->client)) {
			pp = &i->next;
			continue;
		}
		*pp = i->next;
		smtp_client_close(i->client);
		free(i->key);
		free(i);
	}
}

static void
on_txn(void *arg, struct smtp_client *c)
{
	struct attempt *a = arg;

	snprintf(a->req->mta, sizeof(a->req->mta), "%s", smtp_client_peer(c));
	a->req->verdict = a->txn.closing ? REMOTE_CLOSING :
	    a->txn.mail_deferred ? REMOTE_MAIL_DEFERRED : REMOTE_NO_VERDICT;
	if (smtp_client_reusable(c))
		park(a->ctx, a->key, c);
	else
		smtp_client_close(c);
	finish(a);
}

static void
transact(struct attempt *a, struct smtp_client *c)
{
	a->txn.sender = a->req->msg->env.sender;
	a->txn.rcpts = a->req->rcpts;
	a->txn.nrcpts = a->req->n;
	a->txn.wire = &a->wire;
	a->txn.size = a->msg.len;
	a->txn.body8 = a->req->msg->env.body == ENVELOPE_BODY_8BITMIME;
	a->txn.results = a->req->results;
	smtp_client_send(c, &a->txn, on_txn, a);
}

static void
on_ready(void *arg, struct smtp_client *c, enum result_class cls,
    const char *text)
{
	struct attempt *a = arg;

	if (cls == RESULT_OK) {
		transact(a, c);
		return;
	}
	buf_set(&a->last_error, text, strlen(text));
	a->last_class = RESULT_TEMP;
	a->login_failed |= smtp_client_login_failed(c);
	smtp_client_close(c);
	try_next(a);
}

static void
try_next(struct attempt *a)
{
	struct target *t;

	if (a->next >= a->ntargets) {
		/* a refused login says nothing about the destination */
		a->req->verdict = a->login_failed ? REMOTE_NO_VERDICT :
		    REMOTE_UNREACHABLE;
		fail_all(a, a->last_class, a->last_error.len ?
		    buf_cstr(&a->last_error) : "451 4.4.1 no address to deliver to");
		return;
	}
	t = &a->targets[a->next++];
	smtp_client_open(a->ctx->loop, (struct sockaddr *)&t->addr, t->name,
	    &a->opts, on_ready, a);
}

static void
add_target(struct attempt *a, const char *name, const char *ip, int port)
{
	struct target *t;

	a->targets = xrealloc(a->targets, (a->ntargets + 1) * sizeof(*t));
	t = &a->targets[a->ntargets];
	memset(t, 0, sizeof(*t));
	if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&t->addr) != 0 &&
	    uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&t->addr) != 0)
		return;
	t->name = xstrdup(name);
	a->ntargets++;
}

static int
port_of(struct attempt *a)
{
	return a->req->route ? a->req->route->port : a->ctx->cfg->delivery.port;
}

static void resolve_next_host(struct attempt *);

static void
on_host_addr(void *arg, const struct dns_result *r)
{
	struct attempt *a = arg;
	const char *host = a->mx[a->mx_next];

	if (r->status == DNS_OK)
		for (size_t i = 0; i < r->n; i++)
			add_target(a, host, r->answers[i].value, port_of(a));
	else if (r->status == DNS_TEMPFAIL) {
		buf_clear(&a->last_error);
		buf_printf(&a->last_error, "451 4.4.3 DNS lookup of %s failed: %s",
		    host, r->error);
	}
	if (a->dns_family == DNS_A) {
		a->dns_family = DNS_AAAA;
		dns_query(a->ctx->dns, host, DNS_AAAA, on_host_addr, a);
		return;
	}
	a->mx_next++;
	resolve_next_host(a);
}

/* Resolves the hosts in a->mx one after the other, then connects. */
static void
resolve_next_host(struct attempt *a)
{
	if (a->mx_next >= a->nmx) {
		if (a->ntargets == 0 && a->last_error.len == 0)
			buf_printf(&a->last_error, "451 4.4.4 no address found "
			    "for the mail hosts of %s", a->req->domain);
		try_next(a);
		return;
	}
	a->dns_family = DNS_A;
	dns_query(a->ctx->dns, a->mx[a->mx_next], DNS_A, on_host_addr, a);
}

static void
add_host(struct attempt *a, const char *h)
{
	a->mx = xrealloc(a->mx, (a->nmx + 1) * sizeof(char *));
	a->mx[a->nmx++] = xstrdup(h);
}

static int
by_preference(const void *x, const void *y)
{
	return ((const struct dns_answer *)x)->preference -
	    ((const struct dns_answer *)y)->preference;
}

static void
on_mx(void *arg, const struct dns_result *r)
{
	struct attempt *a = arg;
	struct buf why = BUF_INIT;
	struct dns_answer *sorted;

	switch (r->status) {
	case DNS_NXDOMAIN:
		buf_printf(&why, "550 5.1.2 domain %s does not exist", a->req->domain);
		fail_all(a, RESULT_PERM, buf_cstr(&why));
		buf_free(&why);
		return;
	case DNS_TEMPFAIL:
		buf_printf(&why, "451 4.4.3 MX lookup for %s failed: %s",
		    a->req->domain, r->error);
		a->req->verdict = REMOTE_UNREACHABLE;
		fail_all(a, RESULT_TEMP, buf_cstr(&why));
		buf_free(&why);
		return;
	case DNS_NODATA:	/* implicit MX: the domain itself */
		add_host(a, a->req->domain);
		break;
	case DNS_OK:
		if (r->n == 1 && (r->answers[0].value[0] == '\0' ||
		    strcmp(r->answers[0].value, ".") == 0)) {
			buf_printf(&why, "556 5.1.10 domain %s accepts no mail "
			    "(null MX, RFC 7505)", a->req->domain);
			fail_all(a, RESULT_PERM, buf_cstr(&why));
			buf_free(&why);
			return;
		}
		sorted = xcalloc(r->n, sizeof(*sorted));
		memcpy(sorted, r->answers, r->n * sizeof(*sorted));
		qsort(sorted, r->n, sizeof(*sorted), by_preference);
		for (size_t i = 0; i < r->n; i++)
			add_host(a, sorted[i].value);
		free(sorted);
		break;
	}
	resolve_next_host(a);
}

static void
find_targets(struct attempt *a)
{
	const struct route_conf *rt = a->req->route;
	unsigned char tmp[16];

	if (rt) {
		if (inet_pton(AF_INET, rt->host, tmp) == 1 ||
		    inet_pton(AF_INET6, rt->host, tmp) == 1) {
			add_target(a, rt->host, rt->host, rt->port);
			try_next(a);
			return;
		}
		add_host(a, rt->host);
		resolve_next_host(a);
		return;
	}
	dns_query(a->ctx->dns, a->req->domain, DNS_MX, on_mx, a);
}

static void
do_read(uv_work_t *w)
{
	struct attempt *a = w->data;
	struct stat st;
	int fd = open(a->req->msg->path, O_RDONLY | O_CLOEXEC);
	size_t off = a->req->msg->body_offset, len;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size >= off) {
		len = a->req->msg->shared ? a->req->msg->size :
		    (size_t)st.st_size - off;
		buf_reserve(&a->msg, len);
		if (pread(fd, a->msg.data, len, (off_t)off) == (ssize_t)len) {
			a->msg.len = len;
			a->msg.data[len] = '\0';
			smtp_client_wire(a->msg.data, a->msg.len, &a->wire);
			a->read_ok = 1;
		}
	}
	close(fd);
}

static void
after_read(uv_work_t *w, int status)
{
	struct attempt *a = w->data;
	struct smtp_client *c;

	(void)status;
	if (!a->read_ok) {
		fail_all(a, RESULT_TEMP, "451 4.3.0 cannot read the queued message");
		return;
	}
	if ((c = unpark(a->ctx, a->key)) != NULL) {
		transact(a, c);
		return;
	}
	find_targets(a);
}

/* "route x.test (host:port)", or "relay host:port" for "*" and hooks. */
static char *
route_label(const struct route_conf *rt)
{
	struct buf b = BUF_INIT;

	if (rt->domain && rt->domain[0])
		buf_printf(&b, "route %s (%s:%d)", rt->domain, rt->host,
		    rt->port);
	else
		buf_printf(&b, "relay %s:%d", rt->host, rt->port);
	return b.data;		/* the buffer's memory moves */
}

/* A route's own settings win over the delivery defaults. */
static void
route_opts(struct attempt *a, const struct route_conf *rt)
{
	const struct client_timeouts *t = &rt->timeouts;

	a->label = route_label(rt);
	a->opts.route = a->label;
	a->opts.tls = rt->tls;
	a->opts.auth_user = rt->auth_user;
	a->opts.auth_password = rt->auth_password;
	a->opts.auth_plaintext = rt->auth_plaintext;
	if (t->connect)
		a->opts.timeouts.connect = t->connect;
	if (t->greeting)
		a->opts.timeouts.greeting = t->greeting;
	if (t->command)
		a->opts.timeouts.command = t->command;
	if (t->data)
		a->opts.timeouts.data = t->data;
}

/* A netstring: no user name or host can forge a field boundary. */
static void
key_field(struct buf *k, const char *s)
{
	buf_printf(k, "%zu:%s,", strlen(s ? s : ""), s ? s : "");
}

/* The password only as a salted SHA-256, so the key may be logged. */
static void
key_secret(struct remote_ctx *r, struct buf *k, const char *pw)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, r->salt, sizeof(r->salt)) != 1 ||
	    EVP_DigestUpdate(c, pw ? pw : "", pw ? strlen(pw) : 0) != 1 ||
	    EVP_DigestFinal_ex(c, md, &n) != 1)
		abort();	/* out of memory */
	EVP_MD_CTX_free(c);
	buf_printf(k, "%u:", 2 * n);
	for (unsigned int i = 0; i < n; i++)
		buf_printf(k, "%02x", md[i]);
	buf_appendc(k, ',');
}

/*
 * Idle connections are shared only by attempts that would open the same
 * session: destination, login, TLS policy, source address, HELO name and
 * timeouts (a route's own keep to its connections).
 */
static char *
session_key(struct attempt *a)
{
	const struct remote_req *q = a->req;
	const struct client_opts *o = &a->opts;
	struct buf k = BUF_INIT;

	key_field(&k, q->route ? "relay" : "mx");
	key_field(&k, q->route ? q->route->host : q->domain);
	buf_printf(&k, "%d,%d,%d,", port_of(a), o->tls, o->auth_plaintext);
	key_field(&k, o->auth_user);
	key_secret(a->ctx, &k, o->auth_user ? o->auth_password : NULL);
	key_field(&k, o->bind_address);
	key_field(&k, o->helo);
	buf_printf(&k, "%d,%d,%d,%d,", o->timeouts.connect, o->timeouts.greeting,
	    o->timeouts.command, o->timeouts.data);
	return k.data;		/* the buffer's memory moves */
}

void
remote_deliver(struct remote_ctx *r, struct remote_req *q, remote_done_cb cb,
    void *arg)
{
	struct attempt *a = xcalloc(1, sizeof(*a));
	const struct delivery_conf *d = &r->cfg->delivery;

	a->ctx = r;
	a->req = q;
	a->cb = cb;
	a->arg = arg;
	a->last_class = RESULT_TEMP;
	a->opts.helo = r->cfg->hostname;
	a->opts.tls = d->tls;
	a->opts.bind_address = d->bind_address;
	a->opts.timeouts = d->timeouts;
	if (q->route)
		route_opts(a, q->route);
	a->opts.tls_ctx = a->opts.tls == CLIENT_TLS_VERIFY ? r->tls_verify : r->tls_any;
	a->key = session_key(a);
	a->work.data = a;
	uv_queue_work(r->loop, &a->work, do_read, after_read);
}

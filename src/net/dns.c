/*
 * dns: c-ares on libuv. c-ares tells us which sockets to watch through
 * its socket-state callback; we keep one uv_poll_t per socket and one timer
 * that fires at c-ares' next timeout. Replies are parsed into a flat
 * dns_result that the callback may read but not keep. With the shared
 * cache (dns_cache.h) a reply is stored for its TTL, and a query the cache
 * answers is delivered from an idle handle on the next loop turn, never
 * from inside dns_query, so callers see one behaviour either way.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "dns.h"
#include "dns_cache.h"
#include "dns_wire.h"

struct dns_sock {
	uv_poll_t	 poll;
	ares_socket_t	 fd;
	struct dns	*dns;
	struct dns_sock	*next;
};

/* An answer from the cache, waiting for the next loop turn. */
struct dns_hit {
	struct dns_result r;
	dns_cb		 cb;
	void		*arg;
	struct dns_hit	*next;
};

struct dns {
	uv_loop_t	*loop;
	ares_channel	 channel;
	uv_timer_t	 timer;
	uv_idle_t	 idle;		/* runs while hits are waiting */
	struct dns_sock	*socks;
	struct dns_cache *cache;	/* NULL: none */
	struct dns_hit	*hits, **hits_tail;
	int		 handles;	/* open: d is freed when the last closes */
	int		 closing;
};

struct dns_req {
	struct dns	*dns;
	enum dns_type	 type;
	char		*name;
	dns_cb		 cb;
	void		*arg;
};

static int ares_ready;
/*
 * The table the master maps before it forks (dns_share_cache): inherited
 * by every child, it is the one thing all the resolvers of all the
 * processes share; each resolver takes it when it is made.
 */
static struct dns_cache *shared_cache;

static void arm_timer(struct dns *);

static void
on_poll(uv_poll_t *p, int status, int events)
{
	struct dns_sock *s = p->data;
	ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;

	if (status < 0 || (events & UV_READABLE))
		r = s->fd;
	if (status < 0 || (events & UV_WRITABLE))
		w = s->fd;
	ares_process_fd(s->dns->channel, r, w);
	arm_timer(s->dns);
}

static void
on_timer(uv_timer_t *t)
{
	struct dns *d = t->data;

	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(d);
}

static void
arm_timer(struct dns *d)
{
	struct timeval tv, *tvp;

	if (d->closing)
		return;
	tvp = ares_timeout(d->channel, NULL, &tv);
	if (tvp == NULL) {
		uv_timer_stop(&d->timer);
		return;
	}
	uv_timer_start(&d->timer, on_timer,
	    (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000 + 1, 0);
}

static void
on_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock **pp, *s;
	int ev = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);

	for (pp = &d->socks; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	s = *pp;
	if (ev == 0) {
		if (s) {
			*pp = s->next;
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, on_sock_closed);
		}
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->dns = d;
		s->poll.data = s;
		if (uv_poll_init_socket(d->loop, &s->poll, fd) != 0) {
			free(s);
			return;
		}
		s->next = d->socks;
		d->socks = s;
	}
	uv_poll_start(&s->poll, ev, on_poll);
}

struct dns *
dns_new(uv_loop_t *loop, const char *servers, int timeout_ms, struct buf *err)
{
	struct ares_options o;
	struct dns *d;
	int rc;

	if (!ares_ready) {
		if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
			buf_printf(err, "c-ares init: %s", ares_strerror(rc));
			return NULL;
		}
		ares_ready = 1;
	}
	d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = d;
	/* c-ares doubles the per-try timeout: t + 2t + 4t = the budget */
	o.timeout = timeout_ms / 7 > 0 ? timeout_ms / 7 : 1;
	o.tries = 3;
	rc = ares_init_options(&d->channel, &o,
	    ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		buf_printf(err, "c-ares: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	if (servers && (rc = ares_set_servers_ports_csv(d->channel, servers))
	    != ARES_SUCCESS) {
		buf_printf(err, "dns.servers '%s': %s", servers, ares_strerror(rc));
		ares_destroy(d->channel);
		free(d);
		return NULL;
	}
	uv_timer_init(loop, &d->timer);
	uv_idle_init(loop, &d->idle);
	d->timer.data = d->idle.data = d;
	d->handles = 2;
	d->cache = shared_cache;
	d->hits_tail = &d->hits;
	return d;
}

void
dns_share_cache(struct dns_cache *c)
{
	shared_cache = c;
}

void
dns_result_free(struct dns_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->answers[i].value);
	free(r->answers);
}

static void
add_answer(struct dns_result *r, const char *v, int pref)
{
	r->answers = xrealloc(r->answers, (r->n + 1) * sizeof(*r->answers));
	r->answers[r->n].value = xstrdup(v);
	r->answers[r->n].preference = pref;
	r->n++;
}

static int
parse_addrs(struct dns_result *r, enum dns_type t, unsigned char *ab, int alen)
{
	struct ares_addrttl a4[64];
	struct ares_addr6ttl a6[64];
	char text[INET6_ADDRSTRLEN];
	int n = 64, rc;

	if (t == DNS_A) {
		rc = ares_parse_a_reply(ab, alen, NULL, a4, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
			add_answer(r, inet_ntop(AF_INET, &a4[i].ipaddr, text,
			    sizeof(text)), 0);
	} else {
		rc = ares_parse_aaaa_reply(ab, alen, NULL, a6, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
			add_answer(r, inet_ntop(AF_INET6, &a6[i].ip6addr, text,
			    sizeof(text)), 0);
	}
	return rc;
}

static int
parse_other(struct dns_result *r, enum dns_type t, unsigned char *ab, int alen)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct ares_txt_ext *txt = NULL, *x;
	struct hostent *he = NULL;
	int rc;

	if (t == DNS_MX) {
		rc = ares_parse_mx_reply(ab, alen, &mx);
		for (m = mx; rc == ARES_SUCCESS && m; m = m->next)
			add_answer(r, m->host, m->priority);
		if (mx)
			ares_free_data(mx);
	} else if (t == DNS_TXT) {
		rc = ares_parse_txt_reply_ext(ab, alen, &txt);
		struct buf cur = BUF_INIT;
		for (x = txt; rc == ARES_SUCCESS && x; x = x->next) {
			if (x->record_start && cur.len) {
				add_answer(r, buf_cstr(&cur), 0);
				buf_clear(&cur);
			}
			buf_append(&cur, x->txt, x->length);
		}
		if (rc == ARES_SUCCESS && txt)
			add_answer(r, buf_cstr(&cur), 0);
		buf_free(&cur);
		if (txt)
			ares_free_data(txt);
	} else {
		rc = ares_parse_ptr_reply(ab, alen, NULL, 0, AF_INET, &he);
		if (rc == ARES_SUCCESS && he) {
			add_answer(r, he->h_name, 0);
			for (char **a = he->h_aliases; a && *a; a++)
				add_answer(r, *a, 0);
		}
		if (he)
			ares_free_hostent(he);
	}
	return rc;
}

/*
 * How long r may be kept: the smallest TTL of the answer, or for a
 * negative answer the SOA's (RFC 2308), capped by max_ttl; without an SOA
 * the configured negative TTL. 0 (not kept) for an unreadable reply.
 */
static uint32_t
answer_ttl(struct dns *d, const struct dns_result *r, unsigned char *ab,
    int alen)
{
	struct dns_wire_ttl w;
	uint32_t max, neg, ttl;

	if (ab == NULL || alen <= 0 || dns_wire_ttls(ab, (size_t)alen, &w) < 0)
		return 0;
	dns_cache_ttls(d->cache, &max, &neg);
	if (r->status == DNS_OK)
		ttl = w.has_answer ? w.answer_ttl : 0;
	else
		ttl = w.has_soa ? w.soa_ttl : neg;
	return ttl < max ? ttl : max;
}

static void
cache_store(struct dns_req *q, const struct dns_result *r, unsigned char *ab,
    int alen)
{
	if (r->status != DNS_TEMPFAIL)
		dns_cache_put(q->dns->cache, q->name, q->type, r,
		    answer_ttl(q->dns, r, ab, alen));
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *ab, int alen)
{
	struct dns_req *q = arg;
	struct dns_result r;
	int rc = status;

	(void)timeouts;
	memset(&r, 0, sizeof(r));
	if (status == ARES_SUCCESS) {
		if (q->type == DNS_A || q->type == DNS_AAAA)
			rc = parse_addrs(&r, q->type, ab, alen);
		else
			rc = parse_other(&r, q->type, ab, alen);
	}
	if (rc == ARES_SUCCESS)
		r.status = r.n ? DNS_OK : DNS_NODATA;
	else if (rc == ARES_ENODATA)
		r.status = DNS_NODATA;
	else if (rc == ARES_ENOTFOUND)
		r.status = DNS_NXDOMAIN;
	else
		r.status = DNS_TEMPFAIL;
	r.error = rc == ARES_SUCCESS ? NULL : ares_strerror(rc);
	if (q->dns->cache && !q->dns->closing)
		cache_store(q, &r, ab, alen);
	q->cb(q->arg, &r);
	dns_result_free(&r);
	free(q->name);
	free(q);
}

/* Delivers the waiting hits; those their callbacks add wait a turn more. */
static void
deliver_hits(struct dns *d)
{
	struct dns_hit *h = d->hits, *next;

	d->hits = NULL;
	d->hits_tail = &d->hits;
	for (; h; h = next) {
		next = h->next;
		h->cb(h->arg, &h->r);
		dns_result_free(&h->r);
		free(h);
	}
}

static void
on_idle(uv_idle_t *i)
{
	struct dns *d = i->data;

	uv_idle_stop(i);
	deliver_hits(d);
}

/* 1 when the cache answers name/type: cb runs on the next loop turn. */
static int
cache_answer(struct dns *d, const char *name, enum dns_type t, dns_cb cb,
    void *arg)
{
	struct dns_hit *h = xcalloc(1, sizeof(*h));

	if (!dns_cache_get(d->cache, name, t, &h->r)) {
		free(h);
		return 0;
	}
	h->cb = cb;
	h->arg = arg;
	*d->hits_tail = h;
	d->hits_tail = &h->next;
	uv_idle_start(&d->idle, on_idle);
	return 1;
}

int
dns_cached(struct dns *d, const char *name, enum dns_type t,
    struct dns_result *r)
{
	return d->cache && !d->closing && dns_cache_get(d->cache, name, t, r);
}

void
dns_query(struct dns *d, const char *name, enum dns_type t, dns_cb cb,
    void *arg)
{
	static const int qtypes[] = { ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt,
	    ns_t_ptr };
	struct dns_req *q;

	/* closing: to c-ares, whose destroy cancels it (cb runs once) */
	if (d->cache && !d->closing && cache_answer(d, name, t, cb, arg))
		return;
	q = xcalloc(1, sizeof(*q));
	q->dns = d;
	q->type = t;
	q->name = xstrdup(name);
	q->cb = cb;
	q->arg = arg;
	ares_query(d->channel, name, ns_c_in, qtypes[t], on_answer, q);
	arm_timer(d);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct dns *d = h->data;

	if (--d->handles == 0)
		free(d);
}

void
dns_free(struct dns *d)
{
	d->closing = 1;
	deliver_hits(d);		/* the cache's answers stand */
	ares_destroy(d->channel);	/* pending callbacks run with ECANCELLED */
	uv_timer_stop(&d->timer);
	uv_idle_stop(&d->idle);
	uv_close((uv_handle_t *)&d->timer, on_handle_closed);
	uv_close((uv_handle_t *)&d->idle, on_handle_closed);
}

int
dns_type_parse(const char *s, enum dns_type *t)
{
	static const char *names[] = { "A", "AAAA", "MX", "TXT", "PTR" };

	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*t = (enum dns_type)i;
			return 0;
		}
	return -1;
}

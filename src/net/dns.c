/*
 * dns: c-ares on libuv. c-ares tells us which sockets to watch through
 * its socket-state callback; we keep one uv_poll_t per socket and one timer
 * that fires at c-ares' next timeout. Replies are parsed into a flat
 * dns_result that the callback may read but not keep.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "dns.h"

struct dns_sock {
	uv_poll_t	 poll;
	ares_socket_t	 fd;
	struct dns	*dns;
	struct dns_sock	*next;
};

struct dns {
	uv_loop_t	*loop;
	ares_channel	 channel;
	uv_timer_t	 timer;
	struct dns_sock	*socks;
	int		 closing;
};

struct dns_req {
	struct dns	*dns;
	enum dns_type	 type;
	dns_cb		 cb;
	void		*arg;
};

static int ares_ready;

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
	d->timer.data = d;
	return d;
}

static void
result_free(struct dns_result *r)
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
	q->cb(q->arg, &r);
	result_free(&r);
	free(q);
}

void
dns_query(struct dns *d, const char *name, enum dns_type t, dns_cb cb,
    void *arg)
{
	static const int qtypes[] = { ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt,
	    ns_t_ptr };
	struct dns_req *q = xcalloc(1, sizeof(*q));

	q->dns = d;
	q->type = t;
	q->cb = cb;
	q->arg = arg;
	ares_query(d->channel, name, ns_c_in, qtypes[t], on_answer, q);
	arm_timer(d);
}

static void
on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void
dns_free(struct dns *d)
{
	d->closing = 1;
	ares_destroy(d->channel);	/* pending callbacks run with ECANCELLED */
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, on_timer_closed);
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

/*
 * spf_dns: see spf_dns.h. Why our own layer and not libspf2's resolv
 * layer: that one keeps a private per-thread res_state filled from
 * /etc/resolv.conf, so neither dns.servers (with its port) nor a deadline
 * can reach it, and res_nquery waits whole seconds per try. Here each
 * query waits at most min(dns.timeout, what is left of the check), the
 * type SPF (99) that RFC 7208 3.1 retired is answered "no data" without
 * asking, and void answers are counted. The layer and its context are
 * per thread: a libspf2 server is never shared between threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "spf_dns.h"
#include "spf_wire.h"

#define DNS_PORT	53
#define TCP_LEN_PREFIX	2

static _Thread_local struct spf_dns_ctx *tl_ctx;
static _Thread_local SPF_dns_server_t *tl_layer;

uint64_t
spf_dns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
spf_dns_begin(struct spf_dns_ctx *c)
{
	tl_ctx = c;
}

void
spf_dns_end(void)
{
	tl_ctx = NULL;
}

struct spf_dns_ctx *
spf_dns_current(void)
{
	return tl_ctx;
}

/* One "host[:port]" of the list into s; -1 if it is no address. */
static int
parse_one(const char *tok, struct spf_dns_servers *s)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port = NULL, *colon = strchr(tok, ':');
	struct sockaddr_in *v4 = (struct sockaddr_in *)&s->addr[s->n];
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&s->addr[s->n];
	size_t hl;

	if (tok[0] == '[') {
		const char *end = strchr(tok, ']');
		if (end == NULL)
			return -1;
		hl = (size_t)(end - tok - 1);
		tok++;
		port = end[1] == ':' ? end + 2 : NULL;
	} else if (colon && strchr(colon + 1, ':') == NULL) {
		hl = (size_t)(colon - tok);
		port = colon + 1;
	} else
		hl = strlen(tok);
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, tok, hl);
	host[hl] = '\0';
	int p = port ? atoi(port) : DNS_PORT;
	if (p <= 0 || p > 65535)
		return -1;
	memset(&s->addr[s->n], 0, sizeof(s->addr[s->n]));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		s->len[s->n++] = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		s->len[s->n++] = sizeof(*v6);
	} else
		return -1;
	return 0;
}

/* The IPv4 servers of /etc/resolv.conf (127.0.0.1 when it names none). */
static void
servers_from_resolv(struct spf_dns_servers *s)
{
	struct __res_state rs;

	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) == 0) {
		for (int i = 0; i < rs.nscount && s->n < SPF_DNS_SERVERS_MAX; i++)
			if (rs.nsaddr_list[i].sin_family == AF_INET) {
				memcpy(&s->addr[s->n], &rs.nsaddr_list[i],
				    sizeof(rs.nsaddr_list[i]));
				s->len[s->n++] = sizeof(struct sockaddr_in);
			}
		res_nclose(&rs);
	}
	if (s->n == 0)
		parse_one("127.0.0.1", s);
}

int
spf_dns_servers_parse(const char *csv, struct spf_dns_servers *s, char *why,
    size_t whylen)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	if (csv == NULL || *csv == '\0') {
		servers_from_resolv(s);
		return 0;
	}
	copy = xstrdup(csv);
	for (tok = strtok_r(copy, ", ", &save); tok && rc == 0;
	    tok = strtok_r(NULL, ", ", &save))
		if (s->n < SPF_DNS_SERVERS_MAX && parse_one(tok, s) < 0) {
			snprintf(why, whylen, "'%s' is not ip[:port]", tok);
			rc = -1;
		}
	free(copy);
	if (rc == 0 && s->n == 0) {
		snprintf(why, whylen, "no server in '%s'", csv);
		rc = -1;
	}
	return rc;
}

/* Milliseconds this query may wait: 0 once the check's deadline passed. */
static int
wait_budget(struct spf_dns_ctx *c)
{
	uint64_t now = spf_dns_now_ms();

	if (now >= c->deadline_ms) {
		c->timed_out = 1;
		return 0;
	}
	if (c->deadline_ms - now < (uint64_t)c->query_timeout_ms)
		return (int)(c->deadline_ms - now);
	return c->query_timeout_ms;
}

/* Waits for fd to be ready for events until until_ms; 1 ready, 0 not. */
static int
wait_fd(int fd, short events, uint64_t until_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;

	while ((now = spf_dns_now_ms()) < until_ms) {
		int rc = poll(&p, 1, (int)(until_ms - now));
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return 0;
	}
	return 0;
}

/* Reads or writes exactly n bytes on fd before until_ms; 0 or -1. */
static int
tcp_io(int fd, unsigned char *p, size_t n, int out, uint64_t until_ms)
{
	while (n > 0) {
		ssize_t k;
		if (!wait_fd(fd, out ? POLLOUT : POLLIN, until_ms))
			return -1;
		k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k <= 0 && !(k < 0 && (errno == EINTR || errno == EAGAIN)))
			return -1;
		if (k > 0) {
			p += k;
			n -= (size_t)k;
		}
	}
	return 0;
}

/* The query over TCP (RFC 7766); the reply's length, or -1. */
static ssize_t
exchange_tcp(const struct spf_dns_servers *s, size_t i, unsigned char *q,
    size_t qlen, unsigned char *ans, size_t anslen, uint64_t until_ms)
{
	unsigned char pre[TCP_LEN_PREFIX] = { qlen >> 8, qlen & 0xff };
	ssize_t got = -1;
	int fd = socket(s->addr[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if ((connect(fd, (const struct sockaddr *)&s->addr[i], s->len[i]) == 0
	    || errno == EINPROGRESS) &&
	    tcp_io(fd, pre, sizeof(pre), 1, until_ms) == 0 &&
	    tcp_io(fd, q, qlen, 1, until_ms) == 0 &&
	    tcp_io(fd, pre, sizeof(pre), 0, until_ms) == 0) {
		size_t n = (size_t)pre[0] << 8 | pre[1];
		if (n <= anslen && tcp_io(fd, ans, n, 0, until_ms) == 0)
			got = (ssize_t)n;
	}
	close(fd);
	return got;
}

/*
 * The query over UDP to server i: the first datagram that is a reply to
 * it (others are dropped, RFC 5452 9.1). Its length, or -1.
 */
static ssize_t
exchange_udp(const struct spf_dns_servers *s, size_t i, const unsigned char *q,
    size_t qlen, unsigned char *ans, size_t anslen, uint64_t until_ms)
{
	ssize_t got = -1;
	int fd = socket(s->addr[i].ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&s->addr[i], s->len[i]) == 0 &&
	    send(fd, q, qlen, 0) == (ssize_t)qlen)
		while (got < 0 && wait_fd(fd, POLLIN, until_ms)) {
			ssize_t k = recv(fd, ans, anslen, 0);
			if (k < 0 && errno != EINTR && errno != EAGAIN)
				break;	/* ICMP refused: server down */
			if (k >= 2 && memcmp(ans, q, 2) == 0)
				got = k;
		}
	close(fd);
	return got;
}

/* What spf_wire_answer hands over, appended to the libspf2 record set. */
static int
add_rr(void *arg, const void *data, size_t len)
{
	SPF_dns_rr_t *rr = arg;

	if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, len + 1) != SPF_E_SUCCESS)
		return -1;
	memcpy(rr->rr[rr->num_rr], data, len);
	((char *)rr->rr[rr->num_rr])[len] = '\0';
	rr->num_rr++;
	return 0;
}

/* rr_sink's reset for a libspf2 record set. */
static void
reset_rr(void *arg)
{
	((SPF_dns_rr_t *)arg)->num_rr = 0;
}

/*
 * One server's answer to q into s: TEMPFAIL when it said nothing usable
 * in time (the next server is then asked).
 */
static enum spf_wire_status
ask_server(struct spf_dns_ctx *c, size_t i, unsigned char *q, size_t qlen,
    int qtype, const struct spf_dns_sink *s)
{
	static _Thread_local unsigned char ans[UINT16_MAX];
	int budget = wait_budget(c);
	uint64_t until = spf_dns_now_ms() + (uint64_t)budget;
	enum spf_wire_status st;
	ssize_t n;

	if (budget == 0)
		return SPF_WIRE_TEMPFAIL;
	n = exchange_udp(c->servers, i, q, qlen, ans, SPF_WIRE_UDP_MAX, until);
	st = n < 0 ? SPF_WIRE_TEMPFAIL : spf_wire_answer(q, qlen, ans,
	    (size_t)n, qtype, s->add, s->arg);
	if (st == SPF_WIRE_TRUNCATED) {
		s->reset(s->arg);
		n = exchange_tcp(c->servers, i, q, qlen, ans, sizeof(ans), until);
		st = n < 0 ? SPF_WIRE_TEMPFAIL : spf_wire_answer(q, qlen, ans,
		    (size_t)n, qtype, s->add, s->arg);
	}
	if (st == SPF_WIRE_BAD || st == SPF_WIRE_TRUNCATED) {
		s->reset(s->arg);
		st = SPF_WIRE_TEMPFAIL;
	}
	if (spf_dns_now_ms() >= c->deadline_ms && st == SPF_WIRE_TEMPFAIL)
		c->timed_out = 1;
	return st;
}

static SPF_dns_stat_t
herrno_of(enum spf_wire_status st)
{
	switch (st) {
	case SPF_WIRE_OK:
		return NETDB_SUCCESS;
	case SPF_WIRE_NODATA:
		return NO_DATA;
	case SPF_WIRE_NXDOMAIN:
		return HOST_NOT_FOUND;
	default:
		return TRY_AGAIN;
	}
}

/* Asks the servers in turn until one answers; the status. */
static enum spf_wire_status
resolve(struct spf_dns_ctx *c, const char *domain, int qtype,
    const struct spf_dns_sink *s)
{
	unsigned char q[SPF_WIRE_QUERY_MAX];
	uint16_t id;
	int qlen;
	enum spf_wire_status st = SPF_WIRE_TEMPFAIL;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)spf_dns_now_ms();
	if ((qlen = spf_wire_query(domain, qtype, id, q)) < 0)
		return SPF_WIRE_NXDOMAIN;	/* no such name can exist */
	c->lookups++;
	for (size_t i = 0; i < c->servers->n && st == SPF_WIRE_TEMPFAIL; i++)
		st = ask_server(c, i, q, (size_t)qlen, qtype, s);
	/* TXT is left out: a void include or redirect is a permerror anyway,
	 * and an exp= that finds nothing must not turn a fail into one */
	if ((st == SPF_WIRE_NODATA || st == SPF_WIRE_NXDOMAIN) &&
	    qtype != ns_t_txt)
		c->voids++;
	return st;
}

/* spf_wire_answer's sink when only the status matters (dkim's raw query). */
static int
skip_rr(void *arg, const void *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

/* dkim: server i's reply to q into ans; its length, or -1 to ask the next. */
static int
raw_from_server(struct spf_dns_ctx *c, size_t i, unsigned char *q,
    size_t qlen, int qtype, unsigned char *ans, size_t anslen)
{
	int budget = wait_budget(c);
	uint64_t until = spf_dns_now_ms() + (uint64_t)budget;
	size_t udpmax = anslen < SPF_WIRE_UDP_MAX ? anslen : SPF_WIRE_UDP_MAX;
	enum spf_wire_status st = SPF_WIRE_TEMPFAIL;
	ssize_t n;

	if (budget == 0)
		return -1;
	n = exchange_udp(c->servers, i, q, qlen, ans, udpmax, until);
	if (n >= 0)
		st = spf_wire_answer(q, qlen, ans, (size_t)n, qtype, skip_rr, NULL);
	if (st == SPF_WIRE_TRUNCATED) {
		n = exchange_tcp(c->servers, i, q, qlen, ans, anslen, until);
		st = n < 0 ? SPF_WIRE_TEMPFAIL : spf_wire_answer(q, qlen, ans,
		    (size_t)n, qtype, skip_rr, NULL);
	}
	if (st != SPF_WIRE_OK && st != SPF_WIRE_NODATA && st != SPF_WIRE_NXDOMAIN)
		return -1;
	return (int)n;
}

int
spf_dns_query_raw(struct spf_dns_ctx *c, const char *name, int qtype,
    unsigned char *ans, size_t anslen)
{
	unsigned char q[SPF_WIRE_QUERY_MAX];
	uint16_t id;
	int qlen, n = -1;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)spf_dns_now_ms();
	if ((qlen = spf_wire_query(name, qtype, id, q)) < 0)
		return -1;
	c->lookups++;
	for (size_t i = 0; i < c->servers->n && n < 0; i++)
		n = raw_from_server(c, i, q, (size_t)qlen, qtype, ans, anslen);
	if (n < 0 && spf_dns_now_ms() >= c->deadline_ms)
		c->timed_out = 1;
	return n;
}

/* SPF_dns_lookup_t: never NULL (libspf2 reads NULL as out of memory). */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, domain, type, 0,
	    NETDB_SUCCESS);
	struct spf_dns_sink sink = { add_rr, reset_rr, rr };
	enum spf_wire_status st;

	(void)should_cache;
	if (rr == NULL)
		return NULL;
	if (type == ns_t_spf || tl_ctx == NULL)
		st = SPF_WIRE_NODATA;	/* retired type; no check running */
	else
		st = resolve(tl_ctx, domain, type, &sink);
	rr->herrno = herrno_of(st);
	if (tl_ctx)
		tl_ctx->last_tempfail = rr->herrno == TRY_AGAIN;
	if (st != SPF_WIRE_OK)
		rr->num_rr = 0;
	return rr;
}

SPF_dns_stat_t
spf_dns_txt(const char *domain, const struct spf_dns_sink *s)
{
	enum spf_wire_status st = SPF_WIRE_TEMPFAIL;

	if (tl_ctx) {
		st = resolve(tl_ctx, domain, ns_t_txt, s);
		tl_ctx->last_tempfail = herrno_of(st) == TRY_AGAIN;
	}
	if (st != SPF_WIRE_OK)
		s->reset(s->arg);
	return herrno_of(st);
}

SPF_dns_server_t *
spf_dns_layer(void)
{
	if (tl_layer == NULL) {
		tl_layer = xcalloc(1, sizeof(*tl_layer));
		tl_layer->lookup = layer_lookup;
		tl_layer->name = "indimail";
	}
	return tl_layer;
}

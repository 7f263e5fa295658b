/*
 * smtp_auth_limit: failed AUTH counted across every session and worker, on
 * the counters the master shares (src/lib/counter.c): per client
 * ("authfail-ip:<ip>", an IPv6 client by its /64) and per user
 * ("authfail-user:<user in lower case>"), each over auth_fail_limit.window
 * seconds. Past either limit AUTH is answered 454 before any password is
 * checked, so the right one does not help while the lock lasts; and the
 * reply to a failure waits longer with the client's count, so a client
 * that reconnects after each failure does not start the delay over. A
 * success resets nothing. Without the table (no master) none of it applies.
 */
#include <ctype.h>
#include <string.h>

#include "../lib/counter.h"
#include "smtp_session_int.h"

/* "authfail-ip:" and the client: its address, or an IPv6 client's /64. */
static void
key_ip(struct buf *k, const struct smtp_session *s)
{
	const struct sockaddr_in6 *a6 = (const void *)&s->peer;
	struct in6_addr net;
	char text[INET6_ADDRSTRLEN];

	buf_appends(k, "authfail-ip:");
	if (s->peer.ss_family != AF_INET6 ||
	    IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
		buf_appends(k, s->ip);
		return;
	}
	net = a6->sin6_addr;
	memset(net.s6_addr + 8, 0, 8);
	inet_ntop(AF_INET6, &net, text, sizeof(text));
	buf_printf(k, "%s/64", text);
}

static void
key_user(struct buf *k, const char *user)
{
	buf_appends(k, "authfail-user:");
	for (; *user; user++)
		buf_appendc(k, (char)tolower((unsigned char)*user));
}

/* The count of the client's (user NULL) or user's key, after adding delta. */
static long
count_of(struct smtp_session *s, const char *user, long delta)
{
	struct buf k = BUF_INIT;
	long n;

	if (user)
		key_user(&k, user);
	else
		key_ip(&k, s);
	n = delta ? counter_add(s->srv->counters, buf_cstr(&k),
	    (unsigned)smtp_cfg(s)->auth_fail.window_s, delta) :
	    counter_get(s->srv->counters, buf_cstr(&k));
	buf_free(&k);
	return n;
}

static void
log_locked(struct smtp_session *s, const char *user, const char *which,
    long n, int limit)
{
	struct logline l;
	struct buf why = BUF_INIT;

	buf_printf(&why, "%ld failed authentications for this %s within %d s "
	    "(limit %d)", n, which, smtp_cfg(s)->auth_fail.window_s, limit);
	smtp_log_session(s, &l, LOG_WARN, "auth_locked");
	log_kv(&l, "user", user ? user : "");
	log_kv(&l, "ip", s->ip);
	log_kv(&l, "reason", buf_cstr(&why));
	log_end(&l);
	buf_free(&why);
}

/*
 * Is AUTH as user (NULL: no usable name) from this client refused for
 * now? Then it is logged and answered 454, and counts as an error.
 */
int
smtp_auth_locked(struct smtp_session *s, const char *user)
{
	const struct auth_fail_conf *a = &smtp_cfg(s)->auth_fail;
	long n;

	if (s->srv->counters == NULL)
		return 0;
	if (a->per_ip > 0 && (n = count_of(s, NULL, 0)) >= a->per_ip)
		log_locked(s, user, "ip", n, a->per_ip);
	else if (user && a->per_user > 0 &&
	    (n = count_of(s, user, 0)) >= a->per_user)
		log_locked(s, user, "user", n, a->per_user);
	else
		return 0;
	s->errors++;
	smtp_reply(s, "454 4.7.0 Too many failed authentications, try again "
	    "later");
	return 1;
}

/* A failure: one more for the client and (when named) the user. */
void
smtp_auth_count_failure(struct smtp_session *s, const char *user)
{
	s->auth_ip_fails = 0;
	if (s->srv->counters == NULL)
		return;
	s->auth_ip_fails = count_of(s, NULL, 1);
	if (user)
		count_of(s, user, 1);
}

/* What the client's count adds to a failure's delay: delay doubling. */
uint64_t
smtp_auth_shared_delay(struct smtp_session *s)
{
	const struct auth_fail_conf *a = &smtp_cfg(s)->auth_fail;
	long n = s->auth_ip_fails;
	uint64_t ms, max = (uint64_t)a->delay_max_ms;

	if (n <= 0 || a->delay_ms <= 0)
		return 0;
	ms = n > 30 ? max : (uint64_t)a->delay_ms << (n - 1);
	return ms < max ? ms : max;
}

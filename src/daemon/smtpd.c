/*
 * worker: the SMTP worker process. Opens its loop, DNS resolver, TLS
 * context and queue, listens on the inherited sockets, and handles
 * SIGHUP (reload the configuration into a new runtime; on failure keep
 * the old one and log why) and SIGTERM (drain, then exit).
 */
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lua/lua_hook.h"
#include "../net/connlimit.h"
#include "../net/dns.h"
#include "../net/tls.h"
#include "../smtp/smtp_session.h"
#include "listen.h"
#include "../lib/log.h"
#include "master.h"
#include "../lib/watchdog.h"
#include "smtpd.h"
#include "../lib/xalloc.h"

static void
on_connection(uv_stream_t *server, int status)
{
	struct worker_listener *wl = server->data;

	if (status < 0) {
		log_event(LOG_WARN, "accept_error", "error=%s", uv_strerror(status));
		return;
	}
	smtp_session_accept(wl);
}

static void
on_reload(uv_signal_t *sig, int signum)
{
	struct worker *w = sig->data;
	struct buf err = BUF_INIT;
	struct runtime *rt;

	(void)signum;
	watchdog_enter();
	rt = runtime_load(w->rt->path, &err);
	watchdog_leave();
	if (rt == NULL) {
		struct logline l;
		log_begin(&l, LOG_ERROR, "reload_failed");
		log_kv(&l, "error", buf_cstr(&err));
		log_end(&l);
		buf_free(&err);
		return;
	}
	runtime_unref(w->rt);
	w->rt = rt;
	watchdog_set_limit(rt->cfg.timeout_watchdog);
	log_event(LOG_INFO, "reloaded", "hooks_connect=%d hooks_rcpt=%d",
	    rt->nhooks[HOOK_CONNECT], rt->nhooks[HOOK_RCPT]);
}

void
worker_notify_queued(struct worker *w, int queue, const char *id)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%d %s", queue, id);

	/* Lost datagrams (queue manager restarting) are found by its rescan. */
	if (send(w->notify_fd, msg, (size_t)n, MSG_DONTWAIT) < 0)
		log_event(LOG_DEBUG, "notify_failed", "qid=%s", id);
}

static void
maybe_exit(struct worker *w)
{
	if (w->draining && w->nsessions == 0) {
		log_event(LOG_INFO, "queue_stats", "flushes=%lu messages=%lu",
		    w->queue.writer.batches, w->queue.writer.items);
		log_event(LOG_INFO, "worker_exit", "reason=drained");
		exit(0);
	}
}

void
worker_session_gone(struct worker *w)
{
	w->nsessions--;
	maybe_exit(w);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	struct worker *w = t->data;

	log_event(LOG_WARN, "worker_exit", "reason=drain_timeout sessions=%zu",
	    w->nsessions);
	exit(0);
}

static void
on_term(uv_signal_t *sig, int signum)
{
	struct worker *w = sig->data;

	(void)signum;
	if (w->draining)
		return;
	w->draining = 1;
	log_event(LOG_INFO, "draining", "sessions=%zu", w->nsessions);
	for (size_t i = 0; i < w->nlisteners; i++)
		uv_close((uv_handle_t *)&w->listeners[i].h, NULL);
	uv_timer_init(w->loop, &w->drain_timer);
	w->drain_timer.data = w;
	uv_timer_start(&w->drain_timer, on_drain_timeout,
	    (uint64_t)w->rt->cfg.timeout_drain, 0);
	uv_unref((uv_handle_t *)&w->drain_timer);
	smtp_session_drain_all(w);
	maybe_exit(w);
}

static void
open_listeners(struct worker *w, const struct listener *ls, size_t n)
{
	w->nlisteners = n;
	w->listeners = xcalloc(n, sizeof(*w->listeners));
	for (size_t i = 0; i < n; i++) {
		struct worker_listener *l = &w->listeners[i];
		int rc;

		l->w = w;
		l->name = xstrdup(ls[i].name);
		l->tls = ls[i].tls;
		l->tls_ctx = ls[i].tls_ctx;
		l->local = ls[i].path != NULL;
		if (l->local) {
			uv_pipe_init(w->loop, &l->h.pipe, 0);
			rc = uv_pipe_open(&l->h.pipe, ls[i].fd);
		} else {
			uv_tcp_init(w->loop, &l->h.tcp);
			rc = uv_tcp_open(&l->h.tcp, ls[i].fd);
		}
		l->h.tcp.data = l;
		if (rc != 0 || (rc = uv_listen((uv_stream_t *)&l->h, 1024,
		    on_connection)) != 0)
			fatal("listener %s: %s", l->name, uv_strerror(rc));
	}
}

static void
open_services(struct worker *w)
{
	struct config *c = &w->rt->cfg;
	struct buf err = BUF_INIT;

	if (queue_set_init(&w->queue, c->queue_path, c->queue_count,
	    c->queue_split, &err) < 0)
		fatal("queue: %s", buf_cstr(&err));
	w->dns = dns_new(w->loop, c->dns_servers, c->dns_timeout_ms, &err);
	if (w->dns == NULL)
		fatal("dns: %s", buf_cstr(&err));
	hook_set_env(w->loop, w->dns);
	buf_free(&err);
}

void
worker_main(int index, struct runtime *rt, const struct listener *ls,
    size_t nls, struct connlimit *conns, int notify_fd)
{
	static struct worker wk;
	struct worker *w = &wk;

	log_set_role("smtp");
	signal(SIGPIPE, SIG_IGN);
	w->loop = xcalloc(1, sizeof(uv_loop_t));
	uv_loop_init(w->loop);
	w->index = index;
	w->rt = rt;
	w->conns = conns;
	w->notify_fd = notify_fd;
	open_services(w);
	open_listeners(w, ls, nls);
	uv_signal_init(w->loop, &w->sighup);
	uv_signal_init(w->loop, &w->sigterm);
	uv_signal_init(w->loop, &w->sigint);
	w->sighup.data = w->sigterm.data = w->sigint.data = w;
	uv_signal_start(&w->sighup, on_reload, SIGHUP);
	uv_signal_start(&w->sigterm, on_term, SIGTERM);
	uv_signal_start(&w->sigint, on_term, SIGINT);
	watchdog_start(rt->cfg.timeout_watchdog, smtp_session_watchdog, w);
	unblock_signals();	/* blocked since the fork, see master.c */
	log_event(LOG_INFO, "worker_start", "index=%d", index);
	uv_run(w->loop, UV_RUN_DEFAULT);
	exit(0);
}

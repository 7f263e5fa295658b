/*
 * smtpd: the SMTP worker process. Opens its loop, DNS resolver and queue,
 * hands the inherited sockets to an SMTP server (src/smtp serves them),
 * and does the process's part: SIGHUP (reload the configuration into a
 * new runtime; on failure keep the old one and log why; a domain file
 * that no longer loads keeps its running version), SIGUSR2 (forget
 * cached directory answers: an admin changed users), SIGTERM (drain,
 * then exit once the queue backend has nothing running, or exit at the
 * drain timeout), the watchdog, and telling the queue manager of each
 * queued message (the wal backend tells it after its checkpoint).
 *
 * TLS on reload: the worker cannot read the key (root's), so the master
 * sends the files' bytes it has validated over the ctl channel before the
 * SIGHUP (ctl.h); the worker builds its own contexts from them with the
 * new configuration's profiles and swaps them into its listeners. A new
 * handshake uses the new context; a session already in TLS keeps its SSL
 * object, which holds a reference to the old context (SSL_CTX is counted,
 * freed with the last session). A worker forked later inherits the
 * master's current contexts and needs no message.
 */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/watchdog.h"
#include "../lib/xalloc.h"
#include "../lua/lua_counter.h"
#include "../lua/lua_domain.h"
#include "../lua/lua_hook.h"
#include "../net/dns.h"
#include "../net/tls.h"
#include "ctl.h"
#include "listen.h"
#include "master.h"
#include "notify.h"
#include "smtpd.h"

/* The new configuration for new sessions (running ones keep theirs). */
static void
use_runtime(struct worker *w, struct runtime *rt)
{
	domain_rules_inherit(rt, w->srv.rt);	/* a broken domain file */
	directory_put(w->dir);
	w->dir = directory_get(w->srv.loop, &rt->cfg);
	runtime_unref(w->srv.rt);
	w->srv.rt = rt;		/* new sessions start under it */
	watchdog_set_limit(rt->cfg.timeout_watchdog);
	proc_log_settings(&rt->cfg);
	log_event(LOG_INFO, "reloaded", "hooks_connect=%d hooks_rcpt=%d",
	    rt->nhooks[HOOK_CONNECT], rt->nhooks[HOOK_RCPT]);
}

/* ctl_apply's callback: keeps the files until the configuration is in. */
static void
stash_tls(void *arg, const struct buf *cert, const struct buf *key)
{
	struct worker *w = arg;

	buf_wipe(&w->tls_cert);
	buf_wipe(&w->tls_key);
	buf_set(&w->tls_cert, cert->data, cert->len);
	buf_set(&w->tls_key, key->data, key->len);
	w->tls_pending = 1;
}

/*
 * New contexts for the listeners from the stashed files (the master kept
 * the old ones when the listeners changed: so do we).
 */
static void
swap_tls(struct worker *w)
{
	const struct config *c = &w->srv.rt->cfg;
	struct buf err = BUF_INIT;
	SSL_CTX **ctx = NULL;

	if (listen_same(w->ls, w->nls, c) &&
	    (ctx = tls_listener_ctxs(c, &w->tls_cert, &w->tls_key, &err)) == NULL)
		log_event(LOG_ERROR, "reload_tls_failed", "error=\"%s\"",
		    buf_cstr(&err));
	for (size_t i = 0; ctx && i < c->nlisten; i++) {
		SSL_CTX_free(w->srv.listeners[i].tls_ctx);
		w->srv.listeners[i].tls_ctx = ctx[i];	/* for new handshakes */
	}
	free(ctx);
	buf_wipe(&w->tls_cert);
	buf_wipe(&w->tls_key);
	w->tls_pending = 0;
	buf_free(&err);
}

/* The configuration the master loaded, for new sessions. */
static void
load_runtime(struct worker *w)
{
	struct buf err = BUF_INIT;
	struct runtime *rt;

	watchdog_enter();
	rt = runtime_load(w->srv.rt->path, &err);
	watchdog_leave();
	if (rt == NULL) {
		struct logline l;
		log_begin(&l, LOG_ERROR, "reload_failed");
		log_kv(&l, "error", buf_cstr(&err));
		log_end(&l);
		buf_free(&err);
	} else
		use_runtime(w, rt);
}

static void
on_reload(uv_signal_t *sig, int signum)
{
	struct worker *w = sig->data;

	(void)signum;
	/* the log reopened, first; a configuration only if the master's loaded */
	if (ctl_apply(w->ctl_fd, stash_tls, w))
		load_runtime(w);
	if (w->tls_pending)
		swap_tls(w);
}

/*
 * Tells the queue manager a message is in the queue (notify.c: a line
 * that cannot go now is kept and sent once the socket has room, so this
 * never fails). The wal backend calls it after its checkpoint.
 */
static int
announce(void *arg, int queue, const char *id)
{
	struct worker *w = arg;

	notify_send(w->notify, queue, id);
	return 0;
}

static void
on_queued(struct smtp_server *srv, int queue, const char *id)
{
	(void)announce(srv->arg, queue, id);
}

/* Checkpoints still running while draining: looked at again this often. */
#define EXIT_POLL_MS	10

static void
exit_drained(struct worker *w)
{
	log_event(LOG_INFO, "queue_stats", "flushes=%lu messages=%lu",
	    w->queue.writer.batches, w->queue.writer.items);
	log_event(LOG_INFO, "worker_exit", "reason=drained");
	notify_flush(w->notify);
	exit(0);
}

static void
on_exit_poll(uv_timer_t *t)
{
	struct worker *w = t->data;
	const struct queue_backend *qb = w->queue.backend;

	if (qb->busy == NULL || !qb->busy(&w->queue))
		exit_drained(w);
}

/* No session left; the queue backend may still be writing files out. */
static void
on_drained(struct smtp_server *srv)
{
	struct worker *w = srv->arg;

	uv_timer_init(w->srv.loop, &w->exit_timer);
	w->exit_timer.data = w;
	uv_timer_start(&w->exit_timer, on_exit_poll, 0, EXIT_POLL_MS);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	struct worker *w = t->data;

	log_event(LOG_WARN, "worker_exit", "reason=drain_timeout sessions=%zu",
	    w->srv.nsessions);
	notify_flush(w->notify);
	exit(0);
}

static void
on_term(uv_signal_t *sig, int signum)
{
	struct worker *w = sig->data;

	(void)signum;
	if (w->srv.draining)
		return;
	log_event(LOG_INFO, "draining", "sessions=%zu", w->srv.nsessions);
	uv_timer_init(w->srv.loop, &w->drain_timer);
	w->drain_timer.data = w;
	uv_timer_start(&w->drain_timer, on_drain_timeout,
	    (uint64_t)w->srv.rt->cfg.timeout_drain, 0);
	uv_unref((uv_handle_t *)&w->drain_timer);
	smtp_server_drain(&w->srv);
}

static void
open_listeners(struct worker *w, const struct listener *ls, size_t n)
{
	w->srv.nlisteners = n;
	w->srv.listeners = xcalloc(n, sizeof(*w->srv.listeners));
	for (size_t i = 0; i < n; i++) {
		struct smtp_listener *l = &w->srv.listeners[i];
		int rc;

		l->name = xstrdup(ls[i].name);
		l->tls = ls[i].tls;
		l->tls_ctx = ls[i].tls_ctx;
		l->local = ls[i].path != NULL;
		if ((rc = smtp_listener_open(&w->srv, l, ls[i].fd)) != 0)
			fatal("listener %s: %s", l->name, uv_strerror(rc));
	}
}

static void
open_services(struct worker *w)
{
	struct config *c = &w->srv.rt->cfg;
	struct buf err = BUF_INIT;

	if (queue_set_init(&w->queue, c->queue_path, c->queue_count,
	    c->queue_split, &err) < 0)
		fatal("queue: %s", buf_cstr(&err));
	w->queue.backend = queue_backend_of(c->queue_backend);
	w->queue.announce = announce;
	w->queue.announce_arg = w;
	w->srv.queue = &w->queue;
	w->srv.dns = dns_new(w->srv.loop, c->dns_servers, c->dns_timeout_ms,
	    &err);
	if (w->srv.dns == NULL)
		fatal("dns: %s", buf_cstr(&err));
	hook_set_env(w->srv.loop, w->srv.dns);
	w->dir = directory_get(w->srv.loop, c);
	buf_free(&err);
}

static void
on_directory_change(uv_signal_t *sig, int signum)
{
	(void)signum;
	directory_flush_loop(sig->loop);
	log_event(LOG_INFO, "directory_flushed", "by=signal");
}

static void
start_signals(struct worker *w)
{
	uv_signal_init(w->srv.loop, &w->sighup);
	uv_signal_init(w->srv.loop, &w->sigterm);
	uv_signal_init(w->srv.loop, &w->sigint);
	uv_signal_init(w->srv.loop, &w->sigusr2);
	w->sighup.data = w->sigterm.data = w->sigint.data = w;
	uv_signal_start(&w->sighup, on_reload, SIGHUP);
	uv_signal_start(&w->sigterm, on_term, SIGTERM);
	uv_signal_start(&w->sigint, on_term, SIGINT);
	uv_signal_start(&w->sigusr2, on_directory_change, SIGUSR2);
}

void
worker_main(int index, struct runtime *rt, const struct listener *ls,
    size_t nls, struct connlimit *conns, struct counter_table *counters,
    int notify_fd, int ctl_fd)
{
	static struct worker wk;
	struct worker *w = &wk;

	log_set_role("smtp");
	signal(SIGPIPE, SIG_IGN);
	w->srv.loop = xcalloc(1, sizeof(uv_loop_t));
	uv_loop_init(w->srv.loop);
	w->srv.index = index;
	w->srv.rt = rt;
	w->srv.conns = conns;
	w->srv.counters = counters;
	hook_set_counters(counters);	/* indimail.counter */
	w->srv.queued = on_queued;
	w->srv.drained = on_drained;
	w->srv.arg = w;
	w->notify_fd = notify_fd;
	w->notify = notify_sender_new(w->srv.loop, notify_fd);
	w->ctl_fd = ctl_fd;
	w->ls = ls;
	w->nls = nls;
	open_services(w);
	open_listeners(w, ls, nls);
	start_signals(w);
	watchdog_start(rt->cfg.timeout_watchdog, smtp_server_watchdog, &w->srv);
	unblock_signals();	/* blocked since the fork, see master.c */
	log_event(LOG_INFO, "worker_start", "index=%d", index);
	uv_run(w->srv.loop, UV_RUN_DEFAULT);
	notify_flush(w->notify);
	exit(0);
}

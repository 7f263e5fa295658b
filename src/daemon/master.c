/*
 * master: started as root, it never runs the configuration itself: an
 * unprivileged child evaluates it and returns the plan (bootstrap.c); the
 * master binds the TCP listeners (port 0 = any free port, logged), opens
 * the log and reads the TLS files as root, drops to the account and loads
 * the configuration as it. It then cleans the queue's tmp folders, binds
 * the local submission socket and forks the queue manager and the workers,
 * which die with it (PR_SET_PDEATHSIG). It then only waits for signals: a
 * dead child is replaced (after a pause if it died young), SIGHUP reloads
 * the configuration (listeners stay as bound), SIGUSR2 makes every child
 * forget its cached directory answers, SIGTERM/SIGINT drain.
 *
 * What a SIGHUP re-opens beyond the configuration (the log, the TLS
 * files) is reload.c's, through root's keeper (keeper.c) and each
 * child's ctl channel (ctl.c); the design is explained there.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qmgrd.h"
#include "admind.h"
#include "../lib/counter.h"
#include "../mail/mail_metrics.h"
#include "../lua/lua_counter.h"
#include "../lua/lua_domain.h"
#include "../lua/lua_hook.h"
#include "../net/connlimit.h"
#include "../net/dns.h"
#include "../net/dns_cache.h"
#include "../net/tls.h"
#include "../queue/queue.h"
#include "bootstrap.h"
#include "ctl.h"
#include "keeper.h"
#include "notify.h"
#include "reload.h"
#include "proc.h"
#include "../lib/fsutil.h"
#include "listen.h"
#include "../lib/log.h"
#include "../lib/sdnotify.h"
#include "master.h"
#include "master_int.h"
#include "smtpd.h"
#include "../lib/xalloc.h"

struct child {
	pid_t		 pid;
	time_t		 started;
	struct ctl	 ctl;		/* reopened files for it (ctl.h) */
};

static volatile sig_atomic_t got_chld, got_hup, got_term, got_usr2;
static volatile sig_atomic_t got_io;	/* a reload request */
static volatile sig_atomic_t got_alrm;	/* time to sweep */
static struct runtime *rt;
static struct child *children;
static int nworkers;
static struct listener *lst;	/* bound once, inherited by every child */
static size_t nlst;
static struct connlimit *conns;
static struct counter_table *counters;	/* outlive every child and reload */
static struct dns_cache *dns_cache;	/* the same; NULL: dns_cache.size 0 */
static size_t dns_cache_asked;		/* the dns_cache.size it was made for */
static struct queue_set queue;
static int notify_fds[2];	/* [0] queue manager reads, [1] workers send */
static struct child qmgr, admin;	/* the queue manager, the admin API */
static pid_t master_pid;
static struct reload_files files = { -1, NULL, NULL, NULL, NULL, NULL };	/* reload.h */

/* Shared counts (failed AUTH per IP and per user): 8192 keys, 2.6 MB. */
#define COUNTER_SLOTS	8192

/*
 * how often the master recovers the segments of writers that were
 * still running when it looked (a predecessor's orphans, draining or dying).
 */
#define WAL_SWEEP_SECONDS	2

static void
on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_chld = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR2)
		got_usr2 = 1;
	else if (sig == SIGIO)
		got_io = 1;
	else if (sig == SIGALRM)
		got_alrm = 1;
	else
		got_term = 1;
}

/* Root's helper for reloads, with the start's paths (keeper.h). */
static void
start_keeper(const struct boot_plan *p)
{
	files.keeper = keeper_start(p);
	files.log = p->log_file ? xstrdup(p->log_file) : NULL;
	files.cert = p->tls_cert ? xstrdup(p->tls_cert) : NULL;
	files.key = p->tls_key ? xstrdup(p->tls_key) : NULL;
	if (p->admin && p->admin_tls && p->admin_cert && p->admin_key) {
		files.admin_cert = xstrdup(p->admin_cert);
		files.admin_key = xstrdup(p->admin_key);
	}
}

/*
 * In a new child: the keeper and the other children's channels are the
 * master's alone (its own channel's child end stays open).
 */
static void
close_master_ends(void)
{
	if (files.keeper >= 0)
		close(files.keeper);
	for (int i = 0; i < nworkers; i++)
		if (children[i].ctl.master >= 0)
			close(children[i].ctl.master);
	if (qmgr.ctl.master >= 0)
		close(qmgr.ctl.master);
}

/*
 * In a new child: drop the master's handlers while the signals are still
 * blocked; the child unblocks them once its own (libuv) handlers are in
 * place, so a SIGHUP or SIGTERM sent right after the fork is delivered to
 * those handlers instead of being lost or killing the child.
 */
/*
 * Forks a child that runs `run(arg)` (which never returns). Returns the
 * pid in the parent, 0 if the fork failed (logged). A child must not
 * outlive its master (kill -9 of the master would leave orphans holding
 * the ports): the kernel sends it SIGTERM when the master dies, which
 * drains it like a normal shutdown. The signal is blocked until the
 * child's own handlers are in place, so it is never lost.
 */
static pid_t
spawn(void (*run)(int), int arg, struct ctl *ctl)
{
	struct buf err = BUF_INIT;
	pid_t pid;

	ctl_close(ctl);		/* a dead child's */
	if (ctl_open(ctl, &err) < 0 || (pid = fork()) < 0) {
		log_event(LOG_ERROR, "fork_failed", "error=\"%s%s\"",
		    buf_cstr(&err), err.len ? "" : strerror(errno));
		ctl_close(ctl);
		buf_free(&err);
		return 0;
	}
	if (pid == 0) {
		proc_child_signals();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != master_pid)	/* died before prctl */
			raise(SIGTERM);
		close_master_ends();
		run(arg);
	}
	ctl_close_child(ctl);
	return pid;
}

static void
run_qmgr(int unused)
{
	(void)unused;
	for (size_t i = 0; i < nlst; i++)
		close(lst[i].fd);
	close(notify_fds[1]);
	master_admin_close();
	hook_set_counters(counters);	/* indimail.counter in route hooks */
	qmgrd_main(rt, notify_fds[0], qmgr.ctl.child);
}

static void
run_worker(int i)
{
	close(notify_fds[0]);
	master_admin_close();
	worker_main(i, rt, lst, nlst, conns, counters, notify_fds[1],
	    children[i].ctl.child);
}

static void
start_qmgr(void)
{
	if ((qmgr.pid = spawn(run_qmgr, 0, &qmgr.ctl)) == 0)
		return;
	qmgr.started = time(NULL);
	log_event(LOG_INFO, "qmgr_started", "pid=%ld", (long)qmgr.pid);
}

/* the admin API's process, when admin = {...}. */
static void
run_admin(int unused)
{
	(void)unused;
	for (size_t i = 0; i < nlst; i++)
		close(lst[i].fd);
	close(notify_fds[0]);
	close(notify_fds[1]);
	master_admin_child(rt, admin.ctl.child);
}

static void
start_admin(void)
{
	if (!master_admin_enabled())
		return;
	master_admin_pre_fork();
	admin.pid = spawn(run_admin, 0, &admin.ctl);
	master_admin_post_fork(admin.pid);
	if (admin.pid == 0)
		return;
	admin.started = time(NULL);
	log_event(LOG_INFO, "admin_started", "pid=%ld", (long)admin.pid);
}

static void
start_worker(int i)
{
	if ((children[i].pid = spawn(run_worker, i, &children[i].ctl)) == 0)
		return;
	children[i].started = time(NULL);
	log_event(LOG_INFO, "worker_started", "index=%d pid=%ld", i,
	    (long)children[i].pid);
}

static void
log_death(const char *what, int index, pid_t pid, int status)
{
	struct logline l;

	log_begin(&l, WIFSIGNALED(status) ? LOG_ERROR : LOG_WARN, index < 0 ?
	    (strcmp(what, "admin") == 0 ? "admin_died" : "qmgr_died") :
	    WIFSIGNALED(status) ? "worker_died" : "worker_exited");
	if (index >= 0)
		log_kvi(&l, "index", index);
	log_kvi(&l, "pid", (long long)pid);
	if (WIFSIGNALED(status))
		log_kvi(&l, "signal", WTERMSIG(status));
	else
		log_kvi(&l, "status", WEXITSTATUS(status));
	log_kv(&l, "process", what);
	log_end(&l);
}

/*
 * A message recovery moved into mess/, told to the running queue manager;
 * its queue (10 datagrams) may be full: room is awaited NOTIFY_TRIES times
 * NOTIFY_WAIT_MS at most, else its next scan finds the message (and for
 * NOTIFY_QUIET seconds no wait: a queue manager that does not read).
 */
#define NOTIFY_TRIES	20
#define NOTIFY_WAIT_MS	50
#define NOTIFY_QUIET	2
static void
announce_recovered(void *unused, int qn, const char *id)
{
	static time_t quiet_until;
	struct pollfd p = { .fd = notify_fds[1], .events = POLLOUT };
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%d %s", qn, id), k = 0;

	(void)unused;
	while (send(notify_fds[1], msg, (size_t)n, MSG_DONTWAIT) < 0)
		if (errno != EAGAIN || time(NULL) < quiet_until ||
		    ++k > NOTIFY_TRIES || poll(&p, 1, NOTIFY_WAIT_MS) < 0) {
			if (k > NOTIFY_TRIES)
				quiet_until = time(NULL) + NOTIFY_QUIET;
			log_event(LOG_DEBUG, "notify_failed", "qid=%s", id);
			return;
		}
}

static void
reap(void)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == qmgr.pid) {
			qmgr.pid = 0;
			queue_clean_tmp(&queue, (long)pid); /* bounces, moves */
			if (got_term)
				continue;
			log_death("qmgr", -1, pid, status);
			if (time(NULL) - qmgr.started < 1)
				sleep(1);
			start_qmgr();
			continue;
		}
		if (pid == admin.pid) {
			admin.pid = 0;
			if (got_term)
				continue;
			log_death("admin", -1, pid, status);
			if (time(NULL) - admin.started < 1)
				sleep(1);
			start_admin();
			continue;
		}
		for (int i = 0; i < nworkers; i++) {
			if (children[i].pid != pid)
				continue;
			children[i].pid = 0;
			connlimit_reset(conns, i);
			counter_forget_owner(counters, (long)pid);
			/* its write-ahead segments first: they may use tmp/ */
			queue_wal_recover(&queue, (long)pid, announce_recovered,
			    NULL);
			queue_clean_tmp(&queue, (long)pid);
			notify_rescan(notify_fds[1]);	/* its unsent lines */
			if (got_term)
				break;
			log_death("smtp", i, pid, status);
			if (time(NULL) - children[i].started < 1)
				sleep(1);	/* do not spin on a crash loop */
			start_worker(i);
		}
	}
}

/*
 * A configuration is tried in a child first: one that loops (or takes
 * longer than BOOT_LOAD_SECONDS) is refused without wedging the master.
 */
static struct runtime *
try_load(const char *path, struct buf *err)
{
	struct boot_plan p;

	if (boot_plan_unprivileged(path, NULL, (rt->cfg.timeout_watchdog + 999) /
	    1000, 0, &p, err) < 0)
		return NULL;
	boot_plan_free(&p);
	return runtime_load(path, err);
}

/* SIGUSR2: the directory changed (indimail domain|user|alias ...). */
static void
tell_children(int sig)
{
	log_event(LOG_INFO, "directory_changed", "workers=%d", nworkers);
	for (int i = 0; i < nworkers; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, sig);
	if (qmgr.pid > 0)
		kill(qmgr.pid, sig);
}

/*
 * The DNS cache every child shares: made once, before the first fork; a
 * reload changes its TTL caps, its size needs a restart.
 */
static void
dns_cache_start(const struct config *c)
{
	dns_cache_asked = c->dns_cache_size;
	if (c->dns_cache_size == 0)
		return;
	dns_cache = dns_cache_create(c->dns_cache_size);
	dns_cache_set_ttls(dns_cache, (uint32_t)c->dns_cache_max_ttl,
	    (uint32_t)c->dns_cache_negative_ttl);
	dns_share_cache(dns_cache);
	log_event(LOG_INFO, "dns_cache", "slots=%zu max_ttl=%d negative_ttl=%d",
	    dns_cache_size(dns_cache), c->dns_cache_max_ttl,
	    c->dns_cache_negative_ttl);
}

static void
dns_cache_reload(const struct config *c)
{
	if (c->dns_cache_size != dns_cache_asked)
		log_event(LOG_WARN, "reload_dns_cache_kept", "reason=\"dns_cache."
		    "size changes need a restart; the running cache stays\"");
	if (dns_cache)
		dns_cache_set_ttls(dns_cache, (uint32_t)c->dns_cache_max_ttl,
		    (uint32_t)c->dns_cache_negative_ttl);
}

/* The log for every child, then the TLS files for the workers. */
static void
reopen_files(void)
{
	const struct ctl **to = xcalloc((size_t)nworkers + 2, sizeof(*to));
	size_t n = 0, nlog;

	for (int i = 0; i < nworkers; i++)
		if (children[i].pid > 0)
			to[n++] = &children[i].ctl;
	nlog = n;		/* the workers get TLS files, every child the log */
	if (qmgr.pid > 0)
		to[nlog++] = &qmgr.ctl;
	if (admin.pid > 0)
		to[nlog++] = &admin.ctl;
	reload_log(&files, &rt->cfg, to, nlog, admin.pid > 0 ? &admin.ctl : NULL);
	reload_tls(&files, &rt->cfg, lst, nlst, to, n);
	reload_admin_tls(&files, admin.pid > 0 ? &admin.ctl : NULL);
	free(to);
}

/* Child i of all: the workers, then the queue manager, then the admin. */
static struct child *
child_at(int i)
{
	return i < nworkers ? &children[i] : i == nworkers ? &qmgr : &admin;
}

/* Sends sig to every child alive; a line for each one killed. */
static void
signal_children(int sig)
{
	for (int i = 0; i < nworkers + 2; i++)
		if (child_at(i)->pid > 0) {
			if (sig == SIGKILL)
				log_event(LOG_WARN, "shutdown_killed", "pid=%ld "
				    "index=%d", (long)child_at(i)->pid, i);
			kill(child_at(i)->pid, sig);
		}
}

/* Tells the workers and the queue manager to load the new configuration. */
static void
send_config(void)
{
	for (int i = 0; i <= nworkers; i++)	/* not the admin process */
		if (child_at(i)->pid > 0 && ctl_send_config(&child_at(i)->ctl) < 0)
			log_event(LOG_WARN, "reload_config_unsent", "pid=%ld "
			    "error=\"%s\"", (long)child_at(i)->pid, strerror(errno));
}

/*
 * A new configuration, tried first. The log and the TLS files are opened
 * again even when it does not load (logrotate must not depend on it),
 * with the running configuration's settings; and the children are always
 * signalled, since they must apply what the ctl channel brought. Only
 * when it loaded are they told to load it too: one that loops or hangs
 * stops in the master's configuration child, never in every worker.
 * 0, or -1 when the configuration did not load (the admin API asks).
 */
static int
reload(void)
{
	struct buf err = BUF_INIT;
	struct runtime *n;

	sdnotify_reloading();	/* systemd Type=notify */
	n = try_load(rt->path, &err);
	if (n == NULL) {
		struct logline l;
		log_begin(&l, LOG_ERROR, "reload_failed");
		log_kv(&l, "error", buf_cstr(&err));
		log_kv(&l, "action", "keeping the running configuration");
		log_end(&l);
		buf_free(&err);
	} else {
		if (!listen_same(lst, nlst, &n->cfg))
			log_event(LOG_WARN, "reload_listeners_kept", "reason=\"listener "
			    "changes need a restart; the running listeners stay\"");
		reload_admin_check(&n->cfg.admin);
		dns_cache_reload(&n->cfg);
		domain_rules_inherit(n, rt);	/* for workers forked from now on */
		runtime_unref(rt);
		rt = n;
	}
	reopen_files();
	if (n != NULL) {
		send_config();
		log_event(LOG_INFO, "reload", "workers=%d", nworkers);
	}
	signal_children(SIGHUP);	/* the admin process re-reads its tokens */
	sdnotify_ready(n != NULL ? "running; configuration reloaded" :
	    "running; the last reload failed (see the log)");
	return n != NULL ? 0 : -1;
}

/* Reaps every child, until deadline; the number still alive. */
static int
wait_children(time_t deadline)
{
	pid_t pid;
	int alive;

	for (;;) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			for (int i = 0; i < nworkers + 2; i++)
				if (child_at(i)->pid == pid)
					child_at(i)->pid = 0;
		alive = 0;
		for (int i = 0; i < nworkers + 2; i++)
			alive += child_at(i)->pid > 0;
		if (alive == 0 || time(NULL) >= deadline)
			return alive;
		usleep(50 * 1000);
	}
}

/*
 * SIGTERM to every child, then the drain timeout (and 5 s) for them to
 * finish; who is left gets SIGKILL and is reaped (bounded), so that whoever
 * waits for the master (systemd, a script) sees the whole tree gone.
 */
static void
shutdown_all(void)
{
	sdnotify_stopping();
	log_event(LOG_INFO, "shutdown", "workers=%d", nworkers);
	/* Our copies would keep the sockets accepting into the backlog. */
	for (size_t i = 0; i < nlst; i++)
		close(lst[i].fd);
	signal_children(SIGTERM);
	if (wait_children(time(NULL) + rt->cfg.timeout_drain / 1000 + 5) > 0) {
		signal_children(SIGKILL);
		wait_children(time(NULL) + 5);
	}
	keeper_stop(files.keeper);
	log_event(LOG_INFO, "stopped", NULL);
	exit(0);
}

static void
install_signals(sigset_t *old)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGIO, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGIO);
	sigaddset(&block, SIGALRM);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, old);
}

/* The queue folders (as the account), and the local submission folder. */
static void
open_queue(const struct config *c)
{
	struct buf err = BUF_INIT, dir = BUF_INIT;
	const char *slash;

	if (queue_set_init(&queue, c->queue_path, c->queue_count,
	    c->queue_split, &err) < 0)
		fatal("queue: %s", buf_cstr(&err));
	if (c->submit_socket && (slash = strrchr(c->submit_socket, '/'))) {
		buf_set(&dir, c->submit_socket, (size_t)(slash - c->submit_socket));
		if (mkdir(buf_cstr(&dir), 0755) < 0 && errno != EEXIST)
			fatal("local submission: cannot create %s: %s",
			    buf_cstr(&dir), strerror(errno));
	}
	queue.backend = queue_backend_of(c->queue_backend);
	int recovered = queue_wal_recover(&queue, 0, NULL, NULL);
	log_event(LOG_INFO, "queue_ready", "path=%s count=%d tmp_removed=%d "
	    "wal_recovered=%d", c->queue_path, c->queue_count,
	    queue_clean_tmp(&queue, 0), recovered);
	buf_free(&dir);
}

/* The shared metrics (mail_metrics.h), with a series per listener. */
static void
start_metrics(void)
{
	const char **names = xcalloc(nlst ? nlst : 1, sizeof(*names));

	for (size_t i = 0; i < nlst; i++)
		names[i] = lst[i].name;
	mail_metrics_start(names, nlst, rt->cfg.queue_count);
	hook_metrics_start();
	free(names);
}

/* What the signals caught since the last call asked for, but SIGTERM. */
static void
on_signals(void)
{
	if (got_chld) {
		got_chld = 0;
		reap();
	}
	if (got_hup) {
		got_hup = 0;
		reload();
	}
	if (got_usr2) {
		got_usr2 = 0;
		tell_children(SIGUSR2);
	}
	if (got_io) {		/* a reload request */
		got_io = 0;
		master_admin_serve(reload);
	}
	if (got_alrm) {		/* segments of writers gone since */
		got_alrm = 0;
		if (queue_wal_recover(&queue, 0, announce_recovered, NULL) > 0)
			queue_clean_tmp(&queue, 0);
		alarm(WAL_SWEEP_SECONDS);
	}
}

/* READY=1 for systemd: listeners bound, queue manager and workers forked. */
static void
notify_ready(void)
{
	char status[128];

	snprintf(status, sizeof(status), "running: %zu listeners, %d workers",
	    nlst, nworkers);
	sdnotify_ready(status);
}

int
master_run(const char *path, const char *user)
{
	struct buf err = BUF_INIT, cert = BUF_INIT, key = BUF_INIT;
	struct passwd *pw = geteuid() == 0 ? master_service_account(user) :
	    NULL;
	struct boot_plan plan;
	sigset_t old;
	long ncpu;

	log_set_role("master");
	master_pid = getpid();
	rt = master_make_plan(path, pw, &plan);
	if (log_open(plan.log_file, plan.log_level, &err) < 0)
		fatal("%s", buf_cstr(&err));
	lst = master_bind_tcp(&plan, &nlst);
	master_admin_bind(&plan);
	master_read_tls_files(&plan, &cert, &key);
	start_keeper(&plan);
	if (pw)
		rt = master_become(path, pw, &plan);
	proc_log_settings(&rt->cfg);	/* the format and syslog */
	reload_admin_remember(&rt->cfg.admin);
	open_queue(&rt->cfg);
	master_finish_listeners(&rt->cfg, &cert, &key, lst, &nlst);
	buf_free(&key);		/* what remains lives in the TLS context */
	buf_free(&cert);
	boot_plan_free(&plan);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	nworkers = rt->cfg.workers > 0 ? rt->cfg.workers : (int)(ncpu > 0 ? ncpu : 1);
	conns = connlimit_create(nworkers);
	counters = counter_create(COUNTER_SLOTS);
	start_metrics();
	dns_cache_start(&rt->cfg);
	children = xcalloc((size_t)nworkers, sizeof(*children));
	for (int i = 0; i < nworkers; i++)
		children[i].ctl.master = children[i].ctl.child = -1;
	qmgr.ctl.master = qmgr.ctl.child = -1;
	admin.ctl.master = admin.ctl.child = -1;	/* not fd 0: spawn closes it */
	install_signals(&old);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, notify_fds) < 0)
		fatal("socketpair: %s", strerror(errno));
	fcntl(notify_fds[1], F_SETFL, O_NONBLOCK);
	start_qmgr();
	for (int i = 0; i < nworkers; i++)
		start_worker(i);
	start_admin();
	log_event(LOG_INFO, "ready", "workers=%d pid=%ld", nworkers,
	    (long)getpid());
	notify_ready();
	alarm(WAL_SWEEP_SECONDS);
	for (;;) {
		while (!got_chld && !got_hup && !got_term && !got_usr2 &&
		    !got_io && !got_alrm)
			sigsuspend(&old);
		if (got_term)
			shutdown_all();
		on_signals();
	}
}

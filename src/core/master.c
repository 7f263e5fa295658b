/*
 * master: binds every listener (port 0 = any free port, reported in the
 * log), drops to the configured user, cleans the queue's tmp folders and
 * forks the workers. It then only waits for signals: a dead worker is
 * replaced (after a pause if it died young), SIGHUP validates the
 * configuration and passes the reload on, SIGTERM/SIGINT drain the workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../deliver/qmgr.h"
#include "../net/connlimit.h"
#include "../net/tls.h"
#include "../queue/queue.h"
#include "log.h"
#include "master.h"
#include "worker.h"
#include "xalloc.h"

struct child {
	pid_t		 pid;
	time_t		 started;
};

static volatile sig_atomic_t got_chld, got_hup, got_term;
static struct runtime *rt;
static struct child *children;
static int nworkers;
static int *fds;
static struct connlimit *conns;
static struct queue_set queue;
static SSL_CTX **tls_ctxs;	/* per listener; NULL: no TLS there */
static int notify_fds[2];	/* [0] queue manager reads, [1] workers send */
static struct child qmgr;

static void
on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_chld = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

static struct buf listeners;	/* "name address port tls" lines */

/* Tells local tools (bin/sendmail) where we really listen. */
static void
write_listeners(const char *queue_path)
{
	struct buf path = BUF_INIT;
	FILE *f;

	buf_printf(&path, "%s/listeners", queue_path);
	if ((f = fopen(buf_cstr(&path), "w")) != NULL) {
		fputs(buf_cstr(&listeners), f);
		fclose(f);
	}
	buf_free(&path);
}

static int
bind_one(const struct listen_conf *l)
{
	struct addrinfo hints, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[16], host[NI_MAXHOST], serv[NI_MAXSERV];
	int fd, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", l->port);
	if ((rc = getaddrinfo(l->address, port, &hints, &ai)) != 0)
		fatal("listener %s: address %s: %s", l->name, l->address,
		    gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0)
		fatal("listener %s: cannot listen on %s port %d: %s", l->name,
		    l->address, l->port, strerror(errno));
	freeaddrinfo(ai);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv,
	    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	log_event(LOG_INFO, "listening", "name=%s address=%s port=%s tls=%s",
	    l->name, host, serv, l->tls == TLS_NONE ? "none" :
	    l->tls == TLS_STARTTLS ? "starttls" : "implicit");
	buf_printf(&listeners, "%s %s %s %s\n", l->name, host, serv,
	    l->tls == TLS_NONE ? "none" : l->tls == TLS_STARTTLS ? "starttls" :
	    "implicit");
	return fd;
}

static void
drop_privileges(const struct config *c)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	if (c->user == NULL)
		fatal("running as root needs `user = \"...\"` in the config "
		    "(the account to drop privileges to)");
	if ((pw = getpwnam(c->user)) == NULL)
		fatal("user %s does not exist", c->user);
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		fatal("cannot drop privileges to %s: %s", c->user, strerror(errno));
	if (setuid(0) == 0)
		fatal("privileges could be regained after dropping them");
	log_event(LOG_INFO, "privileges_dropped", "user=%s uid=%ld", c->user,
	    (long)pw->pw_uid);
}

/*
 * In a new child: drop the master's handlers while the signals are still
 * blocked; the child unblocks them once its own (libuv) handlers are in
 * place, so a SIGHUP or SIGTERM sent right after the fork is delivered to
 * those handlers instead of being lost or killing the child.
 */
void
unblock_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
child_signals(void)
{
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
}

/*
 * Forks a child that runs `run(arg)` (which never returns). Returns the
 * pid in the parent, 0 if the fork failed (logged).
 */
static pid_t
spawn(void (*run)(int), int arg)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_event(LOG_ERROR, "fork_failed", "error=%s", strerror(errno));
		return 0;
	}
	if (pid == 0) {
		child_signals();
		run(arg);
	}
	return pid;
}

static void
run_qmgr(int unused)
{
	(void)unused;
	for (size_t i = 0; i < rt->cfg.nlisten; i++)
		close(fds[i]);
	close(notify_fds[1]);
	qmgr_main(rt, notify_fds[0]);
}

static void
run_worker(int i)
{
	close(notify_fds[0]);
	worker_main(i, rt, fds, conns, tls_ctxs, notify_fds[1]);
}

static void
start_qmgr(void)
{
	if ((qmgr.pid = spawn(run_qmgr, 0)) == 0)
		return;
	qmgr.started = time(NULL);
	log_event(LOG_INFO, "qmgr_started", "pid=%ld", (long)qmgr.pid);
}

static void
start_worker(int i)
{
	if ((children[i].pid = spawn(run_worker, i)) == 0)
		return;
	children[i].started = time(NULL);
	log_event(LOG_INFO, "worker_started", "index=%d pid=%ld", i,
	    (long)children[i].pid);
}

static void
reap(void)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == qmgr.pid) {
			qmgr.pid = 0;
			if (got_term)
				continue;
			log_event(WIFSIGNALED(status) ? LOG_ERROR : LOG_WARN,
			    "qmgr_died", "pid=%ld status=%d signal=%d", (long)pid,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			if (time(NULL) - qmgr.started < 1)
				sleep(1);
			start_qmgr();
			continue;
		}
		for (int i = 0; i < nworkers; i++) {
			if (children[i].pid != pid)
				continue;
			children[i].pid = 0;
			connlimit_reset(conns, i);
			queue_clean_tmp(&queue, (long)pid);
			if (got_term)
				break;
			if (WIFSIGNALED(status))
				log_event(LOG_ERROR, "worker_died",
				    "index=%d pid=%ld signal=%d", i, (long)pid,
				    WTERMSIG(status));
			else
				log_event(LOG_WARN, "worker_exited",
				    "index=%d pid=%ld status=%d", i, (long)pid,
				    WEXITSTATUS(status));
			if (time(NULL) - children[i].started < 1)
				sleep(1);	/* do not spin on a crash loop */
			start_worker(i);
		}
	}
}

static void
reload(void)
{
	struct buf err = BUF_INIT;
	struct runtime *n = runtime_load(rt->path, &err);

	if (n == NULL) {
		struct logline l;
		log_begin(&l, LOG_ERROR, "reload_failed");
		log_kv(&l, "error", buf_cstr(&err));
		log_kv(&l, "action", "keeping the running configuration");
		log_end(&l);
		buf_free(&err);
		return;
	}
	runtime_unref(rt);
	rt = n;
	log_event(LOG_INFO, "reload", "workers=%d", nworkers);
	for (int i = 0; i < nworkers; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, SIGHUP);
	if (qmgr.pid > 0)
		kill(qmgr.pid, SIGHUP);
}

static void
shutdown_all(void)
{
	time_t deadline = time(NULL) + rt->cfg.timeout_drain / 1000 + 5;
	int alive;

	log_event(LOG_INFO, "shutdown", "workers=%d", nworkers);
	/* Our copies would keep the sockets accepting into the backlog. */
	for (size_t i = 0; i < rt->cfg.nlisten; i++)
		close(fds[i]);
	for (int i = 0; i < nworkers; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, SIGTERM);
	if (qmgr.pid > 0)
		kill(qmgr.pid, SIGTERM);
	do {
		pid_t pid;
		alive = 0;
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
			for (int i = 0; i < nworkers; i++)
				if (children[i].pid == pid)
					children[i].pid = 0;
			if (qmgr.pid == pid)
				qmgr.pid = 0;
		}
		for (int i = 0; i < nworkers; i++)
			alive += children[i].pid > 0;
		alive += qmgr.pid > 0;
		if (alive)
			usleep(50 * 1000);
	} while (alive && time(NULL) < deadline);
	for (int i = 0; i < nworkers; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, SIGKILL);
	if (qmgr.pid > 0)
		kill(qmgr.pid, SIGKILL);
	log_event(LOG_INFO, "stopped", NULL);
	exit(0);
}

int
master_check(const char *path)
{
	struct buf err = BUF_INIT;
	struct runtime *r = runtime_load(path, &err);
	SSL_CTX **ctxs;

	if (r == NULL) {
		fprintf(stderr, "indimaild: %s\n", buf_cstr(&err));
		return 1;
	}
	if ((ctxs = tls_listener_ctxs(&r->cfg, &err)) == NULL) {
		fprintf(stderr, "indimaild: %s: %s\n", path, buf_cstr(&err));
		return 1;
	}
	tls_listener_ctxs_free(ctxs, r->cfg.nlisten);
	printf("indimaild: %s: configuration OK (%zu listeners)\n", path,
	    r->cfg.nlisten);
	runtime_unref(r);
	return 0;
}

int
master_run(const char *path)
{
	struct buf err = BUF_INIT;
	struct sigaction sa;
	sigset_t block, old;
	long ncpu;

	if ((rt = runtime_load(path, &err)) == NULL)
		fatal("%s", buf_cstr(&err));
	log_set_role("master");
	if (log_open(rt->cfg.log_file, rt->cfg.log_level) < 0)
		fatal("cannot open log file %s", rt->cfg.log_file);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	nworkers = rt->cfg.workers > 0 ? rt->cfg.workers : (int)(ncpu > 0 ? ncpu : 1);
	fds = xcalloc(rt->cfg.nlisten, sizeof(int));
	for (size_t i = 0; i < rt->cfg.nlisten; i++)
		fds[i] = bind_one(&rt->cfg.listen[i]);
	/* The key is read while still privileged, like the sockets. */
	if ((tls_ctxs = tls_listener_ctxs(&rt->cfg, &err)) == NULL)
		fatal("%s", buf_cstr(&err));
	drop_privileges(&rt->cfg);
	if (queue_set_init(&queue, rt->cfg.queue_path, rt->cfg.queue_count,
	    rt->cfg.queue_split, &err) < 0)
		fatal("queue: %s", buf_cstr(&err));
	write_listeners(rt->cfg.queue_path);
	log_event(LOG_INFO, "queue_ready", "path=%s count=%d tmp_removed=%d",
	    rt->cfg.queue_path, rt->cfg.queue_count, queue_clean_tmp(&queue, 0));
	conns = connlimit_create(nworkers);
	children = xcalloc((size_t)nworkers, sizeof(*children));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, notify_fds) < 0)
		fatal("socketpair: %s", strerror(errno));
	fcntl(notify_fds[1], F_SETFL, O_NONBLOCK);
	start_qmgr();
	for (int i = 0; i < nworkers; i++)
		start_worker(i);
	log_event(LOG_INFO, "ready", "workers=%d pid=%ld", nworkers,
	    (long)getpid());
	for (;;) {
		while (!got_chld && !got_hup && !got_term)
			sigsuspend(&old);
		if (got_term)
			shutdown_all();
		if (got_chld) {
			got_chld = 0;
			reap();
		}
		if (got_hup) {
			got_hup = 0;
			reload();
		}
	}
}

/*
 * admin_backend: see admin_backend.h. bin/indimail is found beside the
 * running executable (/proc/self/exe), as both are installed together;
 * it runs with the daemon's configuration and the admin process's
 * identity (the account), like an admin's `sudo -u indimail indimail`.
 */
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/metrics.h"
#include "../lib/xalloc.h"
#include "admin_backend.h"
#include "admin_spawn.h"

#define ARGV_MAX	24
#define EXE_PATH_MAX	4096

static int
run_cli(void *arg, const char *const *args, const char *input,
    struct buf *out, struct buf *err)
{
	struct admin_runner *r = arg;
	const char *argv[ARGV_MAX] = { r->indimail, "-c", r->config, "--json" };
	size_t n = 4;

	for (size_t i = 0; args[i] && n < ARGV_MAX - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return admin_spawn(argv, -1, input, ADMIN_CHILD_SECONDS, out, err);
}

/*
 * The log is root's: the master opened it for reading before dropping
 * privileges, and `indimail stats -` reads it as its stdin, from the
 * start (one run at a time: the runs share the file offset).
 */
static int
run_stats(void *arg, const char *since, struct buf *out, struct buf *err)
{
	struct admin_runner *r = arg;
	const char *argv[] = { r->indimail, "stats", "--since", since, "-",
	    NULL };
	int rc;

	pthread_mutex_lock(&r->log_lock);
	if (r->log_fd < 0) {
		buf_appends(err, "no log file to read: log.file is not set");
		rc = -1;
	} else
		rc = lseek(r->log_fd, 0, SEEK_SET) < 0 ? -1 : admin_spawn(argv,
		    r->log_fd, NULL, ADMIN_CHILD_SECONDS, out, err);
	pthread_mutex_unlock(&r->log_lock);
	return rc;
}

void
admin_backend_log(struct admin_runner *r, int fd)
{
	pthread_mutex_lock(&r->log_lock);
	if (r->log_fd >= 0)
		close(r->log_fd);
	r->log_fd = fd;
	pthread_mutex_unlock(&r->log_lock);
}

static int
run_check(void *arg, struct buf *out, struct buf *err)
{
	struct admin_runner *r = arg;
	const char *argv[] = { r->indimaild, "-T", "-c", r->config, NULL };

	return admin_spawn(argv, -1, NULL, ADMIN_CHILD_SECONDS, out, err);
}

/* Sends "reload" and waits for the master's answer. */
static int
ask_reload(struct admin_runner *r, struct buf *err)
{
	char reply[ADMIN_CTL_MAX + 1];
	struct pollfd p = { r->ctl_fd, POLLIN, 0 };
	ssize_t n;
	int rc;

	while (recv(r->ctl_fd, reply, sizeof(reply) - 1, MSG_DONTWAIT) > 0)
		;	/* an answer a timed-out request left */
	if (send(r->ctl_fd, "reload", 6, MSG_NOSIGNAL) != 6) {
		buf_printf(err, "the master is not reachable: %s",
		    strerror(errno));
		return -1;
	}
	while ((rc = poll(&p, 1, ADMIN_RELOAD_SECONDS * 1000)) < 0 &&
	    errno == EINTR)
		;
	if (rc <= 0 || (n = recv(r->ctl_fd, reply, sizeof(reply) - 1, 0)) <= 0) {
		buf_printf(err, "no answer from the master within %d s",
		    ADMIN_RELOAD_SECONDS);
		return -1;
	}
	reply[n] = '\0';
	if (strcmp(reply, "ok") == 0)
		return 0;
	buf_appends(err, strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
	return -1;
}

static int
run_reload(void *arg, struct buf *err)
{
	struct admin_runner *r = arg;
	int rc;

	pthread_mutex_lock(&r->ctl_lock);
	rc = ask_reload(r, err);
	pthread_mutex_unlock(&r->ctl_lock);
	return rc;
}

static void
run_metrics(void *arg, struct buf *out)
{
	(void)arg;
	metrics_render(out);
}

/* The program name beside the running executable. */
static char *
beside_self(const char *name)
{
	char self[EXE_PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct buf p = BUF_INIT;
	char *slash;

	if (n <= 0)
		n = 0;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = '\0';
	buf_printf(&p, "%s/%s", slash ? self : ".", name);
	return p.data;	/* the buffer's memory moves */
}

int
admin_program_open(const char *name)
{
	char *path = beside_self(name);
	int fd = open(path, O_PATH | O_CLOEXEC);

	free(path);
	return fd;
}

/* The program by its descriptor when there is one (see the header). */
static char *
program(int fd, const char *name)
{
	struct buf p = BUF_INIT;

	if (fd < 0)
		return beside_self(name);
	buf_printf(&p, "/proc/self/fd/%d", fd);
	return p.data;	/* the buffer's memory moves */
}

void
admin_backend_init(struct admin_backend *be, struct admin_runner *r,
    const char *config, int ctl_fd, int log_fd, const int prog_fd[2])
{
	r->indimail = program(prog_fd[0], "indimail");
	r->indimaild = program(prog_fd[1], "indimaild");
	r->config = xstrdup(config);
	r->ctl_fd = ctl_fd;
	pthread_mutex_init(&r->ctl_lock, NULL);
	r->log_fd = log_fd;
	pthread_mutex_init(&r->log_lock, NULL);
	be->cli = run_cli;
	be->check = run_check;
	be->reload = run_reload;
	be->stats = run_stats;
	be->metrics = run_metrics;
	be->arg = r;
}

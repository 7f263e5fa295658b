/*
 * admin_spawn: see admin_spawn.h. The child gets an empty signal mask and
 * default dispositions (the admin process's threads block signals, which
 * a child would otherwise inherit), our pipes as 0, 1 and 2, and nothing
 * else: every other descriptor of this process is close-on-exec. Output
 * is read with poll() until both pipes close or the deadline passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_spawn.h"

extern char **environ;

#define READ_CHUNK	4096

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
start(const char *const *argv, int input_fd, int fds[3][2], pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, input_fd >= 0 ? input_fd :
	    fds[0][0], 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1][1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[2][1], 2);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, argv[0], &fa, &attr, (char *const *)argv,
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

static void
close_all(int fds[3][2])
{
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++)
			if (fds[i][k] >= 0) {
				close(fds[i][k]);
				fds[i][k] = -1;
			}
}

/* Reads stdout and stderr until both close: 0, or -1 (time, size). */
static int
collect(int fds[3][2], long long deadline, struct buf *out, struct buf *err)
{
	struct pollfd p[2] = { { fds[1][0], POLLIN, 0 }, { fds[2][0], POLLIN, 0 } };
	struct buf *to[2] = { out, err };
	char chunk[READ_CHUNK];

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		long long left = deadline - now_ms();
		if (left <= 0 || (poll(p, 2, (int)left) < 0 && errno != EINTR))
			return -1;
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			if ((n = read(p[i].fd, chunk, sizeof(chunk))) <= 0) {
				p[i].fd = -1;
				continue;
			}
			buf_append(to[i], chunk, (size_t)n);
			if (to[i]->len > ADMIN_SPAWN_OUTPUT_MAX)
				return -1;
		}
	}
	return 0;
}

static int
finish(pid_t pid, int collected, int seconds, const char *prog,
    struct buf *err)
{
	int status;

	if (!collected)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!collected) {
		buf_clear(err);
		buf_printf(err, "%s did not finish within %d s or said too much",
		    prog, seconds);
		return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	buf_clear(err);
	buf_printf(err, "%s died of signal %d", prog, WTERMSIG(status));
	return -1;
}

int
admin_spawn(const char *const *argv, int input_fd, const char *input,
    int seconds, struct buf *out, struct buf *err)
{
	int fds[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } }, rc, ok;
	size_t len = input ? strlen(input) : 0;
	pid_t pid;

	for (int i = 0; i < 3; i++)
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			buf_printf(err, "pipe: %s", strerror(errno));
			close_all(fds);
			return -1;
		}
	if ((rc = start(argv, input_fd, fds, &pid)) != 0) {
		buf_printf(err, "cannot run %s: %s", argv[0], strerror(rc));
		close_all(fds);
		return -1;
	}
	close(fds[0][0]);
	close(fds[1][1]);
	close(fds[2][1]);
	fds[0][0] = fds[1][1] = fds[2][1] = -1;
	/* Small (a password, a body): fits the pipe, never blocks. */
	ok = len == 0 || write(fds[0][1], input, len) == (ssize_t)len;
	close(fds[0][1]);
	fds[0][1] = -1;
	ok = ok && collect(fds, now_ms() + seconds * 1000LL, out, err) == 0;
	close_all(fds);
	return finish(pid, ok, seconds, argv[0], err);
}

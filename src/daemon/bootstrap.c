/*
 * bootstrap: see bootstrap.h. The plan travels over a pipe as lines of
 * space-separated fields, each field %XX-escaped (buf_escape: space, '%',
 * control bytes), so a path with spaces or newlines cannot shift a field:
 *
 *   listen NAME ADDRESS PORT TLS    tls CERT KEY        log FILE LEVEL
 *   user NAME                       error TEXT          (the last line)
 *   admin ADDRESS PORT TLS CERT KEY (issue 13, when admin = {...} is given)
 */
#include <errno.h>
#include <signal.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lua/lua_runtime.h"
#include "bootstrap.h"
#include "../lib/xalloc.h"

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* admin.cert/key, else tls.cert/key, with TLS. */
static void
boot_plan_admin(const struct config *c, struct boot_plan *p)
{
	const struct admin_conf *a = &c->admin;

	if (!(p->admin = a->enabled))
		return;
	p->admin_address = xstrdup(a->address);
	p->admin_port = a->port;
	p->admin_tls = a->tls;
	if (a->tls) {
		p->admin_cert = xstrdup(a->cert ? a->cert : c->tls_cert);
		p->admin_key = xstrdup(a->key ? a->key : c->tls_key);
	}
}

static int
same_admin(const struct boot_plan *a, const struct boot_plan *b)
{
	return a->admin == b->admin && same(a->admin_address,
	    b->admin_address) && a->admin_port == b->admin_port &&
	    a->admin_tls == b->admin_tls && same(a->admin_cert, b->admin_cert) &&
	    same(a->admin_key, b->admin_key);
}

void
boot_plan_from_config(const struct config *c, struct boot_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->listen = xcalloc(c->nlisten, sizeof(*p->listen));
	for (size_t i = 0; i < c->nlisten; i++) {
		p->listen[p->nlisten].name = xstrdup(c->listen[i].name);
		p->listen[p->nlisten].address = xstrdup(c->listen[i].address);
		p->listen[p->nlisten].tls = c->listen[i].tls;
		p->listen[p->nlisten++].port = c->listen[i].port;
	}
	p->tls_cert = dup_or_null(c->tls_cert);
	p->tls_key = dup_or_null(c->tls_key);
	p->log_file = dup_or_null(c->log_file);
	p->log_level = c->log_level;
	p->user = dup_or_null(c->user);
	boot_plan_admin(c, p);
}

int
boot_plan_equal(const struct boot_plan *a, const struct boot_plan *b)
{
	if (a->nlisten != b->nlisten || !same(a->tls_cert, b->tls_cert) ||
	    !same(a->tls_key, b->tls_key) || !same(a->log_file, b->log_file) ||
	    !same(a->user, b->user) || !same_admin(a, b))
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].name, b->listen[i].name) ||
		    strcmp(a->listen[i].address, b->listen[i].address) ||
		    a->listen[i].port != b->listen[i].port ||
		    a->listen[i].tls != b->listen[i].tls)
			return 0;
	return 1;
}

void
boot_plan_free(struct boot_plan *p)
{
	for (size_t i = 0; i < p->nlisten; i++) {
		free(p->listen[i].name);
		free(p->listen[i].address);
	}
	free(p->listen);
	free(p->tls_cert);
	free(p->tls_key);
	free(p->log_file);
	free(p->user);
	free(p->admin_address);
	free(p->admin_cert);
	free(p->admin_key);
	memset(p, 0, sizeof(*p));
}

int
drop_to(const struct passwd *pw, struct buf *err)
{
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		buf_printf(err, "cannot drop privileges to %s: %s", pw->pw_name,
		    strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		buf_printf(err, "privileges could be regained after dropping them");
		return -1;
	}
	return 0;
}

/* ---- the wire form ------------------------------------------------------ */

static void
put(struct buf *b, const char *v)
{
	buf_appendc(b, ' ');
	if (v == NULL)
		buf_appendc(b, '-');	/* "-" alone: absent */
	else if (strcmp(v, "-") == 0)
		buf_appends(b, "%2D");	/* a real "-" */
	else
		buf_escape(b, v, " ");
}

static void
plan_write(const struct boot_plan *p, struct buf *b)
{
	char num[32];

	for (size_t i = 0; i < p->nlisten; i++) {
		snprintf(num, sizeof(num), "%d", p->listen[i].port);
		buf_appends(b, "listen");
		put(b, p->listen[i].name);
		put(b, p->listen[i].address);
		put(b, num);
		snprintf(num, sizeof(num), "%d", (int)p->listen[i].tls);
		put(b, num);
		buf_appendc(b, '\n');
	}
	buf_appends(b, "tls");
	put(b, p->tls_cert);
	put(b, p->tls_key);
	snprintf(num, sizeof(num), "%d", p->log_level);
	buf_appends(b, "\nlog");
	put(b, p->log_file);
	put(b, num);
	buf_appends(b, "\nuser");
	put(b, p->user);
	buf_appendc(b, '\n');
	if (p->admin) {
		buf_appends(b, "admin");
		put(b, p->admin_address);
		snprintf(num, sizeof(num), "%d", p->admin_port);
		put(b, num);
		put(b, p->admin_tls ? "1" : "0");
		put(b, p->admin_cert);
		put(b, p->admin_key);
		buf_appendc(b, '\n');
	}
}

/* Splits one line into at most max decoded fields (NULL for "-"). */
static size_t
fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " ", &save); w && n < max;
	    w = strtok_r(NULL, " ", &save)) {
		if (strcmp(w, "-") == 0) {
			f[n++] = NULL;
			continue;
		}
		buf_unescape(w, w, strlen(w));
		f[n++] = w;
	}
	return n;
}

static int
plan_line(char *line, struct boot_plan *p, struct buf *err)
{
	char *f[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
	size_t n = fields(line, f, 6);

	if (n == 5 && f[0] && strcmp(f[0], "listen") == 0 && f[1] && f[2] &&
	    f[3] && f[4]) {
		p->listen = xrealloc(p->listen, (p->nlisten + 1) *
		    sizeof(*p->listen));
		p->listen[p->nlisten].name = xstrdup(f[1]);
		p->listen[p->nlisten].address = xstrdup(f[2]);
		p->listen[p->nlisten].tls = (enum tls_mode)atoi(f[4]);
		p->listen[p->nlisten++].port = atoi(f[3]);
	} else if (n == 3 && f[0] && strcmp(f[0], "tls") == 0) {
		p->tls_cert = dup_or_null(f[1]);
		p->tls_key = dup_or_null(f[2]);
	} else if (n == 3 && f[0] && strcmp(f[0], "log") == 0 && f[2]) {
		p->log_file = dup_or_null(f[1]);
		p->log_level = atoi(f[2]);
	} else if (n == 2 && f[0] && strcmp(f[0], "user") == 0)
		p->user = dup_or_null(f[1]);
	else if (n == 6 && f[0] && strcmp(f[0], "admin") == 0 && f[1] && f[2] &&
	    f[3]) {
		p->admin = 1;
		p->admin_address = xstrdup(f[1]);
		p->admin_port = atoi(f[2]);
		p->admin_tls = atoi(f[3]);
		p->admin_cert = dup_or_null(f[4]);
		p->admin_key = dup_or_null(f[5]);
	}
	else if (n >= 1 && f[0] && strcmp(f[0], "error") == 0) {
		buf_appends(err, f[1] ? f[1] : "the configuration failed to load");
		return -1;
	} else {
		buf_appends(err, "configuration child: malformed plan");
		return -1;
	}
	return 0;
}

/* ---- the child ---------------------------------------------------------- */

static void
child(const char *path, const struct passwd *pw, int seconds, int check,
    int fd)
{
	struct buf out = BUF_INIT, err = BUF_INIT;
	struct runtime *rt = NULL;
	struct boot_plan p;
	sigset_t alrm;

	/* a configuration that never ends: SIGALRM kills it, whatever the
	 * master's handler and mask (its wal sweep catches SIGALRM) */
	signal(SIGALRM, SIG_DFL);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	alarm((unsigned)seconds);
	if (pw != NULL && drop_to(pw, &err) != 0)
		rt = NULL;
	else if (check)
		rt = runtime_load_checked(path, &err);
	else
		rt = runtime_load(path, &err);
	if (rt == NULL) {
		buf_appends(&out, "error");
		put(&out, buf_cstr(&err));
		buf_appendc(&out, '\n');
	} else {
		boot_plan_from_config(&rt->cfg, &p);
		plan_write(&p, &out);
	}
	if (write(fd, out.data, out.len) != (ssize_t)out.len)
		_exit(2);
	_exit(rt ? 0 : 1);
}

int
boot_plan_unprivileged(const char *path, const struct passwd *pw,
    int seconds, int check, struct boot_plan *p, struct buf *err)
{
	struct buf in = BUF_INIT;
	char tmp[4096], *line, *save = NULL;
	int fds[2], status, rc = 0;
	ssize_t n;
	pid_t pid;

	memset(p, 0, sizeof(*p));
	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		buf_printf(err, "cannot start the configuration child: %s",
		    strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		child(path, pw, seconds, check, fds[1]);
	}
	close(fds[1]);
	while ((n = read(fds[0], tmp, sizeof(tmp))) > 0 ||
	    (n < 0 && errno == EINTR))
		if (n > 0)
			buf_append(&in, tmp, (size_t)n);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf_appendc(&in, '\n');	/* never empty, always NUL-terminated */
	for (line = strtok_r(in.data, "\n", &save); line && rc == 0;
	    line = strtok_r(NULL, "\n", &save))
		rc = plan_line(line, p, err);
	if (rc == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		buf_printf(err, "%s: still running after %d s (a loop in the "
		    "configuration?)", path, seconds);
		rc = -1;
	} else if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		buf_appends(err, "the configuration child failed");
		rc = -1;
	}
	buf_free(&in);
	if (rc < 0)
		boot_plan_free(p);
	return rc;
}

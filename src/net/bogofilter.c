/*
 * bogofilter: one bogofilter child per message (see bogofilter.h).
 *
 * States: WAITING (in the pool's queue, only the timer is open) ->
 * RUNNING (the child and its three pipes; the message is written to
 * stdin, which is closed once written) -> DONE. A run ends when the child
 * has exited and both its stdout and stderr reached EOF, or at once on a
 * failed spawn or the timeout (the child's process group is killed: a
 * script's own children must not keep the pipes open). The run owns its
 * handles and buffers and is freed when every handle is closed, so a late
 * libuv callback finds DONE and does nothing.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "bogofilter.h"

#define NS_PER_MS	1000000
#define READ_STEP	256	/* bytes asked of an output buffer per read */
#define OUTPUT_MAX	4096	/* more than this on stdout is not bogofilter -v */
#define STDERR_KEPT	300	/* bytes of stderr kept for the error text */
#define EXIT_SPAM	0	/* bogofilter(1)'s exit statuses */
#define EXIT_HAM	1
#define EXIT_UNSURE	2
#define PIPES		3

enum run_state { RUN_WAITING, RUN_RUNNING, RUN_DONE };

struct bogofilter_pool {
	uv_loop_t	*loop;
	int		 max, running;
	struct bogofilter_run *head, **tail;	/* waiting, in order */
};

struct bogofilter_run {
	enum run_state	 state;
	struct bogofilter_pool *pool;
	struct bogofilter_run *next;		/* in the waiting queue */
	uv_process_t	 proc;
	uv_pipe_t	 pipe[PIPES];		/* the child's stdin, stdout, stderr */
	uv_timer_t	 timer;
	uv_write_t	 write;
	int		 open_handles, spawned, exited, eofs;
	int		 spawn_err;		/* told by the timer, later */
	int64_t		 status;
	int		 signal;
	char		*path, *dir;
	const char	*data;			/* the caller's, until DONE */
	size_t		 len;
	struct buf	 out, err, text;
	uint64_t	 start_ns, timeout_ms;
	bogofilter_done_cb cb;
	void		*arg;
};

struct bogofilter_pool *
bogofilter_pool_new(uv_loop_t *loop, int max_children)
{
	struct bogofilter_pool *p = xcalloc(1, sizeof(*p));

	p->loop = loop;
	p->max = max_children;
	p->tail = &p->head;
	return p;
}

static void start_next(struct bogofilter_pool *);

static void
on_closed(uv_handle_t *h)
{
	struct bogofilter_run *r = h->data;

	if (--r->open_handles > 0)
		return;
	free(r->path);
	free(r->dir);
	buf_free(&r->out);
	buf_free(&r->err);
	buf_free(&r->text);
	free(r);
}

static void
close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_closed);
}

/* Takes r out of the waiting queue (it is there). */
static void
unqueue(struct bogofilter_run *r)
{
	struct bogofilter_pool *p = r->pool;
	struct bogofilter_run **pp = &p->head;

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	if (p->tail == &r->next)
		p->tail = pp;
}

/* Kills a child that may still run or have children of its own. */
static void
kill_child(struct bogofilter_run *r)
{
	if (!r->spawned || (r->exited && r->eofs == PIPES - 1))
		return;
	if (kill(-r->proc.pid, SIGKILL) < 0 && !r->exited)
		uv_process_kill(&r->proc, SIGKILL);
}

/* Leaves RUNNING or WAITING: the slot goes to the next run. */
static void
release(struct bogofilter_run *r)
{
	enum run_state was = r->state;

	r->state = RUN_DONE;
	uv_timer_stop(&r->timer);
	close_handle((uv_handle_t *)&r->timer);
	if (was == RUN_WAITING) {
		unqueue(r);
		return;
	}
	kill_child(r);
	if (!r->spawned || r->exited)	/* else on_exit_cb closes it: a */
		close_handle((uv_handle_t *)&r->proc);	/* closed handle is never reaped */
	for (int i = 0; i < PIPES; i++)
		close_handle((uv_handle_t *)&r->pipe[i]);
	r->pool->running--;
	start_next(r->pool);
}

/* The run is over: the caller hears cls (text: the value or the error). */
static void
finish(struct bogofilter_run *r, enum bogofilter_class cls, double score)
{
	struct bogofilter_result res = {
		.cls = cls,
		.score = score,
		.bogosity = buf_cstr(&r->text),
		.ms = (uv_hrtime() - r->start_ns) / NS_PER_MS,
	};
	bogofilter_done_cb cb = r->cb;

	release(r);
	if (cb)
		cb(r->arg, &res);
}

/* Ends the run with "bogofilter: what[: detail]". */
static void
fail(struct bogofilter_run *r, const char *what, const char *detail)
{
	buf_clear(&r->text);
	buf_printf(&r->text, "bogofilter: %s", what);
	if (detail && *detail)
		buf_printf(&r->text, ": %s", detail);
	finish(r, BOGOFILTER_ERROR, 0);
}

/* The first line of stderr, printable, for an error text. */
static const char *
stderr_line(struct bogofilter_run *r)
{
	char *s = (char *)buf_cstr(&r->err);

	s[strcspn(s, "\r\n")] = '\0';
	for (char *q = s; *q; q++)
		if (*q < ' ' || *q > '~')
			*q = '?';
	return s;
}

/* The child exited and its output is complete: the verdict. */
static void
conclude(struct bogofilter_run *r)
{
	char why[64];
	double score;

	if (r->signal) {
		snprintf(why, sizeof(why), "killed by signal %d", r->signal);
		fail(r, why, stderr_line(r));
	} else if (r->status < EXIT_SPAM || r->status > EXIT_UNSURE) {
		snprintf(why, sizeof(why), "exit status %lld",
		    (long long)r->status);
		fail(r, why, stderr_line(r));
	} else if (bogofilter_parse(r->out.data, r->out.len, &score,
	    &r->text) < 0)
		fail(r, "unreadable output", NULL);
	else
		finish(r, r->status == EXIT_SPAM ? BOGOFILTER_SPAM :
		    r->status == EXIT_HAM ? BOGOFILTER_HAM : BOGOFILTER_UNSURE,
		    score);
}

static void
maybe_conclude(struct bogofilter_run *r)
{
	if (r->state == RUN_RUNNING && r->exited && r->eofs == PIPES - 1)
		conclude(r);
}

static void
on_exit_cb(uv_process_t *proc, int64_t status, int signal)
{
	struct bogofilter_run *r = proc->data;

	r->exited = 1;
	r->status = status;
	r->signal = signal;
	if (r->state == RUN_DONE) {	/* killed after release: now reaped */
		close_handle((uv_handle_t *)&r->proc);
		return;
	}
	maybe_conclude(r);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct bogofilter_run *r = h->data;
	struct buf *o = h == (uv_handle_t *)&r->pipe[1] ? &r->out : &r->err;

	(void)hint;
	buf_reserve(o, READ_STEP);
	*b = uv_buf_init(o->data + o->len, (unsigned)(o->cap - o->len - 1));
}

/* Output of the child: kept (stderr only its start) until EOF. */
static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct bogofilter_run *r = st->data;
	struct buf *o = st == (uv_stream_t *)&r->pipe[1] ? &r->out : &r->err;

	(void)b;
	if (r->state != RUN_RUNNING || nread == 0)
		return;
	if (nread < 0) {
		uv_read_stop(st);
		r->eofs++;
		maybe_conclude(r);
		return;
	}
	o->len += (size_t)nread;
	o->data[o->len] = '\0';
	if (o == &r->err && o->len > STDERR_KEPT)
		o->data[o->len = STDERR_KEPT] = '\0';
	if (r->out.len > OUTPUT_MAX)
		fail(r, "too much output", NULL);
}

/* The message is written (or the child stopped reading): EOF on stdin. */
static void
on_write_done(uv_write_t *req, int status)
{
	struct bogofilter_run *r = req->data;

	(void)status;	/* a child that stops reading says why by its exit */
	if (r->state == RUN_RUNNING)
		close_handle((uv_handle_t *)&r->pipe[0]);
}

static void
on_timeout(uv_timer_t *t)
{
	struct bogofilter_run *r = t->data;

	if (r->spawn_err)
		fail(r, "cannot run it", uv_strerror(r->spawn_err));
	else
		fail(r, r->state == RUN_WAITING ? "no free slot in time" :
		    "no answer in time", NULL);
}

/* Fills the spawn options: bogofilter -v [-d DIR], three pipes. */
static void
spawn_options(struct bogofilter_run *r, uv_process_options_t *o,
    uv_stdio_container_t *io, char **argv)
{
	int n = 0;

	argv[n++] = r->path;
	argv[n++] = "-v";
	if (r->dir) {
		argv[n++] = "-d";
		argv[n++] = r->dir;
	}
	argv[n] = NULL;
	io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	io[1].flags = io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	for (int i = 0; i < PIPES; i++)
		io[i].data.stream = (uv_stream_t *)&r->pipe[i];
	memset(o, 0, sizeof(*o));
	o->file = r->path;
	o->args = argv;
	o->exit_cb = on_exit_cb;
	o->flags = UV_PROCESS_DETACHED;	/* its own group, killed as one */
	o->stdio = io;
	o->stdio_count = PIPES;
}

/* Starts the child, the message write and the reads. < 0: libuv error. */
static int
spawn(struct bogofilter_run *r)
{
	uv_process_options_t o;
	uv_stdio_container_t io[PIPES];
	char *argv[5];
	uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)r->len);
	int err;

	spawn_options(r, &o, io, argv);
	err = uv_spawn(r->pool->loop, &r->proc, &o);
	r->proc.data = r;
	if (err < 0)
		return err;
	r->spawned = 1;
	if ((err = uv_write(&r->write, (uv_stream_t *)&r->pipe[0], &b, 1,
	    on_write_done)) < 0)
		return err;
	for (int i = 1; i < PIPES && err == 0; i++)
		err = uv_read_start((uv_stream_t *)&r->pipe[i], on_alloc,
		    on_read);
	return err;
}

/*
 * A slot is free: r leaves the queue and runs. A failed start is told by
 * the timer at once, so the caller never hears back inside its own call.
 */
static void
run(struct bogofilter_run *r)
{
	uv_loop_t *loop = r->pool->loop;

	r->state = RUN_RUNNING;
	r->pool->running++;
	r->open_handles += 1 + PIPES;
	for (int i = 0; i < PIPES; i++) {
		uv_pipe_init(loop, &r->pipe[i], 0);
		r->pipe[i].data = r;
	}
	if ((r->spawn_err = spawn(r)) < 0)
		uv_timer_start(&r->timer, on_timeout, 0, 0);
}

static void
start_next(struct bogofilter_pool *p)
{
	struct bogofilter_run *r;

	while (p->running < p->max && (r = p->head) != NULL) {
		unqueue(r);
		run(r);
	}
}

struct bogofilter_run *
bogofilter_classify(struct bogofilter_pool *p, const struct bogofilter_opts *o,
    const char *data, size_t len, bogofilter_done_cb cb, void *arg)
{
	struct bogofilter_run *r = xcalloc(1, sizeof(*r));

	r->pool = p;
	r->path = xstrdup(o->path);
	r->dir = o->dir ? xstrdup(o->dir) : NULL;
	r->data = data;
	r->len = len;
	r->cb = cb;
	r->arg = arg;
	r->start_ns = uv_hrtime();
	r->write.data = r;
	uv_timer_init(p->loop, &r->timer);
	r->timer.data = r;
	r->open_handles = 1;
	uv_timer_start(&r->timer, on_timeout, o->timeout_ms, 0);
	r->state = RUN_WAITING;
	*p->tail = r;
	p->tail = &r->next;
	start_next(p);
	return r;
}

void
bogofilter_cancel(struct bogofilter_run *r)
{
	if (r == NULL || r->state == RUN_DONE)
		return;
	r->cb = NULL;
	release(r);
}

int
bogofilter_parse(const char *p, size_t n, double *score, struct buf *value)
{
	size_t end = 0, start;
	const char *s;
	char *stop;

	while (end < n && p[end] != '\n' && p[end] != '\r')
		end++;
	s = memchr(p, ':', end);
	if (s == NULL)
		return -1;
	start = (size_t)(s - p) + 1;
	while (start < end && p[start] == ' ')
		start++;
	buf_clear(value);
	for (size_t i = start; i < end && value->len < BOGOFILTER_LINE_MAX; i++)
		buf_appendc(value, p[i] >= ' ' && p[i] <= '~' ? p[i] : '?');
	s = strstr(buf_cstr(value), "spamicity=");
	if (s == NULL)
		return -1;
	*score = strtod(s + strlen("spamicity="), &stop);
	return stop > s + strlen("spamicity=") && *score >= 0 && *score <= 1 ?
	    0 : -1;
}

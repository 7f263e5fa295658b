/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * bogofilter: classifies a message with bogofilter(1) as a child process
 * on libuv (uv_spawn): `bogofilter -v [-d DIR]`, the message on its stdin
 * through a non-blocking pipe, its one line "X-Bogosity: Spam, tests=
 * bogofilter, spamicity=0.999..., version=..." read from stdout and its
 * exit status (0 spam, 1 ham, 2 unsure, 3 error). A timer bounds the
 * whole run, waiting for a slot included; at its end the child's process
 * group gets SIGKILL. A pool caps the children running at once; the rest
 * wait in order. The child inherits no descriptor but its three pipes:
 * every other descriptor of the daemon is close-on-exec.
 */
#ifndef INDIMAIL_BOGOFILTER_H
#define INDIMAIL_BOGOFILTER_H

#include <stdint.h>
#include <uv.h>

#include "../lib/buf.h"

/* What a run asks for; the strings are copied. */
struct bogofilter_opts {
	const char	*path;		/* the program (PATH is searched) */
	const char	*dir;		/* its -d word list folder, or NULL */
	uint64_t	 timeout_ms;	/* the whole run, queueing included */
};

enum bogofilter_class {
	BOGOFILTER_SPAM, BOGOFILTER_HAM, BOGOFILTER_UNSURE, BOGOFILTER_ERROR,
};

struct bogofilter_result {
	enum bogofilter_class cls;
	double		 score;		/* the spamicity, 0..1 */
	const char	*bogosity;	/* the X-Bogosity value, or the error */
	uint64_t	 ms;		/* how long the run took */
};

typedef void (*bogofilter_done_cb)(void *arg, const struct bogofilter_result *);

struct bogofilter_pool;
struct bogofilter_run;

/* At most max_children children run at once (the others wait). */
struct bogofilter_pool *bogofilter_pool_new(uv_loop_t *, int max_children);
/*
 * Starts classifying data[0..len), which must stay as it is until the
 * callback or bogofilter_cancel. The answer always comes later, on the
 * loop; cancelling a run kills its child and no callback follows.
 */
struct bogofilter_run *bogofilter_classify(struct bogofilter_pool *,
	    const struct bogofilter_opts *, const char *data, size_t len,
	    bogofilter_done_cb, void *arg);
void	bogofilter_cancel(struct bogofilter_run *);

/*
 * Reads bogofilter -v's first line (pure): 0 with the spamicity in
 * *score and the value after "NAME: " (printable ASCII, at most
 * BOGOFILTER_LINE_MAX bytes) in value, or -1. The class comes from the
 * exit status: bogofilter.cf may rename the "Spam,Ham,Unsure" tags.
 */
#define BOGOFILTER_LINE_MAX	200
int	bogofilter_parse(const char *p, size_t n, double *score,
	    struct buf *value);

#endif

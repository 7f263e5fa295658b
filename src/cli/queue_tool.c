/*
 * queue_tool: `indimail queue list|mailq|show|cat` and the dispatch of
 * the commands that change the queue (queue_tool_action.c). list and
 * mailq ask the queue manager and read the queue folders when it is not
 * running (with what the queue backend holds outside them: the wal
 * backend's segments); cat reads the message where the queue backend has
 * it: its file, else (wal, acknowledged but not yet checkpointed) its
 * record in a segment (queue_tool.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../queue/queue.h"
#include "control.h"
#include "queue_tool.h"

#define CAT_CHUNK	65536	/* bytes copied at a time by cat */

int
queue_tool_request(struct runtime *rt, const char *request, struct buf *reply)
{
	int rc = control_request(rt->cfg.queue_path, request, reply);

	while (rc >= 0 && reply->len && reply->data[reply->len - 1] == '\n')
		reply->data[--reply->len] = '\0';
	return rc;
}

void
queue_tool_unreachable(struct runtime *rt, int rc)
{
	if (rc == -2)
		fprintf(stderr, "indimail: permission denied on %s/qmgr.sock "
		    "(run as root or as the account indimaild runs as)\n",
		    rt->cfg.queue_path);
	else
		fprintf(stderr, "indimail: cannot reach the queue manager at "
		    "%s/qmgr.sock: %s\n", rt->cfg.queue_path, strerror(errno));
}

/*
 * Sends one request and copies its answer but the last line ("ok N" or
 * "error why") to stdout. 0 (ok), 1 (error), <0 (not reachable); *count:
 * the N of "ok N".
 */
static int
control(struct runtime *rt, const char *request, int *count)
{
	struct buf reply = BUF_INIT;
	const char *last;
	int rc;

	if ((rc = queue_tool_request(rt, request, &reply)) < 0) {
		buf_free(&reply);
		return rc;
	}
	last = strrchr(buf_cstr(&reply), '\n');
	last = last ? last + 1 : buf_cstr(&reply);
	fwrite(buf_cstr(&reply), 1, (size_t)(last - buf_cstr(&reply)), stdout);
	rc = strncmp(last, "ok", 2) == 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "indimail: %s\n", last);
	else
		*count = atoi(last + 3);
	buf_free(&reply);
	return rc;
}

/* The queue set of the configuration, for reading the folders. */
static void
folders(struct runtime *rt, struct queue_set *qs)
{
	memset(qs, 0, sizeof(*qs));
	qs->path = rt->cfg.queue_path;
	qs->count = rt->cfg.queue_count;
	qs->split = rt->cfg.queue_split;
	qs->backend = rt->cfg.queue_backend == QUEUE_BACKEND_SEGMENT ?
	    &queue_segment : &queue_fs;
}

/* An empty listing must mean an empty queue, never "not allowed to look". */
static int
readable(const struct queue_set *qs)
{
	struct buf p = BUF_INIT;
	int ok = 1;

	for (int i = 0; ok && i < qs->count; i++) {
		buf_clear(&p);
		buf_printf(&p, "%s/%d/mess", qs->path, i);
		if (access(buf_cstr(&p), R_OK | X_OK) < 0 && errno != ENOENT) {
			fprintf(stderr, "indimail: cannot read the queue %s: %s "
			    "(run as root or as the account indimaild runs as)\n",
			    buf_cstr(&p), strerror(errno));
			ok = 0;
		}
	}
	buf_free(&p);
	return ok;
}

static int
print_one(void *arg, struct queue_item *qi)
{
	struct buf b = BUF_INIT;

	(void)arg;
	queue_format_entry(&b, qi->env.id, (long long)time(NULL) -
	    qi->env.received, qi->size, qi->env.sender, 0);
	for (size_t i = 0; i < qi->env.nrcpts; i++)
		buf_printf(&b, "    queued   <%s>\n", qi->env.rcpts[i]);
	fputs(buf_cstr(&b), stdout);
	buf_free(&b);
	return 0;
}

struct mailq_total {
	unsigned long long	bytes;
	size_t			count;
};

/* One message as mailq shows it, its journal saying what is final. */
static int
mailq_one(void *arg, struct queue_item *qi)
{
	struct mailq_total *t = arg;
	struct queue_journal j = { 0 };
	struct buf b = BUF_INIT;
	const char *last = NULL;

	j.final = calloc(qi->env.nrcpts + 1, 1);
	queue_fs.journal_read(qi, &j);
	queue_mailq_message(&b, t->count++ == 0, qi->env.id,
	    j.hold || qi->env.hold ? '!' : ' ', qi->size, qi->env.received,
	    qi->env.sender);
	for (size_t i = 0; i < qi->env.nrcpts; i++)
		if (j.final == NULL || !j.final[i])
			queue_mailq_rcpt(&b, qi->env.rcpts[i], NULL, &last);
	t->bytes += qi->size;
	fputs(buf_cstr(&b), stdout);
	buf_free(&b);
	free(j.final);
	return 0;
}

/* The backend's unsettled messages but those in mess/ (the scan's). */
struct outside {
	const struct queue_set *qs;
	int		(*fn)(void *, struct queue_item *);
	void		*arg;
	int		 n;
};

static int
outside_mess(void *arg, struct queue_item *qi)
{
	struct outside *o = arg;
	struct buf p = BUF_INIT;
	int in;

	queue_mess_path(o->qs, qi->queue, qi->env.id, &p);
	in = strcmp(qi->path, buf_cstr(&p)) == 0;
	buf_free(&p);
	if (in)
		return 0;
	o->n++;
	return o->fn(o->arg, qi);
}

/* Every message: mess/, then what the backend still holds elsewhere. */
static int
scan_all(struct runtime *rt, const struct queue_set *qs,
    int (*fn)(void *, struct queue_item *), void *arg)
{
	const struct queue_backend *b = queue_backend_of(rt->cfg.queue_backend);
	struct outside o = { qs, fn, arg, 0 };
	int n = queue_scan(qs, fn, arg);

	if (b->unsettled)
		(void)b->unsettled(qs, outside_mess, &o);
	return n + o.n;
}

/* list (or mailq) from the folders, when no queue manager runs. */
static int
from_folders(struct runtime *rt, int mailq)
{
	struct mailq_total t = { 0, 0 };
	struct queue_set qs;
	struct buf b = BUF_INIT;
	int n;

	folders(rt, &qs);
	if (!readable(&qs))
		return 1;
	if (mailq) {
		scan_all(rt, &qs, mailq_one, &t);
		queue_mailq_total(&b, t.bytes, t.count);
		fputs(buf_cstr(&b), stdout);
		buf_free(&b);
		return 0;
	}
	fputs(QUEUE_LIST_HEADER, stdout);
	n = scan_all(rt, &qs, print_one, NULL);
	printf("%d message%s in the queue\n", n, n == 1 ? "" : "s");
	return 0;
}

static int
listing(struct runtime *rt, const char *verb)
{
	int mailq = strcmp(verb, "mailq") == 0, n = 0, rc;

	if (!mailq)
		fputs(QUEUE_LIST_HEADER, stdout);
	if ((rc = control(rt, verb, &n)) == 0 && !mailq)
		printf("%d message%s in the queue\n", n, n == 1 ? "" : "s");
	if (rc >= 0)
		return rc;
	if (rc != -1) {
		queue_tool_unreachable(rt, rc);
		return 1;
	}
	fprintf(stderr, "indimail: queue manager not running; reading "
	    "the queue folders\n");
	return from_folders(rt, mailq);
}

/*
 * Where the envelope of qi starts: 0 in its message file; in a segment
 * (the wal backend's record), just before the message, as it was written.
 */
static size_t
envelope_start(const struct queue_set *qs, const struct queue_item *qi)
{
	struct buf p = BUF_INIT;
	size_t n = queue_envelope_size(&qi->env), at = 0;

	queue_mess_path(qs, qi->queue, qi->env.id, &p);
	if (strcmp(qi->path, buf_cstr(&p)) != 0 && qi->body_offset >= n)
		at = qi->body_offset - n;
	buf_free(&p);
	return at;
}

/* The message from the envelope (--envelope) or from the message. */
static int
cat_item(const struct queue_set *qs, const struct queue_item *qi,
    int envelope)
{
	char chunk[CAT_CHUNK];
	FILE *f = fopen(qi->path, "r");
	size_t from = envelope ? envelope_start(qs, qi) : qi->body_offset;
	size_t left = qi->body_offset + qi->size - from, n;

	if (f == NULL || fseek(f, (long)from, SEEK_SET) < 0) {
		fprintf(stderr, "indimail: %s: %s\n", qi->path, strerror(errno));
		if (f)
			fclose(f);
		return 1;
	}
	while (left > 0 && (n = fread(chunk, 1, left < sizeof(chunk) ? left :
	    sizeof(chunk), f)) > 0) {
		fwrite(chunk, 1, n, stdout);
		left -= n;
	}
	fclose(f);
	return 0;
}

/* A message the backend holds outside mess/, looked for by id. */
struct cat_find {
	const struct queue_set *qs;
	const char	*id;
	int		 envelope, found, rc;
};

static int
cat_unsettled(void *arg, struct queue_item *qi)
{
	struct cat_find *c = arg;

	if (strcmp(qi->env.id, c->id) != 0)
		return 0;
	c->found = 1;
	c->rc = cat_item(c->qs, qi, c->envelope);
	return 1;	/* stop */
}

static int
queue_cat(struct runtime *rt, int argc, char **argv)
{
	const struct queue_backend *b = queue_backend_of(rt->cfg.queue_backend);
	static const char *const flags[] = { "--envelope", NULL };
	int envelope = 0;
	struct queue_set qs;
	struct queue_item qi;
	struct cat_find c = { &qs, NULL, 0, 0, 0 };

	if (queue_tool_args(argc, argv, flags, &envelope, 1, &c.id) != 0)
		return 2;
	c.envelope = envelope;
	folders(rt, &qs);
	if (!readable(&qs))
		return 1;
	for (int i = 0; i < qs.count; i++)
		if (b->read(&qs, i, c.id, &qi) == 0) {
			int rc = cat_item(&qs, &qi, envelope);
			queue_item_free(&qi);
			return rc;
		}
	if (b->unsettled)
		(void)b->unsettled(&qs, cat_unsettled, &c);
	if (c.found)
		return c.rc;
	fprintf(stderr, "indimail: no message in the queue: %s\n", c.id);
	return 1;
}

/* show ID, or (id NULL) active: the queue manager's active set. */
static int
show(struct runtime *rt, const char *id)
{
	struct buf req = BUF_INIT;
	int n, rc;

	if (id)
		buf_printf(&req, "show %s", id);
	else
		buf_appends(&req, "active");
	rc = control(rt, buf_cstr(&req), &n);
	buf_free(&req);
	if (rc < 0) {
		queue_tool_unreachable(rt, rc);
		return 1;
	}
	return rc;
}

/* list, mailq, active, show ID: no flags. */
static int
query(struct runtime *rt, int argc, char **argv)
{
	int show_id = strcmp(argv[0], "show") == 0;
	const char *id = NULL;

	if (queue_tool_args(argc, argv, NULL, NULL, show_id, &id) != 0)
		return 2;
	if (show_id || strcmp(argv[0], "active") == 0)
		return show(rt, id);
	return listing(rt, argv[0]);
}

int
queue_tool_main(struct runtime *rt, int argc, char **argv)
{
	if (strcmp(argv[0], "cat") == 0)
		return queue_cat(rt, argc, argv);
	if (strcmp(argv[0], "destinations") == 0)
		return queue_tool_destinations(rt, argc, argv);
	if (queue_tool_is_action(argv[0]))
		return queue_tool_action(rt, argc, argv);
	return query(rt, argc, argv);
}

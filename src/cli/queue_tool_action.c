/*
 * queue_tool_action: `indimail queue hold|release|remove|flush|requeue`
 * on a selection: ids, ALL, `-` (ids on stdin, one a line), and the
 * filters --from, --to, --domain, --older-than (2h, 3d, ...). ALL and
 * filters go to the queue manager as one request, which resolves them on
 * its table; ids go IDS_PER_REQUEST at a time. Prints what was done
 * ("3 messages held"); exit 1 when anything selected failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../queue/queue_select.h"
#include "queue_tool.h"

#define IDS_PER_REQUEST	32	/* the queue manager takes up to 64 */
#define ID_LINE_MAX	256	/* a line of ids on stdin */

static const struct {
	const char	*verb, *done;
} actions[] = {
	{ "hold", "held" }, { "release", "released" }, { "remove", "removed" },
	{ "flush", "scheduled for delivery now" }, { "requeue", "requeued" },
};

struct idlist {
	char	**v;
	size_t	  n;
	int	  all;
};

int
queue_tool_is_action(const char *verb)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(verb, actions[i].verb) == 0)
			return 1;
	return 0;
}

static const char *
done_word(const char *verb)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(verb, actions[i].verb) == 0)
			return actions[i].done;
	return "";
}

static void
add_id(struct idlist *l, const char *id)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
	l->v[l->n++] = xstrdup(id);
}

/* One id a line; spaces and mailq's status mark ('*', '!') dropped. */
static void
read_ids(struct idlist *l, FILE *in)
{
	char line[ID_LINE_MAX];
	size_t n;

	while (fgets(line, sizeof(line), in)) {
		n = strcspn(line, " \t\r\n*!");
		line[n] = '\0';
		if (n)
			add_id(l, line);
	}
}

/* The filter options and the request key each becomes. */
static const struct {
	const char	*opt, *key;
} options[] = {
	{ "--from", "from" }, { "--to", "to" }, { "--domain", "domain" },
	{ "--older-than", "older" },
};

/* The request key of option opt; NULL for none of ours. */
static const char *
key_of(const char *opt)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(opt, options[i].opt) == 0)
			return options[i].key;
	return NULL;
}

/*
 * Adds " key=val" for option opt to the filters f (an age in seconds for
 * --older-than; a value goes on the request line: no space or control
 * character). 0, or 2 once it said what was wrong.
 */
static int
option(struct buf *f, const char *verb, const char *opt, const char *val)
{
	const char *key = key_of(opt);
	long long age;

	if (strcmp(key, "older") == 0) {
		if ((age = queue_age_parse(val)) <= 0)
			return queue_tool_usage(verb, "%s %s: give a number "
			    "with s, m, h, d or w (2h, 3d)", opt, val);
		buf_printf(f, " older=%lld", age);
		return 0;
	}
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return queue_tool_usage(verb, "%s: no spaces or "
			    "control characters", opt);
	buf_printf(f, " %s=%s", key, *val ? val : "<>");
	return 0;
}

/* Fills l and the filters f from argv (after the verb); 0, or 2 (usage). */
static int
parse(int argc, char **argv, struct idlist *l, struct buf *f)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			if (key_of(argv[i]) == NULL)
				return queue_tool_usage(argv[0], "unknown "
				    "option %s", argv[i]);
			if (i + 1 == argc)
				return queue_tool_usage(argv[0], "%s needs a "
				    "value", argv[i]);
			if (option(f, argv[0], argv[i], argv[i + 1]) != 0)
				return 2;
			i++;
		} else if (strcmp(argv[i], "ALL") == 0)
			l->all = 1;
		else if (strcmp(argv[i], "-") == 0)
			read_ids(l, stdin);
		else
			add_id(l, argv[i]);
	}
	return 0;
}

/* Runs one request; adds what it did to *done. 0, 1 (failures), <0. */
static int
request(struct runtime *rt, const char *req, size_t *done)
{
	struct buf reply = BUF_INIT;
	int rc = queue_tool_request(rt, req, &reply), counted;
	const char *last;
	unsigned long n = 0;

	if (rc < 0) {
		buf_free(&reply);
		return rc;
	}
	last = strrchr(buf_cstr(&reply), '\n');
	last = last ? last + 1 : buf_cstr(&reply);
	fwrite(reply.data, 1, (size_t)(last - buf_cstr(&reply)), stderr);
	counted = sscanf(last, "ok %lu", &n) == 1 ||
	    sscanf(last, "error %lu done", &n) == 1;
	*done += counted ? n : 0;
	rc = strncmp(last, "ok ", 3) == 0 ? 0 : 1;
	if (rc && !counted)
		fprintf(stderr, "indimail: %s\n", last);
	buf_free(&reply);
	return rc;
}

/* The ids IDS_PER_REQUEST at a time, or ALL / the filters in one. */
static int
send_all(struct runtime *rt, const char *verb, const struct idlist *l,
    const struct buf *f, size_t *done)
{
	struct buf req = BUF_INIT;
	size_t i = 0;
	int rc = 0, r;

	do {
		buf_clear(&req);
		buf_appends(&req, verb);
		if (l->all || l->n == 0)
			buf_appends(&req, l->all ? " ALL" : "");
		else
			for (size_t k = 0; k < IDS_PER_REQUEST && i < l->n; k++)
				buf_printf(&req, " %s", l->v[i++]);
		buf_append(&req, f->data ? f->data : "", f->len);
		if ((r = request(rt, buf_cstr(&req), done)) < 0)
			rc = r;
		else if (r > rc)
			rc = r;
	} while (rc >= 0 && !l->all && i < l->n);
	buf_free(&req);
	return rc;
}

/* Only flush means every message when nothing is named. */
static int
selects_nothing(const char *verb, const struct idlist *l, const struct buf *f)
{
	return l->n == 0 && !l->all && f->len == 0 &&
	    strcmp(verb, "flush") != 0;
}

int
queue_tool_action(struct runtime *rt, int argc, char **argv)
{
	struct idlist l = { NULL, 0, 0 };
	struct buf f = BUF_INIT;
	size_t done = 0;
	int rc = 2;

	if (parse(argc, argv, &l, &f) != 0)
		rc = 2;
	else if (selects_nothing(argv[0], &l, &f))
		queue_tool_usage(argv[0], "which messages? give ids, ALL, - "
		    "(ids on stdin) or a filter");
	else if ((rc = send_all(rt, argv[0], &l, &f, &done)) >= 0)
		printf("%zu message%s %s\n", done, done == 1 ? "" : "s",
		    done_word(argv[0]));
	else {
		queue_tool_unreachable(rt, rc);
		rc = 1;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	buf_free(&f);
	return rc;
}

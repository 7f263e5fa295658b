/*
 * stats: `indimail stats` reads log files (or stdin) line by line, never
 * a whole file, through logparse.c into stats_feed, then writes the text
 * report to stdout and, with --html FILE, one self-contained HTML page.
 * --since takes "24h", "30m", "7d" (before now) or an ISO date/time (UTC).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "stats.h"
#include "stats_int.h"

#define STATS_TOP_DEFAULT	10
#define STATS_TOP_MAX		1000

static void
usage(void)
{
	fprintf(stderr, "usage: indimail stats [--since 24h|7d|2026-11-25"
	    "[T08:00[:00]]] [--top N] [--html FILE] [FILE...]\n");
}

/* "90m", "24h", "7d": that long before now. */
static int
relative(const char *s, time_t now, time_t *t)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || end == s || n < 0 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (*end) {
	case 'm': *t = now - n * 60; return 0;
	case 'h': *t = now - n * 3600; return 0;
	case 'd': *t = now - n * 86400; return 0;
	default: return -1;
	}
}

static int
parse_since(const char *s, time_t *t)
{
	static const char *forms[] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
	    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d" };
	struct tm tm;
	const char *rest;

	if (relative(s, time(NULL), t) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
		memset(&tm, 0, sizeof(tm));
		rest = strptime(s, forms[i], &tm);
		if (rest && (strcmp(rest, "") == 0 || strcmp(rest, "Z") == 0)) {
			*t = timegm(&tm);
			return 0;
		}
	}
	return -1;
}

static void
feed_stream(struct stats *st, FILE *in)
{
	struct logrec r = LOGREC_INIT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, in)) > 0) {
		if (logrec_parse(&r, line, (size_t)n) == 0)
			stats_feed(st, &r);
		else
			st->unreadable++;
	}
	free(line);
	logrec_free(&r);
}

static int
feed_files(struct stats *st, int argc, char **argv)
{
	FILE *in;

	if (argc == 0) {
		feed_stream(st, stdin);
		return 0;
	}
	for (int i = 0; i < argc; i++) {
		if ((in = strcmp(argv[i], "-") == 0 ? stdin :
		    fopen(argv[i], "r")) == NULL) {
			fprintf(stderr, "indimail stats: cannot read %s: %s\n",
			    argv[i], strerror(errno));
			return -1;
		}
		feed_stream(st, in);
		if (in != stdin)
			fclose(in);
	}
	return 0;
}

static int
write_html(const struct stats *st, const char *path, size_t top)
{
	FILE *out = fopen(path, "w");
	int rc;

	if (out == NULL) {
		fprintf(stderr, "indimail stats: cannot write %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	rc = stats_html(out, st, top);
	if (fclose(out) != 0 || rc < 0) {
		fprintf(stderr, "indimail stats: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

/* Options into st, *top and *html; the index of the first FILE or -1. */
static int
options(int argc, char **argv, struct stats *st, size_t *top,
    const char **html)
{
	static const struct option longopts[] = {
	    { "since", required_argument, NULL, 's' },
	    { "top", required_argument, NULL, 't' },
	    { "html", required_argument, NULL, 'H' },
	    { NULL, 0, NULL, 0 } };
	char *end;
	long n;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 's' && parse_since(optarg, &st->since) == 0)
			continue;
		if (ch == 'H') {
			*html = optarg;
			continue;
		}
		n = ch == 't' ? strtol(optarg, &end, 10) : 0;
		if (ch == 't' && *end == '\0' && n > 0 && n <= STATS_TOP_MAX) {
			*top = (size_t)n;
			continue;
		}
		if (ch == 's')
			fprintf(stderr, "indimail stats: --since %s: not 24h, "
			    "7d, 30m or YYYY-MM-DD[THH:MM[:SS]]\n", optarg);
		else if (ch == 't')
			fprintf(stderr, "indimail stats: --top %s: not a number "
			    "from 1 to %d\n", optarg, STATS_TOP_MAX);
		return -1;
	}
	return optind;
}

int
stats_main(int argc, char **argv)
{
	struct stats *st = xcalloc(1, sizeof(*st));
	size_t top = STATS_TOP_DEFAULT;
	const char *html = NULL;
	int first, rc = 0;

	if ((first = options(argc, argv, st, &top, &html)) < 0) {
		usage();
		free(st);
		return 2;
	}
	if (feed_files(st, argc - first, argv + first) < 0)
		rc = 1;
	else {
		stats_text(stdout, st, top);
		if (html && write_html(st, html, top) < 0)
			rc = 1;
	}
	stats_free(st);
	free(st);
	return rc;
}

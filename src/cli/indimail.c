/*
 * indimail: the admin command. `queue list|show|flush|hold|release|remove`
 * ask the running queue manager over its control socket
 * (<queue.path>/qmgr.sock); `queue list` falls back to reading the queue
 * folders when no queue manager is running. The directory commands
 * (domain, user, alias, host, and the vpopmail names, also as argv[0])
 * are admin.c's; `spam train` is spam.c's; `dkim keygen` is admin_dkim.c's;
 * `stats` (log reports) is stats.c's.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lua/lua_runtime.h"
#include "../queue/queue.h"
#include "admin.h"
#include "control.h"
#include "spam.h"
#include "stats.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: indimail [-c config.lua] queue list\n"
	    "       indimail [-c config.lua] queue show|hold|release|remove ID\n"
	    "       indimail [-c config.lua] queue flush\n"
	    "       indimail [-c config.lua] domain|user|alias|host ... "
	    "(docs/directory.md)\n"
	    "       indimail spam train ham|spam [--undo] [--dir DIR] "
	    "[--user NAME] [FILE...]\n"
	    "       indimail dkim keygen DOMAIN [--selector S] "
	    "[--algorithm rsa|ed25519] [--bits 2048] [--dir etc/dkim]\n"
	    "           [--group G]\n"
	    "       indimail stats [--since 24h|7d|YYYY-MM-DD[THH:MM]] [--top N] "
	    "[--html FILE] [FILE...]\n");
}

/*
 * Sends one request to the queue manager and copies its answer to stdout.
 * Returns 0 (ok), 1 (the queue manager said error) or -1 (not reachable).
 */
static int
control(struct runtime *rt, const char *request)
{
	struct buf reply = BUF_INIT;
	char *last;
	int rc;

	if ((rc = control_request(rt->cfg.queue_path, request, &reply)) < 0) {
		buf_free(&reply);
		return rc;
	}
	/* The last line is "ok N" or "error why"; the rest is the answer. */
	while (reply.len && reply.data[reply.len - 1] == '\n')
		reply.data[--reply.len] = '\0';
	last = strrchr(buf_cstr(&reply), '\n');
	last = last ? last + 1 : (char *)buf_cstr(&reply);
	fwrite(buf_cstr(&reply), 1, (size_t)(last - buf_cstr(&reply)), stdout);
	rc = strncmp(last, "ok", 2) == 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "indimail: %s\n", last);
	else if (strncmp(request, "list", 4) == 0)
		printf("%d message%s in the queue\n", atoi(last + 3),
		    atoi(last + 3) == 1 ? "" : "s");
	else if (strncmp(request, "flush", 5) == 0)
		printf("%d message%s scheduled for delivery now\n",
		    atoi(last + 3), atoi(last + 3) == 1 ? "" : "s");
	buf_free(&reply);
	return rc;
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
queue_list(struct runtime *rt)
{
	struct queue_set qs;
	int n;

	memset(&qs, 0, sizeof(qs));
	qs.path = rt->cfg.queue_path;
	qs.count = rt->cfg.queue_count;
	qs.split = rt->cfg.queue_split;
	qs.backend = &queue_fs;
	if (!readable(&qs))
		return 1;
	fputs(QUEUE_LIST_HEADER, stdout);
	n = queue_scan(&qs, print_one, NULL);
	printf("%d message%s in the queue\n", n, n == 1 ? "" : "s");
	return 0;
}

static int
queue_command(struct runtime *rt, int argc, char **argv)
{
	static const char *with_id[] = { "show", "hold", "release", "remove" };
	struct buf req = BUF_INIT;
	int rc;

	if (strcmp(argv[0], "list") == 0 || strcmp(argv[0], "flush") == 0) {
		if (argc != 1) {
			usage();
			return 2;
		}
		if (argv[0][0] == 'l')
			fputs(QUEUE_LIST_HEADER, stdout);
		buf_appends(&req, argv[0]);
	} else {
		for (size_t i = 0; i < 4 && req.len == 0; i++)
			if (strcmp(argv[0], with_id[i]) == 0 && argc == 2)
				buf_printf(&req, "%s %s", argv[0], argv[1]);
		if (req.len == 0) {
			usage();
			return 2;
		}
	}
	rc = control(rt, buf_cstr(&req));
	buf_free(&req);
	if (rc >= 0)
		return rc;
	if (rc == -2) {
		fprintf(stderr, "indimail: permission denied on %s/qmgr.sock "
		    "(run as root or as the account indimaild runs as)\n",
		    rt->cfg.queue_path);
		return 1;
	}
	if (strcmp(argv[0], "list") == 0) {
		fprintf(stderr, "indimail: queue manager not running; reading "
		    "the queue folders\n");
		return queue_list(rt);
	}
	fprintf(stderr, "indimail: cannot reach the queue manager at %s/qmgr.sock: "
	    "%s\n", rt->cfg.queue_path, strerror(errno));
	return 1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    { "db", required_argument, NULL, 'd' },
	    { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	const char *config = INDIMAIL_CONFIG, *db = NULL;
	int json = 0;
	struct buf err = BUF_INIT;
	struct runtime *rt;
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 :
	    argv[0];
	int ch;

	if (admin_is_command(self)) {	/* vadduser ... as a link */
		argv[0] = (char *)self;
		return admin_main(config, NULL, 0, argc, argv);
	}
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			config = optarg;
		else if (ch == 'd')
			db = optarg;
		else if (ch == 'j')
			json = 1;
		else {
			usage();
			return ch == 'h' ? 0 : 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 1 && admin_is_command(argv[0]))
		return admin_main(config, db, json, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "spam") == 0)
		return spam_main(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "stats") == 0)
		return stats_main(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "dkim") == 0)
		return admin_dkim_main(argc, argv);
	if (argc < 2 || strcmp(argv[0], "queue") != 0) {
		usage();
		return 2;
	}
	if ((rt = runtime_load(config, &err)) == NULL) {
		fprintf(stderr, "indimail: %s\n", buf_cstr(&err));
		return 1;
	}
	return queue_command(rt, argc - 1, argv + 1);
}

/*
 * indimail: the admin command. `queue ...` is queue_tool.c's (the queue
 * manager's control socket, <queue.path>/qmgr.sock). The directory commands
 * (domain, user, alias, host, and the vpopmail names, also as argv[0])
 * are admin.c's; `spam train` is spam.c's; `dkim keygen` is admin_dkim.c's;
 * `stats` (log reports) is stats.c's; `config` (check, dump, diff) is
 * config_tool.c's; `admin token` (the admin API's tokens) is
 * admin_api_token.c's.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buildinfo.h"
#include "../lua/lua_runtime.h"
#include "admin.h"
#include "config_tool.h"
#include "queue_tool.h"
#include "spam.h"
#include "stats.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: indimail [-c config.lua] queue list|mailq|active\n"
	    "       indimail [-c config.lua] queue show ID\n"
	    "       indimail [-c config.lua] queue cat [--envelope] ID\n"
	    "       indimail [-c config.lua] queue destinations [--down] "
	    "[--json]\n"
	    "       indimail [-c config.lua] queue "
	    "hold|release|remove|flush|requeue\n"
	    "           [--from ADDR] [--to ADDR] [--domain DOMAIN] "
	    "[--older-than 2h|3d] [ID...|ALL|-]\n"
	    "           (flush with nothing selected: every message; "
	    "- reads ids on stdin)\n"
	    "       indimail [-c config.lua] domain|user|alias|host ... "
	    "(docs/directory.md)\n"
	    "       indimail spam train ham|spam [--undo] [--dir DIR] "
	    "[--user NAME] [FILE...]\n"
	    "       indimail dkim keygen DOMAIN [--selector S] "
	    "[--algorithm rsa|ed25519] [--bits 2048] [--dir etc/dkim]\n"
	    "           [--group G]\n"
	    "       indimail stats [--since 24h|7d|YYYY-MM-DD[THH:MM]] [--top N] "
	    "[--html FILE] [FILE...]\n"
	    "       indimail [-c config.lua] config check|keys\n"
	    "       indimail [-c config.lua] config dump|diff [--defaults] "
	    "[--json] [KEY...]\n"
	    "       indimail [-c config.lua] admin token add NAME --scopes "
	    "SCOPE,... | list | remove NAME\n"
	    "       indimail -V   (the version; indimaild -V says more)\n");
}

/* `queue VERB ...` (argv from VERB): the verb checked before the config. */
static int
queue_main(const char *config, int argc, char **argv)
{
	struct buf err = BUF_INIT;
	struct runtime *rt;

	if (!queue_tool_knows(argv[0])) {
		fprintf(stderr, "indimail queue: unknown command %s\n", argv[0]);
		usage();
		return 2;
	}
	if ((rt = runtime_load(config, &err)) == NULL) {
		fprintf(stderr, "indimail: %s\n", buf_cstr(&err));
		return 1;
	}
	return queue_tool_main(rt, argc, argv);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    { "db", required_argument, NULL, 'd' },
	    { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	const char *config = INDIMAIL_CONFIG, *db = NULL;
	int json = 0;
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 :
	    argv[0];
	int ch;

	if (admin_is_command(self)) {	/* vadduser ... as a link */
		argv[0] = (char *)self;
		return admin_main(config, NULL, 0, argc, argv);
	}
	while ((ch = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
		if (ch == 'c')
			config = optarg;
		else if (ch == 'd')
			db = optarg;
		else if (ch == 'j')
			json = 1;
		else if (ch == 'V') {
			buildinfo_print_version(stdout, "indimail");
			return 0;
		}
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
	if (argc >= 1 && strcmp(argv[0], "config") == 0)
		return config_tool_main(config, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "admin") == 0)
		return admin_api_main(config, json, argc, argv);
	if (argc < 2 || strcmp(argv[0], "queue") != 0) {
		usage();
		return 2;
	}
	return queue_main(config, argc - 1, argv + 1);
}

/*
 * indimaild: the mail server. `indimaild -c FILE` runs it in the
 * foreground; `indimaild -t -c FILE` checks a configuration and exits.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: indimaild [-t] [-c config.lua]\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -t       check the configuration and exit\n", INDIMAIL_CONFIG);
}

int
main(int argc, char **argv)
{
	const char *config = INDIMAIL_CONFIG;
	int check = 0, ch;

	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 't':
			check = 1;
			break;
		default:
			usage();
			return ch == 'h' ? 0 : 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (check)
		return master_check(config);
	master_run(config);
}

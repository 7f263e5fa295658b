/*
 * indimaild: the mail server. `indimaild -c FILE` runs it in the
 * foreground; `indimaild -t -c FILE` checks a configuration and exits;
 * `indimaild -V` prints the version and how it was built.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buildinfo.h"
#include "master.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif
#ifndef INDIMAIL_USER
#define INDIMAIL_USER "indimail"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: indimaild [-t|-T] [-c config.lua] [-u user] | -V\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -t       check the configuration and exit\n"
	    "  -T       the same without reading the TLS files (the admin API)\n"
	    "  -u USER  account to run as when started as root (default %s);\n"
	    "           the configuration is only ever evaluated as this account\n"
	    "  -V       print the version, the compiled-in paths and the "
	    "libraries\n",
	    INDIMAIL_CONFIG, INDIMAIL_USER);
}

int
main(int argc, char **argv)
{
	const char *config = INDIMAIL_CONFIG, *user = INDIMAIL_USER;
	int check = 0, ch, tls_files = 1;

	while ((ch = getopt(argc, argv, "c:tTu:Vh")) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'T':
			check = 1;
			tls_files = 0;
			break;
		case 'u':
			user = optarg;
			break;
		case 'V':
			buildinfo_print(stdout, "indimaild");
			return 0;
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
		return master_check(config, user, tls_files);
	/* a queue file's mark "being written" is its owner's execute bit
	 * (docs/queue.md): no umask may strip it */
	umask(umask(0) & 077);
	master_run(config, user);
}

/*
 * indimail: the admin command. This first version knows `queue list`:
 * every queued message with id, age, size, sender and recipients, read
 * straight from the queue folders named by the configuration.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lua/lua_runtime.h"
#include "../queue/queue.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: indimail [-c config.lua] queue list\n");
}

static void
format_age(long long secs, char *out, size_t n)
{
	if (secs < 120)
		snprintf(out, n, "%llds", secs);
	else if (secs < 7200)
		snprintf(out, n, "%lldm", secs / 60);
	else if (secs < 172800)
		snprintf(out, n, "%lldh", secs / 3600);
	else
		snprintf(out, n, "%lldd", secs / 86400);
}

static int
print_one(void *arg, struct queue_info *qi)
{
	char age[32];

	(void)arg;
	format_age((long long)time(NULL) - qi->received, age, sizeof(age));
	printf("%-24s %6s %9zu  <%s>\n", qi->id, age, qi->size, qi->sender);
	for (size_t i = 0; i < qi->nrcpts; i++)
		printf("%42s<%s>\n", "", qi->rcpts[i]);
	return 0;
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
	printf("%-24s %6s %9s  %s\n", "ID", "AGE", "SIZE", "SENDER / RECIPIENTS");
	n = queue_scan(&qs, print_one, NULL);
	printf("%d message%s in the queue\n", n, n == 1 ? "" : "s");
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config = INDIMAIL_CONFIG;
	struct buf err = BUF_INIT;
	struct runtime *rt;
	int ch;

	while ((ch = getopt(argc, argv, "c:h")) != -1) {
		if (ch == 'c')
			config = optarg;
		else {
			usage();
			return ch == 'h' ? 0 : 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || strcmp(argv[0], "queue") != 0 ||
	    strcmp(argv[1], "list") != 0) {
		usage();
		return 2;
	}
	if ((rt = runtime_load(config, &err)) == NULL) {
		fprintf(stderr, "indimail: %s\n", buf_cstr(&err));
		return 1;
	}
	return queue_list(rt);
}

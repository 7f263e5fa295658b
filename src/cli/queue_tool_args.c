/*
 * queue_tool_args: the verbs of `indimail queue`, the usage line of each,
 * and the checks of a command line that takes flags and at most one
 * argument. A bad command line gets one line naming what is wrong
 * ("indimail queue hold: unknown option --bogus") and the verb's usage
 * line, never the whole usage text; exit 2.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "queue_tool.h"

#define SELECTION	"[--from ADDR] [--to ADDR] [--domain DOMAIN] " \
			"[--older-than 2h|3d] [ID...|ALL|-]"

static const struct {
	const char	*verb, *args;
} verbs[] = {
	{ "list", "" }, { "mailq", "" }, { "active", "" }, { "show", "ID" },
	{ "cat", "[--envelope] ID" }, { "destinations", "[--down] [--json]" },
	{ "hold", SELECTION }, { "release", SELECTION },
	{ "remove", SELECTION }, { "flush", SELECTION },
	{ "requeue", SELECTION },
};

/* The usage arguments of verb; NULL for no verb of ours. */
static const char *
args_of(const char *verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i].verb) == 0)
			return verbs[i].args;
	return NULL;
}

int
queue_tool_knows(const char *verb)
{
	return args_of(verb) != NULL;
}

int
queue_tool_usage(const char *verb, const char *fmt, ...)
{
	const char *args = args_of(verb);
	va_list ap;

	fprintf(stderr, "indimail queue %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: indimail [-c config.lua] queue %s%s%s\n",
	    verb, args && *args ? " " : "", args ? args : "");
	return 2;
}

/* The index of arg in flags, or -1. */
static int
flag_index(const char *const flags[], const char *arg)
{
	for (int i = 0; flags && flags[i]; i++)
		if (strcmp(arg, flags[i]) == 0)
			return i;
	return -1;
}

int
queue_tool_args(int argc, char **argv, const char *const flags[],
    int seen[], int want, const char **arg)
{
	int n = 0, f;

	for (int i = 1; i < argc; i++)
		if ((f = flag_index(flags, argv[i])) >= 0)
			seen[f] = 1;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return queue_tool_usage(argv[0], "unknown option %s",
			    argv[i]);
		else if (n++ == want)
			return queue_tool_usage(argv[0], "unexpected argument "
			    "%s", argv[i]);
		else
			*arg = argv[i];
	return n < want ? queue_tool_usage(argv[0], "missing ID") : 0;
}

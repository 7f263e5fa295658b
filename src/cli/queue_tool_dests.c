/*
 * queue_tool_dests: `indimail queue destinations [--down] [--json]`, the
 * queue manager's destination table (src/deliver/qmgr_dests.c has the
 * lines it answers): one row per destination in columns, most messages
 * waiting first, or a JSON array. It lives in the queue manager's memory
 * only: with no queue manager running there is nothing to show, and the
 * command says so and exits 1.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "queue_tool.h"

#define DEST_FIELDS	10	/* before the reason */

struct dest_row {
	char		 key[256], state[16];
	int		 window, max, running, failures;
	unsigned long long active, parked;
	long long	 since, until;
	const char	*reason;	/* "" when up */
};

/* One answer line into r (r->reason points into line); -1 if it is none. */
static int
parse_row(const char *line, struct dest_row *r)
{
	int end = 0;

	if (sscanf(line, "%255s %15s %d %d %d %llu %llu %d %lld %lld%n",
	    r->key, r->state, &r->window, &r->max, &r->running, &r->active,
	    &r->parked, &r->failures, &r->since, &r->until, &end) !=
	    DEST_FIELDS || end == 0)
		return -1;
	r->reason = line + end + (line[end] == ' ');
	return 0;
}

/* "2026-12-02T12:00:00Z", or "-" for 0. */
static const char *
iso(long long t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0)
		return "-";
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

static void
print_text(const struct dest_row *r)
{
	char window[32], since[32], until[32];

	snprintf(window, sizeof(window), "%d/%d", r->window, r->max);
	printf("%-32s %-8s %-7s %4d %9llu %8llu %8llu %8d %-20s %-20s %s\n",
	    r->key, r->state, window, r->running, r->active + r->parked,
	    r->active, r->parked, r->failures, iso(r->since, since),
	    iso(r->until, until), *r->reason ? r->reason : "-");
}

static void
json_time(struct buf *b, const char *name, long long t)
{
	char s[32];

	buf_printf(b, ",\"%s\":", name);
	if (t)
		admin_json_str(b, iso(t, s));
	else
		buf_appends(b, "null");
}

static void
print_json(struct buf *b, const struct dest_row *r, int first)
{
	buf_appends(b, first ? "\n" : ",\n");
	buf_appends(b, "{\"destination\":");
	admin_json_str(b, r->key);
	buf_appends(b, ",\"state\":");
	admin_json_str(b, r->state);
	buf_printf(b, ",\"window\":%d,\"per_domain\":%d,\"running\":%d,"
	    "\"waiting\":%llu,\"active\":%llu,\"parked\":%llu,"
	    "\"failures\":%d", r->window, r->max, r->running,
	    r->active + r->parked, r->active, r->parked, r->failures);
	json_time(b, "since", r->since);
	json_time(b, "until", r->until);
	buf_appends(b, ",\"reason\":");
	if (*r->reason)
		admin_json_str(b, r->reason);
	else
		buf_appends(b, "null");
	buf_appendc(b, '}');
}

/* The answer's rows (its last line, "ok N", left out), printed. */
static void
print_rows(struct buf *reply, int json)
{
	struct buf b = BUF_INIT;
	struct dest_row r;
	char *line = reply->data, *nl;
	int n = 0;

	if (!json)
		printf("%-32s %-8s %-7s %4s %9s %8s %8s %8s %-20s %-20s %s\n",
		    "DESTINATION", "STATE", "WINDOW", "JOBS", "WAITING",
		    "ACTIVE", "PARKED", "FAILURES", "SINCE", "NEXT_PROBE",
		    "REASON");
	for (; line && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (parse_row(line, &r) < 0)
			continue;
		if (json)
			print_json(&b, &r, n == 0);
		else
			print_text(&r);
		n++;
	}
	if (json) {
		printf("[%s%s]\n", buf_cstr(&b), n ? "\n" : "");
		buf_free(&b);
	}
}

int
queue_tool_destinations(struct runtime *rt, int argc, char **argv)
{
	static const char *const flags[] = { "--json", "--down", NULL };
	struct buf reply = BUF_INIT;
	const char *last;
	int seen[2] = { 0, 0 }, json, down, rc;

	if (queue_tool_args(argc, argv, flags, seen, 0, NULL) != 0)
		return 2;
	json = seen[0];
	down = seen[1];
	rc = queue_tool_request(rt, down ? "destinations down" :
	    "destinations", &reply);
	if (rc == -1)
		fprintf(stderr, "indimail: the queue manager is not running "
		    "(%s/qmgr.sock: %s): destinations are known only to it\n",
		    rt->cfg.queue_path, strerror(errno));
	else if (rc < 0)
		queue_tool_unreachable(rt, rc);
	if (rc < 0) {
		buf_free(&reply);
		return 1;
	}
	last = strrchr(buf_cstr(&reply), '\n');
	last = last ? last + 1 : buf_cstr(&reply);
	if (strncmp(last, "ok", 2) != 0) {
		fprintf(stderr, "indimail: %s\n", last);
		buf_free(&reply);
		return 1;
	}
	print_rows(&reply, json);
	buf_free(&reply);
	return 0;
}

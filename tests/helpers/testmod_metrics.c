/*
 * testmod_metrics: the Lua 5.4 module "indimail_metrics" that
 * tests/unit/metrics_spec.lua loads. It starts the registry of
 * src/lib/metrics.c either on a few test families (start) or on the MTA's
 * own list (mail_start, src/mail/mail_metrics.c), counts into it, forks
 * real processes that count on the one mapping, as the master's children
 * do, and returns the rendered exposition. Every wait is bounded. Stack
 * effects are given as [-arguments, +results].
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "../../src/lib/metrics.h"
#include "../../src/mail/mail_metrics.h"

#define HAMMER_WAIT_S	20

static const struct metric_family t_plain = {
	"test_events_total", "Events", METRIC_COUNTER, { NULL }, 0, 0,
	{ 0 }, 0 };
static const struct metric_family t_labeled = {
	"test_connections_total", "Connections \\ by \"listener\"\nsecond line",
	METRIC_COUNTER, { "listener" }, 0, 0, { 0 }, 0 };
static const struct metric_family t_dynamic = {
	"test_rejected_total", "Rejections", METRIC_COUNTER,
	{ "stage", "policy" }, METRIC_DYNAMIC(1), 3, { 0 }, 0 };
static const struct metric_family t_gauge = {
	"test_queue_messages", "Queue", METRIC_GAUGE, { "queue", "state" }, 0,
	0, { 0 }, 0 };
static const struct metric_family t_hist = {
	"test_duration_seconds", "Durations", METRIC_HISTOGRAM, { "stage" }, 0,
	0, { 100, 1000, 10000 }, 1e-6 };

static const struct metric_family *const test_families[] = {
	&t_plain, &t_labeled, &t_dynamic, &t_gauge, &t_hist };
static const char *const test_names[] = {
	"plain", "labeled", "dynamic", "gauge", "hist", NULL };

/* The family named at idx, with its label values from the table at idx+1. */
static struct metric
check_metric(lua_State *L, int idx)
{
	const struct metric_family *f;
	const char *values[METRIC_LABELS_MAX] = { NULL };

	f = test_families[luaL_checkoption(L, idx, NULL, test_names)];
	if (!lua_isnoneornil(L, idx + 1)) {
		luaL_checktype(L, idx + 1, LUA_TTABLE);
		for (int i = 0; i < METRIC_LABELS_MAX; i++) {
			lua_rawgeti(L, idx + 1, i + 1);
			values[i] = lua_tostring(L, -1);	/* kept by the table */
			lua_pop(L, 1);
		}
	}
	return metrics_get(f, values);
}

/* start() [-0, +0]: a fresh registry of the test families. */
static int
l_start(lua_State *L)
{
	(void)L;
	metrics_stop();
	metrics_start(test_families, sizeof(test_families) /
	    sizeof(test_families[0]));
	return 0;
}

/*
 * mail_start({listener...}, nqueues) [-2, +0]: the MTA's families, once
 * (mail_metrics.c keeps the series it resolved, as a process does).
 */
static int
l_mail_start(lua_State *L)
{
	static int started;
	const char *names[16];
	size_t n = 0;

	if (started++)
		return luaL_error(L, "mail_start: once per process");
	luaL_checktype(L, 1, LUA_TTABLE);
	while (n < 16 && lua_rawgeti(L, 1, (lua_Integer)n + 1) == LUA_TSTRING) {
		names[n++] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	metrics_stop();
	mail_metrics_start(names, n, (int)luaL_checkinteger(L, 2));
	return 0;
}

/* inc(family, values, n) [-3, +0] */
static int
l_inc(lua_State *L)
{
	metric_add(check_metric(L, 1), (uint64_t)luaL_optinteger(L, 3, 1));
	return 0;
}

/* set(family, values, v) [-3, +0] */
static int
l_set(lua_State *L)
{
	metric_set(check_metric(L, 1), luaL_checkinteger(L, 3));
	return 0;
}

/* observe(family, values, v) [-3, +0] */
static int
l_observe(lua_State *L)
{
	metric_observe(check_metric(L, 1), (uint64_t)luaL_checkinteger(L, 3));
	return 0;
}

/* reject(stage, reply, policy) [-3, +0]: mail_metrics_reject. */
static int
l_reject(lua_State *L)
{
	mail_metrics_reject(luaL_checkstring(L, 1), luaL_checkstring(L, 2),
	    luaL_checkstring(L, 3));
	return 0;
}

/* render() -> text [-0, +1] */
static int
l_render(lua_State *L)
{
	struct buf out = BUF_INIT;

	metrics_render(&out);
	lua_pushlstring(L, out.data ? out.data : "", out.len);
	buf_free(&out);
	return 1;
}

static int
wait_children(pid_t *pids, int n)
{
	time_t end = time(NULL) + HAMMER_WAIT_S;
	int ok = 0, st;

	for (int i = 0; i < n; i++) {
		while (waitpid(pids[i], &st, WNOHANG) == 0 && time(NULL) < end)
			usleep(10000);
		if (time(NULL) >= end)
			kill(pids[i], SIGKILL), waitpid(pids[i], &st, 0);
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	return ok;
}

/*
 * hammer(nproc, n) -> children that finished [-2, +1]: each child adds
 * 1 n times to "plain" and to labeled{listener="smtp"} and observes n
 * values in hist{stage="rcpt"}, then exits.
 */
static int
l_hammer(lua_State *L)
{
	int nproc = (int)luaL_checkinteger(L, 1);
	lua_Integer n = luaL_checkinteger(L, 2);
	pid_t pids[64];
	int started = 0;

	luaL_argcheck(L, nproc > 0 && nproc <= 64, 1, "1..64 processes");
	for (int i = 0; i < nproc; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			struct metric p = metrics_get(&t_plain, NULL);
			struct metric l = metrics_get(&t_labeled,
			    (const char *[]){ "smtp" });
			struct metric h = metrics_get(&t_hist,
			    (const char *[]){ "rcpt" });

			for (lua_Integer k = 0; k < n; k++) {
				metric_inc(p);
				metric_inc(l);
				metric_observe(h, (uint64_t)(k % 20000));
			}
			_exit(0);
		}
		if (pid > 0)
			pids[started++] = pid;
	}
	lua_pushinteger(L, wait_children(pids, started));
	return 1;
}

int
luaopen_indimail_metrics(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "start", l_start }, { "mail_start", l_mail_start },
		{ "inc", l_inc }, { "set", l_set }, { "observe", l_observe },
		{ "reject", l_reject }, { "render", l_render },
		{ "hammer", l_hammer }, { NULL, NULL } };

	luaL_newlib(L, fns);
	return 1;
}

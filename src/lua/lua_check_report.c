/*
 * lua_check_report: what `indimaild -t` gathers instead of stopping at the
 * first problem. The report is a list of "file:line: what" lines. While a
 * configuration loads for a check, indimail.policy and indimail.hook note
 * their error (placed at the calling line) and return, so the next policy
 * is checked too; the config reader notes the problems that leave the rest
 * readable (cfg_problem). A key error that stops indimail.config{} stops
 * the file: the report says that nothing after it was checked.
 */
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua_config_int.h"
#include "lua_runtime.h"

void
check_report_add(struct check_report *r, const char *line)
{
	buf_appends(&r->text, line);
	buf_appendc(&r->text, '\n');
	r->n++;
}

void
check_report_addf(struct check_report *r, const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	check_report_add(r, n < 0 ? "(no memory for a problem's text)" : line);
	free(line);
}

void
check_report_close(struct check_report *r)
{
	buf_printf(&r->text, "%d problem%s", r->n, r->n == 1 ? "" : "s");
}

void
check_report_free(struct check_report *r)
{
	buf_free(&r->text);
}

/* Calls upvalue 1 (an indimail.* function); an error goes in the report,
 * placed at the calling line, and the call returns nothing. */
static int
noting(lua_State *L)
{
	struct check_report *r;
	int n = lua_gettop(L);

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	if (lua_pcall(L, n, 0, 0) == LUA_OK)
		return 0;
	lua_getfield(L, LUA_REGISTRYINDEX, CHECK_REPORT);
	r = lua_touserdata(L, -1);
	luaL_where(L, 1);
	lua_pushvalue(L, -3);
	lua_concat(L, 2);
	check_report_add(r, lua_tostring(L, -1));
	return 0;
}

void
lua_check_collect(lua_State *L, struct check_report *r)
{
	static const char *fns[] = { "policy", "hook", NULL };

	lua_pushlightuserdata(L, r);
	lua_setfield(L, LUA_REGISTRYINDEX, CHECK_REPORT);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, CFG_DEFERRED);
	lua_getglobal(L, "indimail");
	for (int i = 0; fns[i]; i++) {
		lua_getfield(L, -1, fns[i]);
		lua_pushcclosure(L, noting, 1);
		lua_setfield(L, -2, fns[i]);
	}
	lua_pop(L, 1);
}

/*
 * lua_check: what the configuration's text can tell beyond running it.
 * indimail.config{...} is read under a protected call so a "bad config"
 * error names the line of its key (lua_source_table.c), not the call's.
 * `indimaild -t` also runs runtime_check: the user= account exists, and
 * every indimail.reject/tempfail call written with constant arguments in
 * the configuration or a policy file it loaded has a valid code and status
 * (a call with computed arguments is checked when it runs, lua_api.c).
 */
#include <lauxlib.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "lua_api.h"
#include "lua_config_int.h"
#include "lua_domain.h"
#include "lua_hook_int.h"
#include "lua_runtime.h"
#include "lua_source.h"

#define SOURCES	"indimail.sources"

#define is(s, i, k, t)	lua_source_is(s, i, k, t)

/* Reads the chunk of a lua_Debug's source: a file or the text itself. */
static int
source_of(const lua_Debug *ar, struct lua_source *s)
{
	if (ar->source[0] == '@')
		return lua_source_read(s, ar->source + 1);
	if (ar->source[0] == '=')
		return -1;
	lua_source_lex(s, ar->source, ar->srclen);
	return 0;
}

/* (c) -> (): the reader, run protected so the error can be placed. */
static int
config_parse_k(lua_State *L)
{
	lua_config_parse(L, lua_touserdata(L, lua_upvalueindex(1)));
	return 0;
}

/*
 * "listen[]..." → "listen[N]...", N the element being read when the error
 * came (the readers go in order), so the lookup finds its line.
 */
static void
locate_element(const char *msg, const struct config *c, struct buf *out)
{
	static const char *lists[] = { "bad config: listen[",
	    "bad config: mailboxes.users[", NULL };
	size_t at[] = { c->nlisten, c->delivery.nusers + 1 };

	for (int i = 0; lists[i]; i++)
		if (strncmp(msg, lists[i], strlen(lists[i])) == 0 &&
		    msg[strlen(lists[i])] == ']' && at[i] > 0) {
			buf_printf(out, "%s%zu%s", lists[i], at[i],
			    msg + strlen(lists[i]));
			return;
		}
	buf_appends(out, msg);
}

/* Pushes msg as FILE:LINE of its key (the chunk calling indimail.config). */
static void
config_locate(lua_State *L, const struct config *c, const char *msg)
{
	struct buf where = BUF_INIT;
	struct lua_source src;
	lua_Debug ar;
	int line;

	if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "Sl", &ar)) {
		lua_pushstring(L, msg);
		return;
	}
	line = ar.currentline;
	if (strncmp(msg, "bad config: ", 12) == 0 &&
	    source_of(&ar, &src) == 0) {
		locate_element(msg, c, &where);
		if (lua_source_config_fields(&src, ar.currentline) == 0 &&
		    (line = lua_source_error_line(&src, buf_cstr(&where))) == 0)
			line = ar.currentline;
		lua_source_free(&src);
		buf_free(&where);
	}
	if (line > 0)
		lua_pushfstring(L, "%s:%d: %s", ar.short_src, line, msg);
	else
		lua_pushstring(L, msg);
}

/* The problems cfg_problem noted, placed, into `indimaild -t`'s report. */
static void
config_deferred(lua_State *L, const struct config *c)
{
	struct check_report *r;

	lua_getfield(L, LUA_REGISTRYINDEX, CHECK_REPORT);
	r = lua_touserdata(L, -1);
	lua_getfield(L, LUA_REGISTRYINDEX, CFG_DEFERRED);
	if (r == NULL || !lua_istable(L, -1)) {
		lua_pop(L, 2);
		return;
	}
	for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
		config_locate(L, c, lua_tostring(L, -1));
		check_report_add(r, lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	lua_pop(L, 3);
}

/* Raises the reader's error (on top) as FILE:LINE of its key. */
static int
config_error(lua_State *L, const struct config *c)
{
	const char *msg = lua_tostring(L, -1);

	if (msg == NULL)
		return lua_error(L);
	config_locate(L, c, msg);
	return lua_error(L);
}

/* indimail.config's table at index 1 into c; errors name their key's line. */
void
lua_config_read(lua_State *L, struct config *c)
{
	int status;

	lua_pushlightuserdata(L, c);
	lua_pushcclosure(L, config_parse_k, 1);
	lua_pushvalue(L, 1);
	status = lua_pcall(L, 1, 0, 0);
	config_deferred(L, c);
	if (status != LUA_OK)
		config_error(L, c);
}

/* Remembers a file a policy came from, for runtime_check. */
void
lua_check_note_source(lua_State *L, const char *path)
{
	lua_getfield(L, LUA_REGISTRYINDEX, SOURCES);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, SOURCES);
	}
	lua_pushstring(L, path);
	lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
	lua_pop(L, 1);
}

/* Token i is a literal argument followed by "," or ")": its text. */
static const char *
literal(const struct lua_source *s, size_t i, enum lua_tok_kind k)
{
	if (is(s, i, k, NULL) && (is(s, i + 1, LTOK_OP, ",") ||
	    is(s, i + 1, LTOK_OP, ")")))
		return s->tok[i].text;
	return NULL;
}

/*
 * The call indimail.reject|tempfail( at token i, if every argument is a
 * literal: 0 when valid or unknowable, else -1 with FILE:LINE in err.
 */
static int
check_call(const struct lua_source *s, size_t i, const char *file,
    struct check_report *r)
{
	int cls = strcmp(s->tok[i + 2].text, "reject") == 0 ? 5 : 4;
	const char *text = "x", *num = NULL, *status = cls == 5 ? "5.7.1" :
	    "4.7.1", *why;
	lua_Integer code = cls == 5 ? 550 : 451;
	size_t j = i + 4;
	char *end;

	if (!is(s, j, LTOK_OP, ")")) {
		if ((text = literal(s, j, LTOK_STRING)) == NULL)
			return 0;
		j += 2;
		if (is(s, j - 1, LTOK_OP, ",")) {
			if ((num = literal(s, j, LTOK_NUMBER)) == NULL)
				return 0;
			code = strtoll(num, &end, 10);
			if (*end != '\0')
				return 0;
			j += 2;
			if (is(s, j - 1, LTOK_OP, ",") && ((status = literal(s,
			    j, LTOK_STRING)) == NULL || !is(s, j + 1, LTOK_OP,
			    ")")))
				return 0;
		}
	}
	if ((why = hook_verdict_check(cls, code, status, text)) == NULL)
		return 0;
	check_report_addf(r, "%s:%d: indimail.%s(..., %lld, \"%s\"): %s",
	    file, s->tok[i].line, s->tok[i + 2].text, (long long)code, status,
	    why);
	return -1;
}

/* Every constant verdict call of file, each bad one reported. */
static void
check_verdicts(const char *file, struct check_report *r)
{
	struct lua_source s;

	if (lua_source_read(&s, file) < 0)
		return;		/* it loaded: read by someone else's rules */
	for (size_t i = 0; i + 4 < s.ntok; i++)
		if (is(&s, i, LTOK_NAME, "indimail") && is(&s, i + 1, LTOK_OP,
		    ".") && (is(&s, i + 2, LTOK_NAME, "reject") ||
		    is(&s, i + 2, LTOK_NAME, "tempfail")) &&
		    is(&s, i + 3, LTOK_OP, "("))
			(void)check_call(&s, i, file, r);
	lua_source_free(&s);
}

/* user = "name": an account that exists. */
static void
check_user(struct runtime *rt, struct check_report *r)
{
	struct buf err = BUF_INIT;
	struct lua_source s;
	int line = 0;

	if (rt->cfg.user == NULL || getpwnam(rt->cfg.user) != NULL)
		return;
	if (lua_source_read(&s, rt->path) == 0) {
		if (lua_source_config_fields(&s, 0) == 0)
			line = lua_source_key_line(&s, "user", NULL);
		lua_source_free(&s);
	}
	if (line > 0)
		buf_printf(&err, "%s:%d: ", rt->path, line);
	else
		buf_printf(&err, "%s: ", rt->path);
	buf_printf(&err, "bad config: user: there is no account '%s'",
	    rt->cfg.user);
	check_report_add(r, buf_cstr(&err));
	buf_free(&err);
}

int
runtime_check(struct runtime *rt, struct check_report *r)
{
	lua_State *L = rt->L;
	int top = lua_gettop(L);

	check_user(rt, r);
	check_verdicts(rt->path, r);
	lua_getfield(L, LUA_REGISTRYINDEX, SOURCES);
	for (lua_Integer i = 1; lua_istable(L, -1) &&
	    lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
		check_verdicts(lua_tostring(L, -1), r);
		lua_pop(L, 1);
	}
	lua_settop(L, top);
	domain_rules_check(rt, r);	/* each broken domain file */
	return r->n;
}

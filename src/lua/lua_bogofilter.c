/*
 * lua_bogofilter: indimail.bogofilter.classify(msg [, opts]), the message
 * stage's spam classification by a bogofilter child (src/net/
 * bogofilter.c), from a hook only. The run is counted in the call's
 * pending_ops and the coroutine yields; on_classified copies the answer
 * into the call and resumes it. A call that ends while the child runs
 * (hook timeout, session gone) cancels it, which kills the child. One pool
 * per process caps the children running at once.
 */
#include <string.h>

#include "lua_api.h"
#include "lua_hook_int.h"

#define BOGOFILTER_PATH_DEFAULT	"bogofilter"
#define BOGOFILTER_TIMEOUT_DEFAULT 10	/* seconds, the whole run */
#define BOGOFILTER_TIMEOUT_MAX	3600	/* seconds */
#define BOGOFILTER_CHILDREN	4	/* at once per process; the rest wait */
#define MS_PER_S		1000

static struct bogofilter_pool *pool;	/* this process's, on first use */

static const char *const opt_names[] = { "dir", "timeout", "path", NULL };

void
hook_bogofilter_cancel(struct hook_call *c)
{
	if (c->bogoq == NULL)
		return;
	bogofilter_cancel(c->bogoq);
	c->bogoq = NULL;
	c->pending_ops--;
}

static const char *
class_name(int cls)
{
	return cls == BOGOFILTER_SPAM ? "spam" : cls == BOGOFILTER_HAM ? "ham" :
	    "unsure";
}

/*
 * Pushes (class, score, X-Bogosity value, ms) or (nil, error, ms) on
 * c->co; returns their number.
 */
static int
push_class(struct hook_call *c)
{
	lua_State *L = c->co;

	if (c->bogo_class == BOGOFILTER_ERROR) {
		lua_pushnil(L);
		lua_pushstring(L, buf_cstr(&c->bogo_text));
		lua_pushinteger(L, (lua_Integer)c->bogo_ms);
		return 3;
	}
	lua_pushstring(L, class_name(c->bogo_class));
	lua_pushnumber(L, c->bogo_score);
	lua_pushstring(L, buf_cstr(&c->bogo_text));
	lua_pushinteger(L, (lua_Integer)c->bogo_ms);
	return 4;
}

static void
on_classified(void *arg, const struct bogofilter_result *r)
{
	struct hook_call *c = arg;

	c->bogoq = NULL;
	c->pending_ops--;
	c->bogo_class = r->cls;
	c->bogo_score = r->score;
	buf_set(&c->bogo_text, r->bogosity, strlen(r->bogosity));
	c->bogo_ms = r->ms;
	c->push = push_class;
	hook_resume(c);
}

/* opts at index i into o; its strings stay referenced by opts. */
static void
read_opts(lua_State *L, int i, struct bogofilter_opts *o)
{
	lua_Number s = BOGOFILTER_TIMEOUT_DEFAULT;

	o->path = BOGOFILTER_PATH_DEFAULT;
	o->dir = NULL;
	if (!lua_isnoneornil(L, i)) {
		luaL_checktype(L, i, LUA_TTABLE);
		hook_check_opts(L, i, "indimail.bogofilter.classify", opt_names);
		if (lua_getfield(L, i, "path") != LUA_TNIL)
			o->path = luaL_checkstring(L, -1);
		if (lua_getfield(L, i, "dir") != LUA_TNIL)
			o->dir = luaL_checkstring(L, -1);
		if (lua_getfield(L, i, "timeout") != LUA_TNIL)
			s = luaL_checknumber(L, -1);
		lua_pop(L, 3);
	}
	if (!(s > 0 && s <= BOGOFILTER_TIMEOUT_MAX))
		luaL_error(L, "indimail.bogofilter.classify: timeout must be "
		    "seconds in (0, %d]", BOGOFILTER_TIMEOUT_MAX);
	o->timeout_ms = (uint64_t)(s * MS_PER_S);
}

/*
 * indimail.bogofilter.classify(msg [, { dir=, timeout=, path= }]) ->
 * "spam"|"ham"|"unsure", score, "X-Bogosity value", ms |
 * nil, "error text", ms  (yields)
 */
static int
l_classify(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const struct buf *m = c->ctx->message;
	struct bogofilter_opts o;

	if (*(struct hook_call **)lua_getextraspace(L) != c || c->co != L)
		return luaL_error(L, "indimail.bogofilter.classify can only be "
		    "called from the message's hook (not in a nested coroutine)");
	if (hook_get_loop() == NULL)
		return luaL_error(L, "indimail.bogofilter.classify: no event "
		    "loop here");
	read_opts(L, 2, &o);
	if (pool == NULL)
		pool = bogofilter_pool_new(hook_get_loop(), BOGOFILTER_CHILDREN);
	c->bogoq = bogofilter_classify(pool, &o, m->data, m->len,
	    on_classified, c);
	c->pending_ops++;
	return lua_yield(L, 0);
}

void
lua_bogofilter_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "classify", l_classify }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "bogofilter");
	lua_pop(L, 1);
}

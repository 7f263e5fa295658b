/*
 * lua_hook: the coroutine hook runner (see lua_hook.h for the stages).
 *
 * One hook_call runs the hooks of one stage for one session. Each hook gets
 * a fresh coroutine whose extra space points back at the call, so a C API
 * function can start async work, count it in pending_ops and lua_yield; the
 * completion stores its result in the call and resumes. The call is freed
 * only when it is finished (or cancelled) AND no async work is in flight,
 * so late completions never touch freed memory. When the configuration's
 * hooks went on, the selected domains' runtimes (lua_domain.c) run theirs
 * in the same call, each in its own state. Verdicts: lua_verdict.c;
 * session, tx and msg: lua_objects.c; indimail.dns: lua_dns.c;
 * indimail.directory: lua_directory.c.
 */
#include <lauxlib.h>
#include <string.h>

#include "../lib/watchdog.h"
#include "../lib/xalloc.h"
#include "lua_domain.h"
#include "lua_hook_int.h"

static uv_loop_t *hook_loop;
static struct hook_call *hook_current;	/* inside its lua_resume */

static int step(struct hook_call *, int nargs);

void
hook_set_env(uv_loop_t *loop, struct dns *dns)
{
	hook_loop = loop;
	hook_dns_set(dns);
}

uv_loop_t *
hook_get_loop(void)
{
	return hook_loop;
}

/* Pushes the answer a yielding API waited for; returns its count. */
static int
push_answer(struct hook_call *c)
{
	int (*push)(struct hook_call *) = c->push;

	c->push = NULL;
	return push(c);
}

static void
release_co(struct hook_call *c)
{
	if (c->co_ref != LUA_NOREF) {
		*(struct hook_call **)lua_getextraspace(c->co) = NULL;
		luaL_unref(c->rt->L, LUA_REGISTRYINDEX, c->co_ref);
		c->co_ref = LUA_NOREF;
		c->co = NULL;
	}
}

static void
on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* session, tx and msg of the current runtime go. */
static void
release_objects(struct hook_call *c)
{
	lua_State *L = c->rt->L;

	hook_msg_detach(L, c->msg_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, c->msg_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, c->tx_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, c->session_ref);
	c->msg_ref = c->tx_ref = c->session_ref = LUA_NOREF;
}

/*
 * session, tx and msg in the current runtime's state. The notes tables
 * live in the configuration's state: a domain's runtime sees none.
 */
static void
make_objects(struct hook_call *c)
{
	struct hook_ctx own = *c->ctx;
	lua_State *L = c->rt->L;

	if (c->rt != c->main)
		own.session_notes = own.tx_notes = NULL;
	c->session_ref = hook_make_session(L, &own);
	if (c->stage >= HOOK_MAIL)
		c->tx_ref = hook_make_tx(L, &own);
	if (c->stage == HOOK_DATA || c->stage == HOOK_MESSAGE)
		c->msg_ref = hook_make_msg(L, c);
}

/*
 * The current runtime's hooks are done and went on: moves to the next
 * domain with hooks of this stage. -1: none left, or a domain whose file
 * did not load (c's verdict is then its 451 4.3.0).
 */
static int
next_domain(struct hook_call *c)
{
	while (c->ichain < c->nchain) {
		const struct domain_rule *r = c->chain[c->ichain++];
		if (r->rt == NULL) {
			c->name = r->label;
			hook_internal_error(c, "domain rules did not load",
			    r->error);
			return -1;
		}
		if (r->rt->nhooks[c->stage] == 0)
			continue;
		release_objects(c);
		runtime_unref(c->rt);
		c->rt = r->rt;
		runtime_ref(c->rt);
		make_objects(c);
		c->index = 0;
		return 0;
	}
	return -1;
}

/* Frees the call if nothing can reach it any more. */
static void
maybe_free(struct hook_call *c)
{
	if (!c->finished || c->pending_ops > 0 || c->running)
		return;
	release_co(c);
	release_objects(c);
	hook_dir_release(c);	/* before its configuration may go */
	runtime_unref(c->rt);
	runtime_unref(c->main);
	free(c->chain);
	hook_dns_clear(&c->dns);
	hook_verdict_free(&c->v);
	if (c->timer_init)
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	else
		free(c);
}

/* Delivers the verdict to the session (async case only). */
static void
finish(struct hook_call *c)
{
	c->finished = 1;
	c->v.delay_ms = c->delay_ms;
	hook_dir_cancel(c);
	if (c->timer_init)
		uv_timer_stop(&c->timer);
	if (c->async && c->cb)
		c->cb(c->arg, &c->v);
}

static void
on_hook_timeout(uv_timer_t *t)
{
	struct hook_call *c = t->data;

	if (c->finished)
		return;
	hook_internal_error(c, "hook exceeded its time budget", NULL);
	finish(c);
	maybe_free(c);
}

/*
 * The call's coroutine: the one the previous hook of this runtime returned
 * from normally (a finished coroutine runs a new function like a fresh
 * one: a stage's hooks share it instead of each making its own thread),
 * else a new one.
 */
static lua_State *
hook_coroutine(struct hook_call *c)
{
	lua_State *L = c->rt->L;

	if (c->co != NULL)
		return c->co;
	c->co = lua_newthread(L);
	c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	*(struct hook_call **)lua_getextraspace(c->co) = c;
	return c->co;
}

/* Starts hook c->index in the call's coroutine and pushes its arguments. */
static int
start_hook(struct hook_call *c)
{
	lua_State *L = c->rt->L, *co = hook_coroutine(c);
	int nargs = 1;

	budget_start(&c->budget, c->rt->cfg.hook_instructions);
	c->name = runtime_push_hook(c->rt, c->stage, c->index);
	lua_xmove(L, co, 1);
	lua_rawgeti(co, LUA_REGISTRYINDEX, c->session_ref);
	switch (c->stage) {
	case HOOK_CONNECT:
		break;
	case HOOK_HELO:
		lua_pushstring(co, c->ctx->helo);
		nargs = 2;
		break;
	case HOOK_AUTH:
		lua_pushstring(co, c->ctx->auth_user);
		nargs = 2;
		break;
	case HOOK_RCPT:
	case HOOK_ROUTE:
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->tx_ref);
		lua_pushstring(co, c->ctx->rcpt);
		nargs = 3;
		break;
	case HOOK_DATA:
	case HOOK_MESSAGE:
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->tx_ref);
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->msg_ref);
		nargs = 3;
		break;
	default:
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->tx_ref);
		nargs = 2;
	}
	return nargs;
}

/*
 * A hook ended normally: read its verdict and tx.env. 1 = stage over: any
 * verdict but "go on" (nil, true, tarpit), indimail.accept() included.
 */
static int
hook_returned(struct hook_call *c, int nres)
{
	const char *err = hook_parse_verdict(c->co, nres, &c->v);

	if (err == NULL)
		err = hook_verdict_stage_error(c->stage, &c->v);
	if (err == NULL)
		err = hook_read_env(c->co, c);
	if (err) {
		hook_internal_error(c, err, NULL);
		return 1;
	}
	snprintf(c->v.policy, sizeof(c->v.policy), "%s", c->name);
	c->delay_ms += c->v.delay_ms;	/* tarpits add up over the stage */
	return c->v.action != VERDICT_ACCEPT || c->v.stop;
}

static void
hook_failed(struct hook_call *c, int status)
{
	lua_State *L = c->rt->L;
	const char *msg = lua_tostring(c->co, -1);

	if (status == LUA_ERRMEM) {	/* the state is full: no traceback */
		hook_internal_error(c, "out of memory", NULL);
		return;
	}
	luaL_traceback(L, c->co, msg ? msg : "error object is not a string", 0);
	hook_internal_error(c, "hook raised an error", lua_tostring(L, -1));
	lua_pop(L, 1);
}

/*
 * Resumes the current coroutine with nargs values on its stack and keeps
 * going through the remaining hooks. Returns HOOK_DONE or HOOK_PENDING.
 */
static int
step(struct hook_call *c, int nargs)
{
	for (;;) {
		struct hook_call *prev;
		int nres = 0, status;

		if (c->co == NULL || lua_status(c->co) == LUA_OK) {
			if (c->index >= c->rt->nhooks[c->stage]) {
				release_co(c);	/* of this runtime's state */
				if (next_domain(c) < 0)
					return HOOK_DONE;
			}
			nargs = start_hook(c);
		}
		c->running = 1;
		budget_enter(&c->budget);	/* co has the count hook of L */
		watchdog_enter();	/* stuck in C (string.find): recycled */
		prev = hook_current;
		hook_current = c;
		status = lua_resume(c->co, c->rt->L, nargs, &nres);
		hook_current = prev;
		watchdog_leave();
		budget_leave();
		c->running = 0;
		if (c->budget.spent) {
			hook_internal_error(c, "instruction budget exceeded",
			    NULL);
			return HOOK_DONE;
		}
		if (status == LUA_YIELD) {
			if (c->pending_ops == 0 && c->push == NULL) {
				hook_internal_error(c, "hook yielded outside "
				    "an indimail API call", NULL);
				return HOOK_DONE;
			}
			lua_pop(c->co, nres);
			if (c->push == NULL)
				return HOOK_PENDING;
			nargs = push_answer(c);
			continue;
		}
		if (status != LUA_OK) {
			hook_failed(c, status);
			return HOOK_DONE;
		}
		if (hook_returned(c, nres))
			return HOOK_DONE;
		lua_settop(c->co, 0);	/* finished: the next hook reuses it */
		c->index++;
		hook_verdict_free(&c->v);
		hook_verdict_init(&c->v);
	}
}

const struct hook_ctx *
hook_current_ctx(void)
{
	return hook_current ? hook_current->ctx : NULL;
}

struct hook_call *
hook_current_call(void)
{
	return hook_current;
}

int
hook_run(struct runtime *rt, enum hook_stage stage, struct hook_ctx *ctx,
    struct hook_verdict *v, hook_done_cb cb, void *arg, struct hook_call **callp)
{
	struct hook_call *c;

	const struct domain_rule **chain;
	size_t nchain = domain_rules_select(rt, stage, ctx, &chain);

	hook_verdict_init(v);
	*callp = NULL;
	if (rt->nhooks[stage] == 0 && nchain == 0)
		return HOOK_DONE;
	c = xcalloc(1, sizeof(*c));
	c->rt = c->main = rt;
	runtime_ref(rt);
	runtime_ref(rt);
	c->chain = chain;
	c->nchain = nchain;
	c->stage = stage;
	c->ctx = ctx;
	c->cb = cb;
	c->arg = arg;
	c->co_ref = c->session_ref = c->tx_ref = c->msg_ref = LUA_NOREF;
	hook_verdict_init(&c->v);
	make_objects(c);
	if (step(c, 0) == HOOK_DONE) {
		c->finished = 1;
		c->v.delay_ms = c->delay_ms;
		hook_verdict_move(v, &c->v);
		maybe_free(c);
		return HOOK_DONE;
	}
	c->async = 1;
	*callp = c;
	if (hook_loop) {
		uv_timer_init(hook_loop, &c->timer);
		c->timer.data = c;
		c->timer_init = 1;
		uv_timer_start(&c->timer, on_hook_timeout,
		    (uint64_t)rt->cfg.timeout_hook, 0);
	}
	return HOOK_PENDING;
}

void
hook_cancel(struct hook_call *c)
{
	if (c == NULL || c->finished)
		return;
	c->cb = NULL;
	finish(c);
	maybe_free(c);
}

void
hook_resume(struct hook_call *c)
{
	int nargs;

	if (c->finished) {
		maybe_free(c);
		return;
	}
	if (c->running)
		return;		/* completed synchronously; step() picks it up */
	nargs = push_answer(c);
	if (step(c, nargs) == HOOK_DONE) {
		finish(c);
		maybe_free(c);
	}
}

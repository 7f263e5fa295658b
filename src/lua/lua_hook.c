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
 * indimail.directory: lua_directory.c; indimail.spf: lua_spf.c;
 * indimail.clamd: lua_clamd.c; indimail.bogofilter: lua_bogofilter.c;
 * indimail.rspamd: lua_rspamd.c.
 */
#include <lauxlib.h>
#include <string.h>

#include "../lib/watchdog.h"
#include "../lib/xalloc.h"
#include "../mail/mail_metrics.h"
#include "lua_domain.h"
#include "lua_hook_int.h"

#define NS_PER_US	1000

static uv_loop_t *hook_loop;
static struct hook_call *hook_current;	/* inside its lua_resume */
static struct metric durations[HOOK_NSTAGES];	/* resolved on first use */

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

/*
 * Runs fn(L) with ud as its only argument under lua_pcall: a C step into a
 * state (building objects, starting a hook, reading its verdict) that hits
 * the state's memory cap raises there, and an error raised outside any
 * pcall would abort the process. Pushing a light C function and a light
 * userdata allocates nothing. Returns the status; the error is popped.
 */
static int
guarded(lua_State *L, lua_CFunction fn, void *ud)
{
	int status;

	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ud);
	status = lua_pcall(L, 1, 0, 0);
	if (status != LUA_OK)
		lua_pop(L, 1);
	return status;
}

/* A guarded step failed: the stage's verdict is a 451 naming the step. */
static int
guard_failed(struct hook_call *c, int status, const char *step)
{
	char what[96];

	snprintf(what, sizeof(what), "%s while %s", status == LUA_ERRMEM ?
	    "out of memory" : "internal error", step);
	hook_internal_error(c, what, NULL);
	return -1;
}

/* (call) -> (): the answer a yielding API waited for goes onto c->co (an
 * error raised on the suspended co is thrown again here, in L). */
static int
p_push_answer(lua_State *L)
{
	struct hook_call *c = lua_touserdata(L, 1);
	int (*push)(struct hook_call *) = c->push;

	c->push = NULL;
	c->nargs = push(c);
	return 0;
}

/* Pushes the answer a yielding API waited for: its count, or -1 (451). */
static int
push_answer(struct hook_call *c)
{
	int status = guarded(c->rt->L, p_push_answer, c);

	return status == LUA_OK ? c->nargs :
	    guard_failed(c, status, "passing an answer to the hook");
}

/*
 * The call lets go of its coroutine. One that returned normally becomes the
 * runtime's spare (when it has none): the next stage's hooks run in it, its
 * stack already grown, instead of in a new thread.
 */
static void
release_co(struct hook_call *c)
{
	struct runtime *rt = c->rt;

	if (c->co_ref == LUA_NOREF)
		return;
	*(struct hook_call **)lua_getextraspace(c->co) = NULL;
	if (rt->spare_co == LUA_NOREF && lua_status(c->co) == LUA_OK) {
		lua_settop(c->co, 0);	/* what the last hook left */
		rt->spare_co = c->co_ref;
	} else
		luaL_unref(rt->L, LUA_REGISTRYINDEX, c->co_ref);
	c->co_ref = LUA_NOREF;
	c->co = NULL;
}

/* c->co: the runtime's spare coroutine, else a new one. [-0, +0] */
static void
take_co(lua_State *L, struct hook_call *c)
{
	struct runtime *rt = c->rt;

	if (rt->spare_co != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, rt->spare_co);
		c->co = lua_tothread(L, -1);
		lua_pop(L, 1);
		c->co_ref = rt->spare_co;
		rt->spare_co = LUA_NOREF;
	} else {
		c->co = lua_newthread(L);
		c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	*(struct hook_call **)lua_getextraspace(c->co) = c;
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
	if (!c->tx_kept)
		luaL_unref(L, LUA_REGISTRYINDEX, c->tx_ref);
	if (!c->session_kept)
		luaL_unref(L, LUA_REGISTRYINDEX, c->session_ref);
	c->msg_ref = c->tx_ref = c->session_ref = LUA_NOREF;
	c->session_kept = c->tx_kept = 0;
}

/*
 * (call) -> (): session, tx and msg in the current runtime's state. The
 * kept session and tx, with their notes, live in the configuration's
 * state: a domain's runtime builds its objects for the stage, without
 * notes.
 */
static int
p_make_objects(lua_State *L)
{
	struct hook_call *c = lua_touserdata(L, 1);
	struct hook_ctx own = *c->ctx;

	if (c->rt != c->main)
		own.session_obj = own.tx_obj = NULL;
	c->session_kept = own.session_obj != NULL;
	c->tx_kept = own.tx_obj != NULL;
	c->session_ref = hook_session_object(L, &own);
	if (c->stage >= HOOK_MAIL)
		c->tx_ref = hook_tx_object(L, &own);
	if (c->stage == HOOK_DATA || c->stage == HOOK_MESSAGE)
		c->msg_ref = hook_make_msg(L, c);
	return 0;
}

/* 0, or -1 with c's verdict a 451 (the state is full). */
static int
make_objects(struct hook_call *c)
{
	int status = guarded(c->rt->L, p_make_objects, c);

	return status == LUA_OK ? 0 :
	    guard_failed(c, status, "building session, tx and msg");
}

/*
 * The current runtime's hooks are done and went on: moves to the next
 * domain with hooks of this stage. -1: none left, or a domain whose file
 * did not load or whose objects did not fit (c's verdict is then 451).
 */
static int
next_domain(struct hook_call *c)
{
	while (c->ichain < c->nchain) {
		const struct domain_rule *r = c->chain[c->ichain++];
		c->file = r->file;
		c->name = r->label;
		if (r->rt == NULL) {
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
		c->index = 0;
		return make_objects(c);
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
	hook_spf_release(c);
	hook_dkim_release(c);
	hook_dmarc_release(c);	/* indimail.dmarc */
	runtime_unref(c->rt);
	runtime_unref(c->main);
	free(c->chain);
	hook_dns_clear(&c->dns);
	buf_free(&c->clam_text);
	buf_free(&c->bogo_text);	/* indimail.bogofilter */
	buf_free(&c->rsp_error);	/* indimail.rspamd */
	rspamd_reply_free(&c->rsp_reply);
	hook_verdict_free(&c->v);
	if (c->timer_init)
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	else
		free(c);
}

static struct metric
duration_of(enum hook_stage stage)
{
	return metrics_once(&durations[stage], &mm_hook_duration,
	    (const char *[]){ hook_stage_name(stage) });
}

void
hook_metrics_start(void)
{
	for (int st = 0; st < HOOK_NSTAGES; st++)
		duration_of((enum hook_stage)st);
}

/* The stage's hooks are done (or cancelled): how long they took. */
static void
observe_duration(const struct hook_call *c)
{
	metric_observe(duration_of(c->stage),
	    (uv_hrtime() - c->started_ns) / NS_PER_US);
}

/* Delivers the verdict to the session (async case only). */
static void
finish(struct hook_call *c)
{
	c->finished = 1;
	observe_duration(c);
	c->v.delay_ms = c->delay_ms;
	hook_dir_cancel(c);
	hook_spf_cancel(c);
	hook_clamd_cancel(c);
	hook_bogofilter_cancel(c);
	hook_rspamd_cancel(c);
	hook_dkim_cancel(c);
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

/* Pushes the arguments of c's stage after the session (c->nargs). */
static void
push_args(lua_State *L, struct hook_call *c)
{
	switch (c->stage) {
	case HOOK_CONNECT:
		return;
	case HOOK_HELO:
	case HOOK_AUTH:
		lua_pushstring(L, c->stage == HOOK_HELO ? c->ctx->helo :
		    c->ctx->auth_user);
		break;
	case HOOK_RCPT:
	case HOOK_ROUTE:
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
		lua_pushstring(L, c->ctx->rcpt);
		break;
	case HOOK_DATA:
	case HOOK_MESSAGE:
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->msg_ref);
		break;
	default:
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
	}
	c->nargs = lua_gettop(L) - 3;
}

/*
 * (call) -> (): hook c->index in the call's coroutine, its function and
 * arguments built on L and moved over. The coroutine is the one the
 * previous hook of this runtime returned from normally (a finished
 * coroutine runs a new function like a fresh one: a stage's hooks share
 * it instead of each making its own thread), else the runtime's spare,
 * else a new one.
 */
static int
p_start_hook(lua_State *L)
{
	struct hook_call *c = lua_touserdata(L, 1);

	if (c->co == NULL)
		take_co(L, c);
	c->name = runtime_push_hook(c->rt, c->stage, c->index);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->session_ref);
	push_args(L, c);
	if (!lua_checkstack(c->co, c->nargs + 2))	/* never raises in co */
		luaL_error(L, "no room to start the hook");
	lua_xmove(L, c->co, c->nargs + 2);
	c->nargs++;			/* the session */
	return 0;
}

/* Starts hook c->index: the number of its arguments, or -1 (451). */
static int
start_hook(struct hook_call *c)
{
	int status;

	budget_start(&c->budget, c->rt->cfg.hook_instructions);
	status = guarded(c->rt->L, p_start_hook, c);
	return status == LUA_OK ? c->nargs :
	    guard_failed(c, status, "starting the hook");
}

/* (call, value) -> (): the verdict a hook returned and tx.env, read
 * raw in the runtime's main thread; the error text goes in c->verdict_err. */
static int
p_read_verdict(lua_State *L)
{
	struct hook_call *c = lua_touserdata(L, 1);
	const char *err;

	lua_remove(L, 1);
	err = hook_parse_verdict(L, lua_gettop(L), &c->v);
	if (err == NULL)
		err = hook_verdict_stage_error(c->stage, &c->v);
	if (err == NULL)
		err = hook_read_env(L, c);
	c->verdict_err = err;
	return 0;
}

/* The deciding hook's name into dst, cut to fit (snprintf costs more than
 * a whole empty hook's verdict). */
static void
copy_name(char *dst, size_t size, const char *name)
{
	size_t n = strlen(name);

	if (n >= size)
		n = size - 1;
	memcpy(dst, name, n);
	dst[n] = '\0';
}

/*
 * A hook ended normally: read its verdict (its last result) and tx.env.
 * 1 = stage over: any verdict but "go on" (nil, true, tarpit),
 * indimail.accept() included, or a verdict that could not be read.
 */
static int
hook_returned(struct hook_call *c, int nres)
{
	lua_State *L = c->rt->L;
	int status;

	lua_pushcfunction(L, p_read_verdict);
	lua_pushlightuserdata(L, c);
	lua_xmove(c->co, L, nres > 0);	/* L is at rest: it has room */
	status = lua_pcall(L, 1 + (nres > 0), 0, 0);
	if (status != LUA_OK) {
		lua_pop(L, 1);
		guard_failed(c, status, "reading the verdict");
		return 1;
	}
	if (c->verdict_err) {
		hook_internal_error(c, c->verdict_err, NULL);
		return 1;
	}
	copy_name(c->v.policy, sizeof(c->v.policy), c->name);
	c->delay_ms += c->v.delay_ms;	/* tarpits add up over the stage */
	return c->v.action != VERDICT_ACCEPT || c->v.stop;
}

/* (call) -> (traceback): the failed coroutine's, in its main thread. */
static int
p_traceback(lua_State *L)
{
	struct hook_call *c = lua_touserdata(L, 1);
	const char *msg = lua_tostring(c->co, -1);

	luaL_traceback(L, c->co, msg ? msg : "error object is not a string", 0);
	return 1;
}

static void
hook_failed(struct hook_call *c, int status)
{
	lua_State *L = c->rt->L;

	if (status == LUA_ERRMEM) {	/* the state is full: no traceback */
		hook_internal_error(c, "out of memory", NULL);
		return;
	}
	lua_pushcfunction(L, p_traceback);
	lua_pushlightuserdata(L, c);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {	/* no room for it */
		lua_pop(L, 1);
		hook_internal_error(c, "hook raised an error",
		    lua_type(c->co, -1) == LUA_TSTRING ?
		    lua_tostring(c->co, -1) : NULL);
		return;
	}
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
			if ((nargs = start_hook(c)) < 0)
				return HOOK_DONE;
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
			if ((nargs = push_answer(c)) < 0)
				return HOOK_DONE;
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
	c->started_ns = uv_hrtime();
	hook_verdict_init(&c->v);
	if (make_objects(c) < 0 || step(c, 0) == HOOK_DONE) {
		c->finished = 1;
		observe_duration(c);
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
	if (nargs < 0 || step(c, nargs) == HOOK_DONE) {
		finish(c);
		maybe_free(c);
	}
}

/*
 * testmod_batch: the Lua 5.4 module "indimail_batch" that
 * tests/unit/batch_spec.lua loads: src/lib/batch.c's batcher (group commit
 * on the libuv thread pool) on a loop of its own, with items that only
 * count how often their batch saw them. Stack effects are given as
 * [-arguments, +results].
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "../../src/lib/batch.h"

struct t_item {
	struct batch_item item;
	int		 done;		/* times its batch's done saw it */
};

struct t_run {
	struct batcher	 b;
	size_t		 sizes[64], nsizes;
	int		 bad;		/* a list whose length is not its n */
};

static void
t_work(struct batch_item *items, size_t n, void *ctx)
{
	struct t_run *r = ctx;
	size_t k = 0;

	for (struct batch_item *it = items; it; it = it->next)
		k++;
	if (k != n)
		r->bad = 1;
}

static void
t_done(struct batch_item *items, size_t n, void *ctx, int status)
{
	struct t_run *r = ctx;

	(void)status;
	if (r->nsizes < sizeof(r->sizes) / sizeof(r->sizes[0]))
		r->sizes[r->nsizes++] = n;
	for (struct batch_item *it = items; it; it = it->next)
		((struct t_item *)it)->done++;
}

/*
 * batch_sizes(n, max) [-2, +2]: n items added to a batcher of that max at
 * once, the loop run until every batch is done; the batches' sizes in
 * order, and whether every item was done exactly once (with each batch's
 * list as long as its n).
 */
static int
l_batch_sizes(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1), max = luaL_checkinteger(L, 2);
	struct t_item *items;
	struct t_run r;
	uv_loop_t loop;
	int once;

	luaL_argcheck(L, n > 0 && n <= 100000, 1, "1..100000 items");
	luaL_argcheck(L, max >= 0, 2, "a max of 0 or more");
	if ((items = calloc((size_t)n, sizeof(*items))) == NULL)
		return luaL_error(L, "out of memory for %d items", (int)n);
	memset(&r, 0, sizeof(r));
	uv_loop_init(&loop);
	r.b.loop = &loop;
	r.b.work = t_work;
	r.b.done = t_done;
	r.b.ctx = &r;
	r.b.max = (size_t)max;
	for (lua_Integer i = 0; i < n; i++)
		batcher_add(&r.b, &items[i].item);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	once = !r.bad;
	for (lua_Integer i = 0; i < n; i++)
		once = once && items[i].done == 1;
	free(items);
	lua_createtable(L, (int)r.nsizes, 0);
	for (size_t i = 0; i < r.nsizes; i++) {
		lua_pushinteger(L, (lua_Integer)r.sizes[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_pushboolean(L, once);
	return 2;
}

int
luaopen_indimail_batch(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "batch_sizes", l_batch_sizes }, { NULL, NULL } };

	luaL_newlib(L, fns);
	return 1;
}

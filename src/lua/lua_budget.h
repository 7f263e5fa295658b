/*
 * lua_budget: the instruction budget of one hook call. budget_open() gives
 * a Lua state the count hook and the wrappers that keep a spent budget from
 * being caught; the hook runner makes a budget current around each
 * lua_resume and, when it comes back spent, abandons the coroutine.
 */
#ifndef INDIMAIL_LUA_BUDGET_H
#define INDIMAIL_LUA_BUDGET_H

#include <lua.h>

struct budget {
	long	used, limit;	/* VM instructions, counted in steps of 1000 */
	int	spent;		/* over the limit: the hook must be unwound */
};

/* Before any Lua code runs in L: count hook, pcall & co. that pass it on. */
void	budget_open(lua_State *L);
void	budget_start(struct budget *, long limit);
/* Makes b the budget charged (inside lua_resume of a hook); NULL: none. */
void	budget_enter(struct budget *b);
void	budget_leave(void);

#endif

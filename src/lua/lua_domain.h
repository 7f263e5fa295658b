/*
 * lua_domain: per-domain rules (issue 11). domain_rules = "folder" names a
 * folder of DOMAIN.lua files; each is loaded into its OWN runtime (its own
 * lua_State, instruction budget and memory cap: runtime_load_domain) and
 * kept in the configuration's runtime. A file that fails to load is kept
 * as an error: that domain's mail tempfails, other domains are untouched.
 * The hook runner (lua_hook.c) runs the selected domains' hooks after the
 * configuration's own, one runtime after the other.
 */
#ifndef INDIMAIL_LUA_DOMAIN_H
#define INDIMAIL_LUA_DOMAIN_H

#include <lua.h>

#include "../lib/buf.h"
#include "lua_hook.h"

struct domain_rule {
	char		*domain;	/* lowercase */
	char		*label;		/* "domain:example.com" (logs, verdicts) */
	char		*file;
	struct runtime	*rt;		/* NULL: the file did not load */
	char		*error;		/* why not ("file:line: ...") */
};

struct domain_rules {
	struct domain_rule *v;
	size_t		 n;
};

/* Loads main->cfg.domain_rules into main->domains; -1 only if the folder
 * cannot be read (a broken file is an error entry, logged). */
int	domain_rules_load(struct runtime *main, struct buf *err);
void	domain_rules_free(struct domain_rules *);
/* A reload: a file now broken keeps old's loaded version (logged). */
void	domain_rules_inherit(struct runtime *fresh, const struct runtime *old);
/* `indimaild -t`: each file that did not load goes in the report. */
void	domain_rules_check(const struct runtime *, struct check_report *);
/*
 * The domains whose hooks run at a stage, in order (see docs/lua.md
 * "Per-domain rules"): *out is malloc'ed (free it), the count returned.
 */
size_t	domain_rules_select(const struct runtime *, enum hook_stage,
	    const struct hook_ctx *, const struct domain_rule ***out);
/* A domain file's state: package.path reaches lua_dir/stdlib. */
void	domain_rules_prepare(lua_State *, struct runtime *);

#endif

/*
 * src/lua owns the Lua side of indimail: this runtime, the configuration
 * file's reading into struct config (lua_config*.c), the hook runner and
 * what hooks see (lua_hook.c, lua_objects.c, lua_verdict.c, lua_dns.c),
 * the sandbox and the budgets. It knows the directory and the network
 * plumbing, never the SMTP session or delivery: they call it.
 *
 * lua_runtime: one loaded configuration = one lua_State (memory-capped)
 * + the struct config it produced + the hooks it registered. Reference
 * counted: a reload swaps in a new runtime while hooks still running in the
 * old one finish there; the old state is closed when its last user leaves.
 */
#ifndef INDIMAIL_LUA_RUNTIME_H
#define INDIMAIL_LUA_RUNTIME_H

#include <lua.h>

#include "../lib/buf.h"
#include "../mail/config.h"

enum hook_stage {
	HOOK_CONNECT, HOOK_HELO,
	HOOK_AUTH,	/* after a successful SMTP AUTH */
	HOOK_MAIL, HOOK_RCPT, HOOK_DATA, HOOK_MESSAGE,
	HOOK_ROUTE,	/* queue manager: where a recipient's mail goes */
	HOOK_NSTAGES
};

struct domain_rules;

struct runtime {
	lua_State	*L;
	struct config	 cfg;
	char		*path;		/* the configuration file */
	int		 refs;
	int		 nhooks[HOOK_NSTAGES];
	int		 hook_index[HOOK_NSTAGES];	/* registry refs: lua_runtime.c */
	/* a coroutine whose hooks all returned, for the next stage's hooks
	 * (registry ref, LUA_NOREF: none): lua_hook.c */
	int		 spare_co;
	size_t		 mem_used, mem_limit;
	char		*domain;	/* a domain file's runtime: its domain */
	struct domain_rules *domains;	/* the configuration's (lua_domain.h) */
};

/* Loads and runs the file; NULL with "file:line: why" in err on failure. */
struct runtime *runtime_load(const char *path, struct buf *err);
/*
 * A domain file (lua_domain.c): its own state with parent's domain budgets;
 * the file returns a table of stage functions. NULL with "file:line: why".
 */
struct runtime *runtime_load_domain(const char *path, const char *domain,
	    const struct config *parent, struct buf *err);
void	runtime_ref(struct runtime *);
void	runtime_unref(struct runtime *);
const char *hook_stage_name(enum hook_stage);

/*
 * `indimaild -t`'s report (lua_check_report.c): one "file:line: what" line
 * per problem, in the order found. While a load collects, a pointer to it
 * is at registry[CHECK_REPORT].
 */
struct check_report {
	struct buf	 text;
	int		 n;
};
#define CHECK_REPORT	"indimail.check_report"
void	check_report_add(struct check_report *, const char *line);
void	check_report_addf(struct check_report *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* "N problems" after the lines (the text a failed `-t` prints). */
void	check_report_close(struct check_report *);
void	check_report_free(struct check_report *);

/*
 * `indimaild -t`: runtime_load that goes on past a problem which leaves the
 * rest checkable (a policy or hook that fails to register, a duplicate
 * listener, a dangling alias), noting each in r. NULL if the file could
 * not be run to its end (r says where it stopped).
 */
struct runtime *runtime_load_checking(const char *path, struct check_report *r);
/*
 * `indimaild -t`'s checks beyond loading (lua_check.c), each problem into
 * r: the user= account exists, verdicts written with constant arguments
 * are valid, every domain file loaded. Returns r->n.
 */
int	runtime_check(struct runtime *, struct check_report *r);

/*
 * lua_config_check.c: the one check of `indimaild -t` and `indimail config
 * check`. runtime_load_checked: the runtime if nothing is wrong, else NULL
 * with every problem, then "N problems", in err. config_check: eval reads
 * the file (config_check_eval_here: in this process), then the TLS pair is
 * loaded; 0 with "PATH: configuration OK (N listeners)" in out, or 1 with
 * the problems in out.
 */
struct config_check_found {
	char		*tls_cert, *tls_key;	/* malloc'd; NULL: no TLS */
	size_t		 nlisten;
};
typedef int config_check_eval(const char *path, void *arg,
	    struct config_check_found *, struct buf *err);
struct runtime *runtime_load_checked(const char *path, struct buf *err);
config_check_eval config_check_eval_here;
int	config_check(const char *path, config_check_eval *eval, void *arg,
	    struct buf *out);

/* Pushes hook i of a stage: its function, and returns its name. */
const char *runtime_push_hook(struct runtime *, enum hook_stage, int i);

#endif

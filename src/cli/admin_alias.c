/*
 * admin_alias: `indimail alias add|del|list` (valias). An alias is an
 * address, or "@domain" for a catch-all, of a domain of the database,
 * with one row per target: `alias add A T1 T2` adds two rows, `alias del
 * A` removes them all, `alias del A T` one.
 */
#include <string.h>

#include "admin.h"

/* The alias's domain must be in the database. */
static int
alias_domain(struct admin *a, const char *alias)
{
	const char *d = strrchr(alias, '@') + 1;
	int k = admin_exists(a, "SELECT 1 FROM domains WHERE name = ?1", "s",
	    d);

	if (k < 0)
		return EX_IOERR;
	return k ? 0 : admin_fail(EX_NOHOST, "unknown domain %s", d);
}

static int
alias_add(struct admin *a)
{
	char *al = a->o.pos[0];
	int rc, k;

	if (a->o.npos < 2)
		return admin_fail(EX_USAGE, "usage: indimail alias add ALIAS "
		    "TARGET...");
	if ((rc = admin_check_alias(al)) || (rc = alias_domain(a, al)))
		return rc;
	for (int i = 1; i < a->o.npos; i++)
		if ((rc = admin_check_target(a->o.pos[i])))
			return rc;
	if ((rc = admin_begin(a)) != 0)
		return rc;
	for (int i = 1; rc == 0 && i < a->o.npos; i++)
		if ((k = admin_exists(a, "SELECT 1 FROM aliases WHERE address = "
		    "?1 AND target = ?2", "ss", al, a->o.pos[i])) != 0)
			rc = k < 0 ? EX_IOERR : admin_fail(EX_CANTCREAT, "alias "
			    "%s -> %s exists", al, a->o.pos[i]);
		else
			rc = admin_run(a, admin_stmt(a, "INSERT INTO aliases "
			    "VALUES (?1, ?2)", "ss", al, a->o.pos[i]));
	return admin_commit(a, rc);
}

static int
alias_del(struct admin *a)
{
	char *al = a->o.pos[0];
	const char *t = a->o.npos == 2 ? a->o.pos[1] : NULL;
	int rc, k;

	if (a->o.npos < 1 || a->o.npos > 2)
		return admin_fail(EX_USAGE, "usage: indimail alias del ALIAS "
		    "[TARGET]");
	if ((rc = admin_check_alias(al)))
		return rc;
	if ((k = admin_exists(a, "SELECT 1 FROM aliases WHERE address = ?1 "
	    "AND (?2 IS NULL OR target = ?2)", "ss", al, t)) != 1)
		return k < 0 ? EX_IOERR : admin_fail(EX_NOUSER, "no alias %s%s%s",
		    al, t ? " -> " : "", t ? t : "");
	return admin_run(a, admin_stmt(a, "DELETE FROM aliases WHERE address = "
	    "?1 AND (?2 IS NULL OR target = ?2)", "ss", al, t));
}

/* list [ALIAS | @DOMAIN... ]: every alias, or those of one address. */
static int
alias_list(struct admin *a)
{
	char *al = a->o.npos ? a->o.pos[0] : NULL;
	int rc;

	if (a->o.npos > 1)
		return admin_fail(EX_USAGE, "usage: indimail alias list [ALIAS]");
	if (al && (rc = admin_check_alias(al)))
		return rc;
	return admin_print_rows(a, admin_stmt(a, "SELECT address, target FROM "
	    "aliases WHERE ?1 IS NULL OR address = ?1 ORDER BY address, target",
	    "s", al), 0);
}

int
admin_alias(struct admin *a, const char *verb)
{
	if (strcmp(verb, "add") == 0)
		return alias_add(a);
	if (strcmp(verb, "del") == 0)
		return alias_del(a);
	if (strcmp(verb, "list") == 0)
		return alias_list(a);
	return admin_fail(EX_USAGE, "alias: unknown command %s (add, del, "
	    "list)", verb);
}

/*
 * admin_domain: `indimail domain add|del|list|show` (vadddomain,
 * vdeldomain) and `indimail host add|list`, the host_table and smtp_port
 * rows the scale-out work reads. Deleting a domain deletes its users,
 * its alias domains and its aliases, in one transaction. `domain mod
 * --auth-mechs` sets the SMTP AUTH mechanisms with stored secrets
 * (admin_mechs.c); a mechanism turned off loses its users' secrets.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"

static int
need(struct admin *a, int n, const char *usage)
{
	if (a->o.npos == n)
		return 0;
	return admin_fail(EX_USAGE, "usage: indimail %s", usage);
}

/* 0: a domain of the database (not an alias one when real); else a code. */
static int
domain_known(struct admin *a, const char *d, int real)
{
	int k = admin_exists(a, real ? "SELECT 1 FROM domains WHERE name = ?1 "
	    "AND alias_of IS NULL" : "SELECT 1 FROM domains WHERE name = ?1",
	    "s", d);

	if (k < 0)
		return EX_IOERR;
	return k ? 0 : admin_fail(EX_NOHOST, "unknown domain %s%s", d,
	    real ? " (or an alias domain)" : "");
}

/* --auth-mechs into mechs (NULL when not given; refused with --alias-of). */
static int
domain_mechs(struct admin *a, char *mechs, size_t n, const char **out)
{
	*out = NULL;
	if (a->o.auth_mechs == NULL)
		return 0;
	if (a->o.alias_of)
		return admin_fail(EX_USAGE, "--auth-mechs is for a real "
		    "domain, not an alias domain");
	*out = mechs;
	return admin_check_mechs(a->o.auth_mechs, mechs, n);
}

static int
domain_add(struct admin *a)
{
	char *d = a->o.pos[0], *real = (char *)a->o.alias_of, mechs[64];
	const char *pm = a->o.postmaster, *am;
	int rc, k;

	if ((rc = need(a, 1, "domain add DOMAIN [--alias-of DOMAIN] "
	    "[--postmaster ADDRESS] [--auth-mechs cram-md5,scram-sha-256]")) ||
	    (rc = admin_check_domain(d)) ||
	    (real && (rc = admin_check_domain(real))) ||
	    (pm && (rc = admin_check_target(pm))) ||
	    (rc = domain_mechs(a, mechs, sizeof(mechs), &am)))
		return rc;
	if ((rc = admin_begin(a)) != 0)
		return rc;
	if ((k = admin_exists(a, "SELECT 1 FROM domains WHERE name = ?1", "s",
	    d)) != 0)
		rc = k < 0 ? EX_IOERR : admin_fail(EX_CANTCREAT, "domain %s "
		    "exists", d);
	else if (real == NULL || (rc = domain_known(a, real, 1)) == 0)
		rc = admin_run(a, admin_stmt(a, "INSERT INTO domains (name, "
		    "alias_of, postmaster, created, auth_mechs) VALUES (?1, ?2, "
		    "?3, ?4, ?5)", "sssis", d, real, pm, (long long)time(NULL),
		    am && *am ? am : NULL));
	return admin_commit(a, rc);
}

/* mod DOMAIN --auth-mechs LIST: users of a mechanism turned off lose it. */
static int
domain_mod(struct admin *a)
{
	char *d = a->o.pos[0], mechs[64];
	const char *am;
	int rc;

	if ((rc = need(a, 1, "domain mod DOMAIN --auth-mechs "
	    "cram-md5,scram-sha-256|\"\"")) || (rc = admin_check_domain(d)) ||
	    (rc = domain_mechs(a, mechs, sizeof(mechs), &am)))
		return rc;
	if (am == NULL)
		return admin_fail(EX_USAGE, "domain mod: nothing to change");
	if ((rc = admin_begin(a)) != 0)
		return rc;
	if ((rc = domain_known(a, d, 1)) == 0)
		rc = admin_run(a, admin_stmt(a, "UPDATE domains SET auth_mechs "
		    "= ?2 WHERE name = ?1", "ss", d, *am ? am : NULL));
	if (rc == 0)
		rc = admin_run(a, admin_stmt(a, "UPDATE users SET cram = CASE "
		    "WHEN ?2 LIKE '%cram-md5%' THEN cram END, scram = CASE WHEN "
		    "?2 LIKE '%scram-sha-256%' THEN scram END WHERE domain = ?1",
		    "ss", d, am));
	return admin_commit(a, rc);
}

static int
domain_del(struct admin *a)
{
	char *d = a->o.pos[0];
	int rc;

	if ((rc = need(a, 1, "domain del DOMAIN")) ||
	    (rc = admin_check_domain(d)) || (rc = admin_begin(a)))
		return rc;
	if ((rc = domain_known(a, d, 0)) == 0)
		rc = admin_run(a, admin_stmt(a, "DELETE FROM aliases WHERE "
		    "substr(address, instr(address, '@') + 1) IN (SELECT name "
		    "FROM domains WHERE name = ?1 OR alias_of = ?1)", "s", d));
	if (rc == 0)
		rc = admin_run(a, admin_stmt(a, "DELETE FROM domains WHERE "
		    "name = ?1", "s", d));
	return admin_commit(a, rc);
}

#define DOMAIN_COLUMNS \
	"SELECT name, alias_of, postmaster, (SELECT count(*) FROM users u " \
	"WHERE u.domain = d.name) AS users, auth_mechs FROM domains d "

static int
domain_show(struct admin *a, int one)
{
	char *d = a->o.pos[0];
	int rc;

	if (!one)
		return need(a, 0, "domain list") ? EX_USAGE :
		    admin_print_rows(a, admin_stmt(a, DOMAIN_COLUMNS
		    "ORDER BY name", ""), 0);
	if ((rc = need(a, 1, "domain show DOMAIN")) ||
	    (rc = admin_check_domain(d)))
		return rc;
	rc = admin_print_rows(a, admin_stmt(a, DOMAIN_COLUMNS "WHERE name = "
	    "?1", "s", d), 1);
	return rc == EX_NOUSER ? admin_fail(EX_NOHOST, "unknown domain %s",
	    d) : rc;
}

int
admin_domain(struct admin *a, const char *verb)
{
	if (strcmp(verb, "add") == 0)
		return domain_add(a);
	if (strcmp(verb, "del") == 0)
		return domain_del(a);
	if (strcmp(verb, "mod") == 0)
		return domain_mod(a);
	if (strcmp(verb, "list") == 0 || strcmp(verb, "show") == 0)
		return domain_show(a, verb[0] == 's');
	return admin_fail(EX_USAGE, "domain: unknown command %s (add, del, "
	    "mod, list, show)", verb);
}

/* ---- hosts ---------------------------------------------------------------- */

static int
host_add(struct admin *a)
{
	const char *port = a->o.port ? a->o.port : "25";
	char *end;
	long p = strtol(port, &end, 10);
	int rc, k;

	if ((rc = need(a, 2, "host add HOST ADDRESS [--port PORT]")) ||
	    (rc = admin_check_text("host", a->o.pos[0])) ||
	    (rc = admin_check_text("address", a->o.pos[1])))
		return rc;
	if (*end || p < 1 || p > 65535)
		return admin_fail(EX_DATAERR, "'%s' is not a port", port);
	if ((rc = admin_begin(a)) != 0)
		return rc;
	if ((k = admin_exists(a, "SELECT 1 FROM host_table WHERE host = ?1",
	    "s", a->o.pos[0])) != 0)
		rc = k < 0 ? EX_IOERR : admin_fail(EX_CANTCREAT, "host %s "
		    "exists", a->o.pos[0]);
	else if ((rc = admin_run(a, admin_stmt(a, "INSERT INTO host_table "
	    "VALUES (?1, ?2)", "ss", a->o.pos[0], a->o.pos[1]))) == 0)
		rc = admin_run(a, admin_stmt(a, "INSERT INTO smtp_port "
		    "VALUES (?1, ?2)", "si", a->o.pos[0], (long long)p));
	return admin_commit(a, rc);
}

int
admin_host(struct admin *a, const char *verb)
{
	if (strcmp(verb, "add") == 0)
		return host_add(a);
	if (strcmp(verb, "list") == 0)
		return need(a, 0, "host list") ? EX_USAGE :
		    admin_print_rows(a, admin_stmt(a, "SELECT h.host, "
		    "h.address, p.port FROM host_table h LEFT JOIN smtp_port p "
		    "USING (host) ORDER BY h.host", ""), 0);
	return admin_fail(EX_USAGE, "host: unknown command %s (add, list)",
	    verb);
}

/*
 * admin_vpop: `indimail import vpopmail|indimail`: users, aliases and host
 * assignments of a vpopmail or IndiMail MySQL/MariaDB database into the
 * directory, through admin_db's statements only. Domains are the distinct
 * pw_domain (and valias domain) values; each domain is one transaction
 * (created if missing). Source values are untrusted: a bad or existing row
 * is reported with its table and name and skipped, the rest goes on.
 * pw_clear_passwd and pw_gecos are never read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../directory/dirdb.h"
#include "../lib/xalloc.h"
#include "admin_vpop.h"

struct vimp {
	struct admin	*a;
	struct vsrc	 src;
	enum vpop_kind	 kind;
	char		 utable[128];	/* the users' table */
	int		 many;		/* utable has pw_domain */
	int		 indibak, valias, hostcntrl, host_table;
	int		 domains, users, aliases, hosts, skipped;
};

#define USER_EXISTS "SELECT 1 FROM users WHERE local = ?1 AND domain = ?2"
#define DRY_RUN		(-1)	/* admin_commit: roll back, not an error */

/* A row not imported: why (already printed) and which. Always 0. */
static int
skip(struct vimp *v, const char *table, const char *what, const char *name)
{
	vpop_skip(table, what, name);
	v->skipped++;
	return 0;
}

static int
user_insert(struct vimp *v, const char *local, const char *domain,
    const char *hash, long long quota, unsigned flags)
{
	char home[4096];

	if ((size_t)snprintf(home, sizeof(home), "%s/%s/%s",
	    v->a->maildir_root, domain, local) >= sizeof(home))
		return admin_fail(EX_DATAERR, "home folder name too long");
	v->users++;
	return admin_run(v->a, admin_stmt(v->a, "INSERT INTO users (local, "
	    "domain, password, home, quota, flags, created) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7)", "ssssiii", local, domain, hash, home,
	    quota, (long long)flags, (long long)time(NULL)));
}

/* The checks of one user row; 0 when it may be imported. */
static int
user_check(struct vimp *v, const struct vsrc_rows *r, char *addr,
    long long *quota, unsigned *flags)
{
	const char *dir = vsrc_col(r, 3), *shell = vsrc_col(r, 4);
	char *local, *domain;

	if (r->bad)
		return admin_fail(EX_DATAERR, "a value is too long or holds "
		    "a NUL byte");
	return admin_check_text("pw_name", vsrc_col(r, 0)) ||
	    (dir[0] && admin_check_text("pw_dir", dir)) ||
	    (shell[0] && admin_check_text("pw_shell", shell)) ||
	    admin_check_user(addr, &local, &domain) ||
	    vpop_map_hash(vsrc_col(r, 1)) ||
	    vpop_map_flags(v->kind, vsrc_col(r, 2), flags) ||
	    vpop_map_quota(shell, quota);
}

/* One row of table for domain d; extra: flags added (indibak). */
static int
user_row(struct vimp *v, const char *table, const struct vsrc_rows *r,
    const char *d, unsigned extra)
{
	const char *name = vsrc_col(r, 0);
	char addr[512];
	long long quota = 0;
	unsigned flags = 0;
	int k;

	snprintf(addr, sizeof(addr), "%s@%s", name, d);
	if (user_check(v, r, addr, &quota, &flags) != 0)
		return skip(v, table, "pw_name", name);
	if ((k = admin_exists(v->a, USER_EXISTS, "ss", addr, d)) < 0)
		return EX_IOERR;
	if (k) {
		admin_fail(EX_CANTCREAT, "user %s@%s exists", addr, d);
		return skip(v, table, "pw_name", name);
	}
	return user_insert(v, addr, d, vsrc_col(r, 1), quota, flags | extra);
}

static int
users(struct vimp *v, const char *table, const char *srcdom, const char *d,
    unsigned extra)
{
	struct vsrc_rows *r = xmalloc(sizeof(*r));
	char sql[512];
	int rc, k;

	snprintf(sql, sizeof(sql), "SELECT pw_name, pw_passwd, pw_gid, pw_dir, "
	    "pw_shell FROM `%s`%s ORDER BY pw_name", table, v->many ?
	    " WHERE pw_domain = ?" : "");
	rc = vsrc_query(&v->src, r, sql, v->many ? srcdom : NULL);
	while (rc == 0 && (k = vsrc_next(r)) != 0)
		rc = k < 0 ? EX_UNAVAILABLE : user_row(v, table, r, d, extra);
	vsrc_end(r);
	free(r);
	return rc;
}

static int
alias_row(struct vimp *v, const struct vsrc_rows *r, const char *d)
{
	const char *name = vsrc_col(r, 0), *line = vsrc_col(r, 1);
	char addr[512], target[512];
	int k;

	snprintf(addr, sizeof(addr), "%s@%s", name, d);
	if (r->bad || admin_check_text("alias", name) ||
	    admin_check_text("valias_line", line) || admin_check_alias(addr) ||
	    (k = vpop_map_target(line, target, sizeof(target))) < 0)
		return skip(v, "valias", "alias", name);
	if (k == 0) {
		admin_fail(EX_DATAERR, "valias %s: program or file delivery "
		    "'%s' is not imported", addr, line);
		return skip(v, "valias", "alias", name);
	}
	if ((k = admin_exists(v->a, "SELECT 1 FROM aliases WHERE address = "
	    "?1 AND target = ?2", "ss", addr, target)) != 0)
		return k < 0 ? EX_IOERR : (admin_fail(EX_CANTCREAT, "alias %s "
		    "-> %s exists", addr, target), skip(v, "valias", "alias",
		    name));
	v->aliases++;
	return admin_run(v->a, admin_stmt(v->a, "INSERT INTO aliases "
	    "(address, target) VALUES (?1, ?2)", "ss", addr, target));
}

/* A user imported and a host known: which host holds the user. */
static int
hostcntrl_row(struct vimp *v, const struct vsrc_rows *r, const char *d)
{
	const char *name = vsrc_col(r, 0), *host = vsrc_col(r, 1);
	int u, h, e;

	if (r->bad || admin_check_text("pw_name", name) ||
	    admin_check_text("host", host))
		return skip(v, "hostcntrl", "pw_name", name);
	if ((u = admin_exists(v->a, USER_EXISTS, "ss", name, d)) < 0 ||
	    (h = admin_exists(v->a, "SELECT 1 FROM host_table WHERE host = ?1",
	    "s", host)) < 0 || (e = admin_exists(v->a, "SELECT 1 FROM "
	    "hostcntrl WHERE local = ?1 AND domain = ?2", "ss", name, d)) < 0)
		return EX_IOERR;
	if (!u || !h || e) {
		admin_fail(EX_DATAERR, "hostcntrl %s@%s: %s", name, d, !u ?
		    "no such user imported" : !h ? "unknown host" : "exists");
		return skip(v, "hostcntrl", "pw_name", name);
	}
	return admin_run(v->a, admin_stmt(v->a, "INSERT INTO hostcntrl (local, "
	    "domain, host) VALUES (?1, ?2, ?3)", "sss", name, d, host));
}

/* Runs sql (with srcdom) and each row through fn. */
static int
each_row(struct vimp *v, const char *sql, const char *srcdom, const char *d,
    int (*fn)(struct vimp *, const struct vsrc_rows *, const char *))
{
	struct vsrc_rows *r = xmalloc(sizeof(*r));
	int rc, k;

	rc = vsrc_query(&v->src, r, sql, srcdom);
	while (rc == 0 && (k = vsrc_next(r)) != 0)
		rc = k < 0 ? EX_UNAVAILABLE : fn(v, r, d);
	vsrc_end(r);
	free(r);
	return rc;
}

static int
host_row(struct vimp *v, const struct vsrc_rows *r, const char *unused)
{
	const char *host = vsrc_col(r, 0), *ip = vsrc_col(r, 1);
	int k;

	(void)unused;
	if (r->bad || admin_check_text("host", host) ||
	    admin_check_text("ipaddr", ip))
		return skip(v, "host_table", "host", host);
	if ((k = admin_exists(v->a, "SELECT 1 FROM host_table WHERE host = "
	    "?1", "s", host)) != 0)
		return k < 0 ? EX_IOERR : (admin_fail(EX_CANTCREAT, "host %s "
		    "exists", host), skip(v, "host_table", "host", host));
	v->hosts++;
	return admin_run(v->a, admin_stmt(v->a, "INSERT INTO host_table "
	    "(host, address) VALUES (?1, ?2)", "ss", host, ip));
}

/* The real domain d exists or is created: 0, or EX_CANTCREAT (alias). */
static int
ensure_domain(struct vimp *v, const char *d)
{
	int k;

	if ((k = admin_exists(v->a, "SELECT 1 FROM domains WHERE name = ?1 "
	    "AND alias_of IS NULL", "s", d)) != 0)
		return k < 0 ? EX_IOERR : 0;
	if ((k = admin_exists(v->a, "SELECT 1 FROM domains WHERE name = ?1",
	    "s", d)) != 0)
		return k < 0 ? EX_IOERR : admin_fail(EX_CANTCREAT, "%s is an "
		    "alias domain here: its rows are not imported", d);
	v->domains++;
	return admin_run(v->a, admin_stmt(v->a, "INSERT INTO domains (name, "
	    "created) VALUES (?1, ?2)", "si", d, (long long)time(NULL)));
}

/* Commits, or rolls back after an error or for --dry-run. */
static int
finish(struct vimp *v, int rc)
{
	rc = admin_commit(v->a, rc == 0 && v->a->o.dry_run ? DRY_RUN : rc);
	return rc == DRY_RUN ? 0 : rc;
}

/* Everything of one domain in one transaction. */
static int
domain_rows(struct vimp *v, const char *srcdom, const char *d)
{
	int rc;

	if ((rc = ensure_domain(v, d)) == EX_CANTCREAT)
		return skip(v, v->utable, "pw_domain", srcdom);
	if (rc == 0)
		rc = users(v, v->utable, srcdom, d, 0);
	if (rc == 0 && v->indibak)
		rc = users(v, "indibak", srcdom, d, DIRDB_DISABLED);
	if (rc == 0 && v->valias)
		rc = each_row(v, "SELECT alias, valias_line FROM valias WHERE "
		    "domain = ? ORDER BY alias", srcdom, d, alias_row);
	if (rc == 0 && v->hostcntrl)
		rc = each_row(v, "SELECT pw_name, host FROM hostcntrl WHERE "
		    "pw_domain = ? ORDER BY pw_name", srcdom, d, hostcntrl_row);
	return rc;
}

static int
import_domain(struct vimp *v, const char *srcdom)
{
	char d[256];
	int rc;

	snprintf(d, sizeof(d), "%s", srcdom);
	if (strlen(srcdom) >= sizeof(d) || admin_check_text("pw_domain", d) ||
	    admin_check_domain(d))
		return skip(v, v->utable, "pw_domain", srcdom);
	if (v->a->o.domain && strcasecmp(d, v->a->o.domain) != 0)
		return 0;
	if ((rc = admin_begin(v->a)) != 0)
		return rc;
	return finish(v, domain_rows(v, srcdom, d));
}

/* Which tables the source has: the layout (docs/directory.md). */
static int
detect(struct vimp *v)
{
	const char *dom = v->a->o.domain;
	int k;

	v->many = 1;
	snprintf(v->utable, sizeof(v->utable), "%s", v->kind == VPOP_INDIMAIL ?
	    "indimail" : "vpopmail");
	if ((k = vsrc_has_table(&v->src, v->utable)) < 0)
		return EX_UNAVAILABLE;
	if (!k && v->kind == VPOP_VPOPMAIL && dom) {
		vpop_map_table(dom, v->utable, sizeof(v->utable));
		v->many = 0;
		k = vsrc_has_table(&v->src, v->utable);
	}
	if (k <= 0)
		return k < 0 ? EX_UNAVAILABLE : admin_fail(EX_NOINPUT, "the "
		    "source has no table %s%s", v->utable, v->kind ==
		    VPOP_VPOPMAIL && !dom ? " (one table per domain: give "
		    "--domain DOMAIN)" : "");
	if ((v->indibak = v->kind == VPOP_INDIMAIL ? vsrc_has_table(&v->src,
	    "indibak") : 0) < 0 || (v->valias = vsrc_has_table(&v->src,
	    "valias")) < 0 || (v->hostcntrl = vsrc_has_table(&v->src,
	    "hostcntrl")) < 0 || (v->host_table = vsrc_has_table(&v->src,
	    "host_table")) < 0)
		return EX_UNAVAILABLE;
	return 0;
}

/* The source's domains, in order; NULL-terminated, in *out. */
static int
domain_list(struct vimp *v, char ***out)
{
	struct vsrc_rows *r = xmalloc(sizeof(*r));
	char sql[512], **list = xcalloc(1, sizeof(*list));
	size_t n = 0;
	int rc, k;

	snprintf(sql, sizeof(sql), "SELECT pw_domain FROM `%s`%s%s ORDER BY 1",
	    v->utable, v->indibak ? " UNION SELECT pw_domain FROM indibak" :
	    "", v->valias ? " UNION SELECT domain FROM valias" : "");
	rc = vsrc_query(&v->src, r, sql, NULL);
	while (rc == 0 && (k = vsrc_next(r)) != 0) {
		if (k < 0) {
			rc = EX_UNAVAILABLE;
			break;
		}
		list = xrealloc(list, (n + 2) * sizeof(*list));
		list[n++] = xstrdup(r->bad ? "" : vsrc_col(r, 0));
		list[n] = NULL;
	}
	vsrc_end(r);
	free(r);
	*out = list;
	return rc;
}

static int
import_all(struct vimp *v)
{
	static const char *one[2];
	char **list = NULL;
	int rc = 0;

	if (v->host_table && (rc = admin_begin(v->a)) == 0)
		rc = finish(v, each_row(v, "SELECT host, ipaddr FROM "
		    "host_table ORDER BY host", NULL, NULL, host_row));
	one[0] = v->a->o.domain;
	if (rc == 0 && v->many)
		rc = domain_list(v, &list);
	for (char **d = v->many ? list : (char **)one; rc == 0 && d && *d; d++)
		rc = import_domain(v, *d);
	for (char **d = list; d && *d; d++)
		free(*d);
	free(list);
	return rc;
}

int
admin_import(struct admin *a, const char *verb)
{
	struct vimp v;
	int rc;

	memset(&v, 0, sizeof(v));
	v.a = a;
	if ((strcmp(verb, "vpopmail") != 0 && strcmp(verb, "indimail") != 0) ||
	    a->o.npos != 0)
		return admin_fail(EX_USAGE, "usage: indimail import vpopmail|"
		    "indimail [--mysql-host H] [--mysql-port P] [--mysql-socket "
		    "S] --mysql-user U [--mysql-password-file F] [--mysql-db DB] "
		    "[--domain D] [--dry-run]");
	v.kind = verb[0] == 'i' ? VPOP_INDIMAIL : VPOP_VPOPMAIL;
	if ((rc = vsrc_connect(&v.src, &a->o, verb)) == 0 &&
	    (rc = detect(&v)) == 0)
		rc = import_all(&v);
	vsrc_close(&v.src);
	if (v.domains || v.users || v.aliases || v.hosts || v.skipped || !rc)
		printf("%s%d domains, %d users, %d aliases, %d hosts imported; "
		    "%d rows skipped\n", a->o.dry_run ? "dry run, nothing "
		    "written: " : "", v.domains, v.users, v.aliases, v.hosts,
		    v.skipped);
	return rc ? rc : v.skipped ? EX_DATAERR : 0;
}

/*
 * admin_mechs: the SMTP AUTH challenge-response mechanisms a domain
 * enables (domains.auth_mechs, `--auth-mechs cram-md5,scram-sha-256`) and
 * the secrets they need beside the yescrypt hash (users.scram, users.cram;
 * lib/sasl.h, docs/directory.md). A user of a domain without a mechanism
 * has NULL there; the CRAM-MD5 secret is plaintext-equivalent for
 * CRAM-MD5, the SCRAM one is not.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/sasl.h"
#include "admin.h"

static const char *const mech_names[] = { "cram-md5", "scram-sha-256" };

/* One name of [p, p + n) in the list: its index, or -1. */
static int
mech_index(const char *p, size_t n)
{
	for (int i = 0; i < 2; i++)
		if (strlen(mech_names[i]) == n &&
		    strncasecmp(p, mech_names[i], n) == 0)
			return i;
	return -1;
}

int
admin_check_mechs(const char *list, char *out, size_t n)
{
	int seen[2] = { 0, 0 };
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");
		int i = mech_index(p, len);

		if (i < 0 && len > 0)
			return admin_fail(EX_DATAERR, "--auth-mechs: '%.*s' is "
			    "not cram-md5 or scram-sha-256", (int)len, p);
		if (i >= 0)
			seen[i] = 1;
		p += len + (p[len] == ',');
	}
	snprintf(out, n, "%s%s%s", seen[0] ? mech_names[0] : "",
	    seen[0] && seen[1] ? "," : "", seen[1] ? mech_names[1] : "");
	return 0;
}

/* 1 when the user's domain enables the mechanism, 0 not, -1 error. */
static int
enabled(struct admin *a, const char *domain, const char *mech)
{
	return admin_exists(a, "SELECT 1 FROM domains WHERE name = ?1 AND "
	    "auth_mechs LIKE ?2", "ss", domain, mech);
}

/* The secret of one mechanism (NULL when not enabled): 0 or code. */
static int
make_secret(struct admin *a, const char *domain, int i, const char *pw,
    struct buf *out)
{
	char like[32];
	int k;

	snprintf(like, sizeof(like), "%%%s%%", mech_names[i]);
	if ((k = enabled(a, domain, like)) < 0)
		return EX_IOERR;
	if (k == 0)
		return 0;
	if ((i == 0 ? sasl_cram_make(pw, strlen(pw), out) :
	    sasl_scram_new(pw, strlen(pw), out)) < 0)
		return admin_fail(EX_SOFTWARE, "cannot make the %s secret",
		    mech_names[i]);
	return 0;
}

int
admin_store_mech_secrets(struct admin *a, const char *local,
    const char *domain, const char *pw)
{
	struct buf cram = BUF_INIT, scram = BUF_INIT;
	int rc;

	if ((rc = make_secret(a, domain, 0, pw, &cram)) == 0 &&
	    (rc = make_secret(a, domain, 1, pw, &scram)) == 0)
		rc = admin_run(a, admin_stmt(a, "UPDATE users SET cram = ?3, "
		    "scram = ?4 WHERE local = ?1 AND domain = ?2", "ssss",
		    local, domain, cram.len ? buf_cstr(&cram) : NULL,
		    scram.len ? buf_cstr(&scram) : NULL));
	buf_wipe(&cram);
	buf_wipe(&scram);
	return rc;
}

/*
 * admin_check: what the CLI accepts. Domains are LDH names (an IDN goes
 * in its xn-- form), users' local parts follow the mailbox name rule
 * (directory_mailbox_name: they become folders), aliases and targets are
 * addresses of printable ASCII without spaces or quotes. Passwords are
 * admin_password.c's.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../directory/directory.h"
#include "../mail/address.h"
#include "admin.h"

int
admin_check_domain(char *d)
{
	if (!address_valid_domain(d, strlen(d)))
		return admin_fail(EX_DATAERR, "'%s' is not a domain name "
		    "(letters, digits and hyphens; an IDN in its xn-- form)", d);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* Splits user@domain in place (the caller keeps address). */
int
admin_check_user(char *address, char **local, char **domain)
{
	char *at = strrchr(address, '@');
	int rc;

	if (at == NULL || at == address || at - address > 64)
		return admin_fail(EX_DATAERR, "'%s' is not a user@domain "
		    "address", address);
	if (!directory_mailbox_name(address))
		return admin_fail(EX_DATAERR, "'%s': a user name has %s",
		    address, DIRECTORY_NAME_RULE);
	dirdb_fold(address);	/* names are stored lowercase */
	*at = '\0';
	if ((rc = admin_check_domain(at + 1)) != 0)
		return rc;
	*local = address;
	*domain = at + 1;
	return 0;
}

/* The local part: printable ASCII, no space, '"', '\\', '@', '<', '>'. */
static int
local_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 127 || strchr("\"\\@<>,;", s[i]))
			return 0;
	return 1;
}

int
admin_check_target(const char *a)
{
	const char *at = strrchr(a, '@');

	if (at && local_ok(a, (size_t)(at - a)) &&
	    address_valid_domain(at + 1, strlen(at + 1)))
		return 0;
	return admin_fail(EX_DATAERR, "'%s' is not an address (user@domain, "
	    "printable ASCII without spaces or quotes)", a);
}

/* An alias: "@domain" (catch-all) or an address; lowercased. */
int
admin_check_alias(char *a)
{
	char *at = strrchr(a, '@');

	if (at == a)
		return admin_check_domain(a + 1);
	if (admin_check_target(a) != 0)
		return EX_DATAERR;
	dirdb_fold(a);
	return 0;
}

/* Free text (host names, addresses of hosts): no control characters. */
int
admin_check_text(const char *what, const char *s)
{
	if (*s == '\0' || strlen(s) > 255)
		return admin_fail(EX_DATAERR, "%s: empty or over 255 bytes",
		    what);
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 127)
			return admin_fail(EX_DATAERR, "%s: control characters "
			    "are not allowed", what);
	return 0;
}

/* Bytes, or with a K, M or G suffix; "NOQUOTA" (vpopmail) or 0: none. */
int
admin_parse_quota(const char *s, long long *out)
{
	char *end;
	double v;

	if (strcasecmp(s, "NOQUOTA") == 0) {
		*out = 0;
		return 0;
	}
	v = strtod(s, &end);
	if (end == s || v < 0 || v > 1e15)
		return admin_fail(EX_DATAERR, "'%s' is not a quota (bytes, "
		    "or with K, M or G)", s);
	if (*end && (end[1] || !strchr("kKmMgG", *end)))
		return admin_fail(EX_DATAERR, "'%s' is not a quota", s);
	v *= *end == 'k' || *end == 'K' ? 1024 : *end == 'm' || *end == 'M' ?
	    1048576 : *end ? 1073741824.0 : 1;
	*out = (long long)v;
	return 0;
}

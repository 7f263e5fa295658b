/*
 * address: what every part of the server needs to know about a mail
 * address or a domain name, whatever the protocol that carried it.
 * Pure functions, no state.
 */
#include <ctype.h>
#include <string.h>

#include "address.h"

#define DOMAIN_MAX	255

static int
is_letdig(unsigned char c)
{
	return c < 128 && isalnum(c);
}

int
address_valid_domain(const char *s, size_t len)
{
	size_t i = 0, lab;

	if (len == 0 || len > DOMAIN_MAX)
		return 0;
	while (i < len) {
		lab = 0;
		if (!is_letdig((unsigned char)s[i]))
			return 0;
		while (i < len && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];
			if (!is_letdig(c) && c != '-')
				return 0;
			i++, lab++;
		}
		if (lab > 63 || s[i - 1] == '-')
			return 0;
		if (i < len) {		/* at '.', need another label */
			i++;
			if (i == len)
				return 0;
		}
	}
	return 1;
}

const char *
address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : NULL;
}

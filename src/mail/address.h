/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * address: mail addresses and domain names (RFC 5321 4.1.2 syntax of a
 * domain; the split of local@domain). Shared by the SMTP server, the
 * directory, delivery and the configuration checks.
 */
#ifndef INDIMAIL_ADDRESS_H
#define INDIMAIL_ADDRESS_H

#include <stddef.h>

/* "local@domain" → pointer to the domain part (or NULL). */
const char *address_domain(const char *addr);

/* A bare domain (letters, digits, hyphens, dots; 255 max)? */
int	address_valid_domain(const char *s, size_t len);

#endif

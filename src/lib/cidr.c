/*
 * cidr: IPv4 and IPv6 network prefixes ("192.0.2.0/24", "2001:db8::/32")
 * and matching a socket address against a list of them. An IPv4-mapped
 * IPv6 peer matches the IPv4 prefixes.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

int
cidr_parse(const char *s, struct cidr *out)
{
	char tmp[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, tmp, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else
		return -1;
	out->bits = max;
	if (slash) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || b < 0 || b > max)
			return -1;
		out->bits = (int)b;
	}
	return 0;
}

static int
prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

int
cidr_match_sockaddr(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	const unsigned char *a;
	unsigned char v4[4];
	int fam = sa->sa_family;

	if (fam == AF_INET)
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	else if (fam == AF_INET6) {
		a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			memcpy(v4, a + 12, 4);
			a = v4;
			fam = AF_INET;
		}
	} else
		return 0;
	for (size_t i = 0; i < n; i++)
		if (list[i].family == fam && prefix_eq(list[i].addr, a, list[i].bits))
			return 1;
	return 0;
}

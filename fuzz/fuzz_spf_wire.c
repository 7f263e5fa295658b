/*
 * fuzz_spf_wire: a DNS reply as the SPF checker's socket delivers it, read
 * by spf_wire_answer (src/net/spf_wire.c) against our query for
 * example.com. The first byte picks the type asked (A, AAAA, MX, PTR,
 * TXT), the rest is the reply; the query's id is the reply's, so the
 * question check is what the fuzzer must get past. Invariants: A gives 4
 * bytes, AAAA 16, every record is NUL-terminated at its length, OK means
 * at least one record, the same bytes give the same answer; and
 * spf_wire_query of the input as a name stays within its buffer.
 */
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/spf_wire.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static const int qtypes[] = { ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_ptr, ns_t_txt };

struct seen {
	int	 qtype;
	size_t	 n;
};

static int
add(void *arg, const void *data, size_t len)
{
	struct seen *s = arg;

	if (s->qtype == ns_t_a)
		check(len == 4);
	else if (s->qtype == ns_t_aaaa)
		check(len == 16);
	check(((const char *)data)[len] == '\0');
	s->n++;
	return 0;
}

static void
fuzz_query(const uint8_t *data, size_t size)
{
	unsigned char q[SPF_WIRE_QUERY_MAX];
	char *name = malloc(size + 1);
	int n;

	memcpy(name, data, size);
	name[size] = '\0';
	n = spf_wire_query(name, ns_t_txt, 1, q);
	check(n < 0 || (n > 12 && n <= SPF_WIRE_QUERY_MAX));
	free(name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char q[SPF_WIRE_QUERY_MAX];
	struct seen a, b;
	enum spf_wire_status s1, s2;
	int qlen, qtype;
	uint16_t id;

	fuzz_query(data, size);
	if (size < 3)
		return 0;
	qtype = qtypes[data[0] % (sizeof(qtypes) / sizeof(qtypes[0]))];
	id = (uint16_t)(data[1] << 8 | data[2]);
	qlen = spf_wire_query("example.com", qtype, id, q);
	check(qlen > 0);
	a = (struct seen){ qtype, 0 };
	b = a;
	s1 = spf_wire_answer(q, (size_t)qlen, data + 1, size - 1, qtype, add, &a);
	s2 = spf_wire_answer(q, (size_t)qlen, data + 1, size - 1, qtype, add, &b);
	check(s1 == s2 && a.n == b.n);
	check(s1 != SPF_WIRE_OK || a.n > 0);
	return 0;
}

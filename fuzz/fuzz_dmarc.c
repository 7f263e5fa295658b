/*
 * fuzz_dmarc: what a peer controls in DMARC (src/mail/dmarc.c): the header
 * section whose From: fields GMime reads, and a _dmarc TXT record that
 * libopendmarc reads. The input is both: the same bytes are read as a
 * message and, as a C string, as the record evaluated for the From domain
 * found (or example.com) with a passing SPF and DKIM domain. Invariants:
 * a From domain is a lower-case domain name; only a record that passes
 * dmarc_is_record is evaluated, to pass, fail or permerror; the
 * disposition is never stricter than the policy, and none on a pass.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/mail/address.h"
#include "../src/mail/dmarc.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
check_from(const char *msg, size_t len, char *dom)
{
	enum dmarc_from f = dmarc_from_domain(msg, len, dom);

	if (f != DMARC_FROM_ONE) {
		strcpy(dom, "example.com");
		return;
	}
	check(address_valid_domain(dom, strlen(dom)));
	for (const char *p = dom; *p; p++)
		check(!(*p >= 'A' && *p <= 'Z'));
}

static void
check_record(const char *rec, size_t len, const char *dom)
{
	struct dmarc_input in = { .from_domain = dom, .record = rec,
	    .from_org = len & 1, .spf = { "mail.example.com", 1 },
	    .dkim = { { dom, len & 2 } }, .ndkim = 1, .draw = len % 100 };
	struct dmarc_outcome out;

	if (!dmarc_is_record(rec, len))
		return;
	dmarc_evaluate(&in, &out);
	check(out.result == DMARC_RESULT_PASS || out.result == DMARC_RESULT_FAIL ||
	    out.result == DMARC_RESULT_PERMERROR);
	check(out.disposition <= out.policy);
	check(out.result != DMARC_RESULT_PASS || out.disposition == DMARC_P_NONE);
	check(out.pct >= 0 && out.pct <= 100);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char dom[DMARC_DOMAIN_MAX];

	memcpy(s, data, size);
	s[size] = '\0';
	check_from(s, size, dom);
	check_record(s, strlen(s), dom);
	free(s);
	return 0;
}

/*
 * fuzz_dkim_verify: a message as a client sends it, through our verifier
 * (src/net/dkim.c) and libopendkim's reading of its DKIM-Signature fields
 * (tags, h= lists, base64, canonicalization), with fixed keys: this file
 * stands in for the DNS layer (spf_dns_query_raw, a link-time seam, no
 * network) and answers every key query with a wire reply holding one TXT
 * record: RSA (python3-dkim's test.txt), for a selector starting with
 * "ed" python3-dkim's ed25519test key, for "brisbane" RFC 8463 Appendix
 * A's. Invariants: at most DKIM_MSG_SIGS_MAX results, each a known result
 * with an algorithm and a reason unless it passed; a header.b of at most
 * 8 characters; a message with a NUL byte is refused unread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/net/dkim.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static const char RSA_KEY[] = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GN"
    "ADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Q"
    "vx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvH"
    "O9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char ED_KEY[] = "v=DKIM1; k=ed25519; "	/* ed25519test.key */
    "p=yi50DjK5O9pqbFpNHklsv9lqaS0ArSYu02qp1S0DW1Y=";
static const char RFC8463_KEY[] = "v=DKIM1; k=ed25519; "
    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

#define HDR_LEN		12
#define TXT_CHUNK	255

uint64_t
spf_dns_now_ms(void)
{
	return 0;	/* never past the deadline */
}

/* name as DNS labels at p; its length, or 0 if it does not fit. */
static size_t
put_name(unsigned char *p, size_t room, const char *name)
{
	size_t n = 0;

	while (*name) {
		size_t l = strcspn(name, ".");
		if (l == 0 || l > 63 || n + l + 2 > room)
			return 0;
		p[n++] = (unsigned char)l;
		memcpy(p + n, name, l);
		n += l;
		name += l + (name[l] == '.');
	}
	p[n++] = 0;
	return n;
}

/* The reply to a TXT query for name: one record, key split in strings. */
int
spf_dns_query_raw(struct spf_dns_ctx *c, const char *name, int qtype,
    unsigned char *ans, size_t anslen)
{
	const char *key = strncmp(name, "ed", 2) == 0 ? ED_KEY :
	    strncmp(name, "brisbane.", 9) == 0 ? RFC8463_KEY : RSA_KEY;
	size_t klen = strlen(key), rdlen = klen + (klen + TXT_CHUNK - 1) / TXT_CHUNK;
	size_t n = HDR_LEN, qn;
	static const unsigned char hdr[HDR_LEN] = { 0, 1, 0x81, 0x80, 0, 1, 0, 1 };

	(void)c;
	if (anslen < HDR_LEN + 2 * 260 + 20 + rdlen)
		return -1;
	memcpy(ans, hdr, HDR_LEN);
	if ((qn = put_name(ans + n, 256, name)) == 0)
		return -1;
	n += qn;
	ans[n++] = 0; ans[n++] = (unsigned char)qtype; ans[n++] = 0; ans[n++] = 1;
	memcpy(ans + n, ans + HDR_LEN, qn);	/* the answer's name */
	n += qn;
	ans[n++] = 0; ans[n++] = (unsigned char)qtype; ans[n++] = 0; ans[n++] = 1;
	memset(ans + n, 0, 3);
	ans[n + 3] = 60;			/* TTL */
	n += 4;
	ans[n++] = (unsigned char)(rdlen >> 8);
	ans[n++] = (unsigned char)(rdlen & 0xff);
	for (size_t i = 0; i < klen; i += TXT_CHUNK) {
		size_t l = klen - i < TXT_CHUNK ? klen - i : TXT_CHUNK;
		ans[n++] = (unsigned char)l;
		memcpy(ans + n, key + i, l);
		n += l;
	}
	return (int)n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_msg_limits lim = { .dns_timeout_ms = 1000,
	    .timeout_ms = 1000 };
	struct dkim_msg_answer a;

	if (dkim_msg_verify(&lim, (const char *)data, size, &a) < 0)
		check(a.n == 0 && a.error != NULL);
	check(a.n <= DKIM_MSG_SIGS_MAX);
	for (size_t i = 0; i < a.n; i++) {
		const struct dkim_msg_sig *s = &a.sig[i];
		check(s->result <= DKIM_MSG_NONE);
		check(s->algorithm != NULL);
		check(s->result == DKIM_MSG_PASS || s->error != NULL);
		check(s->b == NULL || strlen(s->b) <= 8);
	}
	dkim_msg_answer_free(&a);
	return 0;
}

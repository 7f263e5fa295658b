/*
 * clamd_wire: INSTREAM's chunk framing and reply parser (see clamd_wire.h).
 * The reply comes from a peer: every length is checked, nothing is copied
 * into a fixed array, and the text handed back is printable and bounded.
 */
#include <string.h>

#include "clamd_wire.h"

#define SUFFIX_FOUND	" FOUND"
#define SUFFIX_OK	": OK"

void
clamd_chunk_header(uint32_t len, unsigned char out[4])
{
	out[0] = (unsigned char)(len >> 24);
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
}

long
clamd_reply_end(const char *p, size_t n)
{
	const char *nul = memchr(p, '\0', n);

	return nul ? (long)(nul - p) : -1;
}

static int
ends_with(const char *p, size_t n, const char *s)
{
	size_t sn = strlen(s);

	return n >= sn && memcmp(p + n - sn, s, sn) == 0;
}

/* text = p[0..n) with bytes outside printable ASCII as '?', cut short. */
static void
set_text(struct buf *text, const char *p, size_t n)
{
	buf_clear(text);
	if (n > CLAMD_TEXT_MAX)
		n = CLAMD_TEXT_MAX;
	for (size_t i = 0; i < n; i++)
		buf_appendc(text, p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
}

/* "<stream>: <Name> FOUND": the name, after the first ": ". */
static enum clamd_verdict
parse_found(const char *p, size_t n, struct buf *text)
{
	const char *colon = memmem(p, n, ": ", 2);
	size_t start;

	if (colon == NULL || (size_t)(colon - p) + 2 >= n - strlen(SUFFIX_FOUND)) {
		set_text(text, p, n);	/* no name: the reply is the error */
		return CLAMD_ERROR;
	}
	n -= strlen(SUFFIX_FOUND);
	start = (size_t)(colon - p) + 2;
	set_text(text, p + start, n - start);
	for (size_t i = 0; i < text->len; i++)
		if (text->data[i] == ' ')
			text->data[i] = '_';	/* one token, as clamd's names are */
	return CLAMD_VIRUS;
}

enum clamd_verdict
clamd_reply_parse(const char *p, size_t n, struct buf *text)
{
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (ends_with(p, n, SUFFIX_FOUND))
		return parse_found(p, n, text);
	if (ends_with(p, n, SUFFIX_OK) && n > strlen(SUFFIX_OK)) {
		buf_clear(text);
		return CLAMD_CLEAN;
	}
	if (n == 0)
		set_text(text, "empty reply", strlen("empty reply"));
	else
		set_text(text, p, n);
	return CLAMD_ERROR;
}

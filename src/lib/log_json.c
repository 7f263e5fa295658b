/*
 * log_json: the JSON form of a log line (log = { format = "json" }). log.c
 * always builds the key=value line; this reads it back with logparse and
 * writes one RFC 8259 object with the same keys in the same order:
 *   {"ts":"...Z","level":"info","role":"smtp","pid":4700,"event":"queued",...}
 * Every field value is a string (a peer's "123" must not change a key's
 * type). Strings are escaped so that no byte can break the line: controls
 * as \n, \t or \u00XX, and a byte that is not part of valid UTF-8 as the
 * code point of the same number (valid UTF-8 passes as is, so \u0080 ..
 * \u00ff only ever stand for such bytes). A line logparse refuses (a
 * log_event() text that is not clean key=value) keeps its event and puts
 * the rest, whole, in "raw".
 */
#include <string.h>

#include "log.h"
#include "logparse.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned long cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;	/* overlong, too large, or a surrogate */
	return len;
}

static void
json_byte(struct buf *out, unsigned char c)
{
	static const char from[] = "\"\\\n\r\t\b\f", to[] = "\"\\nrtbf";
	const char *e = c ? memchr(from, c, sizeof(from) - 1) : NULL;

	if (e != NULL)
		buf_printf(out, "\\%c", to[e - from]);
	else if (c < 0x20 || c >= 0x7f)
		buf_printf(out, "\\u%04x", c);
	else
		buf_appendc(out, (char)c);
}

void
log_json_string(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len;

	buf_appendc(out, '"');
	while (i < n) {
		len = utf8_seq(p + i, n - i);
		if (len > 1)
			buf_append(out, p + i, len);
		else
			json_byte(out, p[i]);
		i += len ? len : 1;
	}
	buf_appendc(out, '"');
}

static void
json_key(struct buf *out, const char *key)
{
	buf_appendc(out, ',');
	log_json_string(out, key, strlen(key));
	buf_appendc(out, ':');
}

/* "TS ROLE[PID] LEVEL": written by log.c, so its shape is known. */
static void
json_head(struct buf *out, const char *kv, size_t head, const char *level)
{
	const char *sp = memchr(kv, ' ', head);
	const char *lb = sp ? memchr(sp, '[', head - (size_t)(sp - kv)) : NULL;

	buf_appends(out, "{\"ts\":");
	log_json_string(out, kv, sp ? (size_t)(sp - kv) : head);
	json_key(out, "level");
	log_json_string(out, level, strlen(level));
	if (sp && lb) {
		json_key(out, "role");
		log_json_string(out, sp + 1, (size_t)(lb - sp - 1));
		json_key(out, "pid");
		buf_append(out, lb + 1, head - (size_t)(lb - kv) - 2);
	}
}

/* A line logparse refused: its event, then everything after it as is. */
static void
json_raw(struct buf *out, const char *kv, size_t n, size_t head)
{
	const char *lv = kv + head + 1, *ev = memchr(lv, ' ', n - head - 1);
	const char *end = kv + n, *sp;
	char level[8] = "";

	if (ev && (size_t)(ev - lv) < sizeof(level))
		memcpy(level, lv, (size_t)(ev - lv));
	json_head(out, kv, head, level);
	if (ev == NULL || end - ev < 7 || memcmp(ev, " event=", 7) != 0)
		return;
	ev += 7;
	sp = memchr(ev, ' ', (size_t)(end - ev));
	json_key(out, "event");
	log_json_string(out, ev, sp ? (size_t)(sp - ev) : (size_t)(end - ev));
	if (sp) {
		json_key(out, "raw");
		log_json_string(out, sp + 1, (size_t)(end - sp - 1));
	}
}

void
log_json_line(struct buf *out, const char *kv, size_t n, size_t head)
{
	struct logrec r = LOGREC_INIT;

	if (head >= n)
		return;
	if (logrec_parse(&r, kv, n) < 0)
		json_raw(out, kv, n, head);
	else {
		json_head(out, kv, head, r.level);
		for (size_t i = 0; i < r.nf; i++) {
			json_key(out, r.f[i].key);
			log_json_string(out, r.f[i].val, r.f[i].vlen);
		}
	}
	buf_appendc(out, '}');
	logrec_free(&r);
}

enum log_format
log_parse_format(const char *s, int *ok)
{
	*ok = strcmp(s, "kv") == 0 || strcmp(s, "json") == 0;
	return strcmp(s, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_KV;
}

void
log_set_format(enum log_format f)
{
	log_json_fn json;
	log_syslog_fn sys;

	log_writers(&json, &sys);
	log_set_writers(f == LOG_FORMAT_JSON ? log_json_line : NULL, sys);
}

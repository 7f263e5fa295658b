/*
 * fuzz_command: libFuzzer target for the SMTP command-line parser. The
 * input is one command line (CRLF already removed, as the session framer
 * hands it over); when it parses as MAIL, RCPT, HELO or EHLO the argument
 * also goes through the matching argument parser. Besides the sanitizers,
 * it checks that verb and argument point inside the line, that the
 * argument has no trailing blank, and that every rejection is a 5xx reply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/buf.h"
#include "../src/smtp/smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
check_reply(const char *reply)
{
	check(reply != NULL);
	check(reply[0] == '5' && strlen(reply) > 10 && reply[3] == ' ');
	check(strpbrk(reply, "\r\n") == NULL);
}

static void
check_path(const struct buf *path)
{
	check(path->len <= 256);
	check(path->len == 0 || path->data[path->len] == '\0');
	check(path->len == 0 || memchr(path->data, '\0', path->len) == NULL);
	check(path->len == 0 || strpbrk(path->data, "\r\n") == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	const char *reply = NULL;
	struct smtp_command c;
	struct smtp_mail_arg m;
	struct smtp_rcpt_arg r;

	if (smtp_parse_command(line, size, &c, &reply) < 0) {
		check_reply(reply);
		return 0;
	}
	/* A parsed line has a known verb, both parts inside the line. */
	check(c.cmd != SMTP_CMD_UNKNOWN);
	check(c.verb == line && c.verblen > 0 && c.verblen <= size);
	check(c.arg >= line + c.verblen && c.arg + c.arglen <= line + size);
	check(memchr(c.verb, ' ', c.verblen) == NULL);
	check(c.arglen == 0 || (c.arg[0] != ' ' && c.arg[c.arglen - 1] != ' '));
	check(memchr(line, '\0', size) == NULL);

	reply = NULL;
	switch (c.cmd) {
	case SMTP_CMD_MAIL:
		memset(&m, 0, sizeof(m));
		if (smtp_parse_mail(c.arg, c.arglen, &m, &reply) == 0)
			check_path(&m.path);
		else
			check_reply(reply);
		buf_free(&m.path);
		break;
	case SMTP_CMD_RCPT:
		memset(&r, 0, sizeof(r));
		if (smtp_parse_rcpt(c.arg, c.arglen, &r, &reply) == 0) {
			check_path(&r.path);
			check(r.path.len > 0);
		} else
			check_reply(reply);
		buf_free(&r.path);
		break;
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		if (smtp_parse_helo(c.arg, c.arglen, &reply) < 0)
			check_reply(reply);
		break;
	default:
		break;
	}
	return 0;
}

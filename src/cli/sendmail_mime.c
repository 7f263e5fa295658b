/*
 * sendmail_mime: the GMime side of bin/sendmail. The address lists of To,
 * Cc and Bcc (-t) are parsed by GMime in strict mode and every address is
 * then checked against RFC 5321. The message reaches the socket through
 * GMime filters (LF to CRLF, dot-stuffing). When a body line is over 998
 * bytes (or holds a NUL) the spool is parsed and only the leaf parts that
 * need it are re-encoded: quoted-printable for text, base64 for the rest;
 * headers, Content-Type and the MIME structure stay as they were.
 */
#include <errno.h>
#include <string.h>

#include "sendmail.h"

static void
on_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
    gpointer bad)
{
	(void)offset;
	(void)item;
	if (code == GMIME_WARN_INVALID_ADDRESS_LIST)
		*(int *)bad = 1;
}

/* Every mailbox of the list (groups flattened), each checked. */
static int
add_addresses(InternetAddressList *l, const char *field, struct addr_list *out)
{
	int rc = 0;

	for (int i = 0; rc == 0 && i < internet_address_list_length(l); i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		const char *a;
		struct buf q = BUF_INIT;

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			rc = add_addresses(internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)), field, out);
			continue;
		}
		a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		if (addr_valid(a, 0)) {
			addr_list_add(out, a);
			continue;
		}
		addr_quote(&q, a);
		rc = sendmail_error(EX_DATAERR, "invalid recipient address %s in %s: "
		    "(RFC 5321: local@domain, no spaces or control characters)",
		    buf_cstr(&q), field);
		buf_free(&q);
	}
	return rc;
}

/* The <angle-addr> between lt and gt must be one of got[from...]. */
static int
angle_parsed(const char *field, const char *lt, const char *gt,
    const struct addr_list *got, size_t from)
{
	struct buf a = BUF_INIT, q = BUF_INIT;
	int rc = EX_DATAERR;

	while (lt < gt && (*lt == ' ' || *lt == '\t'))
		lt++;
	while (gt > lt && (gt[-1] == ' ' || gt[-1] == '\t'))
		gt--;
	buf_append(&a, lt, (size_t)(gt - lt));
	for (size_t i = from; i < got->n && rc; i++)
		if (strcmp(got->v[i], buf_cstr(&a)) == 0)
			rc = 0;
	if (rc) {
		addr_quote(&q, buf_cstr(&a));
		sendmail_error(rc, "invalid recipient address %s in %s: (RFC 5321: "
		    "local@domain, no spaces or control characters)",
		    buf_cstr(&q), field);
	}
	buf_free(&a);
	buf_free(&q);
	return rc;
}

/*
 * GMime 3.2 drops an <angle-addr> it cannot read without a warning, so
 * each one in the value (outside quotes and comments) must be among the
 * addresses it returned.
 */
static int
check_angles(const char *field, const char *v, const struct addr_list *got,
    size_t from)
{
	const char *lt = NULL;
	int quoted = 0, depth = 0, rc = 0;

	for (const char *p = v; *p && rc == 0; p++) {
		if (*p == '\\' && (quoted || depth) && p[1])
			p++;
		else if (*p == '"' && !depth)
			quoted = !quoted;
		else if (!quoted && *p == '(')
			depth++;
		else if (!quoted && *p == ')' && depth)
			depth--;
		else if (!quoted && !depth && *p == '<')
			lt = p + 1;
		else if (!quoted && !depth && *p == '>' && lt) {
			rc = angle_parsed(field, lt, p, got, from);
			lt = NULL;
		}
	}
	return rc;
}

int
mime_recipients(const char *field, const char *value, struct addr_list *out)
{
	GMimeParserOptions *po = g_mime_parser_options_new();
	InternetAddressList *l;
	struct buf q = BUF_INIT;
	size_t first = out->n;
	int bad = 0, rc;

	g_mime_parser_options_set_address_compliance_mode(po,
	    GMIME_RFC_COMPLIANCE_STRICT);
	g_mime_parser_options_set_allow_addresses_without_domain(po, TRUE);
	g_mime_parser_options_set_warning_callback(po, on_warning, &bad);
	l = internet_address_list_parse(po, value);
	value += strspn(value, " \t");
	if (bad || (l == NULL && *value != '\0')) {
		addr_quote(&q, value);
		rc = sendmail_error(EX_DATAERR, "cannot read the addresses in %s: %s",
		    field, buf_cstr(&q));
		buf_free(&q);
	} else if ((rc = l ? add_addresses(l, field, out) : 0) == 0)
		rc = check_angles(field, value, out, first);
	if (l)
		g_object_unref(l);
	g_mime_parser_options_free(po);
	return rc;
}

/* From, Date and Message-ID for a message that lacks them. */
void
mime_headers(struct buf *b, const struct message *m, const char *from,
    const char *fullname, const char *host)
{
	char *s;

	if (!m->has_from) {
		InternetAddress *ia = internet_address_mailbox_new(fullname, from);
		s = internet_address_to_string(ia, NULL, TRUE);
		buf_printf(b, "From: %s\n", s);
		g_free(s);
		g_object_unref(ia);
	}
	if (!m->has_date) {
		GDateTime *now = g_date_time_new_now_local();
		s = g_mime_utils_header_format_date(now);
		buf_printf(b, "Date: %s\n", s);
		g_free(s);
		g_date_time_unref(now);
	}
	if (!m->has_msgid) {
		s = g_mime_utils_generate_message_id(host);
		buf_printf(b, "Message-ID: <%s>\n", s);
		g_free(s);
	}
}

/* Whether the part's content as it stands has a line over WIRE_LINE or a NUL. */
static int
needs_reencoding(GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *s = w ? g_mime_data_wrapper_get_stream(w) : NULL;
	char chunk[4096];
	size_t len = 0;
	ssize_t n;
	int found = 0;

	if (s == NULL)
		return 0;
	g_mime_stream_reset(s);
	while (!found && (n = g_mime_stream_read(s, chunk, sizeof(chunk))) > 0)
		for (ssize_t i = 0; i < n && !found; i++) {
			len = chunk[i] == '\n' ? 0 : len + 1;
			found = len > WIRE_LINE || chunk[i] == '\0';
		}
	g_mime_stream_reset(s);
	return found;
}

static void
reencode_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	GMimeContentType *ct;

	(void)parent;
	if (GMIME_IS_MESSAGE_PART(part)) {	/* message/rfc822: its own parts */
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(part));
		if (inner)
			g_mime_message_foreach(inner, reencode_part, data);
		return;
	}
	if (!GMIME_IS_PART(part) || !needs_reencoding(GMIME_PART(part)))
		return;
	ct = g_mime_object_get_content_type(part);
	g_mime_part_set_content_encoding(GMIME_PART(part),
	    ct && g_mime_content_type_is_type(ct, "text", "*") ?
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE : GMIME_CONTENT_ENCODING_BASE64);
}

/* The spool parsed, its long-line parts re-encoded, written to wire. */
static int
write_reencoded(struct message *m, GMimeStream *wire)
{
	GMimeParser *p = g_mime_parser_new_with_stream(m->spool);
	GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
	int rc = 0;

	if (msg == NULL)
		rc = sendmail_error(EX_DATAERR, "cannot parse the message (MIME) to "
		    "re-encode its lines over %d bytes", WIRE_LINE);
	else {
		g_mime_message_foreach(msg, reencode_part, NULL);
		if (!m->has_mime)
			g_mime_object_set_header(GMIME_OBJECT(msg), "MIME-Version",
			    "1.0", NULL);
		if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL, wire) < 0)
			rc = EX_TEMPFAIL;	/* said by mime_send */
		g_object_unref(msg);
	}
	g_object_unref(p);
	return rc;
}

/*
 * The message after DATA's 354: extra (generated headers), then the spool,
 * as CRLF lines, dot-stuffed, and the final ".". fd stays open.
 */
int
mime_send(struct message *m, const struct buf *extra, int fd)
{
	GMimeStream *sock = g_mime_stream_pipe_new(fd);
	GMimeStream *wire = g_mime_stream_filter_new(sock);
	GMimeFilter *f;
	int rc = 0;

	g_mime_stream_pipe_set_owner(GMIME_STREAM_PIPE(sock), FALSE);
	g_mime_stream_reset(m->spool);	/* each transaction sends it whole */
	f = g_mime_filter_unix2dos_new(TRUE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(wire), f);
	g_object_unref(f);
	f = g_mime_filter_smtp_data_new();
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(wire), f);
	g_object_unref(f);
	if (extra->len && g_mime_stream_write(wire, extra->data, extra->len) < 0)
		rc = EX_TEMPFAIL;
	else if (m->reencode)
		rc = write_reencoded(m, wire);
	else if (g_mime_stream_write_to_stream(m->spool, wire) < 0)
		rc = EX_TEMPFAIL;
	if (rc == 0 && (g_mime_stream_flush(wire) < 0 ||
	    g_mime_stream_write_string(sock, ".\r\n") != 3))
		rc = EX_TEMPFAIL;
	if (rc == EX_TEMPFAIL)
		sendmail_error(rc, "lost the connection while sending the message: "
		    "%s", strerror(errno));
	g_object_unref(wire);
	g_object_unref(sock);
	return rc;
}

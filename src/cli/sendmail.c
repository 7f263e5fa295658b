/*
 * sendmail: the sendmail-compatible injector (bin/sendmail). It submits
 * through indimaild's own SMTP listener on this host, so injected mail goes
 * through exactly the policies of any other client. Supports
 * `sendmail [-t] [-i|-oi] [-f sender] [-F name] [rcpt ...]` and `-bs`
 * (SMTP on standard input/output). Exit codes follow sysexits.h:
 * 0 sent, 64 usage, 65 refused (5xx), 69/75 unavailable/temporary (4xx).
 */
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../core/xalloc.h"
#include "../lua/lua_runtime.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif

#define EX_USAGE	64
#define EX_DATAERR	65
#define EX_UNAVAILABLE	69
#define EX_TEMPFAIL	75

struct opts {
	int		 from_headers;	/* -t */
	int		 dot_is_data;	/* -i / -oi */
	int		 smtp_stdio;	/* -bs */
	const char	*sender;	/* -f */
	const char	*fullname;	/* -F */
	char	       **rcpts;
	size_t		 nrcpts;
};

static FILE *srv_in, *srv_out;

static void
add_rcpt(struct opts *o, const char *a, size_t n)
{
	while (n && (*a == ' ' || *a == '\t'))
		a++, n--;
	while (n && (a[n - 1] == ' ' || a[n - 1] == '\t'))
		n--;
	if (n == 0)
		return;
	o->rcpts = xrealloc(o->rcpts, (o->nrcpts + 1) * sizeof(char *));
	o->rcpts[o->nrcpts++] = xstrndup(a, n);
}

/* One address list (To:, Cc:, Bcc:): "Name <a@b>, c@d (comment)". */
static void
parse_address_list(struct opts *o, const char *v, size_t n)
{
	size_t i = 0, start = 0;
	int quoted = 0, angle = 0, paren = 0;
	const char *lt = NULL, *gt = NULL;

	for (i = 0; i <= n; i++) {
		char c = i < n ? v[i] : ',';
		if (c == '"' && !paren)
			quoted = !quoted;
		else if (!quoted && c == '(')
			paren++;
		else if (!quoted && c == ')' && paren)
			paren--;
		else if (!quoted && !paren && c == '<') {
			angle = 1;
			lt = v + i;
		} else if (!quoted && !paren && c == '>') {
			angle = 0;
			gt = v + i;
		} else if (c == ',' && !quoted && !angle && !paren) {
			if (lt && gt && gt > lt)
				add_rcpt(o, lt + 1, (size_t)(gt - lt - 1));
			else {
				/* bare address: drop comments */
				struct buf b = BUF_INIT;
				int p = 0;
				for (size_t k = start; k < i; k++) {
					if (v[k] == '(')
						p++;
					else if (v[k] == ')' && p)
						p--;
					else if (!p)
						buf_appendc(&b, v[k]);
				}
				add_rcpt(o, buf_cstr(&b), b.len);
				buf_free(&b);
			}
			start = i + 1;
			lt = gt = NULL;
		}
	}
}

/* Handles one complete (unfolded) header field; returns 0 to drop it. */
static int
header_field(struct opts *o, const char *f, size_t n, int *seen)
{
	static const char *addr_fields[] = { "To:", "Cc:", "Bcc:" };

	if (strncasecmp(f, "From:", 5) == 0)
		seen[0] = 1;
	else if (strncasecmp(f, "Date:", 5) == 0)
		seen[1] = 1;
	else if (strncasecmp(f, "Message-ID:", 11) == 0)
		seen[2] = 1;
	if (!o->from_headers)
		return 1;
	for (int i = 0; i < 3; i++) {
		size_t k = strlen(addr_fields[i]);
		if (n >= k && strncasecmp(f, addr_fields[i], k) == 0) {
			struct buf flat = BUF_INIT;
			for (size_t j = k; j < n; j++)	/* unfold */
				buf_appendc(&flat, f[j] == '\n' ? ' ' : f[j]);
			parse_address_list(o, flat.data, flat.len);
			buf_free(&flat);
			return i != 2;		/* Bcc: is never sent */
		}
	}
	return 1;
}

/*
 * Reads the message from stdin (LF or CRLF lines). With -t takes the
 * recipients from To/Cc/Bcc and drops Bcc. Adds From, Date and Message-ID
 * when missing. A line "." ends the input unless -i. LF line ends out.
 */
static void
read_message(struct opts *o, const char *host, const char *from,
    struct buf *msg)
{
	struct buf hdr = BUF_INIT, body = BUF_INIT, field = BUF_INIT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int in_header = 1, seen[3] = { 0, 0, 0 };

	while ((n = getline(&line, &cap, stdin)) > 0) {
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (!o->dot_is_data && len == 1 && line[0] == '.')
			break;
		if (in_header && len > 0 && (line[0] == ' ' || line[0] == '\t') &&
		    field.len) {
			buf_appendc(&field, '\n');
			buf_append(&field, line, len);
			continue;
		}
		if (in_header && field.len) {
			if (header_field(o, field.data, field.len, seen)) {
				buf_append(&hdr, field.data, field.len);
				buf_appendc(&hdr, '\n');
			}
			buf_clear(&field);
		}
		if (in_header && len > 0 && memchr(line, ':', len)) {
			buf_append(&field, line, len);
			continue;
		}
		if (in_header) {
			in_header = 0;
			if (len == 0)
				continue;	/* the blank line itself */
		}
		buf_append(&body, line, len);
		buf_appendc(&body, '\n');
	}
	if (field.len && header_field(o, field.data, field.len, seen)) {
		buf_append(&hdr, field.data, field.len);
		buf_appendc(&hdr, '\n');
	}
	free(line);
	if (!seen[0]) {
		if (o->fullname)
			buf_printf(msg, "From: %s <%s>\n", o->fullname, from);
		else
			buf_printf(msg, "From: <%s>\n", from);
	}
	if (!seen[1]) {
		char d[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S %z", &tm);
		buf_printf(msg, "Date: %s\n", d);
	}
	if (!seen[2])
		buf_printf(msg, "Message-ID: <%ld.%ld@%s>\n", (long)time(NULL),
		    (long)getpid(), host);
	buf_append(msg, hdr.data, hdr.len);
	buf_appendc(msg, '\n');
	buf_append(msg, body.data, body.len);
	buf_free(&hdr);
	buf_free(&body);
	buf_free(&field);
}

/* Connects to host:port; -1 on failure. */
static int
connect_to(const char *addr, const char *port)
{
	struct addrinfo hints, *ai;
	int fd;

	if (strcmp(addr, "0.0.0.0") == 0)
		addr = "127.0.0.1";
	else if (strcmp(addr, "::") == 0)
		addr = "::1";
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(addr, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/*
 * Connects to the running server: the listeners it wrote to
 * <queue.path>/listeners (real ports, even for port 0), else the
 * configuration; implicit-TLS listeners are skipped.
 */
static int
connect_server(struct runtime *rt)
{
	struct buf path = BUF_INIT;
	char name[64], addr[64], port[16], tls[16];
	FILE *f;
	int fd = -1;

	buf_printf(&path, "%s/listeners", rt->cfg.queue_path);
	if ((f = fopen(buf_cstr(&path), "r")) != NULL) {
		while (fd < 0 && fscanf(f, "%63s %63s %15s %15s", name, addr, port,
		    tls) == 4)
			if (strcmp(tls, "implicit") != 0)
				fd = connect_to(addr, port);
		fclose(f);
	}
	buf_free(&path);
	for (size_t i = 0; fd < 0 && i < rt->cfg.nlisten; i++) {
		const struct listen_conf *l = &rt->cfg.listen[i];
		if (l->tls == TLS_IMPLICIT || l->port == 0)
			continue;
		snprintf(port, sizeof(port), "%d", l->port);
		fd = connect_to(l->address, port);
	}
	return fd;
}

/* Reads one reply; returns its code (0 on EOF) and keeps its last line. */
static int
reply(char *last, size_t n)
{
	char line[1024];

	while (fgets(line, sizeof(line), srv_in)) {
		snprintf(last, n, "%s", line);
		if (strlen(line) < 4 || line[3] != '-')
			return atoi(line);
	}
	snprintf(last, n, "connection closed by the server\n");
	return 0;
}

static int
command(const char *fmt, const char *arg, int want, char *last, size_t n)
{
	int code;

	fprintf(srv_out, fmt, arg);
	fputs("\r\n", srv_out);
	fflush(srv_out);
	code = reply(last, n);
	return code / 100 == want ? 0 : code;
}

static int
exit_code(int code, const char *last)
{
	fprintf(stderr, "sendmail: %s", last);
	return code >= 500 ? EX_DATAERR : code >= 400 ? EX_TEMPFAIL :
	    EX_UNAVAILABLE;
}

static int
submit(struct runtime *rt, struct opts *o, const char *from, struct buf *msg)
{
	char last[1024];
	int code;

	if ((code = reply(last, sizeof(last))) != 220)
		return exit_code(code, last);
	if ((code = command("EHLO %s", "localhost", 2, last, sizeof(last))) ||
	    (code = command("MAIL FROM:<%s>", from, 2, last, sizeof(last))))
		return exit_code(code, last);
	for (size_t i = 0; i < o->nrcpts; i++)
		if ((code = command("RCPT TO:<%s>", o->rcpts[i], 2, last,
		    sizeof(last))))
			return exit_code(code, last);
	if ((code = command("DATA%s", "", 3, last, sizeof(last))))
		return exit_code(code, last);
	for (size_t i = 0; i < msg->len;) {
		const char *nl = memchr(msg->data + i, '\n', msg->len - i);
		size_t end = nl ? (size_t)(nl - msg->data) : msg->len;
		if (msg->data[i] == '.')
			fputc('.', srv_out);
		fwrite(msg->data + i, 1, end - i, srv_out);
		fputs("\r\n", srv_out);
		i = end + 1;
	}
	fputs(".\r\n", srv_out);
	fflush(srv_out);
	if ((code = reply(last, sizeof(last))) / 100 != 2)
		return exit_code(code, last);
	command("QUIT%s", "", 2, last, sizeof(last));
	(void)rt;
	return 0;
}

/* -bs: the caller speaks SMTP; we only carry bytes both ways. */
static int
relay_stdio(int fd)
{
	struct pollfd p[2] = { { 0, POLLIN, 0 }, { fd, POLLIN, 0 } };
	char buf[8192];

	for (;;) {
		ssize_t n;
		if (poll(p, 2, 600 * 1000) <= 0)
			return EX_TEMPFAIL;
		if (p[0].revents) {
			if ((n = read(0, buf, sizeof(buf))) <= 0) {
				shutdown(fd, SHUT_WR);
				p[0].fd = -1;
			} else if (write(fd, buf, (size_t)n) != n)
				return EX_TEMPFAIL;
		}
		if (p[1].revents) {
			if ((n = read(fd, buf, sizeof(buf))) <= 0)
				return 0;
			if (write(1, buf, (size_t)n) != n)
				return EX_TEMPFAIL;
		}
	}
}

static int
parse_args(int argc, char **argv, struct opts *o, const char **config)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "-t") == 0)
			o->from_headers = 1;
		else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0)
			o->dot_is_data = 1;
		else if (strcmp(a, "-bs") == 0)
			o->smtp_stdio = 1;
		else if (strcmp(a, "-bm") == 0)
			;
		else if (strncmp(a, "-f", 2) == 0 || strncmp(a, "-r", 2) == 0)
			o->sender = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
		else if (strncmp(a, "-F", 2) == 0)
			o->fullname = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
		else if (strcmp(a, "-C") == 0 && i + 1 < argc)
			*config = argv[++i];
		else if (strncmp(a, "-o", 2) == 0 || strncmp(a, "-O", 2) == 0 ||
		    strcmp(a, "-v") == 0 || strncmp(a, "-B", 2) == 0 ||
		    strncmp(a, "-N", 2) == 0 || strncmp(a, "-R", 2) == 0 ||
		    strncmp(a, "-V", 2) == 0)
			;	/* accepted and ignored, like most injectors */
		else {
			fprintf(stderr, "sendmail: unknown option %s\n", a);
			return -1;
		}
	}
	for (; i < argc; i++)
		parse_address_list(o, argv[i], strlen(argv[i]));
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct buf err = BUF_INIT, msg = BUF_INIT, from = BUF_INIT;
	const char *config = getenv("INDIMAIL_CONFIG_FILE");
	struct runtime *rt;
	struct passwd *pw;
	int fd, rc;

	memset(&o, 0, sizeof(o));
	if (config == NULL)
		config = INDIMAIL_CONFIG;
	if (parse_args(argc, argv, &o, &config) < 0)
		return EX_USAGE;
	if ((rt = runtime_load(config, &err)) == NULL) {
		fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
		return EX_TEMPFAIL;
	}
	if ((fd = connect_server(rt)) < 0) {
		fprintf(stderr, "sendmail: cannot connect to the local mail server\n");
		return EX_TEMPFAIL;
	}
	if (o.smtp_stdio)
		return relay_stdio(fd);
	pw = getpwuid(getuid());
	if (o.sender)
		buf_appends(&from, o.sender);
	else
		buf_printf(&from, "%s@%s", pw ? pw->pw_name : "nobody",
		    rt->cfg.hostname);
	read_message(&o, rt->cfg.hostname, buf_cstr(&from), &msg);
	if (o.nrcpts == 0) {
		fprintf(stderr, "sendmail: no recipients (give addresses or -t)\n");
		return EX_USAGE;
	}
	srv_in = fdopen(fd, "r");
	srv_out = fdopen(dup(fd), "w");
	rc = submit(rt, &o, buf_cstr(&from), &msg);
	return rc;
}

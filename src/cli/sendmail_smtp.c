/*
 * sendmail_smtp: bin/sendmail's SMTP client over the local submission
 * socket. A submission is one session: the greeting (its name qualifies
 * bare local parts and names the generated headers), EHLO, then
 * transactions: MAIL, one RCPT per recipient (a refused one is reported,
 * the message still goes to the others; those past the server's limit go
 * in the next transaction), DATA written by sendmail_mime.c. Also -bv
 * (RCPT verdicts, then RSET) and -bs (bytes carried both ways). -v copies
 * the dialogue, not the message, to stderr.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "../smtp/smtp_parse.h"
#include "sendmail.h"

#define STDIO_IDLE	(600 * 1000)	/* -bs: ms without a byte either way */

struct session {
	int		 fd;
	FILE		*in;
	int		 verbose;
	int		 in_ehlo;	/* reading the EHLO reply */
	int		 eightbit;	/* the server offers 8BITMIME */
	int		 code;		/* of the last reply; 0: connection lost */
	struct buf	 reply;		/* the last reply's last line */
	char		 host[256];	/* the server's name, from its greeting */
};

static int
session_open(struct session *s, const char *path, int verbose)
{
	struct sockaddr_un sun;

	memset(s, 0, sizeof(*s));
	s->verbose = verbose;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return sendmail_error(EX_USAGE, "the submission socket path %s is "
		    "longer than %zu bytes", path, sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, strlen(path));
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		if (s->fd >= 0)
			close(s->fd);
		return sendmail_error(EX_TEMPFAIL, "cannot connect to the mail "
		    "server at %s: %s (is indimaild running? its socket is "
		    "submission_socket; set INDIMAIL_SUBMIT_SOCKET)", path,
		    strerror(e));
	}
	s->in = fdopen(dup(s->fd), "r");
	return s->in ? 0 : sendmail_error(EX_OSERR, "fdopen: %s", strerror(errno));
}

/* Reads one reply; returns its code, 0 if the connection ended. */
static int
session_reply(struct session *s)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	s->code = 0;
	while ((n = getline(&line, &cap, s->in)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (s->verbose)
			fprintf(stderr, "<<< %s\n", line);
		if (s->in_ehlo && n >= 12 && strcmp(line + 4, "8BITMIME") == 0)
			s->eightbit = 1;
		buf_set(&s->reply, line, (size_t)n);
		if (n < 4 || line[3] != '-') {
			s->code = atoi(line);
			break;
		}
	}
	free(line);
	if (s->code == 0)
		buf_set(&s->reply, "the server closed the connection", 32);
	return s->code;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Sends one command line (CRLF added) and returns the reply's code. */
static int
session_cmd(struct session *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (s->verbose)
		fprintf(stderr, ">>> %s\n", b.data);
	buf_appends(&b, "\r\n");
	write_all(s->fd, b.data, b.len);	/* a failure shows as no reply */
	buf_free(&b);
	return session_reply(s);
}

/* Says what was refused with the server's reply; its sysexits code. */
static int
refused(struct session *s, const char *what)
{
	int code = s->code / 100 == 5 ? EX_DATAERR : s->code / 100 == 4 ||
	    s->code == 0 ? EX_TEMPFAIL : EX_PROTOCOL;

	return sendmail_error(code, "%s: %s", what, buf_cstr(&s->reply));
}

static void
session_close(struct session *s)
{
	if (s->code != 0)
		session_cmd(s, "QUIT");
	if (s->in)
		fclose(s->in);
	close(s->fd);
	buf_free(&s->reply);
}

/* Our name for EHLO and the server's from its 220 (else ours). */
static int
session_hello(struct session *s)
{
	char me[256];
	const char *r;
	size_t n;

	if (gethostname(me, sizeof(me)) != 0 || !address_valid_domain(me, strlen(me)))
		snprintf(me, sizeof(me), "localhost");
	if (session_reply(s) != 220)
		return refused(s, "session refused");
	r = buf_cstr(&s->reply) + 4;
	n = strcspn(r, " ");
	if (s->reply.len > 4 && n < sizeof(s->host) && address_valid_domain(r, n))
		memcpy(s->host, r, n);
	else
		memcpy(s->host, me, strlen(me) + 1);
	s->in_ehlo = 1;
	session_cmd(s, "EHLO %s", me);
	s->in_ehlo = 0;
	return s->code == 250 ? 0 : refused(s, "EHLO refused");
}

/* addr, or addr@host for a bare local part; "" stays (null sender). */
static char *
qualify(const char *addr, const char *host)
{
	struct buf b = BUF_INIT;

	buf_appends(&b, addr);
	if (*addr && strchr(addr, '@') == NULL)
		buf_printf(&b, "@%s", host);
	buf_appendc(&b, '\0');
	return b.data;		/* the caller frees it */
}

/* The command line's recipients, then those of -t, all qualified. */
static void
all_rcpts(struct addr_list *out, const struct opts *o,
    const struct message *m, const char *host)
{
	out->n = o->rcpts.n + m->rcpts.n;
	out->v = xcalloc(out->n, sizeof(char *));
	for (size_t i = 0; i < o->rcpts.n; i++)
		out->v[i] = qualify(o->rcpts.v[i], host);
	for (size_t i = 0; i < m->rcpts.n; i++)
		out->v[o->rcpts.n + i] = qualify(m->rcpts.v[i], host);
}

/* What every transaction of one submission carries. */
struct envelope {
	char		*from;		/* MAIL FROM, qualified; "" for <> */
	int		 body8;		/* BODY=8BITMIME */
	struct buf	 headers;	/* From, Date, Message-ID if missing: one
					 * Message-ID for all transactions */
};

static void
envelope_init(struct envelope *e, const struct opts *o, const struct message *m,
    const char *login, const char *host)
{
	char *me = qualify(login, host);

	memset(e, 0, sizeof(*e));
	e->from = qualify(o->sender ? o->sender : login, host);
	e->body8 = o->body8 || m->has_8bit;
	mime_headers(&e->headers, m, *e->from ? e->from : me, o->fullname, host);
	free(me);
}

/* MAIL FROM: the envelope sender, with BODY=8BITMIME when it applies. */
static int
mail_from(struct session *s, const char *from, int body8)
{
	struct buf what = BUF_INIT;
	int rc = 0;

	if (session_cmd(s, "MAIL FROM:<%s>%s", from, body8 && s->eightbit ?
	    " BODY=8BITMIME" : "") / 100 != 2) {
		buf_printf(&what, "sender <%s> refused", from);
		rc = refused(s, buf_cstr(&what));
	}
	buf_free(&what);
	return rc;
}

/* 452 4.5.3: the server takes no more recipients in this transaction. */
static int
too_many(const struct session *s)
{
	return s->code == 452 && s->reply.len >= 9 &&
	    strncmp(s->reply.data + 3, " 4.5.3", 6) == 0;
}

/*
 * One RCPT per recipient; each refusal is said on stderr. Once the server
 * says 452 4.5.3 (too many) after accepting some, the rest go to later,
 * for another transaction. Returns how many were accepted; *worst becomes
 * 75 if a refusal was temporary.
 */
static int
rcpt_all(struct session *s, const struct addr_list *rcpts,
    struct addr_list *later, int *worst)
{
	int accepted = 0;

	for (size_t i = 0; i < rcpts->n && s->code != 0; i++) {
		if (later->n > 0) {
			addr_list_add(later, rcpts->v[i]);
			continue;
		}
		if (session_cmd(s, "RCPT TO:<%s>", rcpts->v[i]) / 100 == 2)
			accepted++;
		else if (accepted > 0 && too_many(s))
			addr_list_add(later, rcpts->v[i]);
		else if (refused(s, rcpts->v[i]) == EX_TEMPFAIL)
			*worst = EX_TEMPFAIL;
	}
	return accepted;
}

/* DATA, the message, and the server's verdict on it. */
static int
send_data(struct session *s, struct message *m, const struct buf *headers)
{
	int rc;

	if (session_cmd(s, "DATA") != 354)
		return refused(s, "DATA refused");
	rc = mime_send(m, headers, s->fd);
	if (s->verbose)
		fprintf(stderr, ">>> (the message)\n>>> .\n");
	if (rc == 0 && session_reply(s) / 100 != 2)
		rc = refused(s, "message refused");
	return rc;
}

/* MAIL, RCPT for rcpts, DATA: 0 once queued, else why not (said). */
static int
transaction(struct session *s, struct message *m, const struct envelope *e,
    const struct addr_list *rcpts, struct addr_list *later)
{
	int worst = EX_DATAERR, rc;

	if ((rc = mail_from(s, e->from, e->body8)) != 0)
		return rc;
	if (rcpt_all(s, rcpts, later, &worst) > 0)
		return send_data(s, m, &e->headers);
	if (s->code != 0)
		session_cmd(s, "RSET");
	return s->code == 0 ? EX_TEMPFAIL : worst;
}

/*
 * Transactions until every recipient had its turn (the server takes only
 * so many at once); todo is used up. 0 if the message was queued for any
 * recipient: what went wrong for the others is on stderr.
 */
static int
deliver(struct session *s, struct message *m, const struct envelope *e,
    struct addr_list *todo)
{
	int rc = 0, queued = 0;

	while (todo->n > 0 && s->code != 0) {
		struct addr_list later = { NULL, 0 };
		queued |= (rc = transaction(s, m, e, todo, &later)) == 0;
		addr_list_free(todo);
		*todo = later;
	}
	addr_list_free(todo);
	return queued ? 0 : rc;
}

int
smtp_submit(const struct opts *o, const char *path, const char *login,
    struct message *m)
{
	struct addr_list todo;
	struct envelope e;
	struct session s;
	int rc;

	if ((rc = session_open(&s, path, o->verbose)) != 0)
		return rc;
	if ((rc = session_hello(&s)) == 0) {
		envelope_init(&e, o, m, login, s.host);
		all_rcpts(&todo, o, m, s.host);
		rc = deliver(&s, m, &e, &todo);
		free(e.from);
		buf_free(&e.headers);
	}
	session_close(&s);
	return rc;
}

/* -bv: each recipient with the server's verdict on stdout; nothing sent. */
int
smtp_verify(const struct opts *o, const char *path, const char *login)
{
	struct session s;
	char *from = NULL;
	int rc, worst = 0;

	if (o->rcpts.n == 0)
		return sendmail_error(EX_USAGE, "-bv: no addresses to verify");
	if ((rc = session_open(&s, path, o->verbose)) != 0)
		return rc;
	if ((rc = session_hello(&s)) == 0) {
		from = qualify(o->sender ? o->sender : login, s.host);
		rc = mail_from(&s, from, 0);
	}
	for (size_t i = 0; rc == 0 && i < o->rcpts.n; i++) {
		char *a = qualify(o->rcpts.v[i], s.host);
		int ok = session_cmd(&s, "RCPT TO:<%s>", a) / 100 == 2;
		printf("%s: %s (%s)\n", a, ok ? "deliverable" : "refused",
		    buf_cstr(&s.reply));
		if (!ok && worst != EX_TEMPFAIL)
			worst = s.code / 100 == 5 ? EX_DATAERR : EX_TEMPFAIL;
		free(a);
		if (s.code == 0)
			break;		/* the connection is gone */
	}
	if (rc == 0 && s.code != 0)
		session_cmd(&s, "RSET");
	session_close(&s);
	free(from);
	return rc ? rc : worst;
}

/* Copies what can be read on from to to: 1, 0 at its end, -1 on a failure. */
static int
carry(int from, int to)
{
	char buf[8192];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0)
		return 0;
	return write_all(to, buf, (size_t)n) < 0 ? -1 : 1;
}

/* -bs: the caller speaks SMTP; bytes are carried both ways. */
int
smtp_stdio(const char *path)
{
	struct pollfd p[2] = { { 0, POLLIN, 0 }, { -1, POLLIN, 0 } };
	struct session s;
	int rc, r;

	if ((rc = session_open(&s, path, 0)) != 0)
		return rc;
	p[1].fd = s.fd;
	for (rc = -1; rc < 0;) {
		if (poll(p, 2, STDIO_IDLE) <= 0)
			rc = sendmail_error(EX_TEMPFAIL, "-bs: nothing happened for "
			    "%d s", STDIO_IDLE / 1000);
		else if (p[0].revents && (r = carry(0, s.fd)) <= 0) {
			shutdown(s.fd, SHUT_WR);	/* the caller is done */
			p[0].fd = -1;
		}
		if (rc < 0 && p[1].revents && (r = carry(s.fd, 1)) <= 0)
			rc = r == 0 ? 0 : EX_IOERR;
	}
	fclose(s.in);
	close(s.fd);
	return rc;
}

/*
 * admin_server: see admin_server.h. HTTP parsing is libmicrohttpd's; we
 * never parse HTTP ourselves.
 *
 * Threads: MHD_USE_THREAD_PER_CONNECTION with its internal polling thread.
 * A request may wait for a child process (bin/indimail, up to
 * ADMIN_CHILD_SECONDS) or for the master's reload; with one thread for
 * every connection a slow request never holds up the others, and
 * ADMIN_CONNECTIONS caps the threads (an admin API has few clients).
 * MHD_OPTION_CONNECTION_TIMEOUT closes idle connections; the memory limit
 * bounds what one connection's headers may take. The tokens (re-read when
 * the file's mtime, size or inode change) are shared under a mutex.
 *
 * A new certificate (SIGHUP, admind.c): libmicrohttpd 0.9 cannot change
 * the one of a running daemon (its only hook, a GnuTLS certificate
 * callback, would leave us the lifetime of certificates that handshakes
 * may still point to). So a second daemon starts on the same listening
 * socket with the new files, the running one is quiesced (it stops
 * accepting; the socket stays open, so the port is never dropped) and
 * serves its open connections until they end, at most
 * ADMIN_DRAIN_SECONDS, then stops (admin_server_tick). A certificate
 * libmicrohttpd refuses leaves the running daemon as it was.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "admin_backend.h"
#include "admin_server.h"
#include "admin_token.h"

#define ADMIN_CONNECTIONS	16
#define ADMIN_IDLE_SECONDS	30
#define ADMIN_CONN_MEMORY	(128 * 1024)
#define ADMIN_TLS_PRIORITIES	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define BEARER			"Bearer "
#define HTTP_TOO_LARGE		413
#define TLS_OPTIONS		5	/* where they begin in start_mhd */
/* A daemon replaced by a new certificate serves its connections this long
 * at most: the longest request, then an idle keep-alive. */
#define ADMIN_DRAIN_SECONDS	(ADMIN_CHILD_SECONDS + ADMIN_IDLE_SECONDS)

struct admin_server {
	struct MHD_Daemon *mhd;
	int		 fd;		/* listening: every daemon's */
	char		*cert, *key;	/* mhd's PEM; NULL: plain HTTP */
	struct MHD_Daemon *old;		/* replaced, serving what it has */
	char		*old_cert, *old_key;
	time_t		 old_until;	/* stopped then at the latest */
	const struct admin_backend *be;
	char		*tokens_path;
	pthread_mutex_t	 lock;		/* tokens and seen */
	struct admin_tokens tokens;
	struct stat	 seen;		/* of the tokens file when read */
};

/* One request: its body so far. */
struct conn {
	struct buf	 body;
	size_t		 total;		/* bytes sent, kept or not */
};

/* Who called: a token's name and scopes, copied out of the lock. */
struct caller {
	char		 name[ADMIN_TOKEN_NAME_MAX + 1];
	unsigned	 scopes;
	int		 known;
};

static void
load_tokens(struct admin_server *s, const struct stat *st)
{
	struct admin_tokens t;
	struct buf err = BUF_INIT;
	struct logline l;

	if (admin_tokens_load(s->tokens_path, &t, &err) < 0) {
		log_begin(&l, LOG_ERROR, "admin_tokens_error");	/* keep the old set */
		log_kv(&l, "path", s->tokens_path);
		log_kv(&l, "error", buf_cstr(&err));
		log_end(&l);
		buf_free(&err);
		return;
	}
	admin_tokens_free(&s->tokens);
	s->tokens = t;
	s->seen = *st;
	log_event(LOG_INFO, "admin_tokens", "path=%s tokens=%zu", s->tokens_path,
	    t.n);
}

/* Re-reads the file if it changed (force: anyway). Under the lock. */
static void
refresh_tokens(struct admin_server *s, int force)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	if (stat(s->tokens_path, &st) < 0)
		memset(&st, 0, sizeof(st));	/* absent: no tokens */
	if (force || st.st_mtim.tv_sec != s->seen.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != s->seen.st_mtim.tv_nsec ||
	    st.st_size != s->seen.st_size || st.st_ino != s->seen.st_ino)
		load_tokens(s, &st);
}

void
admin_server_reload_tokens(struct admin_server *s)
{
	pthread_mutex_lock(&s->lock);
	refresh_tokens(s, 1);
	pthread_mutex_unlock(&s->lock);
}

static void
identify(struct admin_server *s, struct MHD_Connection *c, struct caller *who)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	const struct admin_token *t;

	memset(who, 0, sizeof(*who));
	if (h == NULL || strncasecmp(h, BEARER, strlen(BEARER)) != 0)
		return;
	pthread_mutex_lock(&s->lock);
	refresh_tokens(s, 0);
	if ((t = admin_tokens_find(&s->tokens, h + strlen(BEARER))) != NULL) {
		snprintf(who->name, sizeof(who->name), "%s", t->name);
		who->scopes = t->scopes;
		who->known = 1;
	}
	pthread_mutex_unlock(&s->lock);
}

static void
client_ip(struct MHD_Connection *c, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, n, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)n);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    out, (socklen_t)n);
}

/* One line per change (and per refused change): never a token or body. */
static void
audit(struct MHD_Connection *c, const char *method, const char *url,
    const struct caller *who, int status)
{
	struct logline l;
	char ip[INET6_ADDRSTRLEN];
	int change = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;

	client_ip(c, ip, sizeof(ip));
	log_begin(&l, change ? LOG_INFO : LOG_DEBUG, "admin_api");
	log_kv(&l, "token", who->known ? who->name : "-");
	log_kv(&l, "method", method);
	log_kv(&l, "path", url);
	log_kvi(&l, "status", status);
	log_kv(&l, "client", ip);
	log_end(&l);
}

static enum MHD_Result
send_response(struct MHD_Connection *c, struct admin_response *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(r->body.len,
	    r->body.data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    r->content_type ? r->content_type : "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer realm=\"indimail\"");
	rc = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static const char *
query(void *arg, const char *key)
{
	return MHD_lookup_connection_value(arg, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
answer(struct admin_server *s, struct MHD_Connection *c, const char *url,
    const char *method, struct conn *cn)
{
	struct admin_response res = { 0, NULL, BUF_INIT };
	struct admin_request req = { method, url, query, c, cn->body.data,
	    cn->total, 0 };
	struct caller who;
	enum MHD_Result rc;

	identify(s, c, &who);
	if (!who.known)
		admin_route_error(&res, MHD_HTTP_UNAUTHORIZED, "a bearer token "
		    "is required (Authorization: Bearer imt_...)");
	else if (cn->total > ADMIN_BODY_MAX)
		admin_route_error(&res, HTTP_TOO_LARGE, "body over "
		    "%d bytes", ADMIN_BODY_MAX);
	else {
		req.scopes = who.scopes;
		admin_route(s->be, &req, &res);
	}
	audit(c, method, url, &who, res.status);
	rc = send_response(c, &res);
	buf_free(&res.body);
	return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct conn *cn = *con_cls;

	(void)version;
	if (cn == NULL) {
		*con_cls = xcalloc(1, sizeof(struct conn));
		return MHD_YES;
	}
	if (*upload_size > 0) {
		cn->total += *upload_size;
		if (cn->total <= ADMIN_BODY_MAX)
			buf_append(&cn->body, upload, *upload_size);
		*upload_size = 0;	/* kept or dropped: consumed */
		return MHD_YES;
	}
	return answer(cls, c, url, method, cn);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode why)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)c;
	(void)why;
	if (cn) {
		buf_wipe(&cn->body);	/* may hold a password */
		free(cn);
		*con_cls = NULL;
	}
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	struct logline l;

	(void)cls;
	buf_vprintf(&b, fmt, ap);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	log_begin(&l, LOG_WARN, "admin_http");
	log_kv(&l, "error", buf_cstr(&b));
	log_end(&l);
	buf_free(&b);
}

/* A daemon on s->fd with cert and key (NULL: plain HTTP), or NULL. */
static struct MHD_Daemon *
start_mhd(struct admin_server *s, const char *cert, const char *key)
{
	struct MHD_OptionItem o[] = {
	    { MHD_OPTION_LISTEN_SOCKET, s->fd, NULL },
	    { MHD_OPTION_CONNECTION_LIMIT, ADMIN_CONNECTIONS, NULL },
	    { MHD_OPTION_CONNECTION_TIMEOUT, ADMIN_IDLE_SECONDS, NULL },
	    { MHD_OPTION_CONNECTION_MEMORY_LIMIT, ADMIN_CONN_MEMORY, NULL },
	    { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL },
	    { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert },
	    { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key },
	    { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)ADMIN_TLS_PRIORITIES },
	    { MHD_OPTION_END, 0, NULL } };
	/* MHD_USE_ITC: what MHD_quiesce_daemon needs */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG |
	    MHD_USE_ITC;

	if (cert)
		flags |= MHD_USE_TLS;
	else
		o[TLS_OPTIONS].option = MHD_OPTION_END;	/* cut there */
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,	/* first, as MHD asks */
	    MHD_OPTION_ARRAY, o, MHD_OPTION_END);
}

static char *
dup_pem(const char *pem)
{
	return pem ? xstrdup(pem) : NULL;
}

static void
free_pem(char **pem)
{
	if (*pem)
		explicit_bzero(*pem, strlen(*pem));
	free(*pem);
	*pem = NULL;
}

struct admin_server *
admin_server_start(const struct admin_server_conf *conf, struct buf *err)
{
	struct admin_server *s = xcalloc(1, sizeof(*s));

	s->be = conf->be;
	s->fd = conf->fd;
	s->cert = dup_pem(conf->cert);
	s->key = dup_pem(conf->key);
	s->tokens_path = xstrdup(conf->tokens_path);
	pthread_mutex_init(&s->lock, NULL);
	refresh_tokens(s, 1);
	s->mhd = start_mhd(s, s->cert, s->key);
	if (s->mhd == NULL) {
		buf_printf(err, "libmicrohttpd did not start (the certificate "
		    "or key may be unreadable by GnuTLS)");
		admin_server_stop(s);
		return NULL;
	}
	return s;
}

static unsigned
connections(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(d,
	    MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i ? i->num_connections : 0;
}

/* Stops the replaced daemon; what it still serves is closed. */
static void
retire_old(struct admin_server *s)
{
	unsigned open;

	if (s->old == NULL)
		return;
	if ((open = connections(s->old)) > 0)
		log_event(LOG_WARN, "admin_tls_drain_cut", "connections=%u",
		    open);
	else
		log_event(LOG_INFO, "admin_tls_drained", "certificate=old");
	MHD_stop_daemon(s->old);	/* quiesced: the socket stays open */
	s->old = NULL;
	free_pem(&s->old_cert);
	free_pem(&s->old_key);
}

int
admin_server_swap_tls(struct admin_server *s, const char *cert,
    const char *key, struct buf *err)
{
	struct MHD_Daemon *d;

	if (s->cert == NULL || (strcmp(cert, s->cert) == 0 &&
	    strcmp(key, s->key) == 0))
		return 1;
	retire_old(s);		/* a second reload while one drains */
	if ((d = start_mhd(s, cert, key)) == NULL) {
		buf_appends(err, "libmicrohttpd refused the new certificate "
		    "or key");
		return -1;
	}
	if (MHD_quiesce_daemon(s->mhd) == MHD_INVALID_SOCKET) {
		(void)MHD_quiesce_daemon(d);	/* so stopping it keeps the socket */
		MHD_stop_daemon(d);
		buf_appends(err, "libmicrohttpd could not hand over the socket");
		return -1;
	}
	s->old = s->mhd;
	s->old_cert = s->cert;
	s->old_key = s->key;
	s->old_until = time(NULL) + ADMIN_DRAIN_SECONDS;
	s->mhd = d;
	s->cert = xstrdup(cert);
	s->key = xstrdup(key);
	return 0;
}

int
admin_server_tick(struct admin_server *s)
{
	if (s->old && (connections(s->old) == 0 || time(NULL) >= s->old_until))
		retire_old(s);
	return s->old != NULL;
}

void
admin_server_stop(struct admin_server *s)
{
	retire_old(s);
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	free_pem(&s->cert);
	free_pem(&s->key);
	admin_tokens_free(&s->tokens);
	pthread_mutex_destroy(&s->lock);
	free(s->tokens_path);
	free(s);
}

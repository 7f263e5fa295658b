/*
 * smtp_server: a server's listeners and its list of sessions. Accepts on
 * the listeners the process opened for it, keeps the count of sessions
 * (freed ones included only once their handles closed), drains them, and
 * gives every one a last 421 when the watchdog is about to recycle us.
 * Tells the process through its two callbacks; knows nothing else of it.
 */
#include "smtp_session_int.h"

static void
on_connection(uv_stream_t *h, int status)
{
	struct smtp_listener *l = h->data;

	if (status < 0) {
		log_event(LOG_WARN, "accept_error", "error=%s",
		    uv_strerror(status));
		return;
	}
	smtp_session_accept(l);
}

int
smtp_listener_open(struct smtp_server *srv, struct smtp_listener *l, int fd)
{
	int rc;

	l->server = srv;
	l->connections = metrics_get(&mm_connections,
	    (const char *[]){ l->name });
	l->accepted = metrics_get(&mm_accepted, (const char *[]){ l->name });
	if (l->local) {
		uv_pipe_init(srv->loop, &l->h.pipe, 0);
		rc = uv_pipe_open(&l->h.pipe, fd);
	} else {
		uv_tcp_init(srv->loop, &l->h.tcp);
		rc = uv_tcp_open(&l->h.tcp, fd);
	}
	l->h.tcp.data = l;
	if (rc != 0)
		return rc;
	return uv_listen((uv_stream_t *)&l->h, 1024, on_connection);
}

/* A session was allocated (it counts until smtp_server_gone). */
void
smtp_server_enter(struct smtp_server *srv)
{
	srv->nsessions++;
}

void
smtp_server_link(struct smtp_server *srv, struct smtp_session *s)
{
	s->prev = NULL;
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
}

void
smtp_server_unlink(struct smtp_server *srv, struct smtp_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static void
maybe_drained(struct smtp_server *srv)
{
	if (srv->draining && srv->nsessions == 0 && srv->drained != NULL)
		srv->drained(srv);
}

/* A session was freed. */
void
smtp_server_gone(struct smtp_server *srv)
{
	srv->nsessions--;
	maybe_drained(srv);
}

void
smtp_server_drain(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	srv->draining = 1;
	for (size_t i = 0; i < srv->nlisteners; i++)
		uv_close((uv_handle_t *)&srv->listeners[i].h, NULL);
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		smtp_session_drain(s);
	}
	maybe_drained(srv);
}

void
smtp_server_watchdog(void *arg)
{
	struct smtp_server *srv = arg;
	struct buf line = BUF_INIT;

	for (struct smtp_session *s = srv->sessions; s; s = s->next) {
		buf_clear(&line);
		buf_printf(&line, "421 4.3.2 %s Service restarting (a policy "
		    "hook is stuck), try again later\r\n", smtp_cfg(s)->hostname);
		smtp_last_words(s, &line);
	}
	buf_free(&line);
}

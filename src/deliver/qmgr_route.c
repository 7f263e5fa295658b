/*
 * qmgr_route: where a recipient goes. The route hook (lua) decides once
 * per recipient, before its first delivery: the default (local domains
 * locally, the routes table, else MX), local, MX, a relay of its own
 * (login, TLS, timeouts), or discard / reject / tempfail. A relay's strings belong to the message.
 * Local domains are those the directory found local when the message was
 * queued (the envelope's "route local", database domains included), and
 * local_domains (for older queue files); the directory is not asked here.
 * What the hook writes to tx.env stays with the message in memory for the
 * next recipients' hooks (the queue file is never rewritten).
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "qmgr_int.h"

struct rctx {
	struct hook_ctx	 ctx;
	struct envvars	 env;
	struct qmgr	*q;
	struct qmsg	*m;
	size_t		 i;
	struct hook_call *call;
};

static void
rctx_free(struct rctx *r)
{
	envvars_free(&r->env);
	free(r);
}

/* VERDICT_ROUTE: local, MX, or a relay with its own login and TLS. */
static void
route_set(struct qroute *q, struct hook_verdict *v)
{
	q->decided = 1;
	q->kind = v->route;
	if (v->route != ROUTE_RELAY)
		return;
	q->relay.domain = "";
	q->relay.host = xstrdup(buf_cstr(&v->route_host));
	q->relay.port = v->route_port;
	q->relay.auth_user = v->route_user.len ?
	    xstrdup(buf_cstr(&v->route_user)) : NULL;
	q->relay.auth_password = v->route_password.len ?
	    xstrdup(buf_cstr(&v->route_password)) : NULL;
	/* as in the config: credentials need TLS, verified */
	q->relay.tls = v->route_tls >= 0 ? v->route_tls :
	    q->relay.auth_user ? CLIENT_TLS_VERIFY :
	    CLIENT_TLS_OPPORTUNISTIC;
	q->relay.auth_plaintext = v->route_auth_plaintext;
	q->relay.timeouts = v->route_timeouts;	/* 0: delivery.timeouts */
}

static void
route_discard(struct rctx *r, struct hook_verdict *v)
{
	struct qmsg *m = r->m;
	struct logline l;

	m->st[r->i] = RS_DONE;
	qmsg_log(&l, LOG_INFO, "discarded", m);
	log_kv(&l, "to", m->item.env.rcpts[r->i]);
	log_kv(&l, "policy", v->policy);
	log_end(&l);
	qmgr_journal(r->q, m, 'x', &r->i, 1);
}

static void
apply_route(struct rctx *r, struct hook_verdict *v)
{
	struct qmgr *q = r->q;
	struct qmsg *m = r->m;
	struct rcpt_result res;

	m->route[r->i].running = 0;
	m->busy--;
	/* tx.env as the hook left it: the next recipients' hooks see it */
	envvars_free(&m->item.env.vars);
	m->item.env.vars = r->env;
	memset(&r->env, 0, sizeof(r->env));
	memset(&res, 0, sizeof(res));
	switch (v->action) {
	case VERDICT_ACCEPT:
	case VERDICT_HOLD:		/* refused in the route hook: lua_verdict.c */
	case VERDICT_QUARANTINE:
		m->route[r->i].decided = 1;
		m->route[r->i].kind = ROUTE_DEFAULT;
		break;
	case VERDICT_ROUTE:
		route_set(&m->route[r->i], v);
		break;
	case VERDICT_DISCARD:
		route_discard(r, v);
		break;
	case VERDICT_REJECT:
	case VERDICT_TEMPFAIL:
		res.cls = v->action == VERDICT_REJECT ? RESULT_PERM : RESULT_TEMP;
		buf_printf(&res.text, "%d %s %s", v->code, v->status,
		    buf_cstr(&v->text));
		qmgr_outcome(q, m, &r->i, &res, 1, NULL, NULL, MM_ROUTE);
		buf_free(&res.text);
		break;
	}
	rctx_free(r);
	qmgr_maybe_done(q, m);
}

static void
on_route_done(void *arg, struct hook_verdict *v)
{
	struct qmgr *q = ((struct rctx *)arg)->q;
	struct qmsg *m = ((struct rctx *)arg)->m;

	apply_route(arg, v);
	scheduler_changed(q, m);
}

/* Runs the route hook for recipient i (the result may come later). */
void
qmgr_route_rcpt(struct qmgr *q, struct qmsg *m, size_t i)
{
	struct rctx *r;
	struct hook_verdict v;

	if (q->rt->nhooks[HOOK_ROUTE] == 0) {
		m->route[i].decided = 1;
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->q = q;
	r->m = m;
	r->i = i;
	for (size_t k = 0; k < m->item.env.vars.n; k++)
		envvars_set(&r->env, m->item.env.vars.key[k],
		    m->item.env.vars.val[k]);
	r->ctx.session_id = m->item.env.id;
	r->ctx.queue_id = m->item.env.id;
	r->ctx.ip = m->item.env.ip;
	r->ctx.helo = m->item.env.helo;
	r->ctx.sender = m->item.env.sender;
	r->ctx.rcpts = m->item.env.rcpts;
	r->ctx.nrcpts = m->item.env.nrcpts;
	r->ctx.rcpt = m->item.env.rcpts[i];
	r->ctx.env = &r->env;
	m->route[i].running = 1;
	m->busy++;
	if (hook_run(q->rt, HOOK_ROUTE, &r->ctx, &v, on_route_done, r,
	    &r->call) == HOOK_DONE) {
		apply_route(r, &v);
		hook_verdict_free(&v);
	}
}

/* Recipient i goes where the route hook says next time (queue requeue). */
void
qmgr_route_forget(struct qmsg *m, size_t i)
{
	struct qroute *r = &m->route[i];

	free(r->relay.host);
	free(r->relay.auth_user);
	free(r->relay.auth_password);
	memset(r, 0, sizeof(*r));
}

/* Destination key of a remote recipient: its relay, or its domain's MX. */
const char *
qmgr_route_dest_key(const struct qmgr *q, const struct qmsg *m, size_t i,
    const struct route_conf **rc, struct buf *key)
{
	const char *dom = address_domain(m->item.env.rcpts[i]);

	buf_clear(key);
	if (m->route[i].kind == ROUTE_RELAY)
		*rc = &m->route[i].relay;
	else if (m->route[i].kind == ROUTE_MX)
		*rc = NULL;
	else
		*rc = config_find_route(q->cfg, dom ? dom : "");
	if (*rc)
		buf_printf(key, "relay:%s:%d", (*rc)->host, (*rc)->port);
	else
		buf_printf(key, "mx:%s", dom ? dom : "");
	return buf_cstr(key);
}

int
qmgr_route_is_local(const struct qmgr *q, const struct qmsg *m, size_t i)
{
	const char *dom = address_domain(m->item.env.rcpts[i]);

	if (m->route[i].kind != ROUTE_DEFAULT)
		return m->route[i].kind == ROUTE_LOCAL;
	if (envelope_rcpt_local(&m->item.env, i))	/* the directory said */
		return 1;
	return dom == NULL || config_is_local_domain(q->cfg, dom);
}

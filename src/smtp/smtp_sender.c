/*
 * smtp_sender: who may use which envelope sender, and who may relay. A
 * logged-in user's MAIL FROM must be its own (directory_owns: the address,
 * the same user in an alias domain, or an alias with the user among its
 * targets) unless the listener has sender_login_match = false; a client
 * neither logged in, nor in relay_from, nor on the local socket may not
 * use a local domain (local_sender_requires_auth; local as the directory
 * says: local_domains or the database's domains, asked like RCPT); a
 * no-relay user may log in, but not send to a domain that is not local.
 * A policy may grant relaying (session.relay, tx.relay: smtp_relay_grant),
 * never to a no-relay user; a session grant also counts as relay_from
 * for local senders. Each refusal is a reply and a log line of its own; the mail and rcpt
 * hooks run only after these.
 */
#include "../mail/address.h"
#include "smtp_session_int.h"

static void
log_refusal(struct smtp_session *s, const char *event, const char *key,
    const char *value)
{
	struct logline l;

	smtp_log_session(s, &l, LOG_WARN, event);
	if (s->auth_user)
		log_kv(&l, "user", s->auth_user);
	log_kv(&l, key, value);
	log_kv(&l, "ip", s->ip);
	log_end(&l);
}

/* Replies why (built here), logs it as a rejection of cmd. */
static void
refuse(struct smtp_session *s, const char *cmd, struct buf *why)
{
	smtp_refuse(s, cmd, buf_cstr(why));
	buf_free(why);
}

/* Must MAIL FROM a domain be local-checked: no AUTH, relay_from, socket? */
static int
sender_needs_auth(struct smtp_session *s)
{
	return smtp_cfg(s)->local_sender_requires_auth && !s->relay &&
	    !s->relay_grant && s->auth_user == NULL &&
	    address_domain(buf_cstr(&s->sender));
}

/* A logged-in user's sender must be asked of the directory. */
static int
sender_must_own(const struct smtp_session *s)
{
	return s->auth_user != NULL && s->sender.len > 0 && s->lconf &&
	    s->lconf->sender_login_match;
}

/*
 * Asks whether the sender's domain is local (local_domains or the
 * database: a client without a login may not use it), or whether the
 * logged-in user owns the sender; nothing to ask: DIR_DONE.
 */
int
smtp_sender_lookup(struct smtp_session *s, dir_done_cb cb)
{
	const char *sender = buf_cstr(&s->sender);

	s->sender_owned = DIR_OK;
	s->sender_local = DIR_NOTFOUND;
	if (sender_must_own(s))
		return directory_owns(s->dir, s->auth_user, sender,
		    &s->sender_owned, cb, s, &s->dirq);
	if (sender_needs_auth(s))
		return directory_domain(s->dir, address_domain(sender),
		    &s->sender_local, cb, s, &s->dirq);
	return DIR_DONE;
}

/* The sender's domain is local and the client not logged in: 550. */
static void
sender_local_refusal(struct smtp_session *s, struct buf *why)
{
	const char *sender = buf_cstr(&s->sender);

	log_refusal(s, "sender_auth_required", "sender", sender);
	buf_printf(why, "550 5.7.1 Authentication required to send as %s",
	    address_domain(sender));
}

/* After smtp_sender_lookup: 550, 553 or 451 and 1, else 0. */
int
smtp_sender_refused(struct smtp_session *s)
{
	struct buf why = BUF_INIT;

	if (s->sender_local == DIR_OK)
		sender_local_refusal(s, &why);
	else if (s->sender_owned == DIR_TEMPFAIL ||
	    s->sender_local == DIR_TEMPFAIL) {
		log_refusal(s, "sender_lookup_failed", "sender",
		    buf_cstr(&s->sender));
		buf_printf(&why, "451 4.3.0 Sender lookup failed, try again "
		    "later");
	} else if (s->sender_owned == DIR_OK)
		return 0;
	else {
		log_refusal(s, "sender_not_owned", "sender",
		    buf_cstr(&s->sender));
		buf_printf(&why, "553 5.7.1 Sender address not owned by "
		    "authenticated user %s", s->auth_user);
	}
	refuse(s, "MAIL", &why);
	smtp_tx_reset(s);
	return 1;
}

/*
 * Relaying is allowed: a user (unless no-relay: the directory's word on a
 * user is final), relay_from / local, or a policy's grant for the session
 * or the transaction.
 */
int
smtp_may_relay(const struct smtp_session *s)
{
	if (s->auth_user != NULL)
		return !s->auth_no_relay;
	return s->relay || s->relay_grant ||
	    (s->tx != TX_NONE && s->tx_relay_grant);
}

int
smtp_relay_grant(void *arg, int tx, int on, const char *policy)
{
	struct smtp_session *s = arg;
	struct logline l;

	if (tx)
		s->tx_relay_grant = on;
	else {
		s->relay_grant = on;
		s->relay_grant_stage = s->hook_stage;
	}
	smtp_log_session(s, &l, LOG_INFO, on ? "relay_grant" : "relay_revoke");
	log_kv(&l, "scope", tx ? "tx" : "session");
	log_kv(&l, "stage", hook_stage_name(s->hook_stage));
	log_kv(&l, "policy", policy);
	if (tx)
		log_kv(&l, "sender", buf_cstr(&s->sender));
	log_kv(&l, "ip", s->ip);
	log_end(&l);
	return smtp_may_relay(s);
}

/*
 * RFC 3207 4.2: what the client said before STARTTLS is forgotten, and
 * with it a grant made on it; one from the connect hook judged only the
 * connection, which TLS does not change.
 */
void
smtp_relay_forget(struct smtp_session *s)
{
	if (s->relay_grant && s->relay_grant_stage != HOOK_CONNECT)
		s->relay_grant = 0;
}

/* RCPT to a domain not local by a no-relay user: 554 sent, returns 554. */
int
smtp_relay_denied(struct smtp_session *s)
{
	struct buf why = BUF_INIT;

	if (s->auth_user == NULL || !s->auth_no_relay)
		return 0;
	log_refusal(s, "relay_denied", "rcpt", buf_cstr(&s->rcpt.path));
	buf_printf(&why, "554 5.7.1 Relaying denied for user %s",
	    s->auth_user);
	refuse(s, "RCPT", &why);
	return 554;
}

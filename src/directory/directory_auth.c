/*
 * directory_auth: the password check behind SMTP AUTH. The backend only
 * answers the user lookup (through the cache: a user's record, its hash
 * included, may be cached; the outcome of a check never is); the stored
 * crypt(3) hash is verified with libcrypt's crypt_r on the libuv thread
 * pool, because a slow hash (yescrypt, SHA-512-crypt) must never hold the
 * loop. The work owns copies of the password and the hash, wiped when it
 * ends, so a query cancelled mid-check simply lets go of it. The
 * challenge-response mechanisms only fetch the user's stored secret
 * (directory_secret); their check is the session's.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "directory_int.h"

struct dir_auth_work {
	uv_work_t	 req;
	struct dir_query *q;		/* NULL: the query went away */
	char		*password, *secret;
	int		 queued;	/* on the thread pool */
	int		 refused;	/* disabled / no-smtp: even if right */
	int		 unknown;	/* no such user: a dummy hash is checked */
	int		 no_relay;	/* the user's flag, for the answer */
	int		 match;		/* the thread's answer */
};

enum { A_START, A_USER };

/* A yescrypt hash of nothing anyone knows, checked for unknown users. */
#define DUMMY_HASH \
	"$y$j9T$oa5TeaLFihHCmSq3NNdeR.$whZ6Vupfn04j.oJAodFinjaJT0lAb1a.XuQzgY7rtv6"

static void
wipe_free(char *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, strlen(p));
	free(p);
}

static void
work_free(struct dir_auth_work *w)
{
	wipe_free(w->password);
	wipe_free(w->secret);
	free(w);
}

/* No early exit: the time taken says nothing of where they differ. */
static int
same_hash(const char *a, const char *b)
{
	size_t n = strlen(a);
	unsigned char diff = 0;

	if (n != strlen(b))	/* a hash's length is no secret */
		return 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* Runs on a pool thread (or at once without a loop): 1 if it matches. */
static int
verify(const char *password, const char *secret)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;
	int ok;

	if (cd == NULL)
		return 0;
	h = crypt_r(password, secret, cd);
	ok = h != NULL && h[0] != '*' && same_hash(h, secret);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static void
on_work(uv_work_t *req)
{
	struct dir_auth_work *w = req->data;

	w->match = verify(w->password, w->secret);
}

static enum dir_status
outcome(const struct dir_auth_work *w, int match)
{
	if (!match || w->unknown)
		return DIR_NOTFOUND;
	return w->refused ? DIR_REFUSED : DIR_OK;
}

static int
auth_end(struct dir_query *q, enum dir_status st)
{
	struct dir_auth *out = q->out;

	out->status = st;
	out->no_relay = st == DIR_OK && q->work && q->work->no_relay;
	return Q_END;
}

/* On the loop: the check is over; answer, unless the query went away. */
static void
on_work_done(uv_work_t *req, int status)
{
	struct dir_auth_work *w = req->data;
	struct dir_query *q = w->q;

	if (q == NULL) {
		work_free(w);
		return;
	}
	auth_end(q, outcome(w, status == 0 && w->match));
	q->work = NULL;
	work_free(w);
	dir_query_done(q);
}

void
dir_auth_release(struct dir_query *q)
{
	struct dir_auth_work *w = q->work;

	q->work = NULL;
	if (!w->queued) {
		work_free(w);
		return;
	}
	w->q = NULL;		/* on_work_done frees it */
	uv_cancel((uv_req_t *)&w->req);
}

/* Looks the user up, then hands its hash to the thread pool. */
static int
auth_step(struct dir_query *q)
{
	const struct dir_result *r = &q->res;
	struct dir_auth_work *w = q->work;

	if (q->state++ == A_START)
		return dir_query_lookup(q, DK_USER, q->addrs[0]);
	if (r->status == DIR_TEMPFAIL)
		return auth_end(q, DIR_TEMPFAIL);
	w->unknown = r->status != DIR_OK || !(r->flags & DIR_USER_LISTED) ||
	    r->secret == NULL || r->secret[0] == '\0';
	w->refused = (r->flags & (DIR_USER_DISABLED | DIR_USER_NO_SMTP)) != 0;
	w->no_relay = (r->flags & DIR_USER_NO_RELAY) != 0;
	if (q->d->loop == NULL)
		return auth_end(q, w->unknown ? DIR_NOTFOUND :
		    outcome(w, verify(w->password, r->secret)));
	/* No such user costs a hash too: the answer's time tells nothing. */
	w->secret = xstrdup(w->unknown ? DUMMY_HASH : r->secret);
	if (uv_queue_work(q->d->loop, &w->req, on_work, on_work_done) != 0)
		return auth_end(q, DIR_TEMPFAIL);
	w->queued = 1;
	return Q_WAIT;
}

int
directory_authenticate(struct directory *d, const char *user,
    const char *password, struct dir_auth *out, dir_done_cb cb, void *arg,
    struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, auth_step, out, cb, arg);

	q->work = xcalloc(1, sizeof(*q->work));
	q->work->q = q;
	q->work->req.data = q->work;
	q->work->password = xstrdup(password);
	dir_query_addrs(q, &user, 1);
	return dir_query_start(q, qp);
}

/* ---- secrets of CRAM-MD5 and SCRAM-SHA-256 -------------------------------- */

/* The lookup's answer into the caller's dir_secret (q->out). */
static int
secret_step(struct dir_query *q)
{
	const struct dir_result *r = &q->res;
	struct dir_secret *out = q->out;
	const char *sec;

	if (q->state++ == A_START)
		return dir_query_lookup(q, DK_USER, q->addrs[0]);
	out->secret = NULL;
	out->status = r->status;
	if (r->status != DIR_OK)
		return Q_END;
	if (!(r->flags & DIR_USER_LISTED)) {
		out->status = DIR_NOTFOUND;
		return Q_END;
	}
	sec = q->i == DIR_MECH_CRAM_MD5 ? r->cram : r->scram;
	if (sec && sec[0])
		out->secret = xstrdup(sec);
	out->no_relay = (r->flags & DIR_USER_NO_RELAY) != 0;
	if (r->flags & (DIR_USER_DISABLED | DIR_USER_NO_SMTP))
		out->status = DIR_REFUSED;
	return Q_END;
}

int
directory_secret(struct directory *d, const char *user, enum dir_mech mech,
    struct dir_secret *out, dir_done_cb cb, void *arg, struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, secret_step, out, cb, arg);

	out->status = DIR_TEMPFAIL;
	out->secret = NULL;
	dir_query_addrs(q, &user, 1);
	q->i = mech;		/* i is the address index: unused here */
	return dir_query_start(q, qp);
}

void
dir_secret_free(struct dir_secret *s)
{
	wipe_free(s->secret);
	s->secret = NULL;
}

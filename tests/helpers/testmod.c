/*
 * testmod: the Lua 5.4 module "indimail_test" that the busted specs load.
 * It exposes the pure SMTP parsers (smtp_parse.c, smtp_data.c) and the
 * header walker (mail/header.c) with Lua values in and out, the
 * Authentication-Results parser as indimail.authres.parse has it
 * (lua_authres.c), and a few process helpers (spawn, kill, waitpid, sleep,
 * now, getuid) for the integration specs. The comment above each
 * Lua-callable function gives its stack effect as [-arguments, +results];
 * every argument is checked, so a bad call raises a Lua error, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "../../src/lib/buf.h"
#include "../../src/smtp/smtp_data.h"
#include "../../src/lib/base64.h"
#include "../../src/lib/siphash.h"
#include "../../src/mail/address.h"
#include "../../src/mail/header.h"
#include "../../src/smtp/smtp_parse.h"
#include "../../src/smtp/smtp_sasl_parse.h"
#include "../../src/lib/sasl.h"
#include "../../src/deliver/smtp_reply.h"
#include "../../src/lua/lua_api.h"

#define BUF_META	"indimail_test.buf"

static const char *const cmd_names[] = {
	"UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP",
	"QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "ETRN", "BDAT",
	"HTTP",
};

static const struct {
	const char	*name;
	int		 sig;
} sig_names[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
	{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "ABRT", SIGABRT }, { "SEGV", SIGSEGV },
};

static const char *
cmd_name(enum smtp_cmd c)
{
	if ((size_t)c < sizeof(cmd_names) / sizeof(cmd_names[0]))
		return cmd_names[c];
	return "?";
}

/* __gc of the buffer userdata below. [-0, +0] */
static int
buf_gc(lua_State *L)
{
	buf_free(luaL_checkudata(L, 1, BUF_META));
	return 0;
}

/*
 * Pushes a struct buf living in a Lua userdata, freed by __gc, so a Lua
 * error (out of memory while building a result) cannot leak the C buffer.
 * buf_free() on it early is fine: a second buf_free() is a no-op.
 * [-0, +1]
 */
static struct buf *
push_buf(lua_State *L)
{
	struct buf *b = lua_newuserdatauv(L, sizeof(*b), 0);

	memset(b, 0, sizeof(*b));
	luaL_setmetatable(L, BUF_META);
	return b;
}

static void
set_str(lua_State *L, const char *key, const char *s, size_t n)
{
	lua_pushlstring(L, s, n);
	lua_setfield(L, -2, key);
}

static void
set_bool(lua_State *L, const char *key, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, key);
}

static void
set_int(lua_State *L, const char *key, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, key);
}

/* Pushes nil and the reply text; returns the count for lua_CFunction. */
static int
push_fail(lua_State *L, const char *reply)
{
	lua_pushnil(L);
	lua_pushstring(L, reply);
	return 2;
}

/*
 * parse_command(line) -> {cmd=, verb=, arg=} | nil, reply, cmd
 * The third result on failure names the verb that was recognised (for a
 * "501 takes no arguments") or "UNKNOWN".
 * [-1, +1 or +3]
 */
static int
l_parse_command(lua_State *L)
{
	size_t len;
	const char *line = luaL_checklstring(L, 1, &len);
	const char *reply = NULL;
	struct smtp_command c;

	if (smtp_parse_command(line, len, &c, &reply) < 0) {
		push_fail(L, reply);
		lua_pushstring(L, cmd_name(c.cmd));
		return 3;
	}
	lua_createtable(L, 0, 3);
	lua_pushstring(L, cmd_name(c.cmd));
	lua_setfield(L, -2, "cmd");
	set_str(L, "verb", c.verb, c.verblen);
	set_str(L, "arg", c.arg, c.arglen);
	return 1;
}

/*
 * parse_mail(arg) -> {path=, size=int|nil, body="7BIT"|"8BITMIME"|nil}
 *                  | nil, reply
 * arg is what follows "MAIL ", e.g. "FROM:<a@b.c> SIZE=10".
 * [-1, +1 or +2]
 */
static int
l_parse_mail(lua_State *L)
{
	size_t len;
	const char *arg = luaL_checklstring(L, 1, &len);
	const char *reply = NULL;
	struct smtp_mail_arg m;
	struct buf *path = push_buf(L);
	int rc;

	memset(&m, 0, sizeof(m));
	rc = smtp_parse_mail(arg, len, &m, &reply);
	*path = m.path;		/* from now on owned by the userdata */
	if (rc < 0)
		return push_fail(L, reply);
	lua_createtable(L, 0, 3);
	set_str(L, "path", buf_cstr(path), path->len);
	buf_free(path);
	if (m.has_size) {
		if (m.size > (uint64_t)INT64_MAX)
			lua_pushnumber(L, (lua_Number)m.size);
		else
			lua_pushinteger(L, (lua_Integer)m.size);
		lua_setfield(L, -2, "size");
	}
	if (m.body == SMTP_BODY_7BIT)
		set_str(L, "body", "7BIT", 4);
	else if (m.body == SMTP_BODY_8BITMIME)
		set_str(L, "body", "8BITMIME", 8);
	return 1;
}

/*
 * parse_rcpt(arg) -> {path=, postmaster=bool} | nil, reply
 * [-1, +1 or +2]
 */
static int
l_parse_rcpt(lua_State *L)
{
	size_t len;
	const char *arg = luaL_checklstring(L, 1, &len);
	const char *reply = NULL;
	struct smtp_rcpt_arg r;
	struct buf *path = push_buf(L);
	int rc;

	memset(&r, 0, sizeof(r));
	rc = smtp_parse_rcpt(arg, len, &r, &reply);
	*path = r.path;		/* from now on owned by the userdata */
	if (rc < 0)
		return push_fail(L, reply);
	lua_createtable(L, 0, 2);
	set_str(L, "path", buf_cstr(path), path->len);
	buf_free(path);
	set_bool(L, "postmaster", r.postmaster);
	return 1;
}

/*
 * parse_helo(arg) -> true | nil, reply
 * [-1, +1 or +2]
 */
static int
l_parse_helo(lua_State *L)
{
	size_t len;
	const char *arg = luaL_checklstring(L, 1, &len);
	const char *reply = NULL;

	if (smtp_parse_helo(arg, len, &reply) < 0)
		return push_fail(L, reply);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * valid_domain(s) -> boolean
 * [-1, +1]
 */
static int
l_valid_domain(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);

	lua_pushboolean(L, address_valid_domain(s, len));
	return 1;
}

/*
 * escape(value [, also]) -> escaped, size ; unescape(escaped) -> value
 * (buf_escape / buf_unescape, the %XX form of queue envelopes and of the
 * start-up plan). [-1|2, +2] and [-1, +1]
 */
static int
l_escape(lua_State *L)
{
	const char *v = luaL_checkstring(L, 1), *also = luaL_optstring(L, 2, NULL);
	struct buf b = BUF_INIT;
	size_t n = buf_escape(&b, v, also);

	lua_pushlstring(L, b.data ? b.data : "", b.len);
	lua_pushinteger(L, (lua_Integer)n);
	buf_free(&b);
	return 2;
}

static int
l_unescape(lua_State *L)
{
	size_t n;
	const char *v = luaL_checklstring(L, 1, &n);
	char *out = malloc(n + 1);
	size_t len = buf_unescape(out, v, n);

	lua_pushlstring(L, out, len);
	free(out);
	return 1;
}

/* One step of buf_run on b: { "append", s } | { "consume", n } | { "clear" }. */
static void
buf_step(lua_State *L, struct buf *b)
{
	const char *op;
	size_t n;

	lua_rawgeti(L, -1, 1);
	op = luaL_checkstring(L, -1);
	lua_rawgeti(L, -2, 2);
	if (strcmp(op, "append") == 0) {
		const char *s = luaL_checklstring(L, -1, &n);
		buf_append(b, s, n);
	} else if (strcmp(op, "consume") == 0)
		buf_consume(b, (size_t)luaL_checkinteger(L, -1));
	else if (strcmp(op, "clear") == 0)
		buf_clear(b);
	else
		luaL_error(L, "buf_run: unknown op %s", op);
	lua_pop(L, 2);
	if (b->data && b->data[b->len] != '\0')
		luaL_error(L, "buf_run: no NUL after the live bytes");
}

/*
 * buf_run(ops) -> content, skip, size: runs the ops on one buffer; skip is
 * the consumed bytes still before data, size the allocation.
 * [-1, +3]
 */
static int
l_buf_run(lua_State *L)
{
	struct buf b = BUF_INIT;
	lua_Integer n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = luaL_len(L, 1);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		buf_step(L, &b);
		lua_pop(L, 1);
	}
	lua_pushlstring(L, buf_cstr(&b), b.len);
	lua_pushinteger(L, (lua_Integer)b.skip);
	lua_pushinteger(L, (lua_Integer)(b.skip + b.cap));
	buf_free(&b);
	return 3;
}

/*
 * addr_domain(s) -> string | nil   (the part after the last '@')
 * [-1, +1]
 */
static int
l_addr_domain(lua_State *L)
{
	const char *d = address_domain(luaL_checkstring(L, 1));

	if (d == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, d);
	return 1;
}

/*
 * data(input [, max_line=1000 [, max_size=0 [, chunk=0]]]) -> {message=,
 *     consumed=, wire_size=, done=, bare_lf=, bare_cr=, nul=, long_line=,
 *     too_big=, reply=string|nil}
 * chunk > 0 feeds the input that many bytes at a time, stopping once the
 * end of data has been seen; consumed is the total the parser accepted.
 * [-(1..4), +1]
 */
static int
l_data(lua_State *L)
{
	size_t len, off = 0, consumed = 0, n;
	const char *in = luaL_checklstring(L, 1, &len);
	lua_Integer max_line = luaL_optinteger(L, 2, 1000);
	lua_Integer max_size = luaL_optinteger(L, 3, 0);
	lua_Integer chunk = luaL_optinteger(L, 4, 0);
	const char *reply;
	struct smtp_data d;
	struct buf *out;

	luaL_argcheck(L, max_line >= 0, 2, "max_line must be >= 0");
	luaL_argcheck(L, max_size >= 0, 3, "max_size must be >= 0");
	luaL_argcheck(L, chunk >= 0, 4, "chunk must be >= 0");
	out = push_buf(L);
	smtp_data_init(&d, (size_t)max_line, (size_t)max_size);
	if (chunk == 0)
		consumed = smtp_data_feed(&d, in, len, out);
	else {
		while (off < len && !d.done) {
			n = len - off;
			if (n > (size_t)chunk)
				n = (size_t)chunk;
			n = smtp_data_feed(&d, in + off, n, out);
			consumed += n;
			off += n;
		}
	}
	lua_createtable(L, 0, 10);
	set_str(L, "message", buf_cstr(out), out->len);
	buf_free(out);
	set_int(L, "consumed", (lua_Integer)consumed);
	set_int(L, "wire_size", (lua_Integer)d.wire_size);
	set_bool(L, "done", d.done);
	set_bool(L, "bare_lf", d.flags & SMTP_DATA_BARE_LF);
	set_bool(L, "bare_cr", d.flags & SMTP_DATA_BARE_CR);
	set_bool(L, "nul", d.flags & SMTP_DATA_NUL);
	set_bool(L, "long_line", d.flags & SMTP_DATA_LONG_LINE);
	set_bool(L, "too_big", d.flags & SMTP_DATA_TOO_BIG);
	if ((reply = smtp_data_reject_reply(&d)) != NULL) {
		lua_pushstring(L, reply);
		lua_setfield(L, -2, "reply");
	}
	return 1;
}

/* Pushes nil and strerror(err); returns 2. */
static int
push_errno(lua_State *L, int err)
{
	lua_pushnil(L);
	lua_pushstring(L, strerror(err));
	return 2;
}

/*
 * spawn(argv [, log_path]) -> pid | nil, err
 * fork + execvp(argv[1], argv). The child leads its own process group,
 * reads /dev/null and appends stdout and stderr to log_path (inherited
 * when log_path is nil). An exec failure makes the child exit 127.
 * [-(1..2), +1 or +2]
 */
static int
l_spawn(lua_State *L)
{
	const char *logpath = luaL_optstring(L, 2, NULL);
	const char **argv;
	lua_Integer i, n;
	int logfd = -1, err;
	pid_t pid;
	sigset_t all;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = luaL_len(L, 1);
	luaL_argcheck(L, n >= 1, 1, "argv must not be empty");
	argv = lua_newuserdatauv(L, sizeof(*argv) * ((size_t)n + 1), 0);
	for (i = 1; i <= n; i++) {
		/* The strings stay referenced by argv's table (argument 1). */
		if (lua_geti(L, 1, i) != LUA_TSTRING)
			return luaL_error(L, "argv[%d] is not a string", (int)i);
		argv[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	argv[n] = NULL;
	if (logpath != NULL) {
		logfd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0644);
		if (logfd < 0)
			return push_errno(L, errno);
	}
	pid = fork();
	if (pid < 0) {
		err = errno;
		if (logfd >= 0)
			close(logfd);
		return push_errno(L, err);
	}
	if (pid == 0) {
		int nullfd;

		/* Only async-signal-safe calls from here on. */
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		nullfd = open("/dev/null", O_RDONLY);
		if (nullfd >= 0 && nullfd != 0) {
			dup2(nullfd, 0);
			close(nullfd);
		}
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
			if (logfd > 2)
				close(logfd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);	/* also from here: no race with a kill(-pid) */
	if (logfd >= 0)
		close(logfd);
	lua_pushinteger(L, (lua_Integer)pid);
	return 1;
}

/*
 * kill(pid, sig) -> true | nil, err
 * sig is a number or a name ("TERM", "SIGTERM", "kill"...). pid may be
 * negative to signal a process group; 0, -1 and 1 are refused so a
 * careless spec cannot signal its own group, every process or init.
 * [-2, +1 or +2]
 */
static int
l_kill(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	int sig = -1;

	luaL_argcheck(L, pid > 1 || pid < -1, 1,
	    "refusing to signal pid 0, -1 or 1");
	if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer v = luaL_checkinteger(L, 2);

		luaL_argcheck(L, v >= 0 && v < NSIG, 2, "signal out of range");
		sig = (int)v;
	} else {
		const char *name = luaL_checkstring(L, 2);

		if (strncasecmp(name, "SIG", 3) == 0)
			name += 3;
		for (size_t k = 0; k < sizeof(sig_names) / sizeof(sig_names[0]);
		    k++)
			if (strcasecmp(name, sig_names[k].name) == 0)
				sig = sig_names[k].sig;
		if (sig < 0)
			return luaL_argerror(L, 2, "unknown signal name");
	}
	if (kill((pid_t)pid, sig) < 0)
		return push_errno(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * waitpid(pid [, nohang=false]) -> "exited", code | "signaled", sig
 *                                 | "running" | nil, err
 * [-(1..2), +1 or +2]
 */
static int
l_waitpid(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	int nohang = lua_toboolean(L, 2);
	int status;
	pid_t r;

	luaL_argcheck(L, pid > 0, 1, "pid must be positive");
	do
		r = waitpid((pid_t)pid, &status, nohang ? WNOHANG : 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return push_errno(L, errno);
	if (r == 0) {
		lua_pushstring(L, "running");
		return 1;
	}
	if (WIFEXITED(status)) {
		lua_pushstring(L, "exited");
		lua_pushinteger(L, WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		lua_pushstring(L, "signaled");
		lua_pushinteger(L, WTERMSIG(status));
	} else {
		lua_pushstring(L, "running");
		return 1;
	}
	return 2;
}

/*
 * sleep(seconds) -> nothing; fractions allowed, signals do not cut it short.
 * [-1, +0]
 */
static int
l_sleep(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 1);
	struct timespec ts;

	luaL_argcheck(L, s >= 0 && s < 1e9, 1, "seconds out of range");
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
	if (ts.tv_nsec > 999999999)
		ts.tv_nsec = 999999999;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}

/*
 * now() -> monotonic seconds as a float
 * [-0, +1]
 */
static int
l_now(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
	return 1;
}

/*
 * getuid() -> integer
 * [-0, +1]
 */
static int
l_getuid(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)getuid());
	return 1;
}

/*
 * cloexec(fd) -> true | nil, err
 * [-1, +1 or +2] Marks a descriptor (a LuaSocket's getfd()) close-on-exec,
 * so that no program a spec starts keeps it open.
 */
static int
l_cloexec(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);

	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return push_errno(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * parse_reply(bytes) -> used, code, text   [-1, +3]
 * used: bytes of the first complete reply, 0 if incomplete, -1 if too long.
 */
static int
l_parse_reply(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	struct buf text = BUF_INIT;
	int code = 0;
	long used = smtp_reply_parse(p, n, &code, &text);

	lua_pushinteger(L, used);
	lua_pushinteger(L, code);
	lua_pushlstring(L, text.data ? text.data : "", text.len);
	buf_free(&text);
	return 3;
}

/* ehlo_caps(text) -> { PIPELINING=true, ... }   [-1, +1] */
static int
l_ehlo_caps(lua_State *L)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ EHLO_PIPELINING, "PIPELINING" }, { EHLO_STARTTLS, "STARTTLS" },
		{ EHLO_8BITMIME, "8BITMIME" }, { EHLO_SIZE, "SIZE" },
		{ EHLO_AUTH_PLAIN, "AUTH_PLAIN" }, { EHLO_AUTH_LOGIN, "AUTH_LOGIN" },
	};
	unsigned caps = smtp_ehlo_caps(luaL_checkstring(L, 1));

	lua_newtable(L);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (caps & names[i].bit) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, names[i].name);
		}
	return 1;
}

/*
 * header_fields(msg) -> { {name=, raw=, value=, colon=bool}, ... }, stop
 * Every field header_next() reads from the start of msg; value is raw
 * unfolded and trimmed; stop is where the walk stopped (0-based).
 * [-1, +2]
 */
static int
l_header_fields(lua_State *L)
{
	size_t len, pos = 0;
	const char *msg = luaL_checklstring(L, 1, &len);
	struct header_field f;
	struct buf *v = push_buf(L);
	lua_Integer i = 0;

	lua_newtable(L);
	while (header_next(msg, len, &pos, &f)) {
		lua_createtable(L, 0, 4);
		set_str(L, "name", f.name, f.name_len);
		set_str(L, "raw", f.value, f.value_len);
		header_value(v, &f);
		set_str(L, "value", v->data, v->len);
		set_bool(L, "colon", f.colon);
		lua_rawseti(L, -2, ++i);
	}
	buf_free(v);
	lua_pushinteger(L, (lua_Integer)pos);
	return 2;
}

/* header_unfold(raw) -> value   [-1, +1] */
static int
l_header_unfold(lua_State *L)
{
	size_t n;
	const char *raw = luaL_checklstring(L, 1, &n);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, n);

	luaL_pushresultsize(&b, header_unfold(p, raw, n));
	return 1;
}

/*
 * header_end(msg [, from=0]) -> found, end   (end 0-based: the offset of
 * the empty line, or #msg when there is none)
 * [-(1..2), +2]
 */
static int
l_header_end(lua_State *L)
{
	size_t len, end;
	const char *msg = luaL_checklstring(L, 1, &len);
	lua_Integer from = luaL_optinteger(L, 2, 0);
	int found;

	luaL_argcheck(L, from >= 0, 2, "from must be >= 0");
	found = header_end(msg, len, (size_t)from, &end);
	lua_pushboolean(L, found);
	lua_pushinteger(L, (lua_Integer)end);
	return 2;
}

/* header_count(msg, name [, value]) -> n   [-(2..3), +1] */
static int
l_header_count(lua_State *L)
{
	size_t len;
	const char *msg = luaL_checklstring(L, 1, &len);
	const char *name = luaL_checkstring(L, 2);
	const char *value = luaL_optstring(L, 3, NULL);

	lua_pushinteger(L, (lua_Integer)header_count(msg, len, name, value));
	return 1;
}

/* base64_decode(s) -> bytes, or nil (not strict base64) */
static int
l_base64_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	struct buf b = BUF_INIT;

	if (base64_decode(s, n, &b) == 0)
		lua_pushlstring(L, b.data, b.len);
	else
		lua_pushnil(L);
	buf_free(&b);
	return 1;
}

/* base64_encode(s) -> text */
static int
l_base64_encode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	struct buf b = BUF_INIT;

	base64_encode(s, n, &b);
	lua_pushlstring(L, b.data, b.len);
	buf_free(&b);
	return 1;
}

/* siphash24(key16, s) -> the 8 bytes of the hash, least significant
 * first (the reference's output order) */
static int
l_siphash24(lua_State *L)
{
	size_t klen, n;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *s = luaL_checklstring(L, 2, &n);
	struct siphash_key k;
	uint64_t h;
	char out[8];

	luaL_argcheck(L, klen == SIPHASH_KEY_LEN, 1, "16 bytes");
	k = siphash_key_from((const unsigned char *)key);
	h = siphash24(&k, s, n);
	for (int i = 0; i < 8; i++)
		out[i] = (char)(h >> (8 * i));
	lua_pushlstring(L, out, sizeof(out));
	return 1;
}

/* parse_plain(s) -> authzid, authcid, password; or nil */
static int
l_parse_plain(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	struct smtp_plain p;

	if (smtp_parse_plain(s, n, &p) < 0) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushlstring(L, p.authz, p.authzlen);
	lua_pushlstring(L, p.user, p.userlen);
	lua_pushlstring(L, p.pass, p.passlen);
	return 3;
}

/* parse_cram(s) -> user, digest; or nil, why */
static int
l_parse_cram(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n), *why;
	struct smtp_cram c;

	if ((why = smtp_parse_cram(s, n, &c)) != NULL) {
		lua_pushnil(L);
		lua_pushstring(L, why);
		return 2;
	}
	lua_pushlstring(L, c.user, c.userlen);
	lua_pushlstring(L, c.digest, 32);
	return 2;
}

/* parse_scram_first(s) -> { cbind, gs2, authz, user, bare, nonce }; or nil, why */
static int
l_parse_scram_first(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n), *why;
	struct smtp_scram_first f;

	if ((why = smtp_parse_scram_first(s, n, &f)) != NULL) {
		lua_pushnil(L);
		lua_pushstring(L, why);
		return 2;
	}
	lua_createtable(L, 0, 6);
	lua_pushlstring(L, &f.cbind, 1);
	lua_setfield(L, -2, "cbind");
	lua_pushlstring(L, s, f.gs2len);
	lua_setfield(L, -2, "gs2");
	lua_pushlstring(L, f.authz, f.authzlen);
	lua_setfield(L, -2, "authz");
	lua_pushlstring(L, f.user, f.userlen);
	lua_setfield(L, -2, "user");
	lua_pushlstring(L, f.bare, f.barelen);
	lua_setfield(L, -2, "bare");
	lua_pushlstring(L, f.nonce, f.noncelen);
	lua_setfield(L, -2, "nonce");
	return 1;
}

/* parse_scram_final(s) -> { cbind, nonce, proof, without_proof }; or nil, why */
static int
l_parse_scram_final(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n), *why;
	struct smtp_scram_final f;

	if ((why = smtp_parse_scram_final(s, n, &f)) != NULL) {
		lua_pushnil(L);
		lua_pushstring(L, why);
		return 2;
	}
	lua_createtable(L, 0, 4);
	lua_pushlstring(L, f.cbind, f.cbindlen);
	lua_setfield(L, -2, "cbind");
	lua_pushlstring(L, f.nonce, f.noncelen);
	lua_setfield(L, -2, "nonce");
	lua_pushlstring(L, f.proof, f.prooflen);
	lua_setfield(L, -2, "proof");
	lua_pushlstring(L, s, f.without_proof);
	lua_setfield(L, -2, "without_proof");
	return 1;
}

/* scram_make(password, salt bytes, iter) -> secret; or nil */
static int
l_scram_make(lua_State *L)
{
	size_t n, sl;
	const char *pw = luaL_checklstring(L, 1, &n);
	const char *salt = luaL_checklstring(L, 2, &sl);
	struct buf b = BUF_INIT;

	if (sasl_scram_make(pw, n, (const unsigned char *)salt, sl,
	    (unsigned)luaL_checkinteger(L, 3), &b) < 0)
		lua_pushnil(L);
	else
		lua_pushlstring(L, b.data, b.len);
	buf_free(&b);
	return 1;
}

/* scram_check(secret, auth_message, proof bytes) -> ok, server signature */
static int
l_scram_check(lua_State *L)
{
	size_t n, pl;
	const char *secret = luaL_checkstring(L, 1);
	const char *am = luaL_checklstring(L, 2, &n);
	const char *proof = luaL_checklstring(L, 3, &pl);
	struct sasl_scram_keys k;
	unsigned char sig[SASL_SHA256_LEN];

	if (sasl_scram_parse(secret, &k) < 0)
		return luaL_error(L, "not a SCRAM secret");
	lua_pushboolean(L, sasl_scram_check(&k, am, n,
	    (const unsigned char *)proof, pl, sig));
	lua_pushlstring(L, (const char *)sig, sizeof(sig));
	return 2;
}

/* cram_make(password) -> secret; cram_check(secret, challenge, hex) -> ok */
static int
l_cram_make(lua_State *L)
{
	size_t n;
	const char *pw = luaL_checklstring(L, 1, &n);
	struct buf b = BUF_INIT;

	sasl_cram_make(pw, n, &b);
	lua_pushlstring(L, b.data, b.len);
	buf_free(&b);
	return 1;
}

static int
l_cram_check(lua_State *L)
{
	size_t cl, hl;
	const char *secret = luaL_checkstring(L, 1);
	const char *chal = luaL_checklstring(L, 2, &cl);
	const char *hex = luaL_checklstring(L, 3, &hl);

	lua_pushboolean(L, sasl_cram_check(secret, chal, cl, hex, hl));
	return 1;
}

static const luaL_Reg funcs[] = {
	{ "parse_cram", l_parse_cram },
	{ "parse_scram_first", l_parse_scram_first },
	{ "parse_scram_final", l_parse_scram_final },
	{ "scram_make", l_scram_make }, { "scram_check", l_scram_check },
	{ "cram_make", l_cram_make }, { "cram_check", l_cram_check },
	{ "base64_decode", l_base64_decode },
	{ "base64_encode", l_base64_encode },
	{ "siphash24", l_siphash24 },
	{ "parse_plain", l_parse_plain },
	{ "header_fields", l_header_fields },
	{ "header_unfold", l_header_unfold },
	{ "header_end", l_header_end },
	{ "header_count", l_header_count },
	{ "parse_reply", l_parse_reply },
	{ "authres_parse", lua_authres_parse },	/* indimail.authres.parse */
	{ "ehlo_caps", l_ehlo_caps },
	{ "parse_command", l_parse_command },
	{ "parse_mail", l_parse_mail },
	{ "parse_rcpt", l_parse_rcpt },
	{ "parse_helo", l_parse_helo },
	{ "valid_domain", l_valid_domain },
	{ "addr_domain", l_addr_domain },
	{ "escape", l_escape }, { "unescape", l_unescape },
	{ "buf_run", l_buf_run },
	{ "data", l_data },
	{ "spawn", l_spawn },
	{ "kill", l_kill },
	{ "waitpid", l_waitpid },
	{ "sleep", l_sleep },
	{ "now", l_now },
	{ "getuid", l_getuid },
	{ "cloexec", l_cloexec },
	{ NULL, NULL },
};

/* [-0, +1] the module table */
int luaopen_indimail_test(lua_State *);

int
luaopen_indimail_test(lua_State *L)
{
	if (luaL_newmetatable(L, BUF_META)) {
		lua_pushcfunction(L, buf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}

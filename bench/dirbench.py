"""bench/dirbench.py: scenarios 9-11 of `make bench`, the directory.

Imported by bench/run, whose helpers it uses (passed in as R: processes
stopped by R.P, R.Indimaild, R.run, R.wait_for, ...). For each SQL engine
(a SQLite file, and a MariaDB server of the bench's own: mariadb-install-db
and mariadbd --no-defaults in the temp dir, on a Unix socket only, as
tests/helpers/mariadb.lua starts it) it imports USERS users once
(`indimail user import`, one transaction, one yescrypt hash reused), then:
  9. RCPT lookups per second through SMTP, uncached and cached;
 10. AUTH PLAIN per second, sessions in parallel (bounded by yescrypt);
 11. accept throughput with the users in the directory, as a ratio to the
     config backend (scenario 1's set-up), MariaDB as a ratio to SQLite.
Everything it starts is registered with R.P and stopped on any failure.
"""
import json
import os
import pwd
import signal
import sqlite3
import statistics
import subprocess
import time

USERS = 100000
PASSWORD = "bench-secret-1"      # of every imported user (one hash)
FMT = "u%d@bench.test"
RCPT_SESSIONS, AUTH_SESSIONS, ACCEPT_SESSIONS = 10, 50, 100
CACHED_SET = 50                  # users of the cached runs (1,024 cache slots)
ROUNDS = 3                       # measured runs of each figure (median)
ACCEPT_ROUNDS = 5                # scenario 11: alternating rounds (median)


# ---------------------------------------------------------------- MariaDB

class Mariadb:
    """A mariadbd of the bench's own: datadir, socket, pid and log in
    <tmp>/mariadb, run as the account when root; its database `indimail`
    and user `indimail` with a random password in a 0640 root:indimail file."""

    def __init__(self, R, b):
        self.R = R
        self.dir = os.path.join(b.tmp, "mariadb")
        self.socket = os.path.join(self.dir, "mysql.sock")
        self.pwfile = os.path.join(self.dir, "db.password")
        self.p = None
        os.makedirs(self.dir)
        acct = pwd.getpwnam("indimail")
        os.chown(self.dir, acct.pw_uid, acct.pw_gid)

    def client(self, sql, timeout=60):
        r = subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.socket,
                            "--user=root", "--batch", "--skip-column-names"],
                           input=sql.encode(), timeout=timeout, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode:
            raise RuntimeError("mariadb: " + r.stdout.decode(errors="replace")[-300:])
        return r.stdout.decode()

    def ping(self):
        return subprocess.run(["mariadb-admin", "--no-defaults", "--socket=" + self.socket,
                               "--user=root", "ping"], timeout=10,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                              ).returncode == 0

    def start(self):
        R = self.R
        for exe in ("/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"):
            if not os.access(exe, os.X_OK):
                raise RuntimeError("missing %s (make bench installs mariadb-server)" % exe)
        R.run(["mariadb-install-db", "--no-defaults", "--datadir=%s/data" % self.dir,
               "--auth-root-authentication-method=normal", "--skip-test-db",
               "--user=indimail"], 120)
        self.p = R.spawn(["/usr/sbin/mariadbd", "--no-defaults", "--datadir=%s/data" % self.dir,
                          "--socket=" + self.socket, "--skip-networking",
                          "--pid-file=%s/mariadbd.pid" % self.dir,
                          "--log-error=%s/mariadbd.log" % self.dir,
                          "--innodb-buffer-pool-size=256M", "--max-connections=200",
                          "--character-set-server=utf8mb4",
                          "--collation-server=utf8mb4_general_ci", "--user=indimail"],
                         os.path.join(self.dir, "stderr.log"))
        R.P.on_cleanup("mariadbd", self.stop)

        def up():
            if self.p.poll() is not None:
                raise RuntimeError("mariadbd exited %s at start: %s" % (
                    self.p.returncode, self.log()[-400:]))
            return self.ping()
        R.wait_for(up, 60, step=0.2, what="mariadbd")
        self.provision()
        return self

    def provision(self):
        pw = os.urandom(18).hex()
        with open(self.pwfile, "w") as f:
            f.write(pw + "\n")
        os.chown(self.pwfile, 0, pwd.getpwnam("indimail").pw_gid)
        os.chmod(self.pwfile, 0o640)
        self.client("CREATE DATABASE indimail CHARACTER SET utf8mb4;\n"
                    "CREATE USER 'indimail'@'localhost' IDENTIFIED BY '%s';\n"
                    "GRANT ALL ON indimail.* TO 'indimail'@'localhost';\n"
                    "FLUSH PRIVILEGES;\n" % pw)

    def status(self):
        """Statement counters (SHOW GLOBAL STATUS) and mariadbd's CPU seconds."""
        out = self.client("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', "
                          "'Com_stmt_execute', 'Com_stmt_prepare', 'Connections');")
        st = {k: int(v) for k, v in (x.split("\t") for x in out.strip().splitlines())}
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        st["cpu"] = (int(fields[11]) + int(fields[12])) / self.R.CLK
        return st

    def log(self):
        try:
            with open(os.path.join(self.dir, "mariadbd.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def directory(self):
        return ('backend = "mariadb", socket = "%s", database = "indimail", user = '
                '"indimail", password_file = "%s"' % (self.socket, self.pwfile))

    def stop(self):
        if self.p is None:
            return
        self.R.P.drop(self.stop)
        rc = self.R.stop_popen(self.p, signal.SIGTERM, timeout=30)
        self.p = None
        if rc not in (0, None):
            self.R.odd("mariadbd exited with status %s at stop" % rc)


# ---------------------------------------------------------------- users

def indimail_cli(R, argv, timeout=300, stdin=None):
    r = subprocess.run([os.path.join(R.BIN, "indimail")] + argv, input=stdin,
                       timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError("indimail %s exited %d: %s" % (" ".join(argv[:4]), r.returncode,
                                                          r.stdout.decode(errors="replace")[-300:]))
    return r.stdout.decode(errors="replace")


def user_file(R, b):
    """The import file: USERS lines "u<i>@bench.test <hash>", one yescrypt
    hash made by `indimail user add` in a scratch database and reused."""
    seed = os.path.join(b.tmp, "seed.sqlite")
    indimail_cli(R, ["--db", seed, "domain", "add", "bench.test"])
    t0 = time.monotonic()
    indimail_cli(R, ["--db", seed, "user", "add", "seed@bench.test", "--password-stdin"],
                 stdin=(PASSWORD + "\n").encode())
    b.r["dir_hash_s"] = time.monotonic() - t0
    con = sqlite3.connect("file:%s?mode=ro" % seed, uri=True)
    (h,) = con.execute("SELECT password FROM users").fetchone()
    con.close()
    if not h.startswith("$y$"):
        raise RuntimeError("seed hash is not yescrypt: %s..." % h[:4])
    path = os.path.join(b.tmp, "users.txt")
    with open(path, "w") as f:
        f.write("".join("%s %s\n" % (FMT % i, h) for i in range(USERS)))
    b.detail("directory: %d users, one yescrypt hash (%s; `user add` took %.2f s with "
             "its hashing)" % (USERS, h[:h.index("$", 3) + 1] + "...", b.r["dir_hash_s"]))
    return path


def cli_config(b, eng, directory):
    path = os.path.join(b.tmp, "cli-%s.lua" % eng)
    with open(path, "w") as f:
        f.write('indimail.config{ hostname = "mx.bench.test", user = "indimail", '
                'local_domains = { "bench.test" }, listen = { { name = "smtp", address = '
                '"127.0.0.1", port = 0 } }, directory = { %s } }\n' % directory)
    return path


def engine(R, b, eng, users):
    """Makes the engine's database with every user; returns its directory = { } text."""
    if eng == "sqlite":
        d = os.path.join(b.tmp, "dirdb")
        os.makedirs(d)
        acct = pwd.getpwnam("indimail")
        os.chown(d, acct.pw_uid, acct.pw_gid)
        text = 'backend = "sqlite", path = "%s/directory.sqlite"' % d
    else:
        b.mariadb = Mariadb(R, b).start()
        text = b.mariadb.directory()
    cfg = cli_config(b, eng, text)
    indimail_cli(R, ["-c", cfg, "domain", "add", "bench.test"])
    t0 = time.monotonic()
    indimail_cli(R, ["-c", cfg, "user", "import", users], timeout=600)
    dt = time.monotonic() - t0
    b.r["dir_import_%s" % eng] = dt
    b.detail("directory %s: `indimail user import` of %d users in %.1f s (%.0f users/s)"
             % (eng, USERS, dt, USERS / dt))
    return text + ", cache_ttl = 600, negative_ttl = 60"


# ---------------------------------------------------------------- clients

def load(R, argv, timeout):
    out = R.run([R.PY, R.LOAD] + argv + ["--timeout", str(timeout)], timeout + 30)
    res = json.loads(out.strip().splitlines()[-1])
    if not res.get("rate"):
        raise RuntimeError("smtpload %s: %s" % (argv[0], res))
    return res


def rcpt_rate(R, srv, first, count, cached):
    argv = ["rcpt", "--port", str(srv.port), "--sessions", str(RCPT_SESSIONS),
            "--first", str(first), "--count", str(count)]
    if cached:
        argv += ["--set", str(CACHED_SET)]
    return load(R, argv, 120)["rate"]


def s9_rcpt(R, b, eng, srv):
    """RCPT/s: uncached (each RCPT a user never asked before: ranges of
    the first 90,000 users), then cached (CACHED_SET users, warmed up)."""
    warm = rcpt_rate(R, srv, 90000, 2000, False)
    n = max(2000, min(30000, int(warm * R.SECS) // 100 * 100))
    db = getattr(b, "mariadb", None) if eng == "mariadb" else None
    st0 = db.status() if db else None
    unc = [rcpt_rate(R, srv, k * 30000, n, False) for k in range(ROUNDS)]
    if db:                       # what one uncached RCPT costs the server
        st1 = db.status()
        d = {k: (st1[k] - st0[k]) / (ROUNDS * n) for k in st0}
        b.r["dir_mariadb_per_rcpt"] = d
        b.detail("mariadbd per uncached RCPT: %.2f statements executed (%.2f prepared), "
                 "%.2f queries in all, %.3f new connections, %.0f µs of mariadbd CPU"
                 % (d["Com_stmt_execute"], d["Com_stmt_prepare"], d["Questions"],
                    d["Connections"], 1e6 * d["cpu"]))
    rcpt_rate(R, srv, 95000, 2000, True)
    cac = [rcpt_rate(R, srv, 95000, n, True) for _ in range(ROUNDS)]
    b.r["dir_rcpt_unc_" + eng] = statistics.median(unc)
    b.r["dir_rcpt_cac_" + eng] = statistics.median(cac)
    b.detail("RCPT/s %s, %d sessions, %d RCPTs per run: uncached %s, cached (%d users) %s"
             % (eng, RCPT_SESSIONS, n, ", ".join("%.0f" % x for x in unc), CACHED_SET,
                ", ".join("%.0f" % x for x in cac)))


def s10_auth(R, b, eng, srv):
    """AUTH PLAIN/s, AUTH_SESSIONS connections at a time (a login each)."""
    base = ["auth", "--port", str(srv.port), "--sessions", str(AUTH_SESSIONS),
            "--password", PASSWORD, "--users", "1000"]
    warm = load(R, base + ["--count", "100"], 120)["rate"]
    n = max(100, min(5000, int(warm * R.SECS)))
    runs = [load(R, base + ["--count", str(n)], 120)["rate"] for _ in range(ROUNDS)]
    b.r["dir_auth_" + eng] = statistics.median(runs)
    b.detail("AUTH PLAIN/s %s, %d sessions, %d logins per run: %s"
             % (eng, AUTH_SESSIONS, n, ", ".join("%.0f" % x for x in runs)))


def s11_accept(R, b, insts):
    """Accept, 100 sessions, delivery paused, on the config backend and each
    engine: smtp-source to one user (cached lookups after the first), and
    smtpload with recipients drawn at random among all USERS."""
    sent = {k: 0 for k in insts}
    fixed = lambda srv, m: R.source(srv.port, ACCEPT_SESSIONS, m, to=FMT % 1)
    for srv in insts.values():                    # warm-up
        R.timed(fixed(srv, 1000), 120)
    m = R.calibrate_m(1000 / R.timed(fixed(insts["config"], 1000), 120), ACCEPT_SESSIONS)
    for k in sent:
        sent[k] += 1000 + (1000 if k == "config" else 0)
    per = max(10, int(m / ACCEPT_SESSIONS))
    fx = {k: [] for k in insts}
    rnd = {k: [] for k in insts}
    cpu = {k: 0.0 for k in insts}
    keys = list(insts)
    for i in range(ACCEPT_ROUNDS):         # alternate, each first in turn: drift hits all
        for k in keys[i % 3:] + keys[:i % 3]:
            srv = insts[k]
            c0 = R.cpu_of(srv)
            fx[k].append(m / R.timed(fixed(srv, m), 120))
            cpu[k] += R.cpu_of(srv) - c0
            res = load(R, ["latency", "--port", str(srv.port), "--sessions",
                           str(ACCEPT_SESSIONS), "--messages", str(per), "--warmup", "2",
                           "--rcpt-users", str(USERS), "--rcpt-fmt", FMT, "--seed",
                           str(i + 1)], 120)
            rnd[k].append(res["rate"])
            sent[k] += m + ACCEPT_SESSIONS * (per + 2)
    for k in insts:
        b.r["dir_acc_fix_" + k] = statistics.median(fx[k])
        b.r["dir_acc_rnd_" + k] = statistics.median(rnd[k])
        b.r["dir_acc_cpu_" + k] = cpu[k] / (ACCEPT_ROUNDS * m)
        b.detail("accept %s, %d sessions: one recipient (smtp-source, m=%d) %s msg/s, "
                 "%.0f µs CPU/msg; random recipients among %d (smtpload, %d msgs/session) "
                 "%s msg/s" % (k, ACCEPT_SESSIONS, m, ", ".join("%.0f" % x for x in fx[k]),
                               1e6 * cpu[k] / (ACCEPT_ROUNDS * m), USERS, per,
                               ", ".join("%.0f" % x for x in rnd[k])))
    time.sleep(0.5)
    for k, srv in insts.items():
        if srv.queued() != sent[k]:
            R.odd("accept %s: %d messages in the queue, %d sent" % (k, srv.queued(), sent[k]))


def s9_to_11(R, b):
    users = user_file(R, b)
    dirs = {eng: engine(R, b, eng, users) for eng in ("sqlite", "mariadb")}
    insts = {"config": R.Indimaild(b, "dir-config", "accept").start()}
    for eng, text in dirs.items():
        insts[eng] = R.Indimaild(b, "dir-" + eng, "accept", directory=text, auth=True).start()
    for eng in dirs:
        R.log("-- %s: RCPT and AUTH" % eng)
        s9_rcpt(R, b, eng, insts[eng])
        s10_auth(R, b, eng, insts[eng])
    b.r["dir_rcpt_config"] = statistics.median(
        [rcpt_rate(R, insts["config"], k * 30000, 20000, False) for k in range(ROUNDS)])
    R.log("-- accept with %d users" % USERS)
    s11_accept(R, b, insts)
    for srv in insts.values():
        srv.stop()
    if getattr(b, "mariadb", None):
        b.mariadb.stop()


# ---------------------------------------------------------------- table

def table(R, b):
    g = b.r.get
    met = lambda ok: "met" if ok else "**missed**"
    na = R.Cell(text="n/a (indimaild's directory)")
    name = {"sqlite": "SQLite", "mariadb": "MariaDB", "config": "config backend"}
    rc = g("dir_rcpt_config")
    b.row("9. RCPT/s, %d sessions, config backend (no lookup: the SMTP path's and "
          "client's ceiling)" % RCPT_SESSIONS, R.Cell(rc, unit="RCPT/s"), na, "—", "")
    for eng in ("sqlite", "mariadb"):
        for kind, label in (("unc", "uncached (each RCPT a new user)"),
                            ("cac", "cached (%d users again and again)" % CACHED_SET)):
            v = g("dir_rcpt_%s_%s" % (kind, eng))
            t = ("%s of the config backend's" % pct(v, rc)) if v and rc else ""
            b.row("9. RCPT/s, %s, %s, %s users" % (name[eng], label, "{:,}".format(USERS)),
                  R.Cell(v, unit="RCPT/s"), na, "—", t)
    d = g("dir_mariadb_per_rcpt")
    if d:
        b.row("9. MariaDB work per uncached RCPT (SHOW GLOBAL STATUS, /proc)",
              R.Cell(text="%.2f statements executed, %.2f queries, %.0f µs mariadbd CPU"
                     % (d["Com_stmt_execute"], d["Questions"], 1e6 * d["cpu"])), na, "—", "")
    for eng in ("sqlite", "mariadb"):
        v = g("dir_auth_" + eng)
        b.row("10. AUTH PLAIN/s, %d sessions in parallel, %s (yescrypt: bounded by the "
              "hash cost and libuv's 4 pool threads × 2 workers on 2 cores)"
              % (AUTH_SESSIONS, name[eng]), R.Cell(v, unit="AUTH/s"), na, "—", "")
    base_f, base_r = g("dir_acc_fix_config"), g("dir_acc_rnd_config")
    for kind, label, base in (("fix", "one recipient (smtp-source)", base_f),
                              ("rnd", "random recipients among %s users (smtpload)"
                               % "{:,}".format(USERS), base_r)):
        for eng in ("config", "sqlite", "mariadb"):
            v = g("dir_acc_%s_%s" % (kind, eng))
            cell = R.Cell(v, unit="msg/s")
            if kind == "fix" and v and g("dir_acc_cpu_" + eng):
                cell = R.Cell(text="%s (CPU %s)" % (cell, R.Cell(1e6 * g("dir_acc_cpu_" + eng),
                                                                 unit="µs/msg")))
            t = ""
            if eng != "config" and v and base:
                t = "÷ config: %s" % R.fmt_ratio(v, base)
                if kind == "fix":
                    t += "; cached lookups cost < 5%%: %s (throughput %+.1f%%)" % (
                        met(v >= 0.95 * base), 100 * (v / base - 1))
            sq = g("dir_acc_%s_sqlite" % kind)
            if eng == "mariadb" and v and sq:
                t += "; ÷ SQLite: %s" % R.fmt_ratio(v, sq)
                if kind == "rnd":
                    t += "; within 20%% of SQLite: %s" % met(v >= 0.8 * sq)
            b.row("11. accept, %d sessions, %s, %s" % (ACCEPT_SESSIONS, label, name[eng]),
                  cell, na, "—", t)


def pct(v, base):
    return "%.0f%%" % (100.0 * v / base)

"""bench/destbench.py: scenario 13 of `make bench`, a destination that is down.

Imported by bench/run, whose helpers it uses (passed in as R). Each server
relays everything (indimaild: routes["*"], Postfix: relayhost) to a
loopback port where nothing listens, so every connection is refused.
smtp-source queues N messages (100,000; BENCH_DOWN_MESSAGES for a smaller
run) over 100 sessions with delivery on, as a real queue fills while its
destination is down. Then, over a fixed WINDOW with nothing arriving, the
bench measures what holding that queue costs: CPU seconds of the server's
processes (all of them: the SMTP side is idle), RSS at the end of the
processes that hold the queue (indimaild's queue manager; Postfix's qmgr
and smtp clients), and from
the log the delivery attempts (indimaild: event=deferred lines, one per
job, each job one connection attempt; Postfix: status=deferred lines that
tried a connection, not "delivery temporarily suspended") and every
deferral line. The same counts are given for the injection as well.

Issue 14 item 2 (the bounded active set): before the window the bench waits
until the queue manager knows every message and has settled (its CPU under
SETTLE_PCT % of a core over SETTLE_QUIET steps of SETTLE_STEP seconds in a
row, at most SETTLE_MAX seconds; how long it took is reported), and the
window also gives the CPU of the queue-holding processes alone as a
percentage of one core. BENCH_DOWN_MESSAGES=1000000 is the
million-message row of docs/benchmarks.md.

Also measured, from the logs' timestamps after the fact (nothing polls the
queue while it fills): the accept rate over each tenth of the queue (does
accepting slow down as the queue grows?); the disk the queue takes per
message (du); the queue manager's peak RSS (VmHWM). Then indimaild is
restarted once with the whole queue, as after a reboot: the time until
its queue manager has scanned the queue (event=queue_scanned) and until
it has settled, and its RSS then. BENCH_DOWN_POSTFIX=0 leaves Postfix out
(its queueing of a million takes about half an hour here): the table then
says so in Postfix's column. BENCH_DOWN_BACKEND=fs (or wal) runs
indimaild on that queue.backend instead of the default, segment.
"""
import os
import re
import shutil
import socket
import time

N = int(os.environ.get("BENCH_DOWN_MESSAGES", "100000"))   # BENCH_DOWN_WINDOW: the window
SESSIONS = 100
WINDOW = int(os.environ.get("BENCH_DOWN_WINDOW", "60"))   # seconds of steady state measured
INJECT_TIMEOUT = max(600, N // 400)     # smtp-source at 400 messages/s at worst
SETTLE_PCT = 5
SETTLE_STEP = 5
SETTLE_QUIET = 3
SETTLE_MAX = int(os.environ.get("BENCH_DOWN_SETTLE", "600"))
POSTFIX = os.environ.get("BENCH_DOWN_POSTFIX", "1") != "0"
BACKEND = os.environ.get("BENCH_DOWN_BACKEND", "segment")
NO_POSTFIX = "Postfix not run at this size"
RESTART_MAX = 900                      # seconds for the queue manager's start-up scan
RESTART_WINDOW = 30                    # seconds of CPU measured once it has settled again
# bench/run's overall deadline grows with the queue: Postfix takes about
# 1,000 messages/s here, then settles, and indimaild is restarted once
EXTRA_BUDGET = max(0, N - 100000) * 5 // 1000
TIME = re.compile(r"(\d\d):(\d\d):(\d\d(?:\.\d+)?)")


def closed_port(R):
    """A loopback port that refuses every connection for the whole scenario:
    a socket bound to it that never listens. A port merely free when asked
    is not enough at a million: minutes later another program on the
    machine may listen there, and the queue goes to it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    R.P.on_cleanup("destbench: closed port", s.close)
    return s.getsockname()[1]


def ind_counts(text):
    return dict(deferred=len(re.findall(r" event=deferred ", text)),
                down=len(re.findall(r" event=destination_down ", text)),
                probes=len(re.findall(r" event=destination_probe ", text)),
                scans=len(re.findall(r" event=queue_scanned ", text)))


def pf_counts(text):
    deferred = re.findall(r"status=deferred \(([^\n]*)", text)
    tried = [d for d in deferred if "temporarily suspended" not in d]
    return dict(deferred=len(deferred), attempts=len(tried))


def pf_log(pf):
    try:
        with open(os.path.join(pf.dir, "maillog"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def inject(R, srv):
    t0 = time.monotonic()
    R.run(R.source(srv.port, SESSIONS, N), INJECT_TIMEOUT)
    return time.monotonic() - t0


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def log_from(path, offset):
    """The text of the log at path from byte offset on."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def log_size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def ind_queue_pids(srv):
    """indimaild's queue manager (its pid from the log, remembered while it
    lives: the log of a million messages is too big to read every 5 s)."""
    pid = getattr(srv, "qmgr_pid", None)
    if pid and pid in srv.pids():
        return [pid]
    m = re.findall(r" qmgr\[(\d+)\] ", log_from(srv.log, getattr(srv, "log_start", 0)))
    srv.qmgr_pid = int(m[-1]) if m and int(m[-1]) in srv.pids() else None
    return [srv.qmgr_pid] if srv.qmgr_pid else []


def pf_queue_pids(srv):
    """Postfix's qmgr and smtp clients."""
    return [p for p in srv.pids() if comm(p) in ("qmgr", "smtp")]


def ind_active(R, srv):
    """`indimail queue active` of indimaild's queue manager, and how many
    messages it knows (the active set, those being loaded, those outside)."""
    try:
        out = R.run([os.path.join(R.BIN, "indimail"), "-c", srv.conf, "queue", "active"], 60,
                    cwd=srv.dir)
    except Exception as e:   # busy or restarting: not known yet
        return str(e), 0
    m = re.search(r"active (\d+) limit \d+ loading (\d+) waiting (\d+)", out)
    return out.strip().splitlines()[0] if out.strip() else "", \
        sum(map(int, m.groups())) if m else 0


def caught_up(R, srv):
    """Seconds until indimaild's queue manager knows every message queued
    (a queue manager that does not know of some messages yet is not
    settled, however quiet)."""
    t0 = time.monotonic()
    R.wait_for(lambda: ind_active(R, srv)[1] >= N, SETTLE_MAX, step=2,
               what="indimaild's queue manager knows every message")
    return time.monotonic() - t0


def pids_cpu(pids):
    """CPU seconds (user + system, all threads) used so far by pids."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle(srv, queue_pids):
    """Seconds until the queue-holding processes use under SETTLE_PCT % of a
    core over SETTLE_QUIET steps of SETTLE_STEP seconds in a row (bounded
    by SETTLE_MAX): at a million one quiet step came in the middle of the
    queue manager's parking (docs/benchmarks.md, "A million queued")."""
    t0, quiet = time.monotonic(), 0
    while time.monotonic() - t0 < SETTLE_MAX and quiet < SETTLE_QUIET:
        pids = queue_pids(srv)
        c0 = pids_cpu(pids)
        time.sleep(SETTLE_STEP)
        quiet = quiet + 1 if (pids_cpu(pids) - c0) * 100 / SETTLE_STEP < SETTLE_PCT else 0
    return time.monotonic() - t0


def hwm(pids):
    """Sum of the peak RSS (VmHWM) of pids, in bytes."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        except OSError:
            continue
        total += int(m.group(1)) * 1024 if m else 0
    return total


def seconds_of_day(line):
    """The time of day of a log line, in seconds (None without one)."""
    m = TIME.search(line[:40])
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def stamps(text, needle):
    """Seconds since the first, of each line of text holding needle."""
    out, day, last, i = [], 0, None, text.find(needle)
    while i >= 0:
        start = text.rfind("\n", 0, i) + 1
        t = seconds_of_day(text[start:start + 40])
        i = text.find(needle, i + len(needle))
        if t is None:
            continue
        if last is not None and t + day < last - 3600:   # past midnight
            day += 86400
        last = t + day
        out.append(last)
    out.sort()
    return [t - out[0] for t in out] if out else []


def tenths(ts):
    """Messages/s over each tenth of the queue (ts: when each was queued)."""
    n = len(ts)
    if n < 100:
        return []
    rates = []
    for k in range(10):
        a, z = ts[k * n // 10], ts[(k + 1) * n // 10 - 1]
        rates.append((n // 10) / max(z - a, 0.001))
    return rates


def disk(R, path):
    """(bytes, inodes) that the tree at path takes (du)."""
    kib = R.run(["du", "-sk", path], 600).split()[0]
    inodes = R.run(["du", "-s", "--inodes", path], 600).split()[0]
    return int(kib) * 1024, int(inodes)


def window(R, srv, logtext, queue_pids):
    """(cpu seconds of every process, rss bytes of the processes that hold
    the queue at the end, log text before, log text after, cpu seconds of
    the processes that hold the queue, seconds to settle first)."""
    settled = settle(srv, queue_pids)
    before = logtext()
    cpu0, pids = R.cpu_of(srv), queue_pids(srv)
    qcpu0 = pids_cpu(pids)
    time.sleep(WINDOW)
    cpu = R.cpu_of(srv) - cpu0
    qcpu = pids_cpu(pids) - qcpu0
    rss = R.mem_of(queue_pids(srv))[0]
    return cpu, rss, before, logtext(), qcpu, settled


def restart(R, srv):
    """Stops indimaild and starts it again on its whole queue, as after a
    reboot: seconds until its queue manager logged queue_scanned, seconds
    until it settled, its RSS then and its peak RSS, the queue_scanned line."""
    srv.stop()
    srv.log_start, srv.qmgr_pid = log_size(srv.log), None
    t0 = time.monotonic()
    srv.start()
    m = R.wait_for(lambda: re.search(r"^.* event=queue_scanned .*$",
                                     log_from(srv.log, srv.log_start), re.M),
                   RESTART_MAX, step=0.5, what="queue_scanned after the restart")
    scan = time.monotonic() - t0
    start = re.search(r"^.* event=qmgr_start .*$", log_from(srv.log, srv.log_start), re.M)
    walk = seconds_of_day(m.group(0)) - seconds_of_day(start.group(0)) if start else -1
    settled = settle(srv, ind_queue_pids)
    pids = ind_queue_pids(srv)
    cpu0 = pids_cpu(pids)
    time.sleep(RESTART_WINDOW)
    pct = (pids_cpu(pids) - cpu0) * 100 / RESTART_WINDOW
    return dict(scan=scan, walk=walk, settled=scan + settled, rss=R.mem_of(pids)[0],
                hwm=hwm(pids), line=m.group(0), pct=pct, active=ind_active(R, srv)[0])


def run_indimaild(R, b):
    port = closed_port(R)
    srv = R.Indimaild(b, "down", "relay", sink_port=port, backend=BACKEND).start()
    try:
        secs = inject(R, srv)
        inject_cpu = pids_cpu(ind_queue_pids(srv))
        R.wait_for(lambda: srv.queued() >= N, 60, step=0.5, what="indimaild queue holds N")
        caught = caught_up(R, srv)
        cpu, rss, before, after, qcpu, settled = window(R, srv, srv.logtext, ind_queue_pids)
        settled += caught
        peak = hwm(ind_queue_pids(srv))
        active = ind_active(R, srv)[0]
        used, inodes = disk(R, srv.queue)
        again = restart(R, srv)
    finally:
        srv.stop()
        drop_queue(srv.queue)
    during, total = ind_counts(before), ind_counts(after)
    steady = {k: total[k] - during[k] for k in total}
    m = re.search(r"event=destination_down [^\n]*messages=(\d+)", after)
    rates = tenths(stamps(before, " event=queued "))
    b.r["down_ind"] = dict(cpu=cpu, rss=rss, inject=secs, during=during, steady=steady,
                           qpct=qcpu * 100 / WINDOW, settled=settled, hwm=peak,
                           disk=used / N, inodes=inodes / N, rates=rates, restart=again,
                           caught=caught)
    b.detail("destination down, indimaild: %d messages queued in %.1f s (during: %d deferred "
             "lines = connection attempts, %d down / %d probe lines; first down line "
             "messages=%s); settled in %.0f s; then %d s: CPU %.2f s (queue manager %.2f s = "
             "%.1f %% of a core), RSS %.1f MiB, %d deferred lines, %d down / "
             "%d probe lines, %d full rescans" % (
                 N, secs, during["deferred"], during["down"], during["probes"],
                 m.group(1) if m else "?", settled, WINDOW, cpu, qcpu, qcpu * 100 / WINDOW,
                 rss / 2**20, steady["deferred"], steady["down"], steady["probes"],
                 steady["scans"]))
    b.detail("destination down, indimaild: the queue manager used %.1f s of CPU while the "
             "messages were queued (%.0f %% of a core) and knew every message %.1f s after "
             "the last was queued; after the window `indimail queue active`: %s" % (
                 inject_cpu, inject_cpu * 100 / secs, caught, active))
    b.detail("destination down, indimaild: queue manager peak RSS (VmHWM) %.1f MiB; queue "
             "on disk %.0f bytes and %.2f inodes per message (du); accept rate over each "
             "tenth of the queue (event=queued timestamps): %s msg/s" % (
                 peak / 2**20, used / N, inodes / N, " ".join("%.0f" % r for r in rates)))
    b.detail("destination down, indimaild restarted on the whole queue: queue_scanned after "
             "%.1f s (%.2f s after qmgr_start), settled after %.1f s, then over %d s its "
             "queue manager used %.1f %% of a core, RSS %.1f MiB (peak %.1f MiB), "
             "`indimail queue active`: %s; %s" % (
                 again["scan"], again["walk"], again["settled"], RESTART_WINDOW, again["pct"],
                 again["rss"] / 2**20, again["hwm"] / 2**20, again["active"],
                 again["line"].strip()))


def run_postfix(R, b):
    port = closed_port(R)
    srv = R.Postfix(b, "down", "relay", sink_port=port).start()
    try:
        secs = inject(R, srv)
        cpu, rss, before, after, qcpu, settled = window(R, srv, lambda: pf_log(srv),
                                                        pf_queue_pids)
        peak = hwm(pf_queue_pids(srv))
        used, inodes = disk(R, os.path.join(srv.dir, "spool"))
    finally:
        srv.stop()
        drop_queue(os.path.join(srv.dir, "spool"))
    during, total = pf_counts(before), pf_counts(after)
    steady = {k: total[k] - during[k] for k in total}
    rates = tenths(stamps(before, ": message-id="))
    b.r["down_pf"] = dict(cpu=cpu, rss=rss, inject=secs, during=during, steady=steady,
                          qpct=qcpu * 100 / WINDOW, settled=settled, hwm=peak,
                          disk=used / N, inodes=inodes / N, rates=rates)
    b.detail("destination down, Postfix: %d messages queued in %.1f s (during: %d deferred "
             "lines, %d with a connection attempt); settled in %.0f s; then %d s: CPU %.2f s "
             "(qmgr + smtp %.2f s = %.1f %% of a core), RSS %.1f MiB, "
             "%d deferred lines, %d connection attempts" % (
                 N, secs, during["deferred"], during["attempts"], settled, WINDOW, cpu, qcpu,
                 qcpu * 100 / WINDOW, rss / 2**20, steady["deferred"], steady["attempts"]))
    b.detail("destination down, Postfix: qmgr + smtp peak RSS (VmHWM) %.1f MiB; queue on "
             "disk %.0f bytes and %.2f inodes per message (du of the spool); accept rate over "
             "each tenth of the queue (cleanup message-id= timestamps): %s msg/s" % (
                 peak / 2**20, used / N, inodes / N, " ".join("%.0f" % r for r in rates)))


def drop_queue(path):
    """A stopped server's queue (gigabytes at a million) goes at once, also
    when the temp dir is kept; BENCH_KEEP=1 keeps it."""
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


def s13(R, b):
    run_indimaild(R, b)
    if POSTFIX:
        run_postfix(R, b)
    else:
        b.detail("destination down, Postfix: %s (BENCH_DOWN_POSTFIX=0)" % NO_POSTFIX)


def table(R, b):
    i, p = b.r.get("down_ind"), b.r.get("down_pf")
    if not i and not p:
        return
    label = "13. a destination down with %s queued%s" % ("{:,}".format(N),
        "" if BACKEND == "segment" else ", queue.backend = " + BACKEND)

    def cell(r, fn, unit=""):
        return R.Cell(fn(r), unit=unit) if r else R.Cell(text="n/a" if POSTFIX else NO_POSTFIX)

    def pair(r, fn_a, fn_b, unit):
        """Two numbers in one cell: "a / b"."""
        if not r:
            return cell(r, None)
        return R.Cell(text="%s / %s" % (R.Cell(fn_a(r), unit=unit), R.Cell(fn_b(r), unit=unit)))
    b.row("%s: queueing time (smtp-source, 100 sessions)" % label,
          cell(i, lambda r: r["inject"], "s"), cell(p, lambda r: r["inject"], "s"), None, "")
    first = lambda r: r["rates"][0] if r["rates"] else None
    last = lambda r: r["rates"][-1] if r["rates"] else None
    b.row("%s: accept rate, first / last tenth of the queue" % label,
          pair(i, first, last, "msg/s"), pair(p, first, last, "msg/s"), "—", "")
    b.row("%s: queue manager knows every message, after the last was queued" % label,
          cell(i, lambda r: r["caught"], "s"), R.Cell(text="—"), "—", "")
    b.row("%s: settled after the last message" % label,
          cell(i, lambda r: r["settled"], "s"), cell(p, lambda r: r["settled"], "s"), None, "")
    cpu = lambda r: r["cpu"]
    b.row("%s: CPU over %d s, all processes" % (label, WINDOW), cell(i, cpu, "s"),
          cell(p, cpu, "s"), None, "")
    qpct = lambda r: r["qpct"]
    b.row("%s: CPU once settled, queue manager (Postfix: qmgr + smtp)" % label,
          cell(i, qpct, "%"), cell(p, qpct, "%"), None, "< 5 % of a core")
    rss = lambda r: r["rss"] / 2**20
    b.row("%s: RSS at the end, queue manager (Postfix: qmgr + smtp)" % label,
          cell(i, rss, "MiB"), cell(p, rss, "MiB"), None, "< 256 MiB")
    peak = lambda r: r["hwm"] / 2**20
    b.row("%s: peak RSS (VmHWM), queue manager (Postfix: qmgr + smtp)" % label,
          cell(i, peak, "MiB"), cell(p, peak, "MiB"), None, "")
    att_i = (lambda r: r["during"]["deferred"] + r["steady"]["deferred"])
    att_p = (lambda r: r["during"]["attempts"] + r["steady"]["attempts"])
    b.row("%s: connection attempts (queueing + window)" % label, cell(i, att_i),
          cell(p, att_p), None, "a handful, not one per message")
    dl = lambda r: r["during"]["deferred"] + r["steady"]["deferred"]
    b.row("%s: deferral log lines (queueing + window)" % label, cell(i, dl), cell(p, dl),
          None, "")
    per = lambda r: r["disk"]
    b.row("%s: queue on disk per message (du)" % label, cell(i, per, "bytes"),
          cell(p, per, "bytes"), None, "")
    if i:
        b.row("%s: restart on the whole queue, scanned / settled after" % label,
              pair(i["restart"], lambda a: a["scan"], lambda a: a["settled"], "s"),
              R.Cell(text="—"), "—", "")
        b.row("%s: restart on the whole queue, queue manager RSS settled / peak" % label,
              pair(i["restart"], lambda a: a["rss"] / 2**20, lambda a: a["hwm"] / 2**20,
                   "MiB"), R.Cell(text="—"), "—", "< 256 MiB")
        b.row("%s: restart on the whole queue, queue manager CPU once settled" % label,
              R.Cell(i["restart"]["pct"], unit="%"), R.Cell(text="—"), "—", "< 5 % of a core")

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
until the queue manager has settled (its CPU under SETTLE_PCT % of a core
over SETTLE_STEP seconds, at most SETTLE_MAX seconds; how long it took is
reported), and the window also gives the CPU of the queue-holding processes
alone as a percentage of one core. BENCH_DOWN_MESSAGES=1000000 is the
million-message row of docs/benchmarks.md.
"""
import os
import re
import time

N = int(os.environ.get("BENCH_DOWN_MESSAGES", "100000"))   # BENCH_DOWN_WINDOW: the window
SESSIONS = 100
WINDOW = int(os.environ.get("BENCH_DOWN_WINDOW", "60"))   # seconds of steady state measured
INJECT_TIMEOUT = max(600, N // 400)     # smtp-source at 400 messages/s at worst
SETTLE_PCT = 5
SETTLE_STEP = 5
SETTLE_MAX = int(os.environ.get("BENCH_DOWN_SETTLE", "600"))


def closed_port(R):
    """A loopback port with no listener (free when asked)."""
    return R.free_port()


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


def ind_queue_pids(srv):
    """indimaild's queue manager (its pid from the log)."""
    m = re.findall(r" qmgr\[(\d+)\] ", srv.logtext())
    return [int(m[-1])] if m and int(m[-1]) in srv.pids() else []


def pf_queue_pids(srv):
    """Postfix's qmgr and smtp clients."""
    return [p for p in srv.pids() if comm(p) in ("qmgr", "smtp")]


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
    core over SETTLE_STEP seconds (bounded by SETTLE_MAX)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < SETTLE_MAX:
        pids = queue_pids(srv)
        c0 = pids_cpu(pids)
        time.sleep(SETTLE_STEP)
        if (pids_cpu(pids) - c0) * 100 / SETTLE_STEP < SETTLE_PCT:
            break
    return time.monotonic() - t0


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


def run_indimaild(R, b):
    port = closed_port(R)
    srv = R.Indimaild(b, "down", "relay", sink_port=port).start()
    try:
        secs = inject(R, srv)
        R.wait_for(lambda: srv.queued() >= N, 60, step=0.5, what="indimaild queue holds N")
        cpu, rss, before, after, qcpu, settled = window(R, srv, srv.logtext, ind_queue_pids)
    finally:
        srv.stop()
    during, total = ind_counts(before), ind_counts(after)
    steady = {k: total[k] - during[k] for k in total}
    m = re.search(r"event=destination_down [^\n]*messages=(\d+)", after)
    b.r["down_ind"] = dict(cpu=cpu, rss=rss, inject=secs, during=during, steady=steady,
                           qpct=qcpu * 100 / WINDOW, settled=settled)
    b.detail("destination down, indimaild: %d messages queued in %.1f s (during: %d deferred "
             "lines = connection attempts, %d down / %d probe lines; first down line "
             "messages=%s); settled in %.0f s; then %d s: CPU %.2f s (queue manager %.2f s = "
             "%.1f %% of a core), RSS %.1f MiB, %d deferred lines, %d down / "
             "%d probe lines, %d full rescans" % (
                 N, secs, during["deferred"], during["down"], during["probes"],
                 m.group(1) if m else "?", settled, WINDOW, cpu, qcpu, qcpu * 100 / WINDOW,
                 rss / 2**20, steady["deferred"], steady["down"], steady["probes"],
                 steady["scans"]))


def run_postfix(R, b):
    port = closed_port(R)
    srv = R.Postfix(b, "down", "relay", sink_port=port).start()
    try:
        secs = inject(R, srv)
        cpu, rss, before, after, qcpu, settled = window(R, srv, lambda: pf_log(srv),
                                                        pf_queue_pids)
    finally:
        srv.stop()
    during, total = pf_counts(before), pf_counts(after)
    steady = {k: total[k] - during[k] for k in total}
    b.r["down_pf"] = dict(cpu=cpu, rss=rss, inject=secs, during=during, steady=steady,
                          qpct=qcpu * 100 / WINDOW, settled=settled)
    b.detail("destination down, Postfix: %d messages queued in %.1f s (during: %d deferred "
             "lines, %d with a connection attempt); settled in %.0f s; then %d s: CPU %.2f s "
             "(qmgr + smtp %.2f s = %.1f %% of a core), RSS %.1f MiB, "
             "%d deferred lines, %d connection attempts" % (
                 N, secs, during["deferred"], during["attempts"], settled, WINDOW, cpu, qcpu,
                 qcpu * 100 / WINDOW, rss / 2**20, steady["deferred"], steady["attempts"]))


def s13(R, b):
    run_indimaild(R, b)
    run_postfix(R, b)


def table(R, b):
    i, p = b.r.get("down_ind"), b.r.get("down_pf")
    if not i and not p:
        return
    label = "13. a destination down with %s queued" % "{:,}".format(N)

    def cell(r, fn, unit=""):
        return R.Cell(fn(r), unit=unit) if r else R.Cell(text="n/a")
    cpu = lambda r: r["cpu"]
    b.row("%s: CPU over %d s, all processes" % (label, WINDOW), cell(i, cpu, "s"),
          cell(p, cpu, "s"), None, "")
    qpct = lambda r: r["qpct"]
    b.row("%s: CPU once settled, queue manager (Postfix: qmgr + smtp)" % label,
          cell(i, qpct, "%"), cell(p, qpct, "%"), None, "< 5 % of a core")
    rss = lambda r: r["rss"] / 2**20
    b.row("%s: RSS at the end, queue manager (Postfix: qmgr + smtp)" % label,
          cell(i, rss, "MiB"), cell(p, rss, "MiB"), None, "< 256 MiB")
    att_i = (lambda r: r["during"]["deferred"] + r["steady"]["deferred"])
    att_p = (lambda r: r["during"]["attempts"] + r["steady"]["attempts"])
    b.row("%s: connection attempts (queueing + window)" % label, cell(i, att_i),
          cell(p, att_p), None, "a handful, not one per message")
    dl = lambda r: r["during"]["deferred"] + r["steady"]["deferred"]
    b.row("%s: deferral log lines (queueing + window)" % label, cell(i, dl), cell(p, dl),
          None, "")

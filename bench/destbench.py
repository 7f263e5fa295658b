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
"""
import os
import re
import time

N = int(os.environ.get("BENCH_DOWN_MESSAGES", "100000"))   # BENCH_DOWN_WINDOW: the window
SESSIONS = 100
WINDOW = int(os.environ.get("BENCH_DOWN_WINDOW", "60"))   # seconds of steady state measured
INJECT_TIMEOUT = 600


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


def window(R, srv, logtext, queue_pids):
    """(cpu seconds of every process, rss bytes of the processes that hold
    the queue at the end, log text before, log text after)."""
    before = logtext()
    cpu0 = R.cpu_of(srv)
    time.sleep(WINDOW)
    cpu = R.cpu_of(srv) - cpu0
    rss = R.mem_of(queue_pids(srv))[0]
    return cpu, rss, before, logtext()


def run_indimaild(R, b):
    port = closed_port(R)
    srv = R.Indimaild(b, "down", "relay", sink_port=port).start()
    try:
        secs = inject(R, srv)
        R.wait_for(lambda: srv.queued() >= N, 60, step=0.5, what="indimaild queue holds N")
        cpu, rss, before, after = window(R, srv, srv.logtext, ind_queue_pids)
    finally:
        srv.stop()
    during, total = ind_counts(before), ind_counts(after)
    steady = {k: total[k] - during[k] for k in total}
    m = re.search(r"event=destination_down [^\n]*messages=(\d+)", after)
    b.r["down_ind"] = dict(cpu=cpu, rss=rss, inject=secs, during=during, steady=steady)
    b.detail("destination down, indimaild: %d messages queued in %.1f s (during: %d deferred "
             "lines = connection attempts, %d down / %d probe lines; first down line "
             "messages=%s); then %d s: CPU %.2f s, RSS %.1f MiB, %d deferred lines, %d down / "
             "%d probe lines, %d full rescans" % (
                 N, secs, during["deferred"], during["down"], during["probes"],
                 m.group(1) if m else "?", WINDOW, cpu, rss / 2**20, steady["deferred"],
                 steady["down"], steady["probes"], steady["scans"]))


def run_postfix(R, b):
    port = closed_port(R)
    srv = R.Postfix(b, "down", "relay", sink_port=port).start()
    try:
        secs = inject(R, srv)
        cpu, rss, before, after = window(R, srv, lambda: pf_log(srv), pf_queue_pids)
    finally:
        srv.stop()
    during, total = pf_counts(before), pf_counts(after)
    steady = {k: total[k] - during[k] for k in total}
    b.r["down_pf"] = dict(cpu=cpu, rss=rss, inject=secs, during=during, steady=steady)
    b.detail("destination down, Postfix: %d messages queued in %.1f s (during: %d deferred "
             "lines, %d with a connection attempt); then %d s: CPU %.2f s, RSS %.1f MiB, "
             "%d deferred lines, %d connection attempts" % (
                 N, secs, during["deferred"], during["attempts"], WINDOW, cpu, rss / 2**20,
                 steady["deferred"], steady["attempts"]))


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
    rss = lambda r: r["rss"] / 2**20
    b.row("%s: RSS at the end, queue manager (Postfix: qmgr + smtp)" % label, cell(i, rss, "MiB"), cell(p, rss, "MiB"), None, "")
    att_i = (lambda r: r["during"]["deferred"] + r["steady"]["deferred"])
    att_p = (lambda r: r["during"]["attempts"] + r["steady"]["attempts"])
    b.row("%s: connection attempts (queueing + window)" % label, cell(i, att_i),
          cell(p, att_p), None, "a handful, not one per message")
    dl = lambda r: r["during"]["deferred"] + r["steady"]["deferred"]
    b.row("%s: deferral log lines (queueing + window)" % label, cell(i, dl), cell(p, dl),
          None, "")

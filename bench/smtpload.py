#!/usr/bin/python3
"""smtpload: the two SMTP clients of `make bench` that smtp-source lacks.

  smtpload.py latency --port P --sessions S --messages N [--warmup W]
      S sessions, each sending W + N messages in sequence (no pipelining,
      one recipient, 5 KiB payload like smtp-source -l 5120). For each of
      the last N messages of every session it records the time from writing
      the last byte of "\\r\\n.\\r\\n" to reading the complete 250 reply.
      Prints one JSON line: samples, p50_ms, p90_ms, p99_ms, max_ms,
      errors, rate (msg/s over the measured part).

      With --rcpt-users U, each message goes to a recipient drawn at
      random among --rcpt-fmt % i for i in 0..U-1 (scenario 11).

  smtpload.py rcpt --port P --sessions S --first F --count N [--set K]
      S sessions send MAIL once per transaction and then RCPTs, pipelined
      in batches of --batch (then RSET), to --fmt % i: each of F..F+N-1
      once (uncached lookups), or with --set K the K addresses F..F+K-1
      over and over, N RCPTs in all (cached lookups). Every RCPT must get
      250. Prints one JSON line: rcpts, errors, seconds, rate (RCPT/s).

  smtpload.py auth --port P --sessions S --count N --users U --password PW
      S connections at a time, each EHLO, AUTH PLAIN as --fmt % i (i
      cycling over 0..U-1), QUIT; N logins in all, each must get 235.
      Prints one JSON line: auths, errors, seconds, rate (AUTH/s).

  smtpload.py idle --port P --connections N
      Opens N connections (at most --inflight greetings outstanding), reads
      each 220 greeting and then holds the connections open without a
      word. Prints "greeted G failed F" once all are settled, then waits for
      a line on stdin (or --hold seconds) and closes everything.

Only a single-threaded epoll loop: cheap enough that 10,000 connections
or 100 busy sessions cost the machine little next to the server. Every
wait is bounded (--timeout).
"""
import argparse
import base64
import json
import os
import random
import selectors
import socket
import sys
import time

CRLF = b"\r\n"


def message(size, n):
    lines = [b"From: <bench@bench.test>", b"To: <user@bench.test>",
             b"Subject: bench %d" % n,
             b"Message-ID: <%d.%d@client.bench.test>" % (os.getpid(), n),
             b"Date: Thu, 01 Jan 2026 00:00:00 +0000", b""]
    body = (b"x" * 78 + CRLF) * (size // 80)
    body += b"y" * max(0, size - len(body) - 2) + CRLF if size % 80 else b""
    return CRLF.join(lines) + CRLF + body + b".\r\n"


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


class Conn:
    __slots__ = ("sock", "state", "rbuf", "wbuf", "sent", "t0", "reply",
                 "done", "idx")

    def __init__(self, sock, idx):
        self.sock, self.idx = sock, idx
        self.state, self.rbuf, self.wbuf = "greet", b"", b""
        self.sent, self.t0, self.reply, self.done = 0, 0.0, [], False


def connect(port, sel, idx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    c = Conn(s, idx)
    sel.register(s, selectors.EVENT_READ, c)
    return c


def read_replies(c):
    """Reads what is there; returns complete replies as (code, text)."""
    try:
        data = c.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return []
    if not data:
        raise ConnectionError("closed by server")
    c.rbuf += data
    out = []
    while True:
        i = c.rbuf.find(b"\n")
        if i < 0:
            return out
        line, c.rbuf = c.rbuf[:i + 1], c.rbuf[i + 1:]
        c.reply.append(line)
        if len(line) >= 4 and line[3:4] == b"-":
            continue
        code = int(line[:3]) if line[:3].isdigit() else 0
        out.append((code, b"".join(c.reply)))
        c.reply = []


def send(sel, c, data):
    c.wbuf += data
    flush(sel, c)


def flush(sel, c):
    """Writes as much as possible; True when wbuf is empty."""
    while c.wbuf:
        try:
            n = c.sock.send(c.wbuf)
        except (BlockingIOError, InterruptedError):
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
            return False
        c.wbuf = c.wbuf[n:]
    sel.modify(c.sock, selectors.EVENT_READ, c)
    return True


def latency(a):
    sel = selectors.EpollSelector()
    total = a.warmup + a.messages
    msgs = [message(a.size, i) for i in range(8)]
    conns = [connect(a.port, sel, i) for i in range(a.sessions)]
    samples, errors, first_err = [], 0, None
    t_meas0 = t_meas1 = None
    deadline = time.monotonic() + a.timeout
    active = len(conns)
    rng = random.Random(a.seed)

    def finish(c, err=None):
        nonlocal active, errors, first_err
        if c.done:
            return
        c.done = True
        active -= 1
        if err:
            errors += 1
            first_err = first_err or err
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    while active and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1.0):
            c = key.data
            if c.done:
                continue
            try:
                if ev & selectors.EVENT_WRITE:
                    if flush(sel, c) and c.state == "dot":
                        c.t0 = time.perf_counter()
                if not ev & selectors.EVENT_READ:
                    continue
                for code, text in read_replies(c):
                    now = time.perf_counter()
                    st = c.state
                    want = {"greet": 220, "ehlo": 250, "mail": 250, "rcpt": 250,
                            "data": 354, "dot": 250, "quit": 221}[st]
                    if code != want:
                        raise ConnectionError("%s: %r" % (st, text[:200]))
                    if st == "greet":
                        c.state = "ehlo"
                        send(sel, c, b"EHLO client.bench.test\r\n")
                    elif st in ("ehlo", "dot"):
                        if st == "dot":
                            if c.sent >= a.warmup:
                                samples.append(now - c.t0)
                                t_meas1 = time.monotonic()
                            c.sent += 1
                        if c.sent >= total:
                            c.state = "quit"
                            send(sel, c, b"QUIT\r\n")
                        else:
                            if c.sent == a.warmup and t_meas0 is None:
                                t_meas0 = time.monotonic()
                            c.state = "mail"
                            send(sel, c, b"MAIL FROM:<bench@bench.test>\r\n")
                    elif st == "mail":
                        c.state = "rcpt"
                        rcpt = (a.rcpt_fmt % rng.randrange(a.rcpt_users)) if a.rcpt_users \
                            else a.rcpt
                        send(sel, c, b"RCPT TO:<%s>\r\n" % rcpt.encode())
                    elif st == "rcpt":
                        c.state = "data"
                        send(sel, c, b"DATA\r\n")
                    elif st == "data":
                        c.state = "dot"
                        if send(sel, c, msgs[c.sent % len(msgs)]) or not c.wbuf:
                            c.t0 = time.perf_counter()
                    elif st == "quit":
                        finish(c)
                        break
            except (ConnectionError, OSError, ValueError) as e:
                finish(c, str(e))
    timed_out = active > 0
    for c in conns:
        finish(c, "timeout" if timed_out else None)
    samples.sort()
    ms = [s * 1000.0 for s in samples]
    span = (t_meas1 - t_meas0) if t_meas0 and t_meas1 and t_meas1 > t_meas0 else None
    out = {"samples": len(ms), "errors": errors, "first_error": first_err,
           "timed_out": timed_out,
           "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
           "p99_ms": percentile(ms, 99), "max_ms": ms[-1] if ms else None,
           "rate": (len(ms) / span) if span else None}
    print(json.dumps(out), flush=True)
    return 0 if not errors and not timed_out else 1


def idle(a):
    sel = selectors.EpollSelector()
    deadline = time.monotonic() + a.timeout
    greeted = failed = started = 0
    waiting = 0
    held = []
    first_err = None
    while (started < a.connections or waiting) and time.monotonic() < deadline:
        while started < a.connections and waiting < a.inflight:
            try:
                connect(a.port, sel, started)
                waiting += 1
            except OSError as e:
                failed += 1
                first_err = first_err or str(e)
            started += 1
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            try:
                replies = read_replies(c)
                if not replies:
                    continue
                code, text = replies[0]
                if code != 220:
                    raise ConnectionError("greeting %r" % text[:200])
                sel.unregister(c.sock)
                held.append(c.sock)
                greeted += 1
            except (ConnectionError, OSError, ValueError) as e:
                sel.unregister(c.sock)
                c.sock.close()
                failed += 1
                first_err = first_err or str(e)
            waiting -= 1
    failed += waiting  # still not greeted at the deadline
    print("greeted %d failed %d%s" % (greeted, failed,
          (" first_error " + first_err.replace("\n", " ")) if first_err else ""),
          flush=True)
    # Hold until told (a line or EOF on stdin) or --hold seconds.
    import select
    select.select([sys.stdin], [], [], a.hold)
    for s in held:
        s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return 0


# ---- scripted sessions (rcpt, auth): each is a generator that yields
# (bytes to send, the reply codes expected, in order); the loop sends, waits
# for that many replies, checks them and asks for the next step.

def scripted(a, scripts):
    """Runs sessions from the iterator `scripts` (generators), at most
    a.sessions at a time. Returns (steps done, errors, first error, seconds,
    timed out)."""
    sel = selectors.EpollSelector()
    deadline = time.monotonic() + a.timeout
    live, done, errors, first_err = {}, 0, 0, None
    t0 = time.monotonic()

    def start():
        gen = next(scripts, None)
        if gen is None:
            return False
        c = connect(a.port, sel, 0)
        c.state, c.done = gen, [220]     # state: the script; done: codes awaited
        live[c.sock] = c
        return True

    def finish(c):
        del live[c.sock]
        sel.unregister(c.sock)
        c.sock.close()

    while len(live) < a.sessions and start():
        pass
    while live and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1.0):
            c = key.data
            if c.sock not in live:       # finished earlier in this round
                continue
            try:
                if ev & selectors.EVENT_WRITE:
                    flush(sel, c)
                if not ev & selectors.EVENT_READ:
                    continue
                for code, text in read_replies(c):
                    want = c.done.pop(0)
                    if code != want:
                        raise ConnectionError("%d expected, got %r" % (want, text[:200]))
                    if c.done:
                        continue
                    step = next(c.state, None)
                    if step is None:
                        finish(c)
                        start()
                        break
                    data, c.done = step
                    done += 1
                    send(sel, c, data)
            except (ConnectionError, OSError, ValueError) as e:
                errors += 1
                first_err = first_err or str(e)
                if c.sock in live:
                    finish(c)
                start()
    timed_out = bool(live)
    for c in list(live.values()):
        finish(c)
    return done, errors, first_err, time.monotonic() - t0, timed_out


def rcpt_script(addrs, batch):
    yield b"EHLO client.bench.test\r\n", [250]
    for i in range(0, len(addrs), batch):
        part = addrs[i:i + batch]
        cmds = b"RSET\r\nMAIL FROM:<bench@bench.test>\r\n" + b"".join(
            b"RCPT TO:<%s>\r\n" % x for x in part)
        yield cmds, [250, 250] + [250] * len(part)
    yield b"QUIT\r\n", [221]


def rcpt(a):
    n = a.count
    idx = [a.first + (i % a.set if a.set else i) for i in range(n)]
    addrs = [(a.fmt % i).encode() for i in idx]
    per = (n + a.sessions - 1) // a.sessions
    scripts = iter([rcpt_script(addrs[k:k + per], a.batch) for k in range(0, n, per)])
    _, errors, first, secs, timed_out = scripted(a, scripts)
    out = {"rcpts": n if not errors and not timed_out else None, "errors": errors,
           "first_error": first, "timed_out": timed_out, "seconds": secs,
           "rate": n / secs if not errors and not timed_out else None}
    print(json.dumps(out), flush=True)
    return 0 if not errors and not timed_out else 1


def auth_script(user, password):
    cred = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    yield b"EHLO client.bench.test\r\n", [250]
    yield b"AUTH PLAIN " + cred + b"\r\n", [235]
    yield b"QUIT\r\n", [221]


def auth(a):
    scripts = (auth_script(a.fmt % (i % a.users), a.password) for i in range(a.count))
    _, errors, first, secs, timed_out = scripted(a, scripts)
    ok = not errors and not timed_out
    out = {"auths": a.count if ok else None, "errors": errors, "first_error": first,
           "timed_out": timed_out, "seconds": secs, "rate": a.count / secs if ok else None}
    print(json.dumps(out), flush=True)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--port", type=int, required=True)
    lat.add_argument("--sessions", type=int, default=10)
    lat.add_argument("--messages", type=int, default=50, help="measured per session")
    lat.add_argument("--warmup", type=int, default=5, help="unmeasured first messages per session")
    lat.add_argument("--size", type=int, default=5120)
    lat.add_argument("--rcpt", default="user@remote.bench")
    lat.add_argument("--timeout", type=float, default=120)
    lat.add_argument("--rcpt-users", type=int, default=0)
    lat.add_argument("--rcpt-fmt", default="u%d@bench.test")
    lat.add_argument("--seed", type=int, default=1)
    rc = sub.add_parser("rcpt")
    rc.add_argument("--port", type=int, required=True)
    rc.add_argument("--sessions", type=int, default=10)
    rc.add_argument("--first", type=int, default=0)
    rc.add_argument("--count", type=int, required=True)
    rc.add_argument("--set", type=int, default=0)
    rc.add_argument("--batch", type=int, default=50)
    rc.add_argument("--fmt", default="u%d@bench.test")
    rc.add_argument("--timeout", type=float, default=120)
    au = sub.add_parser("auth")
    au.add_argument("--port", type=int, required=True)
    au.add_argument("--sessions", type=int, default=50)
    au.add_argument("--count", type=int, required=True)
    au.add_argument("--users", type=int, default=1000)
    au.add_argument("--password", required=True)
    au.add_argument("--fmt", default="u%d@bench.test")
    au.add_argument("--timeout", type=float, default=120)
    idl = sub.add_parser("idle")
    idl.add_argument("--port", type=int, required=True)
    idl.add_argument("--connections", type=int, default=1000)
    idl.add_argument("--inflight", type=int, default=200)
    idl.add_argument("--timeout", type=float, default=120)
    idl.add_argument("--hold", type=float, default=120)
    a = p.parse_args()
    return {"latency": latency, "idle": idle, "rcpt": rcpt, "auth": auth}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Sends numbered messages (X-Seq: N) over several connections, like a busy
client that keeps going while the server is killed and restarted: a lost
connection is simply opened again. Every N the server acknowledged (250 at
the end of DATA) is appended to OUT at once, so the spec knows exactly what
must not be lost.

usage: acked_load.py HOST PORT COUNT PARALLEL SECONDS OUT
Stops after COUNT acknowledged messages or SECONDS, whichever comes first.
"""
import smtplib
import sys
import threading
import time

host, port = sys.argv[1], int(sys.argv[2])
count, parallel, seconds = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
out = open(sys.argv[6], "a", buffering=1)
lock = threading.Lock()
state = {"next": 0, "acked": 0}
deadline = time.time() + seconds


def take():
    with lock:
        if state["acked"] + 0 >= count or time.time() > deadline:
            return None
        state["next"] += 1
        return state["next"]


def acked(n):
    with lock:
        state["acked"] += 1
        out.write("%d\n" % n)


def worker():
    while time.time() < deadline and state["acked"] < count:
        try:
            s = smtplib.SMTP(host, port, timeout=10)
            s.ehlo("load.example.test")
            while True:
                n = take()
                if n is None:
                    s.quit()
                    return
                msg = ("Subject: load %d\r\nX-Seq: %d\r\n\r\nmessage %d\r\n"
                       % (n, n, n))
                s.sendmail("load@example.test", ["sink@remote.test"], msg)
                acked(n)
        except Exception:
            time.sleep(0.1)


threads = [threading.Thread(target=worker) for _ in range(parallel)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("acked", state["acked"], "sent", state["next"])

#!/usr/bin/env python3
"""tls_probe: one TLS connection, by STARTTLS on an SMTP port ("smtp") or
straight to an HTTPS port ("https", the admin API); prints the SHA-256
fingerprint of the certificate the server presented ("fp HEX"), flushed at
once. With WAITFILE it then keeps the connection open until that file
exists (at most 30 s) and uses it once: NOOP over TLS, printing "noop
CODE", or GET /v1/queue without a token, printing "status CODE". The
reload spec checks that a connection opened before a reload still works.

    tls_probe.py smtp|https PORT [WAITFILE]
"""
import hashlib
import os
import smtplib
import socket
import ssl
import sys
import time

WAIT_SECONDS = 30


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_for(path):
    deadline = time.time() + WAIT_SECONDS
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)


def print_fp(sock):
    der = sock.getpeercert(binary_form=True)
    print("fp " + hashlib.sha256(der).hexdigest(), flush=True)


def smtp(port, waitfile):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("probe.test.example")
    s.starttls(context=context())
    print_fp(s.sock)
    if waitfile:
        wait_for(waitfile)
        s.ehlo("probe.test.example")
        print("noop %d" % s.noop()[0], flush=True)
    s.quit()


def https(port, waitfile):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    s = context().wrap_socket(raw)
    print_fp(s)
    if waitfile:
        wait_for(waitfile)
        s.sendall(b"GET /v1/queue HTTP/1.1\r\nHost: probe\r\n"
                  b"Connection: close\r\n\r\n")
        line = s.makefile("rb").readline().decode("ascii", "replace")
        print("status " + (line.split() + ["none", "none"])[1], flush=True)
    s.close()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("smtp", "https"):
        sys.exit("usage: tls_probe.py smtp|https PORT [WAITFILE]")
    mode = smtp if sys.argv[1] == "smtp" else https
    mode(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""https_probe: one TLS connection to an HTTPS port (the admin API); prints
the SHA-256 fingerprint of the certificate the server presented ("fp HEX"),
flushed at once. With a second argument WAITFILE it then keeps the
connection open until that file exists (at most 30 s), sends one request
on it (GET /v1/queue without a token) and prints "status CODE": the reload
spec checks that a connection opened before a reload still works.

    https_probe.py PORT [WAITFILE]
"""
import hashlib
import os
import socket
import ssl
import sys
import time

WAIT_SECONDS = 30


def main():
    port = int(sys.argv[1])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    s = ctx.wrap_socket(raw)
    der = s.getpeercert(binary_form=True)
    print("fp " + hashlib.sha256(der).hexdigest(), flush=True)
    if len(sys.argv) > 2:
        deadline = time.time() + WAIT_SECONDS
        while not os.path.exists(sys.argv[2]) and time.time() < deadline:
            time.sleep(0.05)
        s.sendall(b"GET /v1/queue HTTP/1.1\r\nHost: probe\r\n"
                  b"Connection: close\r\n\r\n")
        line = s.makefile("rb").readline().decode("ascii", "replace")
        print("status " + (line.split() + ["none", "none"])[1], flush=True)
    s.close()


if __name__ == "__main__":
    main()

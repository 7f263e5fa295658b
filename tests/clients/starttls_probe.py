#!/usr/bin/env python3
"""starttls_probe: one STARTTLS session; prints the SHA-256 fingerprint of
the certificate the server presented ("fp HEX"), flushed at once. With a
second argument WAITFILE it then keeps the session open until that file
exists (at most 30 s), says NOOP over TLS and prints "noop CODE": the
reload spec checks that a session opened before a reload still works.

    starttls_probe.py PORT [WAITFILE]
"""
import hashlib
import os
import smtplib
import ssl
import sys
import time

WAIT_SECONDS = 30


def main():
    port = int(sys.argv[1])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("probe.test.example")
    s.starttls(context=ctx)
    der = s.sock.getpeercert(binary_form=True)
    print("fp " + hashlib.sha256(der).hexdigest(), flush=True)
    if len(sys.argv) > 2:
        deadline = time.time() + WAIT_SECONDS
        while not os.path.exists(sys.argv[2]) and time.time() < deadline:
            time.sleep(0.05)
        s.ehlo("probe.test.example")
        print("noop %d" % s.noop()[0], flush=True)
    s.quit()


if __name__ == "__main__":
    main()

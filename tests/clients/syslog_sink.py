#!/usr/bin/env python3
"""syslog_sink: a syslog receiver for specs. Binds a Unix datagram socket
at SOCK (mode 0666: the daemon's children run as the account), prints
"ready" once bound, then appends each datagram to OUT as one line (our
datagrams never hold a newline) until killed or after 120 s.

    syslog_sink.py SOCK OUT
"""
import os
import socket
import sys
import time

LIFETIME_SECONDS = 120


def main():
    path, out = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.settimeout(1.0)
    print("ready", flush=True)
    deadline = time.time() + LIFETIME_SECONDS
    with open(out, "ab", buffering=0) as f:
        while time.time() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            f.write(data + b"\n")


if __name__ == "__main__":
    main()

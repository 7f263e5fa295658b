#!/usr/bin/python3
"""One request to indimail's admin HTTP API with Python's urllib, over
HTTPS verified against a CA file (the test certificate), connecting to
127.0.0.1 while checking the certificate's name.

  admin_api.py --ca CERT --name mx.test.example --port N [--token T]
               [--body JSON | --body-size N] METHOD PATH

Prints the status, the Content-Type, the WWW-Authenticate header (or
"-"), one line each, then the body.
"""
import argparse
import http.client
import socket
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT = 90  # seconds: a request may run bin/indimail (60 s at most)


def handler(ctx):
    class Conn(http.client.HTTPSConnection):
        """Connects to 127.0.0.1, verifies the certificate for self.host."""

        def connect(self):
            sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
            self.sock = ctx.wrap_socket(sock, server_hostname=self.host)

    class Handler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(Conn, req)

    return Handler(context=ctx)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ca", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token")
    p.add_argument("--body")
    p.add_argument("--body-size", type=int)
    p.add_argument("method")
    p.add_argument("path")
    a = p.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.hostname_checks_common_name = True  # the test certificate has only a CN
    data = None
    if a.body is not None:
        data = a.body.encode()
    elif a.body_size is not None:
        data = b"a" * a.body_size
    req = urllib.request.Request("https://%s:%d%s" % (a.name, a.port, a.path),
                                 data=data, method=a.method)
    if a.token:
        req.add_header("Authorization", "Bearer " + a.token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(handler(ctx))
    try:
        resp = opener.open(req, timeout=TIMEOUT)
        status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    sys.stdout.write("%d\n%s\n%s\n" % (status, headers.get("Content-Type", "-"),
                                       headers.get("WWW-Authenticate", "-")))
    sys.stdout.write(body.decode("utf-8", "replace"))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""spf_zone_server: the zone data of the RFC 7208 test suite served over DNS.

Usage: spf_zone_server.py SUITE.yml[.gz] PORT CONTROL CASES.lua

Reads the suite (the openspf.org YAML that python3-spf ships), writes every
test case to CASES.lua as a Lua table (scenario number, host, helo,
mailfrom, accepted results, explanation), then answers DNS on 127.0.0.1:PORT
with the zone data of the scenario whose number CONTROL holds (read again
for each query, so the spec switches scenarios by rewriting the file).
The zone rules are those of pyspf's own driver (test/testspf.py): an SPF
record also serves as TXT unless the name lists TXT records ("TXT: NONE":
none); "TIMEOUT" makes queries of a type listed before it answered and all
others unanswered; an unknown name is NXDOMAIN, one under "error." a
timeout. CNAMEs are followed inside the zone, as a recursive server would.
"""
import gzip
import socket
import sys

import yaml
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord

MAX_CNAME = 8
TXT_CHUNK = 255


def raw(s):
    """A YAML string as the bytes a zone file would hold."""
    if isinstance(s, bytes):
        return s
    s = str(s)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def txt_rdata(v):
    strings = v if isinstance(v, list) else [v]
    out = []
    for s in strings:
        b = raw(s)
        out.extend([b[i:i + TXT_CHUNK] for i in range(0, len(b), TXT_CHUNK)] or [b""])
    return TXT(out)


def rdata(t, v):
    if t in ("TXT", "SPF"):
        return txt_rdata(v)
    if t == "A":
        return A(v)
    if t == "AAAA":
        return AAAA(v)
    if t == "MX":
        return MX(v[1], v[0])
    if t == "PTR":
        return PTR(v)
    if t == "CNAME":
        return CNAME(v)
    return None


def load_zone(records):
    """One name's records as (type, value) pairs, plus 'TIMEOUT' markers."""
    items, gen, has_txt = [], [], False
    for r in records:
        if r == "TIMEOUT":
            items.append("TIMEOUT")
            continue
        for t, v in r.items():
            if t == "TXT":
                has_txt = True
            elif t == "SPF":
                gen.append(("TXT", v))
            if v != "NONE":
                items.append((t, v))
    return items + ([] if has_txt else gen)


def lookup(zone, name, qtype):
    """(records of name/qtype, timed_out) by testspf.py's rules."""
    out, seen = [], False
    for i in zone[name]:
        if i == "TIMEOUT":
            return out, not seen
        t, v = i
        if t == qtype:
            seen = True
            out.append(v)
        elif v == "TIMEOUT" and t == qtype:
            return out, True
    return out, False


def answer(zone, q):
    # the labels' own bytes: str() escapes a space as \032
    name = ".".join(l.decode("latin-1") for l in q.q.qname.label).lower()
    qtype = QTYPE[q.q.qtype]
    reply = q.reply()
    for _ in range(MAX_CNAME):
        if name not in zone:
            if name.startswith("error."):
                return None
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        cn, _ = lookup(zone, name, "CNAME")
        if cn and qtype != "CNAME":
            reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(cn[0]), ttl=60))
            name = cn[0].rstrip(".").lower()
            continue
        vals, timed_out = lookup(zone, name, qtype)
        if timed_out:
            return None
        for v in vals:
            rd = rdata(qtype, v)
            if rd is not None:
                reply.add_answer(RR(name + ".", getattr(QTYPE, qtype), rdata=rd, ttl=60))
        return reply
    reply.header.rcode = RCODE.SERVFAIL
    return reply


def lua_str(s):
    return '"' + "".join(c if c.isalnum() or c in " .-_@:/" else "\\%03d" % b
                         for c, b in ((chr(b), b) for b in raw(s))) + '"'


def write_cases(scenarios, path):
    with open(path, "w") as f:
        f.write("return {\n")
        for n, s in enumerate(scenarios):
            for tid, t in sorted(s.get("tests", {}).items()):
                res = t["result"] if isinstance(t["result"], list) else [t["result"]]
                f.write("{ scenario = %d, id = %s, host = %s, helo = %s, mailfrom = %s, "
                        "result = { %s }, explanation = %s },\n" % (
                            n, lua_str(tid), lua_str(t.get("host", "")),
                            lua_str(t.get("helo", "")), lua_str(t.get("mailfrom", "")),
                            ", ".join(lua_str(r) for r in res),
                            lua_str(t["explanation"]) if "explanation" in t else "nil"))
        f.write("}\n")


def current(control, zones):
    try:
        with open(control) as f:
            return zones[int(f.read().strip() or 0)]
    except (OSError, ValueError, IndexError):
        return {}


def main():
    suite, port, control, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    opener = gzip.open if suite.endswith(".gz") else open
    with opener(suite, "rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    zones = [{d.lower(): load_zone(r) for d, r in s.get("zonedata", {}).items()}
             for s in scenarios]
    write_cases(scenarios, cases)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            q = DNSRecord.parse(data)
            r = answer(current(control, zones), q)
        except Exception:  # a malformed query, a value dnslib refuses
            continue
        if r is not None:
            sock.sendto(r.pack(), peer)


if __name__ == "__main__":
    main()

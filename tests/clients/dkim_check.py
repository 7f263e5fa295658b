#!/usr/bin/python3
"""Verifies a message's DKIM signatures with dkimpy (python3-dkim).

Used by tests/integration/dkim_spec.lua, so what we sign is checked by a
verifier that is not ours. Arguments:

  dkim_check.py MESSAGE_FILE NAME=TXT_FILE [NAME=TXT_FILE ...]

Each NAME (as s1._domainkey.example.test) is answered with the TXT record
in TXT_FILE; any other name has no record. Prints one line per signature,
"pass" or "fail", then exits 0 if all passed.
"""
import sys

import dkim

records = {}
for arg in sys.argv[2:]:
    name, path = arg.split("=", 1)
    with open(path, "rb") as f:
        records[name.lower().rstrip(".")] = f.read().strip()


def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.lower().rstrip("."))


with open(sys.argv[1], "rb") as f:
    message = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
d = dkim.DKIM(message)
count = len([1 for name, _ in d.headers if name.lower() == b"dkim-signature"])
ok = count > 0
for i in range(count):
    res = dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc)
    print("pass" if res else "fail")
    ok = ok and res
if count == 0:
    print("none")
sys.exit(0 if ok else 1)

#!/usr/bin/env python3
"""json_lines: checks that every line of FILE from byte OFFSET on is one
JSON object (Python's strict json, the bytes strict UTF-8) with ts, level,
role, pid and event first, and prints "ok N". Each not_smtp event's "line"
field is printed as "line HEX" (code points 0x80..0xff back to bytes, as
log_json.c escaped them), so a spec can check a peer's bytes round-trip.

    json_lines.py FILE OFFSET
"""
import json
import sys

HEAD = ["ts", "level", "role", "pid", "event"]


def main():
    with open(sys.argv[1], "rb") as f:
        f.seek(int(sys.argv[2]))
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for raw in lines:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            print("bad %r: %s" % (raw, e))
            return 1
        if list(obj)[:5] != HEAD or not isinstance(obj["pid"], int):
            print("bad head %r" % raw)
            return 1
        if obj["event"] == "not_smtp":
            print("line " + obj["line"].encode("latin-1").hex())
    print("ok %d" % len(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""SMTP AUTH SCRAM-SHA-256 (RFC 5802, RFC 7677) with smtplib, as a client.

usage: scram_login.py PORT starttls|smtps USER PASSWORD [tamper] [noir]

Computes the proof from the password and the server's salt and iteration
count, and checks the server's signature (v=). Prints one JSON object:
auth (the EHLO AUTH keyword's value), code (235 or the failure's code),
server_ok (the server signature was right), and the exchange's messages.
"tamper" flips a bit of the proof; "noir" sends no initial response.
"""
import base64, hashlib, hmac, json, os, smtplib, ssl, sys


def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


class Scram:
    def __init__(self, user, password, tamper):
        self.user, self.password, self.tamper = user, password, tamper
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.bare = "n=%s,r=%s" % (name, self.cnonce)
        self.step, self.server_ok, self.seen = 0, None, []

    def __call__(self, challenge=None):
        if challenge is not None:
            self.seen.append(challenge.decode())
        if self.step == 0 and not challenge:
            self.step = 1
            return "n,," + self.bare
        if self.step == 1:
            self.step = 2
            return self.final(challenge.decode())
        self.server_ok = challenge.decode() == "v=" + self.expect
        return ""

    def final(self, sfirst):
        attrs = dict(a.split("=", 1) for a in sfirst.split(","))
        assert attrs["r"].startswith(self.cnonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        ckey = hmac256(salted, b"Client Key")
        skey = hmac256(salted, b"Server Key")
        without = "c=biws,r=" + attrs["r"]
        am = ",".join([self.bare, sfirst, without]).encode()
        proof = bytes(a ^ b for a, b in zip(ckey, hmac256(hashlib.sha256(ckey).digest(), am)))
        if self.tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        self.expect = base64.b64encode(hmac256(skey, am)).decode()
        return without + ",p=" + base64.b64encode(proof).decode()


def main():
    port, mode, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    flags = sys.argv[5:]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = {}
    if mode == "smtps":
        s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=10)
    else:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        s.starttls(context=ctx)
    with s:
        s.ehlo("client.example.test")
        out["auth"] = s.esmtp_features.get("auth")
        mech = Scram(user, password, "tamper" in flags)
        try:
            code, _ = s.auth("SCRAM-SHA-256", mech, initial_response_ok="noir" not in flags)
            out["code"] = code
        except smtplib.SMTPAuthenticationError as e:
            out["code"] = e.smtp_code
            out["error"] = e.smtp_error.decode(errors="replace")
        out["server_ok"] = mech.server_ok
        out["seen"] = mech.seen
    print(json.dumps(out))


main()

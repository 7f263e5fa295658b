"""bench/authbench.py: scenario 12 of `make bench`, what the content and
authentication policies cost (issue 12).

Imported by bench/run (its helpers passed in as R); the rounds, the CPU
figures and the count checks are scenario 6's (bench/policybench.py).
Four indimaild instances run side by side (accept job, delivery paused)
and take the same smtp-source load in alternating rounds: one fixed
message (-F, ≈ 5 KiB of plain text) from news@sender.test to a local
mailbox, user@bench.test, and nobody in relay_from (so SPF checks the
client):

  plain    no policies;
  sign     dkim_sign on a listener named "submission" (trusted clients,
           no AUTH asked), an RSA-2048 key for sender.test made with
           `indimail dkim keygen`: every message is signed;
  verify   spf + dkim_verify + dmarc (VERIFY below), the same message
           as signed by the `sign` instance, sender.test's SPF record, DKIM key and DMARC record served by
           a dnsmasq of the scenario's own;
  bogo     spam with bogofilter, tag mode (nothing refused), a word list
           trained with `indimail spam train` from a few messages.

Probes first send the load's own message through smtp-source to each
instance and read what was queued: signed with d=sender.test, an
Authentication-Results: with every VERIFY result "pass", X-Bogosity.
After the rounds each queue must hold exactly what was sent, and each
instance's log must show its policy at work on every message (LOG_PROOF).
"""
import os
import random
import re

import policybench

DOMAIN = "sender.test"            # the sending domain: key, SPF, DMARC
SELECTOR = "bench"
SENDER = "news@" + DOMAIN
RCPT = "user@bench.test"          # local: no relay_from needed, SPF checked
SPF_RECORD = "v=spf1 ip4:127.0.0.1 -all"
DMARC_RECORD = "v=DMARC1; p=reject"   # the dmarc policy finds it aligned: pass
BODY_BYTES = 5120
TRAIN_EACH = 6                    # ham and spam messages for the word list

# The verification row's policies, in order, and the Authentication-Results
# part each must give the bench's message.
VERIFY = [
    ("spf", "spf=pass"),
    ("dkim_verify", "dkim=pass"),
    ("dmarc", "dmarc=pass"),
]

# Log lines each instance writes once per message (the probe's included).
LOG_PROOF = {
    "sign": [r"event=dkim_signed .*domain=sender\.test"],
    "verify": [r"event=spf .*result=pass", r"event=dkim_verify .*result=pass",
               r"event=dmarc .*result=pass"],
    "bogo": [r"event=spam (?=.*engine=bogofilter)(?=.*action=queue)"],
}

WORDS = ("the meeting agenda for our quarterly review covers project budget schedule "
         "report draft deadline team customers product release notes support tickets "
         "roadmap planning feedback survey results office network migration training "
         "session invoice order delivery shipment warehouse inventory supplier contract "
         "renewal update version documentation library community event conference talk "
         "speaker slides workshop registration newsletter article research paper data "
         "analysis chart summary minutes action items owner status progress risk issue "
         "question answer thanks regards colleague manager department holiday weather").split()
SPAM_WORDS = ("viagra casino jackpot pills cheap winner lottery bitcoin discount prize "
              "cialis offer unclaimed millions free bonus click urgent").split()


def message(subject, words, nbytes, seed):
    """A plain-text message of about nbytes of body, lines of random words."""
    rnd = random.Random(seed)
    lines, size = [], 0
    while size < nbytes:
        line = " ".join(rnd.choice(words) for _ in range(10))
        lines.append(line)
        size += len(line) + 1
    head = ("From: Bench News <%s>\nTo: <%s>\nSubject: %s\n"
            "Date: Wed, 02 Dec 2026 10:00:00 +0000\nMessage-ID: <%d.%s@%s>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
            % (SENDER, RCPT, subject, seed, SELECTOR, DOMAIN))
    return head + "\n".join(lines) + "\n"


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def dkim_key(R, tmp):
    """`indimail dkim keygen` into tmp/dkim: the key file and the TXT
    record's strings (each at most 255 bytes, as it prints them)."""
    out = R.run([os.path.join(R.BIN, "indimail"), "dkim", "keygen", DOMAIN, "--selector",
                 SELECTOR, "--dir", os.path.join(tmp, "dkim"), "--group", "indimail"], 60)
    strings = re.findall(r'"([^"]*)"', out.splitlines()[0])
    key = os.path.join(tmp, "dkim", "%s.%s.key" % (DOMAIN, SELECTOR))
    if not strings or not os.path.exists(key):
        raise RuntimeError("indimail dkim keygen: " + out[-300:])
    return key, strings


def train(R, tmp):
    """A word list trained by `indimail spam train` (made for the account)."""
    words = os.path.join(tmp, "bogofilter")
    for cls, vocab in (("ham", WORDS), ("spam", SPAM_WORDS)):
        files = [write(os.path.join(tmp, "train-%s-%d.eml" % (cls, i)),
                       message("%s %d" % (cls, i), vocab, 1500, 100 + i))
                 for i in range(TRAIN_EACH)]
        R.run([os.path.join(R.BIN, "indimail"), "spam", "train", cls, "--dir", words] + files, 60)
    return words


def zone(strings):
    """dnsmasq's records: SPF, the DKIM key, DMARC for DOMAIN."""
    return ["--txt-record=%s,%s" % (DOMAIN, SPF_RECORD),
            "--txt-record=%s._domainkey.%s,%s" % (SELECTOR, DOMAIN, ",".join(strings)),
            "--txt-record=_dmarc.%s,%s" % (DOMAIN, DMARC_RECORD)]


class AuthSet(policybench.PolicySet):
    """A row of scenario 12: its load is smtp-source -F with its message
    file; probe(R, srv) sends that message once and checks what was queued."""

    probe_queued = 1

    def __init__(self, key, label, lua, check, listener="smtp"):
        super().__init__(key, label, lambda d: lua, None)
        self.check, self.listener, self.msg_file = check, listener, None

    def load(self, R, port, m):
        return R.source(port, policybench.SESSIONS, m, to=RCPT, sender=SENDER,
                        msg_file=self.msg_file)

    def probe(self, R, srv):
        R.run(R.source(srv.port, 1, 1, to=RCPT, sender=SENDER, msg_file=self.msg_file), 30)
        msg = R.wait_for(lambda: only_message(srv), 10, what=srv.label() + " probe message")
        self.check(msg)
        return msg


def only_message(srv):
    """The message part of the only message in srv's queue, a file or a
    segment's record (None if there is not exactly one)."""
    msgs = srv.payloads()
    if len(msgs) != 1:
        return None
    return msgs[0].decode(errors="replace").replace("\r\n", "\n").split("\n\n", 1)[1]


def header_block(msg):
    return msg.split("\n\n", 1)[0].replace("\n\t", " ").replace("\n ", " ")


def need(cond, what, msg):
    if not cond:
        raise RuntimeError("probe: %s; queued:\n%s" % (what, header_block(msg)[:1500]))


def check_plain(msg):
    need("DKIM-Signature" not in header_block(msg) and "X-Bogosity" not in msg,
         "the no-policy instance added policy headers", msg)


def check_signed(msg):
    sig = re.search(r"^DKIM-Signature: (.*)$", header_block(msg), re.M)
    need(sig and re.search(r"\bd=%s;" % re.escape(DOMAIN), sig.group(1))
         and re.search(r"\bs=%s;" % SELECTOR, sig.group(1)) and "a=rsa-sha256" in sig.group(1),
         "no rsa-sha256 DKIM-Signature with d=%s s=%s" % (DOMAIN, SELECTOR), msg)


def check_verified(msg):
    # dkim_verify and dmarc each add a field of their own (RFC 8601 allows it)
    ar = "; ".join(re.findall(r"^Authentication-Results: (.*)$", header_block(msg), re.M))
    for policy, result in VERIFY:
        need(ar and re.search(r"(^|; )%s\b" % re.escape(result), ar),
             "Authentication-Results without %s (%s)" % (result, policy), msg)


def check_tagged(msg):
    need(re.search(r"^X-Bogosity: \w+, tests=bogofilter", header_block(msg), re.M),
         "no X-Bogosity", msg)


def sets(key_file, words):
    sign = AuthSet("sign", "DKIM signing, RSA-2048", "\n-- scenario 12\n"
                   'indimail.policy("dkim_sign", { listeners = { "submission" } })\n',
                   check_signed, listener="submission")
    sign.config_keys = ('dkim = { keys = { ["%s"] = { selector = "%s", key_file = "%s", '
                        'algorithm = "rsa-sha256" } } },' % (DOMAIN, SELECTOR, key_file))
    verify = AuthSet("verify", "SPF + DKIM + DMARC verification (%s)" % ", ".join(p for p, _ in VERIFY),
                     "\n-- scenario 12\n" + "".join('indimail.policy("%s")\n' % p
                                                     for p, _ in VERIFY), check_verified)
    bogo = AuthSet("bogo", "bogofilter, tag only", "\n-- scenario 12\n"
                   'indimail.policy("spam", { engine = "bogofilter", bogofilter = { dir = "%s" },'
                   ' on_error = "tempfail" })\n' % words, check_tagged)
    return [AuthSet("plain", "no policies", "", check_plain), sign, verify, bogo]


def s12(R, b):
    key_file, strings = dkim_key(R, b.tmp)
    words = train(R, b.tmp)
    dns_port, dns_stop = R.dnsmasq(b, "dnsmasq-auth", zone(strings))
    plain = write(os.path.join(b.tmp, "auth-message.eml"),
                  message("Quarterly review", WORDS, BODY_BYTES, 1))
    insts = []
    for ps in sets(key_file, words):
        ps.msg_file = plain
        insts.append((ps, R.Indimaild(b, "auth-" + ps.key, "accept", policies=ps,
                                      dns_port=dns_port, relay_from=(),
                                      listener=ps.listener).start()))
    probe_all(R, b, insts)
    m = policybench.warm_up(R, insts)
    policybench.measure(R, b, insts, m, "auth_")
    sent = 1000 + policybench.ROUNDS * m
    policybench.check_counts(R, b, insts, sent, stats=False)
    check_logs(R, b, insts, sent + 1)
    dns_stop()


def probe_all(R, b, insts):
    """In order: the signed message the `sign` instance queues is what the
    `verify` instance is sent from then on."""
    verify = next(ps for ps, _ in insts if ps.key == "verify")
    for ps, srv in insts:
        msg = ps.probe(R, srv)
        if ps.key == "sign":
            verify.msg_file = write(os.path.join(b.tmp, "auth-signed.eml"), msg)
            b.detail("auth: the sign instance's message, %d bytes, is the verify row's load"
                     % len(msg))


def check_logs(R, b, insts, want):
    for ps, srv in insts:
        text = srv.logtext()
        for pat in LOG_PROOF.get(ps.key, []):
            n = len(re.findall(pat, text))
            b.detail("auth %s: %d log lines /%s/ for %d messages" % (ps.key, n, pat, want))
            if n != want:
                R.odd("auth %s: %d log lines /%s/, %d messages sent" % (ps.key, n, pat, want))


# ---------------------------------------------------------------- table

POSTFIX = {"plain": "n/a: scenario 6 has Postfix's accept path",
           "sign": "n/a: no opendkim milter installed",
           "verify": "n/a: no opendkim or policyd-spf installed",
           "bogo": "n/a: Postfix runs bogofilter after the queue (content_filter), "
                   "not before the 250"}


def table(R, b):
    g = b.r.get
    off, coff = g("auth_plain"), g("auth_plain_cpu")
    for ps in sets("", ""):
        on, con = g("auth_" + ps.key), g("auth_%s_cpu" % ps.key)
        cell = R.Cell(text="%s (CPU %s)" % (R.Cell(on, unit="msg/s"),
                                            R.Cell(con and con * 1e6, unit="µs/msg"))) \
            if on else R.Cell(None)
        note = ""
        if ps.key != "plain" and on and off:
            note = "÷ no policies %.2f×; CPU/msg %s" % (
                on / off, "%.2f×" % (con / coff) if con and coff else "n/a")
        label = ("12. accept, %d sessions, 5 KiB message to a local mailbox, no policies"
                 % policybench.SESSIONS if ps.key == "plain" else "12. same, " + ps.label)
        b.row(label, cell, R.Cell(text=POSTFIX[ps.key]), "—", note)

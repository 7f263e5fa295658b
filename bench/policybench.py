"""bench/policybench.py: scenario 6 of `make bench`, what policies cost.

Imported by bench/run, whose helpers it uses (passed in as R). Five
indimaild instances run side by side (delivery paused, the accept job of
scenario 1) and take the same smtp-source load in alternating rounds:

  off        no policies at all;
  default    the default policy set: etc/policies.lua with the shipped
             etc/control/ lists, as etc/indimail.lua (`make run`) enables
             it, with two changes so that the bench's loopback clients (in
             relay_from) are checked too: sender_domain also for relay
             clients, and ratelimit's limits raised so high that they count
             every connection, message and recipient but never refuse;
  access100k accesslist with a generated 100,000-rule file in IndiMail's
             format, two rules of which are about the bench's sender and
             recipient (checked, and allowed, on every RCPT);
  domain     domain_rules with one DOMAIN.lua for the recipient domain
             (relay.test): a retired-address check at RCPT, header checks
             and a verdict at DATA;
  body1k     bodycheck with a generated 1,000-rule file in IndiMail's
             format (regex:reason:-body): spam phrases as regexes, none
             of which smtp-source's body (lines of digits and X) holds,
             so every rule runs over the whole text of every message, and
             after them one rule for a word only the probe's message has.

Postfix runs the nearest equivalent of each row after them (accept job,
hold queue; one instance at a time), with restriction maps of the same sizes: no restrictions;
HELO, sender and recipient maps with the default set's entries and anvil's
rate limits counting (set far above the load), but no sender-domain DNS
check (its resolver is the system's, docs/benchmarks.md "Not run");
check_sender_access and check_recipient_access hash maps of 50,000
entries each; header_checks with the domain file's header rules;
body_checks with the bodycheck file's 1,001 regexes (Postfix's regexp
tables ignore case, as IndiMail's bodycheck file does).

Before the rounds a probe proves every policy of an instance is on (each
must refuse its own test case with its own reply). After them, each queue
must hold exactly what was sent to it: a policy that refused the bench's
mail would look fast. The `off` instance's queue_stats feed scenario 7.
"""
import os
import shutil
import smtplib
import statistics

ROUNDS = 4                       # alternating rounds (median)
SESSIONS = 100
ACCESS_RULES = 100000
BENCH_DOMAIN_FILE = "relay.test.lua"
NEVER = 10 ** 9                  # a ratelimit limit the bench never reaches
BODY_RULES = 1000
BODY_PROBE_WORD = "policybenchprobe"   # in the probe's message body only
BODY_PROBE_REASON = "Refused by the bench's bodycheck probe rule"

DOMAIN_RULES = """-- relay.test: a hosted domain's rules (bench/policybench.py): a
-- retired-address check at RCPT, a few header checks and a verdict at DATA.
local match = require("match")
local retired = match.wildmat({ "sales-*@relay.test", "old-*@relay.test" })

return {
  rcpt = function(session, tx, rcpt)
    if retired:match(rcpt) then
      return indimail.reject("This address was retired", 550, "5.1.1")
    end
  end,
  data = function(session, tx, msg)
    if not msg:header("From") or not msg:header("Date") then
      return indimail.reject("A message needs From and Date headers", 550, "5.6.0")
    end
    if (msg:header("X-Spam-Flag") or ""):upper() == "YES" then
      return indimail.reject("Message refused as spam (relay.test)", 550, "5.7.1")
    end
    local subject = msg:header("Subject") or ""
    if subject:lower():find("lottery", 1, true) then
      return indimail.reject("Subject refused (relay.test)", 550, "5.7.1")
    end
    tx.env.RELAYTEST = "checked"
    return indimail.accept()
  end,
}
"""


class PolicySet:
    """What one instance adds to bench/run's configuration: config_keys
    inside indimail.config{}, setup(dir) writes its files and returns the
    Lua appended to the file, probe(port) proves it is on; load(R, port, m)
    is the smtp-source command of a run (scenario 12 sends its own message)
    and probe_queued how many messages the probe left in the queue."""

    config_keys = ""
    probe_queued = 0

    def __init__(self, key, label, setup, probe):
        self.key, self.label, self._setup, self._probe = key, label, setup, probe

    def setup(self, d):
        return self._setup(d)

    def probe(self, port):
        self._probe(port)

    def load(self, R, port, m):
        return R.source(port, SESSIONS, m)


def copy_default_set(root, d):
    """etc/policies.lua and etc/control/ into the instance's folder (its
    working folder: the paths inside are relative, as in `make run`)."""
    etc = os.path.join(d, "etc")
    shutil.copytree(os.path.join(root, "etc", "control"), os.path.join(etc, "control"))
    shutil.copy(os.path.join(root, "etc", "policies.lua"), etc)
    for dirpath, dirs, files in os.walk(etc):
        for n in dirs + files:
            os.chmod(os.path.join(dirpath, n), 0o755 if n in dirs else 0o644)
    os.chmod(etc, 0o755)


def setup_default(root):
    def setup(d):
        copy_default_set(root, d)
        n = NEVER
        return """
-- scenario 6: the default policy set (etc/policies.lua), checking the
-- bench's loopback relay clients too; ratelimit counts but never refuses
dofile("etc/policies.lua")({
  domains = { "bench.test" },
  settings = {
    sender_domain = { skip_relay_clients = false },
    ratelimit = {
      interval = 60,
      connections = { concurrent_per_ip = %d, per_ip = %d },
      messages = { per_sender = %d, per_user = %d, per_ip = %d },
      recipients = { per_sender = %d, per_user = %d, per_ip = %d },
    },
  },
})
""" % ((n,) * 8)
    return setup


def write_accesslist(path):
    """ACCESS_RULES lines, half from-rules, half rcpt-rules, about other
    addresses, plus the two that concern the bench's mail."""
    half = ACCESS_RULES // 2 - 1
    with open(path, "w") as f:
        f.write("# generated by bench/policybench.py: %d rules\n" % ACCESS_RULES)
        for i in range(half):
            f.write("from:s%d@senders.example:r%d@rcpts.example\n" % (i, i))
        for i in range(half):
            f.write("rcpt:s%d@senders.example:r%d@rcpts.example\n" % (i, i))
        f.write("from:bench@bench.test:@relay.test\n")     # may send to relay.test only
        f.write("rcpt:@bench.test:user@relay.test\n")      # takes mail from bench.test only
    os.chmod(path, 0o644)


def setup_access(d):
    write_accesslist(os.path.join(d, "accesslist"))
    return ('\n-- scenario 6: accesslist with %d rules\n'
            'indimail.policy("accesslist", { file = "accesslist" })\n' % ACCESS_RULES)


# Words of the body rules: 25 x 40 pairs, one rule each, in four forms
# that both PCRE2 and POSIX regexps (Postfix's regexp tables) read alike.
BODY_WORDS_A = ("cheap", "free", "urgent", "exclusive", "guaranteed", "limited",
                "secret", "instant", "discount", "bonus", "verified", "unclaimed",
                "pending", "final", "special", "hot", "lucky", "private", "online",
                "miracle", "premium", "confidential", "risk free", "best", "wholesale")
BODY_WORDS_B = ("pills", "loan", "prize", "offer", "casino", "lottery", "refund",
                "invoice", "bitcoin", "pharmacy", "inheritance", "diploma", "replica",
                "mortgage", "investment", "jackpot", "dating", "weight loss", "credit",
                "payment", "shipment", "password", "account", "beneficiary", "viagra",
                "rolex", "crypto wallet", "gift card", "wire transfer", "tax rebate",
                "stock tip", "voucher", "reward", "parcel", "funds", "debt relief",
                "cash advance", "insurance", "deal", "membership")


def body_patterns():
    """BODY_RULES distinct regexes, a literal phrase, a phrase with any
    spacing, an alternation and a phrase with a number in turn."""
    out = []
    for i, (a, b) in enumerate((a, b) for a in BODY_WORDS_A for b in BODY_WORDS_B):
        form = i % 4
        if form == 0:
            out.append("%s %s" % (a, b))
        elif form == 1:
            out.append("%s[[:space:]]+%s" % (a.replace(" ", "[[:space:]]+"), b))
        elif form == 2:
            out.append("(get|claim|buy) %s %s" % (a, b))
        else:
            out.append("%s %s #?[0-9]+ (usd|eur)" % (a, b))
    assert len(out) == BODY_RULES and len(set(out)) == BODY_RULES
    return out


def write_bodycheck(path):
    """The bodycheck file: the BODY_RULES rules, then the probe's."""
    with open(path, "w") as f:
        f.write("# generated by bench/policybench.py: %d body rules + the probe's\n"
                % BODY_RULES)
        for i, p in enumerate(body_patterns()):
            f.write("%s:Spam phrase %d:-body\n" % (p, i + 1))
        f.write("%s:%s:-body\n" % (BODY_PROBE_WORD, BODY_PROBE_REASON))
    os.chmod(path, 0o644)


def setup_body(d):
    write_bodycheck(os.path.join(d, "bodycheck"))
    return ('\n-- scenario 6: bodycheck with %d body rules\n'
            'indimail.policy("bodycheck", { file = "bodycheck" })\n' % BODY_RULES)


def setup_domain(d):
    folder = os.path.join(d, "domains")
    os.makedirs(folder)
    os.chmod(folder, 0o755)
    with open(os.path.join(folder, BENCH_DOMAIN_FILE), "w") as f:
        f.write(DOMAIN_RULES)
    os.chmod(os.path.join(folder, BENCH_DOMAIN_FILE), 0o644)
    return ""


class Probe:
    """One SMTP session of the probe; each step checks a reply's code and
    that its text names the policy that gave it."""

    def __init__(self, port, helo="client.bench.test"):
        """helo None: the caller greets (probe_default's badhelo step)."""
        self.c = smtplib.SMTP("127.0.0.1", port, local_hostname="client.bench.test",
                              timeout=10)
        self.port = port
        if helo:
            self.ehlo(helo, 250, "")

    def expect(self, what, reply, code, word):
        got, text = reply[0], reply[1].decode(errors="replace")
        if got != code or word.lower() not in text.lower():
            raise RuntimeError("policy probe (port %d): %s got %d %s, expected %d with '%s'"
                               % (self.port, what, got, text, code, word))

    def ehlo(self, name, code, word):
        self.expect("EHLO " + name, self.c.ehlo(name), code, word)

    def mail(self, addr, code=250, word=""):
        self.c.rset()
        self.expect("MAIL " + addr, self.c.mail(addr), code, word)

    def rcpt(self, addr, code=250, word=""):
        self.expect("RCPT " + addr, self.c.rcpt(addr), code, word)

    def data(self, text, code, word):
        self.expect("DATA", self.c.data(text.encode()), code, word)

    def close(self):
        self.c.close()


def probe_default(port):
    p = Probe(port, helo=None)
    try:
        p.ehlo("localhost.localdomain", 550, "badhelo")
        p.ehlo("client.bench.test", 250, "")
        p.mail("joe@spam.example", 553, "badmailfrom")
        p.mail("someone@nxdomain.test", 550, "does not exist")           # sender_domain
        # envrules: NODNSCHECK for partner.example (no DNS here: else 451) ...
        p.mail("joe@partner.example")
        p.rcpt("user@relay.test", 554, "relay")                          # ... relay_senders
        p.mail("bench@bench.test")
        p.rcpt("a%b@relay.test", 550, "badrcptto")
        p.rcpt("all@example.test", 550, "accesslist")
        p.rcpt("user@relay.test")
    finally:
        p.close()


def probe_access(port):
    p = Probe(port)
    try:
        p.mail("bench@bench.test")
        p.rcpt("user@elsewhere.test", 553, "accesslist")
        p.rcpt("user@relay.test")
        p.mail("other@relay.test")
        p.rcpt("user@relay.test", 550, "accesslist")
    finally:
        p.close()


def probe_domain(port):
    p = Probe(port)
    try:
        p.mail("bench@bench.test")
        p.rcpt("sales-eu@relay.test", 550, "retired")
        p.rcpt("user@relay.test")
        p.data("From: <bench@bench.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
               "X-Spam-Flag: YES\r\n\r\nspam\r\n", 550, "spam")
    finally:
        p.close()


def probe_body(port):
    p = Probe(port)
    try:
        p.mail("bench@bench.test")
        p.rcpt("user@relay.test")
        p.data("From: <bench@bench.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
               "\r\nA line with %s in it.\r\n" % BODY_PROBE_WORD.upper(), 554, "bodycheck")
    finally:
        p.close()


def sets(R):
    off = PolicySet("off", "no policies", None, lambda port: None)
    domain = PolicySet("domain", "domain_rules: one file for the recipient domain",
                       setup_domain, probe_domain)
    domain.config_keys = 'domain_rules = "domains",'
    return [off,
            PolicySet("default", "the default policy set", setup_default(R.ROOT),
                      probe_default),
            PolicySet("access100k", "accesslist, %s rules" % "{:,}".format(ACCESS_RULES),
                      setup_access, probe_access),
            domain,
            PolicySet("body1k", "bodycheck, %s body regexes" % "{:,}".format(BODY_RULES),
                      setup_body, probe_body)]


# ---------------------------------------------------------------- Postfix

def write_lines(d, name, lines):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("".join(x + "\n" for x in lines))
    return path


def pf_default(d):
    helo = write_lines(d, "helo", ["localhost.localdomain REJECT", "invalid REJECT"])
    helo_re = write_lines(d, "helo_re", [r"/\.localdomain$/ REJECT"])
    senders = write_lines(d, "senders", ["spam.example REJECT", ".bulk.example REJECT"])
    sender_re = write_lines(d, "sender_re", ["/@.*@/ REJECT", "/%/ REJECT"])
    rcpts = write_lines(d, "rcpts", ["retired.example REJECT", "all@example.test DUNNO"])
    rcpt_re = write_lines(d, "rcpt_re", ["/%/ REJECT", "/!/ REJECT", "/@.*@/ REJECT"])
    n = NEVER
    return ("""smtpd_helo_required = yes
smtpd_helo_restrictions = check_helo_access hash:%s, check_helo_access regexp:%s
smtpd_sender_restrictions = check_sender_access hash:%s, check_sender_access regexp:%s
smtpd_recipient_restrictions = check_recipient_access regexp:%s, check_recipient_access hash:%s
smtpd_client_connection_count_limit = %d
smtpd_client_connection_rate_limit = %d
smtpd_client_message_rate_limit = %d
smtpd_client_recipient_rate_limit = %d
""" % (helo, helo_re, senders, sender_re, rcpt_re, rcpts, n, n, n, n),
            [helo, senders, rcpts])


def pf_access(d):
    half = ACCESS_RULES // 2 - 1
    senders = write_lines(d, "senders", ["s%d@senders.example DUNNO" % i for i in range(half)]
                          + ["bench@bench.test DUNNO", "blocked@bench.test REJECT"])
    rcpts = write_lines(d, "rcpts", ["r%d@rcpts.example DUNNO" % i for i in range(half)]
                        + ["user@relay.test DUNNO"])
    return ("smtpd_sender_restrictions = check_sender_access hash:%s\n"
            "smtpd_recipient_restrictions = check_recipient_access hash:%s\n"
            % (senders, rcpts), [senders, rcpts])


def pf_domain(d):
    checks = write_lines(d, "header_checks", [
        "/^X-Spam-Flag:[[:space:]]*YES/ REJECT Message refused as spam",
        "/^Subject:.*[Ll][Oo][Tt][Tt][Ee][Rr][Yy]/ REJECT Subject refused"])
    return "header_checks = regexp:%s\n" % checks, []


def pf_body(d):
    checks = write_lines(d, "body_checks", ["/%s/ REJECT Spam phrase %d" % (p, i + 1)
                                            for i, p in enumerate(body_patterns())]
                         + ["/%s/ REJECT %s" % (BODY_PROBE_WORD, BODY_PROBE_REASON)])
    return "body_checks = regexp:%s\n" % checks, []


PF_SETS = {"off": None, "default": pf_default, "access100k": pf_access, "domain": pf_domain,
           "body1k": pf_body}


def pf_probe(key, port):
    """Postfix refuses what the restrictions of the row list."""
    if key == "off":
        return
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="client.bench.test", timeout=10)
    try:
        c.ehlo("client.bench.test")
        if key == "domain":
            c.mail("bench@bench.test")
            c.rcpt("user@relay.test")
            code = c.data(b"From: <a@bench.test>\r\nX-Spam-Flag: YES\r\n\r\nspam\r\n")[0]
        elif key == "body1k":
            c.mail("bench@bench.test")
            c.rcpt("user@relay.test")
            code = c.data(("From: <a@bench.test>\r\n\r\nA line with %s in it.\r\n"
                           % BODY_PROBE_WORD.upper()).encode())[0]
        else:
            c.mail("x@spam.example" if key == "default" else "blocked@bench.test")
            code = c.rcpt("user@relay.test")[0]
    finally:
        c.close()
    if code < 500:
        raise RuntimeError("Postfix probe %s: got %d, a 5xx expected" % (key, code))


# ---------------------------------------------------------------- scenario

def s6_policies(R, b):
    insts = []
    for ps in sets(R):
        insts.append((ps, R.Indimaild(b, "pol-" + ps.key, "accept",
                                      policies=ps if ps.key != "off" else None).start()))
    for ps, srv in insts:
        ps.probe(srv.port)
    m = warm_up(R, insts)
    measure(R, b, insts, m, "pol_")
    check_counts(R, b, insts, 1000 + ROUNDS * m)
    postfix_rows(R, b)


def postfix_rows(R, b):
    """Postfix, one instance after the other (two private instances at once
    hung here: the second one's postlogd blocked), each warmed up and then
    timed ROUNDS times with the message count sized on the first."""
    m = None
    for ps in sets(R):
        pf = R.Postfix(b, "pol-" + ps.key, "accept", restrictions=PF_SETS[ps.key]).start()
        try:
            pf_probe(ps.key, pf.port)
            t = R.timed(R.source(pf.port, SESSIONS, 1000), 300)
            m = m or R.calibrate_m(1000 / t, SESSIONS)
            measure(R, b, [(ps, pf)], m, "pf_pol_")
        finally:
            check_held(R, b, [(ps, pf)], 1000 + ROUNDS * m if m else None)


def measure(R, b, insts, m, prefix):
    """ROUNDS rounds of m messages to each instance, the order rotating so
    that drift hits all alike; medians and CPU per message into b.r."""
    times = {ps.key: [] for ps, _ in insts}
    cpu = {ps.key: 0.0 for ps, _ in insts}
    for r in range(ROUNDS):
        for ps, srv in insts[r % len(insts):] + insts[:r % len(insts)]:
            c0 = R.cpu_of(srv)
            times[ps.key].append(R.timed(ps.load(R, srv.port, m), 300))
            cpu[ps.key] += R.cpu_of(srv) - c0
    for ps, srv in insts:
        rate = m / statistics.median(times[ps.key])
        b.r[prefix + ps.key] = rate
        b.r["%s%s_cpu" % (prefix, ps.key)] = cpu[ps.key] / (ROUNDS * m)
        b.detail("policies %s %s: m=%d; runs %s s -> %.0f msg/s, %.0f µs CPU/msg"
                 % (srv.label(), ps.key, m, ", ".join("%.2f" % x for x in times[ps.key]),
                    rate, 1e6 * cpu[ps.key] / (ROUNDS * m)))


def check_held(R, b, pfs, want):
    for ps, pf in pfs:
        got = pf.held()
        pf.stop()
        if want is None:
            continue
        b.detail("policies %s: Postfix hold queue holds %d of %d sent" % (ps.key, got, want))
        if got != want:
            R.odd("policies %s: Postfix holds %d messages, %d were sent" % (ps.key, got, want))


def warm_up(R, insts):
    """A first load for every instance (DNS cache, Lua states, fresh queue
    folders); the message count of a run from the no-policy one's rate."""
    t = None
    for ps, srv in insts:
        dt = R.timed(ps.load(R, srv.port, 1000), 300)
        t = t or dt
    return R.calibrate_m(1000 / t, SESSIONS)


def check_counts(R, b, insts, sent, stats=True):
    """Every queue holds what was sent to it (and what its probe left);
    stats: the no-policy instance's queue_stats feed scenario 7."""
    for ps, srv in insts:
        want = sent + ps.probe_queued
        got = srv.queued()
        srv.stop()
        b.detail("policies %s: queue holds %d of %d sent" % (ps.key, got, want))
        if got != want:
            R.odd("policies %s: the queue holds %d messages, %d were sent" % (ps.key, got, want))
        errors = sum(1 for line in open(srv.log) if "event=hook_error" in line)
        if errors:
            R.odd("policies %s: %d hook errors in the log" % (ps.key, errors))
        if ps.key == "off" and stats:
            queue_stats(R, b, srv, want)


def queue_stats(R, b, srv, want):
    f, msgs, workers = srv.stats
    b.r["flushes"], b.r["flushed_msgs"] = f, msgs
    # a batch's sync calls: the segment's fdatasync (segment, wal: one
    # queue per batch), or the files' flush and their folders' (fs)
    b.r["flush_syncs"] = 2 if srv.backend == "fs" else 1
    b.detail("queue_stats (no-policy instance, 100 sessions only): %d workers, "
             "flushes=%d messages=%d -> %.1f messages per flush" %
             (workers, f, msgs, msgs / f if f else 0))
    if msgs != want:
        R.odd("queue_stats counts %d messages, %d were sent" % (msgs, want))


# ---------------------------------------------------------------- table

PF_LABELS = {"default": "HELO/sender/recipient maps, anvil limits; no DNS check",
             "access100k": "sender and recipient hash maps, 50,000 entries each",
             "domain": "header_checks, 2 regexps",
             "body1k": "body_checks, the same %s regexps + the probe's"
                       % "{:,}".format(BODY_RULES)}


def table(R, b):
    g = b.r.get
    cell = lambda r, c: R.Cell(text="%s (CPU %s)" % (R.Cell(r, unit="msg/s"),
                                                      R.Cell(c * 1e6, unit="µs/msg"))) \
        if r and c else R.Cell(r, unit="msg/s")
    for ps in sets(R):
        on, con = g("pol_" + ps.key), g("pol_%s_cpu" % ps.key)
        pon, pcon = g("pf_pol_" + ps.key), g("pf_pol_%s_cpu" % ps.key)
        pf = cell(pon, pcon)
        if ps.key == "off":
            b.row("6. accept, %d sessions, no policies" % SESSIONS, cell(on, con), pf,
                  R.fmt_ratio(on, pon), "")
            continue
        if pon:
            pf = R.Cell(text="%s [%s; %s]" % (pf, PF_LABELS[ps.key], cost(
                g("pf_pol_off"), pon, g("pf_pol_off_cpu"), pcon, False)))
        b.row("6. same, %s" % ps.label, cell(on, con), pf, R.fmt_ratio(on, pon),
              cost(g("pol_off"), on, g("pol_off_cpu"), con, ps.key == "default"))


def cost(off, on, coff, con, target):
    """'throughput −x%; CPU/msg +y%', with the < 10% verdict for the default set."""
    if not off or not on:
        return ""
    loss = 1 - on / off
    t = "throughput %+.1f%%" % (-100 * loss)
    if coff and con:
        t += "; CPU/msg %+.1f%%" % (100 * (con / coff - 1))
    if target:
        t = "loss < 10%%: %s (%s)" % ("met" if loss < 0.10 else "**missed**", t)
    return t

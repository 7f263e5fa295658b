-- SMTP AUTH (RFC 4954, docs/smtp.md): PLAIN and LOGIN against the users'
-- crypt(3) hashes in mailboxes.users, checked off the loop. Real clients
-- (swaks over STARTTLS, Python smtplib over implicit TLS) log in and relay
-- to a remote domain; the protocol edges (plaintext refused, a wrong
-- password, AUTH twice, "*", bad base64, require_auth) are checked with a
-- raw socket on a listener that allows AUTH in clear. The same suite on
-- the config backend (mailboxes.users) and on the directory's SQLite and
-- MariaDB databases (tests/helpers/dirbackend.lua), whose users get the
-- same hashes.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local mime = require("mime")
local backends = require("dirbackend")

local PASSWORD = "s3cret-Pa55"

local function b64(s) return (mime.b64(s)) end

-- SHA-512-crypt from openssl; yescrypt and a slow SHA-512 from crypt(3).
local function sha512(pw)
  return (D.sh("openssl passwd -6 '" .. pw .. "'"):gsub("%s+$", ""))
end
local function perl_crypt(pw, setting)
  return (D.sh(("perl -e 'print crypt(q(%s), q(%s))'"):format(pw, setting)):gsub("%s+$", ""))
end

-- The users and their hashes (nopw: none).
local HASHES = {
  joe = sha512(PASSWORD),
  ann = perl_crypt(PASSWORD, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1"),
  slow = perl_crypt(PASSWORD, "$6$rounds=400000$abcdefgh"),
}

local USERS = ([[users = {
    { address = 'joe@example.test', password = %q },
    { address = 'ann@example.test', password = %q },
    { address = 'slow@example.test', password = %q },
    'nopw@example.test' }]]):format(HASHES.joe, HASHES.ann, HASHES.slow)

local HOOK = [[
indimail.hook("auth", function(session, user)
  indimail.log("auth_hook_saw", { user = user, session_user = session.auth_user })
  if user == "ann@example.test" and session.listener == "smtp" then
    return indimail.reject("ann may not log in here", 535, "5.7.8")
  end
end)
]]

local function swaks(port, args)
  return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5"
    .. " --helo client.example.test %s"):format(port, args))
end

local function queue_id(transcript)
  return transcript:match("<[-~*]+ +250 2%.0%.0 Ok: queued as (%w+)")
end

-- Python smtplib over SMTPS: login, then one message to a remote domain.
local PY = [[
import json, smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}
try:
    with smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10) as s:
        s.ehlo("client.example.test")
        out["auth"] = s.esmtp_features.get("auth")
        out["login"] = list(s.login(sys.argv[2], sys.argv[3]))[0]
        s.sendmail(sys.argv[2], ["carol@remote.test"], "Subject: smtplib\r\n\r\nhi\r\n")
        out["ok"] = True
except smtplib.SMTPAuthenticationError as e:
    out["auth_error"] = e.smtp_code
print(json.dumps(out))
]]

local function smtplib_login(d, user, password)
  local path = d.dir .. "/login.py"
  D.writefile(path, PY)
  return D.sh(("timeout 60 python3 %s %d '%s' '%s'"):format(path, d.ports.smtps, user, password))
end

-- A raw session on the smtp listener (AUTH allowed in clear there), EHLO said.
local function session(d, port)
  local c = D.connect(port or d.ports.smtp)
  assert.equal(220, (c:reply()))
  local code, text = c:cmd("EHLO client.example.test")
  assert.equal(250, code, text)
  return c, text
end

local function plain(user, pw) return b64("\0" .. user .. "\0" .. pw) end

-- The suite, on a daemon whose users users(o) puts into its options o.
local function auth_suite(title, users)
describe(title, function()
  local d
  setup(function()
    d = D.start(users{
      listen_opts = { smtp = "auth = true, auth_plaintext = true" },
      policies = HOOK,
      -- the failures below all come from 127.0.0.1: keep the delay the
      -- client's count adds (auth_limit_spec checks it) under the socket
      -- timeout, so this spec sees the session's own delays
      auth_fail_limit = "delay = 0.25, delay_max = 1",
    })
  end)
  teardown(function() d:cleanup() end)

  describe("with real clients", function()
    it("swaks --auth PLAIN over STARTTLS on submission logs in and relays to a remote domain", function()
      local out = swaks(d.ports.submission, ("--tls --auth PLAIN --auth-user joe@example.test"
        .. " --auth-password '%s' --from joe@example.test --to bob@remote.test"):format(PASSWORD))
      assert.matches("<~  235 2%.7%.0 Authentication successful", out)
      local qid = assert(queue_id(out), out)
      local env = d:queued(qid)
      assert.matches("\nauth joe@example%.test\n", env)
      assert.matches("\nrcpt bob@remote%.test", env)
      local _, msg = d:queued(qid)
      assert.matches("with ESMTPSA id", msg)
    end)

    it("swaks --auth LOGIN over STARTTLS logs in a yescrypt user", function()
      local out = swaks(d.ports.submission, ("--tls --auth LOGIN --auth-user ann@example.test"
        .. " --auth-password '%s' --from ann@example.test --to bob@remote.test"):format(PASSWORD))
      assert.matches("334 VXNlcm5hbWU6", out)
      assert.matches("334 UGFzc3dvcmQ6", out)
      assert.matches("235 2%.7%.0", out)
      assert.matches("\nauth ann@example%.test\n", (d:queued(assert(queue_id(out), out))))
    end)

    it("Python smtplib login over implicit TLS (SMTPS) relays to a remote domain", function()
      local out = smtplib_login(d, "joe@example.test", PASSWORD)
      assert.matches('"auth": " ?PLAIN LOGIN"', out)
      assert.matches('"login": 235', out)
      assert.matches('"ok": true', out)
      assert.truthy(d:wait_log("event=queued [^\n]*from=joe@example%.test[^\n]*to=carol@remote%.test", 5))
    end)

    it("Python smtplib with a wrong password gets 535", function()
      local out = smtplib_login(d, "joe@example.test", "wrong-one")
      assert.matches('"auth_error": 535', out)
    end)
  end)

  describe("the exchange", function()
    it("is not offered, and refused with 538, without TLS on submission", function()
      local c, ehlo = session(d, d.ports.submission)
      assert.not_matches("AUTH", ehlo)
      local code, text = c:cmd("AUTH PLAIN " .. plain("joe@example.test", PASSWORD))
      assert.equal(538, code)
      assert.matches("^538 5%.7%.11 Encryption required", text)
      c:close()
    end)

    it("refuses MAIL before AUTH on a require_auth listener (submission) with 530", function()
      local c = session(d, d.ports.submission)
      local code, text = c:cmd("MAIL FROM:<joe@example.test>")
      assert.equal(530, code)
      assert.matches("^530 5%.7%.0 Authentication required", text)
      c:close()
    end)

    it("is answered 502 on a listener without AUTH, and not advertised", function()
      local d2 = D.start(users{})
      local c = D.connect(d2.ports.smtp)
      assert.equal(220, (c:reply()))
      local _, ehlo = c:cmd("EHLO client.example.test")
      assert.not_matches("AUTH", ehlo)
      assert.equal(502, (c:cmd("AUTH PLAIN " .. plain("joe@example.test", PASSWORD))))
      c:close()
      d2:cleanup()
    end)

    it("PLAIN with an initial response: 235, then the client may relay", function()
      local c, ehlo = session(d)
      assert.matches("250%-AUTH PLAIN LOGIN", ehlo)
      local code, text = c:cmd("AUTH PLAIN " .. plain("joe@example.test", PASSWORD))
      assert.equal(235, code, text)
      assert.matches("^235 2%.7%.0 Authentication successful", text)
      assert.equal(250, (c:cmd("MAIL FROM:<joe@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<dave@remote.test>")))
      c:close()
      assert.truthy(d:wait_log("event=auth_hook_saw[^\n]* session_user=joe@example%.test", 5))
      assert.truthy(d:wait_log("event=auth_hook_saw[^\n]* user=joe@example%.test", 5))
    end)

    it("PLAIN after a 334, and LOGIN in two steps", function()
      local c = session(d)
      assert.equal(334, (c:cmd("AUTH PLAIN")))
      assert.equal(235, (c:cmd(plain("joe@example.test", PASSWORD))))
      c:close()
      c = session(d)
      local code, text = c:cmd("AUTH LOGIN")
      assert.equal(334, code)
      assert.equal("334 VXNlcm5hbWU6", text)
      code, text = c:cmd(b64("joe@example.test"))
      assert.equal("334 UGFzc3dvcmQ6", text)
      assert.equal(235, (c:cmd(b64(PASSWORD))))
      c:close()
    end)

    it("refuses relaying without AUTH with 554", function()
      local c = session(d)
      assert.equal(250, (c:cmd("MAIL FROM:<joe@example.test>")))
      local code, text = c:cmd("RCPT TO:<dave@remote.test>")
      assert.equal(554, code)
      assert.matches("^554 5%.7%.1 Relay access denied", text)
      c:close()
    end)

    it("answers a wrong password 535 after a delay, logs it without the password", function()
      local c = session(d)
      local t0 = D.t.now()
      local code, text = c:cmd("AUTH PLAIN " .. plain("joe@example.test", "Wr0ngPassw0rd"))
      local waited = D.t.now() - t0
      assert.equal(535, code)
      assert.matches("^535 5%.7%.8 Authentication credentials invalid", text)
      assert.is_true(waited >= 0.9, "no delay: " .. waited)
      -- the second failure waits longer
      t0 = D.t.now()
      assert.equal(535, (c:cmd("AUTH PLAIN " .. plain("nobody@example.test", "Wr0ngPassw0rd"))))
      assert.is_true(D.t.now() - t0 >= 1.9)
      c:close()
      assert.truthy(d:wait_log("event=auth_failed [^\n]*user=joe@example%.test ip=127%.0%.0%.1", 5))
      assert.truthy(d:wait_log("event=auth_failed [^\n]*user=nobody@example%.test", 5))
      assert.not_matches("Wr0ngPassw0rd", d:log())
      assert.not_matches(PASSWORD, d:log())
    end)

    it("refuses a user without a password, and one a policy refuses", function()
      local c = session(d)
      assert.equal(535, (c:cmd("AUTH PLAIN " .. plain("nopw@example.test", ""))))
      c:close()
      c = session(d)
      local code, text = c:cmd("AUTH PLAIN " .. plain("ann@example.test", PASSWORD))
      assert.equal(535, code)
      assert.matches("ann may not log in here", text)
      assert.equal(250, (c:cmd("MAIL FROM:<ann@example.test>")))
      assert.equal(554, (c:cmd("RCPT TO:<x@remote.test>")))
      c:close()
    end)

    it("answers a second AUTH with 503, and AUTH inside a transaction with 503", function()
      local c = session(d)
      assert.equal(235, (c:cmd("AUTH PLAIN " .. plain("joe@example.test", PASSWORD))))
      local code, text = c:cmd("AUTH PLAIN " .. plain("joe@example.test", PASSWORD))
      assert.equal(503, code)
      assert.matches("^503 5%.5%.1 Already authenticated", text)
      c:close()
      c = session(d)
      assert.equal(250, (c:cmd("MAIL FROM:<joe@example.test>")))
      assert.equal(503, (c:cmd("AUTH LOGIN")))
      c:close()
    end)

    it("cancels on '*' with 501 5.0.0 and takes commands again", function()
      local c = session(d)
      assert.equal(334, (c:cmd("AUTH LOGIN")))
      local code, text = c:cmd("*")
      assert.equal(501, code)
      assert.matches("^501 5%.0%.0 Authentication cancelled", text)
      assert.equal(250, (c:cmd("NOOP")))
      c:close()
    end)

    it("answers bad base64 with 501, in the command and after a 334", function()
      local c = session(d)
      local code, text = c:cmd("AUTH PLAIN not*base64")
      assert.equal(501, code)
      assert.matches("^501 5%.5%.2 Cannot decode", text)
      assert.equal(334, (c:cmd("AUTH LOGIN")))
      assert.equal(501, (c:cmd("abc")))
      assert.equal(504, (c:cmd("AUTH CRAM-MD5")))
      assert.equal(250, (c:cmd("NOOP")))
      c:close()
    end)

    it("takes an AUTH line longer than a command line (up to 12288 octets)", function()
      local c = session(d)
      local long = plain("joe@example.test", string.rep("x", 900))
      assert.is_true(#long > 1000)
      assert.equal(535, (c:cmd("AUTH PLAIN " .. long)))
      assert.equal(334, (c:cmd("AUTH PLAIN")))
      local code = c:cmd(string.rep("QUFB", 3200))
      assert.equal(500, code)
      assert.equal(250, (c:cmd("NOOP")))
      c:close()
    end)

    it("survives clients that disconnect while their password is checked", function()
      local pids = d:worker_pids()
      for _ = 1, 10 do
        local c = session(d)
        c:send("AUTH PLAIN " .. plain("slow@example.test", PASSWORD) .. "\r\n")
        c:close()
      end
      local c = session(d)
      local code, text = c:cmd("AUTH PLAIN " .. plain("slow@example.test", PASSWORD))
      assert.equal(235, code, text)
      c:close()
      assert.same(pids, d:worker_pids())
    end)
  end)
end)
end

auth_suite("SMTP AUTH on the config backend", function(o)
  o.mailboxes = USERS
  return o
end)

-- Runs bin/indimail on db with args; raises on failure.
local function cli(db, args, stdin)
  local cmd = D.bin .. "/indimail"
  for _, a in ipairs(db.cli_args) do cmd = cmd .. " '" .. a .. "'" end
  cmd = cmd .. " " .. args
  if stdin then cmd = "printf '%s\\n' '" .. stdin .. "' | " .. cmd end
  local out, code = D.sh(cmd)
  assert(code == 0, cmd .. ": " .. out)
end

-- The users of USERS in db, with the same hashes (nopw: an empty one).
local function populate(db)
  cli(db, "domain add example.test")
  for _, u in ipairs({ "joe", "ann", "slow", "nopw" }) do
    cli(db, "user add " .. u .. "@example.test --password-stdin", "replaced-1")
    db.sql(("UPDATE users SET password = '%s' WHERE local = '%s'"):format(HASHES[u] or "", u))
  end
end

for _, fx in ipairs(backends.all()) do
describe(fx.name, function()
  local db
  local undo = {}
  setup(function()
    fx.setup()
    db = fx.fresh(function(fn) undo[#undo + 1] = fn end)
    populate(db)
  end)
  teardown(function()
    for i = #undo, 1, -1 do pcall(undo[i]) end
    undo = {}
    fx.teardown()
  end)

  auth_suite("SMTP AUTH on " .. fx.name, function(o)
    o.directory = db.directory
    return o
  end)
end)
end

describe("SMTP AUTH with a directory that answers later", function()
  it("logs in and refuses through the asynchronous path", function()
    local d = D.start{ mailboxes = USERS, env = { INDIMAIL_DIRECTORY_DEFER = "1" },
      listen_opts = { smtp = "auth = true, auth_plaintext = true" } }
    local c = session(d)
    assert.equal(235, (c:cmd("AUTH PLAIN " .. plain("joe@example.test", PASSWORD))))
    c:close()
    c = session(d)
    assert.equal(535, (c:cmd("AUTH PLAIN " .. plain("joe@example.test", "nope"))))
    c:close()
    d:cleanup()
  end)
end)

describe("mailboxes.users[].password", function()
  local function check(password)
    local dir = D.mktemp("auth-config")
    local path = dir .. "/bad.lua"
    D.writefile(path, ("indimail.config {\n  listen = { { port = 0 } },\n"
      .. "  local_domains = { 'example.test' },\n"
      .. "  mailboxes = { users = { { address = 'joe@example.test', password = %q } } },\n}\n"):format(password))
    local out, code = D.sh(D.bin .. "/indimaild -t -c " .. path)
    D.rmtemp(dir)
    return out, code
  end

  it("refuses a plaintext password, naming the user", function()
    local out, code = check("secret")
    assert.equal(1, code, out)
    assert.matches("mailboxes%.users%[1%] %(joe@example%.test%): password must be a crypt%(3%) hash", out)
  end)

  it("refuses a legacy MD5-crypt hash and accepts SHA-512-crypt and yescrypt", function()
    local md5 = D.sh("openssl passwd -1 x"):gsub("%s+$", "")
    assert.equal(1, select(2, check(md5)))
    local out, code = check(sha512("x"))
    assert.equal(0, code, out)
    out, code = check(perl_crypt("x", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1"))
    assert.equal(0, code, out)
  end)
end)

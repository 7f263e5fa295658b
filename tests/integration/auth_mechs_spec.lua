-- SMTP AUTH CRAM-MD5 (RFC 2195) and SCRAM-SHA-256 (RFC 5802, RFC 7677)
-- against the directory on SQLite and on MariaDB (tests/helpers/dirbackend.lua;
-- docs/directory.md, docs/smtp.md): a domain
-- that enables both (sasl.test) and one that does not (local.test). Real
-- clients: swaks --auth CRAM-MD5 over STARTTLS and SMTPS, and a Python
-- smtplib SCRAM client (tests/clients/scram_login.py) that checks the
-- server's signature. Wrong passwords, a tampered proof, an unknown user
-- and a domain without the mechanism all end in 535 5.7.8.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local backends = require("dirbackend")

local BIN = D.bin .. "/indimail"
-- a password the default password_policy accepts
local PW = "pencil-sharp"
local MECHS = "auth_mechs = { 'plain', 'login', 'cram-md5', 'scram-sha-256' }"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function swaks(port, tls, user, pw)
  return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5 --helo c.example.test"
    .. " %s --auth CRAM-MD5 --auth-user %s --auth-password %s --from %s --to x@remote.test"
    .. " --quit-after RCPT 2>&1"):format(port, tls, q(user), q(pw), q(user)))
end

local function scram(d, mode, user, pw, ...)
  local port = mode == "smtps" and d.ports.smtps or d.ports.submission
  local out = D.sh(("timeout 60 /usr/bin/python3 tests/clients/scram_login.py %d %s %s %s %s")
    :format(port, mode, q(user), q(pw), table.concat({ ... }, " ")))
  local code = tonumber(out:match('"code": (%d+)'))
  return code, out
end

for _, fx in ipairs(backends.all()) do
describe("SMTP AUTH CRAM-MD5 and SCRAM-SHA-256 on " .. fx.name, function()
  local d, db
  local undo = {}
  setup(function()
    fx.setup()
    db = fx.fresh(function(fn) undo[#undo + 1] = fn end)
    d = D.start{
      directory = db.directory .. ", cache_ttl = 1, negative_ttl = 1",
      listen_opts = { submission = MECHS, smtps = MECHS,
                      smtp = "auth = true, auth_plaintext = true, auth_mechs = { 'plain', 'scram-sha-256' }" },
      -- a dozen failures from 127.0.0.1 on purpose: the limits across
      -- sessions (auth_limit_spec checks them) stay out of the way
      auth_fail_limit = "per_ip = 0, per_user = 0, delay = 0, delay_max = 0",
    }
    local function cli(args, stdin)
      local cmd = BIN .. " -c " .. q(d.config) .. " " .. args
      if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
      assert.equal("0", (D.sh(cmd .. " >/dev/null 2>&1; echo $?"):gsub("%s+$", "")), cmd)
    end
    cli("domain add sasl.test --auth-mechs cram-md5,scram-sha-256")
    cli("domain add local.test")
    cli("user add joe@sasl.test --password-stdin", PW)
    cli("user add ann@local.test --password-stdin", PW)
    cli("user add off@sasl.test --password-stdin --no-smtp", PW)
  end)
  teardown(function()
    if d then d:cleanup() end
    for i = #undo, 1, -1 do pcall(undo[i]) end
    undo = {}
    fx.teardown()
  end)

  it("stores both secrets only for the domain that enables them", function()
    local rows = db.sql("SELECT local || '@' || domain, scram IS NOT NULL,"
      .. " cram IS NOT NULL FROM users ORDER BY 1")
    assert.matches("ann@local%.test\t0\t0", rows)
    assert.matches("joe@sasl%.test\t1\t1", rows)
    local s = db.sql("SELECT scram FROM users WHERE local = 'joe'")
    assert.matches("^SCRAM%-SHA%-256%$4096:[%w+/=]+%$[%w+/=]+:[%w+/=]+$", s)
    s = db.sql("SELECT cram FROM users WHERE local = 'joe'")
    assert.matches("^{CRAM%-MD5}%x+$", s)
  end)

  it("advertises the listener's mechanisms", function()
    local out = D.sh(("timeout 30 swaks --server 127.0.0.1 --port %d --tlsc --quit-after EHLO 2>&1")
      :format(d.ports.smtps))
    assert.matches("250%-AUTH PLAIN LOGIN CRAM%-MD5 SCRAM%-SHA%-256", out)
    out = D.sh(("timeout 30 swaks --server 127.0.0.1 --port %d --tls --quit-after EHLO 2>&1")
      :format(d.ports.smtp))
    assert.not_matches("CRAM%-MD5", out)
  end)

  it("swaks --auth CRAM-MD5 logs in over STARTTLS and over SMTPS and relays", function()
    local out = swaks(d.ports.submission, "--tls", "joe@sasl.test", PW)
    assert.matches("<[-~*]+ +334 ", out)
    assert.matches("<[-~*]+ +235 2%.7%.0", out)
    assert.matches("<[-~*]+ +250 2%.1%.5 Recipient <x@remote%.test>", out)
    out = swaks(d.ports.smtps, "--tlsc", "joe@sasl.test", PW)
    assert.matches("<[-~*]+ +235 2%.7%.0", out)
    assert.is_truthy(d:wait_log("event=auth .*user=joe@sasl%.test", 5))
  end)

  it("CRAM-MD5: a wrong password, a domain without it, an unknown user and no-smtp get 535", function()
    local out = swaks(d.ports.submission, "--tls", "joe@sasl.test", "Wr0ngPassw0rd")
    assert.matches("<[-~*]+ +535 5%.7%.8", out)
    out = swaks(d.ports.submission, "--tls", "ann@local.test", PW)
    assert.matches("<[-~*]+ +535 5%.7%.8", out)
    assert.is_truthy(d:wait_log("reason=\"?CRAM%-MD5 is not enabled for the user's domain", 5))
    out = swaks(d.ports.submission, "--tls", "ghost@sasl.test", PW)
    assert.matches("<[-~*]+ +535 5%.7%.8", out)
    out = swaks(d.ports.submission, "--tls", "off@sasl.test", PW)
    assert.matches("<[-~*]+ +535 5%.7%.8", out)
    assert.not_matches("Wr0ngPassw0rd", d:log(), 1, true)
  end)

  it("CRAM-MD5 is refused (504) on a listener that does not list it", function()
    local c = D.connect(d.ports.smtp)
    assert.equal(220, (c:reply()))
    local code, text = c:cmd("EHLO client.example.test")
    assert.equal(250, code, text)
    assert.matches("AUTH PLAIN SCRAM%-SHA%-256\n", text)
    code, text = c:cmd("AUTH CRAM-MD5")
    assert.equal(504, code, text)
    assert.matches("PLAIN SCRAM%-SHA%-256 offered", text)
    code, text = c:cmd("AUTH LOGIN")
    assert.equal(504, code, text)
    c:close()
  end)

  it("answers 501 to malformed SCRAM messages", function()
    local c = D.connect(d.ports.smtp)
    assert.equal(220, (c:reply()))
    assert.equal(250, (c:cmd("EHLO client.example.test")))
    local b64 = function(x) return (require("mime").b64(x)) end
    for _, bad in ipairs({ "p=tls-unique,,n=joe@sasl.test,r=abc", "n,,n=joe@sasl.test",
                           "n,,m=x,n=joe@sasl.test,r=abc", "n,,n=jo=41e,r=abc" }) do
      local code, text = c:cmd("AUTH SCRAM-SHA-256 " .. b64(bad))
      assert.equal(501, code, bad .. ": " .. tostring(text))
    end
    local code, text = c:cmd("AUTH SCRAM-SHA-256")
    assert.equal(334, code, text)
    code, text = c:cmd(b64("n,a=ann@sasl.test,n=joe@sasl.test,r=abc"))
    assert.equal(535, code, text)           -- another authorization identity
    c:close()
  end)

  it("SCRAM-SHA-256 logs in with Python smtplib over STARTTLS and SMTPS and proves the server", function()
    local code, out = scram(d, "starttls", "joe@sasl.test", PW)
    assert.equal(235, code, out)
    assert.matches('"server_ok": true', out)
    assert.matches('"auth": " ?PLAIN LOGIN CRAM%-MD5 SCRAM%-SHA%-256"', out)
    code, out = scram(d, "smtps", "joe@sasl.test", PW, "noir")
    assert.equal(235, code, out)
    assert.matches('"server_ok": true', out)
    assert.matches("s=[%w+/=]+,i=4096", out)
  end)

  it("SCRAM-SHA-256: a tampered proof, a wrong password, a domain without it and no-smtp get 535", function()
    local code, out = scram(d, "starttls", "joe@sasl.test", PW, "tamper")
    assert.equal(535, code, out)
    code, out = scram(d, "starttls", "joe@sasl.test", "Wr0ngPassw0rd")
    assert.equal(535, code, out)
    code, out = scram(d, "starttls", "ann@local.test", PW)
    assert.equal(535, code, out)
    assert.is_truthy(d:wait_log("reason=\"?SCRAM%-SHA%-256 is not enabled for the user's domain", 5))
    code, out = scram(d, "starttls", "off@sasl.test", PW)
    assert.equal(535, code, out)
    assert.not_matches("Wr0ngPassw0rd", d:log(), 1, true)
  end)

  it("SCRAM-SHA-256 gives an unknown user the same salt each time, and 535", function()
    local c1, o1 = scram(d, "starttls", "ghost@sasl.test", PW)
    local c2, o2 = scram(d, "starttls", "ghost@sasl.test", "other")
    assert.equal(535, c1, o1)
    assert.equal(535, c2, o2)
    local s1, s2 = o1:match("s=([%w+/=]+),i=4096"), o2:match("s=([%w+/=]+),i=4096")
    assert.is_truthy(s1, o1)
    assert.equal(s1, s2)
    local _, o3 = scram(d, "starttls", "ghost2@sasl.test", PW)
    assert.not_equal(s1, o3:match("s=([%w+/=]+),i=4096"))
  end)
end)
end

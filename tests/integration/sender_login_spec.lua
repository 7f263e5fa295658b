-- Who may use which envelope sender (docs/smtp.md "Senders"): a logged-in
-- user sends as itself, an alias of itself or itself in an alias domain
-- (553 5.7.1 otherwise, unless the listener has sender_login_match =
-- false); a client neither logged in nor in relay_from may not use a local
-- domain (550 5.7.1); a no-relay user logs in but may not relay (554
-- 5.7.1). On a directory made with bin/indimail, on SQLite and on MariaDB
-- (tests/helpers/dirbackend.lua); the config backend once. AUTH in clear
-- on the smtp listener (auth_plaintext) and swaks over STARTTLS.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local mime = require("mime")
local cleanup = require("cleanup")
local backends = require("dirbackend")

local BIN = D.bin .. "/indimail"
local PW = "s3cret-Pa55"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- bin/indimail -c config args...; the exit code.
local function cli(d, args, stdin)
  local parts = { BIN, "-c", q(d.config) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " >/dev/null 2>&1"
  if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end

-- The directory: example.test (joe, ann, nr no-relay), alias.test an
-- alias domain of it, local.test (bob), and info@example.test -> joe.
local function populate(d)
  for _, a in ipairs({
    { "domain", "add", "example.test" },
    { "domain", "add", "local.test" },
    { "domain", "add", "alias.test", "--alias-of", "example.test" },
    { "alias", "add", "info@example.test", "joe@example.test", "x@remote.test" },
    { "alias", "add", "team@local.test", "bob@local.test" },
  }) do assert.equal(0, cli(d, a)) end
  for _, u in ipairs({ "joe@example.test", "ann@example.test", "nr@example.test", "bob@local.test" }) do
    assert.equal(0, cli(d, { "user", "add", u, "--password-stdin" }, PW))
  end
  assert.equal(0, cli(d, { "user", "mod", "nr@example.test", "--no-relay" }))
end

local function plain(user) return (mime.b64("\0" .. user .. "\0" .. PW)) end

-- A session from src (default 127.0.0.1) to port, EHLO said.
local function session(port, src)
  local c = D.connect(port, nil, src)
  cleanup.defer(function() c:close() end)
  assert.equal(220, (c:reply()))
  assert.equal(250, (c:cmd("EHLO client.example.test")))
  return c
end

-- A session logged in as user on port.
local function login(port, user)
  local c = session(port)
  local code, text = c:cmd("AUTH PLAIN " .. plain(user))
  assert.equal(235, code, text)
  return c
end

local function mail(c, from) return c:cmd("MAIL FROM:<" .. from .. ">") end

for _, fx in ipairs(backends.all()) do
describe("envelope senders and relaying on " .. fx.name, function()
  local d, db
  local undo = {}
  setup(function()
    fx.setup()
    db = fx.fresh(function(fn) undo[#undo + 1] = fn end)
    d = D.start{
      directory = db.directory .. ", cache_ttl = 1, negative_ttl = 1",
      listen_opts = {
        smtp = "auth = true, auth_plaintext = true",
        submission = "auth_plaintext = true, sender_login_match = false",
      },
      local_sender_requires_auth = true,
      relay_from = "'127.0.0.2'",
    }
    populate(d)
  end)
  teardown(function()
    if d then d:cleanup() end
    for i = #undo, 1, -1 do pcall(undo[i]) end
    undo = {}
    fx.teardown()
  end)
  after_each(cleanup.run)

  describe("a logged-in user", function()
    it("sends as its own address (swaks --auth over STARTTLS)", function()
      local out = D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5"
        .. " --helo client.example.test --tls --auth PLAIN --auth-user joe@example.test"
        .. " --auth-password %s --from joe@example.test --to x@remote.test"):format(d.ports.smtp, q(PW)))
      assert.matches("<[-~*]+ +235 2%.7%.0", out)
      assert.matches("<[-~*]+ +250 2%.1%.0 Sender <joe@example%.test> OK", out)
      assert.matches("<[-~*]+ +250 2%.0%.0 Ok: queued as", out)
    end)

    it("sends as its address in another case, as an alias of itself, and in an alias domain", function()
      local c = login(d.ports.smtp, "joe@example.test")
      for _, from in ipairs({ "JOE@Example.TEST", "info@example.test", "INFO@EXAMPLE.test",
                              "joe@alias.test", "Joe@Alias.Test" }) do
        local code, text = mail(c, from)
        assert.equal(250, code, from .. ": " .. tostring(text))
        assert.equal(250, (c:cmd("RSET")))
      end
    end)

    it("logged in through an alias domain, sends as its real address", function()
      local c = login(d.ports.smtp, "joe@alias.test")
      assert.equal(250, (mail(c, "joe@example.test")))
    end)

    it("sends the null sender <>", function()
      local c = login(d.ports.smtp, "joe@example.test")
      local code, text = c:cmd("MAIL FROM:<>")
      assert.equal(250, code, text)
    end)

    it("may not send as someone else's address or an alias not its own: 553 5.7.1 and a log line", function()
      local c = login(d.ports.smtp, "joe@example.test")
      for _, from in ipairs({ "ann@example.test", "team@local.test", "ann@alias.test", "x@remote.test" }) do
        local code, text = mail(c, from)
        assert.equal(553, code, from)
        assert.equal("553 5.7.1 Sender address not owned by authenticated user joe@example.test", text)
      end
      -- the transaction was not opened
      assert.equal(503, (c:cmd("RCPT TO:<bob@local.test>")))
      assert.truthy(d:wait_log("event=sender_not_owned [^\n]*user=joe@example%.test sender=ann@example%.test ip=127%.0%.0%.1", 5))
      assert.truthy(d:wait_log("event=sender_not_owned [^\n]*sender=team@local%.test", 5))
    end)

    it("sends as anything on a listener with sender_login_match = false", function()
      local c = login(d.ports.submission, "joe@example.test")
      assert.equal(250, (mail(c, "ann@example.test")))
      assert.equal(250, (c:cmd("RCPT TO:<x@remote.test>")))
    end)
  end)

  describe("a client that did not log in", function()
    it("may not use a local domain as its sender: 550 5.7.1 and a log line", function()
      local c = session(d.ports.smtp)
      local code, text = mail(c, "joe@example.test")
      assert.equal(550, code)
      assert.equal("550 5.7.1 Authentication required to send as example.test", text)
      code, text = mail(c, "someone@Local.Test")
      assert.equal(550, code)
      assert.equal("550 5.7.1 Authentication required to send as local.test", text)
      assert.truthy(d:wait_log("event=sender_auth_required [^\n]*sender=joe@example%.test ip=127%.0%.0%.1", 5))
    end)

    it("still sends as a remote domain and as <>", function()
      local c = session(d.ports.smtp)
      assert.equal(250, (mail(c, "someone@remote.test")))
      assert.equal(250, (c:cmd("RCPT TO:<joe@example.test>")))
      assert.equal(250, (c:cmd("RSET")))
      assert.equal(250, (c:cmd("MAIL FROM:<>")))
    end)

    it("in relay_from, may use a local domain", function()
      local c = session(d.ports.smtp, "127.0.0.2")
      assert.equal(250, (mail(c, "joe@example.test")))
      assert.equal(250, (c:cmd("RCPT TO:<x@remote.test>")))
    end)
  end)

  describe("a no-relay user", function()
    it("logs in and sends to a local recipient, but not to a remote one: 554 5.7.1 and a log line", function()
      local c = login(d.ports.smtp, "nr@example.test")
      assert.equal(250, (mail(c, "nr@example.test")))
      assert.equal(250, (c:cmd("RCPT TO:<joe@example.test>")))
      local code, text = c:cmd("RCPT TO:<x@remote.test>")
      assert.equal(554, code)
      assert.equal("554 5.7.1 Relaying denied for user nr@example.test", text)
      assert.truthy(d:wait_log("event=relay_denied [^\n]*user=nr@example%.test rcpt=x@remote%.test", 5))
      -- the transaction goes on with the local recipient
      assert.equal(354, (c:cmd("DATA")))
      c:send("Subject: local\r\n\r\nhi\r\n.\r\n")
      assert.equal(250, (c:reply()))
    end)

    it("may not relay from relay_from either", function()
      local c = session(d.ports.smtp, "127.0.0.2")
      assert.equal(235, (c:cmd("AUTH PLAIN " .. plain("nr@example.test"))))
      assert.equal(250, (mail(c, "nr@example.test")))
      assert.equal(554, (c:cmd("RCPT TO:<x@remote.test>")))
    end)
  end)

  it("answers 451 4.3.0 when the directory fails during the sender check", function()
    local c = login(d.ports.smtp, "joe@example.test")
    fx.down(db)
    cleanup.defer(function() fx.up(db) end)
    D.t.sleep(1.3)       -- cache_ttl = 1: the cached answers expire
    local code, text = mail(c, "ann@example.test")
    assert.equal(451, code, text)
    assert.equal("451 4.3.0 Sender lookup failed, try again later", text)
    assert.truthy(d:wait_log("event=sender_lookup_failed [^\n]*user=joe@example%.test", 5))
    fx.up(db)
    assert.equal(250, (mail(c, "joe@example.test")))   -- the same address: no lookup
  end)
end)
end

describe("with the config backend", function()
  after_each(cleanup.run)

  it("reads no_relay and aliases from mailboxes; local_sender_requires_auth = false turns the local check off; the mail hook runs after", function()
    local hash = (D.sh("openssl passwd -6 " .. q(PW)):gsub("%s+$", ""))
    local d = D.start_for_test{
      mailboxes = ([[users = {
        { address = 'joe@example.test', password = %q },
        { address = 'nr@example.test', password = %q, no_relay = true } },
        aliases = { ['sales@example.test'] = { 'joe@example.test' } }]]):format(hash, hash),
      listen_opts = { smtp = "auth = true, auth_plaintext = true",
                      submission = "auth_plaintext = true, sender_login_match = false" },
      policies = [[
        indimail.hook("mail", function(session, tx)
          if session.auth_user and tx.sender == "ceo@example.test" then
            return indimail.reject("not as the CEO", 553, "5.7.1")
          end
        end)]],
    }
    local c = session(d.ports.submission)   -- the mail hook still decides
    assert.equal(235, (c:cmd("AUTH PLAIN " .. plain("joe@example.test"))))
    assert.equal(250, (mail(c, "ann@remote.test")))
    assert.equal(250, (c:cmd("RSET")))
    local code, text = mail(c, "ceo@example.test")
    assert.equal(553, code, text)
    assert.matches("not as the CEO", text)
    c:close()
    c = session(d.ports.smtp)
    assert.equal(250, (mail(c, "joe@example.test")))   -- helper default: off
    c:close()
    c = login(d.ports.smtp, "joe@example.test")
    assert.equal(250, (mail(c, "sales@example.test")))
    assert.equal(250, (c:cmd("RCPT TO:<x@remote.test>")))
    assert.equal(250, (c:cmd("RSET")))
    assert.equal(553, (mail(c, "nr@example.test")))
    c = login(d.ports.smtp, "nr@example.test")
    assert.equal(250, (mail(c, "nr@example.test")))
    assert.equal(554, (c:cmd("RCPT TO:<x@remote.test>")))
  end)
end)

describe("the options", function()
  local function check(text)
    local dir = D.mktemp("sender-config")
    local path = dir .. "/bad.lua"
    D.writefile(path, "indimail.config {\n" .. text .. "\n}\n")
    local out, code = D.sh(D.bin .. "/indimaild -t -c " .. path)
    D.rmtemp(dir)
    return out, code
  end

  it("are booleans: local_sender_requires_auth, listen[].sender_login_match, mailboxes.users[].no_relay", function()
    local listen = "  listen = { { port = 0 } },\n"
    local out, code = check(listen .. "  local_sender_requires_auth = 'no',")
    assert.equal(1, code, out)
    assert.matches("bad%.lua:3:.*local_sender_requires_auth: must be true or false", out)
    out, code = check("  listen = { { port = 0, sender_login_match = 1 } },")
    assert.equal(1, code, out)
    assert.matches("listen%[%]%.sender_login_match: must be true or false", out)
    out, code = check(listen .. "  mailboxes = { users = { { address = 'a@example.test', no_relay = 'yes' } } },")
    assert.equal(1, code, out)
    assert.matches("mailboxes%.users%[%]%.no_relay: must be true or false", out)
    out, code = check("  listen = { { port = 0, sender_login_match = false } },\n"
      .. "  local_sender_requires_auth = false,\n"
      .. "  mailboxes = { users = { { address = 'a@example.test', no_relay = true } } },")
    assert.equal(0, code, out)
  end)
end)

-- The autoresponder end to end (docs/policies/autoresponder.md): users on
-- vacation set with `indimail user vacation` on a real directory database
-- (both engines, tests/helpers/dirbackend.lua), lua/policies/autoresponder.lua
-- and indimail.submit in a real indimaild. A message to a user on vacation
-- from a user of the same domain gets one reply in the sender's Maildir
-- (Return-Path <>, Auto-Submitted, In-Reply-To, References, To = sender);
-- a remote sender gets it over SMTP from MAIL FROM:<> (the scripted server,
-- tests/helpers/fake_smtp.lua). A second message within the interval, a
-- list message, a bounce, Precedence: bulk, and vacation off get none.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local fake_smtp = require("fake_smtp")
local backends = require("dirbackend")

local BIN = D.bin .. "/indimail"
local PW = "Passw0rd-1"
local AWAY = "I am away until Monday.\nUrgent: ask ann.\n"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function cli(config, args, stdin)
  local parts = { BIN, "-c", q(config) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ")
  if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
  local out, code = D.sh(cmd)
  return code, out
end

-- A daemon delivering here and relaying remote.test to the scripted
-- server (port), on a new database of fx with joe (on vacation) and ann.
local function start(fx, port)
  local db = fx.fresh()
  local d = D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
    directory = db.directory .. ", cache_ttl = 60, negative_ttl = 10",
    routes = port and ("['remote.test'] = { host = '127.0.0.4', port = %d }"):format(port),
    delivery = "retry = { base = 300, max = 600 },"
      .. " timeouts = { connect = 2, greeting = 3, command = 2, data = 3 }",
    policies = "indimail.policy('autoresponder', {})" }
  d.cli = function(args, stdin)
    local code, out = cli(d.config, args, stdin)
    assert.equal(0, code, table.concat(args, " ") .. ": " .. out)
    return out
  end
  d.cli{ "domain", "add", "example.test" }
  d.cli({ "user", "add", "joe@example.test", "--password-stdin" }, PW)
  d.cli({ "user", "add", "ann@example.test", "--password-stdin" }, PW)
  local msgfile = d.dir .. "/away.txt"
  D.writefile(msgfile, AWAY)
  d.cli{ "user", "vacation", "joe@example.test", "on", "--subject", "Out of office",
    "--message-file", msgfile, "--from", "2020-01-01", "--until", "2099-12-31" }
  return d
end

local function message(headers)
  return headers .. "Message-ID: <m" .. math.random(1e9) .. "@remote.test>\r\n"
    .. "Subject: hello\r\n\r\nHi joe.\r\n"
end

local function header(text, name)
  return text:match("\n" .. name .. ": ([^\n]*)") or text:match("^" .. name .. ": ([^\n]*)")
end

-- Waits for an event=autoreply line with these fields (skipped = false:
-- a reply, no skipped field); the line, or nil.
local function autoreply(d, want)
  return D.eventually(function()
    for line in d:log():gmatch("[^\n]*event=autoreply[^\n]*") do
      local l, ok = line .. " ", true
      for k, v in pairs(want) do
        if v == false then ok = ok and not l:find(" " .. k .. "=", 1, true)
        else ok = ok and l:find(" " .. k .. "=" .. v .. " ", 1, true) ~= nil end
      end
      if ok then return line end
    end
  end, 5)
end

for _, fx in ipairs(backends.all()) do
  describe("the autoresponder on " .. fx.name, function()
    setup(fx.setup)
    teardown(fx.teardown)
    after_each(cleanup.run)

    it("answers once per sender and interval, with the RFC 3834 fields, from <>", function()
      local d = start(fx)
      local msg = "To: joe@example.test\r\n" .. message("From: ann@example.test\r\n")
      local id = msg:match("Message%-ID: (<[^>]+>)")
      d:send("ann@example.test", { "joe@example.test" }, msg)
      local files = maildir.wait(d, "ann", 1, 10)
      assert.is_truthy(files, d:log())
      local reply = D.readfile(files[1])
      assert.equal("<>", header(reply, "Return%-Path"))
      assert.equal("joe@example.test", header(reply, "From"))
      assert.equal("ann@example.test", header(reply, "To"))
      assert.equal("Out of office", header(reply, "Subject"))
      assert.equal("auto-replied", header(reply, "Auto%-Submitted"))
      assert.equal(id, header(reply, "In%-Reply%-To"))
      assert.equal(id, header(reply, "References"))
      assert.is_truthy(header(reply, "Message%-ID"))
      assert.is_truthy(header(reply, "Date"))
      assert.is_truthy(reply:find("\n\nI am away until Monday.\nUrgent: ask ann.\n", 1, true))
      assert.is_truthy(autoreply(d, { user = "joe@example.test", to = "ann@example.test",
        skipped = false }), d:log())
      -- the same sender again: none
      d:send("ann@example.test", { "joe@example.test" }, msg)
      assert.is_truthy(autoreply(d, { skipped = "interval" }), d:log())
      assert.is_truthy(maildir.wait(d, "joe", 2, 10))
      assert.equal(1, #maildir.new_files(d, "ann"))
    end)

    it("never answers a list, a bounce, bulk mail, an unaddressed copy, or once it is off", function()
      local d = start(fx)
      local function send(from, head)
        d:send(from, { "joe@example.test" }, "To: joe@example.test\r\n" .. message(head))
      end
      send("ann@example.test", "List-Id: <team.example.test>\r\n")
      assert.is_truthy(autoreply(d, { skipped = "list" }), d:log())
      send("", "From: MAILER-DAEMON@remote.test\r\n")
      assert.is_truthy(autoreply(d, { skipped = "null_sender" }), d:log())
      send("ann@example.test", "Precedence: bulk\r\n")
      assert.is_truthy(autoreply(d, { skipped = "precedence" }), d:log())
      send("ann@example.test", "Auto-Submitted: auto-generated\r\n")
      assert.is_truthy(autoreply(d, { skipped = "auto_submitted" }), d:log())
      d:send("ann@example.test", { "joe@example.test" }, message("To: team@example.test\r\n"))
      assert.is_truthy(autoreply(d, { skipped = "not_addressed" }), d:log())
      -- off: the CLI's notice flushes the worker's cached answer
      local function flushes() return select(2, d:log():gsub("event=directory_flushed by=signal", "")) end
      local before = flushes()
      d.cli{ "user", "vacation", "joe@example.test", "off" }
      assert.is_truthy(D.eventually(function() return flushes() > before end, 5), d:log())
      send("ann@example.test", "")
      assert.is_truthy(maildir.wait(d, "joe", 6, 10), d:log())
      assert.equal(0, #maildir.new_files(d, "ann"))
      assert.is_falsy(autoreply(d, { skipped = false }))
      assert.is_nil(d:log():find("event=submitted", 1, true))
    end)

    it("sends a remote sender's reply over SMTP with MAIL FROM:<>", function()
      local port = D.free_tcp_port("127.0.0.4")
      local fake = fake_smtp.start(D.scratch_dir("autoreply"), "127.0.0.4", port, {})
      local d = start(fx, port)
      d:send("bob@remote.test", { "joe@example.test" },
        "To: Joe <JOE@example.test>\r\n" .. message("From: bob@remote.test\r\n"))
      assert.is_truthy(D.eventually(function() return fake.count("\nCMD %d+ DATA") >= 1 end, 10),
        d:log() .. fake.events())
      assert.is_truthy(fake.events():find("MAIL FROM:<>", 1, true), fake.events())
      assert.is_truthy(fake.events():find("RCPT TO:<bob@remote.test>", 1, true), fake.events())
      assert.is_truthy(d:wait_log("event=submitted [^\n]*policy=autoresponder", 5))
    end)
  end)
end

describe("indimail user vacation", function()
  after_each(cleanup.run)

  it("turns a user's autoresponder on, shows it, turns it off; bad values exit 65", function()
    local fx = backends.all()[1]
    local d = start(fx)
    local out = d.cli{ "--json", "user", "vacation", "joe@example.test", "show" }
    assert.is_truthy(out:find('"enabled":1', 1, true), out)
    assert.is_truthy(out:find('"subject":"Out of office"', 1, true), out)
    assert.is_truthy(out:find('"interval":604800', 1, true), out)
    d.cli{ "user", "vacation", "joe@example.test", "off" }
    out = d.cli{ "user", "vacation", "joe@example.test", "show" }
    assert.is_truthy(out:find("enabled: 0", 1, true), out)
    local code = cli(d.config, { "user", "vacation", "joe@example.test", "on",
      "--message-file", d.dir .. "/away.txt", "--interval", "2w" })
    assert.equal(65, code)
    code = cli(d.config, { "user", "vacation", "nobody@example.test", "show" })
    assert.equal(67, code)
    code = cli(d.config, { "user", "vacation", "joe@example.test", "on" })
    assert.equal(64, code)
  end)
end)

describe("indimail.submit", function()
  after_each(cleanup.run)

  -- The message hook tries each bad call, logs their errors (r1= ...) and
  -- rejects the message.
  local PROBE = [[
local function try(t)
  local ok, err = pcall(indimail.submit, t)
  return ok and "ok" or tostring(err):gsub("^.-indimail%.submit", "indimail.submit")
end
indimail.hook("mail", function()
  local ok, err = pcall(indimail.submit, {})
  if not ok and tostring(err):find("message hook only", 1, true) then return end
  return indimail.reject("mail stage allowed it", 550, "5.7.1")
end, "probe")
indimail.hook("message", function(session, tx, msg)
  local good = { from = "", to = { "x@remote.test" }, header = { { "From", "a@example.test" } }, body = "hi\n" }
  local function with(k, v) local t = {} for a, b in pairs(good) do t[a] = b end t[k] = v return t end
  local errs = {
    try(with("to", {})), try(with("to", { "not an address" })),
    try(with("header", { { "Date", "now" } })), try(with("header", { { "Subject", "x" } })),
    try(with("header", { { "Bad Name", "x" } })), try(with("body", "a\rb")),
    try(with("body", ("x"):rep(999))), try(with("from", "<>")),
  }
  local f = {}
  for i, e in ipairs(errs) do f["r" .. i] = e end
  indimail.log("probe", f)
  return indimail.reject("probed", 550, "5.7.1")
end, "probe")
]]

  it("is for message hooks only and refuses bad arguments, naming them", function()
    local d = D.start_for_test{ policies = PROBE }
    local c = d:session()
    local code, text = c:transaction("a@remote.test", { "u@example.test" }, "Subject: x\r\n\r\nbody\r\n")
    assert.equal(550, code, text .. d:log())
    local line = assert(d:wait_log("event=probe ([^\n]*)", 5))
    local function r(i) return line:match(" r" .. i .. "=(\"[^\"]*\")") or "" end
    assert.matches("to needs 1 to 16 addresses", r(1))
    assert.matches("not a valid mail address", r(2))
    assert.matches("Date is set by indimail.submit", r(3), 1, true)
    assert.matches("header needs a From field", r(4))
    assert.matches("header%[1%]: a header name", r(5))
    assert.matches("bare CR", r(6))
    assert.matches("over 998 bytes", r(7))
    assert.matches("not a plain mail address", r(8))
    assert.is_falsy(d:log():find("event=submitted", 1, true))
  end)
end)

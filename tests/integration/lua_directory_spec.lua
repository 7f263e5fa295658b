-- indimail.directory from hooks (docs/lua.md, "Directory lookups"), on both
-- directory engines (tests/helpers/dirbackend.lua): user, alias, domain and
-- host answer with the database's values, nil for what it does not hold,
-- never a secret, and nil, "tempfail: ..." when the database is down; only
-- from a hook. And the routing policy's directory_routes (IndiMail's
-- SMTPROUTE): a user moved to another host (`indimail user move`) is
-- relayed to that host's address and SMTP port, another user of the same
-- domain is delivered here.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local fake_smtp = require("fake_smtp")
local backends = require("dirbackend")

local BIN = D.bin .. "/indimail"
local PW = "Passw0rd-1"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- bin/indimail -c config args...; exit code and output.
local function cli(config, args, stdin)
  local parts = { BIN, "-c", q(config) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ")
  if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
  local out, code = D.sh(cmd)
  return code, out
end

-- The mail hook answers MAIL FROM:<GROUP@remote.test> with a reject whose
-- text shows what the lookups of that group returned (sorted keys).
local PROBES = [[
local loaderr = select(2, pcall(indimail.directory.user, "joe@example.test"))
local dir = indimail.directory
local function show(v, err)
  if v == nil then return "nil" .. (err and ("<" .. err .. ">") or "") end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(v[tonumber(k) or k]) end
  return "{" .. table.concat(out, ",") .. "}"
end
local groups = {
  user = function()
    return show(dir.user("joe@example.test")) .. " " .. show(dir.user("Joe@Alias.test"))
      .. " " .. show(dir.user("off@example.test")) .. " " .. show(dir.user("ghost@example.test"))
  end,
  alias = function()
    return show(dir.alias("info@example.test")) .. " " .. show(dir.alias("nobody@example.test"))
  end,
  domain = function()
    return show(dir.domain("example.test")) .. " " .. show(dir.domain("ALIAS.test"))
      .. " " .. show(dir.domain("remote.test"))
  end,
  host = function()
    return show(dir.host("ann@example.test")) .. " " .. show(dir.host(dir.user("ann@alias.test")))
      .. " " .. show(dir.host("joe@example.test")) .. " " .. show(dir.host("ghost@example.test"))
  end,
  down = function()
    return show(dir.user("joe@example.test")) .. " " .. show(dir.host("ann@example.test"))
  end,
  load = function() return tostring(loaderr) end,
}
indimail.hook("mail", function(session, tx)
  local g = groups[tx.sender:match("^(%w+)@")]
  if g then return indimail.reject(g(), 550, "5.7.1") end
end, "probe")
]]

-- A daemon on a new database of fx with the users and hosts below.
local function start(fx, o)
  local db = fx.fresh()
  o.directory = db.directory .. ", cache_ttl = 0, negative_ttl = 0"
  local d = D.start_for_test(o)
  d.db = db
  d.cli = function(args, stdin) return cli(d.config, args, stdin) end
  local function ok(args, stdin)
    local code, out = d.cli(args, stdin)
    assert.equal(0, code, table.concat(args, " ") .. ": " .. out)
  end
  ok{ "domain", "add", "example.test" }
  ok{ "domain", "add", "alias.test", "--alias-of", "example.test" }
  ok({ "user", "add", "joe@example.test", "--password-stdin", "--quota", "2M", "--no-relay" }, PW)
  ok({ "user", "add", "ann@example.test", "--password-stdin" }, PW)
  ok({ "user", "add", "off@example.test", "--password-stdin", "--disable", "--no-smtp" }, PW)
  ok{ "alias", "add", "info@example.test", "joe@example.test", "x@remote.test" }
  -- this host under its hostname, and the other one
  ok{ "host", "add", "mx.test.example", "127.0.0.1" }
  ok{ "host", "add", "host2", "127.0.0.1", "--port", tostring(o.host2_port or 2626) }
  ok{ "user", "move", "joe@example.test", "mx.test.example" }
  ok{ "user", "move", "ann@example.test", "host2" }
  return d
end

local function probe(d, group)
  local c = d:session()
  local code, text = c:cmd("MAIL FROM:<" .. group .. "@remote.test>")
  c:cmd("QUIT")
  return code, (text:gsub("^550 5%.7%.1 ", ""))
end

describe("indimail.directory on the configuration backend", function()
  after_each(cleanup.run)

  it("answers from mailboxes and local_domains, and knows no hosts", function()
    local d = D.start_for_test{ policies = PROBES, mailboxes = "users = { "
      .. "{ address = 'joe@example.test', quota = 1000, no_relay = true, "
      .. "password = '$y$j9T$abcdefghijklmnop$0123456789' }, 'ann@example.test' }, "
      .. "aliases = { ['info@example.test'] = { 'joe@example.test', 'x@remote.test' } }" }
    local _, text = probe(d, "user")
    assert.equal("{address=joe@example.test,disabled=false,no_relay=true,no_smtp=false,quota=1000} "
      .. "nil nil nil", text)
    _, text = probe(d, "alias")
    assert.equal("{1=joe@example.test,2=x@remote.test} nil", text)
    _, text = probe(d, "domain")
    assert.equal("true false false", text)
    _, text = probe(d, "host")
    assert.equal("nil nil nil nil", text)
  end)
end)

describe("a hook that stops while it waits on the directory", function()
  after_each(cleanup.run)

  it("cancels the lookup at the hook's timeout; the worker serves on and drains", function()
    -- every lookup answers on the next loop turn, and no name is asked
    -- twice (no cache hit): the hook always waits
    local d = D.start_for_test{ env = { INDIMAIL_DIRECTORY_DEFER = "1" },
      limits = "hook_instructions = 100000000",
      timeouts = "command = 30, data = 30, tls = 10, hook = 1, drain = 1",
      policies = [[
indimail.hook("mail", function(session, tx)
  for n = 1, 1e7 do
    assert(indimail.directory.domain("d" .. n .. ".test") == false)
  end
end)
]] }
    local c = d:session()
    local code, text = c:cmd("MAIL FROM:<spin@remote.test>")
    assert.equal(451, code, text)
    assert.matches("event=hook_error [^\n]*time budget", d:log())
    -- the worker keeps serving
    c = d:session()
    assert.equal(250, (c:cmd("RSET")))
    -- the daemon stops while a hook waits: the drain ends it (timeout)
    c:send("MAIL FROM:<spin@remote.test>\r\n")
    D.t.sleep(0.3)
    assert.equal("exited", (d:stop()))
    assert.equal(1, d:count_log("event=worker_started"), d:log():sub(-2000))
    assert.equal(2, d:count_log("event=hook_error [^\n]*time budget"), d:log():sub(-2000))
    assert.matches("event=worker_exit reason=drained", d:log())
  end)
end)

for _, fx in ipairs(backends.all()) do
describe(fx.name, function()
  setup(fx.setup)
  teardown(fx.teardown)

describe("indimail.directory from a hook", function()
  after_each(cleanup.run)

  it("returns users, aliases, domains and hosts, nil for unknown names, no secret", function()
    local d = start(fx, { policies = PROBES })
    local code, text = probe(d, "user")
    assert.equal(550, code, text)
    assert.equal("{address=joe@example.test,disabled=false,host=mx.test.example,no_relay=true,"
      .. "no_smtp=false,quota=2097152} "
      .. "{address=joe@example.test,disabled=false,host=mx.test.example,no_relay=true,"
      .. "no_smtp=false,quota=2097152} "
      .. "{address=off@example.test,disabled=true,no_relay=false,no_smtp=true,quota=0} nil", text)
    assert.not_matches("%$y%$", d:log())
    code, text = probe(d, "alias")
    assert.equal("{1=joe@example.test,2=x@remote.test} nil", text)
    code, text = probe(d, "domain")
    assert.equal("true true false", text)
    code, text = probe(d, "host")
    assert.equal("{address=127.0.0.1,host=host2,port=2626} {address=127.0.0.1,host=host2,port=2626} nil nil", text)
  end)

  it("is for hooks only", function()
    local d = start(fx, { policies = PROBES })
    local _, text = probe(d, "load")
    assert.matches("indimail%.directory%.user can only be called from a hook", text)
  end)

  it("returns nil, \"tempfail: ...\" when the database is down, and recovers", function()
    local d = start(fx, { policies = PROBES })
    assert.matches("^{address=joe", select(2, probe(d, "down")))
    fx.down(d.db)
    local text
    assert.is_truthy(D.eventually(function()
      text = select(2, probe(d, "down"))
      return text:match("^nil<")
    end, 10, 0.3), text)
    assert.equal("nil<tempfail: directory user lookup failed> "
      .. "nil<tempfail: directory host lookup failed>", text)
    fx.up(d.db)
    assert.is_truthy(D.eventually(function()
      text = select(2, probe(d, "down"))
      return text:match("^{address=joe")
    end, 10, 0.3), text)
  end)
end)

describe("the routing policy's directory_routes", function()
  after_each(cleanup.run)

  it("relays a user moved to another host there and delivers the others here", function()
    local port = D.free_tcp_port()
    local sink = fake_smtp.start(D.scratch_dir("host2"), "127.0.0.1", port)
    local d = start(fx, { deliver = true, host2_port = port,
      policies = "indimail.policy('routing', { directory_routes = true })" })
    local qid = d:send("someone@remote.test", { "ann@example.test", "joe@example.test" },
      "From: someone@remote.test\r\nSubject: split\r\n\r\nbody\r\n")
    assert.is_truthy(qid)
    assert.is_truthy(maildir.wait(d, "joe", 1, 10), d:log():sub(-3000))
    assert.is_truthy(D.eventually(function() return sink.count("\nMESSAGE ") >= 1 end, 10),
      d:log():sub(-3000))
    assert.matches("\nRCPT ann@example%.test\n", sink.message(1))
    assert.not_matches("joe@example%.test", sink.message(1))
    assert.equal(0, #maildir.new_files(d, "ann"))
    assert.matches("event=delivered[^\n]*to=ann@example%.test relay=127%.0%.0%.1", d:log())
  end)
end)
end)
end

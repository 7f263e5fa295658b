-- lua/policies/envrules.lua without a daemon (tests/helpers/fake_indimail.lua);
-- over SMTP: tests/integration/envrules_spec.lua.
local F = require("fake_indimail")

local S = { ip = "192.0.2.7" }
local function tx(sender, size) return { sender = sender, size_hint = size, env = {}, notes = {} } end

describe("envrules policy", function()
  it("sets the first matching from rule's variables in tx.env and tx.notes, with a log line", function()
    local H, I = F.policy("envrules", { from = {
      "# comment", "",
      "*@partner.example:NODNSCHECK=1,DATABYTES=1000,QUEUEDIR=/var/q2",
      "*:DATABYTES=5000" } })
    local t = tx("Joe@Partner.example")
    assert.is_nil(H.mail(S, t))
    assert.are.same({ NODNSCHECK = "1", DATABYTES = "1000", QUEUEDIR = "/var/q2" }, t.env)
    assert.are.same(t.env, t.notes.envrules)
    assert.are.same({ event = "envrules", kind = "from", subject = "joe@partner.example",
      pattern = "*@partner.example", ip = "192.0.2.7" }, I.logs[1])
    local o = tx("ann@other.example")
    H.mail(S, o)
    assert.are.same({ DATABYTES = "5000" }, o.env)
  end)

  it("applies rcpt rules at RCPT, and VAR= unsets", function()
    local H = F.policy("envrules", { from = { "*:ROUTE=a.test" }, rcpt = { "*@lists.example:ROUTE=,QUEUEDIR=/var/q2" } })
    local t = tx("x@y.test")
    H.mail(S, t)
    assert.are.equal("a.test", t.env.ROUTE)
    H.rcpt(S, t, "l@LISTS.example")
    assert.is_nil(t.env.ROUTE)
    assert.are.equal("/var/q2", t.env.QUEUEDIR)
  end)

  it("grants relaying for the transaction with RELAYCLIENT on a sender rule", function()
    local H = F.policy("envrules", { from = { "*@lan.example:RELAYCLIENT=", "*@other.example:NODNSCHECK=1" } })
    local t = tx("printer@lan.example")
    assert.is_nil(H.mail(S, t))
    assert.is_true(t.relay)
    local o = tx("x@other.example")
    H.mail(S, o)
    assert.is_nil(o.relay)
    local u = tx("printer@lan.example")
    H.mail({ ip = "192.0.2.7", auth_user = "u@lan.example" }, u)
    assert.is_nil(u.relay)      -- a user: the directory decides (no_relay)
  end)

  it("refuses RELAYCLIENT on a recipient rule (the core answers relaying first)", function()
    assert.has_error(function() F.policy("envrules", { rcpt = { "*@x.example:RELAYCLIENT=1" } }) end,
      "envrules: rcpt rule *@x.example: RELAYCLIENT works in sender (from) rules only")
  end)

  it("honours DATABYTES at MAIL (SIZE=) and after the dot with 552 5.3.4", function()
    local H = F.policy("envrules", { from = { "*@small.example:DATABYTES=1000" } })
    local v = H.mail(S, tx("a@small.example", 2000))
    assert.are.same({ action = "reject", code = 552, status = "5.3.4",
      text = "Message size 2000 exceeds the limit of 1000 bytes for this sender" }, v)
    local t = tx("a@small.example")
    assert.is_nil(H.mail(S, t))
    assert.are.equal(552, H.message(S, t, F.msg({}, 1001)).code)
    assert.is_nil(H.message(S, t, F.msg({}, 1000)))
    assert.is_nil(H.message(S, tx("b@big.example"), F.msg({}, 10 ^ 7)))
  end)

  it("routes by ROUTE in the route hook", function()
    local H = F.policy("envrules", {})
    assert.is_nil(H.route(S, { env = {} }, "a@b.test"))
    assert.are.same({ action = "route", host = "relay.example", port = 2525 },
      H.route(S, { env = { ROUTE = "relay.example:2525" } }, "a@b.test"))
    assert.are.same({ action = "route", host = "192.0.2.1", port = 25 },
      H.route(S, { env = { ROUTE = "192.0.2.1" } }, "a@b.test"))
  end)

  it("reads control files and names a bad line", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("*@a.example:DATABYTES=10\nbroken line\n")
    f:close()
    assert.has_error(function() F.policy("envrules", { from = path }) end,
      "envrules: " .. path .. ":2: a line is pattern:VAR=value,...")
    assert.has_error(function() F.policy("envrules", { rcpt = { "*:NO SPACE=1" } }) end,
      "envrules: rcpt entry 1: bad variable 'NO SPACE=1' (VAR=value)")
    assert.has_error(function() F.policy("envrules", { mail = {} }) end, "envrules: unknown setting mail")
    os.remove(path)
  end)
end)

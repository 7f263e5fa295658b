-- lua/policies/blackhole.lua and quarantine.lua without a daemon
-- (tests/helpers/fake_indimail.lua); over SMTP: tests/integration/blackhole_spec.lua.
local F = require("fake_indimail")

local S = { ip = "192.0.2.7" }
local function tx(sender, rcpts) return { sender = sender, rcpts = rcpts or {}, notes = {}, env = {} } end

describe("blackhole policy", function()
  local H, I
  before_each(function()
    H, I = F.policy("blackhole", { senders = { "*@spam.example" }, recipients = { "trap-*@example.test" } })
  end)

  it("discards a blackholed sender's transaction at MAIL, with a log line", function()
    assert.are.equal("discard", H.mail(S, tx("Joe@SPAM.example")).action)
    assert.are.same({ event = "blackhole", what = "sender", address = "Joe@SPAM.example", ip = "192.0.2.7" }, I.logs[1])
    assert.is_nil(H.mail(S, tx("joe@ok.example")))
    assert.is_nil(H.mail(S, tx("")))
  end)

  it("discards at RCPT when the first recipients are blackholed, and defers a kept one with 452 4.5.3", function()
    local t = tx("joe@ok.example")
    assert.are.equal("discard", H.rcpt(S, t, "trap-1@example.test").action)
    assert.are.equal("discard", H.rcpt(S, t, "trap-2@example.test").action)
    local v = H.rcpt(S, t, "ann@example.test")
    assert.are.equal(452, v.code)
    assert.are.equal("4.5.3", v.status)
    assert.are.equal("deferred", I.logs[3].what)
  end)

  it("accepts a blackholed recipient after a kept one and drops it at route", function()
    local t = tx("joe@ok.example")
    assert.is_nil(H.rcpt(S, t, "ann@example.test"))
    assert.is_nil(H.rcpt(S, t, "trap-1@example.test"))
    assert.are.equal("discard", H.route(S, t, "trap-1@example.test").action)
    assert.is_nil(H.route(S, t, "ann@example.test"))
  end)

  it("takes a matcher from lua/stdlib/tables.lua and refuses bad settings", function()
    local match = require("match")
    local H2 = F.policy("blackhole", { recipients = match.exact({ "x@example.test" }) })
    assert.are.equal("discard", H2.rcpt(S, tx("a@b.test"), "X@example.test").action)
    assert.has_error(function() F.policy("blackhole", { sender = {} }) end, "blackhole: unknown setting sender")
    assert.has_error(function() F.policy("blackhole", { senders = "x" }) end,
      "blackhole: senders must be a list or a matcher")
  end)
end)

describe("quarantine policy", function()
  local H, I
  before_each(function()
    H, I = F.policy("quarantine", { address = "q@example.test", senders = { "*@suspicious.example" },
      recipients = { "ceo@example.test" }, headers = { Subject = { "*invoice*overdue*" } } })
  end)

  it("quarantines on the sender, a recipient or a header, naming the rule", function()
    local v = H.message(S, tx("x@suspicious.example", { "a@example.test" }), F.msg({}))
    assert.are.same({ action = "quarantine", address = "q@example.test",
      reason = "policy quarantine: sender x@suspicious.example" }, v)
    assert.are.same({ event = "quarantine_rule", reason = "sender x@suspicious.example",
      address = "q@example.test", ip = "192.0.2.7" }, I.logs[1])
    v = H.message(S, tx("a@b.test", { "a@example.test", "CEO@example.test" }), F.msg({}))
    assert.are.equal("policy quarantine: recipient CEO@example.test", v.reason)
    v = H.message(S, tx("a@b.test", { "a@example.test" }), F.msg({ { "Subject", "Your INVOICE is overdue" } }))
    assert.are.equal("policy quarantine: header Subject", v.reason)
  end)

  it("lets other messages pass", function()
    assert.is_nil(H.message(S, tx("a@b.test", { "a@example.test" }), F.msg({ { "Subject", "hello" } })))
  end)

  it("needs an address and refuses unknown settings", function()
    assert.has_error(function() F.policy("quarantine", {}) end,
      "quarantine: address must be the quarantine mailbox (an address)")
    assert.has_error(function() F.policy("quarantine", { address = "q@x", header = {} }) end,
      "quarantine: unknown setting header")
  end)
end)

-- lua/policies/virus.lua without a daemon (tests/helpers/fake_indimail.lua,
-- indimail.clamd.scan faked per case): its settings, verdicts and log
-- lines. Over SMTP with a real clamd: tests/integration/virus_spec.lua.
local F = require("fake_indimail")

local S = { ip = "192.0.2.7" }
local TX = { sender = "joe@ok.test", rcpts = { "a@example.test" }, notes = {}, env = {} }

-- The policy with settings s and a scanner answering r1, r2, r3; also the
-- options each scan was given.
local function with_scanner(s, r1, r2, r3)
  local H, I = F.policy("virus", s)
  local seen = {}
  I.clamd = { scan = function(_, opts) seen[#seen + 1] = opts; return r1, r2, r3 end }
  return H, I, seen
end

describe("virus policy", function()
  it("passes a clean message and logs result=clean with the scan's ms", function()
    local H, I, seen = with_scanner({ clamd = { socket = "/s" }, timeout = 7 }, "clean", nil, 12)
    assert.is_nil(H.message(S, TX, F.msg({}, 500)))
    assert.are.same({ socket = "/s", timeout = 7 }, seen[1])
    assert.are.same({ event = "virus", result = "clean", ms = 12, size = 500 }, I.logs[1])
  end)

  it("rejects a virus with 554 5.7.0 naming it", function()
    local H, I = with_scanner({}, "virus", "Eicar-Test", 3)
    local v = H.message(S, TX, F.msg({}))
    assert.are.same({ action = "reject", text = "Message contains a virus (Eicar-Test)",
      code = 554, status = "5.7.0" }, v)
    assert.are.equal("Eicar-Test", I.logs[1].name)
  end)

  it("quarantines a virus with action quarantine", function()
    local H = with_scanner({ action = "quarantine", quarantine = "q@example.test" }, "virus", "X", 1)
    assert.are.same({ action = "quarantine", address = "q@example.test", reason = "virus X" },
      H.message(S, TX, F.msg({})))
  end)

  it("tempfails with 451 4.7.0 when the scanner fails, or passes with on_error = 'pass'", function()
    local H, I = with_scanner({}, nil, "clamd at /s: connect: refused", 0)
    local v = H.message(S, TX, F.msg({}))
    assert.are.equal(451, v.code)
    assert.are.equal("4.7.0", v.status)
    assert.are.equal("clamd at /s: connect: refused", I.logs[1].error)
    local H2, I2 = with_scanner({ on_error = "pass" }, nil, "timeout", 5)
    assert.is_nil(H2.message(S, TX, F.msg({})))
    assert.are.equal("pass", I2.logs[1].on_error)
  end)

  it("skips messages over max_size and, if asked, authenticated clients", function()
    local H, I, seen = with_scanner({ max_size = 10, skip_authenticated = true }, "virus", "X", 1)
    assert.is_nil(H.message(S, TX, F.msg({}, 11)))
    assert.are.same({ event = "virus", result = "skipped", size = 11, max_size = 10 }, I.logs[1])
    assert.is_nil(H.message({ auth_user = "u@example.test" }, TX, F.msg({}, 5)))
    assert.are.equal(0, #seen)
  end)

  it("refuses bad settings, naming them", function()
    assert.has_error(function() F.policy("virus", { clam = {} }) end, "virus: unknown setting clam")
    assert.has_error(function() F.policy("virus", { clamd = { socket = "/s", host = "127.0.0.1" } }) end,
      "virus: clamd needs socket or host (one of them)")
    assert.has_error(function() F.policy("virus", { clamd = { path = "/s" } }) end,
      "virus: unknown clamd setting path")
    assert.has_error(function() F.policy("virus", { action = "drop" }) end,
      'virus: action must be "reject" or "quarantine"')
    assert.has_error(function() F.policy("virus", { action = "quarantine" }) end,
      "virus: action quarantine needs quarantine = the quarantine mailbox (an address)")
    assert.has_error(function() F.policy("virus", { on_error = "ignore" }) end,
      'virus: on_error must be "tempfail" or "pass"')
  end)
end)

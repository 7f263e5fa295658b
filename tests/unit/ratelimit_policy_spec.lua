-- lua/policies/ratelimit.lua without a daemon: indimail.counter, log and
-- tempfail are replaced by fakes in one process (the real counters are
-- checked across workers by tests/integration/ratelimit_spec.lua).

local function fake_indimail()
  local I = { logs = {}, windows = {}, holds = {} }
  I.counter = {
    add = function(k, w, d) I.windows[k] = (I.windows[k] or 0) + (d or 1); return I.windows[k] end,
    get = function(k) return I.windows[k] or 0 end,
    hold = function(k) I.holds[k] = (I.holds[k] or 0) + 1; return I.holds[k] end,
  }
  I.log = function(event, f) f.event = event; I.logs[#I.logs + 1] = f end
  I.tempfail = function(text, code, status)
    return { action = "tempfail", text = text, code = code, status = status }
  end
  return I
end

local function load(settings)
  _G.indimail = fake_indimail()
  local P = dofile("lua/policies/ratelimit.lua")
  return P.setup(settings), _G.indimail
end

describe("ratelimit policy", function()
  it("computes /24 and /64 subnets", function()
    _G.indimail = fake_indimail()
    local P = dofile("lua/policies/ratelimit.lua")
    assert.are.equal("192.0.2.0/24", P.subnet("192.0.2.77"))
    assert.are.equal("192.0.2.0/24", P.subnet("::ffff:192.0.2.77"))
    assert.are.equal("2001:db8:0:1::/64", P.subnet("2001:db8::1:0:0:0:5"))
    assert.are.equal("2001:db8:0:0::/64", P.subnet("2001:db8::5"))
    assert.are.equal("2001:db8:a:b::/64", P.subnet("2001:0db8:000a:000b:1:2:3:4"))
    assert.are.equal("0:0:0:0::/64", P.subnet("::1"))
  end)

  it("refuses the connection past concurrent_per_ip with 421 4.7.0 and a log line", function()
    local P, I = load({ connections = { concurrent_per_ip = 2 } })
    local s = { ip = "192.0.2.1", id = "S1" }
    assert.is_nil(P.connect(s))
    assert.is_nil(P.connect(s))
    local v = P.connect(s)
    assert.are.equal(421, v.code)
    assert.are.equal("4.7.0", v.status)
    assert.matches("concurrent connections from your address %(3, limit 2%)", v.text)
    assert.are.same({ event = "ratelimit", limit_name = "connections.concurrent_per_ip",
      key = "ratelimit:ip:192.0.2.1", count = 3, limit = 2, ip = "192.0.2.1", session = "S1" }, I.logs[1])
  end)

  it("counts a subnet across its addresses", function()
    local P = load({ connections = { per_subnet = 2 } })
    assert.is_nil(P.connect({ ip = "192.0.2.1" }))
    assert.is_nil(P.connect({ ip = "192.0.2.2" }))
    assert.are.equal(421, P.connect({ ip = "192.0.2.3" }).code)
    assert.is_nil(P.connect({ ip = "192.0.3.1" }))
  end)

  it("lets exactly per_sender messages through, and refuses MAIL once reached", function()
    local P, I = load({ messages = { per_sender = 2 }, interval = 30 })
    local s, tx = { ip = "192.0.2.1" }, { sender = "Joe@Example.TEST" }
    for _ = 1, 2 do
      assert.is_nil(P.mail(s, tx))
      assert.is_nil(P.message(s, tx))
    end
    local v = P.mail(s, tx)
    assert.are.equal(451, v.code)
    assert.are.equal("4.7.1", v.status)
    assert.matches("messages from sender <joe@example.test> in 30 s %(limit 2%)", v.text)
    assert.are.equal(451, P.message(s, tx).code)
    assert.are.equal("ratelimit:messages-sender:joe@example.test", I.logs[1].key)
  end)

  it("counts recipients per user, each recipient past the limit refused", function()
    local P = load({ recipients = { per_user = 3, interval = 3600 } })
    local s, tx = { ip = "192.0.2.1", auth_user = "joe@example.test" }, { sender = "" }
    for _ = 1, 3 do assert.is_nil(P.rcpt(s, tx, "a@b.test")) end
    local v = P.rcpt(s, tx, "a@b.test")
    assert.matches("recipients from user joe@example.test in 3600 s", v.text)
  end)

  it("leaves the null sender and a client without an address alone", function()
    local P = load({ messages = { per_sender = 1, per_ip = 1 } })
    assert.is_nil(P.message({ ip = "" }, { sender = "" }))
    assert.is_nil(P.message({ ip = "" }, { sender = "" }))
  end)

  it("rejects unknown settings and points tarpitting to limits", function()
    assert.has_error(function() load({ messages = { per_sendr = 1 } }) end,
      "ratelimit: unknown setting messages.per_sendr")
    assert.has_error(function() load({ messages = { per_sender = 0 } }) end,
      "ratelimit: messages.per_sender must be a positive integer")
    assert.has_error(function() load({ tarpit_after = 3 }) end,
      "ratelimit: tarpitting is limits.tarpit_after in indimail.config{}")
  end)
end)

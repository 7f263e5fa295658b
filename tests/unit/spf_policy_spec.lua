-- lua/policies/spf.lua without a daemon: indimail.spf.check is a stub
-- that answers what each test says, so the table of actions, the
-- per-domain overrides, the replies, tx.notes.spf, the log line and the
-- header at DATA are checked alone. The real check:
-- tests/integration/spf_spec.lua and spf_conformance_spec.lua.
package.path = "tests/helpers/?.lua;" .. package.path
local F = require("fake_indimail")

local function policy(settings, result, info)
  local H, I = F.policy("spf", settings)
  I.asked = {}
  I.spf = { check = function(q)
    I.asked[#I.asked + 1] = q
    return result, info or { domain = "example.org", identity = "mailfrom",
      comment = "mx.test: why", header = "x (y) identity=mailfrom" }
  end }
  return H, I
end

local function session() return { ip = "192.0.2.7", helo = "mail.example.org", id = "S1" } end
local function tx(sender) return { sender = sender or "a@example.org", notes = {} } end

describe("spf policy", function()
  it("rejects a fail with 550 5.7.23 by default, the domain's explanation first", function()
    local H = policy(nil, "fail", { domain = "example.org", identity = "mailfrom",
      comment = "c", explanation = "not ours", header = "h" })
    local v = H.mail(session(), tx())
    assert.are.equal("reject", v.action)
    assert.are.equal(550, v.code)
    assert.are.equal("5.7.23", v.status)
    assert.are.equal("SPF fail: not ours", v.text)
  end)

  it("tempfails a temperror with 451 4.7.24 and marks a permerror", function()
    local H = policy(nil, "temperror")
    local v = H.mail(session(), tx())
    assert.are.equal(451, v.code)
    assert.are.equal("4.7.24", v.status)
    H = policy(nil, "permerror")
    local t = tx()
    assert.is_nil(H.mail(session(), t))
    assert.is_true(t.notes.spf.mark)
  end)

  it("follows a domain's override over the defaults", function()
    local H = policy({ softfail = "accept", domains = { ["Example.ORG"] = { softfail = "reject" } } },
      "softfail")
    assert.are.equal(550, H.mail(session(), tx("a@example.org")).code)
    assert.is_nil(H.mail(session(), tx("a@other.test")))
  end)

  it("asks with the HELO identity for the null sender", function()
    local H, I = policy(nil, "pass")
    H.mail(session(), tx(""))
    assert.are.same({ ip = "192.0.2.7", helo = "mail.example.org" }, I.asked[1])
  end)

  it("leaves tx.notes.spf, logs event=spf and adds Received-SPF at data when marking", function()
    local H, I = policy(nil, "pass")
    local t = tx()
    H.mail(session(), t)
    assert.are.same({ result = "pass", domain = "example.org", identity = "mailfrom",
      header = "x (y) identity=mailfrom", mark = true }, t.notes.spf)
    assert.are.equal("spf", I.logs[1].event)
    assert.are.equal("mark", I.logs[1].action)
    local added = {}
    H.data(session(), t, { add_header = function(_, n, v, w) added = { n, v, w } end })
    assert.are.same({ "Received-SPF", "x (y) identity=mailfrom", "trace" }, added)
  end)

  it("never checks a logged-in user or a relay_from client", function()
    local H, I = policy(nil, "fail")
    local s = session()
    s.auth_user = "u@example.org"
    assert.is_nil(H.mail(s, tx()))
    s = session()
    s.relay = true
    assert.is_nil(H.mail(s, tx()))
    assert.are.equal(0, #I.asked)
  end)

  it("refuses an unknown action or setting when it loads", function()
    assert.has_error(function() F.policy("spf", { fail = "bounce" }) end,
      "spf: fail must be reject, tempfail, mark or accept")
    assert.has_error(function() F.policy("spf", { fial = "reject" }) end,
      "spf: unknown setting fial")
  end)
  it("checks the HELO identity at HELO when helo is set, with its own actions", function()
    local H, I = policy({ helo = { fail = "tempfail" } }, "fail",
      { domain = "mail.example.org", identity = "helo", comment = "c", header = "h" })
    local s = session()
    s.notes = {}
    local v = H.helo(s, "mail.example.org")
    assert.are.same({ ip = "192.0.2.7", helo = "mail.example.org" }, I.asked[1])
    assert.are.equal(451, v.code)
    assert.are.equal("fail", s.notes.spf_helo.result)
    assert.are.equal("helo", I.logs[1].identity)
    local H2 = policy(nil, "fail")
    assert.is_nil(H2.helo)
    assert.has_error(function() F.policy("spf", { helo = "yes" }) end)
  end)
end)

-- lua/policies/dkim_sign.lua and dkim_verify.lua without a daemon: the
-- bindings are stubs answering what each test says, so the settings, who
-- gets signed with which domain, the Authentication-Results value, the
-- forged-header rule and the actions are checked alone. The real thing:
-- tests/integration/dkim_sign_spec.lua and dkim_verify_spec.lua.
package.path = "tests/helpers/?.lua;" .. package.path
local F = require("fake_indimail")

local function with_edits(m)
  m.added, m.signed = {}, nil
  function m.add_header(_, name, value, where) m.added[#m.added + 1] = { name, value, where } end
  function m.dkim_sign(_, t) m.signed = t end
  return m
end

local function tx(sender) return { sender = sender or "joe@example.com", notes = {} } end

describe("dkim_sign policy", function()
  local function policy(settings, keys)
    local H, I = F.policy("dkim_sign", settings)
    I.dkim = { has_key = function(d) return (keys or { ["example.com"] = "s1" })[d] end }
    return H, I
  end

  it("refuses unknown settings and a bad sign_failure", function()
    assert.has_error(function() F.policy("dkim_sign", { listner = {} }) end,
      "dkim_sign: unknown setting listner")
    assert.has_error(function() F.policy("dkim_sign", { sign_failure = "accept" }) end,
      'dkim_sign: sign_failure must be "tempfail" or "pass"')
  end)

  it("asks a logged-in user's message to be signed with the From: domain's key", function()
    local H = policy()
    local m = with_edits(F.msg({ { "From", "Joe <joe@Example.com>" } }))
    H.message({ auth_user = "joe@example.com", listener = "smtp" }, tx("bounce@other.test"), m)
    assert.are.same({ domain = "example.com", sign_failure = "tempfail" }, m.signed)
  end)

  it("falls back to the envelope sender's domain, and signs on a listed listener", function()
    local H = policy({ listeners = { "smtp" }, sign_failure = "pass" })
    local m = with_edits(F.msg({ { "From", "x@nokey.test" } }))
    H.message({ listener = "smtp" }, tx("joe@example.com"), m)
    assert.are.same({ domain = "example.com", sign_failure = "pass" }, m.signed)
  end)

  it("leaves alone mail from other listeners and domains without a key", function()
    local H = policy()
    local m = with_edits(F.msg({ { "From", "joe@example.com" } }))
    H.message({ listener = "smtp" }, tx(), m)
    assert.is_nil(m.signed)
    H.message({ auth_user = "a@nokey.test" }, tx("a@nokey.test"),
      with_edits(F.msg({ { "From", "a@nokey.test" } })))
  end)
end)

describe("dkim_verify policy", function()
  local function policy(settings, results)
    local H, I, P = F.policy("dkim_verify", settings)
    I.dkim = { verify = function() return results or {} end,
      authserv_id = function() return "mx.example.net" end }
    return H, I, P
  end

  it("refuses unknown settings and actions a result cannot take", function()
    assert.has_error(function() F.policy("dkim_verify", { fial = "mark" }) end,
      "dkim_verify: unknown setting fial")
    assert.has_error(function() F.policy("dkim_verify", { temperror = "reject" }) end,
      "dkim_verify: temperror must be mark or tempfail")
  end)

  it("writes RFC 8601's header: our id, one dkim= per signature, then spf=", function()
    local _, _, P = policy()
    local v = P.header("mx.example.net", {
      { result = "pass", domain = "example.com", selector = "s1", b = "T1gYCnO6" },
      { result = "fail", domain = "example.org", selector = "s2", b = "ab/+=cd", error = 'bad "sig"' },
    }, { result = "softfail", domain = "example.com", identity = "mailfrom" })
    assert.are.equal("mx.example.net;\n\tdkim=pass header.d=example.com header.s=s1 header.b=T1gYCnO6;"
      .. "\n\tdkim=fail reason=\"bad sig\" header.d=example.org header.s=s2 header.b=ab/+=cd;"
      .. "\n\tspf=softfail smtp.mailfrom=example.com", v)
    assert.are.equal("mx.example.net;\n\tdkim=none", P.header("mx.example.net", {}, nil))
  end)

  it("marks by default, leaves tx.notes.dkim, and removes only our own forged headers", function()
    local results = { { result = "temperror", domain = "example.com", error = "key DNS query failed" } }
    local H = policy(nil, results)
    local m = with_edits(F.msg({ { "Authentication-Results", "MX.example.net; dkim=pass" },
      { "Authentication-Results", "other.example; dkim=pass" } }))
    local t = tx()
    assert.is_nil(H.message({ listener = "smtp" }, t, m))
    assert.are.same(results, t.notes.dkim)
    assert.are.equal("Authentication-Results", m.removed[1].name)
    assert.are.equal("other.example; dkim=pass", m.added[1][2])
    assert.matches("^mx%.example%.net;\n\tdkim=temperror", m.added[2][2])
  end)

  -- indimail.authres.parse here is the real parser (fake_indimail.lua).
  it("finds our id behind comments, quotes and folds, and removes a malformed field in our name", function()
    local H = policy()
    local m = with_edits(F.msg({
      { "Authentication-Results", "(forged) MX.example.net (x); dkim=pass" },
      { "Authentication-Results", '"mx.example.net"; spf=pass smtp.mailfrom=example.com' },
      { "Authentication-Results", "\r\n mx.example.net;\r\n\tdkim=pass" },
      { "Authentication-Results", "mx.example.net; dkim=pass header.d=example.com;" },
      { "Authentication-Results", "mx.example.net.evil.test; dkim=pass" },
      { "Authentication-Results", "other.example; dkim=pass action=none" },
      { "Authentication-Results", '"unterminated; dkim=pass' } }))
    H.message({ listener = "smtp" }, tx(), m)
    -- kept ones go back prepended last first, so in their order on top
    assert.are.same({ '"unterminated; dkim=pass', "other.example; dkim=pass action=none",
      "mx.example.net.evil.test; dkim=pass" }, { m.added[1][2], m.added[2][2], m.added[3][2] })
    assert.are.equal(4, #m.added)
  end)

  it("rejects a fail with 550 5.7.20 and tempfails a temperror with 451 4.7.5 when told", function()
    local H = policy({ fail = "reject" }, { { result = "fail", domain = "example.com", error = "x" } })
    local v = H.message({}, tx(), with_edits(F.msg({})))
    assert.are.same({ "reject", 550, "5.7.20" }, { v.action, v.code, v.status })
    H = policy({ temperror = "tempfail" }, { { result = "temperror", domain = "example.com" } })
    v = H.message({}, tx(), with_edits(F.msg({})))
    assert.are.same({ "tempfail", 451, "4.7.5" }, { v.action, v.code, v.status })
  end)

  it("does not verify a logged-in user's mail", function()
    local H = policy(nil, { { result = "fail" } })
    local m = with_edits(F.msg({}))
    local t = tx()
    H.message({ auth_user = "joe@example.com" }, t, m)
    assert.is_nil(t.notes.dkim)
    assert.are.equal(0, #m.added)
  end)
end)

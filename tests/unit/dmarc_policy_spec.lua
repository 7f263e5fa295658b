-- lua/policies/dmarc.lua without a daemon: indimail.dmarc is a stub that
-- answers what each test says, so the settings, the disposition after the
-- local overrides, the verdicts, the Authentication-Results value and the
-- report line are checked alone. The real evaluation (libopendmarc, libpsl,
-- GMime, DNS): tests/integration/dmarc_spec.lua.
package.path = "tests/helpers/?.lua;" .. package.path
local F = require("fake_indimail")

local function outcome(t)
  local r = { result = "fail", policy = "reject", disposition = "reject", p = "reject", sp = "reject",
    pct = 100, adkim = "r", aspf = "r", from_domain = "example.com",
    organizational_domain = "example.com", record_domain = "example.com",
    spf_aligned = false, dkim_aligned = false }
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

local function policy(settings, answer, from, why)
  local H, I, P = F.policy("dmarc", settings)
  I.checked = {}
  I.dmarc = {
    from_domain = function() return from, why end,
    check = function(t) I.checked[#I.checked + 1] = t; return answer end,
  }
  I.dkim = { authserv_id = function() return "mx.example.net" end }
  return H, I, P
end

local function msg()
  local m = F.msg({ { "From", "joe@example.com" } })
  m.added = {}
  function m.add_header(_, name, value, where) m.added[#m.added + 1] = { name, value, where } end
  return m
end

local function tx()
  return { sender = "bounce@example.com", notes = {
    spf = { result = "pass", domain = "example.com", identity = "mailfrom" },
    dkim = { { result = "fail", domain = "example.com", selector = "s1" },
      { result = "pass", domain = "other.example", selector = "s2" } } } }
end

local SESSION = { ip = "192.0.2.7" }

describe("dmarc policy", function()
  it("refuses unknown settings and bad values", function()
    assert.has_error(function() F.policy("dmarc", { mod = "monitor" }) end, "dmarc: unknown setting mod")
    assert.has_error(function() F.policy("dmarc", { mode = "off" }) end, "dmarc: mode must be enforce or monitor")
    assert.has_error(function() F.policy("dmarc", { temperror = "reject" }) end,
      "dmarc: temperror must be accept or tempfail")
    assert.has_error(function() F.policy("dmarc", { quarantine = "spam" }) end,
      'dmarc: quarantine must be "header" or the quarantine mailbox (an address)')
    assert.has_error(function() F.policy("dmarc", { domains = { ["a.example"] = "reject" } }) end,
      'dmarc: domains[a.example] must be "monitor" or "quarantine"')
  end)

  it("hands the From domain and the spf and dkim notes to indimail.dmarc.check", function()
    local H, I = policy(nil, outcome{ result = "pass", disposition = "none" }, "example.com")
    local t = tx()
    assert.is_nil(H.message(SESSION, t, msg()))
    assert.are.same({ from_domain = "example.com", spf = t.notes.spf, dkim = t.notes.dkim }, I.checked[1])
    assert.are.equal("pass", t.notes.dmarc.result)
  end)

  it("rejects with 550 5.7.1 naming the domain when the disposition is reject", function()
    local H = policy(nil, outcome(), "example.com")
    local v = H.message(SESSION, tx(), msg())
    assert.are.same({ action = "reject", text = "DMARC policy of example.com is reject", code = 550,
      status = "5.7.1" }, v)
  end)

  it("quarantines to the mailbox, or tags the message with a header", function()
    local q = outcome{ policy = "quarantine", disposition = "quarantine" }
    local H = policy({ quarantine = "q@example.org" }, q, "example.com")
    assert.are.same({ action = "quarantine", address = "q@example.org",
      reason = "DMARC policy of example.com is quarantine" }, H.message(SESSION, tx(), msg()))
    H = policy(nil, q, "example.com")
    local m = msg()
    assert.is_nil(H.message(SESSION, tx(), m))
    assert.are.same({ "X-DMARC-Quarantine", "policy of example.com is quarantine" },
      { m.added[2][1], m.added[2][2] })
  end)

  it("caps the disposition per domain (its Organizational Domain too) and in monitor mode", function()
    local _, _, P = policy({ domains = { ["example.com"] = "quarantine" } })
    assert.are.same({ "quarantine", true }, { P.disposition(outcome()) })
    assert.are.same({ "quarantine", true },
      { P.disposition(outcome{ from_domain = "mail.example.com" }) })
    assert.are.same({ "reject", false },
      { P.disposition(outcome{ from_domain = "x.test", organizational_domain = "x.test" }) })
    _, _, P = policy({ mode = "monitor" })
    assert.are.same({ "none", true }, { P.disposition(outcome()) })
    assert.are.same({ "none", false }, { P.disposition(outcome{ disposition = "none" }) })
  end)

  it("writes the Authentication-Results value as RFC 7489 11.2 shows", function()
    local _, _, P = policy()
    assert.are.equal("mx.example.net; dmarc=pass (p=reject dis=none) header.from=example.com",
      P.header("mx.example.net", outcome{ result = "pass", disposition = "none", applied = "none" }))
    assert.are.equal("mx.example.net; dmarc=fail (p=reject dis=quarantine) header.from=example.com",
      P.header("mx.example.net", outcome{ applied = "quarantine" }))
    assert.are.equal('mx.example.net; dmarc=temperror reason="DNS: timeout" header.from=example.com',
      P.header("mx.example.net", { result = "temperror", reason = 'DNS: "timeout"', from_domain = "example.com" }))
  end)

  it("adds the field as a trace field named for this host", function()
    local H = policy(nil, outcome{ result = "pass", disposition = "none" }, "example.com")
    local m = msg()
    H.message(SESSION, tx(), m)
    assert.are.same({ "Authentication-Results",
      "mx.example.net; dmarc=pass (p=reject dis=none) header.from=example.com", "trace" }, m.added[1])
  end)

  it("says permerror for several From: fields (accepted, or 550 with permerror = 'reject')", function()
    local H, I = policy(nil, nil, nil, "multiple")
    local m = msg()
    assert.is_nil(H.message(SESSION, tx(), m))
    assert.are.equal(0, #I.checked)
    assert.matches("dmarc=permerror", m.added[1][2])
    H = policy({ permerror = "reject" }, nil, nil, "multiple")
    local v = H.message(SESSION, tx(), msg())
    assert.are.same({ 550, "5.7.1" }, { v.code, v.status })
  end)

  it("says none without a From domain", function()
    local H = policy(nil, nil, nil, "absent")
    local m = msg()
    assert.is_nil(H.message(SESSION, tx(), m))
    assert.are.equal('mx.example.net; dmarc=none reason="no From: domain"', m.added[1][2])
  end)

  it("accepts on temperror by default, answers 451 4.7.1 with temperror = 'tempfail'", function()
    local t = outcome{ result = "temperror", policy = "none", disposition = "none", reason = "DNS: timeout" }
    local H = policy(nil, t, "example.com")
    assert.is_nil(H.message(SESSION, tx(), msg()))
    H = policy({ temperror = "tempfail" }, t, "example.com")
    local v = H.message(SESSION, tx(), msg())
    assert.are.same({ "tempfail", 451, "4.7.1" }, { v.action, v.code, v.status })
  end)

  it("skips logged-in users and relay clients", function()
    local H, I = policy(nil, outcome(), "example.com")
    assert.is_nil(H.message({ auth_user = "joe@example.com" }, tx(), msg()))
    assert.is_nil(H.message({ relay = true, ip = "10.0.0.1" }, tx(), msg()))
    assert.are.equal(0, #I.checked)
  end)

  it("logs a report row: source, From, disposition, SPF and DKIM with their domains", function()
    local H, I = policy({ domains = { ["example.com"] = "monitor" } },
      outcome{ dkim_domain = nil, rua = "mailto:agg@example.com" }, "example.com")
    H.message(SESSION, tx(), msg())
    local l = I.logs[#I.logs]
    assert.are.same({ "dmarc", "192.0.2.7", "example.com", "fail", "reject", "none", "local", "pass",
      "example.com", "pass", "other.example", "s2", "mailto:agg@example.com" },
      { l.event, l.ip, l.header_from, l.result, l.policy, l.disposition, l.override, l.spf, l.spf_domain,
        l.dkim, l.dkim_domain, l.dkim_selector, l.rua })
  end)
end)

-- DKIM verification (lua/policies/dkim_verify.lua, indimail.dkim.verify on
-- the thread pool, keys through our DNS layer from a real dnsmasq): mail
-- signed by dkimpy (dkimsign, RSA and Ed25519) verifies → dkim=pass in an
-- Authentication-Results: header named for this host (RFC 8601); a
-- tampered body → dkim=fail; DNS down → dkim=temperror and the message is
-- still accepted; an unsigned one → dkim=none; an Authentication-Results
-- sent in our name is removed, another host's kept. Conformance: the RFC
-- 6376 and RFC 8463 example messages of python3-dkim's test data verify
-- with their keys served by dnsmasq.
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")

local DATA = "/usr/lib/python3/dist-packages/dkim/tests/data/"
local ID = "mx.test.example"	-- the daemon's hostname (daemon.lua)

-- dnsmasq's --txt-record for name: the record in strings of at most 255.
local function txt(name, record)
  record = record:gsub("%s+$", "")
  local parts = {}
  for i = 1, #record, 255 do parts[#parts + 1] = record:sub(i, i + 254) end
  return "--txt-record=" .. name .. "," .. table.concat(parts, ",")
end

local function message(subject, body)
  return ("From: Joe <joe@ok.test>\nTo: alice@example.test\nSubject: %s\n"
    .. "Date: Wed, 02 Dec 2026 10:00:00 +0000\nMessage-ID: <%s@ok.test>\n\n%s\n"):format(subject, subject, body)
end

-- dkimpy's dkimsign over msg: the signed message (LF line ends).
local function dkimpy_sign(dir, msg, selector, domain, key, alg)
  local f = dir .. "/unsigned"
  D.writefile(f, msg)
  return D.sh(("dkimsign --signalg %s %s %s %s < %s"):format(alg, selector, domain, key, f))
end

local function crlf(s)
  return (s:gsub("\r\n", "\n"):gsub("\n", "\r\n"))
end

-- Sends msg; the queued message's Authentication-Results value (unfolded).
local function received_ar(d, msg)
  local id = d:send("joe@ok.test", { "alice@example.test" }, crlf(msg))
  local _, queued = d:queued(id)
  -- ours is a trace field: on top, above this server's Received (RFC 8601)
  local ar = queued:match("^Authentication%-Results: (" .. ID:gsub("%.", "%%.") .. ";.-)\n%S")
  assert.truthy(ar and queued:find("\nReceived: from", 1, true), "A-R above our Received")
  return ar and ar:gsub("\n\t", " "), queued
end

describe("DKIM verification", function()
  local scratch, dns, rsa_key

  setup(function()
    scratch = D.mktemp("dkim_verify")
    rsa_key = scratch .. "/rsa.key"
    D.sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"):format(rsa_key))
    local p = D.sh(("openssl pkey -in %s -pubout -outform DER | base64 -w0"):format(rsa_key))
    dns = dnsmasq.start{ dir = scratch, records = {
      txt("s1._domainkey.ok.test", "v=DKIM1; k=rsa; p=" .. p),
      txt("test._domainkey.example.net", "v=DKIM1; k=ed25519; p=yi50DjK5O9pqbFpNHklsv9lqaS0ArSYu02qp1S0DW1Y="),
      txt("test._domainkey.football.example.com", D.readfile(DATA .. "test.txt")),
      txt("brisbane._domainkey.football.example.com",
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
      txt("sed._domainkey.test.ex", D.readfile(DATA .. "eximtest.dns")),
    } }
  end)

  teardown(function()
    if dns then dns.stop() end
    D.rmtemp(scratch)
  end)

  after_each(cleanup.run)

  local function start(o)
    o = o or {}
    return D.start_for_test{
      mailboxes = "users = { 'alice@example.test' }",
      dns = o.dns or ("127.0.0.1:" .. dns.port),
      config_extra = "dkim = { timeout = 3 },",
      policies = o.policies or "indimail.policy('dkim_verify')",
    }
  end

  it("passes a message dkimpy signed with RSA, in Authentication-Results", function()
    local d = start()
    local signed = dkimpy_sign(scratch, message("rsa", "Hello."), "s1", "ok.test", rsa_key, "rsa-sha256")
    local ar, queued = received_ar(d, signed)
    assert.truthy(ar, queued)
    assert.matches("dkim=pass header%.d=ok%.test header%.s=s1 header%.b=%S+", ar)
    assert.truthy(d:wait_log("event=dkim_verify .*result=pass", 2), d:log())
  end)

  it("passes a message dkimpy signed with Ed25519 (RFC 8463)", function()
    local d = start()
    local signed = dkimpy_sign(scratch, message("ed", "Hello."), "test", "example.net",
      DATA .. "ed25519test.key", "ed25519-sha256")
    local ar, queued = received_ar(d, signed)
    assert.matches("dkim=pass header%.d=example%.net header%.s=test", ar or queued)
  end)

  it("fails a signed message whose body was changed", function()
    local d = start()
    local signed = dkimpy_sign(scratch, message("tampered", "Pay 10 EUR."), "s1", "ok.test", rsa_key, "rsa-sha256")
    local ar, queued = received_ar(d, (signed:gsub("Pay 10 EUR", "Pay 99 EUR")))
    assert.matches("dkim=fail reason=\"[^\"]+\" header%.d=ok%.test", ar or queued)
  end)

  it("says temperror when DNS is down, and still accepts the message", function()
    local d = start{ dns = "127.0.0.1:" .. D.free_udp_port() }
    local signed = dkimpy_sign(scratch, message("dnsdown", "Hello."), "s1", "ok.test", rsa_key, "rsa-sha256")
    local ar, queued = received_ar(d, signed)
    assert.matches("dkim=temperror", ar or queued)
  end)

  it("with temperror = 'tempfail', answers 451 4.7.5 when DNS is down", function()
    local d = start{ dns = "127.0.0.1:" .. D.free_udp_port(),
      policies = "indimail.policy('dkim_verify', { temperror = 'tempfail' })" }
    local signed = dkimpy_sign(scratch, message("dnsdown2", "Hello."), "s1", "ok.test", rsa_key, "rsa-sha256")
    local c = d:session()
    local code, text = c:transaction("joe@ok.test", { "alice@example.test" }, crlf(signed))
    assert.are.equal(451, code, text)
    assert.matches("4%.7%.5", text)
  end)

  it("says dkim=none for an unsigned message, with SPF's result when the spf policy left one", function()
    local d = start{ policies = [[
indimail.hook("mail", function(session, tx)
  tx.notes.spf = { result = "pass", domain = "ok.test", identity = "mailfrom" }
end, "fake_spf")
indimail.policy('dkim_verify')]] }
    local ar, queued = received_ar(d, message("plain", "Hello."))
    assert.matches("^" .. ID:gsub("%.", "%%.") .. "; dkim=none; spf=pass smtp%.mailfrom=ok%.test$", ar or queued)
  end)

  it("removes an Authentication-Results sent in our name and keeps another host's", function()
    local d = start()
    local msg = "Authentication-Results: " .. ID .. "; dkim=pass header.d=forged.test\n"
      .. "Authentication-Results: other.example; dkim=pass header.d=ok.test\n" .. message("forged", "x")
    local _, queued = received_ar(d, msg)
    assert.is_nil(queued:find("forged%.test"), queued)
    assert.matches("Authentication%-Results: other%.example; dkim=pass", queued)
  end)

  describe("conformance (python3-dkim's test data)", function()
    it("verifies RFC 6376 Appendix A signed with Ed25519 and RSA (RFC 8463 Appendix A)", function()
      local d = start()
      local ar, queued = received_ar(d, D.readfile(DATA .. "rfc6376.signed.msg"))
      assert.matches("dkim=pass header%.d=football%.example%.com header%.s=brisbane", ar or queued)
      assert.matches("dkim=pass header%.d=football%.example%.com header%.s=test", ar or queued)
    end)

    it("verifies the RSA-only RFC 6376 example", function()
      local d = start()
      local ar, queued = received_ar(d, D.readfile(DATA .. "rfc6376.signed.rsa.msg"))
      assert.matches("dkim=pass header%.d=football%.example%.com header%.s=test", ar or queued)
    end)

    it("verifies Exim's Ed25519 signature (ed25519test2.msg)", function()
      local d = start()
      local ar, queued = received_ar(d, D.readfile(DATA .. "ed25519test2.msg"))
      assert.matches("dkim=pass header%.d=test%.ex header%.s=sed", ar or queued)
    end)
  end)
end)

-- The spf policy end to end: indimaild with lua/policies/spf.lua, a real
-- dnsmasq on 127.0.0.1 serving the SPF records, SMTP sessions from
-- 127.0.0.1. The check runs on the thread pool (indimail.spf.check); a
-- fail is 550 5.7.23, a softfail marked, a DNS server that is down a 451
-- 4.7.24, the null sender checked by its HELO name, and the
-- Received-SPF: header is in the queued message.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")

local defer = cleanup.defer

local ZONE = {
  "--txt-record=pass.test,v=spf1 ip4:127.0.0.1 -all",
  "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all",
  "--txt-record=soft.test,v=spf1 ~all",
  "--txt-record=lenient.test,v=spf1 -all",
  "--txt-record=mx.helo.test,v=spf1 ip4:127.0.0.0/8 -all",
  "--txt-record=bad.helo.test,v=spf1 -all",
  "--txt-record=syntax.test,v=spf1 ip4:127.0.0.1 a:example.com:8080 -all",
  "--txt-record=redir.test,v=spf1 redirect=fail.test ?all",
  "--txt-record=zero.test,v=spf1 ip4:192.0.2.1/0 -all",
}

local POLICY = [[
indimail.policy("spf", { domains = { ["lenient.test"] = { fail = "mark" } } })
]]

local MSG = "Subject: spf\r\n\r\nbody\r\n"

local function start(dns)
  return D.start_for_test{ dns = dns, policies = POLICY,
    mailboxes = "users = { 'alice@example.test' },",
    config_extra = "spf = { timeout = 3, cache_ttl = 60 }," }
end

local function with_dns()
  local dm = dnsmasq.start{ dir = D.scratch_dir("dns"), records = ZONE }
  defer(dm.stop)
  return start("127.0.0.1:" .. dm.port), dm
end

-- How many queries dnsmasq logged for name/type.
local function queries(dm, qtype, name)
  local n = 0
  for _ in (D.readfile(dm.log) or ""):gmatch("query%[" .. qtype .. "%] " .. name:gsub("%.", "%%.") .. " ") do
    n = n + 1
  end
  return n
end

describe("spf policy", function()
  after_each(cleanup.run)

  describe("with a DNS server that answers", function()
    local d, dm
    before_each(function() d, dm = with_dns() end)

    it("accepts a sender whose domain designates the client and marks the message pass", function()
      local qid = d:send("a@pass.test", { "alice@example.test" }, MSG)
      local _, msg = d:queued(qid)
      assert.matches("^Received%-SPF: pass %(.-%) client%-ip=127%.0%.0%.1; " ..
        "envelope%-from=\"a@pass%.test\"; helo=client%.example%.test; receiver=[^;]+; identity=mailfrom\r?\n", msg)
      -- RFC 7208 9.1: above the Received field this server adds
      assert.truthy(msg:find("Received-SPF:", 1, true) < msg:find("\nReceived: from", 1, true))
      assert.truthy(d:wait_log("event=spf .*result=pass", 2))
    end)

    it("rejects a sender whose domain does not designate the client with 550 5.7.23", function()
      local c = d:session()
      local code, text = c:cmd("MAIL FROM:<a@fail.test>")
      assert.equal(550, code)
      assert.matches("^550 5%.7%.23 SPF fail: .*does not designate 127%.0%.0%.1", text)
    end)

    it("marks a softfail (the default) and queues the message", function()
      local qid = d:send("a@soft.test", { "alice@example.test" }, MSG)
      local _, msg = d:queued(qid)
      assert.matches("Received%-SPF: softfail ", msg)
    end)

    it("follows a per-domain override: fail is only marked for lenient.test", function()
      local qid = d:send("a@lenient.test", { "alice@example.test" }, MSG)
      local _, msg = d:queued(qid)
      assert.matches("Received%-SPF: fail ", msg)
    end)

    it("marks a record with a syntax error permerror and says why (RFC 7208 4.6)", function()
      local qid = d:send("a@syntax.test", { "alice@example.test" }, MSG)
      local _, msg = d:queued(qid)
      assert.matches("Received%-SPF: permerror %(.-the SPF record of syntax%.test is invalid: " ..
        "a domain%-spec whose last label is no valid top label in 'a:example%.com:8080'%)", msg)
    end)

    it("reads what libspf2 misreads as RFC 7208 means: redirect= beside all, ip4:/0", function()
      local _, redir = d:queued(d:send("a@redir.test", { "alice@example.test" }, MSG))
      assert.matches("Received%-SPF: neutral ", redir)	-- not fail.test's fail
      local _, zero = d:queued(d:send("a@zero.test", { "alice@example.test" }, MSG))
      assert.matches("Received%-SPF: pass ", zero)
    end)

    it("checks the HELO name for the null sender (RFC 7208 2.4)", function()
      local c = d:session("mx.helo.test")
      assert.equal(250, (c:cmd("MAIL FROM:<>")))
      c = d:session("bad.helo.test")
      local code, text = c:cmd("MAIL FROM:<>")
      assert.equal(550, code)
      assert.matches("postmaster@bad%.helo%.test", text)
      assert.truthy(d:wait_log("event=spf .*identity=helo", 2))
    end)

    it("answers a repeated check from the cache without asking DNS again", function()
      local c = d:session()
      assert.equal(550, (c:cmd("MAIL FROM:<b@fail.test>")))
      assert.equal(550, (c:cmd("MAIL FROM:<b@fail.test>")))
      assert.equal(1, queries(dm, "TXT", "fail.test"))
    end)
  end)

  it("tempfails with 451 4.7.24 when the DNS server is down", function()
    local d = start("127.0.0.1:" .. D.free_udp_port())
    local c = d:session()
    local code, text = c:cmd("MAIL FROM:<a@pass.test>")
    assert.equal(451, code)
    assert.matches("^451 4%.7%.24 SPF temperror", text)
    assert.equal(250, (c:cmd("NOOP")))   -- the session goes on
  end)

  it("skips a relay_from client", function()
    local dm = dnsmasq.start{ dir = D.scratch_dir("dns"), records = ZONE }
    defer(dm.stop)
    local d = D.start_for_test{ dns = "127.0.0.1:" .. dm.port, policies = POLICY,
      relay_from = "'127.0.0.1'" }
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@fail.test>")))
  end)
  it("checks the HELO identity at EHLO with helo set (RFC 7208 2.3)", function()
    local dm = dnsmasq.start{ dir = D.scratch_dir("dns"), records = ZONE }
    defer(dm.stop)
    local d = D.start_for_test{ dns = "127.0.0.1:" .. dm.port,
      policies = 'indimail.policy("spf", { helo = { fail = "reject" } })' }
    local c = d:connect()
    assert.equal(220, (c:reply()))
    local code, text = c:cmd("EHLO bad.helo.test")
    assert.equal(550, code)
    assert.matches("^550 5%.7%.23 SPF fail", text)
    assert.truthy(d:wait_log("event=spf [^\n]*stage=helo", 2))
    assert.equal(250, (c:cmd("EHLO mx.helo.test")))
    assert.equal(250, (c:cmd("MAIL FROM:<>")))
  end)
end)

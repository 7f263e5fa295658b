-- The sender_domain policy against a real DNS server (dnsmasq on 127.0.0.1,
-- a free UDP port): MAIL FROM is accepted when the sender's domain can
-- receive replies, rejected when it cannot (RFC 5321 section 7.8-ish
-- practice, null MX RFC 7505), and only ever tempfailed when DNS itself
-- fails. Lookups yield: one slow answer never holds up other sessions.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local socket = require("socket")
local t = D.t

local POLICY = 'indimail.policy("sender_domain", { skip_relay_clients = false })'

-- ---- helpers -------------------------------------------------------------

local defer = cleanup.defer

-- The test zone; every other *.test name is answered locally: NXDOMAIN, at once.
local ZONE = {
  "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,127.0.0.1",
  "--host-record=aonly.test,127.0.0.2",
  -- dnsmasq serves "0 ." for this: c-ares reads the target as ""
  "--mx-host=nullmx.test,.,0",
  -- exists (a TXT record) but has no MX, A or AAAA
  "--txt-record=nodata.test,nothing here",
}

-- Starts dnsmasq serving the test zone (stopped at the end of the test);
-- extra: more arguments.
local function start_dnsmasq(dir, extra)
  local records = {}
  for _, r in ipairs(ZONE) do records[#records + 1] = r end
  for _, r in ipairs(extra or {}) do records[#records + 1] = r end
  local dm = dnsmasq.start{ dir = dir, records = records }
  defer(dm.stop)
  return dm
end

local function start_daemon(dns_port)
  return D.start_for_test{ dns = "127.0.0.1:" .. dns_port, policies = POLICY }
end

-- ---- the specification ---------------------------------------------------

describe("sender_domain policy with a real DNS server", function()
  after_each(cleanup.run)

  describe("when DNS answers", function()
    local d, c
    before_each(function()
      local dm = start_dnsmasq(D.scratch_dir("dns"))
      d = start_daemon(dm.port)
      c = d:session()
    end)

    it("accepts a sender whose domain has an MX", function()
      local code, text = c:cmd("MAIL FROM:<a@good.test>")
      assert.equal(250, code, text)
    end)

    it("accepts a sender whose domain has only an A record (implicit MX, RFC 5321 5.1)", function()
      local code, text = c:cmd("MAIL FROM:<a@aonly.test>")
      assert.equal(250, code, text)
    end)

    it("rejects a sender whose domain does not exist with 550 5.1.8", function()
      local code, text = c:cmd("MAIL FROM:<a@nx.test>")
      assert.equal(550, code)
      assert.matches("^550 5%.1%.8 .*nx%.test", text)
    end)

    it("rejects a sender whose domain exists but has no MX, A or AAAA with 550 5.1.8", function()
      local code, text = c:cmd("MAIL FROM:<a@nodata.test>")
      assert.equal(550, code)
      assert.matches("^550 5%.1%.8 ", text)
    end)

    it("rejects a sender whose domain publishes a null MX with 550 5.7.27 (RFC 7505)", function()
      local code, text = c:cmd("MAIL FROM:<a@nullmx.test>")
      assert.equal(550, code)
      assert.matches("^550 5%.7%.27 .*null MX", text)
    end)

    it("accepts the null reverse-path <> (bounces, RFC 5321 4.5.5)", function()
      assert.equal(250, (c:cmd("MAIL FROM:<>")))
    end)

    it("names the policy in the verdict log line", function()
      c:cmd("MAIL FROM:<a@nx.test>")
      assert.is_truthy(d:wait_log("event=verdict [^\n]*stage=mail policy=sender_domain action=reject", 2))
    end)

    it("answers lookups from many sessions at once, each correctly", function()
      -- Five sessions send MAIL before any reply is read: every lookup is
      -- in flight at the same time in the single worker.
      local cases = {
        { "a@good.test", "^250 " }, { "b@nx.test", "^550 5%.1%.8 .*nx%.test" },
        { "c@aonly.test", "^250 " }, { "d@nullmx.test", "^550 5%.7%.27 " },
        { "e@nodata.test", "^550 5%.1%.8 .*nodata%.test" },
      }
      local conns = {}
      for i = 1, #cases do conns[i] = d:session() end
      for i, case in ipairs(cases) do conns[i]:send("MAIL FROM:<" .. case[1] .. ">\r\n") end
      for i, case in ipairs(cases) do
        local _, text = conns[i]:reply()
        assert.matches(case[2], text or "(no reply)")
      end
    end)
  end)

  describe("when one lookup is slow", function()
    it("other sessions are answered meanwhile (the lookup yields, the loop goes on)", function()
      local dir = D.scratch_dir("dns")
      -- slow.test is forwarded to a UDP socket that never answers
      local silent = assert(socket.udp())
      assert(silent:setsockname("127.0.0.1", 0))
      defer(function() silent:close() end)
      local _, silent_port = silent:getsockname()
      local dm = start_dnsmasq(dir, { "--server=/slow.test/127.0.0.1#" .. silent_port })
      local d = start_daemon(dm.port)
      local slow = d:session()
      local others = {}
      for i = 1, 4 do others[i] = d:session() end
      local t0 = t.now()
      slow:send("MAIL FROM:<a@slow.test>\r\n")
      t.sleep(0.1)   -- the slow lookup is surely in flight first
      local domains = { "good.test", "aonly.test", "nx.test", "nullmx.test" }
      local want = { 250, 250, 550, 550 }
      for i = 1, 4 do others[i]:send("MAIL FROM:<x@" .. domains[i] .. ">\r\n") end
      for i = 1, 4 do
        local code, text = others[i]:reply()
        assert.equal(want[i], code, domains[i] .. ": " .. tostring(text))
      end
      local fast = t.now() - t0
      assert.is_true(fast < 1.5, ("the other sessions waited %.2fs"):format(fast))
      -- and the slow one ends as a temporary failure, never a rejection
      slow.s:settimeout(15)
      local code, text = slow:reply()
      assert.equal(451, code, text)
      assert.is_true(t.now() - t0 > fast)
    end)
  end)

  describe("when DNS fails", function()
    -- dns = { timeout = 2 } in the harness; the hook timeout is 5s.
    it("tempfails with 451 4.4.3 when the DNS server is gone, never 5xx", function()
      local dm = start_dnsmasq(D.scratch_dir("dns"))
      local d = start_daemon(dm.port)
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<a@good.test>")))
      assert.equal(250, (c:cmd("RSET")))
      dm.stop()
      local t0 = t.now()
      local code, text = c:cmd("MAIL FROM:<a@aonly.test>")
      local took = t.now() - t0
      assert.equal(451, code, text)
      assert.matches("^451 4%.4%.3 ", text)
      assert.is_true(took < 2.5, ("took %.2fs for a 2s DNS timeout"):format(took))
    end)

    it("tempfails with 451 4.4.3 within the DNS timeout when the server never answers", function()
      local silent = assert(socket.udp())
      assert(silent:setsockname("127.0.0.1", 0))
      defer(function() silent:close() end)
      local _, port = silent:getsockname()
      local d = start_daemon(port)
      local c = d:session()
      c.s:settimeout(15)
      local t0 = t.now()
      local code, text = c:cmd("MAIL FROM:<a@good.test>")
      local took = t.now() - t0
      assert.equal(451, code, text)
      assert.matches("^451 4%.4%.3 ", text)
      assert.is_true(took < 2.5, ("took %.2fs for a 2s DNS timeout"):format(took))
    end)
  end)
end)

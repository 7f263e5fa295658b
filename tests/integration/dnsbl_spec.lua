-- The dnsbl policy against real DNS: dnsmasq serves two test block lists
-- (bl.test, b2.test) with RFC 5782 entries for clients 127.0.0.x, and sends
-- the names of three "down" lists to a UDP socket that never answers. The
-- spec's client connects from 127.0.0.x source addresses, so each address
-- is a case: listed twice (550), listed once (tagged X-DNSBL), allowlisted,
-- a relay client, a list down (passes, logged), an error code
-- (127.255.255.254, not a hit), a list with on_error = "tempfail" (451).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local maildir = require("maildir")
local socket = require("socket")
local t = D.t

local DNS_TIMEOUT = 2   -- the daemon's dns.timeout in the generated config (seconds)

local function zone(blackhole)
  local dead = "127.0.0.1#" .. blackhole
  return {
    -- 127.0.0.2: the RFC 5782 test entry, on both lists
    "--host-record=2.0.0.127.bl.test,127.0.0.2", "--host-record=2.0.0.127.b2.test,127.0.0.3",
    "--host-record=3.0.0.127.b2.test,127.0.0.2",                       -- once
    "--host-record=4.0.0.127.bl.test,127.0.0.2", "--host-record=4.0.0.127.b2.test,127.0.0.2",
    "--host-record=6.0.0.127.bl.test,127.0.0.2", "--host-record=6.0.0.127.b2.test,127.0.0.2",
    -- a refused query's code on bl.test, a listing on b2.test
    "--host-record=8.0.0.127.bl.test,127.255.255.254", "--host-record=8.0.0.127.b2.test,127.0.0.2",
    "--server=/5.0.0.127.down1.test/" .. dead, "--server=/5.0.0.127.down2.test/" .. dead,
    "--server=/7.0.0.127.strict.test/" .. dead,
  }
end

local POLICY = [[
indimail.policy("dnsbl", {
  lists = {
    { zone = "bl.test", weight = 3, reason = "%s is listed in bl.test" },
    { zone = "b2.test", weight = 3, match = { "127.0.0.2", "127.0.0.3" } },
    { zone = "down1.test", weight = 3 },
    { zone = "down2.test", weight = 3 },
    { zone = "strict.test", weight = 1, on_error = "tempfail" },
  },
  reject_above = 5,
  allow = { "127.0.0.4/32" },
})
]]

-- A session from source address src, after EHLO.
local function session(d, src)
  local c = D.connect(d.ports.smtp, "127.0.0.1", src)
  cleanup.defer(function() c:close() end)
  assert.are.equal(220, (c:reply()))
  assert.are.equal(250, (c:cmd("EHLO client.example.test")))
  return c
end

local function dnsbl_line(d, ...) return d:wait_event("dnsbl", { ... }, true) end

local function message(subject)
  return ("From: a@sender.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\nhello\r\n"):format(subject)
end

describe("dnsbl policy with a real DNS server", function()
  local scratch, blackhole, dm, d

  setup(function()
    scratch = D.mktemp("dnsbl")
    blackhole = assert(socket.udp())
    assert(blackhole:setsockname("127.0.0.1", 0))
    local _, port = blackhole:getsockname()
    dm = dnsmasq.start{ dir = scratch, records = zone(port) }
    d = D.start{ dns = "127.0.0.1:" .. dm.port, policies = POLICY, deliver = true,
      mailboxes = "users = { 'alice@example.test' }", relay_from = "'127.0.0.6'" }
  end)

  teardown(function()
    if d then d:cleanup() end
    if dm then dm.stop() end
    if blackhole then blackhole:close() end
    D.rmtemp(scratch)
  end)

  after_each(cleanup.run)

  it("rejects the RFC 5782 test entry 127.0.0.2, listed on both lists (3 + 3 > 5), with 550 5.7.1 naming them", function()
    local code, text = session(d, "127.0.0.2"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(550, code, text)
    assert.matches("^550 5%.7%.1 Client 127%.0%.0%.2 blocked: 127%.0%.0%.2 is listed in bl%.test; listed by b2%.test",
      text)
    assert.truthy(dnsbl_line(d, "ip=127.0.0.2", "score=6", "lists=bl.test,b2.test", "action=reject"), d:log())
  end)

  it("delivers a client listed once (score 3) with X-DNSBL: score=3 lists=b2.test", function()
    local c = session(d, "127.0.0.3")
    local code, text = c:transaction("a@sender.test", { "alice@example.test" }, message("tagged"))
    assert.are.equal(250, code, text)
    local files = maildir.wait(d, "alice", 1)
    assert.truthy(files, d:log())
    local m = D.readfile(files[#files])
    assert.matches("\nX%-DNSBL: score=3 lists=b2%.test\r?\n", "\n" .. m)
    assert.truthy(dnsbl_line(d, "ip=127.0.0.3", "score=3", "action=tag"))
  end)

  it("never asks about an allowlisted client", function()
    local code, text = session(d, "127.0.0.4"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(250, code, text)
    assert.is_nil(D.readfile(dm.log):find("4.0.0.127.", 1, true))
  end)

  it("never asks about a relay client", function()
    local code, text = session(d, "127.0.0.6"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(250, code, text)
    assert.is_nil(D.readfile(dm.log):find("6.0.0.127.", 1, true))
  end)

  it("passes a client when two lists are down, asking them at once (one DNS timeout, not two), and logs each", function()
    local c = session(d, "127.0.0.5")
    local start = t.now()
    local code, text = c:cmd("MAIL FROM:<a@sender.test>")
    local took = t.now() - start
    assert.are.equal(250, code, text)
    -- it waited for the dead lists' timeout once, not once per list
    assert.is_true(took > DNS_TIMEOUT / 2 and took < 2 * DNS_TIMEOUT - 0.5, ("took %.2fs"):format(took))
    local line = dnsbl_line(d, "ip=127.0.0.5", "list=down1.test", "action=error", "on_error=pass")
    assert.truthy(line)
    assert.truthy(line:find("tempfail:", 1, true), line)
    assert.truthy(dnsbl_line(d, "ip=127.0.0.5", "list=down2.test", "action=error"))
    assert.truthy(dnsbl_line(d, "ip=127.0.0.5", "score=0", "action=pass"))
  end)

  it("takes a 127.255.255.254 answer as an error, not a listing", function()
    local code, text = session(d, "127.0.0.8"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(250, code, text)
    assert.truthy(dnsbl_line(d, "ip=127.0.0.8", "list=bl.test", "answer 127.255.255.254"))
    assert.truthy(dnsbl_line(d, "ip=127.0.0.8", "score=3", "lists=b2.test", "action=tag"))
  end)

  it("gives 451 4.3.0 when the hook's time runs out with lookups in flight, and the worker goes on", function()
    local d2 = D.start_for_test{ dns = "127.0.0.1:" .. dm.port, policies = POLICY,
      timeouts = "command = 30, data = 30, tls = 10, hook = 0.5, drain = 5" }
    local code, text = session(d2, "127.0.0.5"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(451, code, text)
    assert.matches("^451 4%.3%.0 ", text)
    t.sleep(DNS_TIMEOUT + 0.5)   -- the late answers arrive for a finished hook
    code, text = session(d2, "127.0.0.2"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(550, code, text)
    assert.are.equal(0, d2:count_log("event=worker_died"), d2:log())
    assert.are.equal(1, d2:count_log("event=worker_started"))
  end)

  it("answers 451 4.7.1 when a list with on_error = tempfail is down", function()
    local code, text = session(d, "127.0.0.7"):cmd("MAIL FROM:<a@sender.test>")
    assert.are.equal(451, code, text)
    assert.matches("^451 4%.7%.1 ", text)
    assert.truthy(dnsbl_line(d, "ip=127.0.0.7", "action=tempfail"))
  end)
end)

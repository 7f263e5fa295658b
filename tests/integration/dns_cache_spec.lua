-- The DNS cache shared by the workers (src/net/dns_cache.c) against a real
-- DNS server (dnsmasq, tests/helpers/dnsmasq.lua) and a scripted one: an
-- answer is kept for its TTL (a second lookup sends no query, and still
-- answers once the server is gone), by every worker; it expires with its
-- TTL; it survives a reload; NXDOMAIN is kept for the negative TTL; SERVFAIL and timeouts are
-- never kept. A mail hook looks up the sender's domain with the sender's
-- local part as the type and answers "dns <status> <values>".
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local socket = require("socket")
local t = D.t

local defer = cleanup.defer

local HOOK = [[
indimail.hook("mail", function(session, tx)
  local qtype, domain = tx.sender:match("^<?([^@]+)@([^>]+)>?$")
  local answers, status = indimail.dns.lookup(domain, qtype:upper())
  if not answers then return indimail.tempfail("dns " .. status, 451, "4.4.3") end
  local v = {}
  for i, a in ipairs(answers) do v[i] = type(a) == "table" and a.host or a end
  return indimail.reject(("dns %s %s"):format(status, table.concat(v, ",")), 550, "5.7.1")
end)
]]

-- dnsmasq serving the zone with records of ttl seconds (stopped at the end).
local function start_dnsmasq(ttl)
  local dm = dnsmasq.start{ dir = D.scratch_dir("dnscache"), records = {
    "--local-ttl=" .. ttl,
    "--host-record=cached.test,127.0.0.9",
    "--mx-host=mx.test,mail.mx.test,10", "--host-record=mail.mx.test,127.0.0.1",
    "--txt-record=txt.test,v=spf1 -all",
  } }
  defer(dm.stop)
  return dm
end

local function start_daemon(dns_port, o)
  o = o or {}
  o.dns = "127.0.0.1:" .. dns_port
  o.policies = HOOK
  return D.start_for_test(o)
end

-- The reply to MAIL FROM:<from> in a session of its own.
local function lookup(d, from)
  local c = d:session()
  local code, text = c:cmd("MAIL FROM:<" .. from .. ">")
  c:cmd("QUIT")
  return code, text
end

-- How many queries for name dnsmasq has received (its --log-queries).
local function queries(dm, name)
  local n = 0
  for _ in (D.readfile(dm.log) or ""):gmatch("query%[%w+%] " .. name:gsub("%.", "%%.") .. " from") do
    n = n + 1
  end
  return n
end

-- ---- a scripted DNS server ----------------------------------------------

local function question_end(q)
  local i = 13
  while i <= #q and q:byte(i) ~= 0 do i = i + q:byte(i) + 1 end
  return i + 4
end

-- The reply to query q: "servfail", or an A record 127.0.0.7 for 300 s.
local function dns_reply(q, how)
  local qs = q:sub(13, question_end(q))
  if how == "servfail" then
    return q:sub(1, 2) .. string.pack(">I2I2I2I2I2", 0x8182, 1, 0, 0, 0) .. qs
  end
  return q:sub(1, 2) .. string.pack(">I2I2I2I2I2", 0x8180, 1, 1, 0, 0) .. qs
    .. "\xc0\x0c" .. string.pack(">I2I2I4I2", 1, 1, 300, 4) .. "\127\0\0\7"
end

-- Sends MAIL FROM:<from> and serves the queries meanwhile the way how says
-- ("servfail", "silent", "answer"); returns the reply and the queries seen.
local function lookup_served(d, udp, from, how)
  local c = d:session()
  c:send("MAIL FROM:<" .. from .. ">\r\n")
  local seen, deadline = 0, t.now() + 10
  while t.now() < deadline do
    local ready = socket.select({ udp, c.s }, nil, 0.2)
    if ready[udp] then
      local q, ip, port = udp:receivefrom()
      seen = seen + 1
      if q and how ~= "silent" then udp:sendto(dns_reply(q, how), ip, port) end
    elseif ready[c.s] then
      local code, text = c:reply()
      return code, text, seen
    end
  end
  error("no reply to MAIL in 10 s")
end

-- ---- the specification ---------------------------------------------------

describe("the DNS cache", function()
  after_each(cleanup.run)

  it("answers a second lookup without a query, also once the server is gone", function()
    local dm = start_dnsmasq(300)
    local d = start_daemon(dm.port)
    local code, text = lookup(d, "a@cached.test")
    assert.equal(550, code)
    assert.matches("dns ok 127%.0%.0%.9", text)
    assert.matches("dns ok 127%.0%.0%.9", select(2, lookup(d, "a@Cached.TEST")))
    assert.equal(1, queries(dm, "cached.test"))
    dm.stop()
    assert.matches("dns ok 127%.0%.0%.9", select(2, lookup(d, "a@cached.test")))
  end)

  it("keeps MX and TXT answers, whose TTLs c-ares does not give, from the raw reply", function()
    local dm = start_dnsmasq(300)
    local d = start_daemon(dm.port)
    for _ = 1, 2 do
      assert.matches("dns ok mail%.mx%.test", select(2, lookup(d, "mx@mx.test")))
      assert.matches("dns ok v=spf1 %-all", select(2, lookup(d, "txt@txt.test")))
    end
    assert.equal(1, queries(dm, "mx.test"))
    assert.equal(1, queries(dm, "txt.test"))
  end)

  it("is shared by the workers: every worker answers from it once the server is gone", function()
    local dm = start_dnsmasq(300)
    local d = start_daemon(dm.port, { workers = 2 })
    assert.matches("dns ok 127%.0%.0%.9", select(2, lookup(d, "a@cached.test")))
    dm.stop()
    -- sessions until both workers have answered (bounded)
    local pids = {}
    for _ = 1, 40 do
      local code, text = lookup(d, "a@cached.test")
      assert.equal(550, code, text)
      assert.matches("dns ok 127%.0%.0%.9", text)
      for pid in d:log():gmatch("smtp%[(%d+)%][^\n]*event=verdict") do pids[pid] = true end
      local n = 0
      for _ in pairs(pids) do n = n + 1 end
      if n == 2 then return end
    end
    error("the sessions never reached both workers: " .. d:log():sub(-2000))
  end)

  it("survives a SIGHUP reload", function()
    local dm = start_dnsmasq(300)
    local d = start_daemon(dm.port)
    assert.matches("dns ok 127%.0%.0%.9", select(2, lookup(d, "a@cached.test")))
    dm.stop()
    local from = #d:log() + 1
    assert.is_true(d:signal("HUP"))
    assert.is_truthy(d:wait_log("smtp%[%d+%][^\n]*event=reloaded", 5, from), d:log():sub(-1500))
    assert.matches("dns ok 127%.0%.0%.9", select(2, lookup(d, "a@cached.test")))
  end)

  it("forgets an answer when its TTL (2 s) has passed", function()
    local dm = start_dnsmasq(2)
    local d = start_daemon(dm.port)
    lookup(d, "a@cached.test")
    lookup(d, "a@cached.test")
    assert.equal(1, queries(dm, "cached.test"))
    t.sleep(2.3)
    assert.matches("dns ok 127%.0%.0%.9", select(2, lookup(d, "a@cached.test")))
    assert.equal(2, queries(dm, "cached.test"))
  end)

  it("keeps NXDOMAIN for the negative TTL, then asks again", function()
    local dm = start_dnsmasq(300)
    local d = start_daemon(dm.port, { dns_cache = "negative_ttl = 2" })
    assert.matches("dns nxdomain", select(2, lookup(d, "a@nowhere.test")))
    dm.stop()
    assert.matches("dns nxdomain", select(2, lookup(d, "a@nowhere.test")))
    assert.equal(1, queries(dm, "nowhere.test"))
    t.sleep(2.3)
    local code, text = lookup(d, "a@nowhere.test")     -- the server is gone
    assert.equal(451, code, text)
  end)

  it("never keeps a SERVFAIL or a timeout", function()
    local udp = assert(socket.udp())
    assert(udp:setsockname("127.0.0.1", 0))
    defer(function() udp:close() end)
    local _, port = udp:getsockname()
    local d = start_daemon(port)
    local code, text, seen = lookup_served(d, udp, "a@flaky.test", "servfail")
    assert.equal(451, code, text)
    assert.is_true(seen >= 1)
    code, text = lookup_served(d, udp, "a@flaky.test", "silent")
    assert.equal(451, code, text)
    code, text, seen = lookup_served(d, udp, "a@flaky.test", "answer")
    assert.matches("dns ok 127%.0%.0%.7", text)
    assert.equal(1, seen)
    -- that one is kept: no query now
    code, text, seen = lookup_served(d, udp, "a@flaky.test", "silent")
    assert.matches("dns ok 127%.0%.0%.7", text)
    assert.equal(0, seen)
  end)

  it("is off with dns_cache = { size = 0 }", function()
    local dm = start_dnsmasq(300)
    local d = start_daemon(dm.port, { dns_cache = "size = 0" })
    lookup(d, "a@cached.test")
    lookup(d, "a@cached.test")
    assert.equal(2, queries(dm, "cached.test"))
  end)
end)

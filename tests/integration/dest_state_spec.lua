-- Per-destination state (docs/delivery.md, "When a destination is down"):
-- a destination whose connections are refused, or that greets with 421,
-- is marked down after one failed job; its other messages are held back
-- without a connection or a log line each (one destination_down line with
-- the count), a probe tests it after the backoff, and once it answers
-- (tests/helpers/fake_smtp.lua on the same port) every message is
-- delivered and destination_up is logged once; the same for a destination
-- that throttles (MAIL FROM answered 4xx). `indimail queue list` and
-- mailq show the held messages with the destination's reason; a message
-- held past its queue lifetime bounces with that reason. Slow start: a
-- destination never tried runs at most concurrency.initial jobs at once,
-- one more after each success up to per_domain, one at a time after a
-- failure (so "3 jobs in a row" is counted on answers in sequence).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")

local SHORT = "dead_destination = { backoff = 1, max = 2 }, "

-- Every message is held at acceptance: `release ALL` (released) hands
-- them to the scheduler in one pass, so what starts at once is the
-- window's decision alone, not the timing of their arrival.
local GATE = [[
indimail.hook("message", function(s, tx, m) return indimail.hold("gate") end, "gate")
]]

local function start(port, delivery, policies)
  return D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
    routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(port),
    delivery = SHORT .. (delivery or ""), policies = policies }
end

-- n messages, one recipient each, in one SMTP session.
local function queue(d, n)
  local c = d:session()
  for i = 1, n do
    local code, text = c:transaction("sender@example.test", { ("rcpt%d@down.test"):format(i) },
      ("Subject: held %d\r\n\r\nbody\r\n"):format(i))
    assert.equal(250, code, text)
  end
  c:cmd("QUIT")
end

local function cli(d, args)
  return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue " .. args)
end

local function fake(port, opts)
  return fake_smtp.start(D.scratch_dir("dest-fake"), "127.0.0.1", port, opts)
end

-- Releases the n messages GATE held, once the queue manager holds them all.
local function released(d, n)
  local loaded = D.eventually(function()
    return (cli(d, "active")):match("^active (%d+) ") == tostring(n)
  end, 15, 0.1)
  assert.is_truthy(loaded, cli(d, "active") .. d:log())
  local out, code = cli(d, "release ALL")
  assert.equal(0, code, out)
end

-- Waits until n messages reached the fake server (bounded).
local function delivered(f, n, secs)
  return D.eventually(function() return f.count("\nMESSAGE ") >= n end, secs or 30, 0.1)
end

describe("a destination that is down", function()
  after_each(cleanup.run)

  it("costs one decision: no connection per message, one destination_down line, all delivered after the probe", function()
    local port, release = D.closed_tcp_port() -- nothing listens: connections refused
    local d = start(port)
    queue(d, 300)
    local down = d:wait_event("destination_down", { "dest=relay:127%.0%.0%.1:" .. port, "failures=1",
      "reason=\"451 4%.4%.1 destination relay:127%.0%.0%.1:%d+ is down: cannot connect" })
    assert.is_truthy(down, d:log())
    assert.matches("messages=%d+", down)
    assert.matches("until=%d+%-%d+%-%d+T", down)
    -- one job per probe, not one per message: a few deferred lines at most
    assert.is_truthy(d:wait_log("event=destination_probe", 5), d:log())
    local log = d:log()
    local deferred, probes = d:count_log("event=deferred "), d:count_log("event=destination_probe ")
    assert.is_true(deferred <= 10 + probes, ("%d deferred lines, %d probes"):format(deferred, probes))
    assert.equal(1, select(2, log:gsub("event=destination_down [^\n]*failures=1 ", "")), log)
    -- the held messages are listed as deferred with the destination's reason
    local out, code = cli(d, "list")
    assert.equal(0, code, out)
    assert.equal(300, select(2, out:gsub("\n    pending ", "")), out)
    assert.matches('last_error="451 4%.4%.1 destination relay:127%.0%.0%.1:' .. port .. " is down", out)
    out = cli(d, "mailq")
    assert.matches("%(451 4%.4%.1 destination relay:127%.0%.0%.1:" .. port .. " is down", out)
    -- the destination comes back: the next probe finds it, the queue drains
    release()
    local f = fake(port)
    assert.is_truthy(d:wait_event("destination_up", { "dest=relay:127%.0%.0%.1:" .. port, "after=%d+" }),
      d:log())
    assert.is_truthy(delivered(f, 300), ("%d of 300 delivered\n%s"):format(f.count("\nMESSAGE "), d:log()))
    assert.equal(1, d:count_log("event=destination_up "))
    assert.is_true(f.count("\nCONNECT ") < 60, f.events())
    out = cli(d, "list")
    assert.not_matches("pending", out)
  end)

  it("greeting with 421: marked down with that reply, probed, delivered once it greets with 220", function()
    local port = D.free_tcp_port()
    local busy = "421 4.3.2 too busy, come back later"
    local f = fake(port, { greeting = { busy, busy, busy } })   -- the first 3 connections
    local d = start(port)
    queue(d, 60)
    local down = d:wait_event("destination_down", { "failures=1", "421 4%.3%.2 too busy" })
    assert.is_truthy(down, d:log())
    assert.is_truthy(delivered(f, 60), ("%d of 60 delivered\n%s"):format(f.count("\nMESSAGE "), d:log()))
    assert.equal(1, d:count_log("event=destination_up "))
    -- 3 refused greetings, then the queue on a few reused connections
    assert.is_true(f.count("\nCONNECT ") < 30, f.events())
    assert.is_true(d:count_log("event=deferred ") <= 10 + d:count_log("event=destination_probe "), d:log())
  end)

  it("throttling: MAIL FROM answered 4xx by 3 jobs in a row marks it down; delivered once MAIL is taken", function()
    local port = D.free_tcp_port()
    local slow = "451 4.7.1 too many messages, slow down"
    -- The first 6 MAIL commands are refused. Released at once, 30 messages
    -- start the initial window's 5 jobs: the 1st answer makes it suspect
    -- (one job at a time), the 3rd marks it down, the 4th and 5th change
    -- nothing (they started before); the 1st probe takes the 6th refusal,
    -- the 2nd gets through: up, and the queue drains.
    local f = fake(port, { mail = { slow, slow, slow, slow, slow, slow } })
    -- the jobs deferred before the down keep their own retry time: short here
    local d = start(port, "retry = { base = 1, max = 2 }, ", GATE)
    queue(d, 30)
    released(d, 30)
    assert.is_truthy(d:wait_event("destination_down", { "failures=1", "451 4%.7%.1 too many messages" }),
      d:log())
    assert.is_truthy(delivered(f, 30), ("%d of 30 delivered\n%s"):format(f.count("\nMESSAGE "), d:log()))
    assert.is_truthy(d:wait_event("destination_up", { "failures=2", "window=5" }), d:log())
    assert.equal(6, d:count_log("event=deferred "), d:log())
    assert.equal(1, d:count_log("event=destination_suspect "), d:log())
    assert.is_truthy(d:wait_event("destination_suspect", { "window=1", "was=5", "running=4", "451 4%.7%.1" }),
      d:log())
    assert.equal(2, d:count_log("event=destination_down "), d:log())
    assert.is_truthy(d:wait_event("destination_down", { "failures=2", "backoff=2" }), d:log())
    assert.equal(2, d:count_log("event=destination_probe "), d:log())
    assert.equal(1, d:count_log("event=destination_up "), d:log())
    assert.equal(36, f.count("\nCMD %d+ MAIL "), f.events())
    assert.equal(5, f.peak("MESSAGE"), f.events())
  end)

  it("a refused login is the route's, not the destination's: every message is tried, none held", function()
    local port = D.free_tcp_port()
    local f = fake(port, { auth = { user = "u", password = "right" } })
    local d = D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'", delivery = SHORT,
      routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none", auth_plaintext = true, '
        .. 'auth_user = "u", auth_password = "wrong" }'):format(port) }
    queue(d, 3)
    assert.is_truthy(D.eventually(function() return d:count_log("event=deferred ") == 3 end, 10), d:log())
    assert.matches("authentication to [^\n]* failed", d:log())
    assert.equal(3, f.count("\nAUTH_FAILED "), f.events())
    assert.equal(0, d:count_log("event=destination_down "), d:log())
  end)

  it("a message held past its queue lifetime bounces with the destination's reason", function()
    local port = D.closed_tcp_port()
    local d = start(port, "lifetime = 2, retry = { base = 1, max = 1 }, ")
    queue(d, 5)
    assert.is_truthy(d:wait_event("destination_down", { "failures=1" }), d:log())
    local all = D.eventually(function() return d:count_log("event=failed ") >= 5 end, 15, 0.1)
    assert.is_truthy(all, d:log())
    -- a job in flight when the destination went down (up to the initial
    -- window of 5 start at once) or a failed probe ends with its own
    -- connection's reason; the messages held meanwhile with the destination's
    local held = 0
    for line in d:log():gmatch("event=failed [^\n]*") do
      assert.matches("delivery time expired", line)
      assert.matches("cannot connect to 127%.0%.0%.1%[127%.0%.0%.1%]:" .. port, line)
      if line:find("destination relay:127.0.0.1:" .. port .. " is down", 1, true) then held = held + 1 end
    end
    assert.is_true(held >= 1, d:log())
  end)

  it("refuses a dead_destination whose max is below its backoff, or an unknown key, at load", function()
    local dir = D.scratch_dir("dest-config")
    local function check(delivery)
      local path = dir .. "/bad.lua"
      D.writefile(path, D.make_config(dir, { delivery = delivery }))
      return D.sh(D.bin .. "/indimaild -t -c " .. path)
    end
    local out, code = check("dead_destination = { backoff = 60, max = 30 }")
    assert.equal(1, code, out)
    assert.matches("delivery.dead_destination: max must not be less than backoff", out, 1, true)
    out, code = check("dead_destination = { backof = 60 }")
    assert.equal(1, code, out)
    assert.matches("backof", out, 1, true)
    out, code = check("dead_destination = { backoff = 30, max = 600 }")
    assert.equal(0, code, out)
  end)
end)

describe("slow start", function()
  after_each(cleanup.run)

  -- Each CONNECT of the fake's events with the count of messages stored
  -- before it.
  local function connects(f)
    local out, stored = {}, 0
    for what in f.events():gmatch("(%u+)[^\n]*\n") do
      if what == "MESSAGE" then stored = stored + 1 end
      if what == "CONNECT" then out[#out + 1] = stored end
    end
    return out
  end

  it("a destination never tried runs at most concurrency.initial jobs at once, one more after each success up to per_domain", function()
    local port = D.free_tcp_port()
    local f = fake(port, { dot_delay = 0.5 })
    local d = start(port, "concurrency = { initial = 3, per_domain = 8, remote = 20 }, ", GATE)
    queue(d, 40)
    released(d, 40)
    assert.is_truthy(delivered(f, 40, 60), ("%d of 40 delivered\n%s"):format(f.count("\nMESSAGE "), d:log()))
    -- 3 at once until the first success: 40 messages were due
    assert.equal(3, f.peak("MESSAGE"), f.events())
    -- the n-th connection (an idle one is reused first) needs a window of
    -- n: n - 3 successes before it
    for n, stored in ipairs(connects(f)) do
      assert.is_true(stored >= n - 3, ("connection %d after %d messages\n%s"):format(n, stored, f.events()))
    end
    -- then per_domain at once, never more
    assert.equal(8, f.peak(), f.events())
    -- nothing in the log about it: no state changed
    assert.equal(0, d:count_log("event=destination_"), d:log())
  end)

  it("refuses a concurrency.initial above per_domain at load; unset, it is capped by per_domain", function()
    local dir = D.scratch_dir("dest-initial")
    local function check(delivery)
      local path = dir .. "/initial.lua"
      D.writefile(path, D.make_config(dir, { delivery = delivery }))
      return D.sh(D.bin .. "/indimaild -t -c " .. path)
    end
    local out, code = check("concurrency = { per_domain = 4, initial = 5 }")
    assert.equal(1, code, out)
    assert.matches("delivery.concurrency.initial must not be more than per_domain", out, 1, true)
    out, code = check("concurrency = { per_domain = 2 }")
    assert.equal(0, code, out)
    out, code = check("concurrency = { initial = 0 }")
    assert.equal(1, code, out)
  end)
end)

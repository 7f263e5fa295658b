-- Parking on a destination that is down, at once (docs/queue.md "The
-- active set"): messages for a route to a closed port arrive faster than
-- the small active set (delivery.active_limit = 50) can hold them; each
-- one the destination holds back leaves the active set parked on it, not
-- back in the due heap until the probe. With a backoff of 60 s no probe
-- comes during the test, yet within seconds of the last 250 every message
-- outside the active set is parked, the active set holds at most the
-- limit, and the queue manager then rests (no pass when nothing changes).
--
-- A restart with those messages parked (docs/queue.md "The retry index"):
-- each park appended "ID @KEY RECEIVED" and the destination's probe
-- "@KEY TIME" to retry.idx, so the new queue manager parks them again on
-- the destination, down until that probe, and reads none of their
-- envelopes; once the port listens (the fake server), the probe after the
-- restart gets through and all are delivered.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")
local json = require("dkjson")
local t = D.t

local LIMIT = 50
local N = 2000
local SETTLE = 10        -- seconds after the last 250, far below the backoff
local REST_CPU = 0.3     -- seconds of queue manager CPU allowed over REST
local REST = 3
local BACKOFF = 15       -- the restart test's: its probe delivers them all

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- `queue active`: in the active set, outside it.
local function active(d)
  local out = d:qmgr_control("active")
  local n, w = out:match("^active (%d+) limit %d+ loading %d+ waiting (%d+)")
  assert.is_truthy(n, out)
  return tonumber(n), tonumber(w)
end

-- The row of key in `indimail queue destinations --json`, or nil.
local function dest_row(d, key)
  local out = D.sh(D.bin .. "/indimail -c " .. q(d.config) .. " queue destinations --json")
  for _, r in ipairs(json.decode(out) or {}) do
    if r.destination == key then return r end
  end
end

-- n messages in one session, MAIL, RCPT and DATA pipelined.
local function queue(d, n)
  local c = d:session()
  for i = 1, n do
    c:send(("MAIL FROM:<sender@example.test>\r\nRCPT TO:<rcpt%d@down.test>\r\nDATA\r\n"):format(i))
    assert.equal(250, (c:reply()))
    assert.equal(250, (c:reply()))
    assert.equal(354, (c:reply()))
    c:send(("Subject: park %d\r\n\r\nbody\r\n.\r\n"):format(i))
    local code, text = c:reply()
    assert.equal(250, code, text)
  end
  c:cmd("QUIT")
end

-- User and system CPU seconds of pid so far.
local function cpu(pid)
  local stat = assert(D.readfile("/proc/" .. pid .. "/stat"))
  local fields = {}
  for f in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = f end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100   -- utime, stime in ticks
end

-- A daemon routing down.test to port, with active_limit LIMIT and a
-- destination backoff of `backoff` seconds (twice that at most).
local function start_down(port, backoff)
  return D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
    routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(port),
    delivery = ("active_limit = %d, dead_destination = { backoff = %d, max = %d }, ")
      :format(LIMIT, backoff, 2 * backoff) }
end

describe("a destination down", function()
  after_each(cleanup.run)

  it("gets every message that waits for it parked within seconds, not at its probe", function()
    local port = D.closed_tcp_port()        -- nothing listens: connections refused
    local key = "relay:127.0.0.1:" .. port
    local d = start_down(port, 60)
    local qpid = tonumber(d:wait_log("event=qmgr_started pid=(%d+)"))
    queue(d, N)
    local r, n, w
    local parked = D.eventually(function()
      n, w = active(d)
      assert.is_true(n <= LIMIT, ("the active set holds %d"):format(n))
      r = dest_row(d, key)
      return r and r.waiting == N and r.parked == w and w >= N - LIMIT
    end, SETTLE, 0.2)
    assert.is_truthy(parked, ("active %s, outside %s, destination %s\n%s")
      :format(n, w, json.encode(r), D.sh(D.bin .. "/indimail -c " .. q(d.config) .. " queue destinations")))
    assert.equal("down", r.state)
    assert.equal(0, d:count_log("event=destination_probe "), d:log())
    -- settled: the queue manager rests
    local before = cpu(qpid)
    t.sleep(REST)
    local used = cpu(qpid) - before
    assert.is_true(used < REST_CPU, ("the queue manager used %.2f s of CPU in %d s at rest"):format(used, REST))
    assert.equal(0, d:count_log("event=queue_file_unreadable "), d:log())
  end)

  it("reads no envelope of the messages parked at a restart until the probe, then delivers them all", function()
    local port, release = D.closed_tcp_port()
    local key = "relay:127.0.0.1:" .. port
    local d = start_down(port, BACKOFF)
    queue(d, N)
    local r
    assert.is_truthy(D.eventually(function()
      r = dest_row(d, key)
      return r and r.waiting == N and r.parked >= N - LIMIT
    end, SETTLE, 0.2), json.encode(r))
    local idx = D.readfile(d.dir .. "/queue/retry.idx") or ""
    local parks = select(2, idx:gsub(" @" .. key:gsub("%p", "%%%0") .. " %d+\n", ""))
    assert.is_true(parks >= N - LIMIT, ("%d park lines"):format(parks))
    assert.equal("exited", (d:stop()))
    local from = d:restart()
    local scanned = d:wait_log("(event=queue_scanned [^\n]*)", 10, from)
    assert.is_truthy(scanned, d:log():sub(from))
    assert.equal(tostring(N), scanned:match("messages=(%d+)"))
    local parked = tonumber(scanned:match("parked=(%d+)"))
    assert.is_true(parked >= N - LIMIT, scanned)
    -- parked again at once, the destination down until its old probe time:
    -- only the few messages of the old active set are read (each held
    -- once), the destination is tried by its probe at most, where all N
    -- were read, held and parked again before
    assert.is_truthy(d:wait_log("event=destination_down [^\n]*last stopped", 10, from), d:log():sub(from))
    r = dest_row(d, key)
    assert.is_true(r.state == "down" and r.parked >= N - LIMIT, json.encode(r))
    t.sleep(2)
    local since = d:log():sub(from)
    local held = select(2, since:gsub("event=held ", ""))
    assert.is_true(held <= 2 * LIMIT, ("%d held after the restart"):format(held))
    local tries = select(2, since:gsub("event=deferred ", ""))
    assert.is_true(tries <= 1, ("%d tries after the restart"):format(tries))
    -- the port listens: the probe after the restart delivers them all
    release()
    local f = fake_smtp.start(D.scratch_dir("park-fake"), "127.0.0.1", port)
    local all = D.eventually(function() return f.count("\nMESSAGE ") >= N end,
      2 * BACKOFF + 60, 0.5)
    assert.is_truthy(all, ("%d of %d delivered\n%s"):format(f.count("\nMESSAGE "), N,
      D.sh(D.bin .. "/indimail -c " .. q(d.config) .. " queue destinations")))
    assert.is_truthy(D.eventually(function() return #d:queue_files() == 0 end, 10, 0.2))
    assert.equal(0, d:count_log("event=queue_file_unreadable "), d:log())
  end)

  it("delivers the messages parked at a restart whose route changed meanwhile, a minute after the old probe", function()
    local down, up = D.closed_tcp_port(), D.free_tcp_port()
    local n = 300
    local d = start_down(down, BACKOFF)
    queue(d, n)
    local r
    assert.is_truthy(D.eventually(function()
      r = dest_row(d, "relay:127.0.0.1:" .. down)
      return r and r.parked >= n - LIMIT
    end, SETTLE, 0.2), json.encode(r))
    assert.equal("exited", (d:stop()))
    -- the route now goes to a server that listens: the old destination
    -- is restored down, its probe message goes to the new one, and the
    -- others, woken by nobody's probe, follow a minute later
    local conf = D.readfile(d.config)
    local moved = conf:gsub("port = " .. down, "port = " .. up)
    assert.is_true(moved ~= conf)
    D.writefile(d.config, moved)
    local f = fake_smtp.start(D.scratch_dir("park-moved"), "127.0.0.1", up)
    local from = d:restart()
    local scanned = d:wait_log("(event=queue_scanned [^\n]*)", 10, from)
    assert.is_true(tonumber(scanned:match("parked=(%d+)")) >= n - LIMIT, scanned)
    local all = D.eventually(function() return f.count("\nMESSAGE ") >= n end,
      2 * BACKOFF + 90, 0.5)
    assert.is_truthy(all, ("%d of %d delivered"):format(f.count("\nMESSAGE "), n))
    assert.is_truthy(D.eventually(function() return #d:queue_files() == 0 end, 10, 0.2))
  end)
end)

-- Parking on a destination that is down, at once (docs/queue.md "The
-- active set"): messages for a route to a closed port arrive faster than
-- the small active set (delivery.active_limit = 50) can hold them; each
-- one the destination holds back leaves the active set parked on it, not
-- back in the due heap until the probe. With a backoff of 60 s no probe
-- comes during the test, yet within seconds of the last 250 every message
-- outside the active set is parked, the active set holds at most the
-- limit, and the queue manager then rests (no pass when nothing changes).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local json = require("dkjson")
local t = D.t

local LIMIT = 50
local N = 2000
local SETTLE = 10        -- seconds after the last 250, far below the backoff
local REST_CPU = 0.3     -- seconds of queue manager CPU allowed over REST
local REST = 3

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

describe("a destination down", function()
  after_each(cleanup.run)

  it("gets every message that waits for it parked within seconds, not at its probe", function()
    local port = D.free_tcp_port()          -- nothing listens: connections refused
    local key = "relay:127.0.0.1:" .. port
    local d = D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
      routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(port),
      delivery = ("active_limit = %d, dead_destination = { backoff = 60, max = 120 }, "):format(LIMIT) }
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
end)

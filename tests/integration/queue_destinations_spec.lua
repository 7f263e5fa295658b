-- `indimail queue destinations` (docs/delivery.md, "Seeing the
-- destinations"): the queue manager's destination table, one row per
-- destination, most messages waiting first. A route to a closed port:
-- once it is marked down, the table shows it down with its messages and
-- the reason, in columns, as JSON (--json), alone with --down, through
-- the admin API (GET /v1/queue/destinations) and in the
-- indimail_destinations gauge; once the port answers
-- (tests/helpers/fake_smtp.lua) it shows up with nothing waiting. With no
-- queue manager running the command says so and exits 1.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")
local json = require("dkjson")

local BIN = D.bin .. "/indimail"
local N = 20

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function start(port)
  local d = D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
    routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(port),
    delivery = "dead_destination = { backoff = 1, max = 2 }, ",
    config_extra = "admin = { listen = '127.0.0.1:0' }," }
  assert.is_truthy(d:wait_log("event=admin_start", 5), d:log())
  return d
end

local function cli(d, args)
  return D.sh(BIN .. " -c " .. q(d.config) .. " queue destinations " .. args)
end

local function token(d)
  local out = D.sh(BIN .. " -c " .. q(d.config) .. " admin token add ops --scopes queue:read,metrics")
  return (out:gsub("%s+$", ""))
end

-- GET path on the admin API: status, body.
local function api(d, tok, path)
  local out = D.sh(("timeout 120 python3 tests/clients/admin_api.py --ca %s --name mx.test.example "
    .. "--port %d --token %s GET %s"):format(q(D.test_cert()), d.ports.admin, q(tok), q(path)))
  local status, rest = out:match("^(%d+)\n[^\n]*\n[^\n]*\n(.*)$")
  assert.is_truthy(status, "client: " .. out)
  return tonumber(status), rest
end

local function queue(d, n)
  local c = d:session()
  for i = 1, n do
    local code, text = c:transaction("sender@example.test", { ("rcpt%d@down.test"):format(i) },
      ("Subject: dest %d\r\n\r\nbody\r\n"):format(i))
    assert.equal(250, code, text)
  end
  c:cmd("QUIT")
end

-- The row of key in the decoded JSON list, or nil.
local function row(list, key)
  for _, r in ipairs(list or {}) do
    if r.destination == key then return r end
  end
end

local function rows(d, args)
  local out, code = cli(d, "--json " .. (args or ""))
  assert.equal(0, code, out)
  return assert(json.decode(out), out)
end

describe("indimail queue destinations", function()
  after_each(cleanup.run)

  it("shows a destination down with its messages and reason, as text, JSON and over the API; up once it answers", function()
    local port, release = D.closed_tcp_port() -- nothing listens: connections refused
    local key = "relay:127.0.0.1:" .. port
    local d = start(port)
    local tok = token(d)
    queue(d, N)
    assert.is_truthy(d:wait_event("destination_down", { "dest=relay:127%.0%.0%.1:" .. port }), d:log())
    local r
    assert.is_truthy(D.eventually(function()
      r = row(rows(d), key)
      return r and r.state == "down" and r.waiting == N
    end, 15, 0.2), cli(d, "") .. d:log())
    assert.equal(N, r.active + r.parked)
    assert.is_true(r.failures >= 1)
    assert.equal(0, r.running)
    assert.matches("^451 4%.4%.1 destination " .. key:gsub("%p", "%%%0") .. " is down: cannot connect", r.reason)
    assert.matches("^%d+%-%d+%-%d+T%d+:%d+:%d+Z$", r.since)
    assert.matches("^%d+%-%d+%-%d+T%d+:%d+:%d+Z$", r["until"])
    -- the columns: a header, then its row with the count and the reason
    local text, code = cli(d, "")
    assert.equal(0, code, text)
    assert.matches("^DESTINATION +STATE +WINDOW +JOBS +WAITING", text)
    local line = text:match("\n(" .. key:gsub("%p", "%%%0") .. " [^\n]*)")
    assert.is_truthy(line, text)
    assert.matches(" down +1/%d+ +0 +" .. N .. " ", line)
    assert.matches("451 4.4.1 destination", line, 1, true)
    -- --down: only those not up; this one is
    assert.is_truthy(row(rows(d, "--down"), key))
    -- the admin API: the same list
    local status, body = api(d, tok, "/v1/queue/destinations")
    assert.equal(200, status, body)
    local ar = row(json.decode(body), key)
    assert.is_truthy(ar, body)
    assert.equal(N, ar.waiting)
    assert.equal(r.reason, ar.reason)
    assert.equal(200, (api(d, tok, "/v1/queue/destinations?state=down")))
    assert.equal(400, (api(d, tok, "/v1/queue/destinations?state=sideways")))
    -- the gauge: one destination down
    assert.is_truthy(D.eventually(function()
      local _, m = api(d, tok, "/metrics")
      return m:find('indimail_destinations{state="down"} 1', 1, true)
    end, 10, 0.5))
    -- it comes back: the probe finds it, the queue drains, it shows up
    release()
    local f = fake_smtp.start(D.scratch_dir("dest-fake"), "127.0.0.1", port)
    assert.is_truthy(d:wait_event("destination_up", { "dest=relay:127%.0%.0%.1:" .. port }), d:log())
    assert.is_truthy(D.eventually(function()
      r = row(rows(d), key)
      return r and r.state == "up" and r.waiting == 0
    end, 30, 0.2), cli(d, "") .. d:log())
    assert.is_nil(r.reason)
    assert.is_nil(r["until"])
    assert.is_nil((row(rows(d, "--down"), key)))
    -- "up, nothing waiting" can be shown while the last transactions are
    -- still at the fake: their MESSAGE lines follow within moments
    assert.is_truthy(D.eventually(function() return f.count("\nMESSAGE ") >= N end, 10, 0.2),
      f.events())
  end)

  it("says the queue manager is not running, and exits 1, when nothing answers", function()
    local d = start((D.closed_tcp_port()))
    d:stop()
    local out, code = D.sh(BIN .. " -c " .. q(d.config) .. " queue destinations 2>&1")
    assert.equal(1, code, out)
    assert.matches("the queue manager is not running", out, 1, true)
  end)
end)

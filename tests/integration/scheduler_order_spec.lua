-- The scheduler's order (src/deliver/scheduler.c, docs/queue.md "The
-- active set"): a backlog is delivered oldest first, both by the full pass
-- (the first after delivery is switched on) and by the short passes that
-- start the next job as one ends, also with a remote job in between.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")

local N = 30

local function start(o)
  o.mailboxes = "users = { 'alice@example.test' }"
  return D.start_for_test(o)
end

-- Queue ids in the order of the log lines of one event.
local function order(d, event)
  local ids = {}
  for line in d:log():gmatch("[^\n]+") do
    if line:find("event=" .. event .. " ", 1, true) then
      ids[#ids + 1] = line:match(" qid=(%w+)")
    end
  end
  return ids
end

-- n messages to rcpt in one session; their queue ids in order.
local function queue(d, n, rcpt)
  local ids, c = {}, d:session()
  for i = 1, n do
    local code, text = c:transaction("sender@example.test", { rcpt },
      ("Subject: %d\r\n\r\nbody %d\r\n"):format(i, i))
    assert.equal(250, code, text)
    ids[#ids + 1] = text:match("queued as (%w+)")
  end
  c:cmd("QUIT")
  return ids
end

local function unpause(d)
  D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
  assert.is_true(d:signal("HUP"))
  assert.is_truthy(d:wait_log("event=reloaded", 10), d:log())
end

describe("the scheduler", function()
  after_each(cleanup.run)

  it("delivers a backlog oldest first, one local job at a time", function()
    local d = start{ deliver = false, delivery = "concurrency = { ['local'] = 1 }" }
    local ids = queue(d, N, "alice@example.test")
    assert.is_truthy(D.eventually(function() return #d:queue_files() >= N end, 10), d:log())
    unpause(d)
    assert.is_truthy(D.eventually(function() return #order(d, "delivered") >= N end, 30), d:log())
    assert.same(ids, order(d, "delivered"))
  end)

  it("starts a remote job while local jobs have a backlog, and the backlog still drains in order", function()
    local port = D.free_tcp_port()
    local fake = fake_smtp.start(D.scratch_dir("order-fake"), "127.0.0.1", port)
    local d = start{ deliver = false, relay_from = "'127.0.0.0/8'",
      delivery = "concurrency = { ['local'] = 1 }",
      routes = ('["remote.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(port) }
    local ids = queue(d, N, "alice@example.test")
    unpause(d)
    -- a remote message while the local backlog drains one by one
    local rid = queue(d, 1, "bob@remote.test")[1]
    assert.is_truthy(D.eventually(function() return fake.count("\nMESSAGE ") == 1 end, 10), d:log())
    assert.is_truthy(D.eventually(function() return #order(d, "delivered") >= N + 1 end, 30), d:log())
    local locals = {}
    for _, id in ipairs(order(d, "delivered")) do
      if id ~= rid then locals[#locals + 1] = id end
    end
    assert.same(ids, locals)
  end)
end)

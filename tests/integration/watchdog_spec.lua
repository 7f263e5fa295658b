-- The watchdog: a hook stuck inside C (where the instruction budget cannot
-- reach, e.g. a pathological string.find) holds its worker's loop; after
-- timeouts.watchdog the worker is recycled, every session on it is told
-- 421, and the master starts a fresh worker.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local STUCK = [[
  indimail.hook("rcpt", function(session, tx, rcpt)
    if rcpt:match("^stuck@") then
      -- exponential backtracking: years of CPU inside one C call
      string.find(string.rep("a", 60), string.rep("a*", 60) .. "b")
    end
  end, "backtrack")
]]

describe("the hook watchdog (timeouts.watchdog = 1)", function()
  after_each(cleanup.run)

  it("recycles a worker whose hook is stuck in C: its sessions get 421, a new worker serves", function()
    local d = D.start_for_test{ policies = STUCK,
      timeouts = "command = 30, data = 30, tls = 10, hook = 30, drain = 5, watchdog = 1" }
    local old = d:worker_pids()[1]
    local idle = d:session()                 -- another session on the same worker
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
    c:send("RCPT TO:<stuck@example.test>\r\n")
    local t0 = t.now()
    idle.s:settimeout(5)
    local code, text = idle:reply()
    assert.equal(421, code, text)
    assert.matches("^421 4%.3%.2 ", text)
    assert.is_true(t.now() - t0 < 3, "took " .. (t.now() - t0))
    assert.equal(421, (c:reply()))
    assert.is_truthy(d:wait_log("event=watchdog stuck_ms=%d+ action=restart", 3))
    assert.is_truthy(d:wait_log("event=worker_exited index=0 pid=" .. old .. " status=70", 3))
    assert.is_truthy(D.eventually(function()
      local pids = d:worker_pids()
      return #pids == 1 and pids[1] ~= old
    end, 5))
    d:send("a@example.test", { "b@example.test" }, "Subject: after\r\n\r\nx\r\n")
  end)
end)

describe("a reload whose configuration never finishes loading (timeouts.watchdog = 1)", function()
  after_each(cleanup.run)

  it("is refused without wedging anyone: reload_failed, and the running configuration serves on", function()
    local d = D.start_for_test{ timeouts = "command = 30, data = 30, tls = 10, hook = 5, drain = 5, watchdog = 1" }
    local conf = D.readfile(d.config)
    D.writefile(d.config, conf .. "\nwhile true do end\n")
    local t0 = t.now()
    d:signal("HUP")
    assert.is_truthy(d:wait_log("master%[%d+%] error event=reload_failed [^\n]*still running after 1 s", 5), d:log())
    assert.is_true(t.now() - t0 < 4)
    -- the workers and the queue manager never load what the master refused
    -- (they would each loop until their own watchdog recycled them)
    for _ = 1, 5 do d:send("a@example.test", { "b@example.test" }, "Subject: still here\r\n\r\nx\r\n") end
    t.sleep(1.5)
    d:send("a@example.test", { "b@example.test" }, "Subject: after a watchdog's time\r\n\r\nx\r\n")
    assert.equal(0, d:count_log("event=reloaded"), d:log())
    assert.equal(0, d:count_log("event=watchdog"), d:log())
    assert.equal(1, d:count_log("event=reload_failed"), d:log())
  end)
end)

describe("a worker that cannot drain at SIGTERM (its hook stuck in C)", function()
  after_each(cleanup.run)

  it("is killed after timeouts.drain (and 5 s), logged, and reaped before the master exits", function()
    local d = D.start_for_test{ policies = STUCK,
      timeouts = "command = 30, data = 30, tls = 10, hook = 30, drain = 1, watchdog = 3600" }
    local worker = d:worker_pids()[1]
    local keeper = d:log():match("event=keeper_started pid=(%d+)")
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
    c:send("RCPT TO:<stuck@example.test>\r\n")
    t.sleep(0.3)                              -- the hook is running
    local t0 = t.now()
    d:signal("TERM")
    assert.equal("exited", (d:wait_exit(15)))
    -- drain (1 s) + 5 s, counted in whole seconds of time(): 5 to 6 s
    assert.is_true(t.now() - t0 >= 4.5, "took " .. (t.now() - t0))
    assert.is_truthy(d:wait_event("shutdown_killed", { "pid=" .. worker, "index=0" }), d:log())
    -- reaped: no process, not even a zombie, once the master is gone
    assert.is_nil(io.open("/proc/" .. worker .. "/stat"), "worker " .. worker .. " still there")
    if keeper then   -- root's keeper (started as root): reaped as well
      assert.is_nil(io.open("/proc/" .. keeper .. "/stat"), "keeper " .. keeper .. " still there")
    end
  end)
end)

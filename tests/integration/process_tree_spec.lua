-- The process tree: a master killed with -9 takes its children with it
-- (they finish what is in flight and exit, so a new master starts at
-- once), a reload never remaps listeners, and the queue manager journals
-- every outcome before anything else can happen to the message.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local socket = require("socket")
local t = D.t

local LOAD = D.root .. "/tests/clients/acked_load.py"

local function alive(pid) return t.kill(pid, 0) end

-- smtp-sink writing one file per message into dir; returns pid, port.
local function start_sink(dir)
  local port = D.free_tcp_port()
  D.sh("mkdir -p " .. dir .. " && chmod 777 " .. dir)
  local pid = t.spawn({ "/usr/sbin/smtp-sink", "-u", "nobody", "-d", dir .. "/%M.",
    "127.0.0.1:" .. port, "1000" }, dir .. ".log")
  cleanup.defer(function() D.stop_pid(pid) end)
  D.eventually(function()
    local c = socket.connect("127.0.0.1", port)
    if c then c:close() end
    return c ~= nil
  end, 5)
  return port
end

-- X-Seq of every message the sink received: seq -> times received.
local function sink_seqs(dir)
  local seen = {}
  local out = D.sh("grep -rhao 'X-Seq: [0-9]*' " .. dir .. " 2>/dev/null")
  for n in out:gmatch("X%-Seq: (%d+)") do seen[n] = (seen[n] or 0) + 1 end
  return seen
end

local function children_of(pid)
  local out = D.sh("ps -o pid= --ppid " .. pid)
  local list = {}
  for p in out:gmatch("%d+") do list[#list + 1] = tonumber(p) end
  return list
end

describe("kill -9 of the master", function()
  after_each(cleanup.run)

  it("takes the workers, the queue manager and the keeper with it; a new master starts at once on the same ports", function()
    local port = D.free_tcp_port()
    local d = D.start_for_test{ smtp_port = port, workers = 2 }
    local kids = children_of(d.pid)
    assert.equal(4, #kids)   -- two workers, the queue manager, the keeper (root's reload helper)
    t.kill(d.pid, "KILL")
    t.waitpid(d.pid)
    d.stopped = true
    assert.is_truthy(D.eventually(function()
      for _, k in ipairs(kids) do if alive(k) then return false end end
      return true
    end, 10), "orphans still running")
    local t0 = t.now()
    d:restart()
    assert.is_true(t.now() - t0 < 5, "restart took " .. (t.now() - t0) .. " s")
    assert.equal(port, d.ports.smtp)
    d:send("a@example.test", { "b@example.test" }, "Subject: after\r\n\r\nx\r\n")
  end)
end)

-- The last pid the master logged for a process ("qmgr_started", ...).
local function last_pid(d, event)
  local pid
  for p in d:log():gmatch("event=" .. event .. " [^\n]-pid=(%d+)") do pid = tonumber(p) end
  return pid
end

-- One kill -9, by round: a worker, the queue manager (the master starts
-- new ones), the master only (its children drain), every process at once
-- (power-cut style; the spec restarts the master after the last two).
local KILLS = { "worker", "qmgr", "master", "tree" }

local function kill_round(d, what)
  if what == "worker" then
    t.kill(assert(d:worker_pids()[1]), "KILL")
  elseif what == "qmgr" then
    t.kill(assert(last_pid(d, "qmgr_started")), "KILL")
  else
    t.kill(what == "tree" and -d.pid or d.pid, "KILL")
    t.waitpid(d.pid)
    d.stopped = true
    d:restart()
  end
end

-- Every message acknowledged reaches the sink; returns lost, duplicates.
local function delivered(d, sinkdir, acked)
  local want = {}
  for n in (D.readfile(acked) or ""):gmatch("%d+") do want[#want + 1] = n end
  assert.is_true(#want > 100, "only " .. #want .. " messages acknowledged")
  local seen
  D.eventually(function()
    seen = sink_seqs(sinkdir)
    for _, n in ipairs(want) do if not seen[n] then return false end end
    return #d:queue_files() == 0
  end, 120, 0.5)
  local lost, dups = {}, 0
  for _, n in ipairs(want) do if not seen[n] then lost[#lost + 1] = n end end
  for _, times in pairs(seen) do dups = dups + times - 1 end
  return want, lost, dups
end

-- The segment backend twice: as it runs by default, and compacting all
-- the time (each worker starts a new segment every second, and every
-- live record of the others is moved out as a file at once), so that
-- kills land in the middle of moves too.
local COMPACTING = { INDIMAIL_TEST_COMPACT_AFTER_S = "0", INDIMAIL_TEST_SEGMENT_AGE_S = "1" }
for _, v in ipairs({ { "fs" }, { "wal" }, { "segment" }, { "segment", COMPACTING } }) do
  local backend, env = v[1], v[2]
  local name = backend .. (env and ", compacting" or "")
  describe("kill -9 under load, queue.backend = " .. name, function()
    after_each(cleanup.run)

    it("of a worker, the queue manager, the master, every process, again and again: nothing acknowledged is lost, and duplicates stay rare", function()
      local base = D.scratch_dir("sink")
      local sinkdir = base .. "/mail"
      local sink = start_sink(sinkdir)
      local port = D.free_tcp_port()
      local d = D.start_for_test{ deliver = true, workers = 2, smtp_port = port,
        queue_backend = backend, env = env,
        relay_from = "'127.0.0.0/8'", limits = "connections_per_ip = 200",
        routes = "['*'] = '127.0.0.1:" .. sink .. "'",
        delivery = "concurrency = { remote = 20, per_domain = 20 }, retry = { base = 0.5, max = 1 }" }
      local acked = base .. "/acked"
      local load = t.spawn({ "/usr/bin/python3", LOAD, "127.0.0.1", tostring(port),
        "100000", "8", "40", acked }, base .. "/load.log")
      cleanup.defer(function() D.stop_pid(load) end)
      local counts = {}
      for round = 1, 12 do
        t.sleep(1.5)
        local what = KILLS[(round - 1) % #KILLS + 1]
        kill_round(d, what)
        counts[what] = (counts[what] or 0) + 1
      end
      D.stop_pid(load, 10)
      local want, lost, dups = delivered(d, sinkdir, acked)
      local moved = 0
      for n in d:log():gmatch("event=segment_compacted messages=%d+ moved=(%d+)") do
        moved = moved + tonumber(n)
      end
      print(("\n  kill spec (%s): kills: %d worker, %d qmgr, %d master, %d every process; "
        .. "%d acknowledged, %d lost, %d delivered twice%s"):format(name, counts.worker,
        counts.qmgr, counts.master, counts.tree, #want, #lost, dups,
        env and (", %d moved out of their segments"):format(moved) or ""))
      if env then assert.is_true(moved > 0, "no message was moved") end
      assert.equal(0, #lost, "lost: " .. table.concat(lost, " ", 1, math.min(#lost, 20)))
      -- A duplicate needs a kill while the sink has taken a message whose
      -- outcome was not journaled yet, or whose 250 the client had not read
      -- (RFC 1047): a handful per kill at most, more under the sanitizers,
      -- which slow every step down.
      assert.is_true(dups <= math.max(12, #want // 100), dups .. " duplicates")
    end)
  end)
end

describe("SIGTERM while deliveries and journal writes are in flight", function()
  after_each(cleanup.run)

  it("finishes them: after a restart every message is delivered exactly once", function()
    local base = D.scratch_dir("sink")
    local sinkdir = base .. "/mail"
    local sink = start_sink(sinkdir)
    local port = D.free_tcp_port()
    local d = D.start_for_test{ workers = 2, smtp_port = port,
      relay_from = "'127.0.0.0/8'", limits = "connections_per_ip = 200",
      routes = "['*'] = '127.0.0.1:" .. sink .. "'",
      delivery = "concurrency = { remote = 20, per_domain = 20 }" }
    local out, rc = D.sh(("smtp-source -s 10 -m 600 -l 512 -f s@example.test "
      .. "-t r@remote.test 127.0.0.1:%d"):format(port))
    assert.equal(0, rc, out)
    -- delivery was paused: start it, then stop the daemon in the middle
    D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=delivered ", 10))
    t.sleep(0.3)
    assert.equal("exited", (d:stop(20)))
    assert.is_truthy(d:wait_log("event=qmgr_exit reason=drained", 1))
    d:restart()
    assert.is_truthy(D.eventually(function() return #d:queue_files() == 0 end, 60, 0.5))
    t.sleep(1)
    local files = tonumber(D.sh("find " .. sinkdir .. " -type f | wc -l"):match("%d+"))
    assert.equal(600, files)
  end)
end)

describe("SIGHUP with a changed listen list", function()
  after_each(cleanup.run)

  it("keeps the running listeners (logged), with their TLS modes, in old and restarted workers", function()
    local d = D.start_for_test()
    local ports = d.ports
    -- reorder the listeners and add one
    local conf = D.readfile(d.config)
    local smtp = conf:match("\n(%s*{ name = 'smtp',[^\n]*)")
    local smtps = conf:match("\n(%s*{ name = 'smtps',[^\n]*)")
    conf = conf:gsub("\n%s*{ name = 'smtp',[^\n]*", "\n" .. smtps, 1)
    conf = conf:gsub("\n%s*{ name = 'smtps',[^\n]*", "\n" .. smtp
      .. "\n    { name = 'extra', address = '127.0.0.1', port = 0, tls = 'none' },", 1)
    D.writefile(d.config, conf)
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=reload_listeners_kept", 5))
    assert.is_truthy(d:wait_log("smtp%[%d+%] info event=reloaded", 5))
    local function check()
      local c = D.connect(ports.smtp)
      local code, text = c:reply()
      c:close()
      assert.equal(220, code, text)          -- plain text greeting, not TLS
      local out = D.sh(("printf 'QUIT\\r\\n' | timeout 5 openssl s_client -quiet "
        .. "-connect 127.0.0.1:%d 2>/dev/null"):format(ports.smtps))
      assert.matches("220 mx%.test%.example ESMTP", out)   -- TLS from the first byte
    end
    check()
    -- a worker started after the reload gets the same listeners
    local before = d:count_log("event=worker_started")
    t.kill(d:worker_pids()[1], "KILL")
    assert.is_truthy(D.eventually(function() return d:count_log("event=worker_started") > before end, 5))
    d:wait_log("event=worker_start index=0", 5, #d:log() - 200)
    t.sleep(1.5)
    check()
    assert.equal(before + 1, d:count_log("event=worker_started"), "workers keep dying")
  end)
end)

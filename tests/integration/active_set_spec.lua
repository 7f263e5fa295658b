-- The queue manager's bounded active set (docs/queue.md "The active set"):
-- at most delivery.active_limit messages are held whole, the others wait
-- as compact entries (parked on a destination that is down, or by due
-- time) and are read from disk when there is room; `queue list` and the
-- admin commands still see them; there is no periodic rescan of the queue
-- (one queue_scanned line, at start), because a worker's announcement is
-- never dropped: it waits in the worker while the queue manager cannot
-- take it (stopped here with SIGSTOP), and a queue manager killed and
-- restarted finds everything.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")
local t = D.t

local LIMIT = 50

local function start(down, sink, delivery)
  return D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
    routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none" }, '
      .. '["sink.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(down, sink),
    delivery = ("active_limit = %d, dead_destination = { backoff = 1, max = 2 }, %s")
      :format(LIMIT, delivery or "") }
end

local function fake(port)
  return fake_smtp.start(D.scratch_dir("active-fake"), "127.0.0.1", port)
end

-- The active set's size now (the `active` control command), and the largest seen.
local seen = 0
local function active(d)
  local out = d:qmgr_control("active")
  local n, limit = out:match("^active (%d+) limit (%d+)")
  assert.equal(LIMIT, tonumber(limit), out)
  n = tonumber(n)
  if n > seen then seen = n end
  return n, tonumber(out:match("waiting (%d+)"))
end

-- n messages to domain in one session, sampling the active set as it goes.
local function queue(d, n, domain)
  local c = d:session()
  for i = 1, n do
    local code, text = c:transaction("sender@example.test", { ("rcpt%d@%s"):format(i, domain) },
      ("Subject: %s %d\r\n\r\nbody\r\n"):format(domain, i))
    assert.equal(250, code, text)
    if i % 50 == 0 then active(d) end
  end
  c:cmd("QUIT")
end

local function delivered(f, n, d, secs)
  return D.eventually(function() active(d) return f.count("\nMESSAGE ") >= n end, secs or 60, 0.2)
end

describe("the active set", function()
  after_each(cleanup.run)
  before_each(function() seen = 0 end)

  it("holds at most active_limit messages while 500 wait for a down destination and 500 are delivered", function()
    local down, release = D.closed_tcp_port()
    local sinkport = D.free_tcp_port()
    local sink = fake(sinkport)
    local d = start(down, sinkport)
    queue(d, 500, "down.test")
    queue(d, 500, "sink.test")
    assert.is_truthy(delivered(sink, 500, d), ("%d of 500 delivered\n%s"):format(sink.count("\nMESSAGE "), d:log()))
    -- the held ones are outside the active set, parked, and still listed
    assert.is_truthy(D.eventually(function() local _, w = active(d) return w >= 500 - LIMIT end, 10), d:log())
    local out = d:qmgr_control("list")
    assert.matches("ok 500\n$", out)
    assert.equal(500, select(2, out:gsub("\n    pending%s+<rcpt%d+@down%.test>", "")), out)
    -- the destination comes back: all 500 reach it, in batches of the limit
    release()
    local back = fake(down)
    assert.is_truthy(delivered(back, 500, d, 90), ("%d of 500 delivered\n%s"):format(back.count("\nMESSAGE "), d:log()))
    assert.is_truthy(D.eventually(function() return #d:queue_files() == 0 end, 10), d:log())
    assert.is_true(seen <= LIMIT, ("the active set reached %d"):format(seen))
    assert.is_true(seen > 0)
    assert.equal(1, d:count_log("event=queue_scanned "), d:log())
    assert.equal(0, d:count_log("event=queue_file_unreadable "), d:log())
  end)

  it("admin commands reach messages outside the active set: hold ALL, list, release ALL", function()
    local down, release = D.closed_tcp_port()
    local sinkport = D.free_tcp_port()
    local d = start(down, sinkport)
    queue(d, 200, "down.test")
    assert.is_truthy(D.eventually(function() local _, w = active(d) return w >= 200 - LIMIT end, 15), d:log())
    assert.equal("ok 200\n", d:qmgr_control("hold ALL domain=down.test"))
    local out = d:qmgr_control("mailq")
    assert.equal(200, select(2, out:gsub("\n%x+!", "")), out)
    assert.matches("ok 200\n$", out)
    release()
    local sink = fake(down)
    assert.equal("ok 200\n", d:qmgr_control("release ALL"))
    assert.is_truthy(delivered(sink, 200, d, 60), ("%d of 200 delivered\n%s"):format(sink.count("\nMESSAGE "), d:log()))
    assert.is_true(seen <= LIMIT, ("the active set reached %d"):format(seen))
    assert.equal(1, d:count_log("event=queue_scanned "), d:log())
  end)

  it("a restart takes each deferred message's next try from the retry index, without trying it at once", function()
    local port = D.free_tcp_port()
    local f = fake_smtp.start(D.scratch_dir("active-fake"), "127.0.0.1", port,
      { data_reply = { "451 4.3.0 not now" } })
    local d = start(D.closed_tcp_port(), port, "retry = { base = 30, max = 60 }, ")
    queue(d, 20, "sink.test")
    assert.is_truthy(D.eventually(function() return d:count_log("event=deferred ") >= 20 end, 20), d:log())
    local index = D.readfile(d.dir .. "/queue/retry.idx") or ""
    assert.equal(20, select(2, index:gsub("\n", "")), index)
    t.sleep(0.2)
    d:kill9()
    local from = d:restart()
    assert.is_truthy(d:wait_log("event=queue_scanned messages=20 due_later=20 ", 10, from), d:log():sub(from))
    t.sleep(2)
    assert.equal(0, select(2, d:log():sub(from):gsub("event=deferred ", "")), d:log():sub(from))
    local out = d:qmgr_control("list")
    assert.matches("ok 20\n$", out)
    assert.equal(20, select(2, out:gsub("attempts=1 next_retry=%d+s", "")), out)
    assert.equal(0, f.count("\nMESSAGE "))
  end)

  -- The start's listing hands the ids to the queue manager's loop in
  -- batches of 4,096 (qmgr_list.c), the segment backend's 1,024 at a time
  -- (queue_segment.c): 20,000 cross both many times.
  for _, backend in ipairs({ "fs", "segment" }) do
    it(("a restart on 20,000 messages parked on a down destination (%s backend): each listed once, "
        .. "parked again, none tried"):format(backend), function()
      local N = 20000
      local d = D.start_for_test{ deliver = true, queue_backend = backend, relay_from = "'127.0.0.0/8'",
        limits = "connections_per_ip = 200",
        routes = ('["down.test"] = { host = "127.0.0.1", port = %d, tls = "none" }')
          :format(D.closed_tcp_port()),
        delivery = ("active_limit = %d, dead_destination = { backoff = 600, max = 600 }"):format(LIMIT) }
      local out, rc = D.sh(("smtp-source -s 20 -m %d -l 512 -f s@example.test -t r@down.test 127.0.0.1:%d")
        :format(N, d.ports.smtp))
      assert.equal(0, rc, out)
      -- every message but those the active set holds parked, each with its line
      local function parked_lines()
        return select(2, (D.readfile(d.dir .. "/queue/retry.idx") or ""):gsub("%x+ @[^\n]+\n", ""))
      end
      assert.is_truthy(D.eventually(function() return parked_lines() >= N - LIMIT end, 120),
        ("%d parked lines\n%s"):format(parked_lines(), d:qmgr_control("active")))
      d:kill9()
      local from = d:restart()
      local line = d:wait_log("event=queue_scanned messages=%d+ due_later=%d+ parked=%d+", 60, from)
      assert.is_truthy(line, d:log():sub(from))
      local scanned = d:log():sub(from):match("event=queue_scanned (messages=%d+ due_later=%d+ parked=%d+)")
      local m, later, parked = scanned:match("messages=(%d+) due_later=(%d+) parked=(%d+)")
      assert.equal(N, tonumber(m), scanned)
      assert.is_true(tonumber(later) + tonumber(parked) >= N - LIMIT, scanned)
      local n, w = active(d)
      assert.equal(N, n + w, d:qmgr_control("active"))
      out = d:qmgr_control("list")
      assert.matches("ok " .. N .. "\n$", out)
      local ids, dup = {}, 0
      for id in out:gmatch("\n(%x+)%s") do
        if ids[id] then dup = dup + 1 end
        ids[id] = true
      end
      assert.equal(0, dup)
      t.sleep(1)
      local after = d:log():sub(from)
      assert.equal(0, select(2, after:gsub("event=deferred ", "")), after:sub(1, 4000))
      assert.equal(0, select(2, after:gsub("event=queue_file_unreadable ", "")), after:sub(1, 4000))
    end)
  end

  it("rewrites the retry index while it runs once it holds many lines per message", function()
    local port = D.free_tcp_port()
    local f = fake_smtp.start(D.scratch_dir("active-fake"), "127.0.0.1", port,
      { data_reply = { "451 4.3.0 not now" } })
    local d = start(D.closed_tcp_port(), port, "retry = { base = 0.05, max = 0.1 }, ")
    queue(d, 80, "sink.test")   -- tried about once a second each (the tick)
    assert.is_truthy(d:wait_log("event=retry_index_compacted lines=%d+", 40), d:log())
    assert.is_true(f.count("\nDATA_REFUSED ") > 1000, f.events())
    local index = D.readfile(d.dir .. "/queue/retry.idx") or ""
    local lines = select(2, index:gsub("\n", ""))
    assert.is_true(lines < 1100, lines .. " lines in the index")
  end)

  it("keeps its retry index and serves on when a rewrite cannot write the new file", function()
    local port = D.free_tcp_port()
    local f = fake_smtp.start(D.scratch_dir("active-fake"), "127.0.0.1", port,
      { data_reply = { "451 4.3.0 not now" } })
    local d = start(D.closed_tcp_port(), port, "retry = { base = 0.05, max = 0.1 }, ")
    -- the rewrite's new file cannot be opened for writing: a folder holds its name
    D.sh("mkdir " .. d.dir .. "/queue/retry.idx.new")
    local from = #d:log() + 1
    queue(d, 80, "sink.test")
    local line = d:wait_log('event=retry_index_failed path=[^ ]+/retry.idx.new error="[^"]+"', 40, from)
    assert.is_truthy(line, d:log())
    assert.equal(0, d:count_log("event=retry_index_compacted "), d:log())
    local before = #(D.readfile(d.dir .. "/queue/retry.idx") or "")
    assert.is_true(before > 0)
    -- deferrals go on, appended to the index it kept; once the folder is
    -- gone, a later rewrite goes through
    D.sh("rmdir " .. d.dir .. "/queue/retry.idx.new")
    assert.is_truthy(d:wait_log("event=retry_index_compacted lines=%d+", 40), d:log())
    assert.is_true(f.count("\nDATA_REFUSED ") > 1000, f.events())
    local c = d:session()
    local code, text = c:transaction("sender@example.test", { "late@sink.test" }, "Subject: late\r\n\r\nbody\r\n")
    assert.equal(250, code, text)
    c:cmd("QUIT")
  end)

  it("loses no announcement while the queue manager is stopped: all delivered without a rescan", function()
    local sinkport = D.free_tcp_port()
    local sink = fake(sinkport)
    local d = start(D.closed_tcp_port(), sinkport)
    local qpid = tonumber(d:wait_log("event=qmgr_started pid=(%d+)"))
    assert.truthy(d:wait_log("event=queue_scanned", 5))
    t.kill(qpid, "STOP")                     -- the socket holds a few datagrams, the worker the rest
    local c = d:session()
    for i = 1, 300 do
      local code, text = c:transaction("sender@example.test", { ("rcpt%d@sink.test"):format(i) },
        ("Subject: stopped %d\r\n\r\nbody\r\n"):format(i))
      assert.equal(250, code, text)
    end
    c:cmd("QUIT")
    t.kill(qpid, "CONT")
    assert.is_truthy(delivered(sink, 300, d), ("%d of 300 delivered\n%s"):format(sink.count("\nMESSAGE "), d:log()))
    assert.equal(1, d:count_log("event=queue_scanned "), d:log())
    assert.is_true(seen <= LIMIT, ("the active set reached %d"):format(seen))
  end)

  it("a queue manager killed while messages arrive: its successor finds every one", function()
    local sinkport = D.free_tcp_port()
    local sink = fake(sinkport)
    local d = start(D.closed_tcp_port(), sinkport)
    local qpid = tonumber(d:wait_log("event=qmgr_started pid=(%d+)"))
    local c = d:session()
    for i = 1, 300 do
      if i == 100 then t.kill(qpid, "KILL") end
      local code, text = c:transaction("sender@example.test", { ("rcpt%d@sink.test"):format(i) },
        ("Subject: killed %d\r\n\r\nbody\r\n"):format(i))
      assert.equal(250, code, text)
    end
    c:cmd("QUIT")
    assert.truthy(d:wait_log("event=qmgr_died", 5))
    -- at least once: what was in flight at the kill may come twice
    assert.is_truthy(D.eventually(function() return #d:queue_files() == 0 end, 60), d:log())
    local got = {}
    for i in sink.events():gmatch("MESSAGE [^\n]*rcpt(%d+)@sink%.test") do got[tonumber(i)] = true end
    for i = 1, 300 do assert.is_true(got[i], "rcpt" .. i .. " never reached the sink") end
  end)

  it("reads no message while delivery is paused; the reload that resumes it loads and delivers them", function()
    local sinkport = D.free_tcp_port()
    local sink = fake(sinkport)
    local d = D.start_for_test{ deliver = false, relay_from = "'127.0.0.0/8'",
      routes = ('["sink.test"] = { host = "127.0.0.1", port = %d, tls = "none" }'):format(sinkport),
      delivery = ("active_limit = %d, "):format(LIMIT) }
    queue(d, 30, "sink.test")
    local n, w
    assert.is_truthy(D.eventually(function()
      n, w = active(d)
      return w == 30
    end, 10, 0.1), ("active %s, waiting %s"):format(n, w))
    t.sleep(1)
    n, w = active(d)
    assert.equal(0, n, "the active set while paused")
    assert.equal(30, w)
    D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
    assert.is_true(d:signal("HUP"))
    assert.is_truthy(delivered(sink, 30, d), ("%d of 30 delivered\n%s"):format(sink.count("\nMESSAGE "), d:log()))
  end)
end)

-- The segment queue backend (docs/queue.md "The segment backend"): a
-- worker appends accepted messages to its segment as the wal backend does,
-- but nothing is ever written out as a message file: the queue manager
-- reads and delivers each message from its segment, lists every removed
-- one in <segment>.dead, and removes a segment once its writer is gone and
-- all its records are dead.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dsn = require("dsn")
local fake_smtp = require("fake_smtp")
local maildir = require("maildir")

local USERS = "users = { 'alice@example.test', 'bob@example.test' }, postmaster = 'alice@example.test'"

local function start(o)
  o = o or {}
  return D.start_for_test{ deliver = o.deliver ~= false, queue_backend = "segment",
    mailboxes = USERS, workers = o.workers, queues = o.queues, delivery = o.delivery,
    relay_from = "'127.0.0.0/8'", routes = o.routes, env = o.env }
end

local function message(subject, extra)
  return "From: bob@example.test\r\n" .. (extra or "") .. "Subject: " .. subject .. "\r\n\r\nbody of "
    .. subject .. "\r\n"
end

-- The segments (and their .ck and .dead files) of every queue, by name.
local function wal_files(d)
  local out = D.sh("find " .. d.dir .. "/queue -path '*/wal/*' -type f -printf '%f\\n' | sort")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

-- The ids of the message files in mess/ (d:queue_files() lists the live
-- records too).
local function mess_files(d)
  local ids = {}
  for _, f in ipairs(d:mess_files()) do ids[#ids + 1] = f:match("[^/]+$") end
  table.sort(ids)
  return ids
end

-- A daemon on the wal backend, delivery paused, with one message its
-- checkpoint has written out to mess/, stopped: returns it and the id.
local function wal_checkpointed(subject)
  local d = D.start_for_test{ deliver = false, queue_backend = "wal", mailboxes = USERS }
  local a = d:send("bob@example.test", { "alice@example.test" }, message(subject))
  assert.is_truthy(D.eventually(function() return #mess_files(d) == 1 end, 5), d:log())
  assert.equal("exited", (d:stop(10)))
  return d, a
end

-- The config switched to the segment backend, delivery resumed.
local function to_segment(d)
  D.writefile(d.config, (D.readfile(d.config):gsub("backend = 'wal'", "backend = 'segment'")
    :gsub("paused = true", "paused = false")))
end

local function segments(d)
  local n = 0
  for _, f in ipairs(wal_files(d)) do
    if f:match("^%d+%.%d+$") then n = n + 1 end
  end
  return n
end

local function cli(d, args)
  return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue " .. args)
end

local function subjects(d, user)
  local got = {}
  for _, f in ipairs(maildir.new_files(d, user)) do
    got[#got + 1] = (D.readfile(f) or ""):match("\nSubject: ([^\n]+)")
  end
  table.sort(got)
  return table.concat(got, ",")
end

-- Resumes delivery of a daemon started with deliver = false.
local function resume(d)
  D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
  assert.is_true(d:signal("HUP"))
end

describe("the segment queue backend", function()
  after_each(cleanup.run)

  it("delivers from the segment, writes no message file, and removes the segment once its writer is gone", function()
    local d = start{ workers = 2 }
    for i = 1, 20 do
      d:send("bob@example.test", { "alice@example.test" }, message("m" .. i))
    end
    assert.is_truthy(maildir.wait(d, "alice", 20, 10), d:log())
    assert.equal(0, #mess_files(d), "no file in mess/")
    assert.is_true(segments(d) >= 1)
    assert.is_truthy(D.eventually(function()
      return select(2, d:log():gsub("event=removed qid=", "")) == 20
    end, 5), d:log())
    -- the workers' segments take records still: kept; once their writers
    -- are gone (a restart), the queue manager's sweep removes them
    assert.equal(0, d:count_log("event=segment_removed"))
    assert.equal("exited", (d:stop(10)))
    d:restart()
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 20, 0.2),
      table.concat(wal_files(d), " "))
    assert.is_true(d:count_log("event=segment_removed") >= 1)
    assert.equal(20, #maildir.new_files(d, "alice"), "nothing delivered twice")
  end)

  it("keeps a waiting message across kill -9: listed, shown by cat, delivered once, a removed one never", function()
    local d = start{ deliver = false }
    local a = d:send("bob@example.test", { "alice@example.test" }, message("kept a"))
    local b = d:send("bob@example.test", { "alice@example.test" }, message("kept b"))
    local out = cli(d, "list")
    assert.matches(a, out, 1, true)
    assert.matches(b, out, 1, true)
    out = cli(d, "cat " .. a)
    assert.matches("\nSubject: kept a\r?\n", out)
    assert.not_matches("kept b", out)
    d:kill9()
    d:restart()
    assert.is_truthy(D.eventually(function()
      local o = cli(d, "list")
      return o:find(a, 1, true) and o:find(b, 1, true)
    end, 5), cli(d, "list"))
    out = cli(d, "remove " .. b)
    assert.matches("^1 message removed", out)
    assert.is_truthy(d:wait_log("event=removed qid=" .. b, 5), d:log())
    resume(d)
    assert.is_truthy(maildir.wait(d, "alice", 1, 10), d:log())
    assert.is_truthy(d:wait_log("event=removed qid=" .. a, 5), d:log())
    assert.equal("kept a", subjects(d, "alice"))
    -- the killed writers' segments: all their records dead, so they go
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 20, 0.2),
      table.concat(wal_files(d), " "))
    assert.equal("exited", (d:stop(10)))
    d:restart()
    assert.equal("kept a", subjects(d, "alice"), "not delivered again")
    assert.equal(0, #wal_files(d))
  end)

  it("relays exactly the message's bytes from its segment, not the records after it", function()
    local port = D.free_tcp_port()
    local fake = fake_smtp.start(D.scratch_dir("seg"), "127.0.0.1", port, {})
    local d = start{ deliver = false, workers = 1, queues = 1,
      routes = ("['remote.test'] = { host = '127.0.0.1', port = %d, tls = 'none' }"):format(port) }
    local first = d:send("bob@example.test", { "carol@remote.test" }, message("first of two"))
    d:send("bob@example.test", { "dave@remote.test" }, message("second of two"))
    resume(d)
    assert.is_truthy(d:wait_log("event=removed qid=" .. first, 10), d:log())
    assert.is_truthy(D.eventually(function() return fake.count("\nMESSAGE ") == 2 end, 10))
    local got = {}
    for k = 1, 2 do got[#got + 1] = fake.message(k) end
    for _, m in ipairs(got) do
      assert.matches("\r?\n\r?\nbody of [a-z]+ of two\r?\n$", m)
      assert.not_matches("IMW1", m, 1, true)
    end
  end)

  it("a queue manager killed while messages arrive: its successor finds every one", function()
    local port = D.free_tcp_port()
    local fake = fake_smtp.start(D.scratch_dir("seg"), "127.0.0.1", port, {})
    local d = start{ routes = ("['sink.test'] = { host = '127.0.0.1', port = %d, tls = 'none' }"):format(port) }
    local qpid = tonumber(d:wait_log("event=qmgr_started pid=(%d+)"))
    local c = d:session()
    for i = 1, 200 do
      if i == 70 then D.t.kill(qpid, "KILL") end
      local code, text = c:transaction("bob@example.test", { ("rcpt%d@sink.test"):format(i) },
        ("Subject: killed %d\r\n\r\nbody\r\n"):format(i))
      assert.equal(250, code, text)
    end
    c:cmd("QUIT")
    assert.truthy(d:wait_log("event=qmgr_died", 5))
    local got
    assert.is_truthy(D.eventually(function()
      got = {}
      for i in fake.events():gmatch("MESSAGE [^\n]*rcpt(%d+)@sink%.test") do got[tonumber(i)] = true end
      for i = 1, 200 do if not got[i] then return false end end
      return true
    end, 30, 0.2), d:log())
  end)

  it("bounces with the message's own header section, not the record after it in the segment", function()
    -- one worker, one queue: both messages in one segment, in order
    local d = start{ deliver = false, workers = 1, queues = 1 }
    -- a loop (Delivered-To: the recipient) bounces with 5.4.6; no empty
    -- line, so its header section runs to the end of the message
    local looped = d:send("bob@example.test", { "alice@example.test" },
      "Delivered-To: alice@example.test\r\nSubject: looped\r\n")
    d:send("bob@example.test", { "alice@example.test" }, message("the next record"))
    resume(d)
    assert.is_truthy(d:wait_log("event=bounced qid=" .. looped, 10), d:log())
    local files = maildir.wait(d, "bob", 1, 10)
    assert.is_truthy(files, d:log())
    local _, parts = dsn.read(D.readfile(files[1]))
    local headers = dsn.find_part(parts, "text/rfc822-headers").body
    assert.matches("Subject: looped", headers, 1, true)
    assert.not_matches("the next record", headers, 1, true)
    assert.not_matches("IMW1", headers, 1, true)
  end)

  it("switched to fs: the live records are written out and delivered once, the dead ones never", function()
    local d = start{ deliver = false }
    local a = d:send("bob@example.test", { "alice@example.test" }, message("switch a"))
    local b = d:send("bob@example.test", { "alice@example.test" }, message("switch b"))
    assert.matches("^1 message removed", (cli(d, "remove " .. b)))
    assert.is_truthy(d:wait_log("event=removed qid=" .. b, 5), d:log())
    assert.equal("exited", (d:stop(10)))
    D.writefile(d.config, (D.readfile(d.config):gsub("backend = 'segment'", "backend = 'fs'")
      :gsub("paused = true", "paused = false")))
    d:restart()
    assert.is_truthy(maildir.wait(d, "alice", 1, 10), d:log())
    assert.is_truthy(d:wait_log("event=removed qid=" .. a, 5), d:log())
    assert.equal("switch a", subjects(d, "alice"))
    assert.equal(0, #wal_files(d))
  end)

  it("switched from wal: what the checkpoint wrote out is delivered from its file, once", function()
    local d, a = wal_checkpointed("from wal")
    to_segment(d)
    d:restart()
    assert.is_truthy(d:wait_log("event=removed qid=" .. a, 10), d:log())
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 20, 0.2),
      table.concat(wal_files(d), " "))
    assert.equal("from wal", subjects(d, "alice"))
  end)

  it("forgets the records of a batch cut off its segment (never acknowledged): the segment still goes", function()
    local d = start{ deliver = false, workers = 1, queues = 1 }
    local a = d:send("bob@example.test", { "alice@example.test" }, message("kept"))
    local b = d:send("bob@example.test", { "alice@example.test" }, message("cut off"))
    local out = cli(d, "list")   -- the queue manager reads both records
    assert.matches(b, out, 1, true)
    -- cut the segment inside b's record, as a worker cuts back a batch
    -- whose write failed
    local seg = D.sh("ls " .. d.dir .. "/queue/0/wal/*[0-9] | head -1"):match("%S+")
    local data = D.readfile(seg)
    local first = 40 + string.unpack("<I8", data, 5)
    D.sh(("truncate -s %d %s"):format(first + 10, seg))
    -- its worker gone, the segment takes no more records
    local from = #d:log() + 1
    for _, pid in ipairs(d:worker_pids()) do D.t.kill(pid, "KILL") end
    assert.is_truthy(d:wait_log("event=worker_start index=0", 5, from))
    resume(d)
    assert.is_truthy(d:wait_log("event=removed qid=" .. a, 10), d:log())
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 25, 0.2),
      table.concat(wal_files(d), " ") .. "\n" .. d:log())
    assert.equal("kept", subjects(d, "alice"))
  end)

  it("reads every id of a dead list, whatever damaged lines lie between them", function()
    local d = start{ deliver = false, workers = 1, queues = 1 }
    local a = d:send("bob@example.test", { "alice@example.test" }, message("dead a"))
    local b = d:send("bob@example.test", { "alice@example.test" }, message("dead b"))
    local c = d:send("bob@example.test", { "alice@example.test" }, message("alive c"))
    assert.equal("exited", (d:stop(10)))
    local seg = D.sh("ls " .. d.dir .. "/queue/0/wal/*[0-9] | head -1"):match("%S+")
    -- a torn line, garbage, an id cut short, then the ids; a last line cut
    D.writefile(seg .. ".dead", a:sub(1, 10) .. "\nnot an id at all\n" .. b:sub(2) .. "\n"
      .. a .. "\n" .. b .. "\n" .. c:sub(1, 20))
    D.sh("chown indimail " .. seg .. ".dead 2>/dev/null")
    D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
    d:restart()
    assert.is_truthy(d:wait_log("event=removed qid=" .. c, 10), d:log())
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 25, 0.2),
      table.concat(wal_files(d), " "))
    assert.equal("alive c", subjects(d, "alice"))
  end)

  it("writes a batch whole to one queue, the next batch to the next queue", function()
    -- the first batch is held 1.5 s: the messages sent meanwhile form the second
    local d = start{ deliver = false, workers = 1, queues = 2,
      env = { INDIMAIL_TEST_WRITE_DELAY_MS = "1500" } }
    local out, rc = D.sh(("smtp-source -s 20 -m 20 -l 512 -f bob@example.test -t alice@example.test "
      .. "127.0.0.1:%d"):format(d.ports.smtp))
    assert.equal(0, rc, out)
    local per = { 0, 0 }
    for _, e in ipairs(d:queue_files()) do
      local qn = tonumber(e:match("/queue/(%d)/wal/"))
      per[qn + 1] = per[qn + 1] + 1
    end
    assert.equal(20, per[1] + per[2], table.concat(d:queue_files(), "\n"))
    -- a queue chosen per message would hold about half of the second batch
    assert.is_true(math.max(per[1], per[2]) >= 16 and math.min(per[1], per[2]) >= 1,
      ("queue 0: %d, queue 1: %d"):format(per[1], per[2]))
  end)
end)

describe("the segment backend's compaction", function()
  after_each(cleanup.run)

  -- Every round of the queue manager (each second with this hook) moves
  -- the live records of every segment that takes no more records.
  local COMPACT_NOW = { INDIMAIL_TEST_COMPACT_AFTER_S = "0" }

  it("writes the live records of a segment out as files, removes the segment, and delivers each message once", function()
    local d = start{ deliver = false, env = COMPACT_NOW }
    local ids = {}
    for i = 1, 5 do
      ids[i] = d:send("bob@example.test", { "alice@example.test" }, message("moved " .. i))
    end
    assert.matches("^2 messages removed", (cli(d, "remove " .. ids[2] .. " " .. ids[4])))
    -- the workers' segments take records until their writers are gone
    assert.equal(0, d:count_log("event=segment_compacted"))
    assert.equal("exited", (d:stop(10)))
    d:restart()
    assert.is_truthy(d:wait_log("event=segment_compacted messages=3 moved=3 ", 10), d:log())
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 10, 0.2),
      table.concat(wal_files(d), " "))
    assert.same({ ids[1], ids[3], ids[5] }, mess_files(d))
    local out = cli(d, "list")
    for _, i in ipairs({ 1, 3, 5 }) do assert.matches(ids[i], out, 1, true) end
    assert.matches("moved 3", cli(d, "cat " .. ids[3]), 1, true)
    resume(d)
    assert.is_truthy(maildir.wait(d, "alice", 3, 10), d:log())
    assert.is_truthy(D.eventually(function() return #mess_files(d) == 0 end, 5), d:log())
    assert.equal("moved 1,moved 3,moved 5", subjects(d, "alice"))
    assert.equal("exited", (d:stop(10)))
    d:restart()
    D.t.sleep(1.5)
    assert.equal("moved 1,moved 3,moved 5", subjects(d, "alice"), "not delivered again")
  end)

  it("compacts a segment only once a quarter or less of it is live (before the hour)", function()
    local d = start{ deliver = false, workers = 1, queues = 1,
      env = { INDIMAIL_TEST_COMPACT_AFTER_S = "0,3600" } }
    local ids = {}
    for i = 1, 8 do ids[i] = d:send("bob@example.test", { "alice@example.test" }, message("sparse " .. i)) end
    assert.matches("^5 messages removed", (cli(d, "remove " .. table.concat(ids, " ", 1, 5))))
    assert.equal("exited", (d:stop(10)))
    local from = #d:log() + 1
    d:restart()
    -- 3 of 8 live: more than a quarter, left alone round after round
    D.t.sleep(3)
    assert.equal(0, select(2, d:log():sub(from):gsub("event=segment_compacted", "")), d:log():sub(from))
    assert.equal(1, segments(d))
    assert.matches("^1 message removed", (cli(d, "remove " .. ids[6])))
    -- 2 of 8: a quarter, moved out, and the segment goes
    assert.is_truthy(d:wait_log("event=segment_compacted messages=2 moved=2 ", 10, from), d:log():sub(from))
    assert.same({ ids[7], ids[8] }, mess_files(d))
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 10, 0.2),
      table.concat(wal_files(d), " "))
  end)

  it("moves a deferred message out of the active set and the segment its worker sealed by age; it is delivered from its file", function()
    local port, release = D.closed_tcp_port()
    local d = start{ workers = 1, queues = 1,
      env = { INDIMAIL_TEST_COMPACT_AFTER_S = "0", INDIMAIL_TEST_SEGMENT_AGE_S = "1" },
      routes = ("['remote.test'] = { host = '127.0.0.1', port = %d, tls = 'none' }"):format(port) }
    local a = d:send("bob@example.test", { "carol@remote.test" }, message("deferred"))
    assert.is_truthy(d:wait_log("event=deferred qid=" .. a, 10), d:log())
    D.t.sleep(1.2)
    -- the worker's next batch starts a new segment: the first takes no more
    local b = d:send("bob@example.test", { "alice@example.test" }, message("seals"))
    assert.is_truthy(d:wait_log("event=removed qid=" .. b, 10), d:log())
    assert.is_truthy(d:wait_log("event=segment_compacted messages=1 moved=1 ", 10), d:log())
    assert.same({ a }, mess_files(d))
    assert.is_truthy(D.eventually(function() return segments(d) == 1 end, 10, 0.2),
      table.concat(wal_files(d), " "))
    release()
    local fake = fake_smtp.start(D.scratch_dir("seg"), "127.0.0.1", port, {})
    assert.matches("^1 message", (cli(d, "flush " .. a)))
    assert.is_truthy(d:wait_log("event=removed qid=" .. a, 10), d:log())
    assert.equal(1, fake.count("\nMESSAGE "))
    assert.matches("\r?\n\r?\nbody of deferred\r?\n$", fake.message(1))
    assert.equal(0, #mess_files(d))
  end)

  it("keeps a moved message's file when a listing finds it before the move has written the dead list", function()
    local d = start{ deliver = false, workers = 1,
      env = { INDIMAIL_TEST_COMPACT_AFTER_S = "0", INDIMAIL_TEST_MOVE_DELAY_MS = "1500" } }
    local ids = {}
    for i = 1, 3 do ids[i] = d:send("bob@example.test", { "alice@example.test" }, message("listed " .. i)) end
    table.sort(ids)
    assert.equal("exited", (d:stop(10)))
    local from = #d:log() + 1
    d:restart()
    assert.is_truthy(d:wait_log("event=segment_compacting messages=3", 10, from), d:log():sub(from))
    -- the files are in mess/, the dead list not written yet: a worker's
    -- death makes the queue manager list the queue meanwhile
    assert.is_truthy(D.eventually(function() return #mess_files(d) == 3 end, 5), d:log():sub(from))
    D.t.kill(d:worker_pids()[1], "KILL")
    assert.is_truthy(d:wait_log("event=segment_record_superseded qid=" .. ids[3], 5, from), d:log():sub(from))
    assert.is_truthy(d:wait_log("event=segment_compacted messages=3 moved=3 ", 10, from), d:log():sub(from))
    assert.same(ids, mess_files(d))
    resume(d)
    assert.is_truthy(maildir.wait(d, "alice", 3, 10), d:log())
    assert.equal("listed 1,listed 2,listed 3", subjects(d, "alice"))
  end)

  it("a queue manager killed during a move: the master removes its files in tmp/, the records stay the messages", function()
    local d = start{ deliver = false, workers = 1, queues = 1 }
    local a = d:send("bob@example.test", { "alice@example.test" }, message("cut in tmp"))
    local qpid = tonumber(d:wait_log("event=qmgr_started pid=(%d+)"))
    -- what step 1 of a move leaves: the record's copy, not renamed yet
    local tmp = ("%s/queue/0/tmp/%d.%s"):format(d.dir, qpid, a)
    D.writefile(tmp, "IMQ1\n")
    local from = #d:log() + 1
    D.t.kill(qpid, "KILL")
    assert.is_truthy(d:wait_log("event=qmgr_died pid=" .. qpid, 5, from), d:log():sub(from))
    assert.is_nil(io.open(tmp), "its tmp file is gone")
    resume(d)
    assert.is_truthy(maildir.wait(d, "alice", 1, 10), d:log())
    assert.equal("cut in tmp", subjects(d, "alice"))
  end)

  it("takes the file of a message both moved and still live in its segment (a move cut short), and delivers it once", function()
    -- the wal backend's checkpoint leaves the message as a file; a mark
    -- put back to 0 makes its record live again, as after a crash between
    -- a move's rename and its dead-list line
    local d, a = wal_checkpointed("both")
    local marks = D.sh("ls " .. d.dir .. "/queue/*/wal/*.ck")
    for mark in marks:gmatch("%S+") do
      D.writefile(mark, "IMC1" .. string.pack("<I8<I4", 0, 0x8c28b28a))
    end
    to_segment(d)
    d:restart()
    assert.is_truthy(d:wait_log("event=segment_record_superseded qid=" .. a, 10), d:log())
    assert.is_truthy(d:wait_log("event=removed qid=" .. a, 10), d:log())
    assert.is_truthy(D.eventually(function() return #wal_files(d) == 0 end, 20, 0.2),
      table.concat(wal_files(d), " "))
    assert.equal("exited", (d:stop(10)))
    d:restart()
    D.t.sleep(1.5)
    assert.equal("both", subjects(d, "alice"), "delivered once")
  end)
end)

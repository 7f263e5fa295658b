-- The wal queue backend (docs/queue.md "The wal backend"): a worker
-- appends accepted messages to its write-ahead segment and answers 250
-- after one flush; the checkpoint writes them out as the message files the
-- queue manager reads. Recovery at start (and when a worker dies) writes
-- out what a segment holds past its checkpoint mark, skips a torn tail,
-- and never revives a message the mark says was already out.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local t = D.t

local USERS = "users = { 'alice@example.test' }, postmaster = 'alice@example.test'"

local function start()
  return D.start_for_test{ deliver = true, queue_backend = "wal", mailboxes = USERS }
end

-- ---- segments written by the spec (the format of src/queue/queue_wal.h) --

local CRC = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1 == 1) and ((c >> 1) ~ 0x82F63B78) or (c >> 1) end
  CRC[i] = c
end

local function crc32c(s)
  local c = 0xffffffff
  for i = 1, #s do c = CRC[(c ~ s:byte(i)) & 0xff] ~ (c >> 8) end
  return ~c & 0xffffffff
end

local function record(id, payload)
  local len = string.pack("<I8", #payload)
  local crc = crc32c(len .. id .. string.pack("<I4", crc32c(payload)))
  return "IMW1" .. len .. id .. string.pack("<I4", crc) .. payload
end

local function mark(offset)
  local o = string.pack("<I8", offset)
  return "IMC1" .. o .. string.pack("<I4", crc32c(o))
end

local function qid(n)
  return ("%09X%05X%06X%04X"):format(os.time(), 0, 0xABCDE, n)
end

-- A queue file for alice, Subject: the given one.
local function payload(id, subject)
  return table.concat({ "IMQ1", "id " .. id, "received " .. os.time(), "ip 127.0.0.1",
    "helo client.example.test", "listener smtp", "sender bob@example.test",
    "rcpt alice@example.test", "route local", "",
    "Subject: " .. subject, "", "body of " .. subject, "" }, "\n")
end

-- The pid of a process that ran and is gone: a dead writer.
local function dead_pid()
  local pid = t.spawn({ "/bin/true" }, "/dev/null")
  t.waitpid(pid)
  return pid
end

-- The files the spec wrote belong to the queue's account, as a worker's would.
local function own(d)
  if t.getuid() == 0 then D.sh("chown -R indimail: " .. d.dir .. "/queue") end
end

local function subjects(d)
  local got = {}
  for _, f in ipairs(maildir.new_files(d, "alice")) do
    local s = (D.readfile(f) or ""):match("\nSubject: ([^\n]+)")
    if s then got[#got + 1] = s end
  end
  table.sort(got)
  return table.concat(got, ",")
end

describe("the wal queue backend", function()
  after_each(cleanup.run)

  it("answers 250 after the segment's flush, and the checkpoint hands the message to the queue manager", function()
    local d = start()
    local id = d:send("bob@example.test", { "alice@example.test" },
      "Subject: through the wal\r\n\r\nhello\r\n")
    assert.is_truthy(maildir.wait(d, "alice"), d:log())
    assert.is_truthy(d:wait_log("event=delivered qid=" .. id, 5))
    assert.equal("through the wal", subjects(d))
    local segs = D.sh("ls " .. d.dir .. "/queue/*/wal/")
    assert.matches("%d+%.%d+%.ck", segs)        -- the worker's segment and its mark
    assert.equal(0, #d:tmp_files())
  end)

  it("shows a message from its 250 on: mailq, queue list and queue show read it from the segment until its checkpoint", function()
    local d = start()
    -- tmp/ closed to the worker: every checkpoint fails, the records stay
    -- in the segment past its mark until the worker dies (recovery)
    local mode = D.sh("stat -c %a " .. d.dir .. "/queue/0/tmp"):match("%d+")
    D.sh("chmod 0500 " .. d.dir .. "/queue/*/tmp")
    D.writefile(d.dir .. "/input.txt", "Subject: unsettled\n\nbody\n")
    local out = D.sh(("INDIMAIL_SUBMIT_SOCKET=%s/queue/public/submit.sock %s/sendmail -v "
      .. "alice@example.test < %s/input.txt 2>&1"):format(d.dir, D.bin, d.dir))
    local id = out:match("queued as (%x+)")
    assert.is_truthy(id, out)
    t.sleep(0.5)  -- its checkpoint has failed by now: no file in mess/
    assert.equal(0, #d:mess_files())
    local mailq = D.sh("INDIMAIL_CONFIG_FILE=" .. d.config .. " " .. D.bin .. "/mailq")
    assert.matches("\n" .. id .. " ", mailq)
    assert.matches("alice@example.test", mailq, 1, true)
    assert.matches("in 1 Request", mailq, 1, true)
    local list = d:queue_list()
    assert.matches(id, list, 1, true)
    assert.matches("1 message in the queue", list, 1, true)
    local show = D.sh(D.bin .. "/indimail -c " .. d.config .. " queue show " .. id)
    assert.matches("pending%s+<alice@example.test>", show)
    assert.matches("path [^\n]*/wal/%d+%.%d+\n", show)
    -- the worker dies: recovery writes it out, it is delivered once
    D.sh("chmod " .. mode .. " " .. d.dir .. "/queue/*/tmp")
    t.kill(d:worker_pids()[1], "KILL")
    assert.is_truthy(maildir.wait(d, "alice"), d:log())
    assert.is_truthy(d:wait_log("event=delivered qid=" .. id, 5))
    t.sleep(0.5)
    assert.equal("unsettled", subjects(d))
  end)

  it("logs a checkpoint that fails at once, once per message, retries it until tmp/ is writable again; queue cat reads it from the segment meanwhile", function()
    local d = start()
    local mode = D.sh("stat -c %a " .. d.dir .. "/queue/0/tmp"):match("%d+")
    D.sh("chmod 0500 " .. d.dir .. "/queue/*/tmp")
    local c = d:session()
    local ids = {}
    for _, name in ipairs({ "first", "second" }) do
      local code, text = c:transaction("bob@example.test", { "alice@example.test" },
        ("Subject: %s\r\n\r\n%s body\r\n"):format(name, name))
      assert.equal(250, code, text)
      ids[#ids + 1] = text:match("queued as (%x+)")
    end
    c:cmd("QUIT")
    for _, id in ipairs(ids) do
      assert.is_truthy(d:wait_event("wal_checkpoint_failed", { "qid=" .. id,
        "error=\"open [^\"]*/tmp/[^\"]*: Permission denied\"", "segment=[^ ]*/wal/%d+%.%d+" }), d:log())
    end
    t.sleep(3.5)  -- the retries after 1 s and 2 s more have failed too: no new line
    assert.equal(2, d:count_log("event=wal_checkpoint_failed "), d:log())
    assert.equal(0, #d:mess_files())
    -- queue cat: the message from its record in the segment, and only it
    local cat = function(args) return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue cat " .. args) end
    local out, code = cat(ids[1])
    assert.equal(0, code, out)
    assert.matches("\nSubject: first\n", out, 1, true)
    assert.equal("first body\n", out:sub(-11))
    assert.not_matches("second", out, 1, true)
    assert.not_matches("IMQ1", out, 1, true)
    out, code = cat("--envelope " .. ids[2])
    assert.equal(0, code, out)
    assert.equal("IMQ1\n", out:sub(1, 5))
    assert.matches("\nid " .. ids[2] .. "\n", out, 1, true)
    assert.equal("second body\n", out:sub(-12))
    assert.not_matches("first", out, 1, true)
    D.sh("chmod " .. mode .. " " .. d.dir .. "/queue/*/tmp")
    -- the next retry (4 s after the last) writes them out: delivered, no restart
    assert.is_truthy(maildir.wait(d, "alice", 2, 15), d:log())
    assert.equal("first,second", subjects(d))
    assert.equal(2, d:count_log("event=wal_checkpoint_failed "), d:log())
    assert.equal(0, d:count_log("event=wal_checkpoint_abandoned "), d:log())
    assert.equal(0, #d:tmp_files())
  end)

  it("keeps at most 4 segments per queue waiting for a failing checkpoint: then 451 4.3.0, and mail again once a retry gets them out", function()
    local d = start()  -- one worker, two queues
    local mode = D.sh("stat -c %a " .. d.dir .. "/queue/0/tmp"):match("%d+")
    D.sh("chmod 0500 " .. d.dir .. "/queue/*/tmp")
    local c = d:session()
    local acked, refused = {}, 0
    for i = 1, 24 do
      local code, text = c:transaction("bob@example.test", { "alice@example.test" },
        ("Subject: m%02d\r\n\r\nbody\r\n"):format(i))
      if code == 250 then
        local id = text:match("queued as (%x+)")
        acked[#acked + 1] = id
        -- its checkpoint has failed (and counted) before the next batch:
        -- a segment each
        assert.is_truthy(d:wait_event("wal_checkpoint_failed", { "qid=" .. id }), d:log())
      else
        assert.equal(451, code, text)
        assert.matches("^451 4%.3%.0 ", text)
        refused = refused + 1
      end
    end
    local segments = function()
      local n = 0
      for f in D.sh("ls " .. d.dir .. "/queue/*/wal/"):gmatch("[^\n]+") do
        if f:match("^%d+%.%d+$") then n = n + 1 end
      end
      return n
    end
    assert.equal(8, segments(), D.sh("ls -l " .. d.dir .. "/queue/*/wal/") .. d:log())
    assert.equal(8, #acked, d:log())
    assert.equal(16, refused)
    assert.is_truthy(d:wait_event("queue_error", { "error=\"queue %d: 4 segments wait for a failed checkpoint" }), d:log())
    D.sh("chmod " .. mode .. " " .. d.dir .. "/queue/*/tmp")
    -- the next retry writes them out, the segments go: delivered once, no restart
    assert.is_truthy(maildir.wait(d, "alice", #acked, 20), d:log())
    assert.is_truthy(D.eventually(function() return segments() == 0 end, 5), d:log())
    local code, text = c:transaction("bob@example.test", { "alice@example.test" },
      "Subject: after\r\n\r\nbody\r\n")
    assert.equal(250, code, text)
    c:cmd("QUIT")
    assert.is_truthy(maildir.wait(d, "alice", #acked + 1, 10), d:log())
    t.sleep(0.5)
    local want = {}
    for i = 1, #acked do want[i] = ("m%02d"):format(i) end
    want[#want + 1] = "after"
    table.sort(want)
    assert.equal(table.concat(want, ","), subjects(d))
    assert.equal(0, d:count_log("event=wal_checkpoint_abandoned "), d:log())
  end)

  it("kill -9 of a worker: the master recovers its segment, nothing is delivered twice", function()
    local d = start()
    local ids = {}
    for i = 1, 5 do
      ids[i] = d:send("bob@example.test", { "alice@example.test" },
        "Subject: before kill " .. i .. "\r\n\r\nx\r\n")
    end
    local pid = d:worker_pids()[1]
    t.kill(pid, "KILL")
    assert.is_truthy(d:wait_log("event=wal_recovered path=[^ ]*/" .. pid .. "%.%d+ writer=" .. pid, 5), d:log())
    assert.is_truthy(D.eventually(function() return #maildir.new_files(d, "alice") >= 5 end, 10))
    t.sleep(1)
    assert.equal("before kill 1,before kill 2,before kill 3,before kill 4,before kill 5", subjects(d))
    assert.equal("", (D.sh("ls " .. d.dir .. "/queue/*/wal/ | grep '^" .. pid .. "%.'"):gsub("%s", "")))
  end)

  it("recovers the complete records of a segment cut in the middle of a record; the torn one was never acknowledged", function()
    local d = start()
    d:stop()
    local pid, a, b, c = dead_pid(), qid(1), qid(2), qid(3)
    local seg = record(a, payload(a, "first")) .. record(b, payload(b, "second"))
    local torn = record(c, payload(c, "torn"))
    D.writefile(d.dir .. "/queue/0/wal/" .. pid .. ".0", seg .. torn:sub(1, #torn - 7))
    own(d)
    d:restart()
    assert.is_truthy(d:wait_log("event=wal_torn_tail path=[^ ]*/" .. pid .. "%.0 offset=" .. #seg, 5), d:log())
    assert.is_truthy(d:wait_log("event=wal_recovered path=[^ ]*/" .. pid .. "%.0 writer=" .. pid .. " moved=2 replayed=2", 5))
    assert.is_truthy(D.eventually(function() return #maildir.new_files(d, "alice") >= 2 end, 10))
    t.sleep(1)
    assert.equal("first,second", subjects(d))
    assert.is_nil(D.readfile(d.dir .. "/queue/0/wal/" .. pid .. ".0"))
  end)

  it("never writes again a record its mark covers: one still in tmp/ is moved in, one already gone stays gone", function()
    local d = start()
    d:stop()
    local pid, a, b, c = dead_pid(), qid(4), qid(5), qid(6)
    local ra, rb = record(a, payload(a, "delivered")), record(b, payload(b, "checkpointed"))
    local seg = ra .. rb .. record(c, payload(c, "past the mark"))
    D.writefile(d.dir .. "/queue/0/wal/" .. pid .. ".7", seg)
    D.writefile(d.dir .. "/queue/0/wal/" .. pid .. ".7.ck", mark(#ra + #rb))
    D.writefile(d.dir .. "/queue/0/tmp/" .. pid .. "." .. b, payload(b, "checkpointed"))
    own(d)
    d:restart()
    assert.is_truthy(d:wait_log("event=wal_recovered path=[^ ]*/" .. pid .. "%.7 writer=" .. pid .. " moved=2 replayed=1", 5), d:log())
    assert.is_truthy(D.eventually(function() return #maildir.new_files(d, "alice") >= 2 end, 10))
    t.sleep(1)
    assert.equal("checkpointed,past the mark", subjects(d))
    assert.equal(0, #d:tmp_files())
  end)
  it("only removes a segment shorter than its mark: its removal was cut while its blocks were freed, every record was out", function()
    local d = start()
    d:stop()
    local pid, a, b, c = dead_pid(), qid(7), qid(8), qid(9)
    local seg = record(a, payload(a, "out one")) .. record(b, payload(b, "out two"))
      .. record(c, payload(c, "out three"))
    D.writefile(d.dir .. "/queue/0/wal/" .. pid .. ".9", seg:sub(1, #seg // 2))
    D.writefile(d.dir .. "/queue/0/wal/" .. pid .. ".9.ck", mark(#seg))
    own(d)
    d:restart()
    assert.is_truthy(d:wait_log("event=wal_recovered path=[^ ]*/" .. pid .. "%.9 writer=" .. pid .. " moved=0 replayed=0", 5), d:log())
    assert.is_nil(d:log():find("event=wal_torn_tail path=[^ ]*/" .. pid .. "%.9"), d:log())
    assert.is_nil(D.readfile(d.dir .. "/queue/0/wal/" .. pid .. ".9"))
    assert.is_nil(D.readfile(d.dir .. "/queue/0/wal/" .. pid .. ".9.ck"))
    t.sleep(1)
    assert.equal("", subjects(d))
  end)
  it("removes a full segment once its records are out (its blocks freed 4 MiB at a time), the worker going on in a new one", function()
    local d = D.start_for_test{ queue_backend = "wal", queues = 1 }
    local msg = "Subject: big\r\n\r\n" .. (("x"):rep(998) .. "\r\n"):rep(1000)   -- 1 MB
    for _ = 1, 72 do d:send("bob@example.test", { "alice@example.test" }, msg) end
    local names
    assert.is_truthy(D.eventually(function()
      names = D.sh("ls " .. d.dir .. "/queue/0/wal/")
      return names:match("%d+%.[1-9]%d*\n") and not names:match("%d+%.0\n")
    end, 20), names)
    assert.equal("72", D.sh("find " .. d.dir .. "/queue/0/mess -type f | wc -l"):match("%d+"))
    assert.is_nil(d:log():find("event=wal_segment_kept"), d:log())
  end)
end)

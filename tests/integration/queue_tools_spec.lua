-- The queue tools: `indimail queue list|mailq|show|cat` and
-- `hold|release|remove|flush|requeue` on ids, ALL, filters or ids on stdin
-- (src/cli/queue_tool*.c), the queue manager's control socket they talk
-- to (<queue.path>/qmgr.sock: one request line, answer lines ending with
-- "ok N" or "error ..."), the admin log lines, bin/mailq's Postfix format;
-- and messages surviving a kill -9 of everything while a delivery is in
-- progress (the state journal: delivered once).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")
local maildir = require("maildir")
local t = D.t

-- ---- helpers -------------------------------------------------------------

local function esc(s) return (s:gsub("%p", "%%%0")) end

-- The scripted SMTP server (tests/helpers/fake_smtp.lua) on addr:port;
-- here only greeting_delay = { [n] = secs } is used.
local function start_fake(addr, port, o)
  return fake_smtp.start(D.scratch_dir("qt"), addr, port, o)
end

local MAILBOXES = "users = { 'alice@example.test', 'bob@example.test' }"

-- A daemon whose remote mail goes to relay (host:port): a closed port by
-- default, so every remote attempt is deferred for a long time.
local function start(o)
  o = o or {}
  local d = D.start_for_test{
    deliver = o.deliver ~= false,
    relay_from = "'127.0.0.0/8'",
    mailboxes = MAILBOXES,
    routes = "['*'] = '" .. (o.relay or ("127.0.0.6:" .. D.closed_tcp_port("127.0.0.6"))) .. "'",
    delivery = o.delivery or "retry = { base = 300, max = 600 }, timeouts = { connect = 2 }",
    policies = o.policies,
    env = o.env,
  }
  -- event=ready is the master's: the queue manager opens its socket a moment later
  assert.is_truthy(d:wait_log("event=qmgr_start queues", 5), d:log())
  return d
end

local function send(d, from, rcpts, subject)
  return d:send(from, rcpts, "From: " .. from .. "\r\nSubject: " .. subject
    .. "\r\n\r\nbody of " .. subject .. "\r\n")
end

-- Runs `indimail -c <config> queue ...`; returns stdout+stderr, exit code.
local function cli(d, args)
  return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue " .. args)
end

-- One request on the control socket; returns the whole answer.
-- Runs `indimail queue ...` with stdin from text.
local function cli_stdin(d, args, text)
  local f = D.scratch_dir("qt") .. "/ids"
  D.writefile(f, text)
  return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue " .. args .. " < " .. f)
end

local function deferred(d, qid)
  return d:count_log("event=deferred qid=" .. qid)
end

-- A message stuck at the relay: deferred once (connection refused), or,
-- once the relay is down, held back without a try (docs/delivery.md, "When
-- a destination is down": event=held at the debug level these specs log).
local function stuck_message(d, from, rcpt, subject)
  local qid = send(d, from, { rcpt }, subject)
  assert.is_truthy(D.eventually(function()
    local log = d:log()
    return log:find("event=deferred qid=" .. qid, 1, true) or log:find("event=held qid=" .. qid, 1, true)
  end, 10), d:log())
  return qid
end

local function deferred_message(d, rcpt, subject)
  return stuck_message(d, "alice@example.test", rcpt or "user@remote.test", subject or "stuck")
end

-- kill -9 of every process, then the same configuration started again.
local function restart(d)
  d:kill9()
  local from = d:restart()
  assert.is_truthy(d:wait_log("event=qmgr_start queues", 5, from))
  assert.is_truthy(d:wait_log("event=queue_scanned", 5, from))
  return from
end

-- The lines about one message in a listing: its line (id, age, size,
-- <sender>, maybe held) and the indented recipient lines after it.
local function entry(out, qid)
  local lines, found = {}, false
  for line in out:gmatch("[^\n]*") do
    if found then
      if not line:match("^%s") or line == "" then break end
      lines[#lines + 1] = line
    elseif line:find(qid, 1, true) == 1 then
      found = true
      lines[1] = line
    end
  end
  return found and lines or nil
end

local function rcpt_line(lines, state, rcpt)
  for i = 2, #lines do
    if lines[i]:match("^%s+" .. state .. "%s+<" .. esc(rcpt) .. ">") then return lines[i] end
  end
end

-- ---- the specification ---------------------------------------------------

describe("queue tools", function()
  after_each(cleanup.run)

  describe("indimail queue list", function()
    it("as a user who may not read the queue, says so and fails (never '0 messages')", function()
      if D.t.getuid() ~= 0 then
        pending("needs root to run the tool as another user")
        return
      end
      local d = D.start_for_test()
      d:send("a@example.test", { "b@example.test" }, "Subject: q\r\n\r\nx\r\n")
      local out, code = D.sh(("setpriv --reuid=nobody --regid=nogroup --clear-groups "
        .. "%s/indimail -c %s queue list"):format(D.bin, d.config))
      assert.are_not.equal(0, code, out)
      assert.matches("permission denied", out)
      assert.not_matches("0 messages", out)
      -- with the queue manager down, the folder fallback says so too
      d:stop()
      os.remove(d.dir .. "/queue/qmgr.sock")
      out, code = D.sh(("setpriv --reuid=nobody --regid=nogroup --clear-groups "
        .. "%s/indimail -c %s queue list"):format(D.bin, d.config))
      assert.are_not.equal(0, code, out)
      assert.matches("cannot read the queue", out)
      assert.not_matches("0 messages", out)
    end)

    it("shows a deferred message with per-recipient state, attempts, next retry and last error", function()
      local d = start()
      local qid = send(d, "alice@example.test", { "user@remote.test", "bob@example.test" }, "listed")
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid, 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=bob@example%.test", 5), d:log())
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("^" .. qid .. "%s+%d+s%s+%d+%s+<alice@example%.test>$", e[1])
      local line = rcpt_line(e, "pending", "user@remote.test")
      assert.is_truthy(line, out)
      assert.matches("attempts=1", line)
      local next_retry = tonumber(line:match("next_retry=(%d+)s"))
      assert.is_truthy(next_retry, line)
      assert.is_true(next_retry > 200 and next_retry <= 300, line)
      assert.matches('last_error="[^"]*127%.0%.0%.6', line)
      assert.is_truthy(rcpt_line(e, "done", "bob@example.test"), out)
      assert.equal(3, #e, out)
      assert.matches("\n1 message", out)
    end)

    it("lists every queued message", function()
      local d = start()
      local a = deferred_message(d, "one@remote.test", "first")
      local b = deferred_message(d, "two@remote.test", "second")
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      assert.is_truthy(entry(out, a), out)
      assert.is_truthy(entry(out, b), out)
      assert.matches("\n2 messages", out)
    end)

    it("reads the queue folders when the queue manager is not running", function()
      local d = start()
      local qid = deferred_message(d)
      d:stop()
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      assert.matches("not running", out)
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("<alice@example%.test>", e[1])
      assert.matches("<user@remote%.test>", e[2])
      assert.matches("\n1 message", out)
    end)
  end)

  describe("indimail queue show", function()
    it("shows one message and the path of its file", function()
      local d = start()
      local qid = deferred_message(d)
      local out, code = cli(d, "show " .. qid)
      assert.equal(0, code, out)
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("<alice@example%.test>", e[1])
      assert.matches("attempts=1 next_retry=%d+s", rcpt_line(e, "pending", "user@remote.test"))
      local path = out:match("\npath (%S+)")
      assert.is_truthy(path, out)
      local files = d:queue_files()   -- its file, or its segment's record
      assert.equal(1, #files)
      assert.equal(path, files[1]:sub(1, #path))
    end)

    it("fails with exit code 1 for an id that is not queued", function()
      local d = start()
      local out, code = cli(d, "show 06B06A0000000000DEAD0000")
      assert.equal(1, code, out)
      assert.matches("no message", out)
    end)
  end)

  describe("indimail queue flush", function()
    it("retries deferred messages at once", function()
      local d = start()
      local qid = deferred_message(d)
      assert.equal(1, deferred(d, qid))
      local out, code = cli(d, "flush")
      assert.equal(0, code, out)
      assert.matches("^1 message", out)
      assert.is_truthy(D.eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      local list = cli(d, "list")
      assert.matches("attempts=2", rcpt_line(entry(list, qid), "pending", "user@remote.test"))
    end)
  end)

  describe("indimail queue hold / release", function()
    it("a held message is not tried by flush, and is tried again once released", function()
      local d = start()
      local qid = deferred_message(d)
      local out, code = cli(d, "hold " .. qid)
      assert.equal(0, code, out)
      assert.matches("held", entry(cli(d, "show " .. qid), qid)[1])
      out, code = cli(d, "flush")
      assert.equal(0, code, out)
      assert.matches("^0 messages", out)
      t.sleep(2.2)   -- two scheduler ticks
      assert.equal(1, deferred(d, qid))
      out, code = cli(d, "release " .. qid)
      assert.equal(0, code, out)
      assert.is_truthy(D.eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      assert.is_nil(entry(cli(d, "list"), qid)[1]:match("held"))
    end)

    it("a hold survives a restart (kill -9): the message is not tried until released", function()
      local d = start()
      local qid = deferred_message(d)
      assert.equal(0, select(2, cli(d, "hold " .. qid)))
      t.sleep(0.3)   -- the journal write is asynchronous to the answer
      local from = restart(d)
      t.sleep(2.2)
      assert.is_nil(d:log():sub(from):match("event=deferred qid=" .. qid), d:log():sub(from))
      local out = cli(d, "list")
      assert.matches("held", entry(out, qid)[1])
      assert.equal(0, select(2, cli(d, "release " .. qid)))
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid, 5, from), d:log():sub(from))
    end)
  end)

  describe("indimail queue remove", function()
    it("removes the message and its journal from the queue, without a bounce", function()
      local d = start()
      local qid = deferred_message(d)
      local other = deferred_message(d, "other@remote.test", "stays")
      assert.equal(2, #d:queue_files())
      local out, code = cli(d, "remove " .. qid)
      assert.equal(0, code, out)
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.is_truthy(D.eventually(function() return #d:queue_files() == 1 end, 5))
      assert.matches(other .. "$", d:queue_files()[1])
      assert.equal("", D.sh("find " .. d.dir .. "/queue/*/state -type f -name '*" .. qid .. "*'"))
      out = cli(d, "list")
      assert.is_nil(entry(out, qid), out)
      assert.is_truthy(entry(out, other), out)
      assert.equal(0, d:count_log("event=bounce_queued"))
      assert.equal(0, d:count_log("event=bounced"))
      -- and it stays gone across a restart
      local from = restart(d)
      t.sleep(0.5)
      assert.is_nil(d:log():sub(from):find(qid, 1, true))
      assert.matches("event=queue_scanned messages=1", d:log():sub(from))
    end)

    it("fails with exit code 1 for an id that is not queued", function()
      local d = start()
      local out, code = cli(d, "remove 06B06A0000000000DEAD0000")
      assert.equal(1, code, out)
      assert.matches("no message", out)
    end)
  end)

  describe("selections: several ids, ALL, filters, ids on stdin", function()
    -- three deferred messages: two from alice (one to far.test), one from bob
    local function three(d)
      local a = deferred_message(d, "one@remote.test", "a")
      local b = deferred_message(d, "two@far.test", "b")
      local c = stuck_message(d, "bob@example.test", "three@remote.test", "c")
      return a, b, c
    end
    local function held(d, qid) return entry(cli(d, "list"), qid)[1]:match("held") ~= nil end

    it("holds several ids in one command and releases ALL", function()
      local d = start()
      local a, b, c = three(d)
      local out, code = cli(d, "hold " .. a .. " " .. b)
      assert.equal(0, code, out)
      assert.matches("^2 messages held", out)
      assert.is_true(held(d, a)); assert.is_true(held(d, b)); assert.is_false(held(d, c))
      out, code = cli(d, "release ALL")
      assert.equal(0, code, out)
      assert.matches("^3 messages released", out)
      assert.is_false(held(d, a)); assert.is_false(held(d, b))
    end)

    it("selects by --from, --to, --domain and --older-than", function()
      local d = start()
      local a, b, c = three(d)
      local out, code = cli(d, "hold --from bob@example.test")
      assert.equal(0, code, out)
      assert.matches("^1 message held", out)
      assert.is_true(held(d, c)); assert.is_false(held(d, a))
      out = cli(d, "hold --domain far.test")
      assert.matches("^1 message held", out)
      assert.is_true(held(d, b)); assert.is_false(held(d, a))
      out = cli(d, "release --to TWO@far.test")
      assert.matches("^1 message released", out)
      assert.is_false(held(d, b))
      out = cli(d, "hold --older-than 1h")
      assert.matches("^0 messages held", out)
      t.sleep(1.1)
      out = cli(d, "hold --older-than 1s --from alice@example.test")
      assert.matches("^2 messages held", out)
      assert.is_true(held(d, a)); assert.is_true(held(d, b))
      out, code = cli(d, "hold --older-than soon")
      assert.equal(2, code, out)
      assert.matches("older%-than", out)
    end)

    it("reads ids on stdin with -, one a line (mailq's marks dropped)", function()
      local d = start()
      local a, b, c = three(d)
      local out, code = cli_stdin(d, "hold -", a .. "\n\n" .. b .. "!\n")
      assert.equal(0, code, out)
      assert.matches("^2 messages held", out)
      assert.is_true(held(d, a)); assert.is_true(held(d, b)); assert.is_false(held(d, c))
    end)

    it("says which ids are not queued, acts on the others and exits 1", function()
      local d = start()
      local a = deferred_message(d)
      local out, code = cli(d, "hold 06B06A0000000000DEAD0000 " .. a)
      assert.equal(1, code, out)
      assert.matches("no message in the queue: 06B06A0000000000DEAD0000", out)
      assert.matches("1 message held", out)
      assert.is_true(held(d, a))
    end)

    it("flushes only the selected messages", function()
      local d = start()
      local a, b = three(d)
      local tries_b = deferred(d, b)   -- 0: held back, the relay being down
      local out, code = cli(d, "flush " .. a)
      assert.equal(0, code, out)
      assert.matches("^1 message scheduled", out)
      assert.is_truthy(D.eventually(function() return deferred(d, a) == 2 end, 5), d:log())
      t.sleep(1.2)
      assert.equal(tries_b, deferred(d, b))
    end)

    it("removes by filter, and refuses a hold/remove that names no message", function()
      local d = start()
      local a, b, c = three(d)
      local out, code = cli(d, "remove")
      assert.equal(2, code, out)
      assert.matches("which messages", out)
      out, code = cli(d, "remove --domain remote.test")
      assert.equal(0, code, out)
      assert.matches("^2 messages removed", out)
      assert.is_truthy(d:wait_log("event=removed qid=" .. a, 5), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. c, 5), d:log())
      assert.is_truthy(entry(cli(d, "list"), b))
    end)

    it("takes a few hundred ids on stdin, 32 to a request", function()
      local d = start()
      local a = deferred_message(d)
      local ids = {}
      for i = 1, 300 do ids[i] = ("06B06A00000000%010X"):format(i) end
      ids[#ids + 1] = a
      local out, code = cli_stdin(d, "hold -", table.concat(ids, "\n") .. "\n")
      assert.equal(1, code, out)
      assert.matches("1 message held", out)
      assert.equal(10, d:count_log("event=admin action=hold"))
    end)
  end)

  describe("every admin action", function()
    it("logs one line: event=admin action= selection= count= ids= by=uid", function()
      local d = start()
      local a = deferred_message(d)
      cli(d, "hold " .. a)
      cli(d, "release ALL")
      cli(d, "flush --from alice@example.test")
      local uid = tostring(D.t.getuid())
      assert.is_truthy(d:wait_log("event=admin action=hold selection=\"?ids=1\"? count=1 failed=0 ids=" .. a .. " by=" .. uid, 5), d:log())
      assert.is_truthy(d:wait_log("event=admin action=release selection=ALL count=1 failed=0 ids=" .. a .. " by=" .. uid, 5), d:log())
      assert.is_truthy(d:wait_log("event=admin action=flush selection=\"from=alice@example%.test\" count=1 failed=0 ids=" .. a .. " by=" .. uid, 5), d:log())
    end)
  end)

  describe("a bad command line", function()
    -- Each verb and its usage line's arguments (src/cli/queue_tool_args.c).
    local SELECTION = "[--from ADDR] [--to ADDR] [--domain DOMAIN] [--older-than 2h|3d] [ID...|ALL|-]"
    local VERBS = {
      { "list", "" }, { "mailq", "" }, { "active", "" }, { "show", " ID" },
      { "cat", " [--envelope] ID" }, { "destinations", " [--down] [--json]" },
      { "hold", " " .. SELECTION }, { "release", " " .. SELECTION }, { "remove", " " .. SELECTION },
      { "flush", " " .. SELECTION }, { "requeue", " " .. SELECTION },
    }

    -- The whole output: the line saying what is wrong, then the usage line.
    local function refused(out, verb, args, why)
      return "indimail queue " .. verb .. ": " .. why .. "\nusage: indimail [-c config.lua] queue "
        .. verb .. args .. "\n" == out
    end

    for _, v in ipairs(VERBS) do
      local verb, args = v[1], v[2]
      it("queue " .. verb .. " --bogus names the option and shows one usage line, exit 2", function()
        local d = start()
        local out, code = cli(d, verb .. " --bogus")
        assert.equal(2, code, out)
        assert.is_true(refused(out, verb, args, "unknown option --bogus"), out)
        out, code = cli(d, verb .. " -x 06B06A0000000000DEAD0000")
        assert.equal(2, code, out)
        assert.is_true(refused(out, verb, args, "unknown option -x"), out)
      end)
    end

    it("says which argument is missing or too many, and which option lacks its value", function()
      local d = start()
      local cases = {
        { "show", "missing ID" }, { "cat --envelope", "missing ID" },
        { "show A B", "unexpected argument B" }, { "list now", "unexpected argument now" },
        { "destinations down", "unexpected argument down" },
        { "hold --from", "--from needs a value" }, { "remove ALL --older-than", "--older-than needs a value" },
        { "release --older-than 5x", "--older-than 5x: give a number with s, m, h, d or w (2h, 3d)" },
        { "remove", "which messages? give ids, ALL, - (ids on stdin) or a filter" },
      }
      for _, c in ipairs(cases) do
        local verb = c[1]:match("^%S+")
        local out, code = cli(d, c[1])
        assert.equal(2, code, c[1] .. ": " .. out)
        local args
        for _, v in ipairs(VERBS) do if v[1] == verb then args = v[2] end end
        assert.is_true(refused(out, verb, args, c[2]), c[1] .. ": " .. out)
      end
    end)

    it("an unknown verb gets the whole usage text, exit 2", function()
      local d = start()
      local out, code = cli(d, "bogus")
      assert.equal(2, code, out)
      assert.matches("^indimail queue: unknown command bogus\nusage: indimail ", out)
      assert.matches("queue destinations %[%-%-down%] %[%-%-json%]", out)
    end)
  end)

  describe("indimail queue cat", function()
    it("prints the message as queued, and with --envelope its envelope first", function()
      local d = start()
      local qid = deferred_message(d, "user@remote.test", "cat me")
      local out, code = cli(d, "cat " .. qid)
      assert.equal(0, code, out)
      assert.matches("^Received: ", out)
      assert.matches("\nSubject: cat me\n\nbody of cat me\n$", out)
      out = cli(d, "cat --envelope " .. qid)
      assert.matches("^IMQ1\nid " .. qid .. "\n", out)
      assert.matches("\nsender alice@example%.test\n", out)
      assert.matches("\nrcpt user@remote%.test\n", out)
      assert.matches("\n\nReceived: ", out)
    end)

    it("reads the file with no queue manager running, and fails for an unknown id", function()
      local d = start()
      local qid = deferred_message(d, "user@remote.test", "offline")
      d:stop()
      local out, code = cli(d, "cat " .. qid)
      assert.equal(0, code, out)
      assert.matches("body of offline", out)
      out, code = cli(d, "cat 06B06A0000000000DEAD0000")
      assert.equal(1, code, out)
      assert.matches("no message in the queue", out)
    end)
  end)

  describe("indimail queue requeue", function()
    it("runs the route hook again for pending recipients after a config change and reload", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.7", port)
      local closed = D.closed_tcp_port("127.0.0.6")
      local hook = [[
indimail.hook("route", function(session, tx, rcpt)
  indimail.log("routed_by", { version = "VERSION" })
  return indimail.route_relay("127.0.0.HOST", PORT, { tls = "none" })
end, "requeue_test")
]]
      local function policy(v, host, p)
        return (hook:gsub("VERSION", v):gsub("HOST", host):gsub("PORT", tostring(p)))
      end
      local d = start{ policies = policy("one", "6", closed) }
      local qid = deferred_message(d)
      assert.equal(1, d:count_log("event=routed_by[^\n]*version=one"), d:log())
      D.writefile(d.config, (D.readfile(d.config):gsub('version = "one"', 'version = "two"')
        :gsub('"127%.0%.0%.6", ' .. closed, '"127.0.0.7", ' .. port)))
      d:signal("HUP")
      assert.is_truthy(d:wait_log("event=reloaded", 10), d:log())
      -- a flush keeps the cached route: the closed relay again
      cli(d, "flush " .. qid)
      assert.is_truthy(D.eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      assert.equal(0, d:count_log("event=routed_by[^\n]*version=two"))
      local out, code = cli(d, "requeue " .. qid)
      assert.equal(0, code, out)
      assert.matches("^1 message requeued", out)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, d:count_log("event=routed_by[^\n]*version=two"))
      assert.equal(1, fake.count("\nMESSAGE "))
    end)
  end)

  describe("mailq (bin/mailq, sendmail -bp)", function()
    it("prints Postfix's format: header, message line, reason, indented recipients, total", function()
      local d = start()
      local qid = send(d, "alice@example.test", { "user@remote.test", "bob@example.test", "x@remote.test" }, "mq")
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid, 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=bob@example%.test", 5), d:log())
      local out, code = D.sh("INDIMAIL_CONFIG_FILE=" .. d.config .. " " .. D.bin .. "/mailq")
      assert.equal(0, code, out)
      local lines = {}
      for l in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
      assert.equal("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------", lines[1])
      assert.matches("^" .. qid .. " %s*%d+ %a%a%a %a%a%a [ %d]%d %d%d:%d%d:%d%d  alice@example%.test$", lines[2])
      assert.matches("^%s+%(.*127%.0%.0%.6.*%)$", lines[3])
      assert.equal(78, #lines[3], lines[3])
      assert.equal((" "):rep(41) .. "user@remote.test", lines[4])
      assert.equal((" "):rep(41) .. "x@remote.test", lines[5])   -- same reason: not repeated
      assert.equal("", lines[6])
      assert.matches("^%-%- %d+ Kbytes in 1 Request%.$", lines[7])
      assert.equal(7, #lines, out)
    end)

    it("marks a held message with ! and says when the queue is empty", function()
      local d = start()
      local out = D.sh("INDIMAIL_CONFIG_FILE=" .. d.config .. " " .. D.bin .. "/mailq")
      assert.equal("Mail queue is empty\n", out)
      local qid = deferred_message(d)
      cli(d, "hold " .. qid)
      out = D.sh("INDIMAIL_CONFIG_FILE=" .. d.config .. " " .. D.bin .. "/mailq")
      assert.matches("\n" .. qid .. "!", out)
      -- and from the folders when the queue manager is down
      d:stop()
      out = D.sh("INDIMAIL_CONFIG_FILE=" .. d.config .. " " .. D.bin .. "/mailq")
      assert.matches("\n" .. qid .. "!%s+%d+ ", out)
      assert.matches("\n%s+user@remote%.test\n\n%-%- %d+ Kbytes in 1 Request%.\n", out)
    end)
  end)

  describe("the control socket", function()
    it("answers list with one block per message and ok N", function()
      local d = start()
      local qid = deferred_message(d)
      local out = d:qmgr_control("list")
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("<alice@example%.test>", e[1])
      assert.matches("attempts=1 next_retry=%d+s", rcpt_line(e, "pending", "user@remote.test"))
      assert.equal(2, #e)
      assert.matches("\nok 1\n$", out)
    end)

    it("answers show, hold, release, flush and remove with ok", function()
      local d = start()
      local qid = deferred_message(d)
      assert.matches("\npath [^\n]+\nok 1\n$", (d:qmgr_control("show " .. qid)))
      assert.equal("ok 1\n", (d:qmgr_control("hold " .. qid)))
      assert.equal("ok 0\n", (d:qmgr_control("flush")))
      assert.equal("ok 1\n", (d:qmgr_control("release " .. qid)))
      assert.is_truthy(D.eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      assert.equal("ok 1\n", (d:qmgr_control("flush")))
      assert.is_truthy(D.eventually(function() return deferred(d, qid) == 3 end, 5), d:log())
      assert.equal("ok 1\n", (d:qmgr_control("remove " .. qid)))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal("ok 0\n", (d:qmgr_control("list")))
    end)

    it("answers an unknown command or id with error", function()
      local d = start()
      assert.matches("^error unknown command", (d:qmgr_control("frobnicate")))
      assert.matches("^error no message", (d:qmgr_control("show 06B06A0000000000DEAD0000")))
      assert.matches("^error no message", (d:qmgr_control("hold 06B06A0000000000DEAD0000")))
    end)

    it("drops a request line over 4 KiB and keeps answering", function()
      local d = start()
      d:qmgr_control(("x"):rep(5000))
      assert.matches("^ok 0\n$", (d:qmgr_control("list")))
    end)
  end)

  describe("a message being loaded into the active set while a command walks the queue", function()
    -- INDIMAIL_TEST_LOAD_DELAY_MS holds every load on the pool that long
    -- (src/deliver/qmgr_load.c), so the commands below meet both messages
    -- read from disk while their load is under way.
    local function loading()
      local d = start{ deliver = false, env = { INDIMAIL_TEST_LOAD_DELAY_MS = "1500" } }
      local a = send(d, "alice@example.test", { "one@remote.test" }, "a")
      local b = send(d, "alice@example.test", { "two@remote.test" }, "b")
      assert.is_truthy(D.eventually(function()
        return d:qmgr_control("active"):match("waiting 2\n")
      end, 5, 0.05), "both wait while delivery is paused")
      D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
      assert.is_true(d:signal("HUP"))
      assert.is_truthy(D.eventually(function()
        return d:qmgr_control("active"):match("loading 2 ")
      end, 5, 0.01), "both being loaded")
      return d, a, b
    end

    it("is listed once its load has ended, not left out", function()
      local d, a, b = loading()
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      assert.is_truthy(entry(out, a)[1], out)
      assert.is_truthy(entry(out, b)[1], out)
      assert.matches("loading 0 ", d:qmgr_control("active"), "the list waited for the loads")
    end)

    it("is held by hold ALL, in the active set", function()
      local d, a, b = loading()
      local out, code = cli(d, "hold ALL")
      assert.equal(0, code, out)
      assert.matches("^2 messages held", out)
      out = cli(d, "list")
      assert.matches("held", entry(out, a)[1])
      assert.matches("held", entry(out, b)[1])
      assert.matches("^active 2 ", d:qmgr_control("active"))
    end)
  end)

  describe("a file in the queue that is not a message", function()
    it("is reported in the log at start, never silently skipped, and the rest is served", function()
      local d = start()
      local qid = deferred_message(d)
      local bad = d.dir .. "/queue/0/mess/0/06B06A0000000000BAD00000"
      D.writefile(bad, "this is not an envelope\n")
      D.sh("chown indimail " .. bad .. " 2>/dev/null")
      d:kill9()
      d:restart()
      assert.is_truthy(d:wait_log("event=queue_file_unreadable path=" .. bad:gsub("%p", "%%%0"), 5), d:log())
      assert.is_truthy(entry(d:qmgr_control("list"), qid), "the good message is still listed")
    end)
  end)

  describe("a file in mess/ still marked as being written (its owner's execute bit)", function()
    -- What the fs backend leaves when its writer dies between creating a
    -- group's files in place and marking them complete (docs/queue.md):
    -- a whole envelope here, so only the mark keeps it from being read.
    local function planted(d, pid, n)
      local id = ("%09X%05X%06X%04X"):format(os.time(), 1, pid, n)
      local h = 5381
      for i = 1, #id do h = (h * 33 + id:byte(i)) % 4294967296 end
      local path = ("%s/queue/0/mess/%d/%s"):format(d.dir, h % 4, id)
      D.writefile(path, "IMQ1\nid " .. id .. "\nreceived " .. os.time() ..
        "\nip 127.0.0.1\nhelo planted.test\nlistener smtp\nsender alice@example.test\n" ..
        "hold planted by the spec\nrcpt user@remote.test\n\nSubject: planted\n\nbody\n")
      D.sh("chown indimail " .. path .. " 2>/dev/null; chmod 0740 " .. path)
      return id, path
    end
    local function exists(path)
      local f = io.open(path)
      if f then f:close() end
      return f ~= nil
    end

    it("is no message: a dead writer's is removed, a running writer's is read once complete", function()
      local d = start()
      local dead = assert(tonumber((D.sh("sh -c 'echo $$'"))))
      local live = assert(tonumber((D.sh("sleep 60 >/dev/null 2>&1 & echo $!"))))
      cleanup.defer(function() D.sh("kill " .. live .. " 2>/dev/null") end)
      local gone, gone_path = planted(d, dead, 1)
      local kept, kept_path = planted(d, live, 2)
      restart(d)
      assert.is_truthy(d:wait_log("event=queue_incomplete_removed qid=" .. gone, 5), d:log())
      assert.is_false(exists(gone_path))
      t.sleep(1.5)	-- read again each second, never taken for a message while marked
      assert.is_nil(entry(d:qmgr_control("list"), kept), "not in the active set")
      assert.is_nil(d:queue_list():find(kept, 1, true), "not listed by the tools")
      assert.is_true(exists(kept_path))
      -- its writer marks it complete: the queue manager takes it
      D.sh("chmod 0640 " .. kept_path)
      assert.is_truthy(D.eventually(function() return entry(d:qmgr_control("list"), kept) end, 5),
        d:log())
      assert.equal(0, d:count_log("event=queue_file_unreadable"), d:log())
    end)
  end)

  describe("a restart in the middle of a delivery", function()
    it("delivers the message exactly once after kill -9 of everything", function()
      local port = D.free_tcp_port()
      -- the first connection is greeted only after 30s: the attempt is in flight
      local fake = start_fake("127.0.0.7", port, { greeting_delay = { [1] = 30 } })
      local d = start{ relay = "127.0.0.7:" .. port,
        delivery = "retry = { base = 0.5, max = 1 }, timeouts = { greeting = 20, command = 5 }" }
      local qid = send(d, "alice@example.test", { "user@remote.test", "bob@example.test" }, "survivor")
      assert.is_truthy(D.eventually(function() return fake.count("\nCONNECT 1") == 1 end, 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=bob@example%.test", 5), d:log())
      t.sleep(0.3)
      local from = restart(d)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=user@remote%.test", 10, from), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5, from), d:log())
      t.sleep(1.5)
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.matches("^MAIL alice@example%.test\nRCPT user@remote%.test\n\n", fake.message(1))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=user@remote%.test"))
      -- the local recipient was journaled before the crash: not delivered again
      assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=bob@example%.test"))
      assert.equal(1, #maildir.new_files(d, "bob"))
      assert.equal(0, #d:queue_files())
    end)

    it("delivers a message acknowledged just before the kill -9", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.7", port)
      local d = start{ relay = "127.0.0.7:" .. port, deliver = false }
      local qid = send(d, "alice@example.test", { "user@remote.test" }, "paused then killed")
      -- the same configuration, delivering this time
      D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
      assert.matches("paused = false", D.readfile(d.config))
      local from = restart(d)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10, from), d:log())
      t.sleep(1)
      assert.equal(1, fake.count("\nMESSAGE "))
    end)
  end)
end)

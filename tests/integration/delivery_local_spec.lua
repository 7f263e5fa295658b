-- Local delivery by the queue manager into Maildirs
-- (https://cr.yp.to/proto/maildir.html): the file lands in new/ exactly
-- once, named with its size (",S=" as Maildir++ readers expect), starting
-- with Return-Path and Delivered-To and our Received line; aliases,
-- catch-all, unknown users, Maildir++ quota (defer, then bounce after the
-- queue lifetime) and loop detection (Delivered-To already present).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local dsn = require("dsn")
local t = D.t

-- ---- helpers -------------------------------------------------------------

local USERS = "users = { 'alice@example.test', 'bob@example.test',"
  .. " { address = 'carol@example.test', quota = 300 } },"
  .. " aliases = { ['team@example.test'] = { 'alice@example.test', 'bob@example.test' } },"
  .. " postmaster = 'alice@example.test'"

local function start(o)
  o = o or {}
  o.deliver = true
  o.mailboxes = o.mailboxes or USERS
  return D.start_for_test(o)
end

-- ---- the specification ---------------------------------------------------

local BODY_WIRE = "first line\r\n..starts with a dot\r\n\r\n  indented, trailing  \r\n"
  .. string.rep("x", 200) .. "\r\nlast line\r\n"
local BODY_STORED = "first line\n.starts with a dot\n\n  indented, trailing  \n"
  .. string.rep("x", 200) .. "\nlast line\n"

local function message(subject, extra_headers)
  return "From: bob@example.test\r\nTo: alice@example.test\r\n" .. (extra_headers or "")
    .. "Subject: " .. subject .. "\r\nMessage-ID: <" .. subject:gsub("%W", "") .. "@client.example.test>\r\n\r\n"
    .. BODY_WIRE
end

describe("local delivery", function()
  after_each(cleanup.run)

  describe("to a listed user", function()
    local d, qid, files
    before_each(function()
      d = start()
      qid = d:send("bob@example.test", { "alice@example.test" }, message("plain local"))
      files = maildir.wait(d, "alice")
      assert.is_truthy(files, "a message in alice's Maildir/new; log:\n" .. d:log())
    end)

    it("lands in Maildir/new exactly once", function()
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=alice@example%.test", 5))
      t.sleep(1.5)   -- a retry tick later: still one
      assert.equal(1, #maildir.new_files(d, "alice"))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid))
      assert.equal(0, #maildir.new_files(d, "bob"))
    end)

    it("names the file with ,S=<size> equal to the file size", function()
      local path = files[1]
      local size = tonumber(path:match(",S=(%d+)[^/]*$"))
      assert.is_truthy(size, "no ,S= in " .. path)
      assert.equal(maildir.file_size(path), size)
      -- the Maildir unique name: time.something.host
      assert.matches("/new/%d+%.[^/]+%.mx%.test%.example,S=%d+$", path)
    end)

    it("starts with Return-Path, Delivered-To, then our Received header", function()
      local s = D.readfile(files[1])
      local want = "Return-Path: <bob@example.test>\nDelivered-To: alice@example.test\n"
      assert.equal(want, s:sub(1, #want))
      local rest = s:sub(#want + 1)
      assert.matches("^Received: from client%.example%.test %(%[127%.0%.0%.1%]%)\n\tby mx%.test%.example "
        .. "%(indimail%) with ESMTP id " .. qid .. "\n\tfor <alice@example%.test>; [^\n]+\nFrom: bob@example%.test\n", rest)
    end)

    it("keeps the header and body intact with LF line ends (dot-unstuffed, no CR)", function()
      local s = D.readfile(files[1])
      assert.is_nil(s:find("\r", 1, true), "no CR in a Maildir file")
      local hdrs, body = dsn.split_message(s)
      assert.equal(BODY_STORED, body)
      assert.matches("\nTo: alice@example%.test\nSubject: plain local\nMessage%-ID: <plainlocal@client%.example%.test>\n$", hdrs)
    end)

    it("leaves the queue empty (event=removed, no message file)", function()
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.same({}, d:queue_files(), d:log())
      -- (not d:tmp_files(): its '*/tmp/*' also matches the /tmp/ test dir)
      assert.equal("", D.sh("find " .. d.dir .. "/queue/*/tmp -type f"))
      assert.equal("", D.sh("find " .. d.dir .. "/queue/*/state " .. d.dir .. "/queue/*/done -type f"))
    end)

    it("makes the Maildir with its first message, and again when its tmp/ was removed", function()
      local md = d.dir .. "/maildirs/example.test/alice/Maildir"
      for _, sub in ipairs({ "new", "cur", "tmp" }) do
        assert.equal("directory", (D.sh("stat -c %F " .. md .. "/" .. sub):gsub("\n$", "")))
      end
      D.sh("rmdir " .. md .. "/tmp")
      local q2 = d:send("bob@example.test", { "alice@example.test" }, message("after rmdir"))
      assert.is_truthy(maildir.wait(d, "alice", 2), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. q2 .. " to=alice@example%.test", 5), d:log())
      assert.equal("directory", (D.sh("stat -c %F " .. md .. "/tmp"):gsub("\n$", "")))
    end)
  end)

  describe("a delivered message whose queue file cannot be removed", function()
    -- Held at acceptance, so its folder can be made read-only before the
    -- delivery: the queue manager (the unprivileged account when the specs
    -- run as root) can then neither remove the file nor move it to done/.
    local GATE = [[
indimail.hook("message", function(s, tx, m) return indimail.hold("gate") end, "gate")
]]

    it("is logged, journaled as delivered, and not delivered again after a restart", function()
      local d = start{ policies = GATE, queue_backend = "fs" }  -- a file of its own
      local qid = d:send("bob@example.test", { "alice@example.test" }, message("cannot remove"))
      local files = d:queue_files()
      assert.equal(1, #files, d:log())
      local folder = files[1]:match("^(.*)/[^/]+$")
      D.sh("chmod 555 " .. folder)
      cleanup.defer(function() D.sh("chmod 755 " .. folder) end)
      assert.equal("ok 1\n", d:qmgr_control("release ALL"))
      assert.is_truthy(maildir.wait(d, "alice", 1, 5), d:log())
      local line = d:wait_log("(event=remove_failed qid=" .. qid .. "[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches('error="Permission denied"', line)
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      local journal = D.sh("cat " .. d.dir .. "/queue/*/state/*/" .. qid)
      assert.equal("d 0\n", journal:match("d 0\n"), "the journal: " .. journal .. d:log())
      d:stop()
      D.sh("chmod 755 " .. folder)
      local from = d:restart()
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5, from), d:log())
      assert.truthy(D.eventually(function() return #d:queue_files() == 0 end, 5), d:log())
      t.sleep(1)
      assert.equal(1, #maildir.new_files(d, "alice"))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid))
    end)
  end)

  describe("aliases", function()
    it("an alias of two users delivers one copy to each", function()
      local d = start()
      local qid = d:send("bob@example.test", { "team@example.test" }, message("to the team"))
      assert.is_truthy(maildir.wait(d, "alice"), d:log())
      assert.is_truthy(maildir.wait(d, "bob"), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      t.sleep(1.2)
      assert.equal(1, #maildir.new_files(d, "alice"))
      assert.equal(1, #maildir.new_files(d, "bob"))
      assert.equal(0, #maildir.new_files(d, "team"))
      assert.matches("^Return%-Path: <bob@example%.test>\nDelivered%-To: alice@example%.test\n",
        D.readfile(maildir.new_files(d, "alice")[1]))
      assert.matches("^Return%-Path: <bob@example%.test>\nDelivered%-To: bob@example%.test\n",
        D.readfile(maildir.new_files(d, "bob")[1]))
      assert.equal(0, #d:queue_files())
    end)

    it("the alias and a member named in one message still give the member one copy", function()
      local d = start()
      local qid = d:send("bob@example.test", { "team@example.test", "alice@example.test" }, message("twice named"))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      t.sleep(1.2)
      assert.equal(1, #maildir.new_files(d, "alice"))
      assert.equal(1, #maildir.new_files(d, "bob"))
    end)

    it("a catch-all (@example.test) takes mail for addresses that are not users", function()
      local d = start{ mailboxes = "users = { 'alice@example.test', 'carol@example.test' },"
        .. " aliases = { ['@example.test'] = 'carol@example.test' }" }
      local qid = d:send("alice@example.test", { "nobody-here@example.test" }, message("catch all"))
      local files = maildir.wait(d, "carol")
      assert.is_truthy(files, d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.matches("^Return%-Path: <alice@example%.test>\nDelivered%-To: carol@example%.test\n",
        D.readfile(files[1]))
      t.sleep(1.2)
      assert.equal(1, #maildir.new_files(d, "carol"))
      assert.equal(0, #maildir.new_files(d, "nobody-here"))
      -- a listed user is still the user, not the catch-all
      d:send("carol@example.test", { "alice@example.test" }, message("direct"))
      assert.is_truthy(maildir.wait(d, "alice"), d:log())
      t.sleep(0.5)
      assert.equal(1, #maildir.new_files(d, "carol"))
    end)
  end)

  describe("addresses", function()
    it("postmaster@<local domain> goes to mailboxes.postmaster", function()
      local d = start()
      local qid = d:send("bob@example.test", { "postmaster@local.test" }, message("to the postmaster"))
      local files = maildir.wait(d, "alice")
      assert.is_truthy(files, d:log())
      assert.matches("^Return%-Path: <bob@example%.test>\nDelivered%-To: alice@example%.test\n",
        D.readfile(files[1]))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
    end)

    it("a null reverse-path is stored as Return-Path: <>", function()
      local d = start()
      d:send("", { "alice@example.test" }, message("from nobody"))
      local files = maildir.wait(d, "alice")
      assert.is_truthy(files, d:log())
      assert.matches("^Return%-Path: <>\nDelivered%-To: alice@example%.test\nReceived: ", D.readfile(files[1]))
    end)

    it("a recipient matching a listed user in another case is delivered to that user's Maildir", function()
      local d = start()
      local qid = d:send("bob@example.test", { "Alice@Example.TEST" }, message("mixed case"))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal(1, #maildir.new_files(d, "alice"))
      assert.equal("", D.sh("test -e " .. d.dir .. "/maildirs/example.test/Alice && echo there"))
    end)
  end)

  describe("unknown users", function()
    it("are rejected at RCPT with 550 5.1.1 when users are listed", function()
      local d = start()
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")))
      local code, text = c:cmd("RCPT TO:<mallory@example.test>")
      assert.equal(550, code, text)
      assert.matches("^550 5%.1%.1 ", text)
      -- and the transaction goes on for the known ones
      assert.equal(250, (c:cmd("RCPT TO:<alice@example.test>")))
    end)
  end)

  describe("Maildir++ quota", function()
    it("defers with 4.2.2 when the message does not fit, and keeps it queued", function()
      local d = start()
      local qid = d:send("bob@example.test", { "carol@example.test" }, message("too big for carol"))
      local line = d:wait_log("(event=deferred qid=" .. qid .. " to=carol@example%.test[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches("reply=\"45%d 4%.2%.2 ", line)
      assert.equal(0, #maildir.new_files(d, "carol"))
      assert.equal(1, #d:queue_files())
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
    end)

    it("accounts delivered sizes in maildirsize and defers the message that would exceed", function()
      local d = start{ mailboxes = "users = { 'alice@example.test', { address = 'dave@example.test', quota = 1500 } }" }
      local q1 = d:send("alice@example.test", { "dave@example.test" }, message("fits one"))
      local f = maildir.wait(d, "dave", 1)
      assert.is_truthy(f, d:log())
      local s1 = maildir.file_size(f[1])
      local q2 = d:send("alice@example.test", { "dave@example.test" }, message("fits two"))
      f = maildir.wait(d, "dave", 2)
      assert.is_truthy(f, d:log())
      -- maildirsize is updated just after the rename into new/: wait for it
      local want, md, used = maildir.file_size(f[1]) + maildir.file_size(f[2])
      for _ = 1, 50 do
        md = D.readfile(d.dir .. "/maildirs/example.test/dave/Maildir/maildirsize")
        used = 0
        for bytes in (md or ""):gmatch("\n(%-?%d+) %-?%d+") do used = used + tonumber(bytes) end
        if used == want then break end
        t.sleep(0.1)
      end
      assert.is_truthy(md, "a maildirsize file")
      assert.matches("^1500S\n", md)
      assert.equal(want, used)
      assert.is_true(s1 * 2 < 1500 and s1 * 3 > 1500, "message size " .. s1)
      local q3 = d:send("alice@example.test", { "dave@example.test" }, message("fits thre"))
      assert.is_truthy(d:wait_log("event=deferred qid=" .. q3 .. " to=dave@example%.test[^\n]*4%.2%.2", 5), d:log())
      assert.equal(2, #maildir.new_files(d, "dave"))
      assert.is_truthy(d:wait_log("event=removed qid=" .. q1, 1))
      assert.is_truthy(d:wait_log("event=removed qid=" .. q2, 1))
    end)

    it("bounces to the sender once the queue lifetime is over", function()
      local d = start{ delivery = "lifetime = 2, retry = { base = 0.5, max = 1 }" }
      local qid = d:send("bob@example.test", { "carol@example.test" }, message("expires for carol"))
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid .. " to=carol@example%.test[^\n]*4%.2%.2", 5), d:log())
      assert.is_truthy(d:wait_log("event=bounced qid=" .. qid .. " to=carol@example%.test", 10), d:log())
      assert.is_truthy(d:wait_log("event=bounce_queued qid=" .. qid .. " bounce_qid=%w+ to=bob@example%.test", 5), d:log())
      local files = maildir.wait(d, "bob", 1, 5)
      assert.is_truthy(files, "a bounce in bob's Maildir; log:\n" .. d:log())
      local b = D.readfile(files[1])
      assert.matches("^Return%-Path: <>\nDelivered%-To: bob@example%.test\n", b)
      local r, parts, hdrs = dsn.read(b)
      assert.matches("\nContent%-Type: multipart/report; report%-type=delivery%-status;", hdrs)
      assert.equal(1, #r)
      assert.equal("rfc822; carol@example.test", r[1]["final-recipient"])
      assert.equal("failed", r[1]["action"])
      assert.matches("4%.2%.2", r[1]["diagnostic-code"])
      assert.is_truthy(dsn.find_part(parts, "text/rfc822-headers"))
      assert.matches("\nSubject: expires for carol\n", dsn.find_part(parts, "text/rfc822-headers").body)
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal(0, #maildir.new_files(d, "carol"))
      D.eventually(function() return #d:queue_files() == 0 end, 5)
      assert.equal(0, #d:queue_files())
    end)
  end)

  describe("loop detection", function()
    it("bounces a message that already has Delivered-To: <the recipient> with 5.4.6", function()
      local d = start()
      local qid = d:send("bob@example.test", { "alice@example.test" },
        message("looping", "Delivered-To: alice@example.test\r\n"))
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=alice@example%.test[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches("5%.4%.6", line)
      local files = maildir.wait(d, "bob", 1, 5)
      assert.is_truthy(files, "a bounce in bob's Maildir; log:\n" .. d:log())
      local parts = dsn.parts(D.readfile(files[1]))
      local r = dsn.recipients(dsn.find_part(parts, "message/delivery-status").body)
      assert.equal(1, #r)
      assert.equal("rfc822; alice@example.test", r[1]["final-recipient"])
      assert.equal("failed", r[1]["action"])
      assert.equal("5.4.6", r[1]["status"])
      assert.equal(0, #maildir.new_files(d, "alice"))
    end)

    it("bounces a message with more Received lines than delivery.max_hops with 5.4.6", function()
      local d = start{ delivery = "max_hops = 5" }
      local hops = string.rep("Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 5)
      local qid = d:send("bob@example.test", { "alice@example.test" }, message("many hops", hops))
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=alice@example%.test[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches("5%.4%.6", line)
      assert.is_truthy(maildir.wait(d, "bob", 1, 5), d:log())
      assert.equal(0, #maildir.new_files(d, "alice"))
      -- four earlier hops plus ours is fine
      local ok = d:send("bob@example.test", { "alice@example.test" },
        message("few hops", string.rep("Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 4)))
      assert.is_truthy(d:wait_log("event=delivered qid=" .. ok .. " to=alice@example%.test", 5), d:log())
    end)
  end)
end)

-- Local delivery by the queue manager into Maildirs
-- (https://cr.yp.to/proto/maildir.html): the file lands in new/ exactly
-- once, named with its size (",S=" as Maildir++ readers expect), starting
-- with Return-Path and Delivered-To and our Received line; aliases,
-- catch-all, unknown users, Maildir++ quota (defer, then bounce after the
-- queue lifetime) and loop detection (Delivered-To already present).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local t = D.t

-- ---- helpers -------------------------------------------------------------

local cleanups = {}
local function defer(fn) cleanups[#cleanups + 1] = fn end
local function run_cleanups()
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
  cleanups = {}
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

local USERS = "users = { 'alice@example.test', 'bob@example.test',"
  .. " { address = 'carol@example.test', quota = 300 } },"
  .. " aliases = { ['team@example.test'] = { 'alice@example.test', 'bob@example.test' } },"
  .. " postmaster = 'alice@example.test'"

local function start(o)
  o = o or {}
  o.deliver = true
  o.mailboxes = o.mailboxes or USERS
  local d = D.start(o)
  defer(function() d:cleanup() end)
  return d
end

local function session(d)
  local c = D.connect(d.ports.smtp)
  defer(function() c:close() end)
  assert.equal(220, (c:reply()))
  assert.equal(250, (c:cmd("EHLO client.example.test")))
  return c
end

-- Sends one message; returns its queue id.
local function send(d, from, rcpts, message)
  local c = session(d)
  local code, text = c:transaction(from, rcpts, message)
  assert.equal(250, code, text)
  c:cmd("QUIT")
  return assert(text:match("queued as (%w+)"), text)
end

-- Polls fn until it returns a truthy value (bounded).
local function eventually(fn, timeout)
  local deadline = t.now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    t.sleep(0.05)
  until t.now() > deadline
  return nil
end

-- Files in a user's Maildir/new (sorted paths).
local function maildir_new(d, user, domain)
  local dir = ("%s/maildirs/%s/%s/Maildir/new"):format(d.dir, domain or "example.test", user)
  local out = D.sh("find " .. dir .. " -type f 2>/dev/null | sort")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

local function wait_mail(d, user, n, timeout)
  return eventually(function()
    local f = maildir_new(d, user)
    return #f >= (n or 1) and f
  end, timeout or 5)
end

local function file_size(path)
  local s = D.readfile(path)
  return s and #s
end

-- The header section and body of a stored message (LF line ends).
local function split_message(s)
  local h, b = s:match("^(.-\n)\n(.*)$")
  return h, b
end

-- Parts of a multipart/report: { {headers=, body=}, ... }, boundary.
local function mime_parts(message)
  local hdrs, body = split_message(message)
  assert.is_truthy(hdrs, "a header section")
  local boundary = hdrs:match('boundary="([^"]+)"') or hdrs:match("boundary=([^%s;]+)")
  assert.is_truthy(boundary, "a MIME boundary in: " .. hdrs)
  local parts = {}
  local delim = "\n--" .. boundary
  local text = "\n" .. body
  local pos = text:find(delim, 1, true)
  while pos do
    local start = pos + #delim
    if text:sub(start, start + 1) == "--" then break end
    local nextp = text:find(delim, start, true)
    local chunk = text:sub(start, (nextp or #text + 1) - 1):gsub("^[ \t]*\n", "")
    local ph, pb = chunk:match("^(.-\n)\n(.*)$")
    parts[#parts + 1] = { headers = ph or "", body = pb or chunk }
    pos = nextp
  end
  return parts, hdrs
end

local function find_part(parts, ctype)
  for _, p in ipairs(parts) do
    if p.headers:lower():match("content%-type:%s*" .. esc(ctype:lower())) then return p end
  end
end

-- Per-recipient blocks of a message/delivery-status body (RFC 3464 2.1).
local function dsn_recipients(body)
  local blocks = {}
  for block in (body .. "\n\n"):gmatch("(.-)\n\n+") do
    local f = {}
    for name, value in block:gmatch("([%w%-]+):[ \t]*([^\n]*)") do f[name:lower()] = value end
    if f["final-recipient"] then blocks[#blocks + 1] = f end
  end
  return blocks
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
  after_each(run_cleanups)

  describe("to a listed user", function()
    local d, qid, files
    before_each(function()
      d = start()
      qid = send(d, "bob@example.test", { "alice@example.test" }, message("plain local"))
      files = wait_mail(d, "alice")
      assert.is_truthy(files, "a message in alice's Maildir/new; log:\n" .. d:log())
    end)

    it("lands in Maildir/new exactly once", function()
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=alice@example%.test", 5))
      t.sleep(1.5)   -- a retry tick later: still one
      assert.equal(1, #maildir_new(d, "alice"))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid))
      assert.equal(0, #maildir_new(d, "bob"))
    end)

    it("names the file with ,S=<size> equal to the file size", function()
      local path = files[1]
      local size = tonumber(path:match(",S=(%d+)[^/]*$"))
      assert.is_truthy(size, "no ,S= in " .. path)
      assert.equal(file_size(path), size)
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
      local hdrs, body = split_message(s)
      assert.equal(BODY_STORED, body)
      assert.matches("\nTo: alice@example%.test\nSubject: plain local\nMessage%-ID: <plainlocal@client%.example%.test>\n$", hdrs)
    end)

    it("leaves the queue empty (event=removed, no message file)", function()
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.same({}, d:queue_files(), d:log())
      -- (not d:tmp_files(): its '*/tmp/*' also matches the /tmp/ test dir)
      assert.equal("", D.sh("find " .. d.dir .. "/queue/*/tmp -type f"))
    end)
  end)

  describe("aliases", function()
    it("an alias of two users delivers one copy to each", function()
      local d = start()
      local qid = send(d, "bob@example.test", { "team@example.test" }, message("to the team"))
      assert.is_truthy(wait_mail(d, "alice"), d:log())
      assert.is_truthy(wait_mail(d, "bob"), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      t.sleep(1.2)
      assert.equal(1, #maildir_new(d, "alice"))
      assert.equal(1, #maildir_new(d, "bob"))
      assert.equal(0, #maildir_new(d, "team"))
      assert.matches("^Return%-Path: <bob@example%.test>\nDelivered%-To: alice@example%.test\n",
        D.readfile(maildir_new(d, "alice")[1]))
      assert.matches("^Return%-Path: <bob@example%.test>\nDelivered%-To: bob@example%.test\n",
        D.readfile(maildir_new(d, "bob")[1]))
      assert.equal(0, #d:queue_files())
    end)

    it("the alias and a member named in one message still give the member one copy", function()
      local d = start()
      local qid = send(d, "bob@example.test", { "team@example.test", "alice@example.test" }, message("twice named"))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      t.sleep(1.2)
      assert.equal(1, #maildir_new(d, "alice"))
      assert.equal(1, #maildir_new(d, "bob"))
    end)

    it("a catch-all (@example.test) takes mail for addresses that are not users", function()
      local d = start{ mailboxes = "users = { 'alice@example.test', 'carol@example.test' },"
        .. " aliases = { ['@example.test'] = 'carol@example.test' }" }
      local qid = send(d, "alice@example.test", { "nobody-here@example.test" }, message("catch all"))
      local files = wait_mail(d, "carol")
      assert.is_truthy(files, d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.matches("^Return%-Path: <alice@example%.test>\nDelivered%-To: carol@example%.test\n",
        D.readfile(files[1]))
      t.sleep(1.2)
      assert.equal(1, #maildir_new(d, "carol"))
      assert.equal(0, #maildir_new(d, "nobody-here"))
      -- a listed user is still the user, not the catch-all
      send(d, "carol@example.test", { "alice@example.test" }, message("direct"))
      assert.is_truthy(wait_mail(d, "alice"), d:log())
      t.sleep(0.5)
      assert.equal(1, #maildir_new(d, "carol"))
    end)
  end)

  describe("addresses", function()
    it("postmaster@<local domain> goes to mailboxes.postmaster", function()
      local d = start()
      local qid = send(d, "bob@example.test", { "postmaster@local.test" }, message("to the postmaster"))
      local files = wait_mail(d, "alice")
      assert.is_truthy(files, d:log())
      assert.matches("^Return%-Path: <bob@example%.test>\nDelivered%-To: alice@example%.test\n",
        D.readfile(files[1]))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
    end)

    it("a null reverse-path is stored as Return-Path: <>", function()
      local d = start()
      send(d, "", { "alice@example.test" }, message("from nobody"))
      local files = wait_mail(d, "alice")
      assert.is_truthy(files, d:log())
      assert.matches("^Return%-Path: <>\nDelivered%-To: alice@example%.test\nReceived: ", D.readfile(files[1]))
    end)

    it("a recipient matching a listed user in another case is delivered to that user's Maildir", function()
      local d = start()
      local qid = send(d, "bob@example.test", { "Alice@Example.TEST" }, message("mixed case"))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal(1, #maildir_new(d, "alice"))
      assert.equal("", D.sh("test -e " .. d.dir .. "/maildirs/example.test/Alice && echo there"))
    end)
  end)

  describe("unknown users", function()
    it("are rejected at RCPT with 550 5.1.1 when users are listed", function()
      local d = start()
      local c = session(d)
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
      local qid = send(d, "bob@example.test", { "carol@example.test" }, message("too big for carol"))
      local line = d:wait_log("(event=deferred qid=" .. qid .. " to=carol@example%.test[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches("reply=\"45%d 4%.2%.2 ", line)
      assert.equal(0, #maildir_new(d, "carol"))
      assert.equal(1, #d:queue_files())
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
    end)

    it("accounts delivered sizes in maildirsize and defers the message that would exceed", function()
      local d = start{ mailboxes = "users = { 'alice@example.test', { address = 'dave@example.test', quota = 1500 } }" }
      local q1 = send(d, "alice@example.test", { "dave@example.test" }, message("fits one"))
      local f = wait_mail(d, "dave", 1)
      assert.is_truthy(f, d:log())
      local s1 = file_size(f[1])
      local q2 = send(d, "alice@example.test", { "dave@example.test" }, message("fits two"))
      f = wait_mail(d, "dave", 2)
      assert.is_truthy(f, d:log())
      local md = D.readfile(d.dir .. "/maildirs/example.test/dave/Maildir/maildirsize")
      assert.is_truthy(md, "a maildirsize file")
      assert.matches("^1500S\n", md)
      local used = 0
      for bytes in md:gmatch("\n(%-?%d+) %-?%d+") do used = used + tonumber(bytes) end
      assert.equal(file_size(f[1]) + file_size(f[2]), used)
      assert.is_true(s1 * 2 < 1500 and s1 * 3 > 1500, "message size " .. s1)
      local q3 = send(d, "alice@example.test", { "dave@example.test" }, message("fits thre"))
      assert.is_truthy(d:wait_log("event=deferred qid=" .. q3 .. " to=dave@example%.test[^\n]*4%.2%.2", 5), d:log())
      assert.equal(2, #maildir_new(d, "dave"))
      assert.is_truthy(d:wait_log("event=removed qid=" .. q1, 1))
      assert.is_truthy(d:wait_log("event=removed qid=" .. q2, 1))
    end)

    it("bounces to the sender once the queue lifetime is over", function()
      local d = start{ delivery = "lifetime = 2, retry = { base = 0.5, max = 1 }" }
      local qid = send(d, "bob@example.test", { "carol@example.test" }, message("expires for carol"))
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid .. " to=carol@example%.test[^\n]*4%.2%.2", 5), d:log())
      assert.is_truthy(d:wait_log("event=bounced qid=" .. qid .. " to=carol@example%.test", 10), d:log())
      assert.is_truthy(d:wait_log("event=bounce_queued qid=" .. qid .. " bounce_qid=%w+ to=bob@example%.test", 5), d:log())
      local files = wait_mail(d, "bob", 1, 5)
      assert.is_truthy(files, "a bounce in bob's Maildir; log:\n" .. d:log())
      local b = D.readfile(files[1])
      assert.matches("^Return%-Path: <>\nDelivered%-To: bob@example%.test\n", b)
      local parts, hdrs = mime_parts(b)
      assert.matches("\nContent%-Type: multipart/report; report%-type=delivery%-status;", hdrs)
      local ds = find_part(parts, "message/delivery-status")
      assert.is_truthy(ds, "a message/delivery-status part")
      local r = dsn_recipients(ds.body)
      assert.equal(1, #r)
      assert.equal("rfc822; carol@example.test", r[1]["final-recipient"])
      assert.equal("failed", r[1]["action"])
      assert.matches("4%.2%.2", r[1]["diagnostic-code"])
      assert.is_truthy(find_part(parts, "text/rfc822-headers"))
      assert.matches("\nSubject: expires for carol\n", find_part(parts, "text/rfc822-headers").body)
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal(0, #maildir_new(d, "carol"))
      eventually(function() return #d:queue_files() == 0 end, 5)
      assert.equal(0, #d:queue_files())
    end)
  end)

  describe("loop detection", function()
    it("bounces a message that already has Delivered-To: <the recipient> with 5.4.6", function()
      local d = start()
      local qid = send(d, "bob@example.test", { "alice@example.test" },
        message("looping", "Delivered-To: alice@example.test\r\n"))
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=alice@example%.test[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches("5%.4%.6", line)
      local files = wait_mail(d, "bob", 1, 5)
      assert.is_truthy(files, "a bounce in bob's Maildir; log:\n" .. d:log())
      local parts = mime_parts(D.readfile(files[1]))
      local r = dsn_recipients(find_part(parts, "message/delivery-status").body)
      assert.equal(1, #r)
      assert.equal("rfc822; alice@example.test", r[1]["final-recipient"])
      assert.equal("failed", r[1]["action"])
      assert.equal("5.4.6", r[1]["status"])
      assert.equal(0, #maildir_new(d, "alice"))
    end)

    it("bounces a message with more Received lines than delivery.max_hops with 5.4.6", function()
      local d = start{ delivery = "max_hops = 5" }
      local hops = string.rep("Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 5)
      local qid = send(d, "bob@example.test", { "alice@example.test" }, message("many hops", hops))
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=alice@example%.test[^\n]*)", 5)
      assert.is_truthy(line, d:log())
      assert.matches("5%.4%.6", line)
      assert.is_truthy(wait_mail(d, "bob", 1, 5), d:log())
      assert.equal(0, #maildir_new(d, "alice"))
      -- four earlier hops plus ours is fine
      local ok = send(d, "bob@example.test", { "alice@example.test" },
        message("few hops", string.rep("Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 4)))
      assert.is_truthy(d:wait_log("event=delivered qid=" .. ok .. " to=alice@example%.test", 5), d:log())
    end)
  end)
end)

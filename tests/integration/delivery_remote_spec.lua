-- Remote delivery by the queue manager (RFC 5321 section 5: MX lookup,
-- preference order, implicit MX; RFC 7505 null MX) against a real DNS
-- server (dnsmasq on 127.0.0.1, a free UDP port) and real receiving
-- servers on 127.0.0.x:P: Postfix smtp-sink, and a scripted SMTP server
-- (tests/helpers/fake_smtp.lua) for 421 greetings, 451-then-250, 550 for one
-- recipient and hangs. Bounces are RFC 3464 reports checked in the
-- sender's Maildir; double bounces go to mailboxes.postmaster.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local fake_smtp = require("fake_smtp")
local maildir = require("maildir")
local dsn = require("dsn")
local socket = require("socket")
local t = D.t

local SMTP_SINK = "/usr/sbin/smtp-sink"

-- ---- helpers -------------------------------------------------------------

local function mkdir(dir, mode)
  D.sh("mkdir -p " .. dir .. " && chmod " .. (mode or "755") .. " " .. dir)
  return dir
end

local SCRATCH, P, dns

-- The zone: every name under .test not listed is NXDOMAIN at once.
local ZONE = {
  "--mx-host=remote.test,mx1.remote.test,10", "--host-record=mx1.remote.test,127.0.0.2",
  -- listed highest preference first: the order must come from the numbers
  "--mx-host=pref.test,mxb.pref.test,20", "--mx-host=pref.test,mxa.pref.test,10",
  "--host-record=mxa.pref.test,127.0.0.3", "--host-record=mxb.pref.test,127.0.0.2",
  "--host-record=aonly.test,127.0.0.2",
  "--mx-host=nullmx.test,.,0",
  "--mx-host=fake.test,mx.fake.test,10", "--host-record=mx.fake.test,127.0.0.4",
  "--mx-host=busy.test,mx.busy.test,10", "--host-record=mx.busy.test,127.0.0.4",
  "--mx-host=busy.test,backup.busy.test,20", "--host-record=backup.busy.test,127.0.0.2",
  "--mx-host=hang.test,mx.hang.test,10", "--host-record=mx.hang.test,127.0.0.6",
  "--mx-host=special.test,mx.special.test,10", "--host-record=mx.special.test,127.0.0.7",
}

local function connectable(addr, port, timeout)
  return D.eventually(function()
    local s = socket.tcp()
    s:settimeout(0.2)
    local ok = s:connect(addr, port)
    s:close()
    return ok
  end, timeout or 5)
end

local nservers = 0

-- smtp-sink on addr:P dumping each transaction to its own file.
local function start_sink(addr, extra)
  nservers = nservers + 1
  local dir = mkdir(("%s/sink%d"):format(SCRATCH, nservers), "777")
  local argv = { SMTP_SINK, "-u", "nobody", "-d", dir .. "/m." }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = addr .. ":" .. P
  argv[#argv + 1] = "64"
  local pid = assert(t.spawn(argv, dir .. ".log"))
  cleanup.defer(function() D.stop_pid(pid) end)
  assert(connectable(addr, P), "smtp-sink did not listen on " .. addr .. ":" .. P
    .. ": " .. (D.readfile(dir .. ".log") or ""))
  local sink = { dir = dir, pid = pid }
  function sink.files()
    local out = D.sh("find " .. dir .. " -name 'm.*' -type f | sort")
    local files = {}
    for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
    return files
  end
  function sink.count() return #sink.files() end
  function sink.messages()
    local m = {}
    for _, f in ipairs(sink.files()) do m[#m + 1] = D.readfile(f) end
    return m
  end
  return sink
end

-- The scripted server (tests/helpers/fake_smtp.lua, every option is
-- described there) on addr:P; o: greeting, rcpt, hang, data_reply, auth...
local function start_fake(addr, o)
  nservers = nservers + 1
  return fake_smtp.start(mkdir(("%s/fake%d"):format(SCRATCH, nservers)), addr, P, o)
end

local MAILBOXES = "users = { 'alice@example.test', 'pm@example.test' }, postmaster = 'pm@example.test'"

local function start_daemon(o)
  o = o or {}
  return D.start_for_test{
    deliver = true,
    dns = "127.0.0.1:" .. dns.port,
    relay_from = "'127.0.0.0/8'",
    mailboxes = MAILBOXES,
    routes = o.routes,
    workers = o.workers,
    delivery = "port = " .. P .. ", retry = { base = 0.5, max = 1 },"
      .. " timeouts = { connect = 2, greeting = 3, command = 1, data = 3 }, " .. (o.delivery or ""),
  }
end

local function message(subject, to)
  return "From: alice@example.test\r\nTo: " .. (to or "someone@remote.test") .. "\r\nSubject: " .. subject
    .. "\r\nMessage-ID: <" .. subject:gsub("%W", "") .. "@client.example.test>\r\n\r\nbody of " .. subject
    .. "\r\n..a dotted line\r\n"
end

-- Sends one message; returns its queue id.
local function send(d, from, rcpts, subject)
  return d:send(from, rcpts, message(subject, rcpts[1]))
end

-- The one bounce in user's Maildir, checked as an RFC 3464 report:
-- returns its per-recipient blocks, the parts and the whole text.
local function read_bounce(d, user, timeout)
  local files = maildir.wait(d, user, 1, timeout or 8)
  assert.is_truthy(files, "a bounce in " .. user .. "'s Maildir; log:\n" .. d:log())
  local text = D.readfile(files[1])
  local r, parts = dsn.read(text)
  return r, parts, text, files
end

local function sink_rcpts(m)
  local r = {}
  for a in m:gmatch("\nX%-Rcpt%-Args: <([^>]*)>") do r[#r + 1] = a end
  return r
end

-- ---- the specification ---------------------------------------------------

describe("remote delivery", function()
  setup(function()
    SCRATCH = D.mktemp("remote")
    P = D.free_tcp_port()
    dns = dnsmasq.start{ dir = SCRATCH, records = ZONE }
  end)
  teardown(function()
    cleanup.run()
    if dns then dns.stop() end
    D.rmtemp(SCRATCH)
  end)
  after_each(cleanup.run)

  describe("through MX records", function()
    it("delivers a message for user@remote.test to its MX, once, and empties the queue", function()
      local sink = start_sink("127.0.0.2")
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@remote.test" }, "to the mx")
      local line = d:wait_log("(event=delivered qid=" .. qid .. " to=user@remote%.test[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("relay=mx1%.remote%.test%[127%.0%.0%.2%]", line)
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal(0, #d:queue_files())
      assert.is_truthy(D.eventually(function() return sink.count() == 1 end, 5))
      t.sleep(1.2)
      assert.equal(1, sink.count())
      assert.equal(1, d:count_log("event=delivered qid=" .. qid))
      local m = sink.messages()[1]
      assert.matches("\nX%-Mail%-Args: <alice@example%.test>", m)
      assert.same({ "user@remote.test" }, sink_rcpts(m))
      -- the message as queued: our Received line, then the client's header and body
      assert.matches("\nReceived: from client%.example%.test %(%[127%.0%.0%.1%]%)\n\tby mx%.test%.example "
        .. "%(indimail%) with ESMTP id " .. qid, m)
      assert.matches("\nSubject: to the mx\n", m)
      assert.matches("\n\nbody of to the mx\n%.a dotted line\n", m)
    end)

    it("uses the lowest preference MX first", function()
      local low = start_sink("127.0.0.3")
      local high = start_sink("127.0.0.2")
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@pref.test" }, "preferred")
      local line = d:wait_log("(event=delivered qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("relay=mxa%.pref%.test", line)
      assert.is_truthy(D.eventually(function() return low.count() == 1 end, 5))
      assert.equal(0, high.count())
    end)

    it("goes on to the next MX when the preferred one refuses connections", function()
      local sink = start_sink("127.0.0.2")   -- mxb (20); nothing on mxa (10), 127.0.0.3
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@pref.test" }, "backup mx")
      local line = d:wait_log("(event=delivered qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("relay=mxb%.pref%.test%[127%.0%.0%.2%]", line)
      assert.equal(0, d:count_log("event=deferred qid=" .. qid))
      assert.is_truthy(D.eventually(function() return sink.count() == 1 end, 5))
    end)

    it("goes on to the next MX when the preferred one greets with 421", function()
      local fake = start_fake("127.0.0.4", { greeting = { "421 4.3.2 busy", "421 4.3.2 busy", "421 4.3.2 busy" } })
      local sink = start_sink("127.0.0.2")
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@busy.test" }, "busy primary")
      local line = d:wait_log("(event=delivered qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("relay=backup%.busy%.test", line)
      assert.equal(1, fake.count("CONNECT"))
      assert.is_truthy(D.eventually(function() return sink.count() == 1 end, 5))
    end)

    it("uses the domain's own address when it has no MX (implicit MX, RFC 5321 5.1)", function()
      local sink = start_sink("127.0.0.2")
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@aonly.test" }, "implicit mx")
      local line = d:wait_log("(event=delivered qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("relay=aonly%.test%[127%.0%.0%.2%]", line)
      assert.is_truthy(D.eventually(function() return sink.count() == 1 end, 5))
      assert.same({ "user@aonly.test" }, sink_rcpts(sink.messages()[1]))
    end)
  end)

  describe("several recipients", function()
    it("sends one transaction per destination, with that destination's recipients only", function()
      local sink = start_sink("127.0.0.2")
      local fake = start_fake("127.0.0.4")
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "a@remote.test", "b@fake.test", "c@remote.test", "pm@example.test" }, "fan out")
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 10), d:log())
      assert.equal(4, d:count_log("event=delivered qid=" .. qid))
      assert.is_truthy(D.eventually(function() return sink.count() == 1 end, 5))
      t.sleep(1)
      assert.equal(1, sink.count())
      local got = sink_rcpts(sink.messages()[1])
      table.sort(got)
      assert.same({ "a@remote.test", "c@remote.test" }, got)
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.matches("^MAIL alice@example%.test\nRCPT b@fake%.test\n\n", fake.message(1))
      assert.is_truthy(maildir.wait(d, "pm"))
    end)

    it("delivers consecutive messages to one destination each once", function()
      local fake = start_fake("127.0.0.4")
      local d = start_daemon()
      local ids = {}
      for i = 1, 5 do ids[i] = send(d, "alice@example.test", { "u" .. i .. "@fake.test" }, "serial " .. i) end
      for i = 1, 5 do assert.is_truthy(d:wait_log("event=removed qid=" .. ids[i], 10), d:log()) end
      t.sleep(1)
      assert.equal(5, fake.count("\nMESSAGE "))
      assert.equal(0, fake.count("\nNESTED_MAIL "))
      assert.equal(5, d:count_log("event=delivered"))
    end)
  end)

  describe("permanent DNS failures", function()
    it("bounces a recipient whose domain publishes a null MX with 5.1.10 (RFC 7505)", function()
      -- dnsmasq serves "0 ." for nullmx.test (the resolver reads the target as "")
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@nullmx.test" }, "null mx")
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=user@nullmx%.test[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("5%.1%.10", line)
      local r = read_bounce(d, "alice")
      assert.equal(1, #r)
      assert.equal("rfc822; user@nullmx.test", r[1]["final-recipient"])
      assert.equal("failed", r[1]["action"])
      assert.equal("5.1.10", r[1]["status"])
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5))
    end)

    it("bounces a recipient whose domain does not exist with 5.1.2", function()
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@nx.test" }, "no such domain")
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=user@nx%.test[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("5%.1%.2", line)
      assert.equal(0, d:count_log("event=deferred qid=" .. qid))
      local r = read_bounce(d, "alice")
      assert.equal(1, #r)
      assert.equal("rfc822; user@nx.test", r[1]["final-recipient"])
      assert.equal("failed", r[1]["action"])
      assert.equal("5.1.2", r[1]["status"])
    end)
  end)

  describe("replies of the receiving server", function()
    it("defers a 451 at RCPT and delivers on the next attempt", function()
      local fake = start_fake("127.0.0.4", { rcpt = { ["soft@fake.test"] = { "451 4.3.0 try again later", "250 2.1.5 Ok" } } })
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "soft@fake.test" }, "second time lucky")
      local line = d:wait_log("(event=deferred qid=" .. qid .. " to=soft@fake%.test[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("451 4%.3%.0 try again later", line)
      line = d:wait_log("(event=%a+ qid=" .. qid .. " to=soft@fake%.test[^\n]*)", 10,
        (d:log():find("event=deferred qid=" .. qid)) + 1)
      assert.is_truthy(line, d:log())
      assert.matches("^event=delivered ", line, nil, false)
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5))
    end)

    it("defers one recipient answered 451 while the other is delivered, then delivers it on the next attempt", function()
      local fake = start_fake("127.0.0.4", { rcpt = { ["soft@fake.test"] = { "451 4.3.0 try again later", "250 2.1.5 Ok" } } })
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "hard@fake.test", "soft@fake.test" }, "one now one later")
      local line = d:wait_log("(event=deferred qid=" .. qid .. " to=soft@fake%.test[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("451 4%.3%.0 try again later", line)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=hard@fake%.test", 5), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=soft@fake%.test", 10), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5))
      t.sleep(1.2)
      assert.equal(2, fake.count("\nMESSAGE "))
      assert.matches("^MAIL alice@example%.test\nRCPT hard@fake%.test\n\n", fake.message(1))
      assert.matches("^MAIL alice@example%.test\nRCPT soft@fake%.test\n\n", fake.message(2))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=hard@fake%.test"))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=soft@fake%.test"))
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
    end)

    it("after a transaction with no accepted recipient, starts the next one on a clean state (RSET or new connection)", function()
      -- the connection of the deferred attempt is kept for reuse: a MAIL on
      -- it while the old transaction is open gets 503 nested MAIL
      local fake = start_fake("127.0.0.4", { rcpt = { ["soft@fake.test"] = { "451 4.3.0 try again later", "250 2.1.5 Ok" } } })
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "soft@fake.test" }, "clean state")
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 10), d:log())
      assert.equal(2, fake.count("\nCMD %d+ MAIL "))
      assert.equal(0, fake.count("\nNESTED_MAIL "))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid))
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
    end)

    it("defers when the MX greets with 421 and delivers on the next attempt", function()
      local fake = start_fake("127.0.0.4", { greeting = { "421 4.3.2 Service not available, try later" } })
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "user@fake.test" }, "greeted with 421")
      local line = d:wait_log("(event=deferred qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("421 4%.3%.2", line)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.equal(2, fake.count("\nCONNECT "))
    end)

    describe("550 for one of two recipients", function()
      local d, fake, qid
      before_each(function()
        fake = start_fake("127.0.0.4", { rcpt = { ["bad@fake.test"] = { "550 5.1.1 <bad@fake.test>: Recipient address rejected: User unknown" } } })
        d = start_daemon()
        qid = send(d, "alice@example.test", { "good@fake.test", "bad@fake.test" }, "half rejected")
        assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 10), d:log())
      end)

      it("bounces only that one and delivers the other once", function()
        assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=good@fake%.test"))
        assert.equal(1, d:count_log("event=bounced qid=" .. qid .. " to=bad@fake%.test"))
        assert.equal(0, d:count_log("event=bounced qid=" .. qid .. " to=good@fake%.test"))
        assert.equal(1, fake.count("\nMESSAGE "))
        local m = fake.message(1)
        assert.matches("^MAIL alice@example%.test\nRCPT good@fake%.test\n\n", m)
        local r, parts = read_bounce(d, "alice")
        assert.equal(1, #r)
        assert.equal("rfc822; bad@fake.test", r[1]["final-recipient"])
        assert.equal("failed", r[1]["action"])
        assert.matches("^5%.%d+%.%d+$", r[1]["status"])
        assert.equal("5.1.1", r[1]["status"])
        assert.matches("^smtp; 550 5%.1%.1 <bad@fake%.test>", r[1]["diagnostic-code"])
        local h = dsn.find_part(parts, "text/rfc822-headers")
        assert.is_truthy(h, "a text/rfc822-headers part")
        assert.matches("\nSubject: half rejected\n", h.body)
        assert.matches("Message%-ID: <halfrejected@client%.example%.test>\n", h.body)
        assert.is_nil(h.body:find("body of half rejected", 1, true), "headers only")
      end)

      it("names the remote MTA by its host name in Remote-MTA (RFC 3464 2.3.5: dns; <hostname>)", function()
        local r = read_bounce(d, "alice")
        assert.equal(1, #r)
        local mta = r[1]["remote-mta"]
        assert.is_truthy(mta, "a Remote-MTA field")
        assert.equal("dns; mx.fake.test", mta)
      end)
    end)

    it("defers when the MX hangs past delivery.timeouts.command, then delivers once", function()
      local fake = start_fake("127.0.0.6", { hang = { { conn = 1, cmd = "RCPT" } } })
      local d = start_daemon()
      local t0 = t.now()
      local qid = send(d, "alice@example.test", { "user@hang.test" }, "hung up")
      local line = d:wait_log("(event=deferred qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("timeout", line)
      assert.is_true(t.now() - t0 < 5, "deferred within the 1s command timeout")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5))
      t.sleep(1.5)
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid))
      assert.equal(1, fake.count("\nHANG 1 RCPT"))
    end)
  end)

  describe("end of data replies", function()
    it("bounces every accepted recipient on a 5xx after the data", function()
      local fake = start_fake("127.0.0.4", { data_reply = { "552 5.3.4 Message too big for system" } })
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "a@fake.test", "b@fake.test" }, "refused at dot")
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 10), d:log())
      assert.equal(2, d:count_log("event=bounced qid=" .. qid .. "[^\n]*552 5%.3%.4"))
      assert.equal(0, d:count_log("event=delivered qid=" .. qid))
      local r = read_bounce(d, "alice")
      assert.equal(2, #r)
      for _, b in ipairs(r) do
        assert.equal("failed", b["action"])
        assert.equal("5.3.4", b["status"])
      end
      assert.equal(0, fake.count("\nMESSAGE "))
    end)

    it("defers every accepted recipient on a 4xx after the data, and delivers later", function()
      local fake = start_fake("127.0.0.4", { data_reply = { "451 4.3.0 Queue file write error", "250 2.0.0 Ok" } })
      local d = start_daemon()
      local qid = send(d, "alice@example.test", { "a@fake.test" }, "tempfailed at dot")
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid .. "[^\n]*451 4%.3%.0", 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.equal(1, fake.count("\nDATA_REFUSED "))
    end)
  end)

  describe("message content", function()
    it("relays a 2 MB message intact, dot-stuffing lines that start with a dot", function()
      local fake = start_fake("127.0.0.4")
      local d = start_daemon()
      local lines = {}
      for i = 1, 2100 do
        lines[#lines + 1] = (i % 100 == 0) and "."
          or ((i % 7 == 0 and "." or "") .. ("%06d "):format(i) .. string.rep("abcdefghij", 98))
      end
      local body = table.concat(lines, "\r\n") .. "\r\n"
      local c = d:session()
      local wire = "From: alice@example.test\r\nSubject: big\r\n\r\n" .. body:gsub("\n%.", "\n..")
      local code, text = c:transaction("alice@example.test", { "big@fake.test" }, wire)
      assert.equal(250, code, text)
      local qid = text:match("queued as (%w+)")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 20), d:log())
      local m = fake.message(1)
      assert.is_truthy(m)
      local got = m:match("\nSubject: big\n\n(.*)$")
      assert.is_truthy(got)
      local want = body:gsub("\r\n", "\n")
      assert.equal(#want, #got)
      assert.is_true(want == got, "the body arrived changed")
    end)
  end)

  describe("relay authentication", function()
    -- The fake server speaks no TLS: these routes allow AUTH in clear
    -- (delivery_relay_auth_spec.lua is about when that is refused).
    local function auth_route(extra)
      return "['*'] = { host = '127.0.0.4', port = " .. P .. ", auth_user = 'relayuser', "
        .. "tls = 'none', auth_plaintext = true, " .. extra .. " }"
    end

    it("logs in with AUTH PLAIN before MAIL", function()
      local fake = start_fake("127.0.0.4", { auth = { user = "relayuser", password = "s3cret", mechs = "PLAIN" } })
      local d = start_daemon{ routes = auth_route("auth_password = 's3cret'") }
      local qid = send(d, "alice@example.test", { "user@anywhere.example" }, "authenticated plain")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, fake.count("\nAUTH_OK 1 relayuser"))
      assert.matches("\nCMD 1 AUTH PLAIN", fake.events())
      assert.equal(1, fake.count("\nMESSAGE "))
    end)

    it("logs in with AUTH LOGIN when PLAIN is not offered", function()
      local fake = start_fake("127.0.0.4", { auth = { user = "relayuser", password = "s3cret", mechs = "LOGIN" } })
      local d = start_daemon{ routes = auth_route("auth_password = 's3cret'") }
      local qid = send(d, "alice@example.test", { "user@anywhere.example" }, "authenticated login")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, fake.count("\nAUTH_OK 1 relayuser"))
      assert.equal(1, fake.count("\nMESSAGE "))
    end)

    it("defers, never bounces, when the relay refuses the credentials", function()
      local fake = start_fake("127.0.0.4", { auth = { user = "relayuser", password = "s3cret" } })
      local d = start_daemon{ routes = auth_route("auth_password = 'wrong'") }
      local qid = send(d, "alice@example.test", { "user@anywhere.example" }, "bad credentials")
      local line = d:wait_log("(event=deferred qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("535", line)
      t.sleep(1.5)
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
      assert.equal(0, fake.count("\nMESSAGE "))
      assert.equal(0, fake.count("\nCMD %d+ MAIL"))
    end)
  end)

  describe("TLS policy", function()
    it("delivery.tls = 'verify' defers rather than send in clear to an MX without STARTTLS", function()
      local fake = start_fake("127.0.0.4")
      local d = start_daemon{ delivery = "tls = 'verify'" }
      local qid = send(d, "alice@example.test", { "user@fake.test" }, "must be private")
      local line = d:wait_log("(event=deferred qid=" .. qid .. "[^\n]*)", 10)
      assert.is_truthy(line, d:log())
      assert.matches("STARTTLS", line)
      t.sleep(1.5)
      assert.equal(0, fake.count("\nCMD %d+ MAIL"))
      assert.equal(0, d:count_log("event=bounced qid=" .. qid))
    end)
  end)

  describe("concurrency", function()
    it("opens at most delivery.concurrency.per_domain connections to one destination", function()
      local fake = start_fake("127.0.0.4", { greeting_delay_all = 0.3, dot_delay = 0.2 })
      local d = start_daemon{ delivery = "concurrency = { per_domain = 2, remote = 20 }" }
      local ids = {}
      local c = d:session()
      for i = 1, 8 do
        local rcpt = "u" .. i .. "@fake.test"
        local code, text = c:transaction("alice@example.test", { rcpt }, message("parallel " .. i, rcpt))
        assert.equal(250, code, text)
        ids[i] = text:match("queued as (%w+)")
      end
      for i = 1, 8 do assert.is_truthy(d:wait_log("event=removed qid=" .. ids[i], 20), d:log()) end
      assert.equal(8, fake.count("\nMESSAGE "))
      local open, max = 0, 0
      for what in fake.events():gmatch("\n(%u+) %d+") do
        if what == "CONNECT" then open = open + 1 elseif what == "EOF" or what == "CLOSE" then open = open - 1 end
        if open > max then max = open end
      end
      assert.is_true(max <= 2, "at most 2 connections at once, saw " .. max)
    end)
  end)

  describe("bounces that cannot be delivered", function()
    it("go to the postmaster mailbox as a double bounce", function()
      local d = start_daemon()
      -- the sender's domain does not exist: its bounce fails too
      local qid = send(d, "someone@nxsender.test", { "user@nx.test" }, "doubly lost")
      assert.is_truthy(d:wait_log("event=bounced qid=" .. qid .. " to=user@nx%.test", 10), d:log())
      local bqid = d:wait_log("event=bounce_queued qid=" .. qid .. " bounce_qid=(%w+) to=someone@nxsender%.test level=1", 5)
      assert.is_truthy(bqid, d:log())
      assert.is_truthy(d:wait_log("event=bounced qid=" .. bqid .. " to=someone@nxsender%.test", 10), d:log())
      assert.is_truthy(d:wait_log("event=bounce_queued qid=" .. bqid .. " bounce_qid=%w+ to=pm@example%.test level=2", 5), d:log())
      local files = maildir.wait(d, "pm", 1, 8)
      assert.is_truthy(files, d:log())
      local text = D.readfile(files[1])
      assert.matches("^Return%-Path: <>\nDelivered%-To: pm@example%.test\n", text)
      local parts = dsn.parts(text)
      local r = dsn.recipients(dsn.find_part(parts, "message/delivery-status").body)
      assert.equal(1, #r)
      assert.equal("rfc822; someone@nxsender.test", r[1]["final-recipient"])
      assert.equal("5.1.2", r[1]["status"])
      assert.equal(0, #maildir.new_files(d, "alice"))
      assert.equal(0, d:count_log("event=double_bounce_dropped"))
      D.eventually(function() return #d:queue_files() == 0 end, 5)
      assert.equal(0, #d:queue_files())
    end)
  end)

  describe("relay routes", function()
    it("routes['*'] sends every remote domain to the relay, never to the MX", function()
      local relay = start_sink("127.0.0.5")
      local mx = start_sink("127.0.0.2")
      local d = start_daemon{ routes = "['*'] = '127.0.0.5:" .. P .. "'" }
      local q1 = send(d, "alice@example.test", { "user@remote.test" }, "via relay one")
      local q2 = send(d, "alice@example.test", { "user@nx.test" }, "via relay two")
      local q3 = send(d, "alice@example.test", { "user@elsewhere.example" }, "via relay three")
      for _, q in ipairs({ q1, q2, q3 }) do
        local line = d:wait_log("(event=delivered qid=" .. q .. "[^\n]*)", 10)
        assert.is_truthy(line, d:log())
        assert.matches("relay=127%.0%.0%.5%[127%.0%.0%.5%]:" .. P, line)
      end
      assert.is_truthy(D.eventually(function() return relay.count() == 3 end, 5))
      assert.equal(0, mx.count())
      local got = {}
      for _, m in ipairs(relay.messages()) do got[#got + 1] = sink_rcpts(m)[1] end
      table.sort(got)
      assert.same({ "user@elsewhere.example", "user@nx.test", "user@remote.test" }, got)
      -- local mail stays local
      local q4 = send(d, "alice@example.test", { "pm@example.test" }, "local still")
      assert.is_truthy(maildir.wait(d, "pm"), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. q4, 5))
      assert.equal(3, relay.count())
    end)

    it("a route for one domain wins over '*'", function()
      local relay = start_sink("127.0.0.5")
      local special = start_sink("127.0.0.2")
      local d = start_daemon{ routes = "['*'] = '127.0.0.5:" .. P .. "', ['special.test'] = '127.0.0.2:" .. P .. "'" }
      local q1 = send(d, "alice@example.test", { "user@special.test" }, "special")
      local q2 = send(d, "alice@example.test", { "user@remote.test" }, "general")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. q1 .. "[^\n]*relay=127%.0%.0%.2", 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. q2 .. "[^\n]*relay=127%.0%.0%.5", 10), d:log())
      assert.is_truthy(D.eventually(function() return special.count() == 1 and relay.count() == 1 end, 5))
    end)
  end)

  describe("under load", function()
    it("relays 200 messages from several concurrent sessions, each exactly once", function()
      local N, SESSIONS = 200, 4
      local relay = start_sink("127.0.0.5")
      local d = start_daemon{ routes = "['*'] = '127.0.0.5:" .. P .. "'", workers = 2 }
      local conns = {}
      for i = 1, SESSIONS do conns[i] = d:session() end
      local t0 = t.now()
      -- lockstep: every session has a transaction in flight at the same time
      local function step(lines, want)
        for i, c in ipairs(conns) do c:send(lines[i]) end
        for i, c in ipairs(conns) do
          local code, text = c:reply()
          assert.equal(want, code, text)
        end
      end
      for round = 0, N / SESSIONS - 1 do
        local mails, rcpts, datas, bodies = {}, {}, {}, {}
        for i = 1, SESSIONS do
          local k = round * SESSIONS + i
          mails[i] = "MAIL FROM:<alice@example.test>\r\n"
          rcpts[i] = ("RCPT TO:<user%d@dest%d.test>\r\n"):format(k, k % 7)
          datas[i] = "DATA\r\n"
          bodies[i] = ("From: alice@example.test\r\nTo: user%d@dest%d.test\r\nSubject: bulk %d\r\n\r\nmessage %d\r\n.\r\n")
            :format(k, k % 7, k, k)
        end
        step(mails, 250)
        step(rcpts, 250)
        step(datas, 354)
        step(bodies, 250)
      end
      assert.is_truthy(D.eventually(function() return d:count_log("event=removed") >= N end, 60),
        ("removed %d of %d; log tail:\n%s"):format(d:count_log("event=removed"), N, d:log():sub(-3000)))
      assert.is_truthy(D.eventually(function() return relay.count() >= N end, 10))
      t.sleep(1.5)
      assert.equal(N, relay.count())
      assert.equal(N, d:count_log("event=delivered"))
      assert.equal(0, d:count_log("event=deferred"))
      assert.equal(0, d:count_log("event=bounced"))
      local seen = {}
      for _, m in ipairs(relay.messages()) do
        local k = tonumber(m:match("\nSubject: bulk (%d+)\n"))
        assert.is_truthy(k, m)
        assert.same({ ("user%d@dest%d.test"):format(k, k % 7) }, sink_rcpts(m))
        assert.is_nil(seen[k], "message " .. k .. " arrived twice")
        seen[k] = true
      end
      for k = 1, N do assert.is_true(seen[k] == true, "message " .. k .. " missing") end
      assert.equal(0, #d:queue_files())
      assert.is_true(t.now() - t0 < 60)
    end)
  end)
end)

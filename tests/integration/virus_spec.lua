-- lua/policies/virus.lua over SMTP with a real clamd (tests/helpers/
-- clamd.lua: its own socket and a one-signature database for EICAR),
-- started once for the file: a clean message is queued, EICAR in the body
-- or in a base64 attachment is refused with 554 5.7.0 and event=virus,
-- action quarantine queues it for the quarantine mailbox only, a scanner
-- that is down or refuses the stream's size gives 451 4.7.0 (or passes with on_error = "pass"), a
-- scanner that never answers gives 451 after the policy's timeout while
-- the worker keeps serving other sessions.
local D = require("daemon")
local cleanup = require("cleanup")
local clamd = require("clamd")
local maildir = require("maildir")
local t = D.t

local USERS = "users = { 'alice@example.test', 'virus@example.test' }"

local function policy(settings)
  return ("indimail.policy('virus', { %s })"):format(settings)
end

local function start(settings, o)
  o = o or {}
  o.mailboxes = USERS
  o.policies = policy(settings)
  return D.start_for_test(o)
end

local function message(subject, body)
  return ("From: joe@ok.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\n%s\r\n"):format(subject, body)
end

-- EICAR as an attachment, base64 encoded (clamd decodes MIME itself).
local function with_attachment()
  local b64 = D.sh("printf '%s' '" .. clamd.EICAR .. "' | base64 -w 60"):gsub("\n", "\r\n")
  return "From: joe@ok.test\r\nTo: alice@example.test\r\nSubject: attached\r\n"
    .. "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    .. "--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
    .. "--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    .. "Content-Disposition: attachment; filename=e.com\r\n\r\n" .. b64 .. "--XX--\r\n"
end

local function send(d, msg)
  local c = d:session()
  local code, text = c:transaction("joe@ok.test", { "alice@example.test" }, msg)
  c:cmd("QUIT")
  return code, text
end

local function virus_line(d, ...) return d:wait_event("virus", { ... }) end

describe("virus policy (clamd INSTREAM)", function()
  local scratch, av

  setup(function()
    scratch = D.mktemp("clamd")
    av = clamd.start{ dir = scratch }
  end)

  teardown(function()
    if av then av.stop() end
    D.rmtemp(scratch)
  end)

  after_each(cleanup.run)

  describe("with clamd running", function()
    it("queues a clean message and logs event=virus result=clean", function()
      local d = start(("clamd = { socket = %q }"):format(av.socket))
      local code, text = send(d, message("hello", "nothing to see here"))
      assert.are.equal(250, code, text)
      assert.truthy(virus_line(d, "result=clean", "ms=%d+"), d:log())
    end)

    it("refuses EICAR in the body with 554 5.7.0 naming the virus, at the end of DATA", function()
      local d = start(("clamd = { socket = %q }"):format(av.socket))
      local code, text = send(d, message("test", clamd.EICAR))
      assert.are.equal(554, code, text)
      assert.matches("5%.7%.0 Message contains a virus %(Indimail%.Test%.EICAR%.UNOFFICIAL%)", text)
      assert.truthy(virus_line(d, "result=virus", "name=Indimail%.Test%.EICAR", "ms=%d+"), d:log())
      assert.are.equal(0, #d:queue_files())
    end)

    it("refuses EICAR inside a base64 attachment with 554", function()
      local d = start(("clamd = { socket = %q }"):format(av.socket))
      local code, text = send(d, with_attachment())
      assert.are.equal(554, code, text)
      assert.matches("Indimail%.Test%.EICAR", text)
    end)

    it("with action quarantine, accepts and delivers to the quarantine mailbox only", function()
      local d = start(("clamd = { socket = %q }, action = 'quarantine', quarantine = 'virus@example.test'")
        :format(av.socket), { deliver = true })
      local code, text = send(d, message("test", clamd.EICAR))
      assert.are.equal(250, code, text)
      local files = maildir.wait(d, "virus", 1)
      assert.truthy(files, d:log())
      assert.matches("X%-Quarantine%-Reason: virus Indimail%.Test%.EICAR", D.readfile(files[1]))
      assert.are.equal(0, #maildir.new_files(d, "alice"))
      assert.truthy(virus_line(d, "result=virus", "action=quarantine"))
    end)

    it("skips a message over max_size without scanning it, and says so", function()
      local d = start(("clamd = { socket = %q }, max_size = 100"):format(av.socket))
      local code, text = send(d, message("big", clamd.EICAR .. "\r\n" .. ("x"):rep(200)))
      assert.are.equal(250, code, text)
      assert.truthy(virus_line(d, "result=skipped", "max_size=100"), d:log())
    end)
  end)

  describe("when the scanner is unavailable", function()
    it("answers 451 when clamd refuses a stream over its StreamMaxLength (1M here)", function()
      local d = start(("clamd = { socket = %q }, max_size = 4 * 1024 * 1024"):format(av.socket))
      local body = (("y"):rep(76) .. "\r\n"):rep(20000)   -- 1.5 MB
      local code, text = send(d, message("large", body))
      assert.are.equal(451, code, text)
      assert.truthy(virus_line(d, "result=error", "size limit exceeded"), d:log())
    end)


    it("answers 451 4.7.0 when clamd's socket is gone (on_error default)", function()
      local d = start(("clamd = { socket = %q }"):format(scratch .. "/nobody.sock"))
      local code, text = send(d, message("hello", "text"))
      assert.are.equal(451, code, text)
      assert.matches("4%.7%.0 Virus scanner unavailable", text)
      assert.truthy(virus_line(d, "result=error", "error=[^\n]*no such file"), d:log())
      assert.are.equal(0, #d:queue_files())
    end)

    it("queues the message with a log line when on_error = 'pass' (clamd over TCP, refused)", function()
      local port = D.free_tcp_port()
      local d = start(("clamd = { host = '127.0.0.1', port = %d }, on_error = 'pass'"):format(port))
      local code, text = send(d, message("hello", clamd.EICAR))
      assert.are.equal(250, code, text)
      assert.truthy(virus_line(d, "result=error", "on_error=pass", "connection refused"), d:log())
    end)

    it("answers 451 after the policy's timeout when clamd accepts and never answers; the worker serves others meanwhile", function()
      local hung = clamd.silent{ dir = D.scratch_dir("hung") }
      cleanup.defer(hung.stop)
      local d = start(("clamd = { socket = %q }, timeout = 1.5"):format(hung.socket))
      local c = d:session()
      local t0 = t.now()
      assert.are.equal(250, (c:cmd("MAIL FROM:<joe@ok.test>")))
      assert.are.equal(250, (c:cmd("RCPT TO:<alice@example.test>")))
      assert.are.equal(354, (c:cmd("DATA")))
      c:send(message("hello", "text") .. ".\r\n")
      -- while the scan waits, the one worker answers another session at once
      local c2 = d:session()
      assert.are.equal(250, (c2:cmd("NOOP")))
      assert.is_true(t.now() - t0 < 1.0)
      local code, text = c:reply()
      local took = t.now() - t0
      assert.are.equal(451, code, text)
      assert.is_true(took >= 1.4 and took < 4, "took " .. took)
      assert.truthy(virus_line(d, "result=error", "no answer in time"), d:log())
      c2:cmd("QUIT")
      c:cmd("QUIT")
    end)

    it("lets go of a scan whose session closes while it waits (no crash, next session served)", function()
      local hung = clamd.silent{ dir = D.scratch_dir("hung") }
      cleanup.defer(hung.stop)
      local d = start(("clamd = { socket = %q }, timeout = 3"):format(hung.socket))
      local c = d:session()
      c:cmd("MAIL FROM:<joe@ok.test>")
      c:cmd("RCPT TO:<alice@example.test>")
      assert.are.equal(354, (c:cmd("DATA")))
      c:send(message("hello", "text") .. ".\r\n")
      t.sleep(0.3)
      c:close()
      t.sleep(0.3)
      local c2 = d:session()
      assert.are.equal(250, (c2:cmd("NOOP")))
      c2:cmd("QUIT")
      assert.is_nil(d:log():find("event=virus [^\n]*result=error"))  -- cancelled, never answered
    end)
  end)
end)

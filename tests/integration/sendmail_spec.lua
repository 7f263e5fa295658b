-- bin/sendmail: the injector cron, PHP and mutt use. It reads no
-- configuration: it speaks SMTP over the local submission socket
-- (INDIMAIL_SUBMIT_SOCKET), where the server records the caller's uid and
-- applies the same policies as to any client. It turns what local programs
-- write (any line ends, long lines, a refused recipient among good ones)
-- into what the strict server accepts.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

-- Recipients whose name starts with refused@ / later@ get 550 / 451.
local POLICY = [[
indimail.hook("rcpt", function(session, tx, rcpt)
  if rcpt:match("^refused@") then
    return indimail.reject("No such user here", 550, "5.1.1")
  end
  if rcpt:match("^later@") then
    return indimail.tempfail("Try this one later", 451, "4.2.0")
  end
end)]]

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs bin/<o.name or sendmail> with the argument list args and input on
-- standard input; o.prefix goes before the command (setpriv, time), o.env
-- before that. Returns stdout and stderr together, and the exit code.
local function run(d, args, input, o)
  o = o or {}
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = quote(a) end
  D.writefile(d.dir .. "/input.txt", input or "")
  return D.sh(("INDIMAIL_SUBMIT_SOCKET=%s %s %s %s/%s %s < %s/input.txt"):format(
    d.dir .. "/queue/public/submit.sock", o.env or "", o.prefix or "", D.bin,
    o.name or "sendmail", table.concat(quoted, " "), d.dir))
end

-- The queued message files, once there are at least n (with the wal queue
-- backend a file appears a moment after the 250, at its checkpoint; mailq
-- and `queue list` show the message before: queue_wal_spec). At most 5 s.
local function queue_files(d, n)
  return D.eventually(function()
    local files = d:queue_files()
    return #files >= n and files
  end, 5, 0.02) or d:queue_files()
end

-- The one queued message (delivery is paused in these specs): envelope,
-- message, file.
local function only_message(d)
  local files = queue_files(d, 1)
  assert.equal(1, #files, "queued messages")
  local data = d:queue_read(files[1])
  local env, msg = data:match("^(.-\n)\n(.*)$")
  return env, msg, files[1]
end

local function longest_line(s)
  local n = 0
  for line in s:gmatch("[^\n]*") do n = math.max(n, #line) end
  return n
end

-- Python's email module decodes each leaf part (QP, base64) of the message
-- in file; returns the list of decoded payloads.
local DECODE = [[
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for p in m.walk():
    if not p.is_multipart():
        sys.stdout.buffer.write(b"%d:" % len(p.get_payload(decode=True)))
        sys.stdout.buffer.write(p.get_payload(decode=True))
]]
local function decoded_parts(d, text)
  D.writefile(d.dir .. "/decode.py", DECODE)
  D.writefile(d.dir .. "/decode.eml", text)
  local p = io.popen(("/usr/bin/python3 %s/decode.py %s/decode.eml"):format(d.dir, d.dir))
  local out = p:read("a")
  assert(p:close(), "python3 could not decode the message")
  local parts, i = {}, 1
  while i <= #out do
    local len, colon = out:match("^(%d+)():", i)
    parts[#parts + 1] = out:sub(colon + 1, colon + tonumber(len))
    i = colon + tonumber(len) + 1
  end
  return parts
end

describe("sendmail", function()
  local d
  before_each(function() d = D.start{ policies = POLICY } end)
  after_each(function()
    cleanup.run()
    d:cleanup()
  end)

  describe("finds the server without the configuration", function()
    it("submits as nobody while the configuration is root's and mode 0600, and the server records nobody's uid", function()
      assert.equal(0, D.t.getuid(), "this spec runs sendmail as nobody: it must run as root")
      local uid = D.sh("id -u nobody"):match("%d+")
      D.sh("chown root:root " .. d.config .. " && chmod 600 " .. d.config)
      local priv = "setpriv --reuid=nobody --regid=nogroup --clear-groups"
      local _, readable = D.sh(priv .. " cat " .. d.config)
      assert.is_not.equal(0, readable, "nobody can read the configuration")
      local out, rc = run(d, { "a@example.test" }, "Subject: cron\n\nfrom nobody\n",
        { prefix = priv })
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.matches("^Received: from %S+ %(invoked by uid " .. uid .. "%)", msg)
      assert.matches("event=queued [^\n]*uid=" .. uid .. " ", d:log())
    end)

    it("accepts -C FILE and ignores the file", function()
      local out, rc = run(d, { "-C", "/nonexistent/indimail.lua", "a@example.test" },
        "Subject: x\n\nbody\n")
      assert.equal(0, rc, out)
      assert.equal(1, #queue_files(d, 1))
    end)

    it("fails with 75, naming the socket, when no server listens there", function()
      local out, rc = run(d, { "a@example.test" }, "Subject: x\n\nbody\n",
        { env = "INDIMAIL_SUBMIT_SOCKET=" .. d.dir .. "/nothing.sock" })
      assert.equal(75, rc)
      assert.matches("nothing%.sock", out)
    end)
  end)

  describe("submits a message", function()
    it("for the recipients on the command line with -f as sender", function()
      local out, rc = run(d, { "-f", "boss@example.test", "a@example.test", "b@remote.test" },
        "Subject: cron\n\nnightly report\n")
      assert.equal(0, rc, out)
      local env, msg = only_message(d)
      assert.matches("\nsender boss@example.test\n", env)
      assert.matches("\nrcpt a@example.test\n", env)
      assert.matches("\nrcpt b@remote.test\n", env)
      assert.matches("\nSubject: cron\n", msg)
      assert.matches("\n\nnightly report\n$", msg)
    end)

    it("adds From, Date and Message-ID named after the server's host when the message has none", function()
      local out, rc = run(d, { "-f", "boss@example.test", "-F", "Cron Daemon", "a@example.test" },
        "Subject: x\n\nbody\n")
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.matches("\nFrom: Cron Daemon <boss@example.test>\n", msg)
      assert.matches("\nDate: %a%a%a, ", msg)
      assert.matches("\nMessage%-ID: <[^>]+@mx%.test%.example>\n", msg)
    end)

    it("qualifies an address without a domain with the server's host name", function()
      local out, rc = run(d, { "-f", "cron", "root" }, "Subject: x\n\nbody\n")
      assert.equal(0, rc, out)
      local env = only_message(d)
      assert.matches("\nsender cron@mx%.test%.example\n", env)
      assert.matches("\nrcpt root@mx%.test%.example\n", env)
    end)

    it("takes recipients from To, Cc and Bcc with -t and removes Bcc", function()
      local out, rc = run(d, { "-t", "-f", "boss@example.test" },
        "To: Alice <a@example.test>, b@example.test (Bob)\nCc: \"C, D\" <c@example.test>,\n d@example.test\n"
        .. "Bcc: hidden@example.test\nSubject: t\n\nhello\n")
      assert.equal(0, rc, out)
      local env, msg = only_message(d)
      for _, r in ipairs({ "a", "b", "c", "d", "hidden" }) do
        assert.matches("\nrcpt " .. r .. "@example.test\n", env)
      end
      assert.not_matches("Bcc:", msg)
      assert.matches("\nCc: \"C, D\" <c@example.test>,\n d@example.test\n", msg)
    end)

    it("ends the message at a lone dot unless -i is given", function()
      run(d, { "-f", "s@example.test", "a@example.test" }, "Subject: x\n\nbefore\n.\nafter\n")
      local _, msg = only_message(d)
      assert.matches("before\n$", msg)
      d:cleanup()
      d = D.start{}
      run(d, { "-i", "-f", "s@example.test", "a@example.test" }, "Subject: x\n\nbefore\n.\n..two\nafter\n")
      local _, msg2 = only_message(d)
      assert.matches("before\n%.\n%.%.two\nafter\n$", msg2)
    end)

    it("drops a leading mbox \"From \" line and keeps the header section after it", function()
      local out, rc = run(d, { "a@example.test" },
        "From someone@example.test Tue Dec  1 10:00:00 2026\nSubject: mbox\n\nbody\n")
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.not_matches("From someone", msg)
      assert.matches("\nSubject: mbox\n\nbody\n$", msg)
    end)

    it("speaks SMTP on standard input and output with -bs", function()
      local out, rc = run(d, { "-bs" }, "EHLO cron.example.test\r\nMAIL FROM:<s@example.test>\r\n"
        .. "RCPT TO:<a@example.test>\r\nDATA\r\nSubject: bs\r\n\r\nbody\r\n.\r\nQUIT\r\n")
      assert.equal(0, rc)
      assert.matches("^220 ", out)
      assert.matches("250 2%.0%.0 Ok: queued as %w+", out)
      assert.matches("221 ", out)
      assert.equal(1, #queue_files(d, 1))
    end)

    it("fails with exit code 64 without recipients", function()
      local _, rc = run(d, { "-f", "s@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(64, rc)
    end)
  end)

  describe("checks every address before it connects", function()
    local function no_session(dd)
      assert.equal(0, #dd:queue_files())
      assert.equal(0, dd:count_log("event=connect"), "sendmail connected")
    end

    it("refuses a sender that would inject SMTP commands: 64, nothing queued", function()
      local out, rc = run(d, { "-f", "a@b>\r\nRCPT TO:<victim@x>\r\nDATA\r\nSubject: injected\r\n\r\nhi\r\n.",
        "a@example.test" }, "Subject: real\n\nthe real message\n")
      assert.equal(64, rc)
      assert.matches("sendmail: invalid sender address \"a@b>\\r\\nRCPT TO:<victim@x>", out, 1, true)
      no_session(d)
    end)

    it("refuses a command-line recipient with a line feed in it: 64, nothing queued", function()
      local out, rc = run(d, { "a@example.test\nb@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(64, rc)
      assert.matches("sendmail: invalid recipient address \"a@example.test\\nb@example.test\"", out, 1, true)
      no_session(d)
    end)

    it("refuses a -t header with a bare CR inside an address: 65, nothing queued", function()
      local out, rc = run(d, { "-t" }, "To: good@example.test, a\r@example.test\nSubject: x\n\nbody\n")
      assert.equal(65, rc)
      assert.matches("a\\r@example.test", out, 1, true)
      no_session(d)
    end)

    it("refuses a -t address list it cannot read, or an address that is no RFC 5321 mailbox: 65, named", function()
      local out, rc = run(d, { "-t" }, "To: good@example.test, \"x\" <a b@example.test>\nSubject: x\n\nbody\n")
      assert.equal(65, rc)
      assert.matches("invalid recipient address \"a b@example.test\" in To:", out, 1, true)
      out, rc = run(d, { "-t" }, "To: good@example.test\nCc: Jos\195\169 <jos\195\169@example.test>\n\nbody\n")
      assert.equal(65, rc)
      assert.matches("invalid recipient address \"jos\195\169@example.test\" in Cc:", out, 1, true)
      no_session(d)
    end)
  end)

  describe("options", function()
    it("consumes the values of -N, -O, -B, -R and -V, separate or attached", function()
      local out, rc = run(d, { "-N", "never", "-O", "DeliveryMode=b", "-B", "8BITMIME",
        "-R", "hdrs", "-V", "envid1", "-Nsuccess", "-OErrorMode=m", "-B7BIT", "-Rfull",
        "-Venvid2", "-oem", "-oi", "a@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(0, rc, out)
      local env = only_message(d)
      local n = 0
      for _ in env:gmatch("\nrcpt ") do n = n + 1 end
      assert.equal(1, n, env)
    end)

    it("refuses an unknown option with 64", function()
      local out, rc = run(d, { "-Z", "a@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(64, rc)
      assert.matches("sendmail: unknown option -Z", out, 1, true)
      assert.equal(0, #d:queue_files())
    end)

    it("refuses an option whose value is missing with 64", function()
      local out, rc = run(d, { "-f" }, "")
      assert.equal(64, rc)
      assert.matches("option -f needs a value", out, 1, true)
    end)

    it("lists the queue with -bp and as mailq, in Postfix's format", function()
      run(d, { "a@example.test" }, "Subject: x\n\nbody\n")
      local _, _, file = only_message(d)
      local id = file:match("[^/]+$")
      local env = "INDIMAIL_CONFIG_FILE=" .. d.config
      for _, how in ipairs({ { args = { "-bp" } }, { args = {}, name = "mailq" } }) do
        local out, rc = run(d, how.args, "", { env = env, name = how.name })
        assert.equal(0, rc, out)
        assert.matches("^%-Queue ID%-  %-%-Size%-%- ", out)
        assert.matches("\n" .. id .. " ", out)
        assert.matches("\n%-%- %d+ Kbytes in 1 Request%.\n$", out)
      end
    end)

    it("flushes the queue with -q", function()
      run(d, { "a@example.test" }, "Subject: x\n\nbody\n")
      queue_files(d, 1)  -- the queue manager knows it (wal: after its checkpoint)
      local out, rc = run(d, { "-q" }, "", { env = "INDIMAIL_CONFIG_FILE=" .. d.config })
      assert.equal(0, rc, out)
      assert.matches("1 message scheduled for delivery now", out, 1, true)
    end)

    it("verifies recipients with -bv: each with the server's verdict, nothing sent", function()
      local out, rc = run(d, { "-bv", "a@example.test", "refused@example.test" }, "")
      assert.equal(65, rc)
      assert.matches("a@example.test: deliverable (250 ", out, 1, true)
      assert.matches("refused@example.test: refused (550 5.1.1 No such user here)", out, 1, true)
      out, rc = run(d, { "-bv", "a@example.test", "b@remote.test" }, "")
      assert.equal(0, rc, out)
      assert.equal(0, #d:queue_files())
      assert.equal(0, d:count_log("event=queued"))
    end)

    it("answers -bi and newaliases with where aliases live and how to reload", function()
      for _, how in ipairs({ { args = { "-bi" } }, { args = {}, name = "newaliases" } }) do
        local out, rc = run(d, how.args, "", { name = how.name })
        assert.equal(0, rc, out)
        assert.matches("mailboxes.aliases", out, 1, true)
        assert.matches("SIGHUP", out, 1, true)
      end
    end)

    it("prints the SMTP dialogue on standard error with -v", function()
      local out, rc = run(d, { "-v", "-f", "s@example.test", "a@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(0, rc, out)
      assert.matches("<<< 220 mx.test.example", out, 1, true)
      assert.matches(">>> MAIL FROM:<s@example.test>", out, 1, true)
      assert.matches(">>> RCPT TO:<a@example.test>", out, 1, true)
      assert.matches("<<< 250 2.0.0 Ok: queued as ", out, 1, true)
    end)
  end)

  describe("turns what local programs write into what the server accepts", function()
    it("makes LF, CRLF and bare CR line ends CRLF", function()
      local out, rc = run(d, { "a@example.test" },
        "Subject: cron\r\nX-Tool: cron\n\nline1\r\nline2\rline3\nprogress 10%\rprogress 20%\r\rend\n")
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.matches("\nSubject: cron\nX%-Tool: cron\n\nline1\nline2\nline3\nprogress 10%%\nprogress 20%%\n\nend\n$", msg)
    end)

    it("folds a header line over 998 bytes at whitespace", function()
      local words = {}
      for i = 1, 300 do words[i] = "word" .. i end
      local subject = table.concat(words, " ")
      local out, rc = run(d, { "a@example.test" }, "Subject: " .. subject .. "\n\nbody\n")
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.is_true(longest_line(msg) <= 998)
      local folded = msg:match("\nSubject: (.-)\n[^ \t]")
      assert.equal(subject, folded:gsub("\n", ""))
    end)

    it("refuses a header line over 998 bytes that has no blank to fold at: 65, named", function()
      local out, rc = run(d, { "a@example.test" }, "X-Token: " .. ("t"):rep(1200) .. "\n\nbody\n")
      assert.equal(65, rc)
      assert.matches("header X-Token has a line over 998 bytes without a blank to fold it at", out, 1, true)
      assert.equal(0, #d:queue_files())
    end)

    it("re-encodes a body with a NUL byte instead of having it refused", function()
      local text = "before\0after\n"
      local out, rc = run(d, { "a@example.test" }, "Subject: nul\n\n" .. text)
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.matches("\n\nbefore=00after\n$", msg)
      assert.same({ text }, decoded_parts(d, msg))
    end)

    it("re-encodes a 5,000-byte HTML line (PHP) as quoted-printable, keeping its text and Content-Type", function()
      local html = "<html><body>" .. ("<p>caf\195\169 & cr\195\168me = tasty </p>"):rep(200) .. "</body></html>\n"
      assert.is_true(#html > 5000)
      local input = "To: a@example.test\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
        .. "Content-type: text/html; charset=UTF-8\r\n\r\n" .. html
      local out, rc = run(d, { "-t", "-i" }, input)
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.is_true(longest_line(msg) <= 998, "a line is longer than 998 bytes")
      assert.matches("\nContent%-type: text/html; charset=UTF%-8\n", msg)
      assert.matches("\nContent%-Transfer%-Encoding: quoted%-printable\n", msg)
      assert.same({ html }, decoded_parts(d, msg))
    end)

    it("adds MIME-Version when it re-encodes a message that had no MIME headers", function()
      local text = ("cron output "):rep(200) .. "\n"
      local out, rc = run(d, { "a@example.test" }, "Subject: long\n\n" .. text)
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.is_true(longest_line(msg) <= 998)
      assert.matches("\nMIME%-Version: 1%.0\n", msg)
      assert.same({ text }, decoded_parts(d, msg))
    end)

    it("re-encodes only the long-line part of a multipart message and keeps its structure", function()
      local long = ("<td>\195\169t\195\169 </td>"):rep(300)
      local input = table.concat({
        "To: a@example.test", "Subject: report", "MIME-Version: 1.0",
        "Content-Type: multipart/alternative; boundary=\"b-1\"", "",
        "This is a MIME message.",
        "--b-1", "Content-Type: text/plain; charset=utf-8", "", "short line", "second line",
        "--b-1", "Content-Type: text/html; charset=utf-8", "", long, "<p>tail</p>",
        "--b-1", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
        "AAECAwQFBgcICQ==",
        "--b-1--", "" }, "\n")
      local out, rc = run(d, { "-t" }, input)
      assert.equal(0, rc, out)
      local _, msg = only_message(d)
      assert.is_true(longest_line(msg) <= 998, "a line is longer than 998 bytes")
      assert.matches("\n%-%-b%-1\nContent%-Type: text/plain; charset=utf%-8\n\nshort line\nsecond line\n%-%-b%-1\n", msg)
      assert.matches("\nContent%-Type: application/octet%-stream\nContent%-Transfer%-Encoding: base64\n\nAAECAwQFBgcICQ==\n%-%-b%-1%-%-\n", msg)
      assert.equal(1, select(2, msg:gsub("quoted%-printable", "")))
      assert.same(decoded_parts(d, input), decoded_parts(d, msg))
    end)

    it("with -t queues for the accepted recipients and names each refused one on stderr (exit 0)", function()
      local out, rc = run(d, { "-t" },
        "To: a@example.test, refused@example.test\nCc: b@example.test\nSubject: x\n\nbody\n")
      assert.equal(0, rc, out)
      assert.matches("sendmail: refused@example.test: 550 5.1.1 No such user here", out, 1, true)
      local env = only_message(d)
      assert.matches("\nrcpt a@example.test\n", env)
      assert.matches("\nrcpt b@example.test\n", env)
      assert.not_matches("refused@", env)
    end)

    it("sends the recipients the server defers as too many (452 4.5.3) in further transactions", function()
      d:cleanup()
      d = D.start{ limits = "recipients = 2", policies = POLICY }
      local out, rc = run(d, { "-t" }, "To: a@example.test, b@example.test, refused@example.test, "
        .. "c@example.test, d@example.test\nBcc: e@example.test\nSubject: many\n\nbody\n")
      assert.equal(0, rc, out)
      assert.equal("sendmail: refused@example.test: 550 5.1.1 No such user here\n", out)
      local files, got, ids = queue_files(d, 3), {}, {}
      assert.equal(3, #files)
      for _, f in ipairs(files) do
        local env, msg = d:queue_read(f):match("^(.-\n)\n(.*)$")
        for r in env:gmatch("\nrcpt (%S+)") do got[#got + 1] = r end
        ids[msg:match("\nMessage%-ID: (%S+)\n")] = true
      end
      table.sort(got)
      assert.same({ "a@example.test", "b@example.test", "c@example.test", "d@example.test", "e@example.test" }, got)
      assert.equal(1, #(function() local l = {} for k in pairs(ids) do l[#l + 1] = k end return l end)())
    end)

    it("fails with 65 when every recipient is refused with 5xx, and 75 when one was 4xx", function()
      local out, rc = run(d, { "refused@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(65, rc)
      assert.matches("refused@example.test: 550 5.1.1 No such user here", out, 1, true)
      out, rc = run(d, { "refused@example.test", "later@example.test" }, "Subject: x\n\nbody\n")
      assert.equal(75, rc)
      assert.matches("later@example.test: 451 4.2.0 Try this one later", out, 1, true)
      assert.equal(0, #d:queue_files())
    end)
  end)
end)

describe("sendmail with a 30 MiB message", function()
  it("streams it: queued, and sendmail's peak RSS stays under 20 MB", function()
    local d = D.start_for_test{ limits = "message_size = 64 * 1024 * 1024, data_memory = 256 * 1024 * 1024" }
    local line = ("0123456789"):rep(9) .. "abcdefgh\n"
    local body = line:rep(30 * 1024 * 1024 // #line)
    local rss = d.dir .. "/rss.txt"
    -- (AddressSanitizer would keep freed chunks in its quarantine: not ours)
    local out, rc = run(d, { "-t" }, "To: a@example.test\nSubject: big\n\n" .. body,
      { env = "ASAN_OPTIONS=quarantine_size_mb=1:${ASAN_OPTIONS:-}",
        prefix = "/usr/bin/time -f %M -o " .. rss })
    assert.equal(0, rc, out)
    local _, msg = only_message(d)
    assert.is_true(msg:sub(-#body) == body, "the queued body differs")
    local kb = tonumber(D.readfile(rss):match("(%d+)%s*$"))
    assert.is_true(kb < 20 * 1024, ("peak RSS %d kB"):format(kb))
  end)
  after_each(cleanup.run)
end)

describe("the local submission socket", function()
  after_each(cleanup.run)

  it("does not count local submissions against 127.0.0.1's per-IP limit", function()
    local d = D.start_for_test{ limits = "connections_per_ip = 2" }
    local sock = d.dir .. "/queue/public/submit.sock"
    for _ = 1, 2 do
      os.execute(("(sleep 3 | INDIMAIL_SUBMIT_SOCKET=%s %s/sendmail -bs >/dev/null 2>&1 &)")
        :format(sock, D.bin))
    end
    assert.truthy(D.eventually(function() return d:count_log("event=connect") >= 2 end, 5))
    local c1, c2 = d:connect(), d:connect()
    assert.equal(220, (c1:reply()))
    assert.equal(220, (c2:reply()))
  end)
end)

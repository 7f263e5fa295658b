-- Lua hooks as an SMTP client sees them: each stage's verdict becomes the
-- reply to exactly the command of that stage; errors, runaway loops and
-- malformed verdicts are our fault (451 4.3.0) and never take the daemon
-- down; what a hook sees and stores (session, tx.env, headers, body).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local MSG = "From: a@example.test\r\nTo: b@example.test\r\nSubject: hello\r\n\r\nfirst line\r\nsecond line\r\n"

-- ---- helpers -------------------------------------------------------------

-- Starts a daemon for one test and stops it when the test ends.
local function start(policies, opts)
  opts = opts or {}
  opts.policies = policies
  return D.start_for_test(opts)
end

-- Parses one log line (key=value, values maybe "quoted" with C escapes).
local function parse_logline(line)
  local f, pos = {}, 1
  while true do
    local _, e, k = line:find(" ([%w_]+)=", pos)
    if not e then break end
    pos = e + 1
    if line:sub(pos, pos) == '"' then
      local out, i = {}, pos + 1
      while i <= #line do
        local ch = line:sub(i, i)
        if ch == "\\" then
          local n = line:sub(i + 1, i + 1)
          if n == "x" then
            out[#out + 1] = string.char(tonumber(line:sub(i + 2, i + 3), 16))
            i = i + 4
          else
            out[#out + 1] = ({ n = "\n", r = "\r", t = "\t" })[n] or n
            i = i + 2
          end
        elseif ch == '"' then
          break
        else
          out[#out + 1] = ch
          i = i + 1
        end
      end
      f[k] = table.concat(out)
      pos = i + 1
    else
      local v = line:match("^[^ ]*", pos)
      f[k] = v
      pos = pos + #v
    end
  end
  return f
end

-- Every log record of one event, parsed, in order.
local function events(d, name)
  local list = {}
  for line in d:log():gmatch("[^\n]+") do
    local f = parse_logline(line)
    if f.event == name then list[#list + 1] = f end
  end
  return list
end

-- Waits (bounded) until at least n records of an event exist.
local function wait_events(d, name, n, timeout)
  return D.eventually(function()
    local list = events(d, name)
    return #list >= (n or 1) and list
  end, timeout, 0.02) or events(d, name)
end

-- Runs an SMTP session up to the command of `stage` and returns that
-- command's reply (code, text) and the client.
local drive = {}

function drive.connect(d)
  local c = d:connect()
  local code, text = c:reply()
  return code, text, c
end

function drive.helo(d)
  local c = d:connect()
  assert.equal(220, (c:reply()))
  local code, text = c:cmd("EHLO client.example.test")
  return code, text, c
end

function drive.mail(d)
  local c = d:session()
  local code, text = c:cmd("MAIL FROM:<a@example.test>")
  return code, text, c
end

-- A session with MAIL accepted, and RCPT too if rcpt; then DATA if data.
local function transaction(d, rcpt, data)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
  if rcpt then assert.equal(250, (c:cmd("RCPT TO:<b@example.test>"))) end
  if data then assert.equal(354, (c:cmd("DATA"))) end
  return c
end

function drive.rcpt(d)
  local c = transaction(d)
  local code, text = c:cmd("RCPT TO:<b@example.test>")
  return code, text, c
end

-- The data hook runs as soon as the header section is complete, but its
-- verdict is only given after the final dot (a reply in the middle of
-- DATA would desynchronise the client).
function drive.data(d)
  local c = transaction(d, true, true)
  c:send("From: a@example.test\r\nSubject: hello\r\n\r\nfirst line\r\n")
  assert.is_truthy(d:wait_log("event=data_hook_ran", 5), "the data hook ran before the dot")
  assert.is_true(c:silent_for(0.3), "no reply before the final dot")
  c:send("second line\r\n.\r\n")
  local code, text = c:reply()
  return code, text, c
end

function drive.message(d)
  local c = transaction(d, true, true)
  c:send(MSG .. ".\r\n")
  local code, text = c:reply()
  return code, text, c
end

local STAGES = { "connect", "helo", "mail", "rcpt", "data", "message" }

-- What must hold after a refusal at each stage.
local afterwards = {
  connect = function(c) assert.is_true(c:closed_by_server(), "connection closed") end,
  helo = function(c)
    -- the refused EHLO did not count: MAIL still needs a greeting
    assert.equal(503, (c:cmd("MAIL FROM:<a@example.test>")))
  end,
  mail = function(c)
    -- no transaction was opened
    assert.equal(503, (c:cmd("RCPT TO:<b@example.test>")))
  end,
  rcpt = function(c)
    -- the recipient was not added
    assert.equal(554, (c:cmd("DATA")))
  end,
  data = function(c, d)
    assert.equal(0, #d:queue_files())
    assert.equal(250, (c:cmd("NOOP")))
    assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")), "the transaction was ended")
  end,
  message = function(c, d)
    assert.equal(0, #d:queue_files())
    assert.equal(250, (c:cmd("NOOP")))
    assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")), "the transaction was ended")
  end,
}

local function stage_hook(stage, verdict)
  local mark = stage == "data" and 'indimail.log("data_hook_ran")' or ""
  return ("indimail.hook(%q, function() %s return %s end)"):format(stage, mark, verdict)
end

-- ---- the specification ---------------------------------------------------

describe("Lua hooks", function()
  after_each(cleanup.run)

  describe("a reject verdict", function()
    for _, stage in ipairs(STAGES) do
      it(("at %s is the reply to that command, with exactly its code, status and text"):format(stage), function()
        local code = stage == "connect" and 554 or 553
        local d = start(stage_hook(stage,
          ("indimail.reject(%q, %d, '5.7.9')"):format("Go away from " .. stage, code)))
        local got, text, c = drive[stage](d)
        assert.equal(code, got)
        assert.equal(("%d 5.7.9 Go away from %s"):format(code, stage), text)
        afterwards[stage](c, d)
        local v = events(d, "verdict")
        assert.equal(1, #v)
        assert.same({ stage, "config", "reject", tostring(code), "5.7.9" },
          { v[1].stage, v[1].policy, v[1].action, v[1].code, v[1].status })
      end)
    end

    it("without arguments is 550 5.7.1 Rejected by policy", function()
      local d = start(stage_hook("mail", "indimail.reject()"))
      local _, text = drive.mail(d)
      assert.equal("550 5.7.1 Rejected by policy", text)
    end)
  end)

  describe("a tempfail verdict", function()
    for _, stage in ipairs(STAGES) do
      it(("at %s is a 4xx reply to that command, with exactly its code, status and text"):format(stage), function()
        local code = stage == "connect" and 421 or 450
        local d = start(stage_hook(stage,
          ("indimail.tempfail(%q, %d, '4.7.9')"):format("Later for " .. stage, code)))
        local got, text, c = drive[stage](d)
        assert.equal(code, got)
        assert.equal(("%d 4.7.9 Later for %s"):format(code, stage), text)
        afterwards[stage](c, d)
      end)
    end

    it("without arguments is 451 4.7.1 Try again later", function()
      local d = start(stage_hook("rcpt", "indimail.tempfail()"))
      local _, text = drive.rcpt(d)
      assert.equal("451 4.7.1 Try again later", text)
    end)
  end)

  describe("a discard verdict", function()
    for _, stage in ipairs({ "mail", "rcpt", "data", "message" }) do
      it(("at %s accepts the message with 250 'queued as' but stores nothing"):format(stage), function()
        local d = start(stage_hook(stage, "indimail.discard()"))
        local c = d:session()
        assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
        assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
        assert.equal(354, (c:cmd("DATA")))
        c:send(MSG .. ".\r\n")
        local code, text = c:reply()
        assert.equal(250, code)
        local id = text:match("queued as (%w+)")
        assert.is_truthy(id, text)
        assert.same({}, d:queue_files())
        assert.same({}, d:tmp_files())
        local discarded = wait_events(d, "discarded", 1)
        assert.equal(1, #discarded)
        assert.equal(id, discarded[1].qid)
        assert.equal(0, #events(d, "queued"))
      end)
    end

    it("does not carry over to the next transaction of the session", function()
      local d = start([[
        indimail.hook("mail", function(s, tx)
          if tx.sender == "drop@example.test" then return indimail.discard() end
        end)]])
      local c = d:session()
      local code = c:transaction("drop@example.test", { "b@example.test" }, MSG)
      assert.equal(250, code)
      local code2, text2 = c:transaction("keep@example.test", { "b@example.test" }, MSG)
      assert.equal(250, code2)
      assert.is_truthy(d:queued(text2:match("queued as (%w+)")), "second message stored")
      assert.equal(1, #d:queue_files())
    end)
  end)

  describe("a hook that raises an error", function()
    local d
    setup(function()
      d = D.start{ policies = [[
        indimail.hook("mail", function(session, tx)
          if tx.sender == "boom@example.test" then error("boom") end
          if tx.sender == "table@example.test" then error({}) end
        end)]] }
    end)
    teardown(function() d:cleanup() end)

    it("answers 451 4.3.0 and logs event=hook_error with a traceback naming the error", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      local code, text = c:cmd("MAIL FROM:<boom@example.test>")
      assert.equal(451, code)
      assert.matches("^451 4%.3%.0 ", text)
      assert.not_matches("boom", text, 1, true)   -- internals stay in the log
      local errs = wait_events(d, "hook_error", 1)
      assert.is_true(#errs >= 1)
      local e = errs[#errs]
      assert.equal("mail", e.stage)
      assert.matches("boom", e.traceback, 1, true)
      assert.matches("stack traceback", e.traceback, 1, true)
    end)

    it("leaves the session usable: RSET, NOOP and a new MAIL work", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      assert.equal(451, (c:cmd("MAIL FROM:<boom@example.test>")))
      assert.equal(250, (c:cmd("RSET")))
      assert.equal(250, (c:cmd("NOOP")))
      local code = c:transaction("ok@example.test", { "b@example.test" }, MSG)
      assert.equal(250, code)
    end)

    it("leaves the daemon serving new connections", function()
      local c1 = D.connect(d.ports.smtp)
      c1:reply()
      c1:cmd("EHLO client.example.test")
      assert.equal(451, (c1:cmd("MAIL FROM:<boom@example.test>")))
      c1:close()
      local c = d:connect()
      assert.equal(220, (c:reply()))
      assert.equal(250, (c:cmd("EHLO client.example.test")))
      assert.equal(250, (c:transaction("ok@example.test", { "b@example.test" }, MSG)))
    end)

    it("with an error object that is not a string still answers 451 4.3.0", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      local _, text = c:cmd("MAIL FROM:<table@example.test>")
      assert.matches("^451 4%.3%.0 ", text)
      assert.equal(250, (c:cmd("NOOP")))
    end)
  end)

  describe("a hook that never ends", function()
    local d
    setup(function()
      d = D.start{ limits = "hook_instructions = 100000", policies = [[
        indimail.hook("rcpt", function(session, tx, rcpt)
          if rcpt == "loop@example.test" then while true do end end
          if rcpt == "sneaky@example.test" then
            while true do pcall(function() while true do end end) end
          end
        end)]] }
    end)
    teardown(function() d:cleanup() end)

    it("is stopped by the instruction budget: 451 4.3.0, quickly, logged", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      c:cmd("MAIL FROM:<a@example.test>")
      local t0 = t.now()
      local code, text = c:cmd("RCPT TO:<loop@example.test>")
      local elapsed = t.now() - t0
      assert.equal(451, code)
      assert.matches("^451 4%.3%.0 ", text)
      assert.is_true(elapsed < 1, ("took %.2fs: the budget, not the 5s hook timeout, must stop it"):format(elapsed))
      assert.is_truthy(d:wait_log("event=hook_error[^\n]*instruction budget", 2))
      -- the same session goes on
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
    end)

    it("does not stop the daemon from serving", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      c:cmd("MAIL FROM:<a@example.test>")
      assert.equal(451, (c:cmd("RCPT TO:<loop@example.test>")))
      local c2 = d:connect()
      assert.equal(220, (c2:reply()))
      assert.equal(250, (c2:cmd("EHLO client.example.test")))
      assert.equal(250, (c2:transaction("a@example.test", { "b@example.test" }, MSG)))
    end)

    it("cannot escape the budget by catching its error with pcall", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      c:cmd("MAIL FROM:<a@example.test>")
      c.s:settimeout(8)
      local code, text = c:cmd("RCPT TO:<sneaky@example.test>")
      assert.equal(451, code)
      assert.matches("^451 4%.3%.0 ", text or "")
      local c2 = d:connect()
      c2.s:settimeout(3)
      assert.equal(220, (c2:reply()))
    end)
  end)

  describe("a hook returning a malformed verdict", function()
    local d
    setup(function()
      d = D.start{ policies = [==[
        local bad = {
          number = function() return 42 end,
          string = function() return "reject" end,
          code250 = function() return { action = "reject", code = 250 } end,
          noaction = function() return { code = 550, status = "5.7.1", text = "x" } end,
          unknown = function() return { action = "bounce", code = 550, status = "5.7.1", text = "x" } end,
          classmix = function() return indimail.reject("x", 450, "5.7.1") end,
          status = function() return indimail.reject("x", 550, "4.7.1") end,
          badstatus = function() return indimail.tempfail("x", 451, "4.7") end,
          multiline = function() return indimail.reject("evil\r\n250 2.0.0 fake", 550, "5.7.1") end,
          long = function() return indimail.reject(("x"):rep(401), 550, "5.7.1") end,
          -- fields are read raw, after the hook: no policy code runs then
          metaerror = function()
            return setmetatable({}, { __index = function() error("boom") end })
          end,
          metaloop = function()
            return setmetatable({}, { __index = function() while true do end end })
          end,
          txmeta = function(tx)
            tx.env = nil
            setmetatable(tx, { __index = function() while true do end end })
          end,
        }
        indimail.hook("rcpt", function(session, tx, rcpt)
          local f = bad[rcpt:match("^(.-)@")]
          if f then return f(tx) end
        end)]==] }
    end)
    teardown(function() d:cleanup() end)

    for _, case in ipairs({
      { "number", "42" },
      { "string", '"reject"' },
      { "code250", "{action='reject', code=250}" },
      { "noaction", "a table without action" },
      { "unknown", "action='bounce'" },
      { "classmix", "reject with a 4xx code" },
      { "status", "reject with a 4.x.x status" },
      { "badstatus", "a status that is not x.y.z" },
      { "multiline", "a text with CRLF in it" },
      { "long", "a text over 400 characters" },
      { "metaerror", "a table whose __index raises an error" },
      { "metaloop", "a table whose __index never returns" },
      { "txmeta", "nil tx.env behind an __index that never returns" },
    }) do
      it(("(%s) answers 451 4.3.0 and logs why"):format(case[2]), function()
        local c = d:connect()
        c:reply()
        c:cmd("EHLO client.example.test")
        c:cmd("MAIL FROM:<a@example.test>")
        local before = #events(d, "hook_error")
        local code, text, lines = c:cmd(("RCPT TO:<%s@example.test>"):format(case[1]))
        assert.equal(451, code)
        assert.matches("^451 4%.3%.0 ", text)
        assert.equal(1, #lines, "one reply line only")
        -- nothing injected into the stream: the next reply is NOOP's own
        assert.equal("250 2.0.0 Ok", select(2, c:cmd("NOOP")))
        local errs = wait_events(d, "hook_error", before + 1)
        assert.equal(before + 1, #errs)
        assert.equal("rcpt", errs[#errs].stage)
        assert.is_truthy(errs[#errs].error)
      end)
    end
  end)

  describe("tx.env", function()
    local d
    setup(function()
      d = D.start{ policies = [[
        indimail.hook("mail", function(session, tx)
          assert(next(tx.env) == nil, "tx.env starts empty")
          tx.env.SCORE = "7"
          tx.env.COUNT = 3
          if tx.sender == "nl@example.test" then tx.env.BAD = "two\nlines" end
        end)
        indimail.hook("rcpt", function(session, tx, rcpt)
          tx.env.SEEN_SCORE = tx.env.SCORE
          tx.env["RCPT_" .. (#tx.rcpts + 1)] = rcpt
        end)]] }
    end)
    teardown(function() d:cleanup() end)

    it("values set in mail and rcpt hooks are stored in the envelope", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      local code, text = c:transaction("a@example.test", { "b@example.test", "c@example.test" }, MSG)
      assert.equal(250, code)
      local env = d:queued(text:match("queued as (%w+)"))
      assert.is_truthy(env)
      assert.matches("\nenv SCORE=7\n", env, 1, true)
      assert.matches("\nenv COUNT=3\n", env, 1, true)
      assert.matches("\nenv SEEN_SCORE=7\n", env, 1, true)
      assert.matches("\nenv RCPT_1=b@example.test\n", env, 1, true)
      assert.matches("\nenv RCPT_2=c@example.test\n", env, 1, true)
    end)

    it("starts empty in the next transaction of the same session", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      assert.equal(250, (c:transaction("a@example.test", { "b@example.test" }, MSG)))
      -- the mail hook asserts that tx.env is empty: an error would be 451
      local code, text = c:transaction("a@example.test", { "c@example.test" }, MSG)
      assert.equal(250, code, text)
      local env = d:queued(text:match("queued as (%w+)"))
      assert.not_matches("RCPT_2", env, 1, true)
    end)

    it("refuses a value spanning lines with 451 4.3.0 (no envelope injection) and the worker lives on", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      local code, text = c:cmd("MAIL FROM:<nl@example.test>")
      assert.equal(451, code, text)
      assert.matches("^451 4%.3%.0 ", text)
      assert.equal(250, (c:cmd("NOOP")))
      assert.equal(0, d:count_log("event=worker_died"))
    end)
  end)

  describe("the message object", function()
    local d
    setup(function()
      d = D.start{ policies = [[
        indimail.hook("data", function(session, tx, msg)
          local names = {}
          for _, h in ipairs(msg:headers()) do names[#names + 1] = h.name end
          indimail.log("data_seen", {
            subject = msg:header("Subject"),
            lower = msg:header("subject"),
            folded = msg:header("X-Folded"),
            missing = tostring(msg:header("X-Missing")),
            names = table.concat(names, ","),
          })
        end)
        indimail.hook("message", function(session, tx, msg)
          indimail.log("message_seen", {
            body = msg:body(), text = msg:text(), size = msg:size(),
          })
        end)]] }
    end)
    teardown(function() d:cleanup() end)

    it("in the data hook gives the headers: msg:header(name), msg:headers()", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      local code = c:transaction("a@example.test", { "b@example.test" },
        "From: a@example.test\r\nSubject: hello there\r\nX-Folded: one\r\n two\r\n\r\nbody\r\n")
      assert.equal(250, code)
      local seen = wait_events(d, "data_seen", 1)
      assert.equal(1, #seen)
      assert.equal("hello there", seen[1].subject)
      assert.equal("hello there", seen[1].lower, "names are case-insensitive")
      assert.equal("one two", seen[1].folded, "folded values are unfolded")
      assert.equal("nil", seen[1].missing)
      assert.equal("From,Subject,X-Folded", seen[1].names)
    end)

    it("in the message hook gives the body (msg:body()), the text and the size", function()
      local c = d:connect()
      c:reply()
      c:cmd("EHLO client.example.test")
      local before = #events(d, "message_seen")
      local code = c:transaction("a@example.test", { "b@example.test" }, MSG)
      assert.equal(250, code)
      local seen = wait_events(d, "message_seen", before + 1)
      local m = seen[#seen]
      assert.equal("first line\nsecond line\n", m.body)
      assert.equal("From: a@example.test\nTo: b@example.test\nSubject: hello\n\nfirst line\nsecond line\n", m.text)
      assert.equal(tostring(#m.text), m.size)
    end)
  end)

  describe("the session object", function()
    local POLICY = [[
      indimail.hook("mail", function(session, tx)
        indimail.log("session_seen", {
          ip = session.ip, port = session.port, helo = session.helo,
          tls = tostring(session.tls), tls_version = tostring(session.tls_version),
          esmtp = tostring(session.esmtp), listener = session.listener,
        })
      end)]]

    -- The session_seen record written for a given HELO name.
    local function seen_for(d, helo)
      return D.eventually(function()
        for _, f in ipairs(events(d, "session_seen")) do
          if f.helo == helo then return f end
        end
      end, 5, 0.02)
    end

    it("has the client's address and port, the HELO name and tls=false in clear text", function()
      local d = start(POLICY)
      local c = d:session("plain.client.test")
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
      local f = seen_for(d, "plain.client.test")
      assert.is_truthy(f)
      local _, cport = c.s:getsockname()
      assert.equal("127.0.0.1", f.ip)
      assert.equal(tostring(cport), f.port)
      assert.equal("false", f.tls)
      assert.equal("nil", f.tls_version)
      assert.equal("true", f.esmtp)
      assert.equal("smtp", f.listener)
    end)

    -- TLS needs a TLS client: openssl s_client, bounded by timeout(1).
    local function tls_session(args, helo)
      return D.sh(("(sleep 0.5; printf 'EHLO %s\\r\\n'; sleep 0.3; "
        .. "printf 'MAIL FROM:<a@example.test>\\r\\n'; sleep 0.3; printf 'QUIT\\r\\n'; sleep 0.3) | "
        .. "timeout 10 openssl s_client -quiet %s"):format(helo, args))
    end

    it("has tls=true on the implicit TLS port", function()
      local d = start(POLICY)
      local out = tls_session("-connect 127.0.0.1:" .. d.ports.smtps, "implicit.client.test")
      assert.matches("250 2%.1%.0", out)
      local f = seen_for(d, "implicit.client.test")
      assert.is_truthy(f, out)
      assert.equal("true", f.tls)
      assert.matches("^TLS", f.tls_version)
      assert.equal("smtps", f.listener)
    end)

    it("has tls=true and the new HELO name after STARTTLS", function()
      local d = start(POLICY)
      local out = tls_session("-starttls smtp -connect 127.0.0.1:" .. d.ports.smtp, "starttls.client.test")
      assert.matches("250 2%.1%.0", out)
      local f = seen_for(d, "starttls.client.test")
      assert.is_truthy(f, out)
      assert.equal("true", f.tls)
      assert.equal("127.0.0.1", f.ip)
    end)
  end)

  describe("the verdict log line", function()
    it("names the policy that decided (the third argument of indimail.hook)", function()
      local d = start([[
        indimail.hook("rcpt", function() end, "first")
        indimail.hook("rcpt", function(session, tx, rcpt)
          if rcpt == "blocked@example.test" then
            return indimail.reject("Blocked", 550, "5.7.1")
          end
        end, "mypolicy")]])
      local c = d:session()
      c:cmd("MAIL FROM:<a@example.test>")
      assert.equal("550 5.7.1 Blocked", select(2, c:cmd("RCPT TO:<blocked@example.test>")))
      local v = wait_events(d, "verdict", 1)
      assert.equal(1, #v)
      assert.equal("mypolicy", v[1].policy)
      assert.equal("rcpt", v[1].stage)
      assert.equal("reject", v[1].action)
      assert.equal("Blocked", v[1].text)
      assert.is_truthy(v[1].session)
    end)
  end)
end)

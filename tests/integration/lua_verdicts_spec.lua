-- Hook verdicts over SMTP (docs/lua.md "Verdicts"): accept ends the stage,
-- hold (queued, delivered only after `indimail queue release`), quarantine
-- (delivered to the quarantine mailbox only), discard, reject/tempfail
-- validation, tarpit (the reply waits, other sessions do not); session.notes
-- and tx.notes carried across stages and never into the next session or
-- transaction; session and tx fields that refuse writes with an error
-- naming the field.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local t = D.t

local USERS = "users = { 'alice@example.test', 'bob@example.test',"
  .. " 'quarantine@example.test' }, postmaster = 'alice@example.test'"

local function msg(subject)
  return "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: "
    .. subject .. "\r\n\r\nbody of " .. subject .. "\r\n"
end

local function start(policies, o)
  o = o or {}
  if o.deliver == nil then o.deliver = true end
  o.mailboxes = o.mailboxes or USERS
  o.policies = policies
  return D.start_for_test(o)
end

local function queue_cmd(d, args)
  return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue " .. args)
end

describe("hook verdicts", function()
  after_each(cleanup.run)

  describe("indimail.accept()", function()
    it("ends the stage: later hooks of the stage do not run; nil goes on", function()
      local d = start([[
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^alice@") then return indimail.accept() end
        end, "first")
        indimail.hook("rcpt", function() return indimail.reject("second ran", 550, "5.7.1") end, "second")]])
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<alice@example.test>")))
      local code, text = c:cmd("RCPT TO:<bob@example.test>")
      assert.equal(550, code)
      assert.matches("second ran", text)
    end)
  end)

  describe("indimail.hold(reason)", function()
    it("queues the message, logs event=held, delivers it only after queue release", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          if m:header("Subject") == "hold me" then return indimail.hold("looks odd") end
        end, "holder")]])
      local qid = d:send("bob@example.test", { "alice@example.test" }, msg("hold me"))
      assert.is_truthy(d:wait_log("event=held session=%S+ qid=" .. qid .. " reason=\"?looks odd", 5), d:log())
      assert.is_truthy(d:wait_log("event=verdict .*stage=message policy=holder action=hold", 1))
      local env = d:queued(qid)
      assert.matches("\nhold looks odd\n", env)
      t.sleep(1.5)
      assert.equal(0, #maildir.new_files(d, "alice"), d:log())
      assert.matches(qid .. ".-held", (queue_cmd(d, "list")))
      local out, rc = queue_cmd(d, "release " .. qid)
      assert.equal(0, rc, out)
      assert.is_truthy(maildir.wait(d, "alice"), d:log())
      assert.equal(1, #maildir.new_files(d, "alice"))
    end)

    it("works from the mail and rcpt stages too, and is refused at connect", function()
      local d = start([[
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^bob@") then return indimail.hold("rcpt said so") end
        end, "rcpthold")
        indimail.hook("helo", function(s, helo)
          if helo == "bad.test" then return indimail.hold("x") end
        end, "helohold")]])
      local qid = d:send("alice@example.test", { "bob@example.test" }, msg("rcpt hold"))
      assert.is_truthy(d:wait_log("event=held session=%S+ qid=" .. qid .. " reason=\"rcpt said so\"", 5), d:log())
      t.sleep(1)
      assert.equal(0, #maildir.new_files(d, "bob"))
      local c = d:connect()
      assert.equal(220, (c:reply()))
      local code, text = c:cmd("EHLO bad.test")
      assert.equal(451, code)
      assert.matches("4.3.0", text)
      assert.is_truthy(d:wait_log("hold is only valid in the mail, rcpt, data and message hooks", 2))
    end)
  end)

  describe("indimail.quarantine(address, reason)", function()
    it("from the message stage delivers to the quarantine mailbox only, saying why and for whom", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          if m:body():match("EICAR") then
            return indimail.quarantine("quarantine@example.test", "virus EICAR found")
          end
        end, "av")]])
      local m = "From: bob@example.test\r\nSubject: q\r\n\r\nEICAR test\r\n"
      local qid = d:send("bob@example.test", { "alice@example.test", "bob@example.test" }, m)
      assert.is_truthy(d:wait_log("event=quarantined session=%S+ qid=" .. qid
        .. " address=quarantine@example%.test reason=\"virus EICAR found\" nrcpt=2", 5), d:log())
      local files = maildir.wait(d, "quarantine")
      assert.is_truthy(files, d:log())
      local got = D.readfile(files[1])
      assert.matches("X%-Quarantine%-Reason: virus EICAR found\n", got)
      assert.matches("X%-Quarantine%-Recipients: <alice@example%.test>,\n\t<bob@example%.test>\n", got)
      assert.matches("EICAR test", got)
      t.sleep(1)
      assert.equal(0, #maildir.new_files(d, "alice"))
      assert.equal(0, #maildir.new_files(d, "bob"))
      assert.equal(1, #maildir.new_files(d, "quarantine"))
    end)

    it("from the rcpt stage applies to the whole transaction; a bad address is a 451", function()
      local d = start([[
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^bob@") then return indimail.quarantine("quarantine@example.test", "bob is watched") end
          if rcpt:match("^postmaster@") then return indimail.quarantine("not an address") end
        end, "watch")]])
      local qid = d:send("alice@example.test", { "alice@example.test", "bob@example.test" }, msg("watched"))
      assert.is_truthy(maildir.wait(d, "quarantine"), d:log())
      assert.is_truthy(d:wait_log("event=quarantined session=%S+ qid=" .. qid, 2))
      t.sleep(1)
      assert.equal(0, #maildir.new_files(d, "alice"))
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<alice@example.test>")))
      local code = c:cmd("RCPT TO:<postmaster@example.test>")
      assert.equal(451, code)
      assert.is_truthy(d:wait_log("quarantine needs an address", 2))
    end)
  end)

  describe("indimail.discard()", function()
    it("at rcpt answers 250 and keeps nothing (event=discarded)", function()
      local d = start([[
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^bob@") then return indimail.discard() end
        end)]])
      local c = d:session()
      local code, text = c:transaction("alice@example.test", { "alice@example.test", "bob@example.test" }, msg("gone"))
      assert.equal(250, code, text)
      assert.is_truthy(d:wait_log("event=discarded session=", 2))
      t.sleep(1)
      assert.equal(0, #maildir.new_files(d, "alice"))
      assert.equal(0, #maildir.new_files(d, "bob"))
    end)
  end)

  describe("indimail.reject / indimail.tempfail", function()
    it("refuse a class that does not match (a tempfail with a 5xx is a 451 and a log line)", function()
      local d = start([[
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^alice@") then return indimail.tempfail("busy", 550, "5.7.1") end
          if rcpt:match("^bob@") then return indimail.tempfail("busy now", 452, "4.2.2") end
        end)]])
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")))
      local code, text = c:cmd("RCPT TO:<alice@example.test>")
      assert.equal(451, code)
      assert.matches("4%.3%.0", text)
      assert.is_truthy(d:wait_log("a tempfail needs a 4xx code", 2))
      code, text = c:cmd("RCPT TO:<bob@example.test>")
      assert.equal(452, code)
      assert.matches("4%.2%.2 busy now", text)
    end)
  end)

  describe("indimail.tarpit(seconds)", function()
    it("delays the reply while other sessions are served, then the stage goes on", function()
      local d = start([[
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^bob@") then return indimail.tarpit(2) end
        end, "slow")
        indimail.hook("rcpt", function(s, tx, rcpt)
          if rcpt:match("^bob@") then return indimail.reject("after the wait", 550, "5.7.1") end
        end, "after")]])
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<alice@example.test>")))
      local t0 = t.now()
      c:send("RCPT TO:<bob@example.test>\r\n")
      -- meanwhile another session is served at once
      local c2 = d:session()
      assert.equal(250, (c2:cmd("MAIL FROM:<alice@example.test>")))
      assert.equal(250, (c2:cmd("RCPT TO:<alice@example.test>")))
      assert.is_true(t.now() - t0 < 1.0, "the second session waited")
      local code, text = c:reply()
      local waited = t.now() - t0
      assert.equal(550, code)
      assert.matches("after the wait", text)
      assert.is_true(waited >= 1.8 and waited < 4, "waited " .. waited)
    end)

    it("is bounded by limits.tarpit_max and works at connect (the greeting waits)", function()
      local d = start([[
        indimail.hook("connect", function() return indimail.tarpit(600) end)]],
        { limits = "tarpit_max = 1" })
      local t0 = t.now()
      local c = d:connect()
      assert.equal(220, (c:reply()))
      local waited = t.now() - t0
      assert.is_true(waited >= 0.8 and waited < 3, "waited " .. waited)
    end)
  end)
end)

describe("tx.env in the route hook", function()
  after_each(cleanup.run)

  it("reads what the SMTP hooks wrote, and its own writes reach the next recipients' route hooks", function()
    local d = start([[
      indimail.hook("message", function(s, tx) tx.env.FROM_SMTP = "yes" end)
      indimail.hook("route", function(s, tx, rcpt)
        assert(tx.env.FROM_SMTP == "yes", "tx.env lost on the way to the route hook")
        if rcpt:match("^alice@") then tx.env.SEEN = "alice" end
        if rcpt:match("^bob@") and tx.env.SEEN == "alice" then return indimail.discard() end
      end, "router")]])
    local qid = d:send("bob@example.test", { "alice@example.test", "bob@example.test" }, msg("routed"))
    assert.is_truthy(maildir.wait(d, "alice"), d:log())
    assert.is_truthy(d:wait_log("event=discarded qid=" .. qid .. ".-to=bob@example%.test", 5), d:log())
    assert.equal(0, #maildir.new_files(d, "bob"))
    assert.equal(0, d:count_log("event=hook_error"), d:log())
  end)
end)

describe("session.notes and tx.notes", function()
  after_each(cleanup.run)

  it("carry values from connect to rcpt to message, never into the next transaction or session", function()
    local d = start([[
      indimail.hook("connect", function(s)
        assert(next(s.notes) == nil, "session notes leaked")
        s.notes.seen = "at-connect"
        s.notes.n = 0
      end)
      indimail.hook("mail", function(s, tx)
        assert(next(tx.notes) == nil, "tx notes leaked")
        s.notes.n = s.notes.n + 1
        tx.notes.from = tx.sender
        tx.notes.list = { tx.sender }
      end)
      indimail.hook("rcpt", function(s, tx, rcpt)
        table.insert(tx.notes.list, rcpt)
      end)
      indimail.hook("message", function(s, tx, m)
        tx.env.CARRIED = s.notes.seen .. "/" .. s.notes.n .. "/" .. table.concat(tx.notes.list, ",")
      end)]], { deliver = false })
    local c = d:session()
    local code, text = c:transaction("bob@example.test", { "alice@example.test" }, msg("one"))
    assert.equal(250, code, text)
    local q1 = text:match("queued as (%w+)")
    code, text = c:transaction("alice@example.test", { "bob@example.test" }, msg("two"))
    assert.equal(250, code, text)
    local q2 = text:match("queued as (%w+)")
    c:cmd("QUIT")
    assert.matches("\nenv CARRIED=at%-connect/1/bob@example%.test,alice@example%.test\n", (d:queued(q1)))
    assert.matches("\nenv CARRIED=at%-connect/2/alice@example%.test,bob@example%.test\n", (d:queued(q2)))
    local q3 = d:send("bob@example.test", { "alice@example.test" }, msg("three"))
    assert.matches("\nenv CARRIED=at%-connect/1/bob@example%.test,alice@example%.test\n", (d:queued(q3)))
    assert.equal(0, d:count_log("event=hook_error"), d:log())
  end)

  it("are released when the session ends (a 2 MiB note per session never fills lua_memory)", function()
    local d = start([[
      indimail.hook("mail", function(s, tx)
        s.notes.big = string.rep("s", 2 * 1024 * 1024) .. s.id
        tx.notes.big = string.rep("t", 2 * 1024 * 1024) .. s.id
      end)]], { limits = "lua_memory = 24 * 1024 * 1024" })
    for i = 1, 20 do
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")), "session " .. i .. "\n" .. d:log())
      c:cmd("QUIT")
      c:close()
    end
    assert.equal(0, d:count_log("event=hook_error"))
  end)
end)

describe("session and tx fields", function()
  after_each(cleanup.run)

  local d
  before_each(function()
    d = start([[
      local writes = {
        ip = function(s, tx) s.ip = "10.0.0.1" end,
        sender = function(s, tx) tx.sender = "x@y.test" end,
        unknown = function(s, tx) s.color = "red" end,
        rcpts = function(s, tx) tx.rcpts[1] = "x@y.test" end,
        notes = function(s, tx) tx.notes = {} end,
        env = function(s, tx) tx.env = {} end,
      }
      indimail.hook("rcpt", function(s, tx, rcpt)
        local f = writes[rcpt:match("^(.-)@")]
        if f then f(s, tx) end
        -- reading works as on a table
        local n = 0
        for k in pairs(s) do n = n + 1 end
        assert(n >= 5 and #tx.rcpts >= 0 and s.ip == "127.0.0.1")
      end)]], { mailboxes = USERS .. ", aliases = { ['@example.test'] = 'alice@example.test' }" })
  end)

  for _, case in ipairs({
    { "ip", "field 'ip' of session is read%-only" },
    { "sender", "field 'sender' of tx is read%-only" },
    { "unknown", "session has no field 'color'" },
    { "rcpts", "tx%.rcpts is read%-only" },
    { "notes", "field 'notes' of tx is read%-only" },
    { "env", "field 'env' of tx is read%-only" },
  }) do
    it(("refuse a write to %s: 451 4.3.0, the log names the field"):format(case[1]), function()
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")))
      local code, text = c:cmd("RCPT TO:<" .. case[1] .. "@example.test>")
      assert.equal(451, code)
      assert.matches("4%.3%.0", text)
      assert.is_truthy(d:wait_log("event=hook_error .*" .. case[2], 2), d:log())
      assert.equal(250, (c:cmd("RCPT TO:<alice@example.test>")))
    end)
  end
end)

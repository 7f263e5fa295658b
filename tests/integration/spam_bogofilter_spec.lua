-- lua/policies/spam.lua with engine "bogofilter" over SMTP: a real
-- bogofilter and a word list trained once for the file through
-- `indimail spam train` (tests/helpers/bogofilter.lua). A spammy message
-- gets the configured verdict (550 5.7.1, or the quarantine mailbox) and
-- X-Bogosity: Spam; a hammy one is delivered with X-Bogosity: Ham and
-- X-Spam-Status: No; a client's own X-Bogosity is replaced; a bogofilter
-- that is missing, broken or slow gives the on_error behaviour (pass by
-- default, 451 4.7.1 with "tempfail"), a slow one only after the policy's
-- timeout while the worker serves others; the child inherits no
-- descriptor but its three pipes.
local D = require("daemon")
local cleanup = require("cleanup")
local bogo = require("bogofilter")
local maildir = require("maildir")
local t = D.t

local USERS = "users = { 'alice@example.test', 'spam@example.test' }"

local function start(settings)
  return D.start_for_test{ mailboxes = USERS, deliver = true,
    policies = ("indimail.policy('spam', { %s })"):format(settings) }
end

local function send(d, msg)
  local c = d:session()
  local code, text = c:transaction("joe@ok.test", { "alice@example.test" }, msg)
  c:cmd("QUIT")
  return code, text
end

local function spam_line(d, ...) return d:wait_event("spam", { ... }) end

local function delivered(d, user)
  local files = maildir.wait(d, user or "alice", 1)
  assert.truthy(files, d:log())
  return D.readfile(files[1])
end

describe("spam policy (bogofilter)", function()
  local scratch, words

  setup(function()
    scratch = D.mktemp("bogofilter")
    words = bogo.train(scratch .. "/wordlist")
  end)

  teardown(function() D.rmtemp(scratch) end)

  after_each(cleanup.run)

  describe("with a trained word list", function()
    it("trained the word list through `indimail spam train` (bogofilter itself says spam and ham)", function()
      local f = scratch .. "/spam.eml"
      D.writefile(f, bogo.SPAM)
      assert.matches("^X%-Bogosity: Spam", D.sh(("bogofilter -d %s -v < %s"):format(words, f)))
      D.writefile(f, bogo.HAM)
      assert.matches("^X%-Bogosity: Ham", D.sh(("bogofilter -d %s -v < %s"):format(words, f)))
    end)

    it("delivers a hammy message with X-Bogosity: Ham and X-Spam-Status: No, logs event=spam class=ham", function()
      local d = start(("bogofilter = { dir = %q }, reject_above = 0.99"):format(words))
      local code, text = send(d, bogo.HAM)
      assert.are.equal(250, code, text)
      local m = delivered(d)
      assert.matches("\nX%-Bogosity: Ham, tests=bogofilter, spamicity=[%d.]+, version=", m)
      assert.matches("\nX%-Spam%-Status: No, score=[%d.]+ tests=bogofilter", m)
      assert.matches("\nX%-Spam%-Score: [%d.]+", m)
      assert.truthy(spam_line(d, "engine=bogofilter", "class=ham", "score=[%d.]+", "ms=%d+", "action=queue"), d:log())
    end)

    it("refuses a spammy message with 550 5.7.1 above reject_above, logs class=spam action=reject", function()
      local d = start(("bogofilter = { dir = %q }, reject_above = 0.99"):format(words))
      local code, text = send(d, bogo.SPAM)
      assert.are.equal(550, code, text)
      assert.matches("5%.7%.1 Message looks like spam %(bogofilter score 1%.0000%)", text)
      assert.truthy(spam_line(d, "class=spam", "action=reject"), d:log())
      assert.are.equal(0, #d:queue_files())
    end)

    it("quarantines a spammy message with X-Bogosity: Spam above quarantine_above", function()
      local d = start(("bogofilter = { dir = %q }, quarantine_above = 0.9, quarantine = 'spam@example.test'")
        :format(words))
      local code, text = send(d, bogo.SPAM)
      assert.are.equal(250, code, text)
      local m = delivered(d, "spam")
      assert.matches("\nX%-Bogosity: Spam, tests=bogofilter, spamicity=1%.000000", m)
      assert.matches("\nX%-Spam%-Status: Yes, score=1%.0000", m)
      assert.matches("X%-Quarantine%-Reason: spam bogofilter score", m)
      assert.are.equal(0, #maildir.new_files(d, "alice"))
      assert.truthy(spam_line(d, "class=spam", "action=quarantine"), d:log())
    end)

    it("only tags spam when no threshold is set, and replaces the client's own X-Bogosity", function()
      local d = start(("bogofilter = { dir = %q }"):format(words))
      local code, text = send(d, "X-Bogosity: Ham, forged\r\n" .. bogo.SPAM)
      assert.are.equal(250, code, text)
      local m = delivered(d)
      assert.matches("\nX%-Bogosity: Spam", m)
      assert.is_nil(m:find("forged", 1, true))
    end)

    it("runs the child with no descriptor of the daemon's but its three pipes", function()
      local dir = D.scratch_dir("fds")
      local d = start(("bogofilter = { dir = %q, path = %q }"):format(words, bogo.fake(dir, "fds")))
      local code, text = send(d, bogo.HAM)
      assert.are.equal(250, code, text)
      local fds = D.eventually(function() return D.readfile(dir .. "/fds.out") end, 5)
      assert.truthy(fds, d:log())
      -- what the spec itself was started with is inherited by everything
      local outside = D.sh("find /proc/self/fd/ -mindepth 1 -exec readlink {} \\;")
      local own = {}
      for fd, target in fds:gmatch("(%d+)=(%S+)") do
        fd = tonumber(fd)
        if fd > 2 and not target:find("fds.out", 1, true) and not outside:find(target, 1, true) then
          own[#own + 1] = fd .. "=" .. target
        end
      end
      assert.are.same({}, own)
      assert.matches("^0=socket:%S+ 1=socket:%S+ 2=socket:", fds)
    end)
  end)

  describe("when bogofilter fails", function()
    it("passes the message untagged when the program is missing (on_error default pass)", function()
      local d = start(("bogofilter = { dir = %q, path = %q }"):format(words, scratch .. "/no-such-bogofilter"))
      local code, text = send(d, bogo.SPAM)
      assert.are.equal(250, code, text)
      local m = delivered(d)
      assert.is_nil(m:find("X-Bogosity", 1, true))
      assert.truthy(spam_line(d, "result=error", "on_error=pass", "cannot run it: no such file"), d:log())
    end)

    it("answers 451 4.7.1 when bogofilter exits with an error and on_error = 'tempfail'", function()
      local d = start(("bogofilter = { dir = %q, path = %q }, on_error = 'tempfail'")
        :format(words, bogo.fake(D.scratch_dir("fake"), "broken")))
      local code, text = send(d, bogo.HAM)
      assert.are.equal(451, code, text)
      assert.matches("4%.7%.1 Spam filter unavailable", text)
      assert.truthy(spam_line(d, "result=error", "exit status 3: Can't open file"), d:log())
      assert.are.equal(0, #d:queue_files())
    end)

    it("kills a slow bogofilter after the policy's timeout, then on_error; the worker serves others meanwhile", function()
      local fake = D.scratch_dir("fake")
      local d = start(("bogofilter = { dir = %q, path = %q }, timeout = 1.5, on_error = 'tempfail'")
        :format(words, bogo.fake(fake, "slow")))
      local c = d:session()
      local t0 = t.now()
      assert.are.equal(250, (c:cmd("MAIL FROM:<joe@ok.test>")))
      assert.are.equal(250, (c:cmd("RCPT TO:<alice@example.test>")))
      assert.are.equal(354, (c:cmd("DATA")))
      c:send(bogo.HAM .. ".\r\n")
      local c2 = d:session()
      assert.are.equal(250, (c2:cmd("NOOP")))
      assert.is_true(t.now() - t0 < 1.0)
      local code, text = c:reply()
      local took = t.now() - t0
      assert.are.equal(451, code, text)
      assert.is_true(took >= 1.4 and took < 4, "took " .. took)
      assert.truthy(spam_line(d, "result=error", "no answer in time"), d:log())
      -- the child (by then its sleep, exec'd) was killed and reaped
      local pid = assert(tonumber(D.readfile(fake .. "/slow.pid")), "no slow.pid")
      assert.truthy(D.eventually(function()
        local stat = D.readfile("/proc/" .. pid .. "/stat")
        return stat == nil or not stat:find("sleep", 1, true)
      end, 3), "the slow fake still runs: " .. tostring(D.readfile("/proc/" .. pid .. "/stat")))
      c2:cmd("QUIT")
      c:cmd("QUIT")
    end)
  end)
end)

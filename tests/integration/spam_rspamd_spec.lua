-- lua/policies/spam.lua with engine "rspamd" over SMTP against Debian's
-- rspamd, started once for the file (tests/helpers/rspamd.lua: its own
-- config, 127.0.0.1 ports, no redis): GTUBE is refused with 550 5.7.1 by
-- rspamd's reject action, a clean message is delivered with X-Spam-Status:
-- No and its X-Spam-Score, rspamd down gives the on_error behaviour.
local D = require("daemon")
local cleanup = require("cleanup")
local rspamd = require("rspamd")
local maildir = require("maildir")

local USERS = "users = { 'alice@example.test' }"

local function start(settings)
  return D.start_for_test{ mailboxes = USERS, deliver = true,
    policies = ("indimail.policy('spam', { engine = 'rspamd', %s })"):format(settings) }
end

-- A well-formed message (rspamd gives it "no action").
local function message(body)
  return "From: Joe Sender <joe@ok.test>\r\nTo: Alice <alice@example.test>\r\n"
    .. "Date: Mon, 01 Dec 2025 10:00:00 +0000\r\nMessage-ID: <m1@ok.test>\r\n"
    .. "Subject: lunch on friday\r\n\r\n" .. body .. "\r\n"
end

local function send(d, msg)
  local c = d:session()
  local code, text = c:transaction("joe@ok.test", { "alice@example.test" }, msg)
  c:cmd("QUIT")
  return code, text
end

local function spam_line(d, ...) return d:wait_event("spam", { ... }) end

describe("spam policy (rspamd over HTTP)", function()
  local scratch, r

  setup(function()
    scratch = D.mktemp("rspamd")
    r = rspamd.start{ dir = scratch }
    print(("rspamd started in %.1f s"):format(r.started_in))
  end)

  teardown(function()
    if r then r.stop() end
    D.rmtemp(scratch)
  end)

  after_each(cleanup.run)

  it("refuses GTUBE with 550 5.7.1 (rspamd's reject action), logs event=spam engine=rspamd", function()
    local d = start(("rspamd = { host = '127.0.0.1', port = %d }"):format(r.port))
    local code, text = send(d, message(rspamd.GTUBE))
    assert.are.equal(550, code, text)
    assert.matches("5%.7%.1 Message refused as spam %(rspamd score 15", text)
    assert.truthy(spam_line(d, "engine=rspamd", "class=spam", "action=reject", "ms=%d+"), d:log())
    assert.are.equal(0, #d:queue_files())
  end)

  it("delivers a clean message with X-Spam-Status: No and its X-Spam-Score", function()
    local d = start(("rspamd = { host = '127.0.0.1', port = %d }"):format(r.port))
    local code, text = send(d, message("See you at noon by the fountain, bring the report."))
    assert.are.equal(250, code, text)
    local files = maildir.wait(d, "alice", 1)
    assert.truthy(files, d:log())
    local m = D.readfile(files[1])
    assert.matches("\nX%-Spam%-Status: No, score=%-?[%d.]+ required=15%.00 action=no action", m)
    assert.matches("\nX%-Spam%-Score: %-?[%d.]+", m)
    assert.truthy(spam_line(d, "engine=rspamd", "class=ham"), d:log())
  end)

  it("passes the message when rspamd is down (on_error default pass), 451 4.7.1 with tempfail", function()
    local port = D.free_tcp_port()
    local d = start(("rspamd = { host = '127.0.0.1', port = %d }"):format(port))
    local code, text = send(d, message(rspamd.GTUBE))
    assert.are.equal(250, code, text)
    assert.truthy(spam_line(d, "result=error", "on_error=pass", "connection refused"), d:log())
    d = start(("rspamd = { host = '127.0.0.1', port = %d }, on_error = 'tempfail'"):format(port))
    code, text = send(d, message("hello"))
    assert.are.equal(451, code, text)
    assert.matches("4%.7%.1 Spam filter unavailable", text)
  end)
end)

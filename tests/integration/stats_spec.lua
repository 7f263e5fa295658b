-- `indimail stats` (src/cli/stats.c, docs/operations.md "Log reports"):
-- a real daemon takes a known mix of mail (two local deliveries, one
-- recipient refused by a named policy, one deferred and one bounced by a
-- scripted remote server, the bounce delivered back), then the report of
-- its log must give the exact counts; --since filters by time; --html
-- writes one page with its SVG charts and a hostile sender escaped.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")
local maildir = require("maildir")

local HOSTILE = '"<script>alert(1)</script>"@x.test'

local POLICY = [[
indimail.hook("rcpt", function(session, tx, rcpt)
  if rcpt == "blocked@example.test" then
    return indimail.reject("Mailbox closed <b>", 550, "5.7.1")
  end
end, "closed_boxes")
]]

local function message(subject)
  return "From: bob@example.test\r\nTo: someone\r\nSubject: " .. subject
    .. "\r\n\r\nbody\r\n"
end

-- The report of the daemon's log (and extra args), and its exit status.
local function stats(args)
  local out = D.sh(D.bin .. "/indimail stats " .. args .. " ; echo rc=$?")
  return out, tonumber(out:match("rc=(%d+)%s*$"))
end

local function total(report, name)
  return tonumber(report:match("\n  " .. name .. " +(%d+)"))
end

-- Starts the daemon and the remote, sends the mix, waits for its outcome.
local function run_mix()
  local port = D.free_tcp_port()
  local fake = fake_smtp.start(D.scratch_dir("stats"), "127.0.0.4", port, {
    rcpt = { ["soft@remote.test"] = { "451 4.3.0 try later" },
             ["hard@remote.test"] = { "550 5.1.1 no such user here" } } })
  local d = D.start_for_test{ deliver = true, policies = POLICY,
    relay_from = "'127.0.0.0/8'",
    mailboxes = "users = { 'alice@example.test', 'bob@example.test', 'blocked@example.test' }",
    routes = ("['remote.test'] = { host = '127.0.0.4', port = %d, "
      .. "retry = { base = 3600, max = 3600 } }"):format(port) }
  d:send("bob@example.test", { "alice@example.test" }, message("local"))
  d:send(HOSTILE, { "alice@example.test" }, message("hostile"))
  d:send("bob@example.test", { "soft@remote.test" }, message("soft"))
  d:send("bob@example.test", { "hard@remote.test" }, message("hard"))
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")))
  assert.equal(550, (c:cmd("RCPT TO:<blocked@example.test>")))
  assert.equal(550, (c:cmd("RCPT TO:<nobody@example.test>")))
  c:cmd("QUIT")
  assert.is_truthy(maildir.wait(d, "alice", 2), d:log())
  assert.is_truthy(maildir.wait(d, "bob", 1), "the bounce: " .. d:log())
  assert.is_truthy(d:wait_log("event=deferred[^\n]*soft@remote.test", 10), d:log())
  return d, fake
end

local function sizes(log)
  local n = 0
  for size in log:gmatch("event=queued [^\n]* size=(%d+)") do n = n + tonumber(size) end
  return n
end

local OLD_LINE = '2020-01-01T10:00:00.000000Z smtp[1] info event=queued session=1.1 '
  .. 'qid=OLD from=old@old.test nrcpt=1 to=x@old.test size=1000 ms=1\n'

describe("indimail stats", function()
  local DIR, LOG, TEXT
  after_each(cleanup.run)

  -- One daemon run for every test below: its log is copied to DIR.
  setup(function()
    local d = run_mix()
    TEXT = d:log()
    DIR = D.mktemp("stats-log")
    LOG = DIR .. "/indimail.log"
    D.writefile(LOG, TEXT)
    cleanup.run()
  end)
  teardown(function() D.rmtemp(DIR) end)

  it("counts received, delivered, deferred, bounced and rejected exactly", function()
    local out, rc = stats(LOG)
    assert.equal(0, rc, out)
    assert.equal(4, total(out, "received"), out)
    assert.truthy(out:find(("received +4  %%(%d bytes%%)"):format(sizes(TEXT))), out)
    assert.equal(3, total(out, "delivered"), out)     -- two, and the bounce to bob
    assert.equal(1, total(out, "deferred"), out)
    assert.equal(1, total(out, "bounced"), out)
    assert.truthy(out:find("1 bounce messages sent", 1, true), out)
    assert.equal(2, total(out, "rejected"), out)
    assert.equal(5, total(out, "connections"), out)
  end)

  it("lists the top senders, domains, clients and rejections by policy", function()
    local out = stats("--top 1 " .. LOG)
    assert.truthy(out:find("Top senders\n         3  bob@example.test\n\n", 1, true), out)
    assert.truthy(out:find("Top recipient domains\n         2  example.test\n", 1, true), out)
    assert.truthy(out:find("Top client addresses (connections)\n         5  127.0.0.1\n", 1, true), out)
    local all = stats(LOG)
    assert.truthy(all:find("\n         1  closed_boxes\n", 1, true), all)
    assert.truthy(all:find("\n         1  smtp RCPT\n", 1, true), all)
    assert.truthy(all:find("\n         1  550 5.7.1 Mailbox closed <b>\n", 1, true), all)
  end)

  it("gives the delay percentiles and the traffic of the hour", function()
    local out = stats(LOG)
    assert.truthy(out:find("p50 %d+  p90 %d+  p99 %d+  max %d+  %(3 deliveries%)"), out)
    local hour = TEXT:match("T(%d%d):%d%d:%d%d%.%d+Z %a+%[%d+%] info event=queued")
    assert.truthy(out:find("\n  " .. hour .. " +4 +3 +1 +1 +2\n"), out)
  end)

  it("reads standard input when no file is named", function()
    local out = stats("< " .. LOG)
    assert.equal(4, total(out, "received"), out)
  end)

  it("skips lines before --since (relative or ISO time)", function()
    local mixed = DIR .. "/mixed.log"
    D.writefile(mixed, OLD_LINE .. TEXT .. "not a log line\n")
    local all = stats(mixed)
    assert.equal(5, total(all, "received"), all)
    assert.truthy(all:find("1 not log lines", 1, true), all)
    assert.equal(4, total(stats("--since 24h " .. mixed), "received"))
    assert.equal(4, total(stats("--since 2021-06-01 " .. mixed), "received"))
    assert.equal(5, total(stats("--since 2019-12-31T23:00 " .. mixed), "received"))
    local none = stats("--since 2999-01-01T00:00:00Z " .. mixed)
    assert.equal(0, total(none, "received"), none)
    assert.truthy(none:find("no log lines", 1, true), none)
  end)

  it("refuses a --since or --top it cannot read, and a missing file", function()
    local out, rc = stats("--since yesterday " .. LOG .. " 2>&1")
    assert.equal(2, rc)
    assert.truthy(out:find("--since yesterday: not 24h", 1, true), out)
    out, rc = stats("--top 0 " .. LOG .. " 2>&1")
    assert.equal(2, rc, out)
    out, rc = stats(DIR .. "/absent.log 2>&1")
    assert.equal(1, rc, out)
    assert.truthy(out:find("cannot read " .. DIR .. "/absent.log", 1, true), out)
  end)

  it("says there is no delay to chart when no delivered line has a delay", function()
    local log, page = DIR .. "/nodelay.log", DIR .. "/nodelay.html"
    D.writefile(log, '2026-12-02T00:50:38.687633Z qmgr[1] info event=delivered qid=06B0F6B5E98C4F0030A70001'
      .. ' to=a@b.test reply="250 ok"\n')
    local out, rc = stats("--html " .. page .. " " .. log)
    assert.equal(0, rc, out)
    local html = assert(D.readfile(page))
    assert.truthy(html:find("<p>no deliveries with a delay</p>", 1, true), html)
    assert.falsy(html:find('aria-label="delivery delay distribution"', 1, true))
  end)

  it("writes one self-contained HTML page with SVG charts, escaping the log's values", function()
    local page = DIR .. "/report.html"
    local out, rc = stats("--html " .. page .. " " .. LOG)
    assert.equal(0, rc, out)
    local html = assert(D.readfile(page))
    local svgs = 0
    for _ in html:gmatch("<svg ") do svgs = svgs + 1 end
    assert.equal(3, svgs, html)   -- traffic per hour, delay, top rejections
    assert.truthy(html:find('aria-label="traffic per hour"', 1, true))
    assert.truthy(html:find('aria-label="delivery delay distribution"', 1, true))
    assert.truthy(html:find('aria-label="top rejections"', 1, true))
    assert.truthy(html:find("&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;@x.test", 1, true), html)
    assert.truthy(html:find("Mailbox closed &lt;b&gt;", 1, true), html)
    assert.falsy(html:lower():find("<script", 1, true))
    assert.falsy(html:find("<b>", 1, true))
    -- nothing fetched from elsewhere: the only URL is the SVG namespace
    local urls = html:gsub('xmlns="http://www.w3.org/2000/svg"', "")
    assert.falsy(urls:find("https?://"), "an external URL")
    assert.falsy(html:find("<link", 1, true) or html:find(" src=", 1, true))
  end)
end)

-- The log on SIGHUP and its formats (docs/operations.md "Logs"): logrotate
-- renames the file and sends SIGHUP, after which every process writes to
-- a new file and nothing written before is lost; log.format = "json"
-- writes one JSON object per line that Python's strict parser reads, with
-- a peer's bytes (quotes, controls, invalid UTF-8) escaped, and that
-- `indimail stats` reads too; log.syslog sends the lines as syslog
-- datagrams to a socket the spec binds itself; a changed log.file is not
-- applied by a reload, and the log says so.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local SINK = D.root .. "/tests/clients/syslog_sink.py"
local JSON_LINES = D.root .. "/tests/clients/json_lines.py"
local MESSAGE = "Subject: log\r\n\r\nbody\r\n"

-- The config with its log = { } line replaced by fields (Lua text).
local function set_log(d, fields)
  local text = D.readfile(d.config)
  local new, n = text:gsub("\n  log = {[^\n]*\n", "\n  log = { " .. fields .. " },\n", 1)
  assert.equal(1, n)
  D.writefile(d.config, new)
end

-- SIGHUP; waits until both workers and the queue manager reloaded.
local function reload(d, pattern)
  assert.is_truthy(d:signal("HUP"))
  assert.is_truthy(D.eventually(function()
    local _, n = d:log():gsub(pattern, "")
    return n >= 3
  end, 10), "every child reloaded: " .. d:log():sub(-2000))
end

describe("the log on SIGHUP", function()
  after_each(cleanup.run)

  it("logrotate's rename: new lines land in a new file, the old one keeps everything before", function()
    local d = D.start_for_test{ workers = 2 }
    local log = d.dir .. "/indimail.log"
    local qid1 = d:send("a@example.test", { "b@example.test" }, MESSAGE)
    assert.is_truthy(d:wait_log("event=queued[^\n]*" .. qid1, 5))
    local owner = D.sh("stat -c '%U %a' " .. log)
    D.sh(("mv %s %s.1"):format(log, log))
    reload(d, "event=reloaded")
    assert.is_truthy(d:wait_log("event=log_reopened", 5))
    local qid2 = d:send("a@example.test", { "b@example.test" }, MESSAGE)
    assert.is_truthy(d:wait_log("event=queued[^\n]*" .. qid2, 5))
    local old = D.readfile(log .. ".1")
    assert.is_truthy(old:find("event=ready", 1, true) and old:find(qid1, 1, true), "the old file keeps its lines")
    assert.is_falsy(old:find(qid2, 1, true), "nothing after the reload in the old file")
    assert.is_falsy(old:find("event=reloaded", 1, true), "the children switched before logging")
    for _, role in ipairs({ "master", "smtp", "qmgr" }) do
      assert.is_truthy(d:log():find(" " .. role .. "%[%d+%] "), role .. " writes to the new file")
    end
    assert.equal(owner, D.sh("stat -c '%U %a' " .. log), "same owner and mode")
  end)

  it("a changed log.file is kept until a restart, and the log says so", function()
    local d = D.start_for_test{}
    set_log(d, ("file = %q, level = 'debug'"):format(d.dir .. "/other.log"))
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=reload_log_kept reason=\"log.file changes need a restart", 5))
    assert.is_falsy(D.readfile(d.dir .. "/other.log"))
  end)
end)

describe("log.format = json and log.syslog", function()
  after_each(cleanup.run)

  it("writes JSON lines Python parses, escapes a peer's bytes, and sends each line to syslog", function()
    local d = D.start_for_test{ workers = 2 }
    local sock, got = d.dir .. "/syslog.sock", d.dir .. "/syslog.out"
    local out = d.dir .. "/sink.stdout"
    local pid = assert(t.spawn({ "python3", SINK, sock, got }, out))
    cleanup.defer(function() D.stop_pid(pid) end)
    assert.is_truthy(D.eventually(function() return (D.readfile(out) or ""):find("ready") end, 5))
    local from = #d:log()
    set_log(d, ("file = %q, level = 'debug', format = 'json', syslog = 'mail', syslog_socket = %q")
      :format(d.dir .. "/indimail.log", sock))
    reload(d, '"event":"reloaded"')
    local peer = 'GET /"q\1\255\195(\\x41'
    local c = d:connect()
    c:reply()
    c:send(peer .. "\r\n")
    assert.is_truthy(d:wait_log('"event":"not_smtp"', 5))
    d:send("a@example.test", { "b@example.test" }, MESSAGE)
    assert.is_truthy(d:wait_log('"event":"queued"', 5))
    local check = D.sh(("python3 %s %s %d"):format(JSON_LINES, d.dir .. "/indimail.log", from))
    assert.is_truthy(check:match("\nok %d+%s*$") or check:match("^ok %d+"), check)
    local hex = peer:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end)
    assert.is_truthy(check:find("line " .. hex, 1, true), "the peer's bytes round-trip: " .. check)
    -- syslog: the same JSON, facility mail (2), info (6): <22>
    assert.is_truthy(D.eventually(function()
      return (D.readfile(got) or ""):find('"event":"queued"', 1, true)
    end, 5), "syslog got the lines")
    local sys = D.readfile(got)
    assert.is_truthy(sys:find("<22>%a%a%a [ %d]%d %d%d:%d%d:%d%d indimail/smtp%[%d+%]: {"), sys:sub(1, 400))
    assert.is_truthy(sys:find("<20>%a%a%a [ %d]%d %d%d:%d%d:%d%d indimail/smtp%[%d+%]: {[^\n]*\"event\":\"not_smtp\""),
      "warnings are <20>")
    -- indimail stats reads JSON lines
    local part = d.dir .. "/json-part.log"
    D.writefile(part, d:log():sub(from + 1))
    local report = D.sh(D.bin .. "/indimail stats " .. part)
    assert.equal("1", report:match("\n  received +(%d+)"), report)
  end)
end)

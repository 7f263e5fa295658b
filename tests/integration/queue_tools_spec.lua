-- The queue tools: `indimail queue list|show|hold|release|flush|remove`
-- (src/cli/indimail.c) and the queue manager's control socket they talk
-- to (<queue.path>/qmgr.sock: one request line, answer lines ending with
-- "ok N" or "error ..."); and messages surviving a kill -9 of everything
-- while a delivery is in progress (the state journal: delivered once).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local socket = require("socket")
local unix = require("socket.unix")
local t = D.t

-- A scripted SMTP server, the same as in delivery_remote_spec.lua (see
-- there for every option): one process, many clients. Here only
-- greeting_delay = { [n] = secs } is used. It appends to dir/events.log
-- (CONNECT n, CMD n line, MESSAGE n k ...) and writes each message to dir/msg.k.
local FAKE_MX = [==[
-- fake MX: a scripted SMTP server (luasocket, one process, many clients).
-- arg[1]: a Lua file returning { address=, port=, dir=, greeting = {[n]=reply},
-- greeting_delay = {[n]=secs}, rcpt = {[addr]={reply1, reply2, ...}},
-- hang = {{conn=n, cmd="RCPT"}}, pipelining = bool, data_reply = {reply1, ...}
-- (nth end of data), dot_delay = secs, auth = {user=, password=, mechs=} }.
-- Writes dir/events.log
-- (CONNECT n / CMD n line / MESSAGE n k / HANG n cmd / EOF n / CLOSE n)
-- and dir/msg.k (envelope lines, a blank line, the unstuffed data).
local socket = require("socket")
local mime = require("mime")
local conf = dofile(arg[1])
local srv = assert(socket.bind(conf.address, conf.port, 64))
srv:settimeout(0)
local ev = assert(io.open(conf.dir .. "/events.log", "a"))
ev:setvbuf("no")
local function log(...) ev:write(table.concat({ ... }, " "), "\n") end
local conns, nconn, nmsg, ndata, seen = {}, 0, 0, 0, {}

local function readline(c)
  while true do
    local i = c.buf:find("\n", 1, true)
    if i then
      local line = c.buf:sub(1, i - 1):gsub("\r$", "")
      c.buf = c.buf:sub(i + 1)
      return line
    end
    if c.eof then return nil end
    coroutine.yield()
  end
end

local function send(c, s)
  c.sock:settimeout(5)
  c.sock:send(s .. "\r\n")
  c.sock:settimeout(0)
end

local function sleep(c, secs)
  c.wake = socket.gettime() + secs
  coroutine.yield()
end

local function hangs(n, cmd)
  for _, h in ipairs(conf.hang or {}) do
    if (h.conn == nil or h.conn == n) and h.cmd == cmd then return true end
  end
end

local function hang(c, n, cmd)
  log("HANG", n, cmd)
  while readline(c) do end
  log("EOF", n)
end

local function session(c)
  nconn = nconn + 1
  local n = nconn
  log("CONNECT", n)
  local delay = conf.greeting_delay and conf.greeting_delay[n] or conf.greeting_delay_all
  if delay then sleep(c, delay) end
  if hangs(n, "CONNECT") then return hang(c, n, "CONNECT") end
  local greeting = conf.greeting and conf.greeting[n] or "220 fake.test ESMTP"
  send(c, greeting)
  if greeting:sub(1, 1) ~= "2" then
    log("CLOSE", n)
    return
  end
  local mail, rcpts, authed
  local function auth_ok(user, pass)
    authed = user == conf.auth.user and pass == conf.auth.password
    log(authed and "AUTH_OK" or "AUTH_FAILED", n, tostring(user))
    send(c, authed and "235 2.7.0 Authentication successful" or "535 5.7.8 Authentication failed")
  end
  while true do
    local line = readline(c)
    if not line then
      log("EOF", n)
      return
    end
    log("CMD", n, line)
    local verb = (line:match("^(%a+)") or ""):upper()
    if hangs(n, verb) then return hang(c, n, verb) end
    if verb == "EHLO" then
      send(c, "250-fake.test\r\n" .. (conf.pipelining == false and "" or "250-PIPELINING\r\n")
        .. (conf.auth and ("250-AUTH " .. (conf.auth.mechs or "PLAIN LOGIN") .. "\r\n") or "")
        .. "250-8BITMIME\r\n250 SIZE 100000000")
    elseif verb == "AUTH" and conf.auth then
      local mech, initial = line:match("^%a+%s+(%S+)%s*(%S*)")
      mech = (mech or ""):upper()
      if mech == "PLAIN" then
        if initial == "" then
          send(c, "334 ")
          initial = readline(c) or ""
        end
        local _, user, pass = ((mime.unb64(initial)) or ""):match("^([^%z]*)%z([^%z]*)%z(.*)$")
        auth_ok(user, pass)
      elseif mech == "LOGIN" then
        send(c, "334 VXNlcm5hbWU6")
        local user = mime.unb64(readline(c) or "")
        send(c, "334 UGFzc3dvcmQ6")
        local pass = mime.unb64(readline(c) or "")
        auth_ok(user, pass)
      else
        send(c, "504 5.5.4 Unrecognized authentication type")
      end
    elseif verb == "MAIL" and conf.auth and not authed then
      send(c, "530 5.7.0 Authentication required")
    elseif verb == "HELO" then
      send(c, "250 fake.test")
    elseif verb == "MAIL" and mail then
      -- like Postfix: the transaction is open until "." is answered or RSET
      log("NESTED_MAIL", n)
      send(c, "503 5.5.1 Error: nested MAIL command")
    elseif verb == "MAIL" then
      mail, rcpts = line:match("<(.-)>") or "", {}
      send(c, "250 2.1.0 Ok")
    elseif verb == "RCPT" and not mail then
      send(c, "503 5.5.1 Error: need MAIL command")
    elseif verb == "RCPT" then
      local addr = line:match("<(.-)>") or ""
      seen[addr] = (seen[addr] or 0) + 1
      local list = conf.rcpt and conf.rcpt[addr]
      local r = list and (list[seen[addr]] or list[#list]) or "250 2.1.5 Ok"
      if r:sub(1, 1) == "2" then rcpts[#rcpts + 1] = addr end
      send(c, r)
    elseif verb == "DATA" then
      if not mail or #rcpts == 0 then
        send(c, "554 5.5.1 No valid recipients")
      else
        send(c, "354 End data with <CR><LF>.<CR><LF>")
        local data = {}
        while true do
          local l = readline(c)
          if not l then
            log("EOF", n)
            return
          end
          if l == "." then break end
          if l:sub(1, 1) == "." then l = l:sub(2) end
          data[#data + 1] = l
        end
        if hangs(n, ".") then return hang(c, n, ".") end
        if conf.dot_delay then sleep(c, conf.dot_delay) end
        ndata = ndata + 1
        local dr = conf.data_reply and (conf.data_reply[ndata] or conf.data_reply[#conf.data_reply])
        if dr and dr:sub(1, 1) ~= "2" then
          log("DATA_REFUSED", n, ndata, dr)
          send(c, dr)
          mail, rcpts = nil, nil
          goto continue
        end
        nmsg = nmsg + 1
        local f = assert(io.open(("%s/msg.%d"):format(conf.dir, nmsg), "w"))
        f:write("MAIL " .. mail .. "\n")
        for _, r in ipairs(rcpts) do f:write("RCPT " .. r .. "\n") end
        f:write("\n", table.concat(data, "\n"), "\n")
        f:close()
        log("MESSAGE", n, nmsg, mail, table.concat(rcpts, ","))
        send(c, "250 2.0.0 Ok: queued as fake" .. nmsg)
        mail, rcpts = nil, nil
      end
    elseif verb == "RSET" then
      mail, rcpts = nil, nil
      send(c, "250 2.0.0 Ok")
    elseif verb == "NOOP" then
      send(c, "250 2.0.0 Ok")
    elseif verb == "QUIT" then
      send(c, "221 2.0.0 Bye")
      log("CLOSE", n)
      return
    else
      send(c, "502 5.5.2 Command not recognized")
    end
    ::continue::
  end
end

local function resume(c)
  local ok, err = coroutine.resume(c.co, c)
  if not ok then log("ERROR", tostring(err)) end
  if coroutine.status(c.co) == "dead" then
    c.sock:close()
    conns[c.sock] = nil
  end
end

log("READY", conf.address, conf.port)
while true do
  local now = socket.gettime()
  local rd, timeout = { srv }, 0.2
  for s, c in pairs(conns) do
    if c.wake then
      timeout = math.max(0, math.min(timeout, c.wake - now))
    else
      rd[#rd + 1] = s
    end
  end
  local ready = socket.select(rd, nil, timeout)
  for _, s in ipairs(ready) do
    if s == srv then
      local cs = srv:accept()
      if cs then
        cs:settimeout(0)
        local c = { sock = cs, buf = "", co = coroutine.create(session) }
        conns[cs] = c
        resume(c)
      end
    elseif conns[s] then
      local c = conns[s]
      local data, err, partial = s:receive(8192)
      c.buf = c.buf .. (data or partial or "")
      if err == "closed" then c.eof = true end
      resume(c)
    end
  end
  now = socket.gettime()
  for _, c in pairs(conns) do
    if c.wake and now >= c.wake then
      c.wake = nil
      resume(c)
    end
  end
end
]==]

-- ---- helpers -------------------------------------------------------------

local cleanups = {}
local function defer(fn) cleanups[#cleanups + 1] = fn end
local function run_cleanups()
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
  cleanups = {}
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

local function eventually(fn, timeout)
  local deadline = t.now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    t.sleep(0.05)
  until t.now() > deadline
  return nil
end

local function stop_pid(pid)
  t.kill(pid, "TERM")
  local deadline = t.now() + 5
  while t.waitpid(pid, true) == "running" and t.now() < deadline do t.sleep(0.02) end
  if t.waitpid(pid, true) == "running" then
    t.kill(pid, "KILL")
    t.waitpid(pid)
  end
end

-- A TCP port free on 127.0.0.1 .. 127.0.0.9.
local function free_tcp_port()
  for _ = 1, 50 do
    local s = assert(socket.tcp())
    assert(s:bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local ok = true
    for i = 2, 9 do
      local p = assert(socket.tcp())
      p:setoption("reuseaddr", true)
      if not p:bind("127.0.0." .. i, port) then ok = false end
      p:close()
    end
    if ok then return tonumber(port) end
  end
  error("no free TCP port")
end

local function scratch_dir()
  local dir = D.sh("mktemp -d /tmp/indimail-qt.XXXXXX"):gsub("%s+$", "")
  D.sh("chmod 755 " .. dir)
  defer(function()
    if os.getenv("INDIMAIL_KEEP_TMP") == nil then D.sh("rm -rf " .. dir) end
  end)
  return dir
end

local function lua_value(v)
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do
      local key = type(k) == "number" and ("[" .. k .. "]") or ("[" .. string.format("%q", k) .. "]")
      out[#out + 1] = key .. " = " .. lua_value(x)
    end
    return "{ " .. table.concat(out, ", ") .. " }"
  elseif type(v) == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

local function start_fake(addr, port, o)
  local dir = scratch_dir()
  D.writefile(dir .. "/fake_mx.lua", FAKE_MX)
  o = o or {}
  o.address, o.port, o.dir = addr, port, dir
  D.writefile(dir .. "/conf.lua", "return " .. lua_value(o) .. "\n")
  local pid = assert(t.spawn({ "lua5.4", dir .. "/fake_mx.lua", dir .. "/conf.lua" }, dir .. "/stderr.log"))
  defer(function() stop_pid(pid) end)
  local fake = { dir = dir, pid = pid }
  function fake.events() return D.readfile(dir .. "/events.log") or "" end
  function fake.count(pattern)
    local n = 0
    for _ in fake.events():gmatch(pattern) do n = n + 1 end
    return n
  end
  function fake.message(k) return D.readfile(("%s/msg.%d"):format(dir, k)) end
  assert(eventually(function() return fake.events():match("READY") end, 5),
    "the fake MX did not start: " .. (D.readfile(dir .. "/stderr.log") or ""))
  return fake
end

local MAILBOXES = "users = { 'alice@example.test', 'bob@example.test' }"

-- A daemon whose remote mail goes to relay (host:port): a closed port by
-- default, so every remote attempt is deferred for a long time.
local function start(o)
  o = o or {}
  local d = D.start{
    deliver = o.deliver ~= false,
    relay_from = "'127.0.0.0/8'",
    mailboxes = MAILBOXES,
    routes = "['*'] = '" .. (o.relay or ("127.0.0.6:" .. free_tcp_port())) .. "'",
    delivery = o.delivery or "retry = { base = 300, max = 600 }, timeouts = { connect = 2 }",
  }
  defer(function() d:cleanup() end)
  -- event=ready is the master's: the queue manager opens its socket a moment later
  assert.is_truthy(d:wait_log("event=qmgr_start queues", 5), d:log())
  return d
end

local function session(d)
  local c = D.connect(d.ports.smtp)
  defer(function() c:close() end)
  assert.equal(220, (c:reply()))
  assert.equal(250, (c:cmd("EHLO client.example.test")))
  return c
end

local function send(d, from, rcpts, subject)
  local c = session(d)
  local code, text = c:transaction(from, rcpts, "From: " .. from .. "\r\nSubject: " .. subject
    .. "\r\n\r\nbody of " .. subject .. "\r\n")
  assert.equal(250, code, text)
  c:cmd("QUIT")
  return assert(text:match("queued as (%w+)"), text)
end

-- Runs `indimail -c <config> queue ...`; returns stdout+stderr, exit code.
local function cli(d, args)
  return D.sh(D.bin .. "/indimail -c " .. d.config .. " queue " .. args)
end

-- One request on the control socket; returns the whole answer.
local function control(d, request)
  local c = assert(unix.stream())
  c:settimeout(5)
  assert(c:connect(d.dir .. "/queue/qmgr.sock"))
  assert(c:send(request .. "\n"))
  local out, err, partial = c:receive("*a")
  c:close()
  return out or partial, err
end

local function deferred(d, qid)
  return d:count_log("event=deferred qid=" .. qid)
end

-- A message deferred once (connection refused at the relay).
local function deferred_message(d, rcpt, subject)
  local qid = send(d, "alice@example.test", { rcpt or "user@remote.test" }, subject or "stuck")
  assert.is_truthy(d:wait_log("event=deferred qid=" .. qid, 10), d:log())
  return qid
end

-- kill -9 of every process, then the same configuration started again.
local function restart(d)
  d:kill9()
  local from = #d:log() + 1
  local pid = assert(t.spawn({ D.bin .. "/indimaild", "-c", d.config }, d.dir .. "/stderr2.log"))
  d.pid, d.stopped = pid, false
  assert.is_truthy(d:wait_log("event=ready", 10, from),
    "restarted: " .. (D.readfile(d.dir .. "/stderr2.log") or ""))
  assert.is_truthy(d:wait_log("event=qmgr_start queues", 5, from))
  assert.is_truthy(d:wait_log("event=queue_scanned", 5, from))
  d.ports = {}
  for name, port in d:log():sub(from):gmatch("event=listening name=(%S+) address=%S+ port=(%d+)") do
    d.ports[name] = tonumber(port)
  end
  return from
end

-- The lines about one message in a listing: its line (id, age, size,
-- <sender>, maybe held) and the indented recipient lines after it.
local function entry(out, qid)
  local lines, found = {}, false
  for line in out:gmatch("[^\n]*") do
    if found then
      if not line:match("^%s") or line == "" then break end
      lines[#lines + 1] = line
    elseif line:find(qid, 1, true) == 1 then
      found = true
      lines[1] = line
    end
  end
  return found and lines or nil
end

local function rcpt_line(lines, state, rcpt)
  for i = 2, #lines do
    if lines[i]:match("^%s+" .. state .. "%s+<" .. esc(rcpt) .. ">") then return lines[i] end
  end
end

local function cli_has(sub)
  local out = D.sh(D.bin .. "/indimail -h")
  return out:match("queue [%w|]*" .. sub) ~= nil
end

local function need_cli(sub)
  if not cli_has(sub) then pending("CLI: queue " .. sub .. " not implemented yet") end
end

-- ---- the specification ---------------------------------------------------

describe("queue tools", function()
  after_each(run_cleanups)

  describe("indimail queue list", function()
    it("shows a deferred message with per-recipient state, attempts, next retry and last error", function()
      local d = start()
      local qid = send(d, "alice@example.test", { "user@remote.test", "bob@example.test" }, "listed")
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid, 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=bob@example%.test", 5), d:log())
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("^" .. qid .. "%s+%d+s%s+%d+%s+<alice@example%.test>$", e[1])
      local line = rcpt_line(e, "pending", "user@remote.test")
      assert.is_truthy(line, out)
      assert.matches("attempts=1", line)
      local next_retry = tonumber(line:match("next_retry=(%d+)s"))
      assert.is_truthy(next_retry, line)
      assert.is_true(next_retry > 200 and next_retry <= 300, line)
      assert.matches('last_error="[^"]*127%.0%.0%.6', line)
      assert.is_truthy(rcpt_line(e, "done", "bob@example.test"), out)
      assert.equal(3, #e, out)
      assert.matches("\n1 message", out)
    end)

    it("lists every queued message", function()
      local d = start()
      local a = deferred_message(d, "one@remote.test", "first")
      local b = deferred_message(d, "two@remote.test", "second")
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      assert.is_truthy(entry(out, a), out)
      assert.is_truthy(entry(out, b), out)
      assert.matches("\n2 messages", out)
    end)

    it("reads the queue folders when the queue manager is not running", function()
      local d = start()
      local qid = deferred_message(d)
      d:stop()
      local out, code = cli(d, "list")
      assert.equal(0, code, out)
      assert.matches("not running", out)
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("<alice@example%.test>", e[1])
      assert.matches("<user@remote%.test>", e[2])
      assert.matches("\n1 message", out)
    end)
  end)

  describe("indimail queue show", function()
    it("shows one message and the path of its file", function()
      need_cli("show")
      local d = start()
      local qid = deferred_message(d)
      local out, code = cli(d, "show " .. qid)
      assert.equal(0, code, out)
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("<alice@example%.test>", e[1])
      assert.matches("attempts=1 next_retry=%d+s", rcpt_line(e, "pending", "user@remote.test"))
      local path = out:match("\npath (%S+)")
      assert.is_truthy(path, out)
      assert.same({ path }, d:queue_files())
    end)

    it("fails with exit code 1 for an id that is not queued", function()
      need_cli("show")
      local d = start()
      local out, code = cli(d, "show 06B06A0000000000DEAD0000")
      assert.equal(1, code, out)
      assert.matches("no message", out)
    end)
  end)

  describe("indimail queue flush", function()
    it("retries deferred messages at once", function()
      need_cli("flush")
      local d = start()
      local qid = deferred_message(d)
      assert.equal(1, deferred(d, qid))
      local out, code = cli(d, "flush")
      assert.equal(0, code, out)
      assert.matches("^1 message", out)
      assert.is_truthy(eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      local list = cli(d, "list")
      assert.matches("attempts=2", rcpt_line(entry(list, qid), "pending", "user@remote.test"))
    end)
  end)

  describe("indimail queue hold / release", function()
    it("a held message is not tried by flush, and is tried again once released", function()
      need_cli("hold")
      local d = start()
      local qid = deferred_message(d)
      local out, code = cli(d, "hold " .. qid)
      assert.equal(0, code, out)
      assert.matches("held", entry(cli(d, "show " .. qid), qid)[1])
      out, code = cli(d, "flush")
      assert.equal(0, code, out)
      assert.matches("^0 messages", out)
      t.sleep(2.2)   -- two scheduler ticks
      assert.equal(1, deferred(d, qid))
      out, code = cli(d, "release " .. qid)
      assert.equal(0, code, out)
      assert.is_truthy(eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      assert.is_nil(entry(cli(d, "list"), qid)[1]:match("held"))
    end)

    it("a hold survives a restart (kill -9): the message is not tried until released", function()
      need_cli("hold")
      local d = start()
      local qid = deferred_message(d)
      assert.equal(0, select(2, cli(d, "hold " .. qid)))
      t.sleep(0.3)   -- the journal write is asynchronous to the answer
      local from = restart(d)
      t.sleep(2.2)
      assert.is_nil(d:log():sub(from):match("event=deferred qid=" .. qid), d:log():sub(from))
      local out = cli(d, "list")
      assert.matches("held", entry(out, qid)[1])
      assert.equal(0, select(2, cli(d, "release " .. qid)))
      assert.is_truthy(d:wait_log("event=deferred qid=" .. qid, 5, from), d:log():sub(from))
    end)
  end)

  describe("indimail queue remove", function()
    it("removes the message and its journal from the queue, without a bounce", function()
      need_cli("remove")
      local d = start()
      local qid = deferred_message(d)
      local other = deferred_message(d, "other@remote.test", "stays")
      assert.equal(2, #d:queue_files())
      local out, code = cli(d, "remove " .. qid)
      assert.equal(0, code, out)
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.is_truthy(eventually(function() return #d:queue_files() == 1 end, 5))
      assert.matches(other .. "$", d:queue_files()[1])
      assert.equal("", D.sh("find " .. d.dir .. "/queue/*/state -type f -name '*" .. qid .. "*'"))
      out = cli(d, "list")
      assert.is_nil(entry(out, qid), out)
      assert.is_truthy(entry(out, other), out)
      assert.equal(0, d:count_log("event=bounce_queued"))
      assert.equal(0, d:count_log("event=bounced"))
      -- and it stays gone across a restart
      local from = restart(d)
      t.sleep(0.5)
      assert.is_nil(d:log():sub(from):find(qid, 1, true))
      assert.matches("event=queue_scanned messages=1", d:log():sub(from))
    end)

    it("fails with exit code 1 for an id that is not queued", function()
      need_cli("remove")
      local d = start()
      local out, code = cli(d, "remove 06B06A0000000000DEAD0000")
      assert.equal(1, code, out)
      assert.matches("no message", out)
    end)
  end)

  describe("the control socket", function()
    it("answers list with one block per message and ok N", function()
      local d = start()
      local qid = deferred_message(d)
      local out = control(d, "list")
      local e = entry(out, qid)
      assert.is_truthy(e, out)
      assert.matches("<alice@example%.test>", e[1])
      assert.matches("attempts=1 next_retry=%d+s", rcpt_line(e, "pending", "user@remote.test"))
      assert.equal(2, #e)
      assert.matches("\nok 1\n$", out)
    end)

    it("answers show, hold, release, flush and remove with ok", function()
      local d = start()
      local qid = deferred_message(d)
      assert.matches("\npath [^\n]+\nok 1\n$", (control(d, "show " .. qid)))
      assert.equal("ok 1\n", (control(d, "hold " .. qid)))
      assert.equal("ok 0\n", (control(d, "flush")))
      assert.equal("ok 1\n", (control(d, "release " .. qid)))
      assert.is_truthy(eventually(function() return deferred(d, qid) == 2 end, 5), d:log())
      assert.equal("ok 1\n", (control(d, "flush")))
      assert.is_truthy(eventually(function() return deferred(d, qid) == 3 end, 5), d:log())
      assert.equal("ok 1\n", (control(d, "remove " .. qid)))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), d:log())
      assert.equal("ok 0\n", (control(d, "list")))
    end)

    it("answers an unknown command or id with error", function()
      local d = start()
      assert.matches("^error unknown command", (control(d, "frobnicate")))
      assert.matches("^error no message", (control(d, "show 06B06A0000000000DEAD0000")))
      assert.matches("^error no message", (control(d, "hold 06B06A0000000000DEAD0000")))
    end)
  end)

  describe("a restart in the middle of a delivery", function()
    it("delivers the message exactly once after kill -9 of everything", function()
      local port = free_tcp_port()
      -- the first connection is greeted only after 30s: the attempt is in flight
      local fake = start_fake("127.0.0.7", port, { greeting_delay = { [1] = 30 } })
      local d = start{ relay = "127.0.0.7:" .. port,
        delivery = "retry = { base = 0.5, max = 1 }, timeouts = { greeting = 20, command = 5 }" }
      local qid = send(d, "alice@example.test", { "user@remote.test", "bob@example.test" }, "survivor")
      assert.is_truthy(eventually(function() return fake.count("\nCONNECT 1") == 1 end, 10), d:log())
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=bob@example%.test", 5), d:log())
      t.sleep(0.3)
      local from = restart(d)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid .. " to=user@remote%.test", 10, from), d:log())
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5, from), d:log())
      t.sleep(1.5)
      assert.equal(1, fake.count("\nMESSAGE "))
      assert.matches("^MAIL alice@example%.test\nRCPT user@remote%.test\n\n", fake.message(1))
      assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=user@remote%.test"))
      -- the local recipient was journaled before the crash: not delivered again
      assert.equal(1, d:count_log("event=delivered qid=" .. qid .. " to=bob@example%.test"))
      assert.equal("1", (D.sh("find " .. d.dir .. "/maildirs/example.test/bob/Maildir/new -type f | wc -l"):gsub("%s", "")))
      assert.equal(0, #d:queue_files())
    end)

    it("delivers a message acknowledged just before the kill -9", function()
      local port = free_tcp_port()
      local fake = start_fake("127.0.0.7", port)
      local d = start{ relay = "127.0.0.7:" .. port, deliver = false }
      local qid = send(d, "alice@example.test", { "user@remote.test" }, "paused then killed")
      -- the same configuration, delivering this time
      D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
      assert.matches("paused = false", D.readfile(d.config))
      local from = restart(d)
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10, from), d:log())
      t.sleep(1)
      assert.equal(1, fake.count("\nMESSAGE "))
    end)
  end)
end)

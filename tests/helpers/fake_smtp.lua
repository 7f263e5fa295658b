-- fake_smtp: a scripted SMTP server (luasocket; one process, many clients
-- as coroutines over socket.select) for the delivery specs to deliver to.
--
-- From a spec it runs as a child process, `lua5.4 tests/helpers/fake_smtp.lua
-- DIR/conf.lua`, stopped by fake.stop() or at the end of the test
-- (cleanup.run(), tests/helpers/cleanup.lua):
--   local fake_smtp = require("fake_smtp")
--   local fake = fake_smtp.start(dir, "127.0.0.4", port,
--     { rcpt = { ["soft@fake.test"] = { "451 4.3.0 later", "250 2.1.5 Ok" } } })
--   fake.count("\nMESSAGE "); fake.message(1); fake.events()
--   fake.peak()            the most sessions open at once (from the events:
--   fake.peak("MESSAGE")   CONNECT opens, CLOSE/EOF ends); with an event
--                          name, only before the first line of that event
--
-- Options:
--   greeting = { [n] = reply }         the nth connection's greeting (non-2xx: closed)
--   greeting_delay = { [n] = secs }, greeting_delay_all = secs
--   rcpt = { [addr] = { reply1, reply2, ... } }  nth RCPT of addr (the last sticks)
--   mail = { reply1, reply2, ... }     nth MAIL of the server's life (then 250)
--   hang = { { conn = n, cmd = "RCPT" } }         never answer that command
--                                                 (cmd may be "CONNECT" or ".")
--   pipelining = false, data_reply = { reply1, ... } (nth end of data),
--   dot_delay = secs, auth = { user=, password=, mechs= } (MAIL needs AUTH;
--   several accounts: users = { [user] = password, ... } instead of user=),
--   starttls = reply   offer STARTTLS and answer it with reply, a refusal
--                      such as "454 4.7.0 TLS not available" (no TLS here:
--                      luasec is not a dependency)
-- It appends to dir/events.log: READY, CONNECT n, CMD n line, MESSAGE n k
-- from rcpts, HANG n cmd, DATA_REFUSED n k reply, AUTH_OK/AUTH_FAILED n user,
-- NESTED_MAIL n, EOF n, CLOSE n; and writes each message to dir/msg.k (MAIL
-- and RCPT lines, a blank line, the dot-unstuffed data). Like Postfix it
-- keeps a transaction open until "." is answered or RSET: a MAIL inside it
-- gets 503 5.5.1 nested MAIL command.

local M = {}

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

-- Starts the server on address:port with options o, its files in dir
-- (which must exist); returns { dir, pid, stop(), events(), count(pattern),
-- message(k) } once it listens.
function M.start(dir, address, port, o)
  local D = require("daemon")
  local conf = { dir = dir, address = address, port = port }
  for k, v in pairs(o or {}) do conf[k] = v end
  D.writefile(dir .. "/conf.lua", "return " .. lua_value(conf) .. "\n")
  local argv = { "lua5.4", D.root .. "/tests/helpers/fake_smtp.lua", dir .. "/conf.lua" }
  local pid = assert(D.t.spawn(argv, dir .. "/stderr.log"))
  local fake = { dir = dir, pid = pid }
  function fake.stop()
    if not fake.stopped then D.stop_pid(pid) end
    fake.stopped = true
  end
  require("cleanup").defer(fake.stop)
  function fake.events() return D.readfile(dir .. "/events.log") or "" end
  function fake.count(pattern)
    local n = 0
    for _ in fake.events():gmatch(pattern) do n = n + 1 end
    return n
  end
  function fake.message(k) return D.readfile(("%s/msg.%d"):format(dir, k)) end
  function fake.peak(before)
    local open, max = 0, 0
    for what in fake.events():gmatch("(%u+)[^\n]*\n") do
      if what == before then break end
      if what == "CONNECT" then open = open + 1 elseif what == "EOF" or what == "CLOSE" then open = open - 1 end
      if open > max then max = open end
    end
    return max
  end
  local up = D.eventually(function()
    if fake.events():match("READY") then return "ready" end
    if D.t.waitpid(pid, true) ~= "running" then
      fake.stopped = true   -- it died (and is reaped): nothing to stop
      return "exited"
    end
  end, 5)
  if up ~= "ready" then
    fake.stop()
    error("the fake SMTP server did not start: " .. (D.readfile(dir .. "/stderr.log") or ""))
  end
  return fake
end

-- Required as a module: only M. Run as a program: the server below.
if not (arg and arg[0] and arg[0]:match("fake_smtp%.lua$")) then return M end

-- ---- the server ------------------------------------------------------------

local socket = require("socket")
local mime = require("mime")   -- luasocket's (base64)
local conf = dofile(arg[1])
local srv = assert(socket.bind(conf.address, conf.port, 64))
srv:settimeout(0)
local ev = assert(io.open(conf.dir .. "/events.log", "a"))
ev:setvbuf("no")
local function log(...) ev:write(table.concat({ ... }, " "), "\n") end
local conns, nconn, nmsg, ndata, nmail, seen = {}, 0, 0, 0, 0, {}

-- One line from the client (CR LF or LF); nil at EOF. Yields for more.
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

-- Never answers again: reads until the client goes away.
local function hang(c, n, cmd)
  log("HANG", n, cmd)
  while readline(c) do end
  log("EOF", n)
end

local function ehlo_reply()
  return "250-fake.test\r\n" .. (conf.pipelining == false and "" or "250-PIPELINING\r\n")
    .. (conf.auth and ("250-AUTH " .. (conf.auth.mechs or "PLAIN LOGIN") .. "\r\n") or "")
    .. (conf.starttls and "250-STARTTLS\r\n" or "")
    .. "250-8BITMIME\r\n250 SIZE 100000000"
end

local function auth_check(c, s, user, pass)
  local users = conf.auth.users or { [conf.auth.user or ""] = conf.auth.password }
  s.authed = user ~= nil and pass ~= nil and users[user] == pass
  log(s.authed and "AUTH_OK" or "AUTH_FAILED", s.n, tostring(user))
  send(c, s.authed and "235 2.7.0 Authentication successful" or "535 5.7.8 Authentication failed")
end

-- AUTH PLAIN (initial response or not) and AUTH LOGIN.
local function auth(c, s, line)
  local mech, initial = line:match("^%a+%s+(%S+)%s*(%S*)")
  mech = (mech or ""):upper()
  if mech == "PLAIN" then
    if initial == "" then
      send(c, "334 ")
      initial = readline(c) or ""
    end
    local _, user, pass = ((mime.unb64(initial)) or ""):match("^([^%z]*)%z([^%z]*)%z(.*)$")
    auth_check(c, s, user, pass)
  elseif mech == "LOGIN" then
    send(c, "334 VXNlcm5hbWU6")
    local user = mime.unb64(readline(c) or "")
    send(c, "334 UGFzc3dvcmQ6")
    local pass = mime.unb64(readline(c) or "")
    auth_check(c, s, user, pass)
  else
    send(c, "504 5.5.4 Unrecognized authentication type")
  end
end

-- The scripted reply to the nth RCPT of an address (default 250).
local function rcpt(c, s, line)
  local addr = line:match("<(.-)>") or ""
  seen[addr] = (seen[addr] or 0) + 1
  local list = conf.rcpt and conf.rcpt[addr]
  local r = list and (list[seen[addr]] or list[#list]) or "250 2.1.5 Ok"
  if r:sub(1, 1) == "2" then s.rcpts[#s.rcpts + 1] = addr end
  send(c, r)
end

-- The data lines up to the lone dot, unstuffed; nil at EOF.
local function read_data(c)
  local data = {}
  while true do
    local l = readline(c)
    if not l then return nil end
    if l == "." then return data end
    if l:sub(1, 1) == "." then l = l:sub(2) end
    data[#data + 1] = l
  end
end

-- Writes dir/msg.k; returns k.
local function store(s, data)
  nmsg = nmsg + 1
  local f = assert(io.open(("%s/msg.%d"):format(conf.dir, nmsg), "w"))
  f:write("MAIL " .. s.mail .. "\n")
  for _, r in ipairs(s.rcpts) do f:write("RCPT " .. r .. "\n") end
  f:write("\n", table.concat(data, "\n"), "\n")
  f:close()
  log("MESSAGE", s.n, nmsg, s.mail, table.concat(s.rcpts, ","))
  return nmsg
end

-- DATA to the reply after the dot; true when the session is over.
local function data(c, s)
  if not s.mail or #s.rcpts == 0 then
    send(c, "554 5.5.1 No valid recipients")
    return
  end
  send(c, "354 End data with <CR><LF>.<CR><LF>")
  local lines = read_data(c)
  if not lines then
    log("EOF", s.n)
    return true
  end
  if hangs(s.n, ".") then
    hang(c, s.n, ".")
    return true
  end
  if conf.dot_delay then sleep(c, conf.dot_delay) end
  ndata = ndata + 1
  local dr = conf.data_reply and (conf.data_reply[ndata] or conf.data_reply[#conf.data_reply])
  if dr and dr:sub(1, 1) ~= "2" then
    log("DATA_REFUSED", s.n, ndata, dr)
    send(c, dr)
  else
    send(c, "250 2.0.0 Ok: queued as fake" .. store(s, lines))
  end
  s.mail, s.rcpts = nil, nil
end

-- Answers one command line; true when the session is over.
local function command(c, s, line)
  local verb = (line:match("^(%a+)") or ""):upper()
  if hangs(s.n, verb) then
    hang(c, s.n, verb)
    return true
  end
  if verb == "EHLO" then
    send(c, ehlo_reply())
  elseif verb == "STARTTLS" and conf.starttls then
    send(c, conf.starttls)
  elseif verb == "AUTH" and conf.auth then
    auth(c, s, line)
  elseif verb == "MAIL" and conf.auth and not s.authed then
    send(c, "530 5.7.0 Authentication required")
  elseif verb == "HELO" then
    send(c, "250 fake.test")
  elseif verb == "MAIL" and s.mail then
    -- like Postfix: the transaction is open until "." is answered or RSET
    log("NESTED_MAIL", s.n)
    send(c, "503 5.5.1 Error: nested MAIL command")
  elseif verb == "MAIL" then
    nmail = nmail + 1
    local r = conf.mail and conf.mail[nmail] or "250 2.1.0 Ok"
    if r:sub(1, 1) == "2" then s.mail, s.rcpts = line:match("<(.-)>") or "", {} end
    send(c, r)
  elseif verb == "RCPT" and not s.mail then
    send(c, "503 5.5.1 Error: need MAIL command")
  elseif verb == "RCPT" then
    rcpt(c, s, line)
  elseif verb == "DATA" then
    return data(c, s)
  elseif verb == "RSET" then
    s.mail, s.rcpts = nil, nil
    send(c, "250 2.0.0 Ok")
  elseif verb == "NOOP" then
    send(c, "250 2.0.0 Ok")
  elseif verb == "QUIT" then
    send(c, "221 2.0.0 Bye")
    log("CLOSE", s.n)
    return true
  else
    send(c, "502 5.5.2 Command not recognized")
  end
end

-- The (maybe delayed) greeting; false when the session ends there.
local function greet(c, n)
  local delay = conf.greeting_delay and conf.greeting_delay[n] or conf.greeting_delay_all
  if delay then sleep(c, delay) end
  if hangs(n, "CONNECT") then
    hang(c, n, "CONNECT")
    return false
  end
  local greeting = conf.greeting and conf.greeting[n] or "220 fake.test ESMTP"
  send(c, greeting)
  if greeting:sub(1, 1) ~= "2" then
    log("CLOSE", n)
    return false
  end
  return true
end

-- One client, as a coroutine: s is its state (n, mail, rcpts, authed).
local function session(c)
  nconn = nconn + 1
  local s = { n = nconn }
  log("CONNECT", s.n)
  if not greet(c, s.n) then return end
  while true do
    local line = readline(c)
    if not line then
      log("EOF", s.n)
      return
    end
    log("CMD", s.n, line)
    if command(c, s, line) then return end
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

local function accept()
  local cs = srv:accept()
  if not cs then return end
  cs:settimeout(0)
  local c = { sock = cs, buf = "", co = coroutine.create(session) }
  conns[cs] = c
  resume(c)
end

local function receive(sock)
  local c = conns[sock]
  local got, err, partial = sock:receive(8192)
  c.buf = c.buf .. (got or partial or "")
  if err == "closed" then c.eof = true end
  resume(c)
end

-- The sockets to wait on (a sleeping session is not read) and for how long.
local function wait_set()
  local now = socket.gettime()
  local rd, timeout = { srv }, 0.2
  for sock, c in pairs(conns) do
    if c.wake then
      timeout = math.max(0, math.min(timeout, c.wake - now))
    else
      rd[#rd + 1] = sock
    end
  end
  return rd, timeout
end

local function wake_sleepers()
  local now = socket.gettime()
  for _, c in pairs(conns) do
    if c.wake and now >= c.wake then
      c.wake = nil
      resume(c)
    end
  end
end

log("READY", conf.address, conf.port)
while true do
  local rd, timeout = wait_set()
  for _, sock in ipairs(socket.select(rd, nil, timeout)) do
    if sock == srv then
      accept()
    elseif conns[sock] then
      receive(sock)
    end
  end
  wake_sleepers()
end

-- daemon: starts indimaild in a fresh temp dir on ephemeral loopback ports,
-- and talks to it. Every spec gets its own daemon; nothing is shared.
--
--   local D = require("daemon")
--   local d = D.start{ policies = [[ indimail.hook("rcpt", ...) ]] }
--   local c = D.connect(d.ports.smtp)
--   local code, text = c:reply(); c:cmd("EHLO x.test") ...
--   d:stop()
--
-- Within a test whose after_each runs cleanup.run() (tests/helpers/cleanup.lua):
--   local d = D.start_for_test{ deliver = true }   -- d:cleanup() at the end
--   local c = d:session()                          -- greeted, EHLO said
--   local qid = d:send("a@example.test", { "b@example.test" }, message)
--   local from = d:restart()                       -- after d:kill9()
--
-- o.listen_opts = { smtps = "tls_min_version = 'TLSv1.3'" } adds Lua fields
-- to a listener (smtp, submission: STARTTLS; smtps: implicit TLS).
-- o.env = { NAME = "value" } adds variables to indimaild's environment
-- (e.g. SSL_CERT_FILE for a spec's own trust anchor); D.test_cert() is the
-- certificate every daemon serves (CN=mx.test.example).
--
-- Also small tools: D.eventually (bounded polling), D.wait_pid, D.stop_pid,
-- D.free_tcp_port, D.closed_tcp_port, D.free_udp_port, D.scratch_dir, D.sh, D.readfile.
--
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")
local socket = require("socket")
local luassert = require("luassert")
local cleanup = require("cleanup")
local queue_store = require("queue_store")

local D = {}
D.t = t
D.root = os.getenv("PWD")
D.bin = os.getenv("INDIMAIL_BIN_DIR") or (D.root .. "/bin")  -- SAN=1 builds elsewhere

local readfile = queue_store.readfile
D.readfile = readfile

local function writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
D.writefile = writefile

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end
D.sh = sh

-- Polls fn every interval seconds (default 0.05) until it returns a truthy
-- value, which it returns; nil once timeout seconds (default 5) are over.
function D.eventually(fn, timeout, interval)
  local deadline = t.now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    t.sleep(interval or 0.05)
  until t.now() > deadline
  return nil
end

-- Waits (bounded, default 10s) for the child pid to exit: "exited", code |
-- "signaled", sig | nil, err (not a child of ours) | "running" (timed out).
function D.wait_pid(pid, timeout)
  local r = D.eventually(function()
    local r = { t.waitpid(pid, true) }
    return r[1] ~= "running" and r
  end, timeout or 10, 0.02)
  if not r then return "running" end
  return r[1], r[2]
end

-- Ends a child: TERM, a bounded wait (default 5s), then KILL.
function D.stop_pid(pid, timeout)
  t.kill(pid, "TERM")
  if D.wait_pid(pid, timeout or 5) == "running" then
    t.kill(pid, "KILL")
    t.waitpid(pid)
  end
end

-- A UDP port free on 127.0.0.1 (free when asked: another process may take it).
function D.free_udp_port()
  local u = assert(socket.udp())
  assert(u:setsockname("127.0.0.1", 0))
  local _, port = u:getsockname()
  u:close()
  return tonumber(port)
end

local function tcp_free(host, port)
  local p = assert(socket.tcp())
  p:setoption("reuseaddr", true)
  local ok = p:bind(host, port)
  p:close()
  return ok
end

-- Ports D.free_tcp_port and D.closed_tcp_port gave: never given twice in
-- one process (the kernel offers a port again once its probe is closed).
local given = {}

-- A TCP port free on every address 127.0.0.1 .. 127.0.0.9, so that fake
-- servers on several of them can share it (one port per spec). Free when
-- asked: for a port where nothing may listen, see D.closed_tcp_port.
function D.free_tcp_port()
  for _ = 1, 50 do
    local s = assert(socket.tcp())
    assert(s:bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    port = tonumber(port)
    local ok = not given[port]
    for i = 2, 9 do ok = tcp_free("127.0.0." .. i, port) and ok end
    if ok then
      given[port] = true
      return port
    end
  end
  error("no free TCP port")
end

-- A TCP port on host (127.0.0.1) where nothing listens: connections to it
-- are refused. It stays bound, without listen(), until release() (or the
-- process's end), so that no server takes it meanwhile: not a daemon
-- listening on port 0, whose kernel-chosen port could otherwise be this
-- one (its "down" relay would then be itself), nor a client's source
-- port (a TCP self-connect). Call release() before a spec's server
-- listens on it (a destination that comes back).
local held = {}
function D.closed_tcp_port(host)
  local s = assert(socket.tcp())
  assert(s:bind(host or "127.0.0.1", 0))
  assert(t.cloexec(s:getfd()))  -- else a daemon started later holds it too
  local _, port = s:getsockname()
  port = tonumber(port)
  given[port] = true
  held[port] = s
  return port, function()
    if held[port] then held[port]:close() end
    held[port] = nil
  end
end

-- A new folder /tmp/indimail-<name>.XXXXXX, mode 755.
function D.mktemp(name)
  local dir = sh("mktemp -d /tmp/indimail-" .. (name or "test") .. ".XXXXXX"):gsub("%s+$", "")
  sh("chmod 755 " .. dir)
  return dir
end

-- Removes a temp folder, unless INDIMAIL_KEEP_TMP is set.
function D.rmtemp(dir)
  if os.getenv("INDIMAIL_KEEP_TMP") == nil then sh("rm -rf " .. dir) end
end

-- D.mktemp, removed again by cleanup.run().
function D.scratch_dir(name)
  local dir = D.mktemp(name)
  cleanup.defer(function() D.rmtemp(dir) end)
  return dir
end

-- A certificate shared by all specs of one run (made once, it is slow).
function D.test_cert()
  local dir = D.root .. "/build/test-tls"
  if not readfile(dir .. "/cert.pem") then
    sh("mkdir -p " .. dir .. " && openssl req -x509 -newkey rsa:2048 -nodes -days 30"
      .. " -subj /CN=mx.test.example -keyout " .. dir .. "/key.pem -out "
      .. dir .. "/cert.pem")
  end
  return dir .. "/cert.pem", dir .. "/key.pem"
end

local function lua_string(s) return string.format("%q", s) end

-- The three listeners, each with o.listen_opts[name] appended.
-- queue.backend: o.queue_backend, else $INDIMAIL_TEST_QUEUE_BACKEND (so any
-- spec can run on another backend: fs, wal), else the server's default.
local function queue_backend(o)
  local b = o.queue_backend or os.getenv("INDIMAIL_TEST_QUEUE_BACKEND")
  return (b and b ~= "") and b or nil
end

local function listeners(o)
  local extra = o.listen_opts or {}
  local out = {}
  for _, l in ipairs({ { "smtp", "starttls" }, { "submission", "starttls" }, { "smtps", "implicit" } }) do
    local more = extra[l[1]] and (", " .. extra[l[1]]) or ""
    local port = l[1] == "smtp" and o.smtp_port or 0
    out[#out + 1] = ("    { name = '%s', address = '%s', port = %d, tls = '%s'%s },")
      :format(l[1], o.address or "127.0.0.1", port, l[2], more)
  end
  return table.concat(out, "\n")
end

local function make_config(dir, o)
  local cert, key = D.test_cert()
  if o.cert then cert, key = o.cert, o.key end  -- i13-reload: a spec's own files
  local user = t.getuid() == 0 and 'user = "indimail",' or ""
  -- lua_dir relative to indimaild's working folder (the project root): the
  -- unprivileged account may not be able to reach an absolute path such as
  -- /root/project/lua, but it can always go down from its working folder.
  local limits = o.limits or ""
  local timeouts = o.timeouts or "command = 30, data = 30, tls = 10, hook = 5, drain = 5"
  return table.concat({
    "indimail.config {",
    "  hostname = 'mx.test.example', " .. user,
    "  workers = " .. (o.workers or 1) .. ",",
    "  listen = {",
    listeners(o),
    "  },",
    "  tls = { cert = " .. lua_string(cert) .. ", key = " .. lua_string(key) .. " },",
    "  queue = { path = " .. lua_string(dir .. "/queue") .. ", count = " .. (o.queues or 2) .. ", split = 4"
      .. (queue_backend(o) and (", backend = '" .. queue_backend(o) .. "'") or "") .. " },",
    "  log = { file = " .. lua_string(dir .. "/indimail.log") .. ", level = 'debug' },",
    "  lua_dir = 'lua',",
    o.dns and ("  dns = { servers = " .. lua_string(o.dns) .. ", timeout = 2 },") or "",
    o.dns_cache and ("  dns_cache = { " .. o.dns_cache .. " },") or "",
    "  local_domains = { 'example.test', 'local.test' },",
    "  delivery = { paused = " .. tostring(not o.deliver) .. ", " .. (o.delivery or "") .. " },",
    "  mailboxes = { root = " .. lua_string(dir .. "/maildirs") .. ", " .. (o.mailboxes or "") .. " },",
    o.routes and ("  routes = { " .. o.routes .. " },") or "",
    o.directory and ("  directory = { " .. o.directory .. " },") or "",
    o.auth_fail_limit and ("  auth_fail_limit = { " .. o.auth_fail_limit .. " },") or "",
    "  relay_from = { " .. (o.relay_from or "") .. " },",
    -- Most specs send as a local domain from 127.0.0.1 without AUTH: off
    -- unless a spec asks for it (the server's default is true).
    "  local_sender_requires_auth = " .. tostring(o.local_sender_requires_auth == true) .. ",",
    "  limits = { " .. limits .. " },",
    "  timeouts = { " .. timeouts .. " },",
    o.config_extra and ("  " .. o.config_extra) or "",
    "}",
    o.policies or "",
  }, "\n") .. "\n"
end

-- The configuration text D.start writes for dir and options o.
D.make_config = make_config

local Daemon = {}
Daemon.__index = Daemon

function Daemon:log()
  return readfile(self.dir .. "/indimail.log") or ""
end

-- Waits until the log matches pattern (Lua pattern); returns the match.
function Daemon:wait_log(pattern, timeout, init)
  local m = D.eventually(function()
    local m = { self:log():match(pattern, init) }
    return m[1] and m
  end, timeout, 0.02)
  if m then return table.unpack(m) end
  return nil
end

-- Waits for an event=NAME line holding every one of pats (Lua patterns,
-- or plain strings with plain = true): the fields of a line that
-- indimail.log wrote come in any order. Returns the line, or nil after 5 s.
function Daemon:wait_event(event, pats, plain)
  return D.eventually(function()
    for line in self:log():gmatch("[^\n]*event=" .. event .. " [^\n]*") do
      local all = true
      for _, p in ipairs(pats) do all = all and line:find(p, 1, plain) ~= nil end
      if all then return line end
    end
  end, 5)
end

-- One request line to the queue manager's control socket
-- (<queue>/qmgr.sock); the whole answer (lines ending "ok N" or "error
-- ..."), and the receive error if it did not end cleanly.
function Daemon:qmgr_control(request)
  local c = assert(require("socket.unix").stream())
  c:settimeout(10)
  assert(c:connect(self.dir .. "/queue/qmgr.sock"))
  assert(c:send(request .. "\n"))
  local out, err, partial = c:receive("*a")
  c:close()
  return out or partial, err
end

function Daemon:count_log(pattern)
  local n = 0
  for _ in self:log():gmatch(pattern) do n = n + 1 end
  return n
end

-- Worker pids currently alive, from the log.
function Daemon:worker_pids()
  local pids = {}
  for pid in self:log():gmatch("event=worker_started index=%d+ pid=(%d+)") do
    if t.kill(tonumber(pid), 0) then pids[#pids + 1] = tonumber(pid) end
  end
  return pids
end

function Daemon:signal(sig) return t.kill(self.pid, sig) end

-- Waits (bounded, default 10s) for the master to exit, without a signal;
-- records how it ended (so stop() is then a no-op) and returns it, or
-- "running".
function Daemon:wait_exit(timeout)
  local how, code = D.wait_pid(self.pid, timeout or 10)
  if how == "running" then return "running" end
  self.stopped, self.how, self.code = true, how, code
  return how, code
end

-- SIGTERM, then waits for the master to exit; returns how it ended.
function Daemon:stop(timeout)
  if self.stopped then return self.how, self.code end
  t.kill(self.pid, "TERM")
  local how, code = self:wait_exit(timeout)
  if how ~= "running" then return how, code end
  t.kill(-self.pid, "KILL")
  t.waitpid(self.pid)
  self.stopped = true
  return "killed"
end

-- Kills the whole process group at once (power-loss style for the processes).
function Daemon:kill9()
  t.kill(-self.pid, "KILL")
  t.waitpid(self.pid)
  self.stopped = true
end

-- Sanitizer reports (make test SAN=1) written by any indimaild process.
function Daemon:sanitizer_report()
  local err = readfile(self.dir .. "/stderr.log") or ""
  return err:match("(==%d+==ERROR: %w+Sanitizer.-\n\n)") or err:match("([^\n]*runtime error:[^\n]*)")
end

-- Stops the daemon, removes its dir, and fails the spec on a sanitizer report.
function Daemon:cleanup()
  self:stop()
  local report = self:sanitizer_report()
  D.rmtemp(self.dir)
  if report then error("sanitizer report from indimaild:\n" .. report) end
end

-- The messages stored in the queue, one entry each, whatever the backend
-- (tests/helpers/queue_store.lua): a message file's path, or a segment
-- record; each ends in its id. d:queue_read(entry) gives its bytes.
function Daemon:queue_files()
  return queue_store.entries(self.dir .. "/queue")
end

function Daemon:queue_read(entry)
  return queue_store.read(entry)
end

-- Only the message files in mess/ (fs; wal once checkpointed; segment
-- once compacted), by path.
function Daemon:mess_files()
  return queue_store.files(self.dir .. "/queue")
end

function Daemon:tmp_files()
  local out = sh("find " .. self.dir .. "/queue -path '" .. self.dir .. "/queue/*/tmp/*' -type f")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

-- The stored copy of one queue id: envelope, message, its entry. With the
-- wal queue backend the file appears just after the 250 (its checkpoint);
-- until then the record in its segment is read. Waits up to 5 s for it.
function Daemon:queued(id)
  local found = D.eventually(function()
    for _, f in ipairs(self:queue_files()) do
      if f:sub(-#id) == id then return { f } end
    end
  end, 5, 0.02)
  if not found then return nil end
  local data = queue_store.read(found[1]) or ""
  local env, msg = data:match("^(.-\n)\n(.*)$")
  return env, msg, found[1]
end

function Daemon:queue_list()
  return sh(D.bin .. "/indimail -c " .. self.config .. " queue list")
end

-- The listeners' ports announced in the log from byte `from` on.
function Daemon:read_ports(from)
  local ports = {}
  for name, port in self:log():sub(from or 1):gmatch("event=listening name=(%S+) address=%S+ port=(%d+)") do
    ports[name] = tonumber(port)
  end
  return ports
end

-- The command that starts indimaild on this daemon's config (with o.env;
-- with o.netns_setup in a network namespace of its own, set up by those
-- shell commands first: unshare and sh exec it, so the pid stays).
function Daemon:argv()
  local argv = {}
  if self.netns then
    argv = { "/usr/bin/unshare", "--net", "/bin/sh", "-c",
      self.netns .. ' && exec "$0" "$@"' }
  end
  if self.env then
    argv[#argv + 1] = "env"
    for k, v in pairs(self.env) do argv[#argv + 1] = k .. "=" .. v end
  end
  for _, a in ipairs({ D.bin .. "/indimaild", "-c", self.config }) do argv[#argv + 1] = a end
  return argv
end

-- Starts bin/indimaild again on the same config and dir (it kills nothing:
-- after d:kill9() or d:stop()). Waits for event=ready and for the queue
-- manager's socket, reads the new ports; returns where its log begins.
function Daemon:restart()
  self.restarts = (self.restarts or 1) + 1
  local from = #self:log() + 1
  local err = ("%s/stderr%d.log"):format(self.dir, self.restarts)
  self.pid = assert(t.spawn(self:argv(), err))
  self.stopped, self.how, self.code = false, nil, nil
  luassert.is_truthy(self:wait_log("event=ready", 10, from), "restarted: " .. (readfile(err) or ""))
  self:wait_log("event=qmgr_start queues", 5, from)   -- its control socket is open
  self.ports = self:read_ports(from)
  return from
end

-- Runs a shell command in the daemon's network namespace (netns_setup).
function Daemon:in_netns(cmd)
  return sh(("nsenter --net=/proc/%d/ns/net %s"):format(self.pid, cmd))
end

-- A client connected to port (default smtp), closed by cleanup.run().
function Daemon:connect(port)
  local c = D.connect(port or self.ports.smtp)
  cleanup.defer(function() c:close() end)
  return c
end

-- A client greeted with 220 that said EHLO (250); closed by cleanup.run().
function Daemon:session(helo)
  local c = self:connect()
  luassert.equal(220, (c:reply()))
  luassert.equal(250, (c:cmd("EHLO " .. (helo or "client.example.test"))))
  return c
end

-- One message in a session of its own; checks the 250, returns the queue id.
function Daemon:send(from, rcpts, message)
  local c = self:session()
  local code, text = c:transaction(from, rcpts, message)
  luassert.equal(250, code, text)
  c:cmd("QUIT")
  return (assert(text:match("queued as (%w+)"), text))
end

-- Starts indimaild; o.policies is Lua appended to the config. Options:
-- deliver, workers, queues, limits, timeouts, dns, delivery, mailboxes,
-- routes, relay_from (config text), address (listeners' address, default
-- 127.0.0.1), smtp_port (a fixed port for the smtp listener, default any),
-- netns_setup (shell commands that set up a new network namespace, such as
-- "ip link set lo up"; indimaild then runs in it: d:in_netns(cmd) runs a
-- command there too), env (variables for indimaild), auth_fail_limit (the
-- auth_fail_limit = { } table's text), directory (the
-- directory = { } table's text), dns_cache (the dns_cache = { } table's
-- text), local_sender_requires_auth (default
-- false here, unlike the server's default), config_extra (more keys of
-- indimail.config{}, as text ending in a comma), cert and key (paths of
-- the TLS files instead of D.test_cert()'s), queue_backend ("fs", "wal"
-- or "segment"; default $INDIMAIL_TEST_QUEUE_BACKEND, else the server's,
-- segment).
function D.start(o)
  o = o or {}
  local dir = sh("mktemp -d /tmp/indimail-test.XXXXXX"):gsub("%s+$", "")
  local self = setmetatable({ dir = dir, ports = {}, env = o.env, netns = o.netns_setup }, Daemon)
  self.config = dir .. "/indimail.lua"
  writefile(self.config, make_config(dir, o))
  -- As root: the folder (config, log) stays root's, the spool and the
  -- mailboxes are the account's (docs/security.md).
  sh("chmod 755 " .. dir .. " && mkdir -p " .. dir .. "/queue " .. dir .. "/maildirs")
  if t.getuid() == 0 then sh("chown -R indimail: " .. dir .. "/queue " .. dir .. "/maildirs") end
  self.pid = t.spawn(self:argv(), dir .. "/stderr.log")
  if not self:wait_log("event=ready", 10) then
    local err = (readfile(dir .. "/stderr.log") or "") .. self:log()
    self:stop()
    error("indimaild did not start: " .. err)
  end
  self.ports = self:read_ports()
  -- every worker must be listening before the spec starts
  self:wait_log(("event=worker_start index=%d"):format((o.workers or 1) - 1), 5)
  self:wait_log("event=qmgr_start queues", 5)  -- its control socket is open
  return self
end

-- D.start, and d:cleanup() when the test ends (cleanup.run()).
function D.start_for_test(o)
  local d = D.start(o)
  cleanup.defer(function() d:cleanup() end)
  return d
end

-- ---- a small SMTP client over luasocket --------------------------------

local Client = {}
Client.__index = Client

-- A client of host:port (default 127.0.0.1); src: the local address to
-- connect from (e.g. "127.0.0.2", for relay_from), default any.
function D.connect(port, host, src)
  local s = assert(socket.tcp())
  s:settimeout(10)
  if src then assert(s:bind(src, 0)) end
  assert(s:connect(host or "127.0.0.1", port))
  return setmetatable({ s = s }, Client)
end

function Client:send(data) return self.s:send(data) end

-- Reads one (possibly multi-line) reply: code, full text, lines.
function Client:reply()
  local lines = {}
  while true do
    local line, err = self.s:receive("*l")
    if not line then return nil, err, lines end
    lines[#lines + 1] = line
    if line:sub(4, 4) ~= "-" then
      return tonumber(line:sub(1, 3)), table.concat(lines, "\n"), lines
    end
  end
end

-- Sends a command line (CRLF added) and returns the reply.
function Client:cmd(line)
  self.s:send(line .. "\r\n")
  return self:reply()
end

function Client:close() self.s:close() end

-- True when the server sends nothing within secs; and what it sent if not.
function Client:silent_for(secs)
  self.s:settimeout(secs)
  local line, err = self.s:receive("*l")
  self.s:settimeout(10)
  return line == nil and err == "timeout", line
end

-- True once the server closed the connection (reads until EOF).
function Client:closed_by_server(timeout)
  self.s:settimeout(timeout or 5)
  local _, err = self.s:receive("*a")
  return err == nil or err == "closed"
end

-- One whole transaction; returns the final code and text.
function Client:transaction(from, rcpts, message)
  local code, text = self:cmd("MAIL FROM:<" .. from .. ">")
  if code ~= 250 then return code, text end
  for _, r in ipairs(rcpts) do
    code, text = self:cmd("RCPT TO:<" .. r .. ">")
  end
  code, text = self:cmd("DATA")
  if code ~= 354 then return code, text end
  self.s:send(message .. ".\r\n")
  return self:reply()
end

return D

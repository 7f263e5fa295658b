-- dnsmasq: a real DNS server for the specs, as a child process on
-- 127.0.0.1 and a free UDP port, serving the records given on its command
-- line. Every name under .test that is not listed is answered NXDOMAIN at
-- once (--local=/test/); nothing is forwarded unless records say so.
--
--   local dnsmasq = require("dnsmasq")
--   local dns = dnsmasq.start{ dir = scratch, records = {
--     "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,127.0.0.1" } }
--   D.start{ dns = "127.0.0.1:" .. dns.port }
--   dns.stop()   -- idempotent
--
-- dnsmasq.log and dnsmasq.pid are written to dir.
local D = require("daemon")
local socket = require("socket")
local t = D.t

local M = { bin = "/usr/sbin/dnsmasq" }

-- A DNS query for name/type (RFC 1035 4.1), just enough to probe a server.
local function query(id, name, qtype)
  local q = { string.pack(">I2I2I2I2I2I2", id, 0x0100, 1, 0, 0, 0) }
  for label in name:gmatch("[^.]+") do q[#q + 1] = string.char(#label) .. label end
  q[#q + 1] = "\0" .. string.pack(">I2I2", qtype, 1)
  return table.concat(q)
end

-- True once the server at port answers a query (bounded by timeout);
-- false, "exited" at once if the process pid (optional) has exited.
function M.answers(port, timeout, pid)
  local u = assert(socket.udp())
  u:setpeername("127.0.0.1", port)
  u:settimeout(0.1)
  local deadline = t.now() + (timeout or 5)
  repeat
    u:send(query(0x4242, "probe.test", 15))
    local r = u:receive()
    if r and r:sub(1, 2) == "\x42\x42" then
      u:close()
      return true
    end
    local gone = pid and t.waitpid(pid, true) ~= "running"
  until gone or t.now() > deadline
  u:close()
  return false, gone and "exited" or "timeout"
end

local function argv(port, o)
  local a = {
    M.bin, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
    "--port=" .. port, "--listen-address=127.0.0.1", "--bind-interfaces",
    "--pid-file=" .. o.dir .. "/dnsmasq.pid", "--log-queries", "--local=/test/",
  }
  for _, r in ipairs(o.records or {}) do a[#a + 1] = r end
  return a
end

-- One try on a fresh port; the server, or nil and dnsmasq's log.
local function try_start(o)
  local port = D.free_udp_port()
  local log = o.dir .. "/dnsmasq.log"
  local pid = assert(t.spawn(argv(port, o), log))
  local ok, why = M.answers(port, 5, pid)
  if ok then return { pid = pid, port = port, log = log } end
  if why ~= "exited" then D.stop_pid(pid) end
  return nil, D.readfile(log) or ""
end

-- Starts dnsmasq; o.dir: a folder for its files, o.records: more arguments.
-- Another process may take the free port first: then it tries a new one.
function M.start(o)
  local dm, err
  for _ = 1, 3 do
    dm, err = try_start(o)
    if dm then break end
    if not err:match("Address already in use") then break end
  end
  if not dm then error("dnsmasq did not start: " .. err) end
  local alive = true
  function dm.stop()
    if alive then D.stop_pid(dm.pid) end
    alive = false
  end
  return dm
end

return M

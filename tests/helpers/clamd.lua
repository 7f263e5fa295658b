-- clamd: a real ClamAV daemon for the specs, as a child process with its
-- own clamd.conf, unix socket and a one-signature database (an .ndb body
-- signature for the EICAR test string, named Indimail.Test.EICAR: clamd
-- reports it as Indimail.Test.EICAR.UNOFFICIAL). No freshclam, no network;
-- it starts in well under a second. Also a listener that accepts and
-- never answers (a hung scanner).
--
--   local clamd = require("clamd")
--   local av = clamd.start{ dir = scratch }      -- av.socket, av.stop()
--   local hung = clamd.silent{ dir = scratch }   -- hung.socket, hung.stop()
--   clamd.EICAR                                  -- the 68-byte test string
--
-- clamd.conf, clamd.log and db/ are written to dir (mode 755: the account
-- indimaild drops to reaches the socket, which is mode 666).
local D = require("daemon")
local t = D.t

local M = { bin = "/usr/sbin/clamd" }

M.EICAR = [[X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*]]
M.NAME = "Indimail.Test.EICAR.UNOFFICIAL"

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

local function conf(dir, o)
  return table.concat({
    "LocalSocket " .. dir .. "/clamd.sock",
    "LocalSocketMode 666",
    "Foreground yes",
    "DatabaseDirectory " .. dir .. "/db",
    "LogFile " .. dir .. "/clamd.log",
    "TemporaryDirectory " .. dir,
    "StreamMaxLength " .. (o.stream_max or "1M"),
  }, "\n") .. "\n"
end

-- Waits (bounded) for a unix socket at path; false if pid exited first.
local function wait_socket(path, pid, timeout)
  return D.eventually(function()
    if t.waitpid(pid, true) ~= "running" then return "exited" end
    return os.execute("test -S " .. path) and "ok"
  end, timeout or 15, 0.05) == "ok"
end

local function stopper(pid)
  local stopped = false
  return function()
    if not stopped then stopped = true; D.stop_pid(pid) end
  end
end

-- Starts clamd in o.dir (o.stream_max: its StreamMaxLength, default 1M).
function M.start(o)
  local dir = o.dir
  D.sh("mkdir -p " .. dir .. "/db && chmod 755 " .. dir .. " " .. dir .. "/db")
  D.writefile(dir .. "/db/test.ndb", "Indimail.Test.EICAR:0:*:" .. hex(M.EICAR) .. "\n")
  D.writefile(dir .. "/clamd.conf", conf(dir, o))
  local pid = assert(t.spawn({ M.bin, "-c", dir .. "/clamd.conf" }, dir .. "/clamd.out"))
  local sock = dir .. "/clamd.sock"
  if not wait_socket(sock, pid) then
    D.stop_pid(pid)
    error("clamd did not start: " .. (D.readfile(dir .. "/clamd.out") or ""))
  end
  return { socket = sock, pid = pid, stop = stopper(pid) }
end

-- A unix socket that accepts connections and never answers (a scanner that
-- hangs); it exits by itself after o.life seconds (default 60).
function M.silent(o)
  local sock = o.dir .. "/silent.sock"
  local py = ("import socket,time,os\n"
    .. "s=socket.socket(socket.AF_UNIX); s.bind(%q); os.chmod(%q,0o666); s.listen(16)\n"
    .. "s.settimeout(1); held=[]; end=time.time()+%d\n"
    .. "while time.time()<end:\n"
    .. "  try: held.append(s.accept()[0])\n"
    .. "  except socket.timeout: pass\n"):format(sock, sock, o.life or 60)
  D.writefile(o.dir .. "/silent.py", py)
  local pid = assert(t.spawn({ "python3", o.dir .. "/silent.py" }, o.dir .. "/silent.out"))
  if not wait_socket(sock, pid, 5) then
    D.stop_pid(pid)
    error("silent listener did not start: " .. (D.readfile(o.dir .. "/silent.out") or ""))
  end
  return { socket = sock, pid = pid, stop = stopper(pid) }
end

return M

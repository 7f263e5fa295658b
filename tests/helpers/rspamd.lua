-- rspamd: Debian's rspamd for the specs, started by the spec in a temp
-- folder with its own top configuration (the stock modules of
-- /etc/rspamd, no redis, no proxy or fuzzy worker), the normal and the
-- controller worker on free 127.0.0.1 ports, DNS pointed at a closed
-- loopback port (no lookup ever leaves, failures are immediate), logs in
-- the folder. The hyperscan cache (DBDIR) is build/rspamd-cache, kept
-- between runs: the first start compiles it (about a minute on a busy
-- 2-core machine), later ones take a few seconds.
--
--   local rspamd = require("rspamd")
--   local r = rspamd.start{ dir = scratch }      -- r.port, r.stop()
--   rspamd.GTUBE                                 -- the test string
local D = require("daemon")
local t = D.t

local M = { bin = "/usr/bin/rspamd", START_WAIT = 150 }

M.GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

local function conf(dir, port, ctl)
  return table.concat({
    '.include "$CONFDIR/common.conf"',
    "options {",
    '  pidfile = "' .. dir .. '/rspamd.pid";',
    '  .include "$CONFDIR/options.inc"',
    '  dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }',
    "}",
    'logging { type = "file"; filename = "' .. dir .. '/rspamd.log"; level = "info"; }',
    'worker "normal" { bind_socket = "127.0.0.1:' .. port .. '"; count = 1; .include "$CONFDIR/worker-normal.inc" }',
    'worker "controller" { bind_socket = "127.0.0.1:' .. ctl .. '"; count = 1; secure_ip = "127.0.0.1"; }',
  }, "\n") .. "\n"
end

local function listening(port)
  local c = require("socket").tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok
end

-- Starts rspamd in o.dir; waits (bounded by START_WAIT) for its port.
function M.start(o)
  local dir, port, ctl = o.dir, D.free_tcp_port(), D.free_tcp_port()
  local cache = D.root .. "/build/rspamd-cache"
  D.sh("mkdir -p " .. cache .. " " .. dir .. "/local")
  D.writefile(dir .. "/rspamd.conf", conf(dir, port, ctl))
  local argv = { M.bin, "-f", "-c", dir .. "/rspamd.conf", "--var=LOCAL_CONFDIR=" .. dir .. "/local",
    "--var=DBDIR=" .. cache, "--var=RUNDIR=" .. dir, "--var=LOGDIR=" .. dir }
  if t.getuid() == 0 then table.insert(argv, 2, "-i") end   -- workers as root: a test only
  local t0 = t.now()
  local pid = assert(t.spawn(argv, dir .. "/rspamd.out"))
  local up = D.eventually(function()
    if t.waitpid(pid, true) ~= "running" then return "exited" end
    return listening(port) and "ok"
  end, M.START_WAIT, 0.2)
  if up ~= "ok" then
    D.stop_pid(pid)
    error("rspamd did not start: " .. (D.readfile(dir .. "/rspamd.out") or ""))
  end
  local stopped = false
  return { port = port, pid = pid, started_in = t.now() - t0,
    stop = function() if not stopped then stopped = true; D.stop_pid(pid) end end }
end

return M

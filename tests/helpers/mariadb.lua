-- mariadb: a real MariaDB server of the spec's own, in a temp dir, started
-- once per suite (setup/teardown). Never the system's service: its own
-- datadir, socket, pid and log files, --no-defaults everywhere.
--
--   local M = require("mariadb")
--   local db = M.start()            -- { socket, port, dir, db, user, password, password_file }
--   db.sql("CREATE TABLE t (a INT)")  -- as root over the socket, in db.db; stdout, or error
--   db.sql_as_user("SELECT 1")        -- as the tests' user (db.user)
--   db:stop()  db:start()  db:restart()  db:kill()   -- "database down" and back
--   db:cleanup()                      -- stops it and removes the dir
--
-- Options: o.networking = false: socket only (--skip-networking); else
-- also 127.0.0.1 on a free port. o.timeout: seconds to wait for it to
-- answer (default 30). As root, mariadbd runs as the account the specs use
-- (tools/ensure-account: indimail), which owns the dir.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")

local M = {}
local Server = {}
Server.__index = Server

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function random_password()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(18)
  f:close()
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Runs the mariadb client with text on stdin; stdout, or raises with stderr.
local function client(self, text, user, password, db)
  local input, err = os.tmpname(), os.tmpname()
  D.writefile(input, text)
  local cmd = ("timeout 60 mariadb --no-defaults --socket=%s --user=%s --batch --skip-column-names"):format(
    q(self.socket), q(user or "root"))
  if password then cmd = cmd .. " --password=" .. q(password) end
  if db then cmd = cmd .. " --database=" .. q(db) end
  local p = io.popen(cmd .. " <" .. input .. " 2>" .. err)
  local out = p:read("a")
  local _, _, code = p:close()
  local e = D.readfile(err) or ""
  os.remove(input)
  os.remove(err)
  if code ~= 0 then error("mariadb: " .. e .. " (exit " .. tostring(code) .. ")", 2) end
  return out
end

local function ping(self)
  local _, code = D.sh(("timeout 5 mariadb-admin --no-defaults --socket=%s --user=root ping"):format(q(self.socket)))
  return code == 0
end

local function install(self)
  local user = D.t.getuid() == 0 and (" --user=" .. self.account) or ""
  local out, code = D.sh(("timeout 120 mariadb-install-db --no-defaults --datadir=%s/data"
    .. " --auth-root-authentication-method=normal --skip-test-db%s"):format(q(self.dir), user))
  if code ~= 0 then error("mariadb-install-db failed: " .. out) end
end

local function argv(self)
  local a = { "/usr/sbin/mariadbd", "--no-defaults", "--datadir=" .. self.dir .. "/data",
    "--socket=" .. self.socket, "--pid-file=" .. self.dir .. "/mariadbd.pid",
    "--log-error=" .. self.dir .. "/mariadbd.log", "--innodb-buffer-pool-size=16M",
    "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci" }
  if self.port then
    a[#a + 1] = "--bind-address=127.0.0.1"
    a[#a + 1] = "--port=" .. self.port
  else
    a[#a + 1] = "--skip-networking"
  end
  if D.t.getuid() == 0 then a[#a + 1] = "--user=" .. self.account end
  return a
end

-- Starts mariadbd on the existing datadir; waits until it answers a ping.
function Server:start()
  if self.pid then return self end
  self.pid = assert(D.t.spawn(argv(self), self.dir .. "/stderr.log"))
  local up = D.eventually(function()
    if D.t.waitpid(self.pid, true) ~= "running" then return "died" end
    return ping(self) and "up"
  end, self.timeout, 0.1)
  if up ~= "up" then
    local log = (D.readfile(self.dir .. "/mariadbd.log") or "") .. (D.readfile(self.dir .. "/stderr.log") or "")
    if up ~= "died" then D.stop_pid(self.pid, 1) end
    self.pid = nil
    error("mariadbd did not start (" .. tostring(up) .. "):\n" .. log)
  end
  return self
end

-- Graceful shutdown (SIGTERM), bounded (default 20 s), then SIGKILL.
function Server:stop(timeout)
  if not self.pid then return end
  D.stop_pid(self.pid, timeout or 20)
  self.pid = nil
end

-- Power loss: SIGKILL at once (InnoDB recovers at the next start).
function Server:kill()
  if not self.pid then return end
  D.t.kill(self.pid, "KILL")
  D.wait_pid(self.pid, 10)
  self.pid = nil
end

function Server:restart()
  self:stop()
  return self:start()
end

function Server:cleanup()
  self:stop()
  D.rmtemp(self.dir)
end

-- Creates the database and the tests' user (password in a 0600 file).
local function provision(self)
  self.password = random_password()
  self.password_file = self.dir .. "/db.password"
  D.writefile(self.password_file, self.password .. "\n")
  D.sh("chmod 600 " .. q(self.password_file))
  local grants = {}
  for _, host in ipairs({ "localhost", "127.0.0.1" }) do
    grants[#grants + 1] = ("CREATE USER '%s'@'%s' IDENTIFIED BY '%s';"):format(self.user, host, self.password)
    grants[#grants + 1] = ("GRANT ALL ON `%s`.* TO '%s'@'%s';"):format(self.db, self.user, host)
  end
  self.sql(("CREATE DATABASE `%s` CHARACTER SET utf8mb4;\n%s\nFLUSH PRIVILEGES;\n"):format(
    self.db, table.concat(grants, "\n")))
end

-- A new server in a new temp dir (see the head comment for o).
function M.start(o)
  o = o or {}
  local self = setmetatable({ account = o.account or "indimail", timeout = o.timeout or 30,
    db = o.db or "indimail", user = o.user or "indimail" }, Server)
  self.dir = D.mktemp("mariadb")
  self.socket = self.dir .. "/mysql.sock"
  if o.networking ~= false then self.port = D.free_tcp_port() end
  if D.t.getuid() == 0 then D.sh("chown " .. self.account .. ": " .. q(self.dir)) end
  self.sql = function(text) return client(self, text) end
  local ok, err = pcall(function()
    install(self)
    self:start()
    provision(self)
  end)
  -- From now on in db (a statement may still say USE another).
  self.sql = function(text) return client(self, text, nil, nil, self.db) end
  self.sql_as_user = function(text) return client(self, text, self.user, self.password, self.db) end
  if not ok then
    self:cleanup()
    error(err, 2)
  end
  return self
end

M.stop = function(s, timeout) return s:stop(timeout) end
M.kill = function(s) return s:kill() end
M.restart = function(s) return s:restart() end

return M

-- dirbackend: the directory's two SQL engines as fixtures, so one spec
-- suite runs on both (docs/directory.md).
--
--   for _, fx in ipairs(require("dirbackend").all()) do
--     describe(fx.name, function()
--       setup(fx.setup)  teardown(fx.teardown)
--       local db = fx.fresh()       -- a new, empty database
--       db.cli_args                 -- what bin/indimail needs to find it
--       db.directory                -- the daemon's directory = { } text
--       db.path (SQLite); db.socket, db.database, db.user,
--       db.password_file (MariaDB)  -- for other programs (Dovecot)
--       db.sql("SELECT ...")        -- a query's output, trimmed: columns
--                                   -- by tabs, NULL as on the engine
--       fx.fresh(undo)              -- its files removed by undo(fn), not by
--                                   -- cleanup.defer (a database of setup)
--       fx.down(db)  fx.up(db)      -- the database unreachable, and back
--
-- SQLite: a file in a folder of its own (the account may write there).
-- MariaDB: a real mariadbd of the suite's own (tests/helpers/mariadb.lua),
-- one database dropped and made again for each fresh(). db.sql runs with
-- the daemon's sql_mode (ANSI_QUOTES, PIPES_AS_CONCAT), so the same SQL
-- text works on both.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

local B = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function trim(s) return (s:gsub("%s+$", "")) end
local function root() return D.sh("id -u"):match("^0") ~= nil end

local sqlite = { name = "sqlite" }

function sqlite.setup() end
function sqlite.teardown() end

function sqlite.fresh(undo)
  local dir = D.mktemp("dirdb")
  if root() then D.sh("chown indimail: " .. dir) end
  local defer = undo or cleanup.defer
  defer(function() D.rmtemp(dir) end)
  local path = dir .. "/directory.sqlite"
  return {
    path = path,
    cli_args = { "--db", path },
    directory = ("backend = 'sqlite', path = %q"):format(path),
    sql = function(text) return trim(D.sh("sqlite3 -tabs " .. q(path) .. " " .. q(text))) end,
  }
end

function sqlite.down(db) D.sh("chmod 000 " .. q(db.path)) end
function sqlite.up(db) D.sh("chmod 640 " .. q(db.path)) end

local mariadb = { name = "mariadb" }

function mariadb.setup()
  mariadb.server = require("mariadb").start{ networking = false }
  local s = mariadb.server
  -- the secret: root's, readable by the account's group only
  if root() then D.sh("chown root:indimail " .. q(s.password_file)) end
  D.sh("chmod 640 " .. q(s.password_file))
end

function mariadb.teardown()
  if mariadb.server then mariadb.server:cleanup() end
  mariadb.server = nil
end

local SQL_MODE = "SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT,STRICT_ALL_TABLES';"

function mariadb.fresh(undo)
  local s = mariadb.server
  s.sql(("DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s` CHARACTER SET utf8mb4;"):format(s.db, s.db))
  local directory = ("backend = 'mariadb', socket = %q, database = %q, user = %q, password_file = %q"):format(
    s.socket, s.db, s.user, s.password_file)
  local cfg = D.mktemp("dircfg") .. "/cli.lua"
  D.writefile(cfg, ("indimail.config{ hostname = 'mx.test', listen = { { name = 'smtp', address = '127.0.0.1', port = 0 } }, directory = { %s } }\n"):format(directory))
  local defer = undo or cleanup.defer
  defer(function() D.rmtemp((cfg:gsub("/cli%.lua$", ""))) end)
  return {
    socket = s.socket, database = s.db, user = s.user, password_file = s.password_file,
    cli_args = { "-c", cfg },
    directory = directory,
    sql = function(text) return trim(s.sql("USE `" .. s.db .. "`; " .. SQL_MODE .. text .. ";")) end,
  }
end

function mariadb.down() mariadb.server:stop() end
function mariadb.up() mariadb.server:start() end

function B.all() return { sqlite, mariadb } end

return B

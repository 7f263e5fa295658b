-- Dovecot reads the users of the directory (docs/directory.md, "Dovecot"),
-- on SQLite and on MariaDB (tests/helpers/dirbackend.lua): a real Dovecot
-- 2.3 (dovecot-imapd, dovecot-pop3d, dovecot-sqlite, dovecot-mysql) with
-- passdb and userdb `driver = sql` over the database bin/indimail manages,
-- next to an indimaild that delivers into the same Maildirs. Python's
-- imaplib and poplib log in with the users' passwords and read what
-- indimail delivered; wrong passwords, a disabled user and a no-imap user
-- are refused where they must be. Needs root (Dovecot changes uid to the
-- indimail account for the mail processes): fails, never skips.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local maildir = require("maildir")
local backends = require("dirbackend")

local PY = "/usr/bin/python3"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The SQL of docs/directory.md for SQLite: `||` concatenates.
local SQLITE_CONF = [[
driver = sqlite
connect = DB
default_pass_scheme = CRYPT
password_query = \
  SELECT lower(u.local) || '@' || lower(u.domain) AS user, u.password AS password \
  FROM domains d JOIN users u ON u.domain = coalesce(d.alias_of, d.name) \
  WHERE d.name = '%d' AND u.local = '%n' AND (u.flags & 1) = 0 \
    AND NOT ('%s' = 'imap' AND (u.flags & 4) <> 0) \
    AND NOT ('%s' = 'pop3' AND (u.flags & 8) <> 0)
user_query = \
  SELECT 'ROOT/' || lower(u.domain) || '/' || lower(u.local) AS home, \
    'maildir:ROOT/' || lower(u.domain) || '/' || lower(u.local) || '/Maildir' AS mail, \
    'indimail' AS uid, 'indimail' AS gid \
  FROM domains d JOIN users u ON u.domain = coalesce(d.alias_of, d.name) \
  WHERE d.name = '%d' AND u.local = '%n' AND (u.flags & 1) = 0
iterate_query = SELECT lower(local) || '@' || lower(domain) AS user FROM users WHERE (flags & 1) = 0
]]

-- The same for MariaDB (driver mysql): Dovecot's session has the server's
-- sql_mode, where `||` is OR, so concat().
local MARIADB_CONF = [[
driver = mysql
connect = DB
default_pass_scheme = CRYPT
password_query = \
  SELECT concat(lower(u.local), '@', lower(u.domain)) AS user, u.password AS password \
  FROM domains d JOIN users u ON u.domain = coalesce(d.alias_of, d.name) \
  WHERE d.name = '%d' AND u.local = '%n' AND (u.flags & 1) = 0 \
    AND NOT ('%s' = 'imap' AND (u.flags & 4) <> 0) \
    AND NOT ('%s' = 'pop3' AND (u.flags & 8) <> 0)
user_query = \
  SELECT concat('ROOT/', lower(u.domain), '/', lower(u.local)) AS home, \
    concat('maildir:ROOT/', lower(u.domain), '/', lower(u.local), '/Maildir') AS mail, \
    'indimail' AS uid, 'indimail' AS gid \
  FROM domains d JOIN users u ON u.domain = coalesce(d.alias_of, d.name) \
  WHERE d.name = '%d' AND u.local = '%n' AND (u.flags & 1) = 0
iterate_query = SELECT concat(lower(local), '@', lower(domain)) AS user FROM users WHERE (flags & 1) = 0
]]

-- On MariaDB, Dovecot's own account that may only read (docs/directory.md):
-- the connect string.
local function mariadb_reader(db)
  local pw = ("%08x%08x"):format(math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  db.sql(("CREATE USER IF NOT EXISTS 'dovecot'@'localhost' IDENTIFIED BY '%s';"
    .. " GRANT SELECT ON %s.domains TO 'dovecot'@'localhost';"
    .. " GRANT SELECT ON %s.users TO 'dovecot'@'localhost'"):format(pw, db.database, db.database))
  return ("host=%s dbname=%s user=dovecot password=%s"):format(db.socket, db.database, pw)
end

-- dovecot-sql.conf.ext for engine name over db (dirbackend), mailboxes at
-- root; the tables must exist.
local function sql_conf(name, db, root)
  local text, connect = SQLITE_CONF, db.path
  if name == "mariadb" then
    text, connect = MARIADB_CONF, mariadb_reader(db)
  end
  return (text:gsub("DB", function() return connect end):gsub("ROOT", function() return root end))
end

-- A dovecot.conf that keeps everything in dir; Dovecot runs as root, its
-- helpers as the Debian package's accounts, the SQL worker as indimail.
local function dovecot_conf(dir, ports, uid)
  return table.concat({
    "protocols = imap pop3",
    "listen = 127.0.0.1",
    "base_dir = " .. dir .. "/run",
    "state_dir = " .. dir .. "/state",
    "log_path = " .. dir .. "/dovecot.log",
    "ssl = no",
    "auth_mechanisms = plain",
    "disable_plaintext_auth = no",
    "auth_failure_delay = 0",
    "auth_verbose = yes",
    "default_internal_user = dovecot",
    "default_login_user = dovenull",
    "first_valid_uid = " .. uid,
    "passdb {\n  driver = sql\n  args = " .. dir .. "/dovecot-sql.conf.ext\n}",
    "userdb {\n  driver = sql\n  args = " .. dir .. "/dovecot-sql.conf.ext\n}",
    "service auth-worker {\n  user = indimail\n}",
    -- no growing delay after failures from 127.0.0.1 (the spec fails on purpose)
    "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}",
    ("service imap-login {\n  inet_listener imap {\n    port = %d\n  }\n"
      .. "  inet_listener imaps {\n    port = 0\n  }\n}"):format(ports.imap),
    ("service pop3-login {\n  inet_listener pop3 {\n    port = %d\n  }\n"
      .. "  inet_listener pop3s {\n    port = 0\n  }\n}"):format(ports.pop3),
  }, "\n") .. "\n"
end

local function port_open(port)
  local s = require("socket").tcp()
  s:settimeout(0.5)
  local ok = s:connect("127.0.0.1", port)
  s:close()
  return ok
end

-- Starts Dovecot for database db and mailboxes root; returns a table with
-- dir, conf, ports, log(), stop(). Errors (clearly) when it cannot.
-- What the spec needs before it starts anything: errors, never skips.
local function dovecot_require()
  assert(D.t.getuid() == 0, "dovecot_spec must run as root: Dovecot starts as root and "
    .. "switches its mail processes to the indimail account")
  local _, rc = D.sh("command -v dovecot && command -v doveadm && test -e "
    .. "/usr/lib/dovecot/modules/auth/libdriver_sqlite.so && test -e "
    .. "/usr/lib/dovecot/modules/auth/libdriver_mysql.so")
  assert(rc == 0, "Dovecot not installed: ./tools/need-packages dovecot-imapd dovecot-pop3d "
    .. "dovecot-sqlite dovecot-mysql")
end

local function dovecot_start(sql)
  local dv = { dir = D.mktemp("dovecot"), ports = { imap = D.free_tcp_port() } }
  repeat dv.ports.pop3 = D.free_tcp_port() until dv.ports.pop3 ~= dv.ports.imap
  dv.conf = dv.dir .. "/dovecot.conf"
  dv.log = function() return D.readfile(dv.dir .. "/dovecot.log") or "" end
  dv.stop = function()
    D.sh("timeout 20 doveadm -c " .. dv.conf .. " stop >/dev/null 2>&1")
    D.rmtemp(dv.dir)
  end
  local uid = D.sh("id -u indimail"):gsub("%s+$", "")
  D.writefile(dv.dir .. "/dovecot-sql.conf.ext", sql)
  D.sh("chmod 600 " .. dv.dir .. "/dovecot-sql.conf.ext")
  D.writefile(dv.conf, dovecot_conf(dv.dir, dv.ports, uid))
  -- its output to a file: the daemon keeps the descriptors it was given
  local _, code = D.sh("timeout 20 dovecot -c " .. dv.conf .. " >" .. dv.dir .. "/start.log 2>&1")
  if code ~= 0 then
    local log = (D.readfile(dv.dir .. "/start.log") or "") .. dv.log()
    dv.stop()
    error("dovecot did not start (exit " .. tostring(code) .. "): " .. log)
  end
  if not D.eventually(function()
    return port_open(dv.ports.imap) and port_open(dv.ports.pop3)
  end, 10, 0.1) then
    local log = dv.log()
    dv.stop()
    error("dovecot is not listening on 127.0.0.1:" .. dv.ports.imap .. "/" .. dv.ports.pop3 .. ": " .. log)
  end
  return dv
end

-- imaplib and poplib: prints "OK" and the message's text, or "NO" and why.
local CLIENT = [[
import imaplib, poplib, sys
proto, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    if proto == "imap":
        c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        try:
            c.login(user, pw)
        except imaplib.IMAP4.error as e:
            print("NO", e); sys.exit(0)
        typ, data = c.select("INBOX")
        assert typ == "OK", data
        typ, data = c.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK", data
        text = data[0][1].decode()
        c.logout()
    else:
        c = poplib.POP3("127.0.0.1", port, timeout=10)
        try:
            c.user(user); c.pass_(pw)
        except poplib.error_proto as e:
            print("NO", e); sys.exit(0)
        text = b"\r\n".join(c.retr(1)[1]).decode()
        c.quit()
except Exception as e:
    print("ERROR", repr(e)); sys.exit(1)
print("OK"); print(text)
]]

local function message(subject)
  return "From: someone@remote.test\r\nSubject: " .. subject .. "\r\n\r\nbody of " .. subject .. "\r\n"
end

for _, fx in ipairs(backends.all()) do
describe("Dovecot on the directory on " .. fx.name, function()
  local d, dv, script
  local undo = {}

  -- protocol, user, password: the client's output
  local function login(proto, user, pw)
    local port = proto == "imap" and dv.ports.imap or dv.ports.pop3
    return (D.sh(("timeout 30 %s %s %s %d %s %s"):format(PY, script, proto, port, q(user), q(pw))))
  end

  setup(function()
    dovecot_require()
    local ok, err = pcall(function()
      fx.setup()
      undo[#undo + 1] = fx.teardown
      local db = fx.fresh(function(fn) undo[#undo + 1] = fn end)
      d = D.start{ deliver = true, directory = db.directory }
      undo[#undo + 1] = function() d:cleanup() end
      local function cli(args, stdin)
        local cmd = D.bin .. "/indimail -c " .. q(d.config)
        for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
        if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
        local out, rc = D.sh(cmd)
        assert(rc == 0, cmd .. ": " .. out)
      end
      cli{ "domain", "add", "example.test" }
      cli{ "domain", "add", "alias.test", "--alias-of", "example.test" }
      cli({ "user", "add", "joe@example.test", "--password-stdin" }, "Joe's pw \"1\"")
      cli({ "user", "add", "ann@example.test", "--password-stdin", "--no-imap" }, "ann-passw0rd")
      cli({ "user", "add", "off@example.test", "--password-stdin", "--disable" }, "off-passw0rd")
      dv = dovecot_start(sql_conf(fx.name, db, d.dir .. "/maildirs"))
      undo[#undo + 1] = function() dv.stop() end
      script = os.tmpname()
      D.writefile(script, CLIENT)
      undo[#undo + 1] = function() os.remove(script) end
      d:send("someone@remote.test", { "joe@example.test" }, message("for joe via indimail"))
      d:send("someone@remote.test", { "ann@example.test" }, message("for ann via indimail"))
      assert(maildir.wait(d, "joe", 1, 15), "no delivery to joe: " .. d:log():sub(-3000))
      assert(maildir.wait(d, "ann", 1, 15), "no delivery to ann: " .. d:log():sub(-3000))
    end)
    if not ok then
      for i = #undo, 1, -1 do pcall(undo[i]) end
      undo = {}
      error(err, 0)
    end
  end)

  teardown(function()
    for i = #undo, 1, -1 do pcall(undo[i]) end
    undo = {}
  end)

  it("reads indimail's delivery over IMAP with the user's password", function()
    local out = login("imap", "joe@example.test", "Joe's pw \"1\"")
    assert.matches("^OK\n", out, nil, dv.log())
    assert.matches("Subject: for joe via indimail", out, 1, true)
    assert.matches("body of for joe via indimail", out, 1, true)
  end)

  it("reads it over POP3 too", function()
    local out = login("pop3", "joe@example.test", "Joe's pw \"1\"")
    assert.matches("^OK\n", out, nil, dv.log())
    assert.matches("Subject: for joe via indimail", out, 1, true)
  end)

  it("logs in through an alias domain as the real user", function()
    local out = login("imap", "JOE@Alias.Test", "Joe's pw \"1\"")
    assert.matches("^OK\n", out, nil, dv.log())
    assert.matches("Subject: for joe via indimail", out, 1, true)
    assert.matches("imap%-login: Info: Login: user=<joe@example%.test>", dv.log())
  end)

  it("refuses a wrong password on both", function()
    assert.matches("^NO .*AUTHENTICATIONFAILED", login("imap", "joe@example.test", "Wr0ngPw"))
    assert.matches("^NO .*%-ERR", login("pop3", "joe@example.test", "Wr0ngPw"))
    assert.matches("^NO ", login("imap", "ghost@example.test", "Joe's pw \"1\""))
    assert.not_matches("Wr0ngPw", dv.log(), 1, true)
  end)

  it("refuses a disabled user on both", function()
    assert.matches("^NO ", login("imap", "off@example.test", "off-passw0rd"))
    assert.matches("^NO ", login("pop3", "off@example.test", "off-passw0rd"))
  end)

  it("refuses a no-imap user over IMAP and lets her read over POP3", function()
    assert.matches("^NO ", login("imap", "ann@example.test", "ann-passw0rd"))
    local out = login("pop3", "ann@example.test", "ann-passw0rd")
    assert.matches("^OK\n", out, nil, dv.log())
    assert.matches("Subject: for ann via indimail", out, 1, true)
  end)
end)
end

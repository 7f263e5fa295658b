-- `indimail import vpopmail|indimail` (docs/directory.md, "Importing from
-- vpopmail / IndiMail"): a real MariaDB server (tests/helpers/mariadb.lua)
-- holds a vpopmail --enable-many-domains schema, a vpopmail schema with one
-- table per domain and an IndiMail schema, made with the mariadb client
-- ($1$, $6$ and DES hashes, quotas, pw_gid flags, an indibak user,
-- valiases, hostcntrl, SQL metacharacters and UTF-8, bad rows). The import
-- fills a new SQLite directory; then a real daemon on it logs an imported
-- user in with its original password and delivers to an imported alias.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local M = require("mariadb")
local cleanup = require("cleanup")
local maildir = require("maildir")

local BIN = D.bin .. "/indimail"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs bin/indimail with args (a list); returns exit code, stdout, stderr.
local function cli(args)
  local parts = { BIN }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local err = os.tmpname()
  local p = io.popen(table.concat(parts, " ") .. " 2>" .. err)
  local out = p:read("a")
  local _, _, code = p:close()
  local e = D.readfile(err) or ""
  os.remove(err)
  return code, out, e
end

local function hash(kind, pw)
  local cmd = kind == "des"
    and ("python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], \"ab\"))' " .. q(pw))
    or ("openssl passwd -" .. kind .. " " .. q(pw))
  return (D.sh(cmd):gsub("%s+$", ""))
end

local H = {}   -- the source hashes, made once

local USERS_TABLE = [[(pw_name char(32) not null, %s pw_passwd char(128),
  pw_uid int, pw_gid int, pw_gecos char(48), pw_dir char(160), pw_shell char(20),
  pw_clear_passwd char(16), primary key (pw_name %s))]]
local VALIAS = "CREATE TABLE valias (alias char(32) not null, domain char(96) not null, valias_line text not null, index (alias, domain));\n"

local function users_table(name, many)
  return ("CREATE TABLE %s %s;\n"):format(name, USERS_TABLE:format(
    many and "pw_domain char(96) not null," or "", many and ", pw_domain" or ""))
end

-- vpopmail --enable-many-domains: NO_POP 0x02, NO_IMAP 0x08, NO_RELAY 0x20,
-- NO_SMTP 0x800 (vpopmail.h).
local function vpop_many_sql()
  return "CREATE DATABASE vpop_many; USE vpop_many;\n" .. users_table("vpopmail", true) .. VALIAS
    .. "INSERT INTO vpopmail VALUES\n"
    .. ("('joe','example.test','%s',0,0,'Joe','/home/vpopmail/domains/example.test/joe','NOQUOTA','pw-one'),\n"):format(H.md5)
    .. ("('ann','Example.Test','%s',0,2,'O''Brien \"; DROP TABLE vpopmail; -- 用户','/d/ann','5242880S,1000C',''),\n"):format(H.sha)
    .. ("('nos','example.test','%s',0,2048,'','/d/nos','1048576S',''),\n"):format(H.sha)
    .. ("('old','local.test','%s',0,40,'Old','/d/old','2097152',''),\n"):format(H.des)
    .. ("('o''hara; --','example.test','%s',0,0,'bad name','/d/x','NOQUOTA',''),\n"):format(H.md5)
    .. "('nohash','example.test','',0,0,'no hash','/d/y','NOQUOTA','');\n"
    .. "INSERT INTO valias VALUES ('sales','local.test','&joe@example.test'),"
    .. " ('sales','local.test','old@local.test'), ('info','example.test','ext@remote.test'),"
    .. " ('prog','example.test','|/usr/bin/autorespond 3600 message');\n"
end

-- vpopmail without --enable-many-domains: the table of single-one.test.
local function vpop_one_sql()
  return "CREATE DATABASE vpop_one; USE vpop_one;\n" .. users_table("single_one_test", false) .. VALIAS
    .. ("INSERT INTO single_one_test VALUES ('sam','%s',0,0,'Sam','/d/sam','NOQUOTA','');\n"):format(H.sha)
    .. "INSERT INTO valias VALUES ('help','single-one.test','sam@single-one.test');\n"
end

-- IndiMail: indimail (active), indibak (inactive), valias, host_table,
-- hostcntrl; NO_SMTP is 0x200 there (indimail.h).
local function indimail_sql(db)
  return "USE " .. db .. ";\n" .. users_table("indimail", true) .. users_table("indibak", true) .. VALIAS
    .. "CREATE TABLE host_table (host char(64) not null, ipaddr char(16) not null, primary key (host));\n"
    .. "CREATE TABLE hostcntrl (pw_name char(40) not null, pw_domain char(67) not null,"
    .. " pw_passwd char(128) not null, host char(64) not null, primary key (pw_name, pw_domain));\n"
    .. ("INSERT INTO indimail VALUES ('ind','indi.test','%s',0,0,'','/d/ind','NOQUOTA',''),"):format(H.sha)
    .. (" ('nos','indi.test','%s',0,512,'','/d/nos','NOQUOTA','');\n"):format(H.md5)
    .. ("INSERT INTO indibak VALUES ('gone','indi.test','%s',0,0,'','/d/gone','NOQUOTA','');\n"):format(H.md5)
    .. "INSERT INTO valias VALUES ('all','indi.test','&ind@indi.test');\n"
    .. "INSERT INTO host_table VALUES ('mx2','10.0.0.2');\n"
    .. "INSERT INTO hostcntrl VALUES ('ind','indi.test','','mx2');\n"
end

local function dbdir()
  local dir = D.mktemp("import")
  if D.sh("id -u"):match("^0") then D.sh("chown indimail: " .. dir) end
  cleanup.defer(function() D.rmtemp(dir) end)
  return dir
end

local function show(db, address)
  local code, out, err = cli{ "--db", db, "--json", "user", "show", address }
  assert.equal(0, code, err)
  return out
end

describe("indimail import", function()
  local my
  setup(function()
    H.md5, H.sha, H.des = hash("1", "pw-one"), hash("6", "pw-six"), hash("des", "desword")
    assert.matches("^%$1%$", H.md5)
    assert.matches("^%$6%$", H.sha)
    assert.equal(13, #H.des)
    my = M.start()
    my.sql(vpop_many_sql() .. vpop_one_sql() .. indimail_sql(my.db)
      .. ("GRANT SELECT ON vpop_many.* TO '%s'@'localhost', '%s'@'127.0.0.1';"):format(my.user, my.user)
      .. ("GRANT SELECT ON vpop_one.* TO '%s'@'localhost', '%s'@'127.0.0.1';"):format(my.user, my.user))
  end)
  teardown(function() if my then my:cleanup() end end)
  after_each(cleanup.run)

  -- The source options: over TCP (port) or the socket.
  local function src(db, tcp)
    local a = { "--mysql-user", my.user, "--mysql-password-file", my.password_file, "--mysql-db", db }
    for _, x in ipairs(tcp and { "--mysql-host", "127.0.0.1", "--mysql-port", tostring(my.port) }
      or { "--mysql-socket", my.socket }) do a[#a + 1] = x end
    return a
  end

  local function import(db, kind, srcdb, tcp, extra)
    local a = { "--db", db, "import", kind }
    for _, x in ipairs(src(srcdb, tcp)) do a[#a + 1] = x end
    for _, x in ipairs(extra or {}) do a[#a + 1] = x end
    return cli(a)
  end

  it("imports vpopmail (many domains) over TCP: hashes kept, flags and quotas mapped, bad rows named", function()
    local db = dbdir() .. "/d.sqlite"
    local code, out, err = import(db, "vpopmail", "vpop_many", true)
    assert.equal(65, code, err)                           -- some rows skipped
    assert.matches("2 domains, 4 users, 3 aliases, 0 hosts imported; 3 rows skipped", out, 1, true)
    assert.matches("skipped: table vpopmail, pw_name 'o'hara; --'", err, 1, true)
    assert.matches("skipped: table vpopmail, pw_name 'nohash'", err, 1, true)
    assert.matches("skipped: table valias, alias 'prog'", err, 1, true)
    assert.not_matches(H.md5, err, 1, true)               -- never a hash
    assert.not_matches("pw-one", out .. err, 1, true)     -- pw_clear_passwd never read
    out = show(db, "ann@example.test")
    assert.matches('"quota":5242880', out, 1, true)
    assert.matches('"no_pop":1', out, 1, true)
    assert.matches('"no_smtp":0', out, 1, true)
    assert.matches('"no_smtp":1', show(db, "nos@example.test"), 1, true)
    out = show(db, "old@local.test")
    assert.matches('"quota":2097152', out, 1, true)
    assert.matches('"no_imap":1', out, 1, true)
    assert.matches('"no_relay":1', out, 1, true)
    assert.matches('"quota":0', show(db, "joe@example.test"), 1, true)
    local stored = D.sh("sqlite3 " .. db .. " \"SELECT password FROM users WHERE local = 'joe'\""):gsub("%s+$", "")
    assert.equal(H.md5, stored)
    code, out = cli{ "--db", db, "alias", "list" }
    assert.equal("info@example.test\text@remote.test\nsales@local.test\tjoe@example.test\n"
      .. "sales@local.test\told@local.test\n", out)
    -- again: every user and alias exists, reported and skipped
    code, out, err = import(db, "vpopmail", "vpop_many", false)
    assert.equal(65, code)
    assert.matches("0 domains, 0 users, 0 aliases", out, 1, true)
    assert.matches("user joe@example.test exists", err, 1, true)
  end)

  it("writes nothing with --dry-run, and only one domain with --domain", function()
    local db = dbdir() .. "/d.sqlite"
    local code, out = import(db, "vpopmail", "vpop_many", false, { "--dry-run" })
    assert.equal(65, code)
    assert.matches("dry run, nothing written: 2 domains, 4 users", out, 1, true)
    code, out = cli{ "--db", db, "--json", "domain", "list" }
    assert.equal("[]\n", out)
    code, out = import(db, "vpopmail", "vpop_many", false, { "--domain", "local.test" })
    assert.equal(0, code)
    assert.matches("1 domains, 1 users, 2 aliases", out, 1, true)
  end)

  it("imports vpopmail with one table per domain (--domain), and asks for it without", function()
    local db = dbdir() .. "/d.sqlite"
    local code, out, err = import(db, "vpopmail", "vpop_one", false)
    assert.equal(66, code)
    assert.matches("--domain", err, 1, true)
    code, out, err = import(db, "vpopmail", "vpop_one", false, { "--domain", "single-one.test" })
    assert.equal(0, code, err)
    assert.matches("1 domains, 1 users, 1 aliases", out, 1, true)
    show(db, "sam@single-one.test")
  end)

  it("imports IndiMail: indibak users disabled, its NO_SMTP bit, hosts and hostcntrl", function()
    local db = dbdir() .. "/d.sqlite"
    local code, out, err = import(db, "indimail", my.db, false)
    assert.equal(0, code, err)
    assert.matches("1 domains, 3 users, 1 aliases, 1 hosts imported; 0 rows skipped", out, 1, true)
    out = show(db, "ind@indi.test")
    assert.matches('"host":"mx2"', out, 1, true)
    assert.matches('"disabled":0', out, 1, true)
    assert.matches('"disabled":1', show(db, "gone@indi.test"), 1, true)
    assert.matches('"no_smtp":1', show(db, "nos@indi.test"), 1, true)
  end)

  it("fails with 69 while the source database is down, and works once it is back", function()
    local db = dbdir() .. "/d.sqlite"
    my:stop()
    local code, _, err = import(db, "indimail", my.db, false)
    my:start()
    assert.equal(69, code)
    assert.matches("source database: connect", err, 1, true)
    assert.equal(0, (import(db, "indimail", my.db, true)))
  end)

  it("gives a daemon users that log in with their old passwords, and aliases that deliver", function()
    local dir = dbdir()
    local path = dir .. "/directory.sqlite"
    local d = D.start_for_test{ deliver = true,
      directory = ("backend = 'sqlite', path = %q, cache_ttl = 1, negative_ttl = 1"):format(path),
      listen_opts = { smtp = "auth = true, auth_plaintext = true" } }
    local a = { "-c", d.config, "import", "vpopmail" }
    for _, x in ipairs(src("vpop_many", true)) do a[#a + 1] = x end
    assert.equal(65, (cli(a)))
    local function auth(user, pw)
      return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5 --helo c.example.test"
        .. " --auth PLAIN --auth-user %s --auth-password %s --from %s --to x@remote.test"
        .. " --quit-after RCPT 2>&1"):format(d.ports.smtp, q(user), q(pw), q(user)))
    end
    for _, c in ipairs({ { "joe@example.test", "pw-one" }, { "ann@example.test", "pw-six" },
      { "old@local.test", "desword" } }) do
      assert.matches("<[-~*]+ +235 2%.7%.0", auth(c[1], c[2]), c[1])
    end
    assert.matches("<[-~*]+ +535 5%.7%.8", auth("joe@example.test", "pw-six"))
    assert.not_matches("<[-~*]+ +235", auth("nos@example.test", "pw-six"))   -- NO_SMTP
    d:send("someone@remote.test", { "sales@local.test" }, "Subject: imported alias\r\n\r\nhi\r\n")
    assert.is_truthy(maildir.wait(d, "joe", 1, 10), d:log():sub(-2000))
    assert.is_truthy(D.eventually(function()
      return #maildir.new_files(d, "old", "local.test") >= 1
    end, 10), d:log():sub(-2000))
  end)
end)

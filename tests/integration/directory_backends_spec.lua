-- The directory's databases (docs/directory.md), the same suite for SQLite
-- and for MariaDB (a real mariadbd, tests/helpers/dirbackend.lua): the
-- admin CLI (bin/indimail domain|user|alias|host, the vpopmail names,
-- --json, exit codes, hostile input stored exactly or refused), then a
-- daemon on the database: RCPT decisions, SMTP AUTH, delivery to users,
-- aliases and a catch-all, domains of the database only (local without
-- local_domains: RCPT, delivery, bounces, senders, `domain del`), users
-- added while it runs, a database it cannot
-- reach (451, never 5xx, nothing lost) and its recovery, and 10,000 users
-- imported in one go.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local backends = require("dirbackend")

local BIN = D.bin .. "/indimail"
-- a password the default policy accepts (8 characters or more)
local PW = "Passw0rd-1"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs bin/indimail with args (a list); returns exit code, stdout, stderr.
local function cli(args, stdin)
  local parts = { BIN }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local err = os.tmpname()
  local cmd = table.concat(parts, " ") .. " 2>" .. err
  if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  local e = D.readfile(err) or ""
  os.remove(err)
  return code, out, e
end

local function db_cli(db)
  return function(args, stdin)
    local a = {}
    for _, x in ipairs(db.cli_args) do a[#a + 1] = x end
    for _, x in ipairs(args) do a[#a + 1] = x end
    return cli(a, stdin)
  end
end

-- A configuration of db's directory with password_policy = { policy }.
local function policy_cli(db, policy)
  local dir = D.scratch_dir("pwpolicy")
  local cfg = dir .. "/cli.lua"
  D.writefile(cfg, ("indimail.config{ hostname = 'mx.test', listen = { { name = 'smtp', "
    .. "address = '127.0.0.1', port = 0 } }, directory = { %s, password_policy = { %s } } }\n"):format(
    db.directory, policy))
  return cfg
end

-- Valid JSON (python3 parses it).
local function json_ok(s)
  local f = os.tmpname()
  D.writefile(f, s)
  local ok = os.execute("python3 -c 'import json,sys; json.load(open(sys.argv[1]))' " .. f)
  os.remove(f)
  return ok
end

for _, fx in ipairs(backends.all()) do
describe(fx.name, function()
  setup(fx.setup)
  teardown(fx.teardown)

describe("indimail domain|user|alias|host", function()
  after_each(cleanup.run)

  it("creates, lists, shows and deletes with --json", function()
    local run = db_cli(fx.fresh())
    assert.equal(0, (run{ "domain", "add", "Example.TEST" }))
    assert.equal(0, (run({ "user", "add", "joe@example.test", "--password-stdin", "--quota", "2M" }, "s3cret-Pa55")))
    assert.equal(0, (run{ "alias", "add", "info@example.test", "joe@example.test", "x@remote.test" }))
    local code, out = run{ "--json", "domain", "list" }
    assert.equal(0, code)
    assert.is_truthy(json_ok(out), out)
    assert.matches('"name":"example.test"', out, 1, true)
    assert.matches('"users":1', out, 1, true)
    code, out = run{ "user", "show", "joe@example.test", "--json" }
    assert.equal(0, code)
    assert.is_truthy(json_ok(out), out)
    assert.matches('"quota":2097152', out, 1, true)
    assert.not_matches("%$y%$", out)         -- never the hash
    code, out = run{ "alias", "list", "--json" }
    assert.is_truthy(json_ok(out), out)
    assert.matches('"target":"x@remote.test"', out, 1, true)
    code, out = run{ "user", "mod", "joe@example.test", "--disable", "--no-pop", "--json" }
    assert.equal(0, code)
    code, out = run{ "--json", "user", "list" }
    assert.matches('"disabled":1', out, 1, true)
    assert.matches('"no_pop":1', out, 1, true)
    assert.equal(0, (run{ "host", "add", "mx2", "10.0.0.2", "--port", "2525" }))
    assert.equal(0, (run{ "user", "move", "joe@example.test", "mx2" }))
    code, out = run{ "--json", "host", "list" }
    assert.matches('"port":2525', out, 1, true)
    code, out = run{ "user", "show", "joe@example.test" }
    assert.matches("host: mx2", out, 1, true)
    assert.equal(0, (run{ "user", "del", "joe@example.test" }))
    assert.equal(0, (run{ "domain", "del", "example.test" }))
    code, out = run{ "--json", "domain", "list" }
    assert.equal("[]\n", out)
  end)

  it("stores a yescrypt hash that verifies the password", function()
    local db = fx.fresh()
    local run = db_cli(db)
    run{ "domain", "add", "example.test" }
    assert.equal(0, (run({ "user", "add", "joe@example.test", "--password-stdin" }, "pässwörd \"; --")))
    local hash = db.sql("SELECT password FROM users")
    assert.matches("^%$y%$", hash)
    local again = D.sh("perl -e 'print crypt($ARGV[0], $ARGV[1])' " .. q("pässwörd \"; --") .. " " .. q(hash))
    assert.equal(hash, again)
    assert.equal(0, (run({ "user", "passwd", "joe@example.test", "--password-stdin" }, "0ther-Passw0rd")))
    assert.not_equal(hash, db.sql("SELECT password FROM users"))
  end)

  it("answers every bad input with one line and a documented exit code", function()
    local db = fx.fresh()
    local run = db_cli(db)
    run{ "domain", "add", "example.test" }
    run({ "user", "add", "joe@example.test", "--password-stdin" }, PW)
    local strict = policy_cli(db, "min_length = 10, min_classes = 3, max_length = 20")
    local MIN, MAX, CLASSES = "(directory.password_policy.min_length)",
      "(directory.password_policy.max_length)", "(directory.password_policy.min_classes)"
    local cases = {
      { { "user", "add", "not-an-address", "--password-stdin" }, PW, 65, "not a user@domain" },
      { { "user", "add", "joe@example.test", "--password-stdin" }, PW, 73, "exists" },
      { { "user", "add", "ann@unknown.test", "--password-stdin" }, PW, 68, "unknown domain" },
      { { "user", "add", "ann@example.test", "--password-stdin" }, "", 65, "empty password" },
      { { "user", "del", "ghost@example.test" }, nil, 67, "no user" },
      { { "domain", "add", "example.test" }, nil, 73, "exists" },
      { { "user", "frobnicate" }, nil, 64, "unknown command" },
      { { "user", "add", "x@example.test", "--bogus" }, nil, 64, "unknown option" },
      { { "user", "quota", "joe@example.test", "lots" }, nil, 65, "not a quota" },
      { { "user", "move", "joe@example.test", "nohost" }, nil, 68, "unknown host" },
      -- the password policy: the defaults (8 to 1024 characters, 1 class)
      { { "user", "add", "ann@example.test", "--password-stdin" }, "pw", 65,
        "indimail: password too short: at least 8 characters " .. MIN },
      { { "user", "add", "ann@example.test", "--password-stdin" }, "ééééééé", 65,
        "password too short: at least 8 characters" },            -- 7 characters, 14 bytes
      { { "user", "add", "ann@example.test", "--password-stdin" }, ("a"):rep(1025), 65,
        "password too long: at most 1024 characters " .. MAX },
      { { "user", "add", "annabelle@example.test", "--password-stdin" }, "AnnaBelle", 65,
        "password equals the user's name or address" },
      { { "user", "passwd", "joe@example.test", "--password-stdin" }, "JOE@Example.test", 65,
        "password equals the user's name or address" },
      { { "user", "add", "ann@example.test", "--password-stdin" }, "Pass\tw0rd-1", 65,
        "password has a control character" },
      { { "vadduser", "ann@example.test", "pw" }, nil, 65, "password too short" },
      { { "vpasswd", "joe@example.test", "--password-stdin" }, "short", 65, "password too short" },
      -- a policy from the configuration
      { { "-c", strict, "user", "add", "ann@example.test", "--password-stdin" }, "Passw0rd-", 65,
        "password too short: at least 10 characters " .. MIN },
      { { "-c", strict, "user", "add", "ann@example.test", "--password-stdin" }, "password-password", 65,
        "password too simple: characters of at least 3 classes" },
      { { "-c", strict, "user", "add", "ann@example.test", "--password-stdin" }, "Passw0rd-Passw0rd-123", 65,
        "password too long: at most 20 characters " .. MAX },
      { { "-c", strict, "user", "passwd", "joe@example.test", "--password-stdin" }, "password12", 65,
        CLASSES },
      -- a bad policy is refused at load
      { { "-c", policy_cli(db, "min_classes = 5"), "user", "list" }, nil, 78,
        "bad config: directory.password_policy.min_classes: 5 is out of range [1, 4]" },
      { { "-c", policy_cli(db, "min_length = 12, max_length = 10"), "user", "list" }, nil, 78,
        "bad config: directory.password_policy.max_length: is less than min_length" },
    }
    for _, c in ipairs(cases) do
      local args = c[1]
      if args[1] ~= "-c" then args = nil end
      local code, _, err = (args and cli or run)(c[1], c[2])
      assert.equal(c[3], code, table.concat(c[1], " ") .. ": " .. err)
      assert.matches(c[4], err, 1, true)
      assert.equal(1, select(2, err:gsub("\n", "")), err)    -- one line
      assert.not_matches("Passw0rd", err, 1, true)            -- never the password
    end
    -- a strict policy still lets its passwords through
    assert.equal(0, (cli({ "-c", strict, "user", "add", "ann@example.test", "--password-stdin" }, "Passw0rd-12")))
    assert.equal("1", db.sql("SELECT count(*) FROM users WHERE local = 'ann'"))
    -- `user import`: a plaintext password is checked, a crypt hash is not
    local f = os.tmpname()
    D.writefile(f, "bob@example.test $y$j9T$notchecked$hash\ncyd@example.test pw\n")
    local code, _, err = run{ "user", "import", f }
    os.remove(f)
    assert.equal(65, code, err)
    assert.matches("password too short: at least 8 characters", err, 1, true)
    assert.matches("line 2: nothing imported", err, 1, true)
    assert.equal("0", db.sql("SELECT count(*) FROM users WHERE local IN ('bob', 'cyd')"))
    -- indimaild -t refuses the same
    local out = D.sh(D.bin .. "/indimaild -t -c " .. policy_cli(db, "min_length = 0") .. " 2>&1")
    assert.matches("bad config: directory.password_policy.min_length: 0 is out of range", out, 1, true)
  end)

  it("refuses or stores exactly SQL metacharacters and Unicode in every field", function()
    local run = db_cli(fx.fresh())
    local evil = "\"; DROP TABLE users; --"
    run{ "domain", "add", "example.test" }
    -- domains and user names are refused (mailbox folder rules, LDH domains)
    for _, a in ipairs({ "o'hara@example.test", evil .. "@example.test", "用户@example.test" }) do
      assert.equal(65, (run({ "user", "add", a, "--password-stdin" }, PW)), a)
    end
    assert.equal(65, (run{ "domain", "add", "例子.test" }))
    assert.equal(65, (run{ "domain", "add", evil }))
    assert.equal(65, (run({ "user", "add", "用户@例子.test", "--password-stdin" }, PW)))
    -- an alias may have a quote in its local part: stored exactly
    assert.equal(0, (run{ "alias", "add", "o'hara@example.test", "o'brien@example.test" }))
    assert.equal(65, (run{ "alias", "add", evil .. "@example.test", "a@example.test" }))
    -- free text (hosts) is stored exactly, Unicode included
    assert.equal(0, (run{ "host", "add", evil, "用户.例子" }))
    -- passwords: anything the policy accepts
    assert.equal(0, (run({ "user", "add", "pat@example.test", "--password-stdin" }, evil .. " 用户")))
    local code, out = run{ "--json", "host", "list" }
    assert.equal(0, code)
    assert.is_truthy(json_ok(out), out)
    assert.matches('"host":"\\"; DROP TABLE users; --"', out, 1, true)
    assert.matches('"address":"用户.例子"', out, 1, true)
    code, out = run{ "alias", "list" }
    assert.equal("o'hara@example.test\to'brien@example.test\n", out)
    code, out = run{ "user", "list" }
    assert.matches("^pat@example.test\t", out)
  end)

  it("answers to the vpopmail names", function()
    local run = db_cli(fx.fresh())
    assert.equal(0, (run{ "vadddomain", "example.test" }))
    assert.equal(0, (run{ "vadduser", "joe@example.test", PW }))
    assert.equal(0, (run{ "vsetuserquota", "joe@example.test", "10M" }))
    assert.equal(0, (run{ "vmoduser", "joe@example.test", "--no-imap" }))
    assert.equal(0, (run{ "valias", "-i", "joe@example.test", "info@example.test" }))
    local code, out = run{ "vuserinfo", "joe@example.test" }
    assert.equal(0, code)
    assert.matches("quota: 10485760", out, 1, true)
    assert.matches("no_imap: 1", out, 1, true)
    code, out = run{ "valias", "info@example.test" }
    assert.equal("info@example.test\tjoe@example.test\n", out)
    assert.equal(0, (run({ "vpasswd", "joe@example.test", "--password-stdin" }, "N3w-passw0rd")))
    assert.equal(0, (run{ "vdeluser", "joe@example.test" }))
    assert.equal(0, (run{ "vdeldomain", "example.test" }))
  end)
end)

local function message(subject)
  return "From: someone@remote.test\r\nSubject: " .. subject .. "\r\n\r\nbody\r\n"
end

local function rcpt(d, address)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<someone@remote.test>")))
  return c:cmd("RCPT TO:<" .. address .. ">")
end

-- A daemon on a new database; answers are cached for a second.
local function start(fx, o)
  local db = fx.fresh()
  o.directory = db.directory .. (", cache_ttl = %d, negative_ttl = %d"):format(o.ttl or 1, o.ttl or 1)
  local d = D.start_for_test(o)
  d.db = db
  d.cli = function(args, stdin)
    local a = { "-c", d.config }
    for _, x in ipairs(args) do a[#a + 1] = x end
    return cli(a, stdin)
  end
  -- through the configuration: the file is given to the account
  assert.equal(0, (d.cli{ "domain", "add", "example.test" }))
  assert.equal(0, (d.cli{ "domain", "add", "local.test" }))
  assert.equal(0, (d.cli{ "domain", "add", "dbonly.test" }))
  assert.equal(0, (d.cli({ "user", "add", "joe@example.test", "--password-stdin" }, PW)))
  assert.equal(0, (d.cli({ "user", "add", "ann@local.test", "--password-stdin" }, PW)))
  assert.equal(0, (d.cli({ "user", "add", "off@example.test", "--password-stdin", "--disable" }, PW)))
  assert.equal(0, (d.cli{ "alias", "add", "info@example.test", "joe@example.test" }))
  assert.equal(0, (d.cli{ "alias", "add", "@local.test", "ann@local.test" }))
  -- dbonly.test and its alias domain are in the database only, not in
  -- local_domains: local all the same
  assert.equal(0, (d.cli{ "domain", "add", "dbalias.test", "--alias-of", "dbonly.test" }))
  assert.equal(0, (d.cli({ "user", "add", "dan@dbonly.test", "--password-stdin" }, PW)))
  return d
end

local function tail(d) return d:log():sub(-3000) end

describe("a daemon on the directory database", function()
  after_each(cleanup.run)

  it("decides RCPT from the database", function()
    local d = start(fx, {})
    if fx.name == "sqlite" and D.sh("id -u"):match("^0") then
      assert.equal("indimail", (D.sh("stat -c %U " .. d.db.path):gsub("%s+$", "")))
    end
    local checks = {
      { "ghost@example.test", 550, "^550 5%.1%.1 " },
      { "joe@example.test", 250 }, { "JOE@Example.Test", 250 },
      { "info@example.test", 250 },
      { "whoever@local.test", 250 },             -- the catch-all
      { "dan@dbonly.test", 250 },                -- a domain of the database only
      { "Dan@DBAlias.test", 250 },               -- and its alias domain
      { "x@dbonly.test", 550, "^550 5%.1%.1 " },   -- local: no such user there
      { "x@dbalias.test", 550, "^550 5%.1%.1 " },
      { "off@example.test", 550, "^550 5%.2%.1 " },  -- disabled
      { "x@remote.test", 554, "^554 5%.7%.1 " },
    }
    for _, c in ipairs(checks) do
      local code, text = rcpt(d, c[1])
      assert.equal(c[2], code, c[1] .. ": " .. tostring(text))
      if c[3] then assert.matches(c[3], text) end
    end
  end)

  it("logs in a user of the database with SMTP AUTH, and refuses a wrong password and a no-smtp user", function()
    local d = start(fx, {})
    assert.equal(0, (d.cli{ "user", "mod", "ann@local.test", "--no-smtp" }))
    local function auth(user, pw)
      return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5 --helo c.example.test"
        .. " --tls --auth PLAIN --auth-user %s --auth-password %s --from %s --to x@remote.test"
        .. " --quit-after RCPT 2>&1"):format(d.ports.submission, q(user), q(pw), q(user)))
    end
    local out = auth("joe@example.test", PW)
    assert.matches("<[-~*]+ +235 2%.7%.0", out)
    assert.matches("<[-~*]+ +250 2%.1%.5 Recipient <x@remote%.test>", out)   -- relays once logged in
    out = auth("joe@example.test", "Wr0ngPassw0rd")
    assert.matches("<[-~*]+ +535 5%.7%.8", out)
    out = auth("ann@local.test", PW)                   -- right password, AUTH not allowed
    assert.not_matches("<[-~*]+ +235", out)
    assert.matches("<[-~*]+ +5%d%d 5%.7%.%d", out)
    assert.not_matches("Wr0ngPassw0rd", d:log(), 1, true)  -- never a password in the log
  end)

  it("delivers to a user, through an alias and through a catch-all", function()
    local d = start(fx, { deliver = true })
    d:send("someone@remote.test", { "joe@example.test" }, message("direct"))
    d:send("someone@remote.test", { "info@example.test" }, message("alias"))
    d:send("someone@remote.test", { "anything@local.test" }, message("catch-all"))
    assert.is_truthy(maildir.wait(d, "joe", 2, 10), tail(d))
    assert.is_truthy(D.eventually(function()
      return #maildir.new_files(d, "ann", "local.test") >= 1
    end, 10), tail(d))
  end)

  it("delivers to a domain only in the database and its alias domain, and through an alias to it", function()
    local d = start(fx, { deliver = true })
    assert.equal(0, (d.cli{ "alias", "add", "team@example.test", "dan@dbonly.test" }))
    d:send("someone@remote.test", { "dan@dbonly.test" }, message("direct"))
    d:send("someone@remote.test", { "dan@dbalias.test" }, message("alias domain"))
    d:send("someone@remote.test", { "team@example.test" }, message("alias"))
    assert.is_truthy(D.eventually(function()
      return #maildir.new_files(d, "dan", "dbonly.test") >= 3
    end, 10), tail(d))
    assert.equal(0, d:count_log("event=deferred"), tail(d))   -- never sent to an MX
  end)

  it("bounces to a sender of a domain only in the database, into its Maildir", function()
    local d = start(fx, { deliver = true })
    -- an alias to a user that does not exist: accepted, fails at delivery
    assert.equal(0, (d.cli{ "alias", "add", "list@dbonly.test", "ghost@dbonly.test" }))
    local qid = d:send("dan@dbonly.test", { "list@dbonly.test" }, message("to nobody"))
    assert.is_truthy(d:wait_log("event=bounce_queued qid=" .. qid, 10), tail(d))
    assert.is_truthy(D.eventually(function()
      return #maildir.new_files(d, "dan", "dbonly.test") >= 1
    end, 10), tail(d))
    local bounce = D.readfile(maildir.new_files(d, "dan", "dbonly.test")[1])
    assert.matches("ghost@dbonly.test", bounce, 1, true)
  end)

  it("refuses a database domain's sender without AUTH, and relays elsewhere only for relay_from", function()
    local d = start(fx, { local_sender_requires_auth = true })
    local c = d:session()
    local code, text = c:cmd("MAIL FROM:<dan@dbonly.test>")
    assert.equal(550, code, text)
    assert.matches("^550 5%.7%.1 .*dbonly%.test", text)
    code, text = c:cmd("MAIL FROM:<x@dbalias.test>")
    assert.equal(550, code, text)
    assert.equal(250, (c:cmd("MAIL FROM:<someone@remote.test>")))
    assert.equal(554, (c:cmd("RCPT TO:<x@remote.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<dan@dbonly.test>")))
    local r = start(fx, { relay_from = "'127.0.0.1'", local_sender_requires_auth = true })
    c = r:session()
    assert.equal(250, (c:cmd("MAIL FROM:<dan@dbonly.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<x@remote.test>")))
  end)

  it("marks recipients local by the database in the queue envelope; an older file without the marks still loads", function()
    -- fs: the message's own file, rewritten below
    local d = start(fx, { relay_from = "'127.0.0.1'", queue_backend = "fs" })
    local qid = d:send("someone@remote.test", { "joe@example.test", "dan@dbalias.test", "x@remote.test" },
      message("marks"))
    local env, _, path = d:queued(qid)
    assert.matches("\nrcpt joe@example.test\n", env, 1, true)    -- local_domains: no mark
    assert.not_matches("\nrcpt joe@example.test\nroute", env, 1, true)
    assert.matches("\nrcpt dan@dbonly.test\norcpt dan@dbalias.test\nroute local\n", env, 1, true)
    assert.matches("\nrcpt x@remote.test\n", env, 1, true)
    assert.not_matches("\nrcpt x@remote.test\nroute", env, 1, true)
    d:stop()
    -- the file as an older indimaild wrote it (same inode and owner)
    D.writefile(path, (D.readfile(path):gsub("route local\n", "")))
    D.writefile(d.config, (D.readfile(d.config):gsub("paused = true", "paused = false")))
    d:restart()
    assert.is_truthy(maildir.wait(d, "joe", 1, 10), tail(d))   -- by local_domains, as before
    assert.equal(0, d:count_log("event=queue_file_unreadable"), tail(d))
  end)

  it("stops taking mail for a domain removed with `domain del`, at once", function()
    local d = start(fx, { ttl = 600, workers = 2 })
    assert.equal(0, (d.cli{ "domain", "add", "gone.test" }))
    assert.equal(0, (d.cli({ "user", "add", "gus@gone.test", "--password-stdin" }, PW)))
    assert.is_truthy(D.eventually(function()
      return rcpt(d, "gus@gone.test") == 250
    end, 5, 0.2), tail(d))
    local notices = d:count_log("event=directory_changed")
    assert.equal(0, (d.cli{ "domain", "del", "gone.test" }))
    assert.is_truthy(D.eventually(function()
      return d:count_log("event=directory_changed") > notices
    end, 5, 0.1), tail(d))
    local code, text
    assert.is_truthy(D.eventually(function()
      for _ = 1, 6 do
        code, text = rcpt(d, "gus@gone.test")
        if code ~= 554 then return false end
      end
      return true
    end, 5, 0.2), tostring(text))
    assert.matches("^554 5%.7%.1 ", text)
  end)

  it("accepts a user the CLI adds while it runs, after the negative lifetime", function()
    local d = start(fx, {})
    assert.equal(550, (rcpt(d, "late@example.test")))
    assert.equal(0, (d.cli({ "user", "add", "late@example.test", "--password-stdin" }, PW)))
    assert.is_truthy(D.eventually(function()
      return rcpt(d, "late@example.test") == 250
    end, 5, 0.3), tail(d))
  end)

  it("takes the CLI's changes at once, whatever the cache lifetimes", function()
    local d = start(fx, { ttl = 600, workers = 2 })
    assert.equal(550, (rcpt(d, "now@example.test")))   -- cached: not found
    assert.equal(250, (rcpt(d, "joe@example.test")))   -- cached: found
    assert.equal(0, (d.cli({ "user", "add", "now@example.test", "--password-stdin" }, PW)))
    assert.equal(0, (d.cli{ "user", "mod", "joe@example.test", "--disable" }))
    assert.is_truthy(d:wait_log("event=directory_changed", 5), tail(d))
    -- every worker forgot: several sessions, whichever worker takes them
    assert.is_truthy(D.eventually(function()
      for _ = 1, 6 do
        if rcpt(d, "now@example.test") ~= 250 or rcpt(d, "joe@example.test") ~= 550 then return false end
      end
      return true
    end, 5, 0.2), tail(d))
  end)

  it("loses nothing when the database goes away between accept and delivery", function()
    -- the worker's cache answers RCPT while the database is down; the
    -- queue manager's is cold, so delivery must wait, never bounce
    local d = start(fx, { ttl = 600, deliver = true })
    assert.equal(250, (rcpt(d, "joe@example.test")))     -- warm the worker
    fx.down(d.db)
    local qid = d:send("someone@remote.test", { "joe@example.test" }, message("while down"))
    assert.is_truthy(qid)
    assert.is_truthy(d:wait_log("event=deferred", 10), tail(d))
    assert.matches("event=deferred[^\n]*to=joe@example.test[^\n]*4%.3%.0", d:log())
    assert.equal(0, #maildir.new_files(d, "joe"))
    assert.not_matches("event=bounced", d:log())
    fx.up(d.db)
    assert.equal(0, (d.cli{ "queue", "flush" }))
    assert.is_truthy(maildir.wait(d, "joe", 1, 10), tail(d))
    assert.equal(1, #maildir.new_files(d, "joe"))         -- once, not twice
    assert.not_matches("event=bounced", d:log())
  end)

  it("answers 451 4.3.0 when it cannot reach the database, then recovers", function()
    local d = start(fx, {})
    assert.equal(250, (rcpt(d, "joe@example.test")))
    fx.down(d.db)
    local code, text
    assert.is_truthy(D.eventually(function()
      code, text = rcpt(d, "joe@example.test")
      return code == 451
    end, 5, 0.3), tostring(text))
    assert.matches("^451 4%.3%.0 ", text)
    code, text = rcpt(d, "ghost@example.test")
    assert.equal(451, code, text)                -- never a 5xx
    assert.is_truthy(d:wait_log("event=directory_error backend=" .. fx.name, 2))
    fx.up(d.db)
    assert.is_truthy(D.eventually(function()
      return rcpt(d, "joe@example.test") == 250
    end, 5, 0.3), tail(d))
  end)

  it("looks up users among 10,000 imported in one transaction", function()
    local d = start(fx, {})
    local hash = d.db.sql("SELECT password FROM users LIMIT 1")
    local lines = {}
    for i = 1, 10000 do lines[i] = ("u%05d@example.test %s"):format(i, hash) end
    local f = os.tmpname()
    D.writefile(f, table.concat(lines, "\n") .. "\n")
    local code, out, err = d.cli{ "user", "import", f }
    os.remove(f)
    assert.equal(0, code, err)
    assert.equal("10000 users imported\n", out)
    assert.equal("10004", d.db.sql("SELECT count(*) FROM users"))
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<someone@remote.test>")))
    for _, i in ipairs({ 1, 777, 5000, 9999, 10000 }) do
      local rc, text = c:cmd(("RCPT TO:<u%05d@example.test>"):format(i))
      assert.equal(250, rc, text)
    end
    assert.equal(550, (c:cmd("RCPT TO:<u10001@example.test>")))
    -- a bad line: nothing imported, the line named
    f = os.tmpname()
    D.writefile(f, "v1@example.test " .. hash .. "\nbad line\n")
    code, _, err = d.cli{ "user", "import", f }
    os.remove(f)
    assert.equal(65, code)
    assert.matches("line 2", err, 1, true)
    assert.equal("10004", d.db.sql("SELECT count(*) FROM users"))
  end)
end)

end)
end

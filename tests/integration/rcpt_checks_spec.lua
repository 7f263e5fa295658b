-- Recipients of local domains at RCPT time, and address extensions
-- (docs/directory.md "Address extensions and RCPT checks"):
-- joe+tag@ (or joe-tag@ with extension_delimiter = "-") that is neither a
-- user nor an alias is joe@: accepted, delivered into joe's Maildir with
-- Delivered-To keeping the tag, and an alias list@ takes list+x@; the
-- exact address always wins; "" turns extensions off. A disabled user is
-- refused with 550 5.2.1, a user over quota (maildirsize usage plus MAIL
-- SIZE=) with 452 4.2.2, or 552 5.2.2 with over_quota = "reject"; a
-- maildirsize that cannot be read is 451 4.3.0 and a log line. Bad values
-- of the two keys are refused at load. The config backend once, the SQL
-- checks on SQLite and on MariaDB (tests/helpers/dirbackend.lua).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local backends = require("dirbackend")

local BIN = D.bin .. "/indimail"
-- a password the default password_policy accepts
local PW = "Passw0rd-1"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function tail(d) return d:log():sub(-3000) end

-- Runs bin/indimail -c config with args; returns its exit code.
local function cli(d, args, stdin)
  local parts = { BIN, "-c", q(d.config) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " >/dev/null 2>&1"
  if stdin then cmd = "printf '%s\\n' " .. q(stdin) .. " | " .. cmd end
  local _, _, code = os.execute(cmd)
  return code
end

-- A daemon on a new database of engine fx (tests/helpers/dirbackend.lua)
-- with example.test and joe; nothing cached, so CLI changes count at once.
local function start_db(fx, o, more)
  o.directory = ("%s, cache_ttl = 0, negative_ttl = 0, %s"):format(fx.fresh().directory, more or "")
  local d = D.start_for_test(o)
  assert.equal(0, cli(d, { "domain", "add", "example.test" }))
  assert.equal(0, cli(d, { "user", "add", "joe@example.test", "--password-stdin" }, PW))
  return d
end

-- The config backend: users joe (and others), aliases, the directory keys.
local function start_config(o, users, directory, aliases)
  o.mailboxes = "users = { " .. users .. " }, aliases = { " .. (aliases or "") .. " }"
  o.directory = directory
  return D.start_for_test(o)
end

-- MAIL (with SIZE=size if given) and RCPT by Python's smtplib: code, text.
local function rcpt(d, address, size)
  local py = ([[
import smtplib
s = smtplib.SMTP("127.0.0.1", %d, timeout=10)
s.ehlo("client.example.test")
code, text = s.mail("someone@remote.test", %s)
assert code == 250, (code, text)
code, text = s.rcpt(%q)
print(code, text.decode())
s.quit()
]]):format(d.ports.smtp, size and ('["SIZE=%d"]'):format(size) or "[]", address)
  local f = os.tmpname()
  D.writefile(f, py)
  local out = D.sh("timeout 30 /usr/bin/python3 " .. f .. " 2>&1")
  os.remove(f)
  local code, text = out:match("^(%d+) ([^\n]*)")
  return tonumber(code), (code or "") .. " " .. (text or out)
end

-- A message with a body of about size bytes, in lines of 100.
local function message(subject, size, extra)
  local lines, n = {}, math.max(1, (size or 10) // 100)
  for i = 1, n do lines[i] = ("x"):rep(98) end
  return "From: someone@remote.test\r\n" .. (extra or "") .. "Subject: " .. subject
    .. "\r\n\r\n" .. table.concat(lines, "\r\n") .. "\r\n"
end

-- The one message in user's Maildir (waited for, bounded), as text.
local function delivered(d, user)
  local files = maildir.wait(d, user, 1, 10)
  assert.is_truthy(files, "nothing for " .. user .. "; log:\n" .. tail(d))
  return D.readfile(files[1])
end

local function exists(path)
  return D.sh("test -e " .. path .. " && echo yes"):match("yes") ~= nil
end

-- ---- address extensions ------------------------------------------------

describe("address extensions", function()
  after_each(cleanup.run)

  it("config backend: joe+tag@ goes into joe's Maildir, Delivered-To keeps the tag", function()
    local d = start_config({ deliver = true }, "'joe@example.test'")
    assert.equal(250, (rcpt(d, "joe+tag@example.test")))
    d:send("someone@remote.test", { "joe+tag@example.test" }, message("tagged"))
    local text = delivered(d, "joe")
    assert.matches("\nDelivered%-To: joe%+tag@example%.test\n", text)
    assert.is_false(exists(maildir.path(d, "joe+tag")), "no Maildir for the tag")
    local code, reply = rcpt(d, "ann+tag@example.test")   -- no ann: still unknown
    assert.equal(550, code, reply)
    assert.matches("^550 5%.1%.1 ", reply)
  end)

  it("config backend: an alias list@ also takes list+x@, and the config check accepts joe+tag@ as a target", function()
    local d = start_config({ deliver = true }, "'joe@example.test'", nil,
      "['list@example.test'] = 'joe+fromlist@example.test'")
    d:send("someone@remote.test", { "list+x@example.test" }, message("to the list"))
    assert.matches("\nDelivered%-To: joe%+fromlist@example%.test\n", delivered(d, "joe"))
  end)

  it("config backend: with \"-\" joe-tag@ is joe's, the exact user joe-x wins, and \"\" turns extensions off", function()
    local d = start_config({ deliver = true }, "'joe@example.test', 'joe-x@example.test'",
      "extension_delimiter = '-'")
    d:send("someone@remote.test", { "joe-tag@example.test" }, message("dash"))
    assert.matches("\nDelivered%-To: joe%-tag@example%.test\n", delivered(d, "joe"))
    d:send("someone@remote.test", { "joe-x@example.test" }, message("exact"))
    assert.matches("\nDelivered%-To: joe%-x@example%.test\n", delivered(d, "joe-x"))
    assert.equal(1, #maildir.new_files(d, "joe"), "joe-x@ is not joe's")
    local code, reply = rcpt(d, "joe+tag@example.test")   -- '+' is no delimiter here
    assert.equal(550, code, reply)
    d:stop()
    d = start_config({}, "'joe@example.test'", "extension_delimiter = ''")
    code, reply = rcpt(d, "joe+tag@example.test")
    assert.equal(550, code, reply)
    assert.matches("^550 5%.1%.1 ", reply)
    assert.equal(250, (rcpt(d, "joe@example.test")))
  end)

  it("still detects a loop by Delivered-To with the tag", function()
    local d = start_config({ deliver = true }, "'joe@example.test'")
    local qid = d:send("someone@remote.test", { "joe+tag@example.test" },
      message("loop", 10, "Delivered-To: joe+tag@example.test\r\n"))
    local line = d:wait_log("(event=bounced qid=" .. qid .. "[^\n]*)", 10)
    assert.is_truthy(line, tail(d))
    assert.matches("reply=\"554 5%.4%.6 ", line)
    assert.equal(0, #maildir.new_files(d, "joe"))
  end)
end)

-- ---- RCPT checks -------------------------------------------------------

describe("RCPT checks with the config backend", function()
  after_each(cleanup.run)

  it("config backend: mailboxes.users quota counts too", function()
    local d = start_config({}, "{ address = 'joe@example.test', quota = 1000 }")
    assert.equal(250, (rcpt(d, "joe@example.test", 900)))
    local code, reply = rcpt(d, "joe+tag@example.test", 1001)
    assert.equal(452, code, reply)
  end)
end)

-- ---- the directory on SQLite and on MariaDB ----------------------------

for _, fx in ipairs(backends.all()) do
describe(fx.name, function()
  setup(fx.setup)
  teardown(fx.teardown)

  describe("address extensions", function()
    after_each(cleanup.run)

    it("joe+tag@ and (with \"-\") joe-tag@ are joe's; an existing user joe-tag wins", function()
      local d = start_db(fx, { deliver = true })
      d:send("someone@remote.test", { "joe+tag@example.test" }, message("plus"))
      assert.matches("\nDelivered%-To: joe%+tag@example%.test\n", delivered(d, "joe"))
      assert.equal(0, cli(d, { "alias", "add", "list@example.test", "joe@example.test" }))
      assert.equal(250, (rcpt(d, "list+x@example.test")))
      d:stop()
      d = start_db(fx, { deliver = true }, "extension_delimiter = '+-'")
      assert.equal(0, cli(d, { "user", "add", "joe-tag@example.test", "--password-stdin" }, PW))
      d:send("someone@remote.test", { "joe-other@example.test" }, message("dash"))
      assert.matches("\nDelivered%-To: joe%-other@example%.test\n", delivered(d, "joe"))
      d:send("someone@remote.test", { "joe-tag@example.test" }, message("exact"))
      assert.matches("\nDelivered%-To: joe%-tag@example%.test\n", delivered(d, "joe-tag"))
      assert.equal(1, #maildir.new_files(d, "joe"))
    end)
  end)

  describe("RCPT checks of local users", function()
    after_each(cleanup.run)

    it("refuses a disabled user (also through an extension) with 550 5.2.1, an unknown one with 550 5.1.1", function()
      local d = start_db(fx, {})
      assert.equal(0, cli(d, { "user", "add", "off@example.test", "--password-stdin", "--disable" }, PW))
      for _, a in ipairs({ "off@example.test", "off+tag@example.test" }) do
        local code, reply = rcpt(d, a)
        assert.equal(550, code, reply)
        assert.matches("^550 5%.2%.1 .*disabled", reply)
      end
      local code, reply = rcpt(d, "ghost@example.test")
      assert.matches("^550 5%.1%.1 ", reply, 1, false)
      assert.equal(550, code)
    end)

    it("answers 452 4.2.2 for a full mailbox: maildirsize usage plus SIZE= against the quota", function()
      local d = start_db(fx, { deliver = true })
      assert.equal(0, cli(d, { "user", "add", "small@example.test", "--password-stdin", "--quota", "2000" }, PW))
      local code, reply = rcpt(d, "small@example.test", 3000)   -- empty, but it would not fit
      assert.equal(452, code, reply)
      assert.matches("^452 4%.2%.2 Mailbox full", reply)
      d:send("someone@remote.test", { "small+x@example.test" }, message("filler", 1200))
      delivered(d, "small")
      local md = maildir.path(d, "small")
      assert.is_truthy(D.eventually(function()
        return (D.readfile(md .. "/maildirsize") or ""):match("\n%d+ 1\n")
      end, 5), tail(d))
      assert.equal(250, (rcpt(d, "small@example.test")))              -- ~1.3 KB used
      assert.equal(250, (rcpt(d, "small@example.test", 500)))
      code, reply = rcpt(d, "small@example.test", 1000)                -- SIZE= makes the difference
      assert.equal(452, code, reply)
      code, reply = rcpt(d, "small+x@example.test", 1000)              -- joe+tag@ is joe's quota
      assert.equal(452, code, reply)
      assert.equal(0, cli(d, { "user", "quota", "small@example.test", "1000" }))
      code, reply = rcpt(d, "small@example.test")                      -- now over without SIZE=
      assert.equal(452, code, reply)
      assert.equal(250, (rcpt(d, "joe@example.test", 100000)))         -- no quota
    end)

    it("answers 552 5.2.2 with over_quota = \"reject\"", function()
      local d = start_db(fx, { deliver = true }, "over_quota = 'reject'")
      assert.equal(0, cli(d, { "user", "add", "small@example.test", "--password-stdin", "--quota", "2000" }, PW))
      d:send("someone@remote.test", { "small@example.test" }, message("filler", 1200))
      delivered(d, "small")
      assert.is_truthy(D.eventually(function()
        return (D.readfile(maildir.path(d, "small") .. "/maildirsize") or ""):match("\n%d+ 1\n")
      end, 5), tail(d))
      local code, reply = rcpt(d, "small@example.test", 1000)
      assert.equal(552, code, reply)
      assert.matches("^552 5%.2%.2 Mailbox full", reply)
      assert.equal(250, (rcpt(d, "small@example.test", 10)))
    end)

    it("answers 451 4.3.0 and logs when maildirsize cannot be read", function()
      local d = start_db(fx, {})
      assert.equal(0, cli(d, { "user", "add", "small@example.test", "--password-stdin", "--quota", "2000" }, PW))
      local md = maildir.path(d, "small")
      D.sh("mkdir -p " .. md .. "/maildirsize")    -- a folder: reading it fails (EISDIR)
      if D.sh("id -u"):match("^0") then D.sh("chown -R indimail: " .. d.dir .. "/maildirs") end
      local code, reply = rcpt(d, "small@example.test")
      assert.equal(451, code, reply)
      assert.matches("^451 4%.3%.0 ", reply)
      assert.is_truthy(d:wait_log("event=quota_error maildir=[^\n]*small/Maildir", 5), tail(d))
    end)
  end)
end)
end

-- ---- configuration -----------------------------------------------------

describe("directory.extension_delimiter and directory.over_quota", function()
  local function check(directory)
    local dir = D.scratch_dir("rcptcfg")
    local file = dir .. "/indimail.lua"
    D.writefile(file, "indimail.config {\n  hostname = 'mx.test.example',\n"
      .. "  listen = { { port = 0 } },\n  local_domains = { 'example.test' },\n"
      .. "  directory = { " .. directory .. " },\n}\n")
    return D.sh(D.bin .. "/indimaild -t -c " .. file .. " 2>&1; echo rc=$?")
  end

  it("accepts \"+\", \"-\", \"+-\", \"\" and tempfail/reject", function()
    for _, v in ipairs({ "'+'", "'-'", "'+-'", "''", "'+-=_.'" }) do
      local out = check("extension_delimiter = " .. v .. ", over_quota = 'reject'")
      assert.matches("rc=0", out, 1, true)
    end
    assert.matches("rc=0", check("over_quota = 'tempfail'"), 1, true)
  end)

  it("refuses other characters, repeats, non-strings and other over_quota values, naming the key", function()
    local out = check("extension_delimiter = '+#'")
    assert.matches("rc=1", out, 1, true)
    assert.matches("directory.extension_delimiter: '#' is not allowed", out, 1, true)
    out = check("extension_delimiter = '++'")
    assert.matches("directory.extension_delimiter: '+' is given twice", out, 1, true)
    out = check("extension_delimiter = 1")
    assert.matches("directory.extension_delimiter", out, 1, true)
    assert.matches("rc=1", out, 1, true)
    out = check("over_quota = 'bounce'")
    assert.matches("rc=1", out, 1, true)
    assert.matches("directory.over_quota: must be \"tempfail\" (452 4.2.2) or \"reject\" (552 5.2.2)", out, 1, true)
  end)
end)

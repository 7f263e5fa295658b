-- Tables and matchers in a running daemon (docs/lua.md "Tables and
-- matchers"): a configuration loads a 100,000-line control file with
-- lua/stdlib/tables.lua and refuses a listed recipient domain at RCPT; a
-- SIGHUP reads the edited file again; a bad line keeps the old table and
-- names the file and line; indimail.regex.compile gives PCRE2 in hooks.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

local N = 100000

local function control_file(dir, extra)
  local lines = { "# domains we refuse mail for" }
  for i = 1, N do lines[#lines + 1] = ("blocked%d.example.org"):format(i) end
  lines[#lines + 1] = extra or ""
  local file = dir .. "/blocked_domains"
  D.writefile(file, table.concat(lines, "\n") .. "\n")
  return file
end

local function policies(file)
  return ([[
local tables = require("tables")
local match = require("match")
local blocked = tables.control(%q, { match = "domain" })
local numbered = match.regex({ "^spam\\d+@" }, { flags = "i" })
indimail.log("table_loaded", { entries = blocked:size() })
indimail.hook("rcpt", function(session, tx, rcpt)
  if blocked:match(rcpt) then
    return indimail.reject("Recipient domain refused by policy", 550, "5.7.1")
  end
  if numbered:match(rcpt) then
    return indimail.reject("Recipient refused by regex", 550, "5.7.1")
  end
end, "tables")
]]):format(file)
end

-- RCPT's reply (code, text) in a new session.
local function rcpt(d, to)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
  local code, text = c:cmd("RCPT TO:<" .. to .. ">")
  c:cmd("QUIT")
  return code, text
end

describe("tables in the configuration", function()
  after_each(cleanup.run)

  it("refuses a domain listed in a 100,000-line control file; after an edit and SIGHUP the new one", function()
    local dir = D.scratch_dir("tables")
    local file = control_file(dir)
    local d = D.start_for_test{ relay_from = "'127.0.0.0/8'", policies = policies(file) }
    assert.is_truthy(d:wait_log("event=table_loaded entries=" .. N, 5))

    assert.same({ 550, "550 5.7.1 Recipient domain refused by policy" },
      { rcpt(d, "joe@blocked77777.example.org") })
    assert.equal(550, (rcpt(d, "joe@BLOCKED1.example.org")))
    assert.equal(250, (rcpt(d, "joe@newly-bad.example.net")))
    assert.equal(250, (rcpt(d, "joe@example.test")))
    assert.same({ 550, "550 5.7.1 Recipient refused by regex" }, { rcpt(d, "SPAM42@example.test") })

    control_file(dir, "newly-bad.example.net")
    local from = #d:log() + 1
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("event=reloaded", 10, from), "the worker reloaded")
    assert.is_truthy(d:wait_log("event=table_loaded entries=" .. (N + 1), 5, from))
    assert.same({ 550, "550 5.7.1 Recipient domain refused by policy" },
      { rcpt(d, "joe@newly-bad.example.net") })
    assert.equal(550, (rcpt(d, "joe@blocked5.example.org")))
  end)

  it("keeps the old table when the edited file has a bad line, naming the file and line", function()
    local dir = D.scratch_dir("tables")
    local file = control_file(dir)
    local d = D.start_for_test{ relay_from = "'127.0.0.0/8'", policies = policies(file) }

    control_file(dir, "bad..example.net")
    local from = #d:log() + 1
    assert.is_truthy(d:signal("HUP"))
    local line = N + 2
    assert.is_truthy(d:wait_log("event=reload_failed[^\n]*blocked_domains:" .. line
      .. ": bad domain 'bad%.%.example%.net': empty label", 10, from), d:log():sub(from))
    assert.equal(550, (rcpt(d, "joe@blocked9.example.org")))
    assert.equal(250, (rcpt(d, "joe@fine.example.net")))
  end)

  it("makes indimaild -t report a bad regex with the configuration's line", function()
    local dir = D.scratch_dir("tables")
    local cfg = dir .. "/indimail.lua"
    D.writefile(cfg, [[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } }, lua_dir = "lua" }
local match = require("match")
local re = indimail.regex.compile("^ok$")
assert(re:find("ok") and not re:find("no"))
match.regex({ "^fine$", "(broken" })
]])
    local out, code = D.sh(D.bin .. "/indimaild -t -c " .. cfg)
    assert.equal(1, code, out)
    assert.matches(cfg .. ":5: entry 2: bad regex '(broken': missing closing parenthesis (pattern offset: 8)", out, 1, true)
  end)
end)

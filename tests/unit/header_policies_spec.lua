-- lua/policies/envheaders.lua, logheaders.lua and removeheaders.lua and
-- their list helper lua/stdlib/headerlist.lua without a daemon
-- (tests/helpers/fake_indimail.lua); over SMTP:
-- tests/integration/header_policies_spec.lua.
local F = require("fake_indimail")

local S = { ip = "192.0.2.7" }
local function tx() return { sender = "a@b.test", env = {}, notes = {} } end

local function control(lines)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  return path
end

local function setup_error(name, settings)
  local ok, err = pcall(F.policy, name, settings)
  assert.is_false(ok)
  return tostring(err)
end

describe("headerlist", function()
  local H
  setup(function() F.install(); H = require("headerlist") end)

  it("reads a Lua list and a control file, in order, each name once", function()
    local path = control({ "# comment", "", "  X-Spam-Score  ", "subject", "X-Mailer\r" })
    local names = H.load({ headers = { "Subject", "X-Spam-Score" }, file = path }, "p")
    os.remove(path)
    assert.are.same({ "Subject", "X-Spam-Score", "X-Mailer" }, names)
  end)

  it("names a bad name's file and line, and a missing file", function()
    local path = control({ "Subject", "Bad Name" })
    local ok, err = pcall(H.load, { file = path }, "logheaders")
    os.remove(path)
    assert.is_false(ok)
    assert.are.equal("logheaders: " .. path .. ":2: bad header name 'Bad Name'", err)
    ok, err = pcall(H.load, { headers = { "A:B" } }, "p")
    assert.matches("p: headers entry 1: bad header name 'A:B'", err)
    ok, err = pcall(H.load, { file = "/nonexistent/x" }, "p")
    assert.matches("p: file: /nonexistent/x", err)
    ok, err = pcall(H.load, {}, "p")
    assert.matches("no header names", err)
  end)

  it("cleans a value to one bounded line without splitting a UTF-8 character", function()
    assert.are.equal("a b c", H.clean("  a\r\n\tb\0\27c ", 100))
    assert.are.equal("abc", H.clean("abcdef", 3))
    assert.are.equal("x", H.clean("x\195\169", 2))        -- é is 2 bytes: cut before it
    assert.are.equal("x\195\169", H.clean("x\195\169y", 3))
  end)
end)

describe("envheaders policy", function()
  it("copies listed fields into tx.env under mapped names, with a log line", function()
    local hooks, I = F.policy("envheaders", { headers = { "X-Spam-Score", "X-Spam-Status", "X-Absent" } })
    assert.are.same({ "data" }, (function() local k = {} for n in pairs(hooks) do k[#k + 1] = n end return k end)())
    local t = tx()
    local m = F.msg({ { "x-spam-score", "5.2" }, { "X-Spam-Status", "Yes,\n\tscore=5.2\r\nBcc: evil" },
      { "X-Spam-Score", "9" } })
    assert.is_nil(hooks.data(S, t, m))
    assert.are.same({ X_SPAM_SCORE = "5.2", X_SPAM_STATUS = "Yes, score=5.2 Bcc: evil" }, t.env)
    assert.are.same({ event = "envheaders", count = 2, vars = "X_SPAM_SCORE,X_SPAM_STATUS" }, I.logs[1])
  end)

  it("bounds values, takes a prefix, and logs nothing when no field is there", function()
    local hooks, I = F.policy("envheaders", { headers = { "X-Long" }, prefix = "H_", max_length = 10 })
    local t = tx()
    hooks.data(S, t, F.msg({ { "X-Long", ("v"):rep(50) } }))
    assert.are.same({ H_X_LONG = ("v"):rep(10) }, t.env)
    local u = tx()
    hooks.data(S, u, F.msg({ { "Subject", "hi" } }))
    assert.are.same({}, u.env)
    assert.are.equal(1, #I.logs)
  end)

  it("reads a control file", function()
    local path = control({ "X-Spam-Score" })
    local hooks = F.policy("envheaders", { file = path })
    os.remove(path)
    local t = tx()
    hooks.data(S, t, F.msg({ { "X-Spam-Score", "1" } }))
    assert.are.equal("1", t.env.X_SPAM_SCORE)
  end)

  it("refuses names that map onto delivery variables or onto each other, and bad settings", function()
    assert.matches("header 'Route' would set ROUTE", setup_error("envheaders", { headers = { "Route" } }))
    assert.matches("headers 'X%-A' and 'X_A' both map to X_A", setup_error("envheaders", { headers = { "X-A", "X_A" } }))
    assert.matches("unknown setting colour", setup_error("envheaders", { headers = { "A" }, colour = 1 }))
    assert.matches("max_length must be", setup_error("envheaders", { headers = { "A" }, max_length = 0 }))
    assert.matches("prefix must be", setup_error("envheaders", { headers = { "A" }, prefix = "a-b" }))
    local hooks = F.policy("envheaders", { headers = { "Route" }, prefix = "HDR_" })
    assert.is_function(hooks.data)
  end)
end)

describe("logheaders policy", function()
  it("logs the present fields under lower-case keys, bounded and on one line", function()
    local hooks, I = F.policy("logheaders", { headers = { "Subject", "Message-ID", "Qid", "X-None", "X=Odd" },
      max_length = 8 })
    assert.is_function(hooks.message)
    assert.is_nil(hooks.data)
    assert.is_nil(hooks.message(S, tx(), F.msg({ { "Subject", "hello\r\nworld, long" }, { "message-id", "<1@x>" },
      { "QID", "forged" }, { "X=Odd", "v" } })))
    assert.are.same({ event = "logheaders", subject = "hello wo", ["message-id"] = "<1@x>",
      h_qid = "forged", x_odd = "v" }, I.logs[1])
    hooks.message(S, tx(), F.msg({ { "From", "a@b" } }))
    assert.are.equal(1, #I.logs)
  end)

  it("reads a control file and refuses unknown settings", function()
    local path = control({ "Subject" })
    local hooks, I = F.policy("logheaders", { file = path })
    os.remove(path)
    hooks.message(S, tx(), F.msg({ { "Subject", "s" } }))
    assert.are.same({ event = "logheaders", subject = "s" }, I.logs[1])
    assert.matches("unknown setting prefix", setup_error("logheaders", { headers = { "A" }, prefix = "x" }))
  end)
end)

describe("removeheaders policy", function()
  it("removes every field of the listed names, any case, and logs the count", function()
    local hooks, I = F.policy("removeheaders", { headers = { "x-originating-ip", "Bcc", "X-None" } })
    local m = F.msg({ { "X-Originating-IP", "1" }, { "Subject", "s" }, { "x-originating-ip", "2" }, { "BCC", "b" } })
    assert.is_nil(hooks.message(S, tx(), m))
    assert.are.same({ { name = "Subject", value = "s" } }, m.headers())
    assert.are.same({ event = "removeheaders", count = 3, names = "x-originating-ip,bcc" }, I.logs[1])
    assert.are.equal(2, #m.removed)                         -- one call per distinct name
  end)

  it("takes wildmats with wildmat = true (last match decides) and logs nothing when none is there", function()
    local hooks, I = F.policy("removeheaders", { headers = { "X-Spam-*", "!X-Spam-Score" }, wildmat = true })
    local m = F.msg({ { "X-Spam-Status", "y" }, { "X-Spam-Score", "1" }, { "X-Spam-Flag", "YES" }, { "To", "t" } })
    hooks.message(S, tx(), m)
    assert.are.same({ { name = "X-Spam-Score", value = "1" }, { name = "To", value = "t" } }, m.headers())
    assert.are.equal(2, I.logs[1].count)
    hooks.message(S, tx(), F.msg({ { "To", "t" } }))
    assert.are.equal(1, #I.logs)
    -- without wildmat = true a pattern is a literal name
    local h2 = F.policy("removeheaders", { headers = { "X-Spam-*" } })
    local m2 = F.msg({ { "X-Spam-Status", "y" } })
    h2.message(S, tx(), m2)
    assert.are.equal(1, #m2.headers())
  end)

  it("reads a control file and refuses bad settings", function()
    local path = control({ "# names", "X-Secret" })
    local hooks = F.policy("removeheaders", { file = path })
    os.remove(path)
    local m = F.msg({ { "X-Secret", "s" } })
    hooks.message(S, tx(), m)
    assert.are.same({}, m.headers())
    assert.matches("wildmat must be", setup_error("removeheaders", { headers = { "A" }, wildmat = "yes" }))
    assert.matches("bad wildmat", setup_error("removeheaders", { headers = { "[ab" }, wildmat = true }))
  end)
end)

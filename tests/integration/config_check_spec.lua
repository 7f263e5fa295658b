-- `indimaild -t -c FILE`: what a configuration check reports, each with
-- FILE:LINE and a clear reason, exit 1: a misspelt stage (indimail.hook or
-- a policy's hook table), a verdict written with a bad constant code or
-- status, a dangling alias, a user= account that does not exist, duplicate
-- listeners, and a bad key at its own line inside indimail.config{...}.
-- And: indimail.log lines from a hook carry the session and queue ids.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

-- Writes text (and policy files { name = text }) and runs the check.
local function check(text, policies)
  local dir = D.scratch_dir("cc")
  local file = dir .. "/indimail.lua"
  if policies then
    D.sh("mkdir -p " .. dir .. "/lua/policies && chmod -R 755 " .. dir .. "/lua")
    for name, src in pairs(policies) do
      D.writefile(dir .. "/lua/policies/" .. name .. ".lua", src)
    end
    text = text:gsub("LUA_DIR", dir .. "/lua")
  end
  D.writefile(file, text)
  D.sh("chmod 644 " .. file)
  local out, code = D.sh(D.bin .. "/indimaild -t -c " .. file .. " 2>&1")
  return out, code, file, dir
end

local HEAD = 'indimail.config { hostname = "mx.test.example", listen = { { port = 0 } } }\n'

describe("indimaild -t", function()
  describe("hook stages", function()
    it("refuses indimail.hook('rctp', ...) at its line and lists the stages", function()
      local out, code, file = check(HEAD .. '\nindimail.hook("rctp", function() end)\n')
      assert.equal(1, code, out)
      assert.matches(file .. ":3: unknown hook stage 'rctp' "
        .. "(stages are connect, helo, auth, mail, rcpt, data, message, route)", out, 1, true)
    end)

    it("refuses a policy whose hook table has a misspelt stage, naming the function's file and line", function()
      local out, code, file, dir = check([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } }, lua_dir = "LUA_DIR" }
indimail.policy("typo")
]], { typo = "local P = {}\n\nfunction P.rctp(session, tx, rcpt)\nend\n\nreturn P\n" })
      assert.equal(1, code, out)
      assert.matches(file .. ":2: policy 'typo': unknown hook stage 'rctp' (function at ", out, 1, true)
      assert.matches("policies/typo.lua:3; stages are connect, helo, auth, mail, rcpt, data, message, route)",
        out, 1, true)
      assert.is_truthy(dir)
    end)

    it("refuses a stage key that is not a function in a policy's table", function()
      local out, code = check([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } }, lua_dir = "LUA_DIR" }
indimail.policy("notfn")
]], { notfn = "return { mail = function() end, rcpt = true }\n" })
      assert.equal(1, code, out)
      assert.matches("policy 'notfn': hook 'rcpt' must be a function, not a boolean", out, 1, true)
    end)

    it("accepts a policy with setup and helper data besides its stages", function()
      local out, code = check([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } }, lua_dir = "LUA_DIR" }
indimail.policy("fine")
]], { fine = "return { limit = 3, setup = function() end, mail = function() end }\n" })
      assert.equal(0, code, out)
    end)
  end)

  describe("verdicts written with constants", function()
    it("refuses indimail.reject(text, 450) inside a hook, at the call's line", function()
      local out, code, file = check(HEAD .. [[
indimail.hook("rcpt", function(session, tx, rcpt)
  if rcpt == "x@example.test" then
    return indimail.reject("Go away", 450)
  end
end)
]])
      assert.equal(1, code, out)
      assert.matches(file .. ':4: indimail.reject(..., 450, "5.7.1"): a reject needs a 5xx code (550)',
        out, 1, true)
    end)

    it("refuses indimail.tempfail(text, 550)", function()
      local out, code, file = check(HEAD .. 'indimail.hook("mail", function() return indimail.tempfail("later", 550) end)\n')
      assert.equal(1, code, out)
      assert.matches(file .. ':2: indimail.tempfail(..., 550, "4.7.1"): a tempfail needs a 4xx code (451)',
        out, 1, true)
    end)

    it("refuses a malformed status string", function()
      local out, code, file = check(HEAD .. '\n\nindimail.hook("mail", function() return indimail.reject("no", 554, "5.7") end)\n')
      assert.equal(1, code, out)
      assert.matches(file .. ":4: ", out, 1, true)
      assert.matches("a reject's status must look like 5.7.1", out, 1, true)
    end)

    it("refuses a bad verdict in a policy file it loaded, naming that file", function()
      local out, code = check([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } }, lua_dir = "LUA_DIR" }
indimail.policy("bad")
]], { bad = "return {\n  rcpt = function()\n    return indimail.tempfail('x', 421, '5.0.0')\n  end,\n}\n" })
      assert.equal(1, code, out)
      assert.matches("policies/bad.lua:3: indimail.tempfail(..., 421, \"5.0.0\"): "
        .. "a tempfail's status must look like 4.7.1", out, 1, true)
    end)

    it("refuses one made at load time with computed arguments (checked when called)", function()
      local out, code, file = check(HEAD .. 'local code = 400 + 50\nlocal NO = indimail.reject("no", code)\n')
      assert.equal(1, code, out)
      assert.matches(file .. ":3: indimail.reject('no', 450, '5.7.1'): a reject needs a 5xx code (550)",
        out, 1, true)
    end)

    it("accepts good constants and does not guess at computed ones", function()
      local out, code = check(HEAD .. [[
local c = 450
indimail.hook("rcpt", function()
  if false then return indimail.reject("a", c) end
  return indimail.reject("Mailbox unavailable", 550, "5.1.1")
end)
indimail.hook("mail", function() return indimail.tempfail("later") end)
-- indimail.reject("in a comment", 450)
local s = 'indimail.reject("in a string", 450)'
]])
      assert.equal(0, code, out)
    end)
  end)

  describe("the line of a bad key inside indimail.config{...}", function()
    it("names the line of an unknown key, not the line of the call", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = { { port = 0 } },
  queue = {
    path = "queue",
    cuont = 2,
  },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":6: bad config: queue: unknown key 'cuont'", out, 1, true)
    end)

    it("names the queue backends when queue.backend is none of them", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = { { port = 0 } },
  queue = { backend = "segments" },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ':4: bad config: queue.backend: must be "fs", "wal" or "segment"', out, 1, true)
    end)

    it("names the line of the bad value in the second of two listeners", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = {
    { name = "smtp", port = 0 },
    { name = "submission",
      port = "587" .. "x" },
  },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":6: bad config: listen[].port: must be a number", out, 1, true)
    end)

    it("names the line of a bad top-level value behind comments and long strings", function()
      local out, code, file = check([==[
--[[ indimail.config { workers = 1 } ]]
indimail.config {
  hostname = [[mx.test.example]], -- workers = 1
  listen = { { port = 0 } },
  workers = 1000,
}
]==])
      assert.equal(1, code, out)
      assert.matches(file .. ":5: bad config: workers: 1000 is out of range", out, 1, true)
    end)
  end)

  describe("mailboxes", function()
    it("refuses a dangling alias at the alias's line, naming it and its target", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = { { port = 0 } },
  local_domains = { "example.test" },
  mailboxes = {
    users = { "alice@example.test" },
    aliases = {
      ["sales@example.test"] = "alice@example.test",
      ["team@example.test"] = { "alice@example.test", "nobody@example.test" },
    },
  },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":9: bad config: mailboxes.aliases['team@example.test']: "
        .. "'nobody@example.test' is not a mailbox", out, 1, true)
    end)
  end)

  describe("user=", function()
    it("refuses an account that does not exist, at the key's line", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  user = "no-such-account-zz",
  listen = { { port = 0 } },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3: bad config: user: there is no account 'no-such-account-zz'", out, 1, true)
    end)
  end)

  describe("listeners", function()
    it("refuses two listeners with the same name, at the second one's line", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = {
    { name = "smtp", address = "127.0.0.1", port = 0 },
    { name = "smtp", address = "127.0.0.2", port = 0 },
  },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":5: bad config: listen[2]: name 'smtp' is already used by listen[1]", out, 1, true)
    end)

    it("refuses two listeners on the same address and port", function()
      local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = {
    { name = "smtp", address = "127.0.0.1", port = 2525 },

    { name = "other", address = "127.0.0.1", port = 2525 },
  },
}
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":6: bad config: listen[2]: 127.0.0.1 port 2525 is already used by listen[1] ('smtp')",
        out, 1, true)
    end)

    it("accepts several listeners on any free port (port 0) and unnamed ones", function()
      local out, code = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = { { port = 0 }, { port = 0 }, { name = "submission", port = 0 } },
}
]])
      assert.equal(0, code, out)
    end)
  end)
end)

describe("indimaild -t reports every problem", function()
  it("lists a misspelt stage in a policy, a broken domain file and a duplicate listener, then their count", function()
    local dom = D.scratch_dir("ccdom")
    D.writefile(dom .. "/broken.test.lua", "return {\n  rcpt = function(s, tx, r)\n    if then\n  end,\n}\n")
    D.writefile(dom .. "/fine.test.lua", "return { rcpt = function() end }\n")
    local out, code, file = check(([[
indimail.config {
  hostname = "mx.test.example",
  lua_dir = "LUA_DIR",
  domain_rules = %q,
  listen = {
    { name = "smtp", address = "127.0.0.1", port = 2525 },
    { name = "smtp", address = "127.0.0.2", port = 0 },
  },
}
indimail.policy("typo")
indimail.hook("rcpt", function(s, tx, r) return indimail.reject("no", 450) end)
]]):format(dom), { typo = "local P = {}\n\nfunction P.rctp(session, tx, rcpt)\nend\n\nreturn P\n" })
    assert.equal(1, code, out)
    assert.matches(file .. ":7: bad config: listen[2]: name 'smtp' is already used by listen[1]", out, 1, true)
    assert.matches(file .. ":10: policy 'typo': unknown hook stage 'rctp' (function at ", out, 1, true)
    assert.matches(file .. ":11: indimail.reject(..., 450, \"5.7.1\"): ", out, 1, true)
    assert.matches("\n" .. dom .. "/broken.test.lua:3: unexpected symbol", out, 1, true)
    assert.matches("\n4 problems\n", out, 1, true)
    local report = {}	-- the log lines (2>&1) aside
    for line in out:gmatch("[^\n]+") do
      if not line:find(" event=", 1, true) then report[#report + 1] = line end
    end
    assert.equal(5, #report, out)
  end)

  it("says where it stopped when a key error leaves the configuration unreadable", function()
    local out, code, file = check([[
indimail.config {
  hostname = "mx.test.example",
  listen = { { port = 0 } },
  wokers = 2,
}
indimail.hook("rctp", function() end)
]])
    assert.equal(1, code, out)
    assert.matches(file .. ":4: bad config: config: unknown key 'wokers'", out, 1, true)
    assert.matches(file .. ": the check stopped at the problem above: what comes after it was not checked", out, 1, true)
    assert.matches("\n1 problem\n", out, 1, true)
  end)
end)

describe("indimail.log from a hook", function()
  after_each(cleanup.run)

  it("carries the session id and, once there is one, the queue id", function()
    local d = D.start_for_test{ policies = [[
indimail.hook("rcpt", function(session, tx, rcpt)
  indimail.log("policy_rcpt", { rcpt = rcpt })
end, "logger")
indimail.hook("message", function(session, tx, msg)
  indimail.log("policy_message", { size = msg:size() })
end, "logger")
]] }
    local msg = "From: a@example.test\r\nTo: b@example.test\r\nSubject: x\r\n\r\nbody\r\n"
    local qid = d:send("a@example.test", { "b@example.test" }, msg)
    local log = D.eventually(function()
      local l = d:log()
      return l:find("event=policy_message", 1, true) and l
    end)
    assert.is_truthy(log)
    local rcpt = assert(log:match("[^\n]*event=policy_rcpt[^\n]*"))
    local message = assert(log:match("[^\n]*event=policy_message[^\n]*"))
    local session = assert(rcpt:match(" session=(%S+)"), rcpt)
    assert.is_nil(rcpt:match(" qid="), rcpt)
    assert.matches(" rcpt=b@example.test", rcpt, 1, true)
    assert.matches(" session=" .. session, message, 1, true)
    assert.matches(" qid=" .. qid, message, 1, true)
    -- the whole story greps by one id
    assert.matches("session=" .. session, log:match("[^\n]*event=accepted[^\n]*") or
      log:match("[^\n]*qid=" .. qid .. "[^\n]*"), 1, true)
  end)
end)

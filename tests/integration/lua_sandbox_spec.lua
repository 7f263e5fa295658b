-- What Lua code can reach. Hooks get pure computation only: nothing that
-- runs a program, touches a file, loads C code or bytecode, inspects the VM
-- or ends the process; each such call raises an error naming the function
-- (451 4.3.0, event=hook_error) and the daemon serves on. The configuration
-- may read files while it loads (table files, helpers), never later, and
-- `indimaild -t` reports a forbidden call in it with FILE:LINE.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

local MSG = "From: a@example.test\r\nTo: b@example.test\r\nSubject: sandbox\r\n\r\nbody line\r\n"

-- A file of blocked senders, one a line, for the configuration to read.
local function table_file(dir)
  D.writefile(dir .. "/blocked", "spam@example.test\nworse@example.test\n")
  return dir .. "/blocked"
end

-- One forbidden call per recipient local part. DIR is a scratch folder
-- where a command that ran would leave a file.
local POLICY = [[
local DIR = %q
local captured_open = io.open
local victim = DIR .. "/victim"
local next_line = io.lines(victim)
local case = {
  execute = function() os.execute("touch " .. DIR .. "/executed") end,
  popen = function() io.popen("touch " .. DIR .. "/popened"):close() end,
  open = function() io.open("/etc/passwd"):read("a") end,
  captured = function() captured_open("/etc/passwd", "r") end,
  lines = function() next_line() end,
  dofile = function() dofile(victim) end,
  loadlib = function() package.loadlib("libc.so.6", "*") end,
  debug = function() debug.sethook() end,
  exit = function() os.exit(1) end,
  binary = function() load(string.dump(function() return 1 end)) end,
  remove = function() os.remove(victim) end,
  write = function() io.write("to stdout") end,
  gcstop = function() collectgarbage("stop") end,
  require = function() require("string_not_loaded_anywhere") end,
  policy = function() indimail.policy("sender_domain") end,
}
indimail.hook("rcpt", function(session, tx, rcpt)
  local f = case[rcpt:match("^(.-)@")]
  if f then f() end
end, "forbidden")
]]

-- The hook_error line logged since byte `from`, or nil (bounded wait).
local function hook_error(d, from)
  return D.eventually(function()
    return d:log():sub(from):match("(event=hook_error [^\n]*)")
  end, 3, 0.02)
end

describe("the Lua sandbox", function()
  after_each(cleanup.run)

  describe("in a hook", function()
    local d, dir
    setup(function()
      dir = D.mktemp("sandbox")
      D.writefile(dir .. "/victim", "still here\n")
      D.sh("chmod 777 " .. dir)
      d = D.start{ policies = POLICY:format(dir) }
    end)
    teardown(function()
      d:cleanup()
      D.rmtemp(dir)
    end)

    for _, case in ipairs({
      { "execute", "os.execute", "os.execute is not allowed" },
      { "popen", "io.popen", "io.popen is not allowed" },
      { "open", "io.open", "io.open is only available while the configuration loads" },
      { "captured", "io.open kept in a local at load time",
        "io.open is only available while the configuration loads" },
      { "lines", "an io.lines iterator made at load time",
        "io.lines is only available while the configuration loads" },
      { "dofile", "dofile", "dofile is only available while the configuration loads" },
      { "loadlib", "package.loadlib", "package.loadlib is not allowed" },
      { "debug", "debug.sethook", "global 'debug'" },
      { "exit", "os.exit", "os.exit is not allowed" },
      { "binary", "load(string.dump(f))", "load: binary chunks are not allowed" },
      { "remove", "os.remove", "os.remove is not allowed" },
      { "write", "io.write", "io.write is not allowed" },
      { "gcstop", 'collectgarbage("stop")', "collectgarbage: option 'stop' is not allowed" },
      { "require", "require of a module not loaded at load time",
        "require: module 'string_not_loaded_anywhere' was not loaded while the configuration loaded" },
      { "policy", "indimail.policy", "indimail.policy is only available while the configuration loads" },
    }) do
      it(("%s gives 451 4.3.0, event=hook_error naming it, and the daemon serves on"):format(case[2]), function()
        local from = #d:log() + 1
        local c = d:session()
        assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
        c.s:settimeout(5)
        local code, text = c:cmd(("RCPT TO:<%s@example.test>"):format(case[1]))
        assert.equal(451, code, text)
        assert.matches("^451 4%.3%.0 ", text)
        local line = hook_error(d, from)
        assert.is_truthy(line, d:log():sub(from))
        assert.matches("policy=forbidden", line, 1, true)
        assert.matches(case[3], line, 1, true)
        assert.matches("stack traceback", line, 1, true)
        assert.equal(250, (c:cmd("NOOP")))
        assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")), "the session goes on")
        assert.is_truthy(d:queued(d:send("a@example.test", { "b@example.test" }, MSG)))
        assert.is_nil(D.readfile(dir .. "/executed"), "os.execute ran a command")
        assert.is_nil(D.readfile(dir .. "/popened"), "io.popen ran a command")
        assert.equal("still here\n", D.readfile(dir .. "/victim"), "os.remove removed a file")
        assert.not_matches("to stdout", D.readfile(d.dir .. "/stderr.log") or "", 1, true)
      end)
    end
  end)

  it("keeps pure computation for hooks: string, table, math, utf8, os.time/clock/date/getenv, coroutines, pcall, loaded modules", function()
    local d = D.start_for_test{ policies = [[
      local address = require("address")   -- lua/stdlib, loaded at load time
      indimail.hook("rcpt", function(session, tx, rcpt)
        local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
        local ok, err = pcall(error, "caught")
        indimail.log("pure", {
          str = string.format("%s-%d", rcpt:upper(), #rcpt),
          tab = table.concat({ "a", "b" }, ","),
          math = math.floor(7.9) + math.max(1, 2),
          utf8 = utf8.len("h\u{e9}llo"),
          time = os.time() > 0 and os.clock() >= 0 and os.date("!%Y", 0) == "1970",
          env = os.getenv("PATH") ~= nil,
          co = co(1) + co(10),
          pcall = tostring(ok) .. ":" .. tostring(err):match("caught"),
          gc = collectgarbage("count") > 0 and collectgarbage("step") ~= nil,
          loaded = require("address") == address and load("return 1")() == 1,
        })
      end)]] }
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
    local line = d:wait_log("(event=pure [^\n]*)", 3)
    assert.is_truthy(line, d:log())
    for _, kv in ipairs({ "str=B@EXAMPLE.TEST-14", "tab=a,b", "math=9", "utf8=5", "time=true",
      "env=true", "co=22", "pcall=false:caught", "gc=true", "loaded=true" }) do
      assert.matches(kv, line, 1, true)
    end
  end)

  it("turns print into a debug log line (event=lua_print) and writes nothing to stdout", function()
    local d = D.start_for_test{ policies = [[
      indimail.hook("mail", function(session, tx) print("sender", tx.sender, 42) end)]] }
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
    assert.is_truthy(d:wait_log('event=lua_print text="sender\\ta@example.test\\t42"', 3), d:log())
    assert.not_matches("sender", D.readfile(d.dir .. "/stderr.log") or "", 1, true)
  end)

  describe("while the configuration loads", function()
    it("lets it read a table file (io.lines, io.open(path, 'r')) that hooks then use", function()
      local file = table_file(D.scratch_dir("sandbox"))
      local d = D.start_for_test{ policies = ([[
        local blocked = {}
        for line in io.lines(%q) do blocked[line] = true end
        local f = assert(io.open(%q, "r"))
        local text = f:read("a")
        f:close()
        indimail.hook("mail", function(session, tx)
          if blocked[tx.sender] then
            return indimail.reject("Sender blocked (" .. #text .. " bytes of rules)", 550, "5.7.1")
          end
        end)]]):format(file, file) }
      local c = d:session()
      assert.equal("550 5.7.1 Sender blocked (37 bytes of rules)",
        select(2, c:cmd("MAIL FROM:<spam@example.test>")))
      assert.equal(250, (c:cmd("MAIL FROM:<good@example.test>")))
    end)

    local function check(text)
      local dir = D.scratch_dir("sandbox")
      local file = dir .. "/indimail.lua"
      D.writefile(file, text:format(dir))
      local out, code = D.sh("timeout 10 " .. D.bin .. "/indimaild -t -c " .. file)
      return out, code, file, dir
    end

    it("does not let it run a program: indimaild -t names FILE:LINE and os.execute", function()
      local out, code, file, dir = check([[
indimail.config { hostname = "mx.test.example", listen = { { name = "smtp", address = "127.0.0.1", port = 0 } } }
-- line 2
os.execute("touch %s/executed")
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3: os.execute is not allowed", out, 1, true)
      assert.is_nil(D.readfile(dir .. "/executed"), "the command ran")
    end)

    it("does not let it open a file for writing: indimaild -t names FILE:LINE and the mode", function()
      local out, code, file, dir = check([[
indimail.config { hostname = "mx.test.example", listen = { { name = "smtp", address = "127.0.0.1", port = 0 } } }
local f = io.open("%s/written", "a")
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":2: io.open: mode 'a' is not allowed (files can only be read)", out, 1, true)
      assert.is_nil(D.readfile(dir .. "/written"), "the file was created")
    end)

    it("hides a file's metatable (getmetatable gives false), so no Lua function becomes its finalizer", function()
      local out, code, file = check([[
indimail.config { hostname = "mx.test.example", listen = { { name = "smtp", address = "127.0.0.1", port = 0 } } }
local f = io.open("%s/indimail.lua")
getmetatable(f).__gc = function() while true do end end
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3: attempt to index a boolean value", out, 1, true)
    end)
  end)
end)

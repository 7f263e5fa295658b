-- The instruction budget of a hook (limits.hook_instructions) cannot be
-- escaped: once a hook is over it, every construct that could catch or
-- outlive the budget error (pcall in a frame that cannot yield, an xpcall
-- message handler, a load() reader, a coroutine made at load time, __close
-- and __gc metamethods) passes it on, so the hook ends with 451 4.3.0 and
-- event=hook_error. The only worker (workers = 1) then serves the next
-- session as if nothing had happened.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local t = D.t

local MSG = "From: a@example.test\r\nTo: b@example.test\r\nSubject: budget\r\n\r\nbody line\r\n"

-- One runaway hook per recipient local part. sorted(f) runs f inside a
-- table.sort comparator: a frame that cannot yield, where the count hook
-- has to raise an error, the kind a pcall could catch.
local POLICY = [[
local function spin() while true do end end
local function sorted(f) table.sort({ 3, 1, 2 }, function(a, b) f() return a < b end) end
local made_at_load = coroutine.wrap(spin)
local case = {
  pcall = function()
    sorted(function() while true do pcall(function() while true do end end) end end)
  end,
  xpcall = function()
    sorted(function() while true do xpcall(spin, function(e) while true do end end) end end)
  end,
  coroutine = function() made_at_load() end,
  nested = function()
    sorted(function()
      while true do pcall(coroutine.wrap(function() while true do pcall(spin) end end)) end
    end)
  end,
  reader = function() sorted(function() while true do load(spin) end end) end,
  close = function()
    sorted(function()
      while true do
        pcall(function() local x <close> = setmetatable({}, { __close = spin }) spin() end)
      end
    end)
  end,
  gc = function()
    setmetatable({}, { __gc = spin })
    collectgarbage()
  end,
}
indimail.hook("rcpt", function(session, tx, rcpt)
  local f = case[rcpt:match("^(.-)@")]
  if f then f() end
end, "runaway")
]]

local function start()
  return D.start_for_test{ limits = "hook_instructions = 100000", policies = POLICY }
end

-- Sends RCPT for the case in a fresh session; returns code, text, seconds
-- taken, and the client. A wedged worker gives no reply within 5 s.
local function rcpt(d, case)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
  c.s:settimeout(5)
  local t0 = t.now()
  local code, text = c:cmd(("RCPT TO:<%s@example.test>"):format(case))
  return code, text, t.now() - t0, c
end

-- The worker answers the same session and serves a new one normally.
local function still_serving(d, c)
  assert.equal(250, (c:cmd("NOOP")))
  assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")), "the session goes on")
  local id = d:send("a@example.test", { "b@example.test" }, MSG)
  assert.is_truthy(d:queued(id), "a second session queued its message")
end

describe("the hook instruction budget", function()
  after_each(cleanup.run)

  for _, case in ipairs({
    { "pcall", "a loop of pcall(loop) inside a table.sort comparator" },
    { "xpcall", "xpcall with a message handler that loops, inside a table.sort comparator" },
    { "coroutine", "a coroutine made while the configuration loaded, that loops" },
    { "nested", "a nested coroutine that loops over pcall, resumed under pcall in a comparator" },
    { "reader", "a load() reader function that loops, inside a table.sort comparator" },
    { "close", "a __close metamethod that loops while pcall unwinds, inside a comparator" },
  }) do
    it(("stops %s: 451 4.3.0 within seconds, event=hook_error, the worker serves on"):format(case[2]), function()
      local d = start()
      local code, text, took, c = rcpt(d, case[1])
      assert.equal(451, code, text)
      assert.matches("^451 4%.3%.0 ", text)
      assert.is_true(took < 3, ("took %.2fs"):format(took))
      assert.is_truthy(d:wait_log("event=hook_error [^\n]*stage=rcpt policy=runaway "
        .. "error=\"instruction budget exceeded\"", 2), d:log())
      still_serving(d, c)
    end)
  end

  it("refuses a __gc metamethod (finalizers run outside any budget): 451 4.3.0, the worker serves on", function()
    local d = start()
    local code, text, took, c = rcpt(d, "gc")
    assert.equal(451, code, text)
    assert.matches("^451 4%.3%.0 ", text)
    assert.is_true(took < 3, ("took %.2fs"):format(took))
    local line = d:wait_log("(event=hook_error [^\n]*stage=rcpt policy=runaway [^\n]*)", 2)
    assert.is_truthy(line, d:log())
    assert.matches("setmetatable: __gc metamethods are not allowed", line, 1, true)
    still_serving(d, c)
  end)

  it("still lets a hook wait inside pcall and xpcall (indimail.dns.lookup yields through them)", function()
    local dm = dnsmasq.start{ dir = D.scratch_dir("budget"),
      records = { "--mx-host=good.test,mx.good.test,10" } }
    cleanup.defer(dm.stop)
    local d = D.start_for_test{ dns = "127.0.0.1:" .. dm.port, policies = [[
      indimail.hook("mail", function(session, tx)
        local ok, mx, status = pcall(indimail.dns.lookup, "good.test", "MX")
        local xok, _, nx = xpcall(indimail.dns.lookup, error, "nx.test")
        indimail.log("waited", { ok = ok, host = mx[1].host, status = status, xok = xok, nx = nx })
      end)]] }
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
    local line = d:wait_log("(event=waited [^\n]*)", 3)
    assert.is_truthy(line, d:log())
    for _, kv in ipairs({ "ok=true", "host=mx.good.test", "status=ok", "xok=true", "nx=nxdomain" }) do
      assert.matches(kv, line, 1, true)
    end
  end)
end)

-- A route chosen by a policy keeps its own timeouts
-- (indimail.route_relay's timeouts = { connect=, greeting=, command=,
-- data= }; docs/lua.md, docs/policies/routing.md, envrules.md): against
-- tests/helpers/fake_smtp.lua hanging after the greeting or at the end of
-- DATA, the message is deferred after the route's short timeout, not the
-- 300 s of delivery.timeouts. A bad timeouts table stops the
-- configuration from loading.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")

local SLOW = "timeouts = { connect = 300, greeting = 300, command = 300, data = 300 }, "
  .. "retry = { base = 60, max = 60 }"

-- A fake relay on 127.0.0.1 that never answers cmd of its first connection.
local function hanging_relay(cmd)
  local port = D.free_tcp_port()
  local fake = fake_smtp.start(D.scratch_dir("fake"), "127.0.0.1", port,
    { hang = { { conn = 1, cmd = cmd } } })
  return fake, port
end

local function start(policies)
  return D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'", delivery = SLOW,
    policies = policies }
end

-- Sends one message and returns how long its deferral took and the line.
local function deferred_after(d, from, to)
  local t0 = D.t.now()
  local qid = d:send(from, { to }, "Subject: route timeouts\r\n\r\nbody\r\n")
  local line = d:wait_log("(event=deferred qid=" .. qid .. "[^\n]*)", 10)
  return D.t.now() - t0, line
end

describe("a policy's relay route with its own timeouts", function()
  after_each(cleanup.run)

  it("routing: a domain route's command timeout defers a relay that hangs after the greeting", function()
    local fake, port = hanging_relay("EHLO")
    local d = start(([[
indimail.policy("routing", { domains = {
  ["slow.test"] = { host = "127.0.0.1", port = %d, tls = "none", timeouts = { command = 0.3 } } } })
]]):format(port))
    local secs, line = deferred_after(d, "sender@example.test", "rcpt@slow.test")
    assert.is_truthy(line, d:log())
    assert.matches("timeout", line)
    assert.is_true(secs < 5, ("deferred after %.1f s, not the route's 0.3 s"):format(secs))
    assert.equal(1, fake.count("\nHANG 1 EHLO"))
  end)

  it("envrules: ROUTE with route_timeouts defers a relay that hangs at the end of DATA", function()
    local fake, port = hanging_relay(".")
    local d = start(([[
indimail.policy("envrules", { from = { "lists@example.test:ROUTE=127.0.0.1:%d" },
  route_timeouts = { data = 0.3 } })
]]):format(port))
    local secs, line = deferred_after(d, "lists@example.test", "rcpt@far.test")
    assert.is_truthy(line, d:log())
    assert.matches("timeout", line)
    assert.is_true(secs < 5, ("deferred after %.1f s, not the route's 0.3 s"):format(secs))
    assert.equal(1, fake.count("\nHANG 1 %."))
  end)

  it("a hook's route_relay with a bad timeout raises: the recipient is deferred, event=hook_error", function()
    local d = start([[
indimail.hook("route", function(session, tx, rcpt)
  return indimail.route_relay("127.0.0.1", 25, { timeouts = { command = 0 } })
end, "bad_timeouts")
]])
    local _, line = deferred_after(d, "sender@example.test", "rcpt@far.test")
    assert.is_truthy(line, d:log())
    assert.is_truthy(d:wait_log("event=hook_error [^\n]*bad_timeouts[^\n]*timeouts%.command must be "
      .. "a number of seconds from 0%.05 to 3600", 5), d:log())
  end)

  it("refuses a bad timeouts table in the policies' settings at load", function()
    local dir = D.scratch_dir("route-timeouts-config")
    local function check(policy)
      local path = dir .. "/bad.lua"
      D.writefile(path, D.make_config(dir, { policies = policy }))
      return D.sh(D.bin .. "/indimaild -t -c " .. path)
    end
    local out, code = check([[indimail.policy("routing", { domains = {
      ["x.test"] = { host = "h", timeouts = { conect = 1 } } } })]])
    assert.equal(1, code, out)
    assert.matches('routing: domains%["x.test"%]: timeouts.conect is not one of connect, greeting, command, data', out)
    out, code = check([[indimail.policy("envrules", { route_timeouts = { data = "slow" } })]])
    assert.equal(1, code, out)
    assert.matches("envrules: route_timeouts: data must be a number of seconds from 0.05 to 3600", out)
  end)
end)

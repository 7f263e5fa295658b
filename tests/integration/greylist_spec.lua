-- lua/policies/greylist.lua on a real daemon, with swaks as the client:
-- the first attempt is deferred, an early retry too, a retry after
-- min_delay is queued and whitelists the client; relay_from clients pass.
local D = require("daemon")
local cleanup = require("cleanup")
local swaks = require("swaks")

local function start()
  return D.start_for_test{ relay_from = "'127.0.0.2/32'", policies = [[
    indimail.policy("greylist", { min_delay = 1, max_delay = 30, whitelist_time = 3600 })
  ]] }
end

describe("greylist policy over SMTP", function()
  after_each(cleanup.run)

  it("defers the first attempt and an early retry, queues the retry after min_delay", function()
    local d = start()
    local args = "--from joe@sender.test --to ann@example.test"
    local out, rc = swaks(d, args)
    assert.are_not.equal(0, rc)
    assert.matches("<%*%* +451 4%.7%.1 Greylisted: first attempt from your address for this recipient,"
      .. " please retry in 1 seconds", out)
    assert.truthy(d:wait_log("event=greylist [^\n]*action=defer", 2))
    assert.truthy(d:log():find("triplet=127.0.0.1/joe@sender.test/ann@example.test", 1, true))
    out = swaks(d, args)
    assert.matches("451 4%.7%.1 Greylisted: retried too early", out)
    D.sh("sleep 1.2")
    local qid
    out, rc, qid = swaks(d, args)
    assert.are.equal(0, rc, out)
    assert.truthy(qid, out)
    assert.truthy(d:wait_log("event=greylist [^\n]*action=pass", 2))
    -- the client is whitelisted: another sender and recipient pass at once
    out, rc = swaks(d, "--from other@else.test --to bob@example.test")
    assert.are.equal(0, rc, out)
    assert.are.equal(2, #d:queue_files())
  end)

  it("never greylists a relay_from client", function()
    local d = start()
    local out, rc = swaks(d, "--from joe@sender.test --to ann@example.test --local-interface 127.0.0.2")
    assert.are.equal(0, rc, out)
    assert.is_nil(d:log():find("event=greylist", 1, true))
  end)
end)

-- lua/policies/envrules.lua on a real daemon with swaks: a from rule's
-- DATABYTES refuses a bigger message with 552 5.3.4, its NODNSCHECK makes
-- sender_domain skip the DNS check, and the variables reach the queued
-- envelope as env lines.
local D = require("daemon")
local cleanup = require("cleanup")
local swaks = require("swaks")

local function start(d_dir_rules)
  return D.start_for_test{ dns = "127.0.0.1:" .. D.free_udp_port(), policies = ([[
    indimail.policy("envrules", { from = { %s } })
    indimail.policy("sender_domain", { skip_relay_clients = false })
  ]]):format(d_dir_rules) }
end

describe("envrules policy over SMTP", function()
  after_each(cleanup.run)

  it("sets variables per sender: DATABYTES refuses a bigger message, NODNSCHECK skips sender_domain", function()
    local d = start([["*@small.test:NODNSCHECK=1,DATABYTES=300", "*@partner.test:NODNSCHECK=1,QUEUEDIR=q2"]])
    local out, rc = swaks(d, "--from joe@small.test --to ann@example.test --body " .. ("x"):rep(400))
    assert.are_not.equal(0, rc)
    assert.matches("552 5%.3%.4 Message size %d+ exceeds the limit of 300 bytes for this sender", out)
    assert.truthy(d:wait_log("event=envrules [^\n]*pattern=%*@small%.test", 2))
    local qid
    out, rc, qid = swaks(d, "--from joe@partner.test --to ann@example.test")
    assert.are.equal(0, rc, out)
    local env = d:queued(qid)
    assert.matches("env NODNSCHECK=1\n", env)
    assert.matches("env QUEUEDIR=q2\n", env)
    -- a sender without a rule: sender_domain asks the (silent) DNS server
    out = swaks(d, "--from joe@nowhere.test --to ann@example.test --timeout 20")
    assert.matches("451 4%.4%.3 Sender domain nowhere%.test: DNS lookup failed", out)
  end)
end)

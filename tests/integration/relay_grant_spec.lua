-- Relaying granted by policies (docs/lua.md "Relay grants",
-- docs/policies/relay.md, envrules.md) in a running daemon, over SMTP from
-- loopback addresses that are not in relay_from: without a policy the core
-- refuses; relayclients grants a session, relaymailfrom and envrules'
-- RELAYCLIENT a transaction; a grant where the stage may not is a hook
-- error (451 4.3.0). Delivery is paused: an accepted message stays queued
-- with its remote recipient.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

local MSG = "Subject: relay\r\n\r\nhello\r\n"

-- A client from address src, greeted, EHLO said; closed by cleanup.
local function session(d, src)
  local c = D.connect(d.ports.smtp, nil, src)
  cleanup.defer(function() c:close() end)
  assert.equal(220, (c:reply()))
  assert.equal(250, (c:cmd("EHLO client.example.test")))
  return c
end

-- The RCPT reply for to after MAIL FROM:<from>, from address src.
local function rcpt(d, src, from, to)
  local c = session(d, src)
  local code, text = c:cmd("MAIL FROM:<" .. from .. ">")
  if code == 250 then code, text = c:cmd("RCPT TO:<" .. to .. ">") end
  c:cmd("QUIT")
  return code, text
end

-- A whole message; returns its queue id (the 250 checked).
local function send(d, src, from, to)
  local c = session(d, src)
  local code, text = c:transaction(from, { to }, MSG)
  assert.equal(250, code, text)
  c:cmd("QUIT")
  return (assert(text:match("queued as (%w+)"), text))
end

local function assert_queued_for(d, id, rcpt_addr)
  local env = assert(d:queued(id), "no queue file for " .. id)
  assert.matches(rcpt_addr:gsub("%p", "%%%0"), env)
end

describe("relaying without a granting policy", function()
  local d
  setup(function() d = D.start_for_test{} end)
  teardown(function() cleanup.run() end)

  it("refuses a remote recipient from a loopback client not in relay_from: 554 5.7.1", function()
    assert.same({ 554, "554 5.7.1 Relay access denied: not a local domain" },
      { rcpt(d, "127.0.0.1", "a@partner.example", "x@remote.example") })
    assert.equal(0, d:count_log("event=relay_grant"))
  end)
end)

describe("relaying granted by policies", function()
  local d
  setup(function()
    local dir = D.scratch_dir("relaygrant")
    D.writefile(dir .. "/relayclients", "# IndiMail control/relayclients\n127.0.0.1:\n127.0.1.\n")
    D.writefile(dir .. "/relaymailfrom", "alerts@partner.example\n@lists.example\n")
    D.writefile(dir .. "/from.envrules", "*@lan.example:RELAYCLIENT=,NODNSCHECK=1\n")
    d = D.start_for_test{ policies = ([[
indimail.policy("relay", { relayclients = { file = %q }, relaymailfrom = { file = %q } })
indimail.policy("envrules", { from = %q })
indimail.hook("rcpt", function(session, tx, rcpt)
  if rcpt == "grant@example.test" then tx.relay = true end
end, "late_grant")
indimail.hook("helo", function(session, helo)
  if helo == "wrong.example" then session.relay = "yes" end
end, "bad_value")
]]):format(dir .. "/relayclients", dir .. "/relaymailfrom", dir .. "/from.envrules") }
  end)
  teardown(function() cleanup.run() end)

  it("relayclients: 127.0.0.1 is granted at connect; the message is queued for the remote recipient", function()
    local id = send(d, "127.0.0.1", "a@partner.example", "x@remote.example")
    assert_queued_for(d, id, "x@remote.example")
    assert.is_truthy(d:wait_event("relay", { "rule=relayclients", "entry=127%.0%.0%.1%f[^%d%.]" }))
    assert.is_truthy(d:wait_log("event=relay_grant [^\n]*scope=session stage=connect policy=relay", 5))
  end)

  it("relayclients: a prefix line (127.0.1.) covers its /24; others get 554", function()
    assert.equal(250, (rcpt(d, "127.0.1.9", "a@partner.example", "x@remote.example")))
    assert.same({ 554, "554 5.7.1 Relay access denied: not a local domain" },
      { rcpt(d, "127.0.0.4", "a@partner.example", "x@remote.example") })
  end)

  it("relaymailfrom: a listed sender relays for its transaction, another sender gets 554", function()
    local id = send(d, "127.0.0.5", "alerts@partner.example", "x@remote.example")
    assert_queued_for(d, id, "x@remote.example")
    assert.equal(250, (rcpt(d, "127.0.0.5", "digest@lists.example", "x@remote.example")))
    assert.same({ 554, "554 5.7.1 Relay access denied: not a local domain" },
      { rcpt(d, "127.0.0.5", "other@partner.example", "x@remote.example") })
    assert.is_truthy(d:wait_log("event=relay_grant [^\n]*scope=tx stage=mail policy=relay "
      .. "sender=alerts@partner%.example", 5))
  end)

  it("relaymailfrom: the grant ends with the transaction (RSET)", function()
    local c = session(d, "127.0.0.5")
    assert.equal(250, (c:cmd("MAIL FROM:<alerts@partner.example>")))
    assert.equal(250, (c:cmd("RCPT TO:<x@remote.example>")))
    assert.equal(250, (c:cmd("RSET")))
    assert.equal(250, (c:cmd("MAIL FROM:<other@partner.example>")))
    assert.equal(554, (c:cmd("RCPT TO:<x@remote.example>")))
  end)

  it("envrules: RELAYCLIENT on a sender rule grants the transaction", function()
    local id = send(d, "127.0.0.6", "printer@lan.example", "x@remote.example")
    assert_queued_for(d, id, "x@remote.example")
    assert.is_truthy(d:wait_log("event=relay_grant [^\n]*scope=tx stage=mail policy=envrules", 5))
  end)

  it("a grant in the rcpt stage raises: 451 4.3.0 and event=hook_error naming the field", function()
    local code, text = rcpt(d, "127.0.0.7", "a@partner.example", "grant@example.test")
    assert.equal(451, code, text)
    assert.matches("^451 4%.3%.0", text)
    assert.is_truthy(d:wait_log("event=hook_error [^\n]*late_grant[^\n]*field 'relay' of tx can be set "
      .. "only in the mail stage", 5))
  end)

  it("a grant that is not a boolean raises: 451 4.3.0 at EHLO", function()
    local c = D.connect(d.ports.smtp, nil, "127.0.0.7")
    cleanup.defer(function() c:close() end)
    assert.equal(220, (c:reply()))
    assert.equal(451, (c:cmd("EHLO wrong.example")))
    assert.is_truthy(d:wait_log("event=hook_error [^\n]*bad_value[^\n]*field 'relay' of session must be "
      .. "true or false, not string", 5))
  end)
end)

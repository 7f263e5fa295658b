-- The default policy set as shipped (etc/policies.lua with the lists of
-- etc/control/, what etc/indimail.lua and `make run` enable;
-- docs/policies/default.md) in a running daemon, DNS from dnsmasq: clean
-- mail goes through, and each policy of the set refuses its own case with
-- its own reply. ratelimit's limit is lowered through the set's settings
-- override (the shipped 100 messages a minute would take long to reach).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")

local POLICIES = [[
dofile("etc/policies.lua")({
  domains = { "example.test", "local.test" },
  settings = { ratelimit = { messages = { per_sender = 2 } } },
})
]]

local MESSAGE = "From: <joe@good.test>\r\nTo: <user@example.test>\r\n"
  .. "Subject: hello\r\n\r\nhello\r\n"

local function start()
  local dm = dnsmasq.start{ dir = D.scratch_dir("default-policies"), records = {
    "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,127.0.0.1",
    "--mx-host=example.test,mx.good.test,10" } }
  cleanup.defer(dm.stop)
  return D.start_for_test{ dns = "127.0.0.1:" .. dm.port, policies = POLICIES,
    relay_from = "'127.0.0.2'" }
end

-- The reply to the last of MAIL and RCPTs (stops at the first refusal).
local function envelope(c, from, rcpts)
  local code, text = c:cmd("MAIL FROM:<" .. from .. ">")
  for _, r in ipairs(rcpts or {}) do
    if code ~= 250 then break end
    code, text = c:cmd("RCPT TO:<" .. r .. ">")
  end
  c:cmd("RSET")
  return code, text
end

describe("the default policy set (etc/policies.lua)", function()
  local d, c
  setup(function()
    d = start()
    c = d:session()
  end)
  teardown(function()
    c:close()
    cleanup.run()
  end)

  it("accepts a message from a sender whose domain has an MX", function()
    local code, text = c:transaction("joe@good.test", { "user@example.test" }, MESSAGE)
    assert.equal(250, code, text)
  end)

  it("badhelo: refuses EHLO localhost.localdomain with 550 5.7.1", function()
    local s = d:connect()
    assert.equal(220, (s:reply()))
    local code, text = s:cmd("EHLO localhost.localdomain")
    s:close()
    assert.equal(550, code, text)
    assert.matches("^550 5%.7%.1 .*%(badhelo%)", text)
  end)

  it("badmailfrom: refuses a sender at spam.example with 553 5.7.1", function()
    local code, text = envelope(c, "x@spam.example")
    assert.equal(553, code, text)
    assert.matches("%(badmailfrom%)", text)
  end)

  it("sender_domain: refuses a sender whose domain does not exist with 550 5.1.8", function()
    local code, text = envelope(c, "x@nx.test")
    assert.equal(550, code, text)
    assert.matches("^550 5%.1%.8 ", text)
  end)

  it("envrules: NODNSCHECK lets a partner.example sender through without DNS", function()
    -- partner.example is not in dnsmasq's zone: a DNS check would tempfail
    local code, text = envelope(c, "joe@partner.example", { "user@example.test" })
    assert.equal(250, code, text)
  end)

  it("badrcptto: refuses a %-hack recipient with 550 5.7.1", function()
    -- relayed: the core already refuses a % in a local mailbox name
    local r = D.connect(d.ports.smtp, nil, "127.0.0.2")
    assert.equal(220, (r:reply()))
    assert.equal(250, (r:cmd("EHLO lan.example.test")))
    local code, text = envelope(r, "user@example.test", { "a%b@elsewhere.test" })
    r:close()
    assert.equal(550, code, text)
    assert.matches("%(badrcptto%)", text)
  end)

  it("accesslist: all@example.test takes mail from example.test senders only", function()
    local code, text = envelope(c, "joe@good.test", { "all@example.test" })
    assert.equal(550, code, text)
    assert.matches("%(accesslist%)", text)
    code, text = envelope(c, "boss@example.test", { "all@example.test" })
    assert.equal(250, code, text)
  end)

  it("relay: a relay_from client relays only with one of our senders (554 5.7.1)", function()
    local r = D.connect(d.ports.smtp, nil, "127.0.0.2")
    assert.equal(220, (r:reply()))
    assert.equal(250, (r:cmd("EHLO lan.example.test")))
    local code, text = envelope(r, "joe@good.test", { "x@elsewhere.test" })
    assert.equal(554, code, text)
    assert.matches("%(relay%)", text)
    code, text = envelope(r, "user@example.test", { "x@elsewhere.test" })
    r:close()
    assert.equal(250, code, text)
  end)

  it("ratelimit: the sender's third message in a minute gets 451 4.7.1", function()
    for i = 1, 2 do
      local code, text = c:transaction("limited@good.test", { "user@example.test" }, MESSAGE)
      assert.equal(250, code, "message " .. i .. ": " .. text)
    end
    local code, text = envelope(c, "limited@good.test")
    assert.equal(451, code, text)
    assert.matches("^451 4%.7%.1 Too many messages", text)
  end)
end)

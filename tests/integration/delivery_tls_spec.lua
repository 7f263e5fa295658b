-- STARTTLS on the way out: indimaild delivering to another indimaild that
-- offers STARTTLS (the receiving one holds what it gets in its queue).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local t = D.t

local function wait_until(timeout, fn)
  local deadline = t.now() + timeout
  repeat
    if fn() then return true end
    t.sleep(0.1)
  until t.now() > deadline
  return fn()
end

-- The message as the receiving server stored it.
local function received_by(r)
  assert.is_true(wait_until(10, function() return #r:queue_files() == 1 end),
    "the receiving server has the message")
  local data = r:queue_read(r:queue_files()[1])
  return data:match("^(.-\n)\n(.*)$")
end

local function send(s, subject)
  local c = D.connect(s.ports.smtp)
  c:reply()
  c:cmd("EHLO client.example.test")
  local code = c:transaction("sender@example.test", { "rcpt@remote.test" },
    "Subject: " .. subject .. "\r\n\r\nbody\r\n")
  c:close()
  return code
end

describe("remote delivery with STARTTLS", function()
  local r, s
  before_each(function()
    r = D.start{ relay_from = "'127.0.0.0/8'" }      -- receiver, delivery paused
  end)
  after_each(function()
    if s then s:cleanup() end
    r:cleanup()
    s = nil
  end)

  it("uses STARTTLS when the next hop offers it (opportunistic by default)", function()
    s = D.start{ deliver = true, relay_from = "'127.0.0.0/8'", routes = "['*'] = '127.0.0.1:" .. r.ports.smtp .. "'" }
    assert.equal(250, send(s, "over tls"))
    local env, msg = received_by(r)
    assert.matches("\ntls TLSv1%.[23] ", env)
    assert.matches("with ESMTPS id", msg)
    assert.matches("%(using TLSv1%.[23] with cipher ", msg)
    assert.matches("\nSubject: over tls\n", msg)
    assert.truthy(s:wait_log("event=delivered [^\n]*to=rcpt@remote%.test", 5))
  end)

  it("connects from delivery.bind_address", function()
    s = D.start{ deliver = true, relay_from = "'127.0.0.0/8'",
      delivery = "bind_address = '127.0.0.7'",
      routes = "['*'] = '127.0.0.1:" .. r.ports.smtp .. "'" }
    assert.equal(250, send(s, "from a bound address"))
    received_by(r)
    assert.truthy(r:wait_log("event=connect [^\n]*ip=127%.0%.0%.7 ", 5))
  end)

  it("sends in clear when the route says tls = 'none'", function()
    s = D.start{ deliver = true, relay_from = "'127.0.0.0/8'",
      routes = "['*'] = { host = '127.0.0.1', port = " .. r.ports.smtp .. ", tls = 'none' }" }
    assert.equal(250, send(s, "in clear"))
    local env, msg = received_by(r)
    assert.not_matches("\ntls ", env)
    assert.matches("with ESMTP id", msg)
  end)

  it("defers with tls = 'verify' when the certificate cannot be verified", function()
    s = D.start{ deliver = true, relay_from = "'127.0.0.0/8'", delivery = "retry = { base = 30, max = 60 }",
      routes = "['*'] = { host = '127.0.0.1', port = " .. r.ports.smtp .. ", tls = 'verify' }" }
    assert.equal(250, send(s, "must verify"))
    assert.truthy(s:wait_log("event=deferred [^\n]*TLS", 5))
    assert.equal(0, #r:queue_files())
    assert.equal(1, #s:queue_files())
  end)
end)

describe("remote delivery with tls = 'verify'", function()
  after_each(cleanup.run)

  -- The receiver's certificate (CN=mx.test.example) is the sender's only
  -- trust anchor; the route names the receiver by that name (dnsmasq).
  local function verifying_sender(r, host)
    local dns = dnsmasq.start{ dir = D.scratch_dir("verify-dns"),
      records = { "--host-record=mx.test.example,127.0.0.1" } }
    cleanup.defer(dns.stop)
    -- a copy the unprivileged queue manager can read (the build folder may
    -- sit in a home it cannot enter)
    local ca = D.scratch_dir("verify-ca") .. "/ca.pem"
    D.sh(("cp %s %s && chmod 644 %s"):format(D.test_cert(), ca, ca))
    return D.start_for_test{ deliver = true, relay_from = "'127.0.0.0/8'",
      dns = "127.0.0.1:" .. dns.port, env = { SSL_CERT_FILE = ca },
      delivery = "retry = { base = 30, max = 60 }",
      routes = "['*'] = { host = '" .. host .. "', port = " .. r.ports.smtp .. ", tls = 'verify' }" }
  end

  it("delivers when the certificate is trusted and matches the route's host name", function()
    local r = D.start_for_test{ relay_from = "'127.0.0.0/8'" }
    local s = verifying_sender(r, "mx.test.example")
    assert.equal(250, send(s, "verified"))
    local env, msg = received_by(r)
    assert.matches("\ntls TLSv1%.[23] ", env)
    assert.matches("\nSubject: verified\n", msg)
    assert.truthy(s:wait_log("event=delivered [^\n]*to=rcpt@remote%.test", 5), s:log())
  end)

  it("defers when the trusted certificate does not name the route's host", function()
    local r = D.start_for_test{ relay_from = "'127.0.0.0/8'" }
    local s = verifying_sender(r, "127.0.0.1")
    assert.equal(250, send(s, "wrong name"))
    assert.truthy(s:wait_log("event=deferred [^\n]*TLS", 5), s:log())
    assert.equal(0, #r:queue_files())
  end)
end)

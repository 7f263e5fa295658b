-- Relays that want credentials (a route with auth_user/auth_password, from
-- the routes table or the route hook): the credentials only travel under
-- TLS, verified by default, unless the route says auth_plaintext = true.
-- The next hop is the scripted server (tests/helpers/fake_smtp.lua), which
-- can offer STARTTLS and refuse it (454) but speaks no TLS itself; what it
-- saw is in its events.log ("CMD n AUTH ...", "AUTH_OK n user").
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local fake_smtp = require("fake_smtp")

local ACCOUNT = { user = "relayuser", password = "s3cret" }
local REFUSED = "454 4.7.0 TLS not available due to local problem"

local function start_fake(addr, port, o)
  return fake_smtp.start(D.scratch_dir("relay-auth"), addr, port, o)
end

-- One attempt only: a deferral waits five minutes.
local function start_daemon(o)
  return D.start_for_test{
    deliver = true, relay_from = "'127.0.0.0/8'",
    routes = o.routes, policies = o.policies,
    delivery = "retry = { base = 300, max = 600 },"
      .. " timeouts = { connect = 2, greeting = 3, command = 2, data = 3 }",
  }
end

-- ['domain'] = { host = '127.0.0.4', port = port, <fields> }
local function route(domain, port, fields)
  return ("['%s'] = { host = '127.0.0.4', port = %d, %s }"):format(domain, port, fields)
end

local CREDENTIALS = "auth_user = 'relayuser', auth_password = 's3cret'"

local function send(d, rcpt, subject)
  return d:send("sender@example.test", { rcpt }, "Subject: " .. subject .. "\r\n\r\nbody\r\n")
end

-- The log line of the message's first deferral.
local function deferred(d, qid)
  local line = d:wait_log("(event=deferred qid=" .. qid .. "[^\n]*)", 10)
  assert.is_truthy(line, d:log())
  return line
end

local function queue_show(d, qid)
  local out, code = D.sh(D.bin .. "/indimail -c " .. d.config .. " queue show " .. qid)
  assert.equal(0, code, out)
  return out
end

-- Nothing that carries or follows credentials reached the server.
local function assert_no_auth(fake)
  assert.equal(0, fake.count("\nCMD %d+ AUTH"), fake.events())
  assert.equal(0, fake.count("\nCMD %d+ MAIL"), fake.events())
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

describe("a relay route with credentials", function()
  after_each(cleanup.run)

  it("requires verified TLS by default: a relay answering STARTTLS with 454 never sees AUTH", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT, starttls = REFUSED })
    local d = start_daemon{ routes = route("relay.test", port, CREDENTIALS) }
    local qid = send(d, "rcpt@relay.test", "default tls")
    assert.matches("STARTTLS refused", deferred(d, qid))
    assert.matches("\nCMD 1 STARTTLS\n", fake.events())
    assert_no_auth(fake)
    assert.matches('last_error="[^"\n]*STARTTLS refused', queue_show(d, qid))
  end)

  it("requires TLS by default: a relay that offers no STARTTLS never sees AUTH", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT })
    local d = start_daemon{ routes = route("relay.test", port, CREDENTIALS) }
    local qid = send(d, "rcpt@relay.test", "no starttls")
    assert.matches("does not offer STARTTLS and the route requires TLS", deferred(d, qid))
    assert_no_auth(fake)
  end)

  it("with tls = 'opportunistic' defers rather than send AUTH after STARTTLS got 454", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT, starttls = REFUSED })
    local d = start_daemon{ routes = route("relay.test", port, CREDENTIALS .. ", tls = 'opportunistic'") }
    local qid = send(d, "rcpt@relay.test", "downgraded")
    local why = ("refusing to send credentials for route relay.test (127.0.0.4:%d) "
      .. "over an unencrypted connection"):format(port)
    assert.matches(esc(why), deferred(d, qid))
    assert.matches("\nCMD 1 STARTTLS\n", fake.events())
    assert_no_auth(fake)
    assert.matches('last_error="' .. esc(why) .. '"', queue_show(d, qid))
    assert.equal(1, #d:queue_files())
  end)

  it("with tls = 'none' defers rather than send AUTH in clear", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT })
    local d = start_daemon{ routes = route("*", port, CREDENTIALS .. ", tls = 'none'") }
    local qid = send(d, "rcpt@anywhere.test", "in clear")
    assert.matches("refusing to send credentials for relay 127%.0%.0%.4:" .. port
      .. " over an unencrypted connection", deferred(d, qid))
    assert_no_auth(fake)
  end)

  it("sends AUTH without TLS when the route says auth_plaintext = true", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT, starttls = REFUSED })
    local d = start_daemon{ routes = route("relay.test", port,
      CREDENTIALS .. ", tls = 'opportunistic', auth_plaintext = true") }
    local qid = send(d, "rcpt@relay.test", "explicitly in clear")
    assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
    assert.matches("\nCMD 1 STARTTLS\nCMD 1 AUTH PLAIN ", fake.events())
    assert.equal(1, fake.count("\nAUTH_OK 1 relayuser\n"))
    assert.equal(1, fake.count("\nMESSAGE 1 "))
  end)

  describe("given by the route hook", function()
    local function hook_route(port, opts, extra)
      return ([[
indimail.hook("route", function(session, tx, rcpt)
  local v = indimail.route_relay("127.0.0.4", %d, { %s })
  %s
  return v
end, "relay_auth")
]]):format(port, opts, extra or "")
    end

    it("requires verified TLS when it gives credentials and no tls", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT, starttls = REFUSED })
      local d = start_daemon{ policies = hook_route(port, CREDENTIALS) }
      local qid = send(d, "rcpt@hooked.test", "hook default tls")
      assert.matches("STARTTLS refused", deferred(d, qid))
      assert_no_auth(fake)
    end)

    it("with tls = 'opportunistic' never sends AUTH in clear", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT, starttls = REFUSED })
      local d = start_daemon{ policies = hook_route(port, CREDENTIALS .. ", tls = 'opportunistic'") }
      local qid = send(d, "rcpt@hooked.test", "hook downgraded")
      assert.matches("refusing to send credentials for relay 127%.0%.0%.4:" .. port, deferred(d, qid))
      assert_no_auth(fake)
    end)

    it("sends AUTH in clear when its verdict says auth_plaintext = true", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT })
      local d = start_daemon{ policies = hook_route(port, CREDENTIALS .. ", tls = 'none'",
        "v.auth_plaintext = true") }
      local qid = send(d, "rcpt@hooked.test", "hook in clear")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, fake.count("\nAUTH_OK 1 relayuser\n"))
    end)

    it("takes auth_plaintext = true from route_relay's options too", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT })
      local d = start_daemon{ policies = hook_route(port,
        CREDENTIALS .. ", tls = 'none', auth_plaintext = true") }
      local qid = send(d, "rcpt@hooked.test", "hook option in clear")
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 10), d:log())
      assert.equal(1, fake.count("\nAUTH_OK 1 relayuser\n"))
    end)

    it("is a hook error, not a weaker route, when its tls is misspelt", function()
      local port = D.free_tcp_port()
      local fake = start_fake("127.0.0.4", port, { auth = ACCOUNT })
      local d = start_daemon{ policies = hook_route(port, CREDENTIALS .. ", tls = 'verfy'") }
      local qid = send(d, "rcpt@hooked.test", "hook typo")
      assert.is_truthy(d:wait_log("event=hook_error [^\n]*tls must be", 10), d:log())
      deferred(d, qid)
      assert.equal(0, fake.count("\nCONNECT "))
    end)
  end)

  describe("in the configuration", function()
    local function check(route_fields)
      local dir = D.scratch_dir("relay-auth-config")
      local path = dir .. "/bad.lua"
      D.writefile(path, "indimail.config {\n  listen = { { port = 0 } },\n"
        .. "  routes = { ['x.test'] = { host = 'h', port = 25, " .. route_fields .. " } },\n}\n")
      return D.sh(D.bin .. "/indimaild -t -c " .. path)
    end

    it("refuses an auth_plaintext that is not a boolean", function()
      local out, code = check(CREDENTIALS .. ", auth_plaintext = 'yes'")
      assert.equal(1, code, out)
      assert.matches("bad%.lua:3:.*routes%[%]%.auth_plaintext: must be true or false", out)
    end)

    it("refuses an auth_password without auth_user", function()
      local out, code = check("auth_password = 's3cret'")
      assert.equal(1, code, out)
      assert.matches("bad%.lua:3:.*routes%[%]%.auth_password: needs auth_user", out)
    end)
  end)
end)

-- An idle connection to a relay is kept a few seconds for the next message
-- to the same destination; it carries the login of the route that opened it.
describe("reuse of an idle relay connection", function()
  after_each(cleanup.run)

  local ACCOUNTS = { users = { alice = "alice-pw", bob = "bob-pw" } }

  -- Two routes to the same relay, in clear so the fake can check logins.
  local function two_routes(port, one, two)
    return route("one.test", port, one .. ", tls = 'none', auth_plaintext = true") .. ", "
      .. route("two.test", port, two .. ", tls = 'none', auth_plaintext = true")
  end

  -- Sends to rcpt@one.test, then (once delivered) to rcpt@two.test.
  local function one_then_two(d)
    local q1 = send(d, "rcpt@one.test", "first")
    assert.is_truthy(d:wait_log("event=delivered qid=" .. q1, 10), d:log())
    local q2 = send(d, "rcpt@two.test", "second")
    return q1, q2
  end

  -- connection number -> the user it logged in as, from events.log.
  local function logins(fake)
    local by_conn = {}
    for n, user in fake.events():gmatch("\nAUTH_OK (%d+) (%S+)") do by_conn[n] = user end
    return by_conn
  end

  -- recipient -> the user of the connection that carried its message.
  local function carried_as(fake)
    local by_conn, out = logins(fake), {}
    for n, rcpts in fake.events():gmatch("\nMESSAGE (%d+) %d+ %S+ (%S+)") do
      for r in rcpts:gmatch("[^,]+") do out[r] = by_conn[n] or "nobody" end
    end
    return out
  end

  it("is not reused by a route with another auth_user", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNTS })
    local d = start_daemon{ routes = two_routes(port,
      "auth_user = 'alice', auth_password = 'alice-pw'", "auth_user = 'bob', auth_password = 'bob-pw'") }
    local _, q2 = one_then_two(d)
    assert.is_truthy(d:wait_log("event=delivered qid=" .. q2, 10), d:log())
    assert.equal(2, fake.count("\nAUTH_OK %d+ "), fake.events())
    assert.same({ ["rcpt@one.test"] = "alice", ["rcpt@two.test"] = "bob" }, carried_as(fake))
  end)

  it("is not reused by a route with the same user and another password", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNTS })
    local d = start_daemon{ routes = two_routes(port,
      "auth_user = 'alice', auth_password = 'alice-pw'", "auth_user = 'alice', auth_password = 'stale'") }
    local _, q2 = one_then_two(d)
    assert.matches("authentication to [^\n]* failed: 535", deferred(d, q2))
    assert.equal(1, fake.count("\nAUTH_FAILED %d+ alice\n"), fake.events())
    assert.same({ ["rcpt@one.test"] = "alice" }, carried_as(fake))
  end)

  it("is reused by a route with the same relay, credentials and TLS policy", function()
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNTS })
    local same = "auth_user = 'alice', auth_password = 'alice-pw'"
    local d = start_daemon{ routes = two_routes(port, same, same) }
    local _, q2 = one_then_two(d)
    assert.is_truthy(d:wait_log("event=delivered qid=" .. q2, 10), d:log())
    assert.equal(1, fake.count("\nCONNECT "), fake.events())
    assert.same({ ["rcpt@one.test"] = "alice", ["rcpt@two.test"] = "alice" }, carried_as(fake))
  end)

  it("is not shared by recipients of one message whose routes log in as different users", function()
    -- per-user routes of one domain (IndiMail's hostcntrl) to one relay
    local port = D.free_tcp_port()
    local fake = start_fake("127.0.0.4", port, { auth = ACCOUNTS })
    local d = start_daemon{ policies = ([[
indimail.hook("route", function(session, tx, rcpt)
  local user = rcpt:match("^(%%w+)@")
  local v = indimail.route_relay("127.0.0.4", %d,
    { auth_user = user, auth_password = user .. "-pw", tls = "none" })
  v.auth_plaintext = true
  return v
end, "per_user")
]]):format(port) }
    local qid = d:send("sender@example.test", { "alice@split.test", "bob@split.test" },
      "Subject: split\r\n\r\nbody\r\n")
    assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 10), d:log())
    assert.equal(2, fake.count("\nAUTH_OK %d+ "), fake.events())
    assert.same({ ["alice@split.test"] = "alice", ["bob@split.test"] = "bob" }, carried_as(fake))
  end)
end)

-- Routes (smtproutes) with their own TCP timeouts and retry tolerance,
-- like IndiMail's tcpto table: one slow or dead relay does not have to
-- share the global delivery settings.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local socket = require("socket")

describe("a route with its own timeouts and retry tolerance", function()
  local d, silent
  after_each(function()
    if silent then silent:close() end
    if d then d:cleanup() end
    d, silent = nil, nil
  end)

  it("gives up on a relay that never greets after the route's greeting timeout", function()
    -- a socket that listens but never answers: the kernel completes the
    -- TCP handshake, nothing ever says 220
    silent = assert(socket.bind("127.0.0.1", 0))
    local _, port = silent:getsockname()
    d = D.start{ deliver = true, relay_from = "'127.0.0.0/8'",
      delivery = "timeouts = { greeting = 300 }, retry = { base = 60, max = 60 }",
      routes = "['slow.test'] = { host = '127.0.0.1', port = " .. port
        .. ", timeouts = { greeting = 0.3 } }" }
    local started = D.t.now()
    d:send("sender@example.test", { "rcpt@slow.test" }, "Subject: slow\r\n\r\nbody\r\n")
    assert.truthy(d:wait_log("event=deferred [^\n]*to=rcpt@slow%.test[^\n]*timeout", 5))
    assert.is_true(D.t.now() - started < 3, "deferred by the route's 0.3 s, not the global 300 s")
    assert.equal(1, #d:queue_files())
  end)

  it("bounces after the route's lifetime, retrying on the route's schedule", function()
    local closed = D.closed_tcp_port()
    d = D.start{ deliver = true, relay_from = "'127.0.0.0/8'",
      mailboxes = "users = { 'sender@example.test' }",
      delivery = "lifetime = 86400, retry = { base = 60, max = 60 }",
      routes = "['dead.test'] = { host = '127.0.0.1', port = " .. closed
        .. ", retry = { base = 0.2, max = 0.2 }, lifetime = 1 }" }
    d:send("sender@example.test", { "rcpt@dead.test" }, "Subject: dead\r\n\r\nbody\r\n")
    assert.truthy(d:wait_log("event=failed [^\n]*to=rcpt@dead%.test[^\n]*delivery time expired", 10))
    assert.truthy(d:wait_log("event=bounce_queued [^\n]*to=sender@example%.test", 5))
    assert.is_true(d:count_log("event=deferred [^\n]*to=rcpt@dead%.test") >= 2,
      "retried more than once within the route's lifetime")
    assert.truthy(D.eventually(function()
      return D.sh("ls " .. d.dir .. "/maildirs/example.test/sender/Maildir/new 2>/dev/null"):match("%S")
    end, 5), "the bounce reached the sender's mailbox")
  end)

  it("keeps a deferred message's retry schedule across a restart", function()
    local closed = D.closed_tcp_port()
    d = D.start{ deliver = true, relay_from = "'127.0.0.0/8'",
      delivery = "retry = { base = 30, max = 60 }",
      routes = "['*'] = '127.0.0.1:" .. closed .. "'" }
    d:send("sender@example.test", { "rcpt@later.test" }, "Subject: later\r\n\r\nbody\r\n")
    assert.truthy(d:wait_log("event=deferred [^\n]*to=rcpt@later%.test", 5))
    d:kill9()
    d:restart()
    D.t.sleep(1.5)
    assert.equal(1, d:count_log("event=deferred [^\n]*to=rcpt@later%.test"),
      "not tried again at once after the restart")
    local list = d:queue_list()
    local wait = tonumber(list:match("attempts=1 next_retry=(%d+)s"))
    assert.truthy(wait, list)
    assert.is_true(wait > 20 and wait <= 30, list)
  end)

  it("refuses an unknown key in a route with the file and the line of the key", function()
    local dir = D.mktemp("route-config")
    local path = dir .. "/bad.lua"
    D.writefile(path, "indimail.config {\n  listen = { { port = 0 } },\n"
      .. "  routes = { ['x.test'] = { host = 'h', port = 25, tolerance = 3 } },\n}\n")
    local out, code = D.sh(D.bin .. "/indimaild -t -c " .. path)
    D.rmtemp(dir)
    assert.equal(1, code, out)
    assert.matches("bad%.lua:3:.*unknown key 'tolerance'", out)
  end)
end)

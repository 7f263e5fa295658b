-- STARTTLS (RFC 3207) and implicit TLS (RFC 8314) security behaviour.
--
-- The plaintext part of a session is spoken over a raw luasocket connection,
-- so that exact bytes (and exact packet contents) can be sent. luasec is not
-- a dependency, so once the server answered 220 to STARTTLS the connection is
-- handed to `openssl s_client`: the spec listens on an ephemeral loopback
-- port, points s_client at it and relays bytes between s_client and the
-- server. s_client -quiet writes what the server says under TLS to a file.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local socket = require("socket")
local t = D.t

local runs = 0

-- Starts `openssl s_client -connect 127.0.0.1:port` with `input` on stdin.
-- Returns the pid and the paths of its stdout/stderr files.
local function spawn_s_client(d, port, input, extra)
  runs = runs + 1
  local base = ("%s/s_client.%d"):format(d.dir, runs)
  D.writefile(base .. ".in", input)
  local cmd = ("exec openssl s_client -connect 127.0.0.1:%d -quiet %s < %s.in > %s.out 2> %s.err")
    :format(port, extra or "", base, base, base)
  local pid = assert(t.spawn({ "sh", "-c", cmd }))
  return pid, base .. ".out", base .. ".err"
end

-- Waits (bounded) for s_client to exit; kills it if it does not.
local function reap(pid, timeout)
  if D.wait_pid(pid, timeout or 5) ~= "running" then return true end
  t.kill(-pid, "KILL")
  t.waitpid(pid)
  return false
end

-- Forwards what `from` has to `to`; returns true once `from` was closed.
local function pump(from, to)
  local data, err, partial = from:receive(8192)
  data = data or partial
  if data and #data > 0 then
    to:settimeout(5)
    local ok = to:send(data)
    to:settimeout(0)
    if not ok then return true end
  end
  return err == "closed"
end

-- Continues the luasocket client `c`, which just got 220 to STARTTLS, with
-- TLS through s_client, which sends `input` once the handshake is done.
-- Returns what the server sent under TLS, s_client's stderr, and whether
-- the server closed the connection before `timeout`.
local function continue_tls(d, c, input, timeout)
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, rport = srv:getsockname()
  local pid, out, err = spawn_s_client(d, rport, input)
  srv:settimeout(5)
  local a = srv:accept()
  srv:close()
  if not a then
    reap(pid, 1)
    error("s_client did not connect: " .. (D.readfile(err) or ""))
  end
  a:settimeout(0)
  c.s:settimeout(0)
  local deadline = t.now() + (timeout or 10)
  local server_closed = false
  while t.now() < deadline do
    local readable = socket.select({ c.s, a }, nil, 0.05)
    local client_closed = false
    for _, sk in ipairs(readable) do
      if sk == c.s then
        server_closed = pump(c.s, a) or server_closed
      else
        client_closed = pump(a, c.s) or client_closed
      end
    end
    if server_closed or client_closed then break end
  end
  a:close()
  reap(pid)
  return D.readfile(out) or "", D.readfile(err) or "", server_closed
end

-- Runs s_client straight against an implicit-TLS port.
local function implicit_tls(d, port, input, timeout)
  local pid, out, err = spawn_s_client(d, port, input)
  local exited = reap(pid, timeout or 10)
  return D.readfile(out) or "", D.readfile(err) or "", exited
end

-- Splits raw server output into replies: { {code=, text=, lines=}, ... }.
local function replies(raw)
  local list, cur = {}, nil
  for line in raw:gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    cur = cur or { lines = {} }
    cur.lines[#cur.lines + 1] = line
    if line:sub(4, 4) ~= "-" then
      cur.code = tonumber(line:sub(1, 3))
      cur.text = table.concat(cur.lines, "\n")
      list[#list + 1] = cur
      cur = nil
    end
  end
  return list
end

local function codes(list)
  local c = {}
  for i, r in ipairs(list) do c[i] = r.code end
  return c
end

-- A connection that did EHLO and got 220 to STARTTLS.
local function starttls_ready(d, port)
  local c = D.connect(port or d.ports.smtp)
  assert.equal(220, (c:reply()))
  local code, text = c:cmd("EHLO client.example.test")
  assert.equal(250, code)
  assert.matches("\n250%-STARTTLS", text)
  return c
end

describe("STARTTLS", function()
  local d
  setup(function() d = D.start() end)
  teardown(function() d:cleanup() end)

  it("upgrades: 220 2.0.0, then commands work under TLS (the relay works)", function()
    local c = starttls_ready(d)
    local code, text = c:cmd("STARTTLS")
    assert.equal(220, code)
    assert.matches("^220 2%.0%.0 ", text)
    local out, err, closed = continue_tls(d, c, "NOOP\r\nQUIT\r\n")
    assert.is_true(closed, err)
    assert.same({ 250, 221 }, codes(replies(out)))
    assert.matches("^250 2%.0%.0 Ok\r\n221 2%.0%.0 mx%.test%.example closing", out)
  end)

  it("discards commands pipelined after STARTTLS (CVE-2011-0411)", function()
    local c = starttls_ready(d)
    -- one send: STARTTLS and a plaintext HELP in the same packet
    assert(c:send("STARTTLS\r\nHELP\r\n"))
    local code = c:reply()
    assert.equal(220, code)
    assert.is_truthy(d:wait_log("event=starttls_pipelined [^\n]*discarded_bytes=6\n", 2),
      "no event=starttls_pipelined discarded_bytes=6 in the log")
    local out, err, closed = continue_tls(d, c, "NOOP\r\nQUIT\r\n")
    assert.is_true(closed, err)
    -- the first reply under TLS answers our NOOP, not the injected HELP
    assert.same({ 250, 221 }, codes(replies(out)))
    assert.not_matches("214", out)
  end)

  it("does not let a pipelined EHLO and MAIL leak into the TLS session", function()
    local c = starttls_ready(d)
    local injected = "EHLO evil.example\r\nMAIL FROM:<attacker@example.test>\r\n"
    assert(c:send("STARTTLS\r\n" .. injected))
    assert.equal(220, (c:reply()))
    assert.is_truthy(d:wait_log("event=starttls_pipelined [^\n]*discarded_bytes=" .. #injected .. "\n", 2))
    local out, err, closed = continue_tls(d, c,
      "RCPT TO:<rcpt@example.test>\r\nEHLO client.example.test\r\n"
      .. "RCPT TO:<rcpt@example.test>\r\nQUIT\r\n")
    assert.is_true(closed, err)
    local r = replies(out)
    assert.same({ 503, 250, 503, 221 }, codes(r))
    assert.matches("^503 5%.5%.1 ", r[1].text)
    assert.matches("Hello client%.example%.test ", r[2].text)	-- not evil.example
    assert.matches("^503 5%.5%.1 Need MAIL", r[3].text)
  end)

  it("answers a second STARTTLS under TLS with 503 5.5.1 and stays usable", function()
    local c = starttls_ready(d)
    assert.equal(220, (c:cmd("STARTTLS")))
    local out, err, closed = continue_tls(d, c,
      "EHLO client.example.test\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n")
    assert.is_true(closed, err)
    local r = replies(out)
    assert.same({ 250, 503, 250, 221 }, codes(r))
    assert.matches("^503 5%.5%.1 ", r[2].text)
  end)

  it("no longer offers STARTTLS in the EHLO reply under TLS", function()
    local c = starttls_ready(d)
    assert.equal(220, (c:cmd("STARTTLS")))
    local out, err, closed = continue_tls(d, c, "EHLO client.example.test\r\nQUIT\r\n")
    assert.is_true(closed, err)
    local r = replies(out)
    assert.same({ 250, 221 }, codes(r))
    assert.matches("\n250%-PIPELINING\n", r[1].text)
    assert.matches("\n250%-SIZE %d+\n", r[1].text)
    assert.not_matches("STARTTLS", r[1].text)
  end)

  it("forgets the EHLO: MAIL right after STARTTLS gets 503 5.5.1 (RFC 3207 4.2)", function()
    local c = starttls_ready(d)
    assert.equal(220, (c:cmd("STARTTLS")))
    local out, err, closed = continue_tls(d, c,
      "MAIL FROM:<sender@example.test>\r\nEHLO client.example.test\r\n"
      .. "MAIL FROM:<sender@example.test>\r\nQUIT\r\n")
    assert.is_true(closed, err)
    local r = replies(out)
    assert.same({ 503, 250, 250, 221 }, codes(r))
    assert.matches("^503 5%.5%.1 Send HELO/EHLO first", r[1].text)
    assert.matches("^250 2%.1%.0 ", r[3].text)
  end)

  it("forgets a transaction begun before STARTTLS", function()
    local c = starttls_ready(d)
    assert.equal(250, (c:cmd("MAIL FROM:<sender@example.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<rcpt@example.test>")))
    assert.equal(220, (c:cmd("STARTTLS")))
    local out, err, closed = continue_tls(d, c,
      "EHLO client.example.test\r\nDATA\r\nRCPT TO:<rcpt@example.test>\r\nQUIT\r\n")
    assert.is_true(closed, err)
    local r = replies(out)
    assert.same({ 250, 503, 503, 221 }, codes(r))
    assert.matches("^503 5%.5%.1 Need MAIL", r[2].text)
  end)

  it("queues a message sent under STARTTLS with ESMTPS and the TLS version", function()
    local c = starttls_ready(d)
    assert.equal(220, (c:cmd("STARTTLS")))
    local out, err, closed = continue_tls(d, c,
      "EHLO client.example.test\r\nMAIL FROM:<sender@example.test>\r\n"
      .. "RCPT TO:<rcpt@example.test>\r\nDATA\r\n"
      .. "Subject: over tls\r\n\r\nsecret\r\n.\r\nQUIT\r\n")
    assert.is_true(closed, err)
    local r = replies(out)
    assert.same({ 250, 250, 250, 354, 250, 221 }, codes(r))
    local id = r[5].text:match("queued as (%w+)")
    local env, msg = d:queued(id)
    assert.matches("\ntls TLSv1%.[23] %S+\n", env)
    assert.matches("with ESMTPS id " .. id .. "\n\t%(using TLSv1%.[23] with cipher %S+%)", msg)
    assert.matches("\nSubject: over tls\n\nsecret\n$", msg)
  end)

  it("rejects STARTTLS with a parameter with 501 and stays in plaintext", function()
    local c = starttls_ready(d)
    local code, text = c:cmd("STARTTLS now")
    assert.equal(501, code)
    assert.matches("^501 5%.5%.4 ", text)
    assert.equal(250, (c:cmd("NOOP")))	-- still plaintext
    c:close()
  end)

  it("drops a client that sends garbage instead of a TLS handshake", function()
    local c = starttls_ready(d)
    assert.equal(220, (c:cmd("STARTTLS")))
    local before = d:count_log("event=disconnect [^\n]*reason=\"[^\n]*SSL routines")
    c:send("EHLO not-tls.example\r\n")
    assert.is_true(c:closed_by_server(3))
    D.eventually(function()
      return d:count_log("event=disconnect [^\n]*reason=\"[^\n]*SSL routines") ~= before
    end, 2, 0.02)
    assert.equal(before + 1, d:count_log("event=disconnect [^\n]*reason=\"[^\n]*SSL routines"))
  end)
end)

describe("STARTTLS handshake timeout", function()
  local d
  setup(function()
    d = D.start{ timeouts = "command = 30, data = 30, tls = 0.5, hook = 5, drain = 5" }
  end)
  teardown(function() d:cleanup() end)

  it("closes a connection that never starts the handshake after timeouts.tls", function()
    local c = starttls_ready(d)
    assert.equal(220, (c:cmd("STARTTLS")))
    local t0 = t.now()
    assert.is_true(c:closed_by_server(5))
    assert.is_true(t.now() - t0 < 2.5, "took " .. (t.now() - t0) .. " s")
    assert.is_truthy(d:wait_log("event=reject [^\n]*reply=timeout", 2))
  end)
end)

describe("implicit TLS (smtps)", function()
  local d
  setup(function() d = D.start() end)
  teardown(function() d:cleanup() end)

  it("greets with 220 once the TLS handshake is done (RFC 8314 3.3)", function()
    local out, err, exited = implicit_tls(d, d.ports.smtps, "QUIT\r\n")
    assert.is_true(exited, err)
    local r = replies(out)
    assert.same({ 220, 221 }, codes(r))
    assert.matches("^220 mx%.test%.example ESMTP", r[1].text)
  end)

  it("does not offer STARTTLS and refuses it (502 5.5.1): TLS is already on", function()
    local out, err, exited = implicit_tls(d, d.ports.smtps,
      "EHLO client.example.test\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n")
    assert.is_true(exited, err)
    -- (the 220 greeting is missing: see the pending test above)
    local ehlo = out:match("(250%-mx%.test%.example Hello.-\r\n250 [^\r\n]*\r\n)")
    assert.is_truthy(ehlo, out)
    assert.not_matches("STARTTLS", ehlo)
    assert.matches("\r\n50[23] 5%.5%.1 [^\r\n]*\r\n250 2%.0%.0 Ok\r\n221 ", out)
  end)

  it("queues a message with ESMTPS and listener smtps", function()
    local out, err, exited = implicit_tls(d, d.ports.smtps,
      "EHLO client.example.test\r\nMAIL FROM:<sender@example.test>\r\n"
      .. "RCPT TO:<rcpt@example.test>\r\nDATA\r\nSubject: smtps\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    assert.is_true(exited, err)
    local id = out:match("\r\n250 2%.0%.0 Ok: queued as (%w+)\r\n")
    assert.is_truthy(id, out)
    local env, msg = d:queued(id)
    assert.matches("\nlistener smtps\n", env)
    assert.matches("\ntls TLSv1%.[23] ", env)
    assert.matches("with ESMTPS id " .. id, msg)
  end)
end)

describe("a listener without TLS", function()
  local d
  setup(function()
    -- The harness gives every listener TLS; restart the same daemon with
    -- the submission listener's tls setting removed (tls defaults to none).
    d = D.start()
    d:stop()
    local conf = D.readfile(d.config)
    local plain, n = conf:gsub("(name = 'submission', address = '127%.0%.0%.1', port = 0), tls = 'starttls'", "%1")
    assert.equal(1, n, "submission listener not found in the generated config")
    D.writefile(d.config, plain)
    os.remove(d.dir .. "/indimail.log")
    d.stopped, d.how, d.code, d.ports = nil, nil, nil, {}
    d.pid = t.spawn({ D.bin .. "/indimaild", "-c", d.config }, d.dir .. "/stderr.log")
    assert(d:wait_log("event=ready", 10), D.readfile(d.dir .. "/stderr.log"))
    for name, port in d:log():gmatch("event=listening name=(%S+) address=%S+ port=(%d+)") do
      d.ports[name] = tonumber(port)
    end
    assert(d:wait_log("event=worker_start index=0", 5))
  end)
  teardown(function() d:cleanup() end)

  it("does not offer STARTTLS and answers it with 502 5.5.1", function()
    assert.matches("event=listening name=submission [^\n]*tls=none", d:log())
    local c = D.connect(d.ports.submission)
    assert.equal(220, (c:reply()))
    local code, text = c:cmd("EHLO client.example.test")
    assert.equal(250, code)
    assert.not_matches("STARTTLS", text)
    code, text = c:cmd("STARTTLS")
    assert.equal(502, code)
    assert.matches("^502 5%.5%.1 ", text)
    assert.equal(250, (c:cmd("NOOP")))	-- still plaintext
    c:close()
  end)
end)

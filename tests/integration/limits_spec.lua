-- Resource limits and timeouts: connections (per IP and in total), idle and
-- data timeouts, and the message size limit without SIZE=.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local t = D.t

local MSG = "Subject: small\r\n\r\nsmall body\r\n"

-- Waits (bounded) until the log has more than n lines matching pattern.
local function wait_count(d, pattern, n, timeout)
  return D.eventually(function() return d:count_log(pattern) > n end, timeout, 0.02) or false
end

-- Waits (bounded) until the server has closed every session it opened, so
-- that a test starts with no connection slot in use.
local function settle(d)
  D.eventually(function()
    return d:count_log("event=disconnect ") >= d:count_log("event=connect ")
  end, 5, 0.02)
  assert.equal(d:count_log("event=connect "), d:count_log("event=disconnect "))
end

local function greeted(d, port)
  local c = D.connect(port or d.ports.smtp)
  local code, text = c:reply()
  return c, code, text
end

-- Reads one reply with a bounded wait; returns code, text, seconds waited.
local function timed_reply(c, timeout)
  c.s:settimeout(timeout)
  local t0 = t.now()
  local code, text = c:reply()
  return code, text, t.now() - t0
end

describe("connection limits", function()
  describe("connections_per_ip = 2", function()
    local d
    setup(function() d = D.start{ limits = "connections_per_ip = 2" } end)
    teardown(function() d:cleanup() end)
    before_each(function() settle(d) end)

    it("refuses the third simultaneous connection with 421 4.7.0 and closes it; "
      .. "a slot freed by a closed connection is usable again", function()
      local c1, code1 = greeted(d)
      local c2, code2 = greeted(d)
      assert.equal(220, code1)
      assert.equal(220, code2)

      local c3, code3, text3 = greeted(d)
      assert.equal(421, code3)
      assert.matches("^421 4%.7%.0 mx%.test%.example Too many connections from your address", text3)
      assert.is_true(c3:closed_by_server(3))
      c3:close()
      assert.is_truthy(d:wait_log("event=reject [^\n]*command=connect reply=\"per%-IP connection limit\"", 2))

      -- the two admitted sessions are unaffected
      assert.equal(250, (c1:cmd("NOOP")))
      assert.equal(250, (c2:cmd("NOOP")))

      -- closing one frees its slot (once the server saw the close)
      local gone = d:count_log("event=disconnect")
      c1:close()
      assert.is_true(wait_count(d, "event=disconnect", gone, 3))
      local c4, code4 = greeted(d)
      assert.equal(220, code4)
      assert.equal(250, (c4:cmd("EHLO client.example.test")))

      -- and the limit holds again with c2 and c4 connected
      local c5, code5 = greeted(d)
      assert.equal(421, code5)
      c5:close()
      c2:close()
      c4:close()
    end)

    it("frees the slot of a session that ended with QUIT", function()
      local c1 = greeted(d)
      local c2 = greeted(d)
      local gone = d:count_log("event=disconnect")
      assert.equal(221, (c1:cmd("QUIT")))
      assert.is_true(c1:closed_by_server(3))
      assert.is_true(wait_count(d, "event=disconnect", gone, 3))
      local c3, code3 = greeted(d)
      assert.equal(220, code3)
      c2:close()
      c3:close()
    end)
  end)

  describe("connections_per_ip = 2 with two workers", function()
    local d
    setup(function() d = D.start{ workers = 2, limits = "connections_per_ip = 2" } end)
    teardown(function() d:cleanup() end)

    it("counts the connections of every worker together", function()
      local cs, got = {}, {}
      for i = 1, 6 do
        local c, code = greeted(d)
        cs[i], got[i] = c, code
      end
      assert.same({ 220, 220, 421, 421, 421, 421 }, got)
      for _, c in ipairs(cs) do c:close() end
    end)
  end)

  describe("connections = 2", function()
    local d
    setup(function() d = D.start{ limits = "connections = 2, connections_per_ip = 10" } end)
    teardown(function() d:cleanup() end)

    it("refuses a connection over the total limit with 421 4.7.0", function()
      local c1, code1 = greeted(d)
      local c2, code2 = greeted(d)
      local c3, code3, text3 = greeted(d)
      assert.same({ 220, 220, 421 }, { code1, code2, code3 })
      assert.matches("^421 4%.7%.0 mx%.test%.example Too many connections, try later", text3)
      assert.is_true(c3:closed_by_server(3))
      c1:close()
      c2:close()
      c3:close()
    end)
  end)
end)

describe("timeouts", function()
  describe("command = 0.5", function()
    local d
    setup(function()
      d = D.start{ timeouts = "command = 0.5, data = 30, tls = 10, hook = 5, drain = 5" }
    end)
    teardown(function() d:cleanup() end)

    it("sends 421 4.4.2 to an idle client and disconnects it within ~2 s", function()
      local c, code = greeted(d)
      assert.equal(220, code)
      local code2, text, waited = timed_reply(c, 5)
      assert.equal(421, code2)
      assert.matches("^421 4%.4%.2 mx%.test%.example ", text)
      assert.is_true(waited >= 0.3 and waited < 2, "421 after " .. waited .. " s")
      assert.is_true(c:closed_by_server(2))
      assert.is_truthy(d:wait_log("event=reject [^\n]*reply=timeout", 2))
      c:close()
    end)

    it("times out a client idle in the middle of a transaction, queueing nothing", function()
      local c = greeted(d)
      assert.equal(250, (c:cmd("EHLO client.example.test")))
      assert.equal(250, (c:cmd("MAIL FROM:<sender@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<rcpt@example.test>")))
      local code, _, waited = timed_reply(c, 5)
      assert.equal(421, code)
      assert.is_true(waited < 2, "421 after " .. waited .. " s")
      assert.is_true(c:closed_by_server(2))
      assert.equal(0, #d:queue_files())
      c:close()
    end)

    it("restarts the idle timer on every command", function()
      local c = greeted(d)
      local t0 = t.now()
      while t.now() - t0 < 1.5 do	-- three times the timeout, in small steps
        assert.equal(250, (c:cmd("NOOP")))
        t.sleep(0.2)
      end
      assert.equal(250, (c:cmd("NOOP")))
      c:close()
    end)

    it("waits for the data timeout, not the command timeout, after 354", function()
      local c = greeted(d)
      assert.equal(250, (c:cmd("EHLO client.example.test")))
      assert.equal(250, (c:cmd("MAIL FROM:<sender@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<rcpt@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
      t.sleep(1.2)	-- over the command timeout, well under the data timeout
      c:send(MSG .. ".\r\n")
      local code = timed_reply(c, 5)
      assert.equal(250, code)
      c:close()
    end)
  end)

  describe("data = 0.5", function()
    local d
    setup(function()
      d = D.start{ timeouts = "command = 30, data = 0.5, tls = 10, hook = 5, drain = 5" }
    end)
    teardown(function() d:cleanup() end)

    local function in_data(c)
      assert.equal(250, (c:cmd("EHLO client.example.test")))
      assert.equal(250, (c:cmd("MAIL FROM:<sender@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<rcpt@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
    end

    it("sends 421 4.4.2 to a client that stalls in the middle of the data, queueing nothing", function()
      local c = greeted(d)
      in_data(c)
      c:send("Subject: stalled\r\n\r\nfirst part of the body\r\n")
      local code, text, waited = timed_reply(c, 5)
      assert.equal(421, code)
      assert.matches("^421 4%.4%.2 ", text)
      assert.is_true(waited >= 0.3 and waited < 2, "421 after " .. waited .. " s")
      assert.is_true(c:closed_by_server(2))
      assert.equal(0, #d:queue_files())
      assert.equal(0, #d:tmp_files())
      c:close()
    end)

    it("sends 421 to a client that sends DATA and then nothing", function()
      local c = greeted(d)
      in_data(c)
      local code, text, waited = timed_reply(c, 5)
      assert.equal(421, code)
      assert.matches("^421 4%.4%.2 ", text)
      assert.is_true(waited < 2, "421 after " .. waited .. " s")
      assert.is_true(c:closed_by_server(2))
      assert.equal(0, #d:queue_files())
      c:close()
    end)

    it("keeps a client that sends data slowly but steadily", function()
      local c = greeted(d)
      in_data(c)
      c:send("Subject: slow\r\n\r\n")
      for i = 1, 5 do	-- 5 x 0.2 s: twice the data timeout in total
        t.sleep(0.2)
        c:send(("line %d\r\n"):format(i))
      end
      c:send(".\r\n")
      local code, text = timed_reply(c, 5)
      assert.equal(250, code)
      local _, msg = d:queued(text:match("queued as (%w+)"))
      assert.matches("\nSubject: slow\n\nline 1\nline 2\nline 3\nline 4\nline 5\n$", msg)
      c:close()
    end)
  end)
end)

describe("message_size = 2048", function()
  local d
  setup(function() d = D.start{ limits = "message_size = 2048" } end)
  teardown(function() d:cleanup() end)

  it("refuses a bigger message sent without SIZE= with 552 5.3.4 after the final dot; "
    .. "the session keeps working", function()
    local before = #d:queue_files()
    local c = greeted(d)
    assert.equal(250, (c:cmd("EHLO client.example.test")))
    local big = "Subject: big\r\n\r\n" .. (("y"):rep(98) .. "\r\n"):rep(50)	-- ~5 KB
    assert.equal(250, (c:cmd("MAIL FROM:<sender@example.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<rcpt@example.test>")))
    assert.equal(354, (c:cmd("DATA")))
    -- the server must not answer before the end of the data
    c:send(big)
    c.s:settimeout(0.3)
    local early = c.s:receive("*l")
    assert.is_nil(early)
    c.s:settimeout(10)
    c:send(".\r\n")
    local code, text = c:reply()
    assert.equal(552, code)
    assert.matches("^552 5%.3%.4 ", text)
    assert.equal(before, #d:queue_files())
    assert.equal(0, #d:tmp_files())
    -- the session goes on: the transaction was reset, a small message passes
    assert.equal(250, (c:cmd("NOOP")))
    assert.equal(503, (c:cmd("RCPT TO:<rcpt@example.test>")))
    code, text = c:transaction("sender@example.test", { "rcpt@example.test" }, MSG)
    assert.equal(250, code)
    local _, msg = d:queued(text:match("queued as (%w+)"))
    assert.matches("\nSubject: small\n\nsmall body\n$", msg)
    assert.equal(before + 1, #d:queue_files())
    assert.equal(221, (c:cmd("QUIT")))
    c:close()
  end)

  it("accepts a message just under the limit", function()
    local c = greeted(d)
    assert.equal(250, (c:cmd("EHLO client.example.test")))
    local body = "Subject: fits\r\n\r\n" .. (("z"):rep(98) .. "\r\n"):rep(19)	-- 1917 octets
    local code, text = c:transaction("sender@example.test", { "rcpt@example.test" }, body)
    assert.equal(250, code, text)
    c:close()
  end)
end)

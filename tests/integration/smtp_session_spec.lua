-- SMTP session behaviour through real sockets (luasocket client).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")

local MSG = "From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody line\r\n"

describe("SMTP session", function()
  local d, c
  setup(function() d = D.start() end)
  teardown(function() d:cleanup() end)
  before_each(function()
    c = D.connect(d.ports.smtp)
    assert.equal(220, (c:reply()))
  end)
  after_each(function() c:close() end)

  describe("greeting and EHLO", function()
    it("greets with 220 and the hostname", function()
      local c2 = D.connect(d.ports.smtp)
      local code, text = c2:reply()
      assert.equal(220, code)
      assert.matches("mx.test.example ESMTP", text)
      c2:close()
    end)

    it("advertises PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES and STARTTLS", function()
      local code, text = c:cmd("EHLO client.example.test")
      assert.equal(250, code)
      for _, ext in ipairs({ "PIPELINING", "SIZE %d+", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS" }) do
        assert.matches("250[- ]" .. ext, text)
      end
    end)

    it("answers HELO with a single 250 line", function()
      local code, text = c:cmd("HELO client.example.test")
      assert.equal(250, code)
      assert.not_matches("\n", text)
    end)

    it("rejects EHLO without a domain with 501", function()
      assert.equal(501, (c:cmd("EHLO")))
    end)

    it("rejects EHLO with an invalid domain with 501", function()
      assert.equal(501, (c:cmd("EHLO bad_domain!")))
    end)
  end)

  describe("command sequence errors", function()
    it("rejects MAIL before EHLO with 503 5.5.1", function()
      local code, text = c:cmd("MAIL FROM:<a@example.test>")
      assert.equal(503, code)
      assert.matches("5%.5%.1", text)
    end)

    it("rejects RCPT before MAIL with 503", function()
      c:cmd("EHLO client.example.test")
      assert.equal(503, (c:cmd("RCPT TO:<b@example.test>")))
    end)

    it("rejects DATA before MAIL with 503", function()
      c:cmd("EHLO client.example.test")
      assert.equal(503, (c:cmd("DATA")))
    end)

    it("rejects DATA without any accepted recipient with 554", function()
      c:cmd("EHLO client.example.test")
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
      assert.equal(554, (c:cmd("DATA")))
    end)

    it("rejects a second MAIL in one transaction with 503", function()
      c:cmd("EHLO client.example.test")
      c:cmd("MAIL FROM:<a@example.test>")
      assert.equal(503, (c:cmd("MAIL FROM:<a@example.test>")))
    end)

    it("RSET ends the transaction so MAIL is accepted again", function()
      c:cmd("EHLO client.example.test")
      c:cmd("MAIL FROM:<a@example.test>")
      assert.equal(250, (c:cmd("RSET")))
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
    end)

    it("rejects an unknown command with 500 5.5.1", function()
      local code, text = c:cmd("FROB")
      assert.equal(500, code)
      assert.matches("5%.5%.1", text)
    end)

    it("rejects arguments to DATA, RSET and QUIT with 501", function()
      c:cmd("EHLO client.example.test")
      assert.equal(501, (c:cmd("RSET now")))
      assert.equal(501, (c:cmd("QUIT now")))
    end)

    it("answers NOOP 250, VRFY 252, HELP 214, EXPN 502", function()
      assert.equal(250, (c:cmd("NOOP")))
      assert.equal(252, (c:cmd("VRFY someone")))
      assert.equal(214, (c:cmd("HELP")))
      assert.equal(502, (c:cmd("EXPN list")))
    end)

    it("closes after QUIT with 221", function()
      assert.equal(221, (c:cmd("QUIT")))
      assert.is_true(c:closed_by_server())
    end)

    it("closes with 421 after too many errors", function()
      local code
      for _ = 1, 12 do
        code = c:cmd("FROB")
        if code == 421 then break end
      end
      assert.equal(421, code)
      assert.is_true(c:closed_by_server())
    end)
  end)

  describe("RCPT TO", function()
    before_each(function()
      c:cmd("EHLO client.example.test")
      c:cmd("MAIL FROM:<a@example.test>")
    end)

    it("accepts a recipient in a local domain with 250 2.1.5", function()
      local code, text = c:cmd("RCPT TO:<b@example.test>")
      assert.equal(250, code)
      assert.matches("2%.1%.5", text)
    end)

    it("refuses to relay for an unauthorised client with 554 5.7.1", function()
      local code, text = c:cmd("RCPT TO:<someone@elsewhere.example>")
      assert.equal(554, code)
      assert.matches("5%.7%.1", text)
    end)

    it("always accepts <Postmaster> without a domain (RFC 5321 4.5.1)", function()
      assert.equal(250, (c:cmd("RCPT TO:<Postmaster>")))
    end)

    it("rejects a malformed address with 501 5.1.3", function()
      local code, text = c:cmd("RCPT TO:<no-domain>")
      assert.equal(501, code)
      assert.matches("5%.1%.3", text)
    end)

    it("answers 452 once the recipient limit is reached", function()
      local code
      for i = 1, 101 do code = c:cmd(("RCPT TO:<u%d@example.test>"):format(i)) end
      assert.equal(452, code)
    end)
  end)

  describe("DATA", function()
    it("queues a message and answers 250 with the queue id", function()
      c:cmd("EHLO client.example.test")
      local code, text = c:transaction("a@example.test", { "b@example.test" }, MSG)
      assert.equal(250, code)
      local id = text:match("queued as (%w+)")
      assert.is_truthy(id)
      local env, msg = d:queued(id)
      assert.matches("sender a@example.test\n", env)
      assert.matches("rcpt b@example.test\n", env)
      assert.matches("^Received: from client.example.test %(%[127.0.0.1%]%)", msg)
      assert.matches("\nSubject: hi\n\nbody line\n$", msg)
    end)

    it("undoes dot-stuffing exactly", function()
      c:cmd("EHLO client.example.test")
      local body = "Subject: dots\r\n\r\n..leading dot\r\n...\r\n.\r\n"
      -- the last ".\r\n" of body is stuffed data? no: build it stuffed
      body = "Subject: dots\r\n\r\n..leading dot\r\n....\r\n..\r\nend\r\n"
      local code, text = c:transaction("a@example.test", { "b@example.test" }, body)
      assert.equal(250, code)
      local _, msg = d:queued(text:match("queued as (%w+)"))
      assert.matches("\n\n%.leading dot\n%.%.%.\n%.\nend\n$", msg)
    end)

    it("rejects a message with a bare LF with 554 5.6.0 and queues nothing", function()
      c:cmd("EHLO client.example.test")
      local before = #d:queue_files()
      local code, text = c:transaction("a@example.test", { "b@example.test" },
        "Subject: x\r\n\r\nline with bare LF\n.\nstill data\r\n")
      assert.equal(554, code)
      assert.matches("5%.6%.0", text)
      assert.equal(before, #d:queue_files())
      -- the session is still usable
      assert.equal(250, (c:cmd("NOOP")))
    end)

    it("rejects a message with a NUL byte with 554", function()
      c:cmd("EHLO client.example.test")
      local code = c:transaction("a@example.test", { "b@example.test" },
        "Subject: x\r\n\r\nnul\0byte\r\n")
      assert.equal(554, code)
    end)

    it("rejects a line longer than 1000 bytes with 554 and keeps the session", function()
      c:cmd("EHLO client.example.test")
      local code = c:transaction("a@example.test", { "b@example.test" },
        "Subject: x\r\n\r\n" .. ("x"):rep(1200) .. "\r\n")
      assert.equal(554, code)
      assert.equal(250, (c:cmd("NOOP")))
    end)

    it("records BODY=8BITMIME in the stored envelope", function()
      c:cmd("EHLO client.example.test")
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test> BODY=8BITMIME SIZE=100")))
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
      c:send("Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n")
      local code, text = c:reply()
      assert.equal(250, code)
      local env, msg = d:queued(text:match("queued as (%w+)"))
      assert.matches("\nbody 8BITMIME\n", env)
      assert.matches("\n\n\xc3\xa9t\xc3\xa9\n$", msg)
    end)

    it("refuses MAIL parameters after HELO (not EHLO) with 555", function()
      c:cmd("HELO client.example.test")
      assert.equal(555, (c:cmd("MAIL FROM:<a@example.test> SIZE=100")))
    end)

    it("refuses SIZE= above the limit at MAIL with 552 5.3.4", function()
      c:cmd("EHLO client.example.test")
      local code, text = c:cmd("MAIL FROM:<a@example.test> SIZE=999999999999")
      assert.equal(552, code)
      assert.matches("5%.3%.4", text)
    end)
  end)

  describe("command lines", function()
    it("rejects a command line over 512 bytes with 500 and keeps the session", function()
      local code = c:cmd("NOOP " .. ("x"):rep(600))
      assert.equal(500, code)
      assert.equal(250, (c:cmd("NOOP")))
    end)

    it("rejects a command ending in a bare LF with 500 5.5.2", function()
      c:send("NOOP\n")
      local code, text = c:reply()
      assert.equal(500, code)
      assert.matches("5%.5%.2", text)
    end)

    it("rejects a NUL byte in a command with 500", function()
      assert.equal(500, (c:cmd("NO\0OP")))
    end)
  end)
end)

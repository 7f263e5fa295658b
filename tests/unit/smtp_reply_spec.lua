-- What our SMTP client makes of a remote server's replies
-- (src/deliver/smtp_reply.c; fuzzed by fuzz/fuzz_reply.c).
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

describe("SMTP replies from a remote server", function()
  it("takes a one-line reply with its code and text", function()
    local used, code, text = t.parse_reply("250 2.0.0 Ok\r\nnext")
    assert.equal(14, used)
    assert.equal(250, code)
    assert.equal("250 2.0.0 Ok", text)
  end)

  it("joins a multi-line reply up to the line without a hyphen", function()
    local reply = "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
    local used, code, text = t.parse_reply(reply .. "354 next")
    assert.equal(#reply, used)
    assert.equal(250, code)
    assert.equal("250-mx.test\n250-PIPELINING\n250 SIZE 10", text)
  end)

  it("accepts a bare code line and bare LF line ends", function()
    local used, code = t.parse_reply("354\n")
    assert.equal(4, used)
    assert.equal(354, code)
  end)

  it("waits for more input while a multi-line reply is unfinished", function()
    assert.equal(0, (t.parse_reply("250-one\r\n250-two\r\n")))
    assert.equal(0, (t.parse_reply("250 no line end yet")))
  end)

  -- fuzz_reply crash (issue 8): "663-..." waited for more input forever.
  it("ends a reply whose code is out of range at once, as malformed (code 0)", function()
    for _, line in ipairs({ "663-ba end\n", "099-x\n", "600 x\n", "999-a\n999-b\n" }) do
      local used, code = t.parse_reply(line)
      assert.equal(#line:match("^[^\n]*\n"), used, line)
      assert.equal(0, code, line)
    end
  end)

  it("ends a reply at a line with another code and calls it malformed (code 0)", function()
    local used, code = t.parse_reply("451-first\r\n452 second\r\n")
    assert.equal(23, used)
    assert.equal(0, code)
  end)

  it("calls a line that does not start with three digits malformed", function()
    for _, bad in ipairs({ "hello\r\n", "25\r\n", "2500 x\r\n", "25a ok\r\n", "999 x\r\n" }) do
      local used, code = t.parse_reply(bad)
      assert.equal(#bad, used, bad)
      assert.equal(0, code, bad)
    end
  end)

  it("refuses a reply longer than 64 KiB", function()
    local long = ("250-" .. ("x"):rep(1000) .. "\r\n"):rep(70)
    assert.equal(-1, (t.parse_reply(long)))
    assert.equal(-1, (t.parse_reply(("x"):rep(70 * 1024))))
  end)

  describe("EHLO keywords", function()
    it("finds PIPELINING, STARTTLS, 8BITMIME, SIZE and the AUTH mechanisms", function()
      local caps = t.ehlo_caps("250-mx.test Hello\n250-PIPELINING\n250-SIZE 1000\n"
        .. "250-STARTTLS\n250-AUTH CRAM-MD5 PLAIN login\n250 8BITMIME")
      assert.same({ PIPELINING = true, SIZE = true, STARTTLS = true, AUTH_PLAIN = true,
        AUTH_LOGIN = true, ["8BITMIME"] = true }, caps)
    end)

    it("reads the old AUTH=LOGIN form and ignores the greeting line", function()
      assert.same({ AUTH_LOGIN = true }, t.ehlo_caps("250-STARTTLS is the greeting\n250 AUTH=LOGIN"))
    end)

    it("does not take a keyword that only starts like a known one", function()
      assert.same({}, t.ehlo_caps("250-mx\n250-PIPELININGX\n250 SIZEABLE"))
    end)
  end)
end)

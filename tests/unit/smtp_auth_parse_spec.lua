-- What an SMTP AUTH client sends, read before any account is looked up:
-- strict base64 (src/lib/base64.c) and the PLAIN message (RFC 4616,
-- smtp_parse_plain in src/smtp/smtp_parse.c). The server answers 501 to
-- anything these refuse (tests/integration/auth_spec.lua).
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

describe("base64 of an AUTH response", function()
  it("decodes padded RFC 4648 text", function()
    assert.equal("\0joe@example.test\0secret", t.base64_decode("AGpvZUBleGFtcGxlLnRlc3QAc2VjcmV0"))
    assert.equal("A", t.base64_decode("QQ=="))
    assert.equal("AB", t.base64_decode("QUI="))
    assert.equal("", t.base64_decode(""))
  end)

  it("refuses white space, a missing pad, a pad inside, and other alphabets", function()
    for _, bad in ipairs({ "QQ", "Q Q==", "QQ==\n", "Q=Q=", "=QQQ", "QQ=A", "QQ===",
                           "a-b_", "QUI\0", "Zm9v\r\n" }) do
      assert.is_nil(t.base64_decode(bad), ("%q"):format(bad))
    end
  end)

  it("reads back whatever bytes it wrote", function()
    math.randomseed(9)
    for _ = 1, 300 do
      local b = {}
      for i = 1, math.random(0, 60) do b[i] = string.char(math.random(0, 255)) end
      local s = table.concat(b)
      assert.equal(s, t.base64_decode(t.base64_encode(s)))
    end
  end)
end)

describe("an AUTH PLAIN message", function()
  it("splits authzid, authcid and password at the two NULs", function()
    assert.same({ "", "joe@example.test", "secret" }, { t.parse_plain("\0joe@example.test\0secret") })
    assert.same({ "joe", "joe", "" }, { t.parse_plain("joe\0joe\0") })
    assert.same({ "", "u", "p\0q" }, { t.parse_plain("\0u\0p\0q") })   -- refused later: NUL in it
  end)

  it("refuses a message without both separators", function()
    for _, bad in ipairs({ "", "joe", "\0joe", "joe\0secret" }) do
      assert.is_nil(t.parse_plain(bad), ("%q"):format(bad))
    end
  end)
end)

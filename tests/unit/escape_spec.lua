-- The %XX form of values in our line-based files (queue envelopes, the
-- start-up plan): src/lib/buf.c buf_escape / buf_unescape.
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

describe("escaped values", function()
  it("writes control bytes, DEL and '%' as %XX, everything else as is", function()
    local out, n = t.escape("a b%c\r\n\t\127é")
    assert.equal("a b%25c%0D%0A%09%7Fé", out)
    assert.equal(#out, n)
  end)

  it("escapes the extra bytes it is given (a space, for space-separated fields)", function()
    assert.equal("a%20b", (t.escape("a b", " ")))
  end)

  it("reads back every byte string it wrote", function()
    math.randomseed(8)
    for _ = 1, 500 do
      local bytes = {}
      for i = 1, math.random(0, 40) do bytes[i] = string.char(math.random(1, 255)) end
      local v = table.concat(bytes)
      assert.equal(v, t.unescape((t.escape(v, " "))))
    end
  end)

  it("leaves a malformed or lower-case escape as it is", function()
    assert.equal("%zz%4", t.unescape("%zz%4"))
    assert.equal("%2d", t.unescape("%2d"))
    assert.equal("-", t.unescape("%2D"))
  end)
end)

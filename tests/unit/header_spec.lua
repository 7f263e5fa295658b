-- The header walker (src/mail/header.c): RFC 5322 fields and folding over a
-- message stored with LF line ends, as msg:header() and local delivery's
-- loop detection see it.
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

local function names(fields)
  local out = {}
  for i, f in ipairs(fields) do out[i] = f.name end
  return table.concat(out, ",")
end

describe("header fields", function()
  it("reads name and value of each field up to the empty line", function()
    local msg = "From: a@b.test\nSubject:  hello there \n\nBody: not a field\n"
    local f, stop = t.header_fields(msg)
    assert.equal("From,Subject", names(f))
    assert.equal("a@b.test", f[1].value)
    assert.equal("  hello there ", f[2].raw)
    assert.equal("hello there", f[2].value)
    assert.equal(msg:find("\n\n", 1, true), stop, "stops at the empty line")
  end)

  it("unfolds continuation lines (SP or HT) into the value (RFC 5322 2.2.3)", function()
    local f = t.header_fields("X-Folded: one\n two\n\tthree\nNext: x\n\n")
    assert.equal("X-Folded,Next", names(f))
    assert.equal(" one\n two\n\tthree", f[1].raw)
    assert.equal("one two\tthree", f[1].value)
    assert.equal("x", f[2].value)
  end)

  it("gives an empty value for an empty field, folded or not", function()
    local f = t.header_fields("Empty:\nBlank:   \nX:\n \n\n")
    assert.equal("Empty,Blank,X", names(f))
    assert.equal("", f[1].value)
    assert.equal("", f[2].value)
    assert.equal("\n ", f[3].raw)
    assert.equal("", f[3].value)
  end)

  it("keeps a line without a colon as a field with no value", function()
    local f = t.header_fields("garbage line\nSubject: s\n\n")
    assert.equal("garbage line,Subject", names(f))
    assert.is_false(f[1].colon)
    assert.equal("", f[1].value)
    assert.is_true(f[2].colon)
  end)

  it("keeps spaces before the colon in the name", function()
    local f = t.header_fields("Subject : s\n\n")
    assert.equal("Subject ", f[1].name)
  end)

  it("ends the section with the data when there is no empty line", function()
    local msg = "A: 1\nB: 2\n folded"
    local f, stop = t.header_fields(msg)
    assert.equal("A,B", names(f))
    assert.equal("2 folded", f[2].value)
    assert.equal(#msg, stop)
  end)

  it("finds no field in a body-only message", function()
    local f, stop = t.header_fields("\nJust: body\n")
    assert.equal(0, #f)
    assert.equal(0, stop)
    assert.equal(0, #(t.header_fields("")))
  end)

  it("treats CR bytes as ordinary bytes", function()
    local f = t.header_fields("Subject: a\r\n b\r\nX: y\n\n")
    assert.equal("Subject,X", names(f))
    assert.equal("a\r b\r", f[1].value)
  end)

  it("unfolds before it trims: a value may start on the next line", function()
    local f = t.header_fields("Subject:\n  hello\nX: a \n \n\n")
    assert.equal("hello", f[1].value)
    assert.equal("a", f[2].value)
  end)

  it("unfolds and trims any raw value", function()
    assert.equal("a b", t.header_unfold(" \ta\n b \t"))
    assert.equal("", t.header_unfold(""))
    assert.equal("", t.header_unfold(" \t "))
  end)
end)

describe("the end of the header section", function()
  it("is the offset of the empty line", function()
    assert.same({ true, 5 }, { t.header_end("A: 1\n\nbody") })
  end)

  it("is 0 for a body-only message", function()
    assert.same({ true, 0 }, { t.header_end("\nbody\n\nmore") })
  end)

  it("is the end of the data when there is no empty line", function()
    assert.same({ false, 9 }, { t.header_end("A: 1\nB: 2") })
    assert.same({ false, 0 }, { t.header_end("") })
  end)

  it("is found the same way when a growing message is searched in steps", function()
    local msg = "A: 1\nB: 2\n\nbody\n"
    for cut = 0, #msg do
      local found, from = t.header_end(msg:sub(1, cut))
      if not found then
        assert.same({ true, 10 }, { t.header_end(msg, from) })
      else
        assert.equal(10, from)
      end
    end
  end)
end)

describe("counting fields", function()
  local msg = "Received: from a\nDelivered-To: b@example.test\n" ..
    "received: from c\n\tby d\nDelivered-To:\n  B@Example.TEST \n" ..
    "Received\nX-Received: no\n\nReceived: in the body\n"

  it("counts fields by name, in any case, up to the empty line", function()
    assert.equal(2, t.header_count(msg, "Received"))
    assert.equal(2, t.header_count(msg, "delivered-to"))
    assert.equal(0, t.header_count(msg, "Subject"))
  end)

  it("does not count a line without a colon", function()
    assert.equal(1, t.header_count("Received\nReceived: x\n\n", "Received"))
  end)

  it("compares the unfolded, trimmed value in any case when given one", function()
    assert.equal(2, t.header_count(msg, "Delivered-To", "b@example.test"))
    assert.equal(0, t.header_count(msg, "Delivered-To", "b@example"))
    assert.equal(0, t.header_count(msg, "Delivered-To", "b@example.test.x"))
    assert.equal(1, t.header_count(msg, "Received", "from c by d") +
      t.header_count(msg, "Received", "from c\tby d"))
  end)
end)

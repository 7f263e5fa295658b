-- The growable byte buffer every peer's bytes live in (src/lib/buf.c):
-- taking bytes off the front (buf_consume) moves nothing until the room at
-- the end runs out, so a pipelined burst of commands costs linear time.
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

local function A(s) return { "append", s } end
local function C(n) return { "consume", n } end

describe("buf_consume", function()
  it("keeps the rest, and appends after it into the room left", function()
    local out, skip, size = t.buf_run({ A("hello world"), C(6), A("!") })
    assert.equal("world!", out)
    assert.equal(6, skip)
    assert.equal(64, size)
  end)

  it("consuming everything (or more) empties it and gives back all the room", function()
    for _, n in ipairs({ 3, 4, 1000 }) do
      local out, skip, size = t.buf_run({ A("abc"), C(n) })
      assert.equal("", out)
      assert.equal(0, skip)
      assert.equal(64, size)
    end
    assert.equal("xy", (t.buf_run({ A("abc"), C(3), A("xy") })))
  end)

  it("consuming nothing changes nothing, on an empty buffer too", function()
    assert.equal("abc", (t.buf_run({ A("abc"), C(0) })))
    local out, skip, size = t.buf_run({ C(0), C(5) })
    assert.equal("", out)
    assert.equal(0, skip)
    assert.equal(0, size)
  end)

  it("takes 500 pipelined lines off one by one without moving the rest", function()
    local line = "RCPT TO:<" .. string.rep("r", 243) .. ">\r\n"
    local ops = { A(string.rep(line, 500)) }
    for i = 1, 499 do ops[#ops + 1] = C(#line) end
    local out, skip = t.buf_run(ops)
    assert.equal(line, out)
    assert.equal(499 * #line, skip)
  end)

  it("moves the live bytes back when the room runs out and they are fewer than those consumed", function()
    local out, skip, size = t.buf_run({ A(string.rep("a", 60)), C(50), A(string.rep("b", 40)) })
    assert.equal(string.rep("a", 10) .. string.rep("b", 40), out)
    assert.equal(0, skip)
    assert.equal(64, size)
  end)

  it("grows instead when moving would cost more than was consumed", function()
    local out, skip, size = t.buf_run({ A(string.rep("a", 60)), C(10), A(string.rep("b", 10)) })
    assert.equal(string.rep("a", 50) .. string.rep("b", 10), out)
    assert.equal(0, skip)
    assert.equal(128, size)
  end)

  it("holds what a plain string would under random appends, consumes and clears", function()
    math.randomseed(15)
    for _ = 1, 200 do
      local ops, model = {}, ""
      for _ = 1, math.random(1, 60) do
        local r = math.random()
        if r < 0.5 then
          local s = string.rep(string.char(math.random(65, 90)), math.random(0, 150))
          ops[#ops + 1], model = A(s), model .. s
        elseif r < 0.95 then
          local n = math.random(0, #model + 2)
          ops[#ops + 1], model = C(n), model:sub(n + 1)
        else
          ops[#ops + 1], model = { "clear" }, ""
        end
      end
      local out, skip, size = t.buf_run(ops)
      assert.equal(model, out)
      assert.is_true(skip + #out < size or size == 0)
    end
  end)
end)

-- The shape of src/ (docs/architecture.md, "Layers"): tools/check-layers
-- fails on an include arrow the layer table does not allow, a file over
-- 700 lines or a function over 60. These specs run it on the tree and on
-- small copies that break one rule each, so the check itself can fail.

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, (out:gsub("exit=%d+%s*$", ""))
end

-- A copy of tools/check-layers in a temp tree holding the given files.
local function check_tree(files)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/tools"))
  assert(os.execute("cp tools/check-layers " .. dir .. "/tools/"))
  for path, text in pairs(files) do
    assert(os.execute("mkdir -p " .. dir .. "/" .. path:match("^(.*)/")))
    local f = assert(io.open(dir .. "/" .. path, "w"))
    f:write(text)
    f:close()
  end
  local code, out = sh(dir .. "/tools/check-layers")
  os.execute("rm -rf " .. dir)
  return code, out
end

local function fn(name, lines)
  local body = { "static int", name .. "(void)", "{" }
  for i = 1, lines - 4 do body[#body + 1] = "\t(void)" .. i .. ";" end
  body[#body + 1] = "\treturn 0;"
  body[#body + 1] = "}"
  return table.concat(body, "\n") .. "\n"
end

describe("the layers of src/", function()
  it("hold in the tree as it is", function()
    local code, out = sh("tools/check-layers")
    assert.equal("check-layers: ok\n", out)
    assert.equal(0, code)
  end)

  it("refuse an include that points up (lib including mail)", function()
    local code, out = check_tree({
      ["src/lib/a.c"] = '#include "../mail/b.h"\n',
      ["src/mail/b.h"] = "\n",
    })
    assert.equal(1, code)
    assert.matches("src/lib/a.c: src/lib must not include src/mail", out, 1, true)
  end)

  it("refuse receiving and delivery code including each other", function()
    local code, out = check_tree({
      ["src/smtp/a.c"] = '#include "../deliver/b.h"\n',
      ["src/deliver/b.h"] = '#include "../smtp/c.h"\n',
      ["src/smtp/c.h"] = "\n",
    })
    assert.equal(1, code)
    assert.matches("src/smtp must not include src/deliver", out, 1, true)
    assert.matches("src/deliver must not include src/smtp", out, 1, true)
  end)

  it("refuse the queue or the directory knowing Lua or a protocol", function()
    local code, out = check_tree({
      ["src/queue/a.c"] = '#include "../lua/x.h"\n',
      ["src/directory/b.c"] = '#include "../smtp/y.h"\n',
    })
    assert.equal(1, code)
    assert.matches("src/queue must not include src/lua", out, 1, true)
    assert.matches("src/directory must not include src/smtp", out, 1, true)
  end)

  it("refuse a folder the table does not know", function()
    local code, out = check_tree({ ["src/misc/a.c"] = "\n" })
    assert.equal(1, code)
    assert.matches("src/misc is not in", out, 1, true)
  end)

  it("refuse a function over 60 lines and a file over 700", function()
    local long = fn("long_one", 61)
    local big = {}
    for i = 1, 30 do big[#big + 1] = fn("f" .. i, 25) end
    local code, out = check_tree({
      ["src/mail/a.c"] = fn("short_one", 60) .. "\n" .. long,
      ["src/mail/b.c"] = table.concat(big, "\n"),
    })
    assert.equal(1, code)
    assert.matches("long_one is 61 lines", out, 1, true)
    assert.not_matches("short_one", out, 1, true)
    assert.matches("src/mail/b.c: %d+ lines %(at most 700%)", out)
  end)

  it("accept every arrow the table allows", function()
    local code, out = check_tree({
      ["src/daemon/a.c"] = '#include "../smtp/b.h"\n#include "../deliver/c.h"\n',
      ["src/smtp/b.h"] = '#include "../queue/d.h"\n#include "../lua/e.h"\n',
      ["src/deliver/c.h"] = '#include "../directory/f.h"\n',
      ["src/queue/d.h"] = '#include "../mail/g.h"\n',
      ["src/mail/g.h"] = '#include "../lib/h.h"\n',
    })
    assert.equal("check-layers: ok\n", out)
    assert.equal(0, code)
  end)
end)

-- Per-domain rules: each file's own budgets (domain_rules_limits.domains,
-- capped by domain_rules_limits.max) and memory exhaustion anywhere inside a
-- domain's Lua state (loading the file, a policy's setup, a hook, building
-- the session/tx objects a hook is given) giving 451 4.3.0 for that
-- domain's mail only, logged with the file, while the daemon and the other
-- domains go on.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

-- Builds about 1.5 MB of strings in a rcpt hook, then lets the mail in.
local WORKLOAD = [[
return { rcpt = function(session, tx, rcpt)
  local t = {}
  for i = 1, 20000 do t[i] = string.rep("y", 40) .. i end
  tx.env.BUILT = tostring(#t)
end }
]]

local function write_rules(dir, files)
  for name, text in pairs(files) do D.writefile(dir .. "/" .. name .. ".lua", text) end
end

local function start(dir, limits, extra)
  return D.start_for_test{
    relay_from = "'127.0.0.0/8'",
    config_extra = ("domain_rules = %q, domain_rules_limits = %s, %s"):format(dir, limits, extra or ""),
  }
end

local function rcpt(c, addr)
  return c:cmd("RCPT TO:<" .. addr .. ">")
end

describe("domain_rules_limits.domains", function()
  after_each(cleanup.run)

  it("gives one domain a memory budget too small for a workload another domain's larger budget passes", function()
    local dir = D.scratch_dir("domains")
    write_rules(dir, { ["small.test"] = WORKLOAD, ["big.test"] = WORKLOAD, ["plain.test"] = WORKLOAD })
    local d = start(dir, [[{ instructions = 5000000, memory = 4 * 1024 * 1024,
      domains = {
        ["small.test"] = { memory = 512 * 1024 },
        ["big.test"] = { memory = 32 * 1024 * 1024, instructions = 8000000 },
      } }]])
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@sender.test>")))
    local code, text = rcpt(c, "x@small.test")
    assert.equal(451, code, text)
    assert.matches("4.3.0", text, 1, true)
    code, text = rcpt(c, "x@big.test")
    assert.equal(250, code, text)
    code, text = rcpt(c, "x@plain.test")
    assert.equal(250, code, "the default budget (4 MiB) fits the workload too: " .. tostring(text))
    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:small%.test[^\n]*file=[^\n]*small%.test%.lua"
      .. "[^\n]*out of memory", 1))
    assert.is_nil(d:log():find("policy=domain:big.test", 1, true), "big.test never failed")
  end)

  it("refuses at config load, with the line, an unknown domain, an unknown key and a value over max", function()
    local dir = D.scratch_dir("domains")
    write_rules(dir, { ["big.test"] = WORKLOAD })
    local cfgdir = D.scratch_dir("limcfg")
    local function check(limits)
      local file = cfgdir .. "/indimail.lua"
      D.writefile(file, ([[
indimail.config {
  hostname = "mx.test.example",
  listen = { { port = 0 } },
  domain_rules = %q,
  domain_rules_limits = %s,
}
]]):format(dir, limits))
      local out, code = D.sh(D.bin .. "/indimaild -t -c " .. file .. " 2>&1")
      return out, code, file
    end
    local out, code, file = check([[{
    domains = {
      ["big.test"] = { memory = 1024 * 1024 },
      ["nope.test"] = { memory = 1024 * 1024 },
    } }]])
    assert.equal(1, code, out)
    assert.matches(file .. ":8: bad config: domain_rules_limits.domains['nope.test']: there is no '"
      .. dir .. "/nope.test.lua'", out, 1, true)

    out, code, file = check([[{
    domains = {
      ["big.test"] = { memroy = 1024 * 1024 },
    } }]])
    assert.equal(1, code, out)
    assert.matches(file .. ":7: bad config: domain_rules_limits.domains['big.test']: unknown key 'memroy'", out, 1, true)

    out, code, file = check([[{
    max = { memory = 64 * 1024 * 1024 },
    domains = {
      ["big.test"] = { memory = 128 * 1024 * 1024 },
    } }]])
    assert.equal(1, code, out)
    assert.matches(file .. ":8: bad config: domain_rules_limits.domains['big.test'].memory: "
      .. "1.34218e+08 is out of range [262144, 6.71089e+07]", out, 1, true)

    out, code = check('{ memory = 1024 * 1024, domains = { ["big.test"] = { memory = 8 * 1024 * 1024 } } }')
    assert.equal(0, code, out)
  end)
end)

describe("out of memory inside a domain's state", function()
  after_each(cleanup.run)

  -- Fills the state at load: the file never loads.
  local LOADFILL = [[
local t = {}
for i = 1, 1e7 do t[i] = string.rep("z", 64) .. i end
return { rcpt = function() end }
]]
  -- A policy whose setup fills the state (found on policy_path).
  local HOG = [[
return { setup = function(settings)
  local t = {}
  for i = 1, 1e7 do t[i] = string.rep("h", 64) .. i end
  return { rcpt = function() end }
end }
]]
  -- Fills the state inside a hook, before it returns.
  local HOOKFILL = [[
return { rcpt = function(session, tx, rcpt)
  local t = {}
  for i = 1, 1e7 do t[i] = string.rep("k", 64) .. i end
  return indimail.reject("never reached", 550, "5.7.1")
end }
]]
  -- The first hook keeps its session, tx and coroutine and fills what is
  -- left to the brim (keeping it): the next stage cannot even build the
  -- objects a hook is given.
  local BRIM = [[
return { rcpt = function(session, tx, rcpt)
  if hog then return nil end
  hog = { session, tx, coroutine.running() }
  local keep, n, size = {}, 0, 4096
  for i = 1, 4096 do keep[i] = false end
  hog[4] = keep
  while size >= 48 and n < 4096 do
    local ok, s = pcall(string.rep, "b", size)
    if ok then n = n + 1; keep[n] = s else size = size // 2 end
  end
  return nil
end }
]]
  local OK = "return { rcpt = function(session, tx, rcpt) tx.env.OK_SEEN = rcpt end }\n"

  it("tempfails only that domain's mail, at every point, and the daemon goes on", function()
    local dir = D.scratch_dir("domains")
    local pdir = D.scratch_dir("policies")
    D.writefile(pdir .. "/hog.lua", HOG)
    write_rules(dir, {
      ["loadfill.test"] = LOADFILL,
      ["setupfill.test"] = 'indimail.policy("hog")\n',
      ["hookfill.test"] = HOOKFILL,
      ["brim.test"] = BRIM,
      ["ok.test"] = OK,
    })
    local d = start(dir, "{ instructions = 50000000, memory = 512 * 1024 }",
      ("policy_path = { %q },"):format(pdir))
    assert.is_truthy(d:wait_log("event=domain_rules_failed[^\n]*domain=loadfill%.test[^\n]*loadfill%.test%.lua"
      .. "[^\n]*not enough memory", 1), "the load failure names the file")
    assert.is_truthy(d:wait_log("event=domain_rules_failed[^\n]*domain=setupfill%.test[^\n]*setupfill%.test%.lua"
      .. "[^\n]*not enough memory", 1))
    assert.is_truthy(d:wait_log("event=domain_rules_loaded[^\n]*domain=brim%.test", 1))

    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@sender.test>")))
    for _, dom in ipairs({ "loadfill.test", "setupfill.test", "hookfill.test" }) do
      local code, text = rcpt(c, "x@" .. dom)
      assert.equal(451, code, dom .. ": " .. tostring(text))
      assert.matches("4.3.0", text, 1, true)
      assert.equal(250, (rcpt(c, "y@ok.test")), "ok.test goes on after " .. dom)
    end
    local first = rcpt(c, "a@brim.test")
    assert.is_truthy(first == 250 or first == 451, tostring(first))
    for i = 1, 3 do
      local code, text = rcpt(c, "b" .. i .. "@brim.test")
      assert.equal(451, code, text)
      assert.matches("4.3.0", text, 1, true)
      assert.equal(250, (rcpt(c, "z" .. i .. "@ok.test")))
    end
    assert.equal(354, (c:cmd("DATA")))
    c:send("From: a@sender.test\r\nSubject: oom\r\n\r\nbody\r\n.\r\n")
    local code, text = c:reply()
    assert.equal(250, code, text)
    assert.matches("\nenv OK_SEEN=z3@ok.test\n", d:queued(text:match("queued as (%w+)")), 1, true)

    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:hookfill%.test[^\n]*file=[^\n]*hookfill%.test%.lua"
      .. "[^\n]*error=\"?out of memory", 1))
    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:brim%.test[^\n]*file=[^\n]*brim%.test%.lua"
      .. "[^\n]*out of memory while building session, tx and msg", 1))
    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:loadfill%.test[^\n]*domain rules did not load", 1))
    local c2 = d:session()
    assert.equal(250, (c2:cmd("MAIL FROM:<a@sender.test>")), "a new session is served")
    assert.equal(250, (rcpt(c2, "w@ok.test")))
    assert.is_nil(d:log():find("event=worker_[de]", 1), "no worker died or exited")
  end)
end)

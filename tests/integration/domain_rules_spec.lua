-- Per-domain rules (issue 11): domain_rules = "folder" holds DOMAIN.lua
-- files, each in its own Lua state with its own instruction and memory
-- budget. A broken, looping or memory-hungry file tempfails only its own
-- domain's mail; a SIGHUP reloads them (a fixed file heals its domain, a
-- broken one keeps the running version); a broken policy file refuses the
-- reload and the running policies stay; policy_path comes before lua/policies.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local MSG = "From: a@sender.test\r\nTo: x@alpha.test\r\nSubject: domains\r\n\r\nbody\r\n"

local ALPHA = [[
-- alpha.test: no mail to spam-* recipients; a global of its own
secret = "alpha's"
return {
  rcpt = function(session, tx, rcpt)
    if rcpt:match("^spam%-") then
      return indimail.reject("alpha.test takes no mail for " .. rcpt, 550, "5.1.1")
    end
  end,
}
]]

local BETA = [[
-- beta.test: marks its mail and logs; cannot see alpha's global
return {
  rcpt = function(session, tx, rcpt)
    tx.env.BETA = "seen " .. rcpt
    tx.env.ALPHA_SECRET = tostring(secret)
    indimail.log("beta_rule", { rcpt = rcpt })
  end,
}
]]

local BROKEN = "return {\n  rcpt = function(session, tx, rcpt)\n    if then\n  end,\n}\n"
local LOOP = "return { rcpt = function() while true do end end }\n"
local BOMB = [[
return { rcpt = function()
  local t = {}
  for i = 1, 1e7 do t[i] = string.rep("x", 64) .. i end
end }
]]

local function write_rules(dir, files)
  for name, text in pairs(files) do D.writefile(dir .. "/" .. name .. ".lua", text) end
end

local function start(dir, extra)
  return D.start_for_test{
    relay_from = "'127.0.0.0/8'",
    config_extra = ("domain_rules = %q, domain_rules_limits = { instructions = 200000, memory = 2 * 1024 * 1024 }, %s")
      :format(dir, extra or ""),
  }
end

local function rcpt(c, addr)
  local code, text = c:cmd("RCPT TO:<" .. addr .. ">")
  return code, text
end

describe("per-domain rules", function()
  after_each(cleanup.run)

  it("run each domain's own hooks, isolate broken, looping and memory-hungry files", function()
    local dir = D.scratch_dir("domains")
    write_rules(dir, { ["alpha.test"] = ALPHA, ["beta.test"] = BETA,
      ["broken.test"] = BROKEN, ["loop.test"] = LOOP, ["bomb.test"] = BOMB })
    local d = start(dir)
    assert.is_truthy(d:wait_log("event=domain_rules_failed[^\n]*domain=broken%.test[^\n]*broken%.test%.lua:3:", 1),
      "the broken file is logged with its file and line")
    assert.is_truthy(d:wait_log("event=domain_rules_loaded[^\n]*domain=alpha%.test", 1))

    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<a@sender.test>")))
    local code, text = rcpt(c, "spam-1@alpha.test")
    assert.equal(550, code)
    assert.equal("550 5.1.1 alpha.test takes no mail for spam-1@alpha.test", text)
    assert.equal(250, (rcpt(c, "ham@alpha.test")))
    assert.equal(250, (rcpt(c, "spam-1@beta.test")), "alpha's rule is alpha's only")
    code, text = rcpt(c, "x@broken.test")
    assert.equal(451, code, text)
    assert.matches("4.3.0", text, 1, true)
    code, text = rcpt(c, "x@loop.test")
    assert.equal(451, code, text)
    assert.matches("4.3.0", text, 1, true)
    code, text = rcpt(c, "x@bomb.test")
    assert.equal(451, code, text)
    assert.equal(250, (rcpt(c, "y@beta.test")), "other domains go on in the same session")
    assert.equal(250, (rcpt(c, "plain@gamma.test")), "a domain without a file")
    assert.equal(354, (c:cmd("DATA")))
    c:send(MSG .. ".\r\n")
    local code2, text2 = c:reply()
    assert.equal(250, code2, text2)
    local env = d:queued(text2:match("queued as (%w+)"))
    assert.matches("\nenv BETA=seen y@beta.test\n", env, 1, true)
    assert.matches("\nenv ALPHA_SECRET=nil\n", env, 1, true)
    assert.matches("\nrcpt ham@alpha.test\n", env, 1, true)
    assert.is_nil(env:find("loop.test", 1, true))

    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:loop%.test[^\n]*instruction budget exceeded", 1))
    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:bomb%.test[^\n]*out of memory", 1))
    assert.is_truthy(d:wait_log("event=hook_error[^\n]*policy=domain:broken%.test[^\n]*broken%.test%.lua:3:", 1))
    assert.is_truthy(d:wait_log("event=beta_rule[^\n]*rcpt=y@beta%.test", 1))
  end)

  it("indimaild -t names a broken domain file with its line", function()
    local dir = D.scratch_dir("domains")
    write_rules(dir, { ["alpha.test"] = ALPHA, ["broken.test"] = BROKEN })
    local cfg = D.scratch_dir("domcfg") .. "/indimail.lua"
    D.writefile(cfg, ([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } },
  domain_rules = %q }
]]):format(dir))
    local out, code = D.sh(D.bin .. "/indimaild -t -c " .. cfg)
    assert.equal(1, code, out)
    assert.matches("broken.test.lua:3:", out, 1, true)
  end)

  it("SIGHUP: a fixed file heals its domain; a newly broken file keeps the running version", function()
    local dir = D.scratch_dir("domains")
    write_rules(dir, { ["alpha.test"] = ALPHA, ["broken.test"] = BROKEN })
    local d = start(dir)
    local c = d:session()
    c:cmd("MAIL FROM:<a@sender.test>")
    assert.equal(451, (rcpt(c, "x@broken.test")))

    write_rules(dir, { ["broken.test"] = "return { rcpt = function() end }\n",
      ["alpha.test"] = "return { rcpt = function( end }\n" })
    local from = #d:log()
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("smtp%[%d+%][^\n]*event=reloaded", 5, from))
    assert.is_truthy(d:wait_log("event=domain_rules_kept[^\n]*domain=alpha%.test", 1, from))
    local c2 = d:session()
    c2:cmd("MAIL FROM:<a@sender.test>")
    assert.equal(250, (rcpt(c2, "x@broken.test")), "the fixed file heals broken.test")
    assert.equal(550, (rcpt(c2, "spam-2@alpha.test")), "alpha's running rules stay")
    assert.equal(250, (rcpt(c2, "ok@alpha.test")))
  end)

  it("runs the docs' hosting example: a retired address refused, the message hook tags the mail", function()
    local dir = D.scratch_dir("domains")
    write_rules(dir, { ["shop.example"] = [[
local match = require("match")
local retired = match.from("wildmat", { "sales-*@shop.example" })
return {
  rcpt = function(session, tx, rcpt)
    if rcpt:match("@shop%.example$") and retired:match(rcpt) then
      return indimail.reject("This address was retired", 550, "5.1.1")
    end
  end,
  message = function(session, tx, msg) tx.env.SHOP = "1" end,
}
]] })
    local d = start(dir)
    local c = d:session()
    c:cmd("MAIL FROM:<a@sender.test>")
    assert.equal(550, (rcpt(c, "sales-eu@shop.example")))
    assert.equal(250, (rcpt(c, "info@shop.example")))
    assert.equal(354, (c:cmd("DATA")))
    c:send(MSG .. ".\r\n")
    local code, text = c:reply()
    assert.equal(250, code, text)
    assert.matches("\nenv SHOP=1\n", d:queued(text:match("queued as (%w+)")), 1, true)
  end)
end)

describe("policy_path and broken policies at reload", function()
  after_each(cleanup.run)

  local SITE = [[
-- a site policy overriding nothing shipped: rejects one recipient
return { rcpt = function(session, tx, rcpt)
  if rcpt == "site@example.test" then return indimail.reject("site policy", 550, "5.7.1") end
end }
]]

  it("finds a site policy first, logs its file, and keeps it when a reload finds it broken", function()
    local pdir = D.scratch_dir("policies")
    D.writefile(pdir .. "/sitepol.lua", SITE)
    local d = D.start_for_test{
      config_extra = ("policy_path = { %q },"):format(pdir),
      policies = 'indimail.policy("sitepol")\n',
    }
    assert.is_truthy(d:wait_log("event=policy_file policy=sitepol file=" .. pdir:gsub("%p", "%%%0") .. "/sitepol%.lua", 1))
    local c = d:session()
    c:cmd("MAIL FROM:<a@example.test>")
    assert.equal(550, (rcpt(c, "site@example.test")))

    D.writefile(pdir .. "/sitepol.lua", "return { rcpt = function( }\n")
    local from = #d:log()
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("event=reload_failed[^\n]*sitepol%.lua:1:", 5, from),
      "the refusal names the policy file and line")
    t.sleep(0.3)
    local c2 = d:session()
    c2:cmd("MAIL FROM:<a@example.test>")
    assert.equal(550, (rcpt(c2, "site@example.test")), "the running policy stays")
    assert.equal(250, (rcpt(c2, "other@example.test")))
  end)
end)

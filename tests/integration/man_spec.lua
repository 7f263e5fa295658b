-- The manual pages of man/: each renders with man(1) (groff, every warning
-- on) and passes `mandoc -T lint` without a warning; and each is complete
-- against the code, so a new command, option, configuration key or policy
-- without its documentation fails here: every command and option of
-- bin/indimail's usage and of src/cli/admin*.c in indimail(8), every option
-- of src/daemon/main.c in indimaild(8) and of src/cli/sendmail.c in
-- sendmail(1), every key list checked by cfg_check_keys in
-- src/lua/lua_config*.c in indimail.lua(5), every lua/policies/*.lua (and
-- its literal settings table) in indimail-policies(7).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")

local PAGES = { "indimaild.8", "indimail.8", "indimail.lua.5", "sendmail.1", "indimail-policies.7" }
local MIN_RENDERED = 2000	-- bytes: a page that renders to less lost its body
local MIN_KEY_LISTS = 20	-- key lists in src/lua/lua_config*.c today

-- Runs cmd; returns its stdout, its stderr and its exit code.
local function run(cmd)
  local err = os.tmpname()
  local p = io.popen(cmd .. " 2>" .. err)
  local out = p:read("a")
  local ok, _, code = p:close()
  local e = D.readfile(err) or ""
  os.remove(err)
  return out, e, ok and 0 or code
end

local function page(name)
  return assert(D.readfile("man/" .. name), "man/" .. name .. " is missing")
end

local function lines(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do t[#t + 1] = l end
  return t
end

-- The first argument of each `.It Ic NAME` / `.It Cm NAME` line of text,
-- and every word after Ic on those lines (`.It Ic fail , permerror`).
local function items(text, macro)
  local first, words = {}, {}
  for _, l in ipairs(lines(text)) do
    local rest = l:match("^%.It " .. macro .. " (.*)$")
    if rest then
      first[#first + 1] = rest:match("^(%S+)")
      for w in rest:gmatch("[%w_]+") do words[w] = true end
    end
  end
  return first, words
end

-- Is word a whole word on one of the macro lines (".Xx ...") of text?
local function on_macro_line(text, word, prefix)
  local pat = "%f[%w%-]" .. (prefix or "") .. word:gsub("%p", "%%%0") .. "%f[^%w%-]"
  for _, l in ipairs(lines(text)) do
    if l:sub(1, 1) == "." and l:find(pat) then return true end
  end
  return false
end

local function missing_report(what, list)
  return #list == 0 or error(what .. ": " .. table.concat(list, ", "), 2)
end

describe("man pages", function()
  for _, name in ipairs(PAGES) do
    describe(name, function()
      it("renders with man -l, every groff warning on, with nothing on stderr", function()
        local out, err, code = run("MANWIDTH=80 man --warnings=w -E UTF-8 -l man/" .. name)
        assert.equal(0, code, err)
        assert.equal("", err)
        assert.is_true(#out > MIN_RENDERED, out)
        assert.matches("NAME", out, 1, true)
        assert.matches(name:match("^(.-)%.%d$"), out, 1, true)
      end)

      it("passes mandoc -T lint with no warning or error", function()
        local out, err, code = run("mandoc -T lint -W warning man/" .. name)
        assert.equal("", out .. err)
        assert.equal(0, code)
      end)
    end)
  end
end)

describe("indimaild(8)", function()
  it("documents every option of indimaild's getopt string", function()
    local src = assert(D.readfile("src/daemon/main.c"))
    local opts = assert(src:match('getopt%(argc, argv, "([^"]+)"%)'))
    local text, missing = page("indimaild.8"), {}
    for letter in opts:gmatch("%a") do
      if not text:find("\n%.It Fl " .. letter .. "[ \n]") then missing[#missing + 1] = "-" .. letter end
    end
    missing_report("options without an .It Fl item", missing)
  end)
end)

describe("indimail(8)", function()
  local text = page("indimail.8")

  it("names every command and option of bin/indimail's usage", function()
    local _, usage = run(D.bin .. "/indimail -h")
    assert.matches("usage: indimail", usage, 1, true)
    local missing, seen = {}, 0
    for _, l in ipairs(lines(usage)) do
      local rest = l:match("^usage: indimail (.*)$") or l:match("^%s+indimail (.*)$")
      if rest then
        rest = rest:gsub("^%[%-c config%.lua%] ", "")
        for token in rest:gmatch("%S+") do
          if not token:match("^[%l|]+$") then break end	-- commands end at an argument
          for word in token:gmatch("[%l]+") do
            seen = seen + 1
            if not on_macro_line(text, word) then missing[#missing + 1] = word end
          end
        end
      end
      for opt in l:gmatch("%-%-([%l][%l%-]*)") do
        if not on_macro_line(text, opt, "Fl Fl ") then missing[#missing + 1] = "--" .. opt end
      end
    end
    assert.is_true(seen > 10, usage)
    missing_report("in the usage, not in indimail.8", missing)
  end)

  it("has an item for every verb of the directory commands (src/cli/admin*.c)", function()
    local groups = {}		-- function → command, from admin.c's table
    for g, fn in D.readfile("src/cli/admin.c"):gmatch('{ "(%l+)", (admin_[%l_]+) }') do groups[fn] = g end
    local pairs_found, missing = 0, {}
    for file in D.sh("ls src/cli/admin*.c"):gmatch("%S+") do
      local current
      for _, l in ipairs(lines(D.readfile(file))) do
        current = l:match("^(admin_[%l_]+)%(") or current
        for verb in l:gmatch('strcmp%(verb, "(%l+)"%)') do
          local g = groups[current]
          if g then
            pairs_found = pairs_found + 1
            local ok = false
            for _, it in ipairs(lines(text)) do
              ok = ok or (it:find("^%.It Cm " .. g .. " ") and it:find("%f[%w]" .. verb .. "%f[%W]")) ~= nil
            end
            if not ok then missing[#missing + 1] = g .. " " .. verb end
          end
        end
      end
    end
    assert.is_true(pairs_found > 15)
    missing_report("directory commands without an .It Cm item", missing)
  end)

  it("has an item for every vpopmail name and names every option of the directory commands", function()
    local src = D.readfile("src/cli/admin.c")
    local missing = {}
    for name in src:gmatch('{ "(v%l+)", "') do
      if not text:find("\n%.It Cm " .. name .. "[ \n]") then missing[#missing + 1] = name end
    end
    local opts = src:match("\nflag_option%(.-\nparse_options%(")
    for opt in opts:gmatch('{ "([%l][%l%-]*)", ') do
      if not on_macro_line(text, opt, "Fl Fl ") then missing[#missing + 1] = "--" .. opt end
    end
    local global = D.readfile("src/cli/indimail.c"):gmatch('{ "([%l][%l%-]*)", %l+_argument')
    for opt in global do
      if not on_macro_line(text, opt, "Fl Fl ") then missing[#missing + 1] = "--" .. opt end
    end
    for opt in src:match("\nparse_options%(.-\n}"):gmatch('"%-%-([%l][%l%-]+)"') do
      if not on_macro_line(text, opt, "Fl Fl ") then missing[#missing + 1] = "--" .. opt end
    end
    missing_report("not in indimail.8", missing)
  end)
end)

describe("sendmail(1)", function()
  it("documents every option src/cli/sendmail.c accepts", function()
    local src = D.readfile("src/cli/sendmail.c")
    local parser = assert(src:match("\nopt_mode%(.-\nparse_args%("))
    local opts = {}
    for letter in assert(parser:match('strchr%("(%a+)", a%[1%]%)')):gmatch("%a") do opts[#opts + 1] = letter end
    for o in parser:gmatch('"%-(%a+)"') do opts[#opts + 1] = o end
    local text, missing = page("sendmail.1"), {}
    for _, o in ipairs(opts) do
      if not on_macro_line(text, o, "Fl ") then missing[#missing + 1] = "-" .. o end
    end
    assert.is_true(#opts > 20)
    missing_report("options not in sendmail.1", missing)
  end)
end)

-- Every `static const char *NAME[] = { "k", ..., NULL }` of the
-- configuration readers with the section its cfg_check_keys call names:
-- { section = "dns" | "config" | false (a variable), keys = {...} }.
local function key_lists()
  local lists = {}
  for file in D.sh("ls src/lua/lua_config*.c"):gmatch("%S+") do
    local src = D.readfile(file)
    for pos, name, body in src:gmatch("()static const char%s*%*%s*[%w_ ]-([%w_]+)%[%]%s*=%s*(%b{})") do
      local keys = {}
      for k in body:gmatch('"([^"]+)"') do keys[#keys + 1] = k end
      local section = src:match("cfg_check_keys%(L,%s*[^,]-,%s*([^,]-),%s*" .. name .. "%s*%)", pos)
      assert(section, file .. ": no cfg_check_keys call for the key list " .. name)
      lists[#lists + 1] = { file = file, section = section:match('^"(.*)"$') or false, keys = keys }
    end
  end
  return lists
end

-- Is full a run of whole dotted components of name (at its start if anchored)?
local function names_key(name, full, anchored)
  local at = ("." .. name .. "."):find("." .. full .. ".", 1, true)
  return at ~= nil and (not anchored or at == 1)
end

describe("indimail.lua(5)", function()
  it("has an item for every key of every cfg_check_keys list of src/lua/lua_config*.c", function()
    local documented = items(page("indimail.lua.5"), "Ic")
    local lists, missing = key_lists(), {}
    assert.is_true(#lists >= MIN_KEY_LISTS, #lists .. " key lists found")
    for _, l in ipairs(lists) do
      for _, k in ipairs(l.keys) do
        local full = (l.section and l.section ~= "config") and (l.section .. "." .. k) or k
        local ok = false
        for _, n in ipairs(documented) do ok = ok or names_key(n, full, l.section == "config") end
        if not ok then missing[#missing + 1] = full .. " (" .. l.file .. ")" end
      end
    end
    missing_report("keys without an .It Ic item", missing)
  end)
end)

describe("indimail-policies(7)", function()
  local text = page("indimail-policies.7")

  -- The text of the .Ss NAME section, up to the next .Ss or .Sh.
  local function section(name)
    local at = text:find("\n%.Ss " .. name .. "\n")
    if not at then return nil end
    local rest = text:sub(at + 1)
    local stop = rest:find("\n%.S[sh] ", 2)
    return stop and rest:sub(1, stop) or rest
  end

  it("has a section for every lua/policies/*.lua with every setting of its literal settings table", function()
    local missing, n = {}, 0
    for file in D.sh("ls lua/policies/*.lua"):gmatch("%S+") do
      local name = file:match("([%w_]+)%.lua$")
      local body = section(name)
      n = n + 1
      if not body then
        missing[#missing + 1] = name
      else
        local _, words = items(body, "Ic")
        local known = D.readfile(file):match("\nlocal KNOWN = (%b{})") or
          D.readfile(file):match("\nlocal SETTINGS = (%b{})") or ""
        for k in known:gmatch("([%w_]+) = true") do
          if not words[k] then missing[#missing + 1] = name .. "." .. k end
        end
      end
    end
    assert.is_true(n > 20)
    missing_report("policies or settings not in indimail-policies.7", missing)
  end)
end)

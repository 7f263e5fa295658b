-- `indimail config check|dump|diff|keys`: check says what `indimaild -t`
-- says (one function behind both), dump prints every setting of the
-- effective configuration as Lua with its defaults marked, diff only what
-- differs from them, --defaults the built-in values, --json the same as one
-- JSON object; secrets never show; every key the reader accepts has a line
-- in the dump table.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local json = require("dkjson")

local MINIMAL = 'indimail.config { hostname = "x", listen = { { port = 2525 } }, lua_dir = "lua" }\n'

-- Writes text as DIR/indimail.lua (readable by the account) and returns it.
local function config_file(text)
  local dir = D.scratch_dir("ct")
  local file = dir .. "/indimail.lua"
  D.writefile(file, text)
  D.sh("chmod 644 " .. file)
  return file, dir
end

local function indimail(args)
  return D.sh(D.bin .. "/indimail " .. args)
end

-- The text after "indimaild: " or "indimail: " (the program's name).
local function unprefixed(out)
  return (out:gsub("^indimaild?: ", ""))
end

-- "key = value" lines of a dump as { key = { value = "...", default = bool } }.
local function parse_dump(out)
  local t = {}
  for line in out:gmatch("[^\n]+") do
    local k, v = line:match("^(%S+) = (.*)$")
    assert.is_truthy(k, "not a setting line: " .. line)
    local value = v:match("^(.-)  # default$")
    t[k] = { value = value or v, default = value ~= nil }
  end
  return t
end

describe("indimail config", function()
  after_each(cleanup.run)

  describe("check", function()
    it("agrees with indimaild -t on a good configuration (exit 0)", function()
      local file = config_file('indimail.config { hostname = "x", listen = { { port = 0 } }, lua_dir = "lua" }\n')
      local daemon, dcode = D.sh(D.bin .. "/indimaild -t -c " .. file)
      local out, code = indimail("-c " .. file .. " config check")
      assert.equal(0, dcode, daemon)
      assert.equal(0, code, out)
      assert.equal(unprefixed(daemon), unprefixed(out))
      assert.matches(file .. ": configuration OK (1 listeners)", out, 1, true)
    end)

    it("agrees with indimaild -t on a broken one: every problem at its line, exit 1", function()
      local file = config_file('indimail.config { hostname = "x", listen = { { port = 0 }, { port = 0, name = "smtp" }, '
        .. '{ port = 0, name = "smtp" } }, lua_dir = "lua" }\n'
        .. 'indimail.hook("rctp", function() end)\n'
        .. 'indimail.hook("mial", function() end)\n')
      local daemon, dcode = D.sh(D.bin .. "/indimaild -t -c " .. file)
      local out, code = indimail("-c " .. file .. " config check")
      assert.equal(1, dcode, daemon)
      assert.equal(1, code, out)
      assert.equal(unprefixed(daemon), unprefixed(out))
      assert.matches(file .. ":2: unknown hook stage 'rctp'", out, 1, true)
      assert.matches(file .. ":3: unknown hook stage 'mial'", out, 1, true)
      assert.matches("\n5 problems\n$", out)
    end)
  end)

  describe("dump", function()
    it("shows etc/indimail.lua's values unmarked and the defaults marked, in seconds where the file says seconds", function()
      local out, code = indimail("-c etc/indimail.lua config dump")
      assert.equal(0, code, out)
      local t = parse_dump(out)
      assert.same({ value = '"mx.example.test"', default = false }, t.hostname)
      assert.same({ value = "2525", default = false }, t["listen[1].port"])
      assert.same({ value = '"submission"', default = false }, t["listen[2].name"])
      assert.same({ value = "2", default = false }, t["queue.count"])
      assert.same({ value = "26214400", default = true }, t["limits.message_size"])
      assert.same({ value = "30", default = true }, t["delivery.timeouts.connect"])
      assert.same({ value = "5", default = true }, t["dns.timeout"])
      assert.same({ value = '"opportunistic"', default = true }, t["delivery.tls"])
      assert.same({ value = "{}", default = true }, t.routes)
      assert.same({ value = '{ "127.0.0.0/8", "::1/128" }', default = false }, t.relay_from)
      assert.matches('"relay"', t["hooks.rcpt"].value, 1, true)
      assert.is_false(t["hooks.rcpt"].default)
    end)

    it("keeps to the KEYs and prefixes asked for", function()
      local out, code = indimail("-c etc/indimail.lua config dump timeouts listen[2] hostname")
      assert.equal(0, code, out)
      local t, n = parse_dump(out), 0
      for k in pairs(t) do
        n = n + 1
        assert.is_truthy(k == "hostname" or k:match("^timeouts%.") or k:match("^listen%[2%]%."), k)
      end
      assert.same({ value = "300", default = true }, t["timeouts.command"])
      assert.same({ value = "5870", default = false }, t["listen[2].port"])
      assert.is_true(n > 10)
    end)

    it("refuses an unknown KEY with exit 2 and says which", function()
      local out, code = indimail("-c etc/indimail.lua config dump limits.mesage_size")
      assert.equal(2, code, out)
      assert.matches("unknown key 'limits.mesage_size'", out, 1, true)
    end)

    it("--defaults prints the built-in values, unmarked", function()
      local out, code = indimail("config dump --defaults")
      assert.equal(0, code, out)
      local t = parse_dump(out)
      assert.same({ value = "26214400", default = false }, t["limits.message_size"])
      assert.same({ value = "300", default = false }, t["timeouts.command"])
      assert.same({ value = '"info"', default = false }, t["log.level"])
      assert.same({ value = "{}", default = false }, t.listen)
      assert.same({ value = "{}", default = false }, t["hooks.rcpt"])
    end)

    it("--json is one JSON object of every setting with its value and whether it is the default", function()
      local out, code = indimail("-c etc/indimail.lua config dump --json")
      assert.equal(0, code, out)
      local t = assert(json.decode(out))
      assert.same({ value = 2525, default = false }, t["listen[1].port"])
      assert.same({ value = 26214400, default = true }, t["limits.message_size"])
      assert.same({ value = { "example.test", "localhost" }, default = false }, t.local_domains)
      local py = D.sh(D.bin .. "/indimail -c etc/indimail.lua config dump --json | python3 -c "
        .. "'import json,sys; print(json.load(sys.stdin)[\"hostname\"][\"value\"])'")
      assert.equal("mx.example.test\n", py)
    end)

    it("never prints a secret: passwords and the DKIM key show as <hidden> or their file", function()
      local dir = D.scratch_dir("cts")
      D.sh(D.bin .. "/indimail dkim keygen x.example --selector s1 --algorithm ed25519 --dir " .. dir)
      D.writefile(dir .. "/db.pw", "dbsecret-42\n")
      D.sh("chmod 600 " .. dir .. "/db.pw")
      local hash = D.sh("openssl passwd -6 -salt abcdefgh userpw"):gsub("%s+$", "")
      local file = config_file(([[
indimail.config { hostname = "x", listen = { { port = 2525 } }, lua_dir = "lua",
  directory = { password_file = "%s/db.pw" },
  dkim = { keys = { ["x.example"] = { selector = "s1", key_file = "%s/x.example.s1.key", algorithm = "ed25519-sha256" } } },
  mailboxes = { users = { { address = "u@x.example", password = "%s" } } },
  routes = { ["y.example"] = { host = "relay.y.example", auth_user = "me", auth_password = "routesecret-7" } },
}
]]):format(dir, dir, hash))
      for _, args in ipairs({ "config dump", "config dump --json", "config diff" }) do
        local out, code = indimail("-c " .. file .. " " .. args)
        assert.equal(0, code, out)
        assert.not_matches("dbsecret", out, 1, true)
        assert.not_matches("routesecret", out, 1, true)
        assert.not_matches("PRIVATE KEY", out, 1, true)
        assert.not_matches(hash, out, 1, true)
      end
      local t = parse_dump(indimail("-c " .. file .. " config dump"))
      assert.same({ value = "<hidden>", default = false }, t['routes["y.example"].auth_password'])
      assert.same({ value = "<hidden>", default = false }, t["mailboxes.users[1].password"])
      assert.same({ value = '"verify"', default = true }, t['routes["y.example"].tls'])
      assert.equal('"' .. dir .. '/db.pw"', t["directory.password_file"].value)
      assert.equal('"' .. dir .. '/x.example.s1.key"', t['dkim.keys["x.example"].key_file'].value)
    end)
  end)

  describe("diff", function()
    it("lists only what a minimal configuration set", function()
      local file = config_file(MINIMAL)
      local out, code = indimail("-c " .. file .. " config diff")
      assert.equal(0, code, out)
      assert.equal('hostname = "x"\nlua_dir = "lua"\nlisten[1].port = 2525\n', out)
    end)

    it("shows a changed time in the file's seconds", function()
      local file = config_file('indimail.config { hostname = "x", listen = { { port = 2525 } }, lua_dir = "lua",\n'
        .. '  timeouts = { command = 60.5 }, delivery = { retry = { base = 120 } } }\n')
      local out, code = indimail("-c " .. file .. " config diff timeouts delivery")
      assert.equal(0, code, out)
      assert.equal("timeouts.command = 60.5\ndelivery.retry.base = 120\n", out)
    end)
  end)

  describe("keys", function()
    -- Each `static const char *NAME[] = { ... }` of the reader with the
    -- section its cfg_check_keys names: every key has a dump line.
    -- The text of `static const char IDENT[] = "..."` last written before at.
    local function constant(src, ident, at)
      local value
      for pos, v in src:gmatch("()static const char " .. ident .. '%[%]%s*=%s*"(.-)"') do
        if pos < at then value = v end
      end
      return value
    end

    local function reader_keys()
      local found = {}
      for file in D.sh("ls src/lua/lua_config*.c"):gmatch("%S+") do
        local src = D.readfile(file)
        for name, body, at in src:gmatch("const char %*(%w+)%[%]%s*=%s*(%b{})()") do
          local section = src:match("cfg_check_keys%(L,%s*[^,]+,%s*([^,]+),%s*" .. name .. "%)", at)
          if section then
            local literal = section:match('^"(.*)"$')
              or constant(src, section, at)
            for key in body:gmatch('"([^"]+)"') do
              found[#found + 1] = { file = file, section = literal, key = key }
            end
          end
        end
      end
      return found
    end

    it("has a dump line for every key the reader accepts", function()
      local out, code = indimail("config keys")
      assert.equal(0, code, out)
      local patterns = {}
      for p in out:gmatch("[^\n]+") do patterns[#patterns + 1] = p end
      local function covered(section, key)
        local want = (section == nil or section == "config") and key or (section .. "." .. key)
        want = want:gsub("%[[^%]]*%]", "[]")
        local esc = want:gsub("%p", "%%%0")
        for _, p in ipairs(patterns) do
          -- the section may sit under another (delivery.timeouts, routes[].retry)
          if (("." .. p .. "."):find("[%.%]]" .. esc .. "[%.%[]")) then return true end
        end
        return false
      end
      local keys = reader_keys()
      assert.is_true(#keys > 100, #keys)
      for _, k in ipairs(keys) do
        assert.is_true(covered(k.section, k.key),
          ("%s: %s.%s has no line in src/cli/config_keys.c"):format(k.file, k.section or "?", k.key))
      end
    end)
  end)
end)

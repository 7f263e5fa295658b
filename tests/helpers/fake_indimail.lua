-- A stand-in for the indimail API of a hook, for unit specs of policies
-- under plain lua5.4 (no daemon): counters with windows on a clock the
-- spec moves (F.now), holds, logs collected in F.logs, and the verdict
-- constructors returning plain tables. F.install() sets _G.indimail.
local F = {}

-- indimail.authres is the daemon's own binding (src/lua/lua_authres.c),
-- built into build/indimail_test.so as authres_parse: no fake to drift.
if not package.cpath:find("build/?.so", 1, true) then
  package.cpath = "build/?.so;" .. package.cpath
end
local authres_parse = require("indimail_test").authres_parse

function F.new()
  local I = { logs = {}, now = 1000, slots = {} }
  local function live(k)
    local s = I.slots[k]
    if s and s.ends <= I.now then I.slots[k] = nil; s = nil end
    return s
  end
  I.counter = {
    add = function(k, w, d)
      local s = live(k)
      if not s then s = { n = 0, ends = I.now + w }; I.slots[k] = s end
      s.n = s.n + (d or 1)
      return s.n
    end,
    get = function(k) local s = live(k); return s and s.n or 0 end,
  }
  I.log = function(event, f)
    local t = { event = event }
    for k, v in pairs(f) do t[k] = v end
    I.logs[#I.logs + 1] = t
  end
  local function verdict(action)
    return function(text, code, status)
      return { action = action, text = text, code = code, status = status }
    end
  end
  I.reject, I.tempfail = verdict("reject"), verdict("tempfail")
  I.authres = { parse = authres_parse }
  I.discard = function() return { action = "discard" } end
  I.accept = function() return { action = "accept" } end
  I.quarantine = function(a, r) return { action = "quarantine", address = a, reason = r } end
  I.route_relay = function(h, p) return { action = "route", host = h, port = p } end
  -- indimail.dns (A records): I.zone[name] = { "127.0.0.2" } or "tempfail";
  -- a name not there is NXDOMAIN. I.queries: the names asked, in order.
  I.zone, I.queries = {}, {}
  local function answer(name)
    I.queries[#I.queries + 1] = name
    local z = I.zone[name]
    if z == "tempfail" then return nil, "tempfail: Timeout while contacting DNS servers" end
    if z then return z, "ok" end
    return {}, "nxdomain"
  end
  I.dns = {
    lookup = answer,
    lookup_all = function(names)
      local out = {}
      for i, n in ipairs(names) do
        local a, st = answer(n)
        out[i] = { answers = a, status = st }
      end
      return out
    end,
  }
  return I
end

-- A fresh fake as _G.indimail, lua/stdlib on package.path; returns it.
function F.install()
  if not package.path:find("lua/stdlib/", 1, true) then
    package.path = "lua/stdlib/?.lua;" .. package.path
  end
  _G.indimail = F.new()
  return _G.indimail
end

-- The policy file's module with setup(settings) run: hooks, fake, module.
function F.policy(name, settings)
  local I = F.install()
  local P = dofile("lua/policies/" .. name .. ".lua")
  return P.setup(settings), I, P
end

-- A message object: headers as { {name, value}, ... }, size in bytes.
function F.msg(headers, size)
  local m = {}
  function m.header(_, name)
    for _, h in ipairs(headers) do
      if h[1]:lower() == name:lower() then return h[2] end
    end
  end
  function m.headers()
    local out = {}
    for _, h in ipairs(headers) do out[#out + 1] = { name = h[1], value = h[2] } end
    return out
  end
  function m.size() return size or 100 end
  -- msg:remove_header(name): every field of that name (any case) out of
  -- headers; the count; m.removed lists the calls.
  m.removed = {}
  function m.remove_header(_, name)
    local n = 0
    for i = #headers, 1, -1 do
      if headers[i][1]:lower() == name:lower() then table.remove(headers, i); n = n + 1 end
    end
    m.removed[#m.removed + 1] = { name = name, count = n }
    return n
  end
  return m
end

return F

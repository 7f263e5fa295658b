-- envrules: IndiMail's from.envrules / rcpt.envrules. Each line is
--   pattern:VAR=value,VAR2=value,VAR3=
-- (a wildmat on the envelope sender, or on a recipient; `VAR=` unsets;
-- the first matching line of a file applies). The variables go into
-- tx.env (the queued envelope, the route hook, delivery) and
-- tx.notes.envrules for later stages. This policy honours DATABYTES
-- (552 5.3.4 over it), ROUTE (host[:port]: its route hook relays there,
-- with the setting route_timeouts = { connect=, greeting=, command=, data= });
-- lua/policies/sender_domain.lua honours NODNSCHECK. RELAYCLIENT on a
-- sender rule grants relaying for the transaction (tx.relay = true; on a
-- recipient rule it is refused at load: the core answers relaying before
-- the rcpt hook). QUEUEDIR and the rest are only carried
-- (docs/policies/envrules.md).
--
-- Example:
--   indimail.policy("envrules", { from = "etc/from.envrules", rcpt = "etc/rcpt.envrules" })
--   -- or lists of lines: { from = { "*@partner.example:NODNSCHECK=1,DATABYTES=1000000" } }
-- Register it before sender_domain so its MAIL hook sets NODNSCHECK first.
local match = require("match")

local P = {}
local rules
local route_opts     -- the relay options of ROUTE= (route_timeouts)

local function bad(where, why) error(("envrules: %s: %s"):format(where, why), 0) end

-- One line into { pattern=, matches = compiled pattern, vars = { {name, value or false}, ... } }.
function P.parse_line(line, where)
  local pat, rest = line:match("^([^:]*):(.*)$")
  if not pat or pat == "" then bad(where, "a line is pattern:VAR=value,...") end
  local vars = {}
  for item in rest:gmatch("[^,]+") do
    local name, value = item:match("^%s*([%w_]+)=(.*)$")
    if not name then bad(where, ("bad variable '%s' (VAR=value)"):format(item)) end
    vars[#vars + 1] = { name, value ~= "" and value }
  end
  local ok, matches = pcall(match.wildmat_compile, pat, where)
  if not ok then error("envrules: " .. matches, 0) end
  return { pattern = pat, matches = matches, vars = vars }
end

local function add(list, line, where)
  line = line:match("^%s*(.-)%s*$")
  if line ~= "" and line:byte(1) ~= 35 then list[#list + 1] = P.parse_line(line, where) end
end

-- A file name (read now, at load time) or a list of lines.
local function load(src, name)
  local list = {}
  if src == nil then return list end
  if type(src) == "table" then
    for i, line in ipairs(src) do add(list, line, name .. " entry " .. i) end
    return list
  end
  if type(src) ~= "string" then bad(name, "a file name or a list of lines") end
  local f, err = io.open(src, "r")
  if not f then bad(name, err) end
  local n = 0
  for line in f:lines() do n = n + 1; add(list, line, src .. ":" .. n) end
  f:close()
  return list
end

-- RELAYCLIENT works in sender rules only: the core answers a recipient's
-- relaying before the rcpt hook runs.
local function check_relayclient(list)
  for _, r in ipairs(list) do
    for _, v in ipairs(r.vars) do
      if v[1] == "RELAYCLIENT" then
        bad("rcpt rule " .. r.pattern, "RELAYCLIENT works in sender (from) rules only")
      end
    end
  end
end

-- route_timeouts: the timeouts of every ROUTE= relay, checked now by
-- indimail.route_relay itself.
local function check_route_timeouts(t)
  if t == nil then return nil end
  local ok, err = pcall(indimail.route_relay, "check.invalid", 25, { timeouts = t })
  if not ok then
    error("envrules: route_timeouts: " .. tostring(err):gsub("^indimail%.route_relay: timeouts%.?", ""), 0)
  end
  return { timeouts = t }
end

local SETTINGS = { from = true, rcpt = true, route_timeouts = true }

function P.setup(s)
  s = s or {}
  for k in pairs(s) do
    if not SETTINGS[k] then error(("envrules: unknown setting %s"):format(tostring(k)), 2) end
  end
  local okt, errt = pcall(function() route_opts = check_route_timeouts(s.route_timeouts) end)
  if not okt then error(errt, 2) end
  local ok, err = pcall(function()
    rules = { from = load(s.from, "from"), rcpt = load(s.rcpt, "rcpt") }
    check_relayclient(rules.rcpt)
  end)
  if not ok then error(err, 2) end
  return { mail = P.mail, rcpt = P.rcpt, message = P.message, route = P.route }
end

-- Applies the first rule of list matching subject; returns it.
local function apply(session, tx, list, subject, kind)
  for _, r in ipairs(list) do
    if r.matches(subject) then
      tx.notes.envrules = tx.notes.envrules or {}
      for _, v in ipairs(r.vars) do
        tx.env[v[1]] = v[2] or nil
        tx.notes.envrules[v[1]] = v[2] or nil
      end
      indimail.log("envrules", { kind = kind, subject = subject, pattern = r.pattern, ip = session.ip })
      return r
    end
  end
end

local function too_big(size, limit)
  return indimail.reject(("Message size %d exceeds the limit of %d bytes for this sender")
    :format(size, limit), 552, "5.3.4")
end

local function databytes(tx)
  local n = tonumber(tx.env.DATABYTES)
  return n and n > 0 and n or nil
end

local function grants_relay(rule)
  if not rule then return false end
  for _, v in ipairs(rule.vars) do
    if v[1] == "RELAYCLIENT" then return true end
  end
end

function P.mail(session, tx)
  local rule = apply(session, tx, rules.from, tx.sender:lower(), "from")
  if grants_relay(rule) and not session.auth_user then tx.relay = true end
  local limit = databytes(tx)
  if limit and tx.size_hint and tx.size_hint > limit then return too_big(tx.size_hint, limit) end
end

function P.rcpt(session, tx, rcpt)
  apply(session, tx, rules.rcpt, rcpt:lower(), "rcpt")
end

function P.message(session, tx, msg)
  local limit = databytes(tx)
  if limit and msg:size() > limit then return too_big(msg:size(), limit) end
end

-- Route (queue manager): ROUTE=host or host:port relays there.
function P.route(session, tx, rcpt)
  local route = tx.env and tx.env.ROUTE
  if not route then return end
  local host, port = route:match("^%[?([^%]]-)%]?:(%d+)$")
  return indimail.route_relay(host or route, tonumber(port) or 25, route_opts)
end

return P

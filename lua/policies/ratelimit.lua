-- ratelimit: limits counted across every SMTP worker (indimail.counter):
-- connections per client IP and per subnet (/24 IPv4, /64 IPv6), at once
-- and per interval; messages and recipients per sender, per logged-in user
-- and per client IP per interval. A connection over a limit is answered
-- 421 4.7.0 and closed; a message or recipient 451 4.7.1. Each refusal is
-- logged: event=ratelimit limit_name=... key=... count=... limit=...
-- Tarpitting after N refused recipients is the core's limits.tarpit_after
-- and limits.tarpit_delay (docs/smtp.md), not a setting of this policy.
--
-- Example (docs/policies/ratelimit.md):
--   indimail.policy("ratelimit", {
--     interval = 60,                 -- seconds, for every per-interval limit
--     connections = { concurrent_per_ip = 10, concurrent_per_subnet = 50,
--                     per_ip = 60, per_subnet = 300 },
--     messages = { per_sender = 100, per_user = 200, per_ip = 100 },
--     recipients = { per_sender = 500, per_user = 1000, per_ip = 500,
--                    interval = 3600 },
--   })
-- Every limit is off unless set. A group's interval overrides the top one.
local P = {}
local settings

local GROUPS = {
  connections = { "concurrent_per_ip", "concurrent_per_subnet", "per_ip", "per_subnet" },
  messages = { "per_sender", "per_user", "per_ip" },
  recipients = { "per_sender", "per_user", "per_ip" },
}

local function positive(v, name)
  if math.type(v) ~= "integer" or v < 1 then
    error(("ratelimit: %s must be a positive integer"):format(name), 3)
  end
  return v
end

local function check_group(name, t, interval)
  if type(t) ~= "table" then error(("ratelimit: %s must be a table"):format(name), 3) end
  local allowed, out = { interval = true }, {}
  for _, k in ipairs(GROUPS[name]) do allowed[k] = true end
  for k, v in pairs(t) do
    if not allowed[k] then error(("ratelimit: unknown setting %s.%s"):format(name, tostring(k)), 3) end
    out[k] = positive(v, name .. "." .. k)
  end
  out.interval = out.interval or interval
  return out
end

function P.setup(s)
  s = s or {}
  local interval = s.interval and positive(s.interval, "interval") or 60
  settings = {}
  for k in pairs(s) do
    if k == "tarpit_after" or k == "tarpit_delay" then
      error("ratelimit: tarpitting is limits." .. k .. " in indimail.config{}", 2)
    elseif k ~= "interval" and not GROUPS[k] then
      error(("ratelimit: unknown setting %s"):format(tostring(k)), 2)
    end
  end
  for name in pairs(GROUPS) do settings[name] = check_group(name, s[name] or {}, interval) end
  -- the hook table: the stages only (P also holds helpers such as subnet)
  return { connect = P.connect, mail = P.mail, rcpt = P.rcpt, message = P.message }
end

-- The client's subnet: a.b.c.0/24, or the first 64 bits of an IPv6 address.
function P.subnet(ip)
  local a, b, c = ip:match("^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if not a then a, b, c = ip:match("^::[fF][fF][fF][fF]:(%d+)%.(%d+)%.(%d+)%.%d+$") end
  if a then return ("%s.%s.%s.0/24"):format(a, b, c) end
  local head, tail = ip:match("^([^%%]-)::([^%%]*)$")
  local groups = {}
  local function split(s, into)
    for g in s:gmatch("[^:]+") do into[#into + 1] = g end
  end
  if head then
    local h, t = {}, {}
    split(head, h)
    split(tail, t)
    for _, g in ipairs(h) do groups[#groups + 1] = g end
    for _ = 1, 8 - #h - #t do groups[#groups + 1] = "0" end
    for _, g in ipairs(t) do groups[#groups + 1] = g end
  else
    split(ip, groups)
  end
  if #groups ~= 8 then return ip end
  local net = {}
  for i = 1, 4 do net[i] = ("%x"):format(tonumber(groups[i], 16) or 0) end
  return table.concat(net, ":") .. "::/64"
end

-- Logs a refusal and returns its verdict.
local function refuse(session, what, key, count, limit, text, code, status)
  indimail.log("ratelimit", { limit_name = what, key = key, count = count, limit = limit,
    ip = session.ip, session = session.id })
  return indimail.tempfail(text, code, status)
end

local function has_ip(session)
  return session.ip ~= nil and session.ip ~= ""
end

-- Connect: holds on the client and its subnet, then the per-interval counts.
function P.connect(session)
  local c = settings.connections
  if not has_ip(session) then return end
  local ip, net = session.ip, P.subnet(session.ip)
  local checks = {
    { "concurrent_per_ip", "ip:" .. ip, "concurrent connections from your address" },
    { "concurrent_per_subnet", "net:" .. net, "concurrent connections from your network" },
  }
  for _, k in ipairs(checks) do
    local limit = c[k[1]]
    if limit then
      local key = "ratelimit:" .. k[2]
      local n = indimail.counter.hold(key)
      if n > limit then
        return refuse(session, "connections." .. k[1], key, n, limit,
          ("Too many %s (%d, limit %d), try again later"):format(k[3], n, limit), 421, "4.7.0")
      end
    end
  end
  local rates = {
    { "per_ip", "conn-ip:" .. ip, "connections from your address" },
    { "per_subnet", "conn-net:" .. net, "connections from your network" },
  }
  for _, k in ipairs(rates) do
    local limit = c[k[1]]
    if limit then
      local key = "ratelimit:" .. k[2]
      local n = indimail.counter.add(key, c.interval)
      if n > limit then
        return refuse(session, "connections." .. k[1], key, n, limit,
          ("Too many %s in %d s (limit %d), try again later"):format(k[3], c.interval, limit),
          421, "4.7.0")
      end
    end
  end
end

-- Who a refusal is about: the sender, the user, the client.
local function describe(setting, name)
  if setting == "per_sender" then return "sender <" .. name .. ">" end
  if setting == "per_user" then return "user " .. name end
  return "your address"
end

-- Checks (add = false) or counts (add = true) one unit for one subject:
-- setting's limit on key "ratelimit:GROUP-PREFIXVALUE"; name is who it
-- is about. Runs on every MAIL, RCPT and message: the key is one
-- concatenation, and nothing else is built unless it refuses.
local function over_one(session, group, noun, add, setting, prefix, value, name)
  local g = settings[group]
  local limit = g[setting]
  if not limit then return end
  local key = "ratelimit:" .. group .. "-" .. prefix .. value
  local n = add and indimail.counter.add(key, g.interval) or indimail.counter.get(key, g.interval)
  if (add and n > limit) or (not add and n >= limit) then
    return refuse(session, group .. "." .. setting, key, n, limit,
      ("Too many %s from %s in %d s (limit %d), try again later")
        :format(noun, describe(setting, name), g.interval, limit), 451, "4.7.1")
  end
end

-- Every subject of one message or recipient, in order: its sender, its
-- logged-in user, its client's address.
local function over(session, tx, group, noun, add)
  local sender = tx.sender
  if sender and sender ~= "" then
    sender = sender:lower()
    local v = over_one(session, group, noun, add, "per_sender", "sender:", sender, sender)
    if v then return v end
  end
  local user = session.auth_user
  if user then
    local v = over_one(session, group, noun, add, "per_user", "user:", user:lower(), user)
    if v then return v end
  end
  if has_ip(session) then
    return over_one(session, group, noun, add, "per_ip", "ip:", session.ip)
  end
end

-- MAIL: refuse early when a message limit is already reached (counts nothing).
function P.mail(session, tx)
  return over(session, tx, "messages", "messages", false)
end

-- RCPT: each recipient counts; the one past a limit is refused.
function P.rcpt(session, tx)
  return over(session, tx, "recipients", "recipients", true)
end

-- Message (after the final dot): the message counts, and the one past a
-- limit is refused, so concurrent sessions never let more through.
function P.message(session, tx)
  return over(session, tx, "messages", "messages", true)
end

return P

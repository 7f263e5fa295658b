-- greylist: the first attempt of an unknown (client, sender, recipient)
-- triplet gets 451 4.7.1; a retry after min_delay and before max_delay
-- passes and whitelists the client (or the triplet) for whitelist_time,
-- so its later mail passes at once. State lives in indimail.counter (the
-- master's shared memory): every worker sees it, a SIGHUP keeps it, a
-- restart of the master forgets it. Logged: event=greylist action=...
-- Never greylisted: logged-in users, relay_from clients, the whitelist.
--
-- Example (docs/policies/greylist.md):
--   indimail.policy("greylist", {
--     min_delay = 300, max_delay = 4 * 3600, whitelist_time = 36 * 86400,
--     network = true,            -- the client's /24 or /64, not its address
--     whitelist = "client",      -- or "triplet"
--     skip_clients = { "192.0.2.0/24" }, skip_senders = { "example.org" },
--   })
local match = require("match")
local address = require("address")

local P = {}
local settings

local KNOWN = { min_delay = true, max_delay = true, whitelist_time = true, network = true,
  whitelist = true, skip_clients = true, skip_senders = true }

local function seconds(s, name, default)
  local v = s[name]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 1 or v > 366 * 86400 then
    error(("greylist: %s must be a number of seconds (1 to 366 days)"):format(name), 3)
  end
  return v
end

-- A matcher: a list, a matcher built by lua/stdlib/tables.lua, or nothing.
local function matcher(v, kind, name)
  if v == nil then return match.new(kind) end
  if type(v) == "table" and type(v.match) == "function" then return v end
  if type(v) ~= "table" then error("greylist: " .. name .. " must be a list or a table", 3) end
  return match[kind](v)
end

function P.setup(s)
  s = s or {}
  for k in pairs(s) do
    if not KNOWN[k] then error(("greylist: unknown setting %s"):format(tostring(k)), 2) end
  end
  settings = {
    min_delay = seconds(s, "min_delay", 300),
    max_delay = seconds(s, "max_delay", 4 * 3600),
    whitelist_time = seconds(s, "whitelist_time", 36 * 86400),
    network = s.network == true,
    whitelist = s.whitelist or "client",
    skip_clients = matcher(s.skip_clients, "cidr", "skip_clients"),
    skip_senders = matcher(s.skip_senders, "domain", "skip_senders"),
  }
  if settings.whitelist ~= "client" and settings.whitelist ~= "triplet" then
    error("greylist: whitelist must be \"client\" or \"triplet\"", 2)
  end
  if settings.min_delay >= settings.max_delay then
    error("greylist: min_delay must be shorter than max_delay", 2)
  end
  return { rcpt = P.rcpt }
end

-- The client as greylisted: its address, or its /24 or /64 with network.
function P.client(ip)
  if not settings.network then return ip end
  local a, b, c = ip:match("^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if not a then a, b, c = ip:match("^::[fF][fF][fF][fF]:(%d+)%.(%d+)%.(%d+)%.%d+$") end
  if a then return ("%s.%s.%s.0/24"):format(a, b, c) end
  local hex = match.ip(ip)
  if not hex then return ip end
  return hex:sub(1, 16) .. "/64"
end

local function skipped(session, tx)
  if session.auth_user or session.relay then return true end
  if session.ip == nil or session.ip == "" then return true end
  if settings.skip_clients:match(session.ip) then return true end
  local domain = address.domain(tx.sender)
  return domain ~= nil and settings.skip_senders:match(domain)
end

local function log(session, action, triplet)
  indimail.log("greylist", { action = action, triplet = triplet, ip = session.ip })
end

-- RCPT: pass, or 451 until the triplet's retry comes in its window.
function P.rcpt(session, tx, rcpt)
  if skipped(session, tx) then return end
  local client = P.client(session.ip)
  local triplet = ("%s/%s/%s"):format(client, (tx.sender or ""):lower(), rcpt:lower())
  local pass_key = "greylist:pass:" .. (settings.whitelist == "client" and client or triplet)
  local c = indimail.counter
  if c.get(pass_key, settings.whitelist_time) > 0 then return end
  local seen_key, wait_key = "greylist:seen:" .. triplet, "greylist:wait:" .. triplet
  if c.get(seen_key, settings.max_delay) == 0 then
    c.add(seen_key, settings.max_delay)
    c.add(wait_key, settings.min_delay)
    log(session, "defer", triplet)
    return indimail.tempfail(("Greylisted: first attempt from your address for this recipient,"
      .. " please retry in %d seconds"):format(settings.min_delay), 451, "4.7.1")
  end
  if c.get(wait_key, settings.min_delay) > 0 then
    log(session, "early", triplet)
    return indimail.tempfail(("Greylisted: retried too early, please retry in %d seconds")
      :format(settings.min_delay), 451, "4.7.1")
  end
  c.add(pass_key, settings.whitelist_time)
  log(session, "pass", triplet)
end

return P

-- routing: decides, per recipient, where the queue manager sends the mail.
-- Per-user routes send each user of a split domain to the host that holds
-- the mailbox (IndiMail's hostcntrl: one domain, users on many hosts, or a
-- foreign server such as Exchange during a migration). Per-domain routes
-- are qmail's smtproutes. Anything not listed takes the default: local
-- domains to local Maildirs, the routes table of the config, else MX.
--
-- Example:
--   indimail.policy("routing", {
--     users   = { ["bob@example.test"] = "192.0.2.7:25" },          -- bob lives on another host
--     domains = { ["partner.example"] = "relay.partner.example:2525",
--                 ["old.example"]     = { host = "10.0.0.9", port = 587,
--                                         auth_user = "u", auth_password = "p" },
--                 ["example.org"]     = "mx",                       -- MX even if a route exists
--                 ["intranet.test"]   = "local" },
--   })
local address = require("address")

local P = {}
local users, domains = {}, {}

local function lower_keys(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k:lower()] = v end
  return out
end

function P.setup(settings)
  users = lower_keys(settings.users)
  domains = lower_keys(settings.domains)
end

-- "local" | "mx" | "host:port" | { host=, port=, ... } -> a route verdict
local function route(target)
  if target == "local" then return indimail.route_local() end
  if target == "mx" then return indimail.route_mx() end
  if type(target) == "table" then
    return indimail.route_relay(target.host, target.port or 25, target)
  end
  local host, port = tostring(target):match("^%[?([^%]]+)%]?:(%d+)$")
  return indimail.route_relay(host or target, tonumber(port) or 25)
end

function P.route(session, tx, rcpt)
  local target = users[rcpt:lower()] or domains[address.domain(rcpt) or ""]
  if target then return route(target) end
end

return P

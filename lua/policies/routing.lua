-- routing: decides, per recipient, where the queue manager sends the mail.
-- Per-user routes send each user of a split domain to the host that holds
-- the mailbox (IndiMail's hostcntrl: one domain, users on many hosts, or a
-- foreign server such as Exchange during a migration). Per-domain routes
-- are qmail's smtproutes. With directory_routes, the directory says which
-- host holds a user (IndiMail's SMTPROUTE: `indimail user move ADDRESS
-- HOST`, `indimail host add HOST ADDRESS --port N`): mail for a user on
-- another host goes to that host's address and SMTP port; users of this
-- host (hostname) stay local. Anything else takes the default: local
-- domains to local Maildirs, the routes table of the config, else MX.
-- Order: users, then the directory, then domains.
--
-- Example:
--   indimail.policy("routing", {
--     users   = { ["bob@example.test"] = "192.0.2.7:25" },          -- bob lives on another host
--     domains = { ["partner.example"] = "relay.partner.example:2525",
--                 ["old.example"]     = { host = "10.0.0.9", port = 587,
--                                         auth_user = "u", auth_password = "p" },
--                 ["example.org"]     = "mx",                       -- MX even if a route exists
--                 ["intranet.test"]   = "local" },
--     directory_routes = true,    -- or { tls = "none" }: options of the relay
--   })
-- A table route (users, domains, directory_routes) may have its own
-- timeouts = { connect=, greeting=, command=, data= } (seconds), as the
-- config's routes; a bad one stops the configuration from loading.
local address = require("address")

local P = {}
local users, domains = {}, {}
local directory_routes     -- nil, or the options of a directory route

local function lower_keys(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k:lower()] = v end
  return out
end

-- A table route's relay options: all but where it goes.
local function relay_opts(target)
  local o = {}
  for k, v in pairs(target) do
    if k ~= "host" and k ~= "port" then o[k] = v end
  end
  return o
end

-- A table route's options (timeouts, TLS, AUTH), checked now by
-- indimail.route_relay itself: an unknown or bad one stops the load.
local function check_opts(where, target)
  if type(target) ~= "table" then return end
  local ok, err = pcall(indimail.route_relay, "check.invalid", 25, relay_opts(target))
  if not ok then
    error(("routing: %s: %s"):format(where, tostring(err):gsub("^indimail%.route_relay: ", "")), 0)
  end
end

local function check_all(kind, t)
  for k, v in pairs(t) do check_opts(("%s[%q]"):format(kind, k), v) end
end

function P.setup(settings)
  users = lower_keys(settings.users)
  domains = lower_keys(settings.domains)
  local dr = settings.directory_routes
  if dr ~= nil and dr ~= false and dr ~= true and type(dr) ~= "table" then
    error("routing: directory_routes must be true, false or a table of relay options", 2)
  end
  directory_routes = dr and (type(dr) == "table" and dr or {}) or nil
  local ok, err = pcall(function()
    check_all("users", users)
    check_all("domains", domains)
    check_opts("directory_routes", directory_routes)
  end)
  if not ok then error(err, 2) end
end

-- "local" | "mx" | "host:port" | { host=, port=, ... } -> a route verdict
local function route(target)
  if target == "local" then return indimail.route_local() end
  if target == "mx" then return indimail.route_mx() end
  if type(target) == "table" then
    return indimail.route_relay(target.host, target.port or 25, relay_opts(target))
  end
  local host, port = tostring(target):match("^%[?([^%]]+)%]?:(%d+)$")
  return indimail.route_relay(host or target, tonumber(port) or 25)
end

-- The host the directory puts rcpt on, if not this one; a directory
-- that cannot answer defers the recipient (never a wrong delivery).
local function directory_route(rcpt)
  local host, err = indimail.directory.host(rcpt)
  if host then
    return indimail.route_relay(host.address, host.port, directory_routes)
  end
  if err then
    return indimail.tempfail("directory unavailable, try again later", 451, "4.3.0")
  end
end

function P.route(session, tx, rcpt)
  local target = users[rcpt:lower()]
  if target then return route(target) end
  if directory_routes then
    local v = directory_route(rcpt)
    if v then return v end
  end
  target = domains[address.domain(rcpt) or ""]
  if target then return route(target) end
end

return P

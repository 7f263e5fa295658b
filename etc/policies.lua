-- etc/policies.lua: the default policy set, the policies a new site turns
-- on (docs/policies/default.md). etc/indimail.lua runs it; `make bench`
-- (scenario 6) measures exactly this file with the shipped etc/control/
-- lists. It returns a function, so a site passes what differs:
--
--   dofile("etc/policies.lua")({
--     domains = { "example.test" },   -- ours: relay_senders, accesslist examples
--     control = "etc/control",        -- folder of the lists below (the default)
--     settings = { ratelimit = {...} },  -- replaces one policy's settings
--   })
--
-- Order matters: badhelo at HELO; at MAIL badmailfrom (a listed sender
-- costs no DNS), envrules (its NODNSCHECK) before sender_domain, relay,
-- ratelimit; at RCPT badrcptto, relay, ratelimit, accesslist.
-- Not in the set: greylist (it defers every first-time sender with 451,
-- a choice a site makes knowingly: docs/policies/greylist.md), and the
-- policies that need a site's own data (hostaccess, routing, quarantine).

-- Per-client and per-sender limits far above a person's or a small
-- server's mail, well below a spam run.
local RATELIMIT = {
  interval = 60,
  connections = { concurrent_per_ip = 20, per_ip = 120 },
  messages = { per_sender = 100, per_user = 200, per_ip = 200 },
  recipients = { per_sender = 1000, per_user = 2000, per_ip = 2000 },
}

-- Each policy's settings, from the lists in folder c.
local function defaults(c, domains)
  local ours = {}
  for i, d in ipairs(domains) do ours[i] = "@" .. d end
  return {
    badhelo = { file = c .. "/badhelo" },
    badmailfrom = { file = c .. "/badmailfrom" },
    envrules = { from = c .. "/from.envrules", rcpt = c .. "/rcpt.envrules" },
    sender_domain = { skip_relay_clients = true },
    -- a relay_from client without a login relays only with our senders
    relay = { rcpthosts = domains, relay_senders = ours },
    ratelimit = RATELIMIT,
    badrcptto = { file = c .. "/badrcptto" },
    accesslist = { file = c .. "/accesslist" },
  }
end

local ORDER = { "badhelo", "badmailfrom", "envrules", "sender_domain", "relay",
  "ratelimit", "badrcptto", "accesslist" }

return function(opts)
  opts = opts or {}
  if type(opts.domains) ~= "table" or opts.domains[1] == nil then
    error("etc/policies.lua: domains = { ... } (our domains) is required", 2)
  end
  local s = defaults(opts.control or "etc/control", opts.domains)
  for name, v in pairs(opts.settings or {}) do
    if s[name] == nil then error("etc/policies.lua: no policy " .. tostring(name) .. " in the set", 2) end
    s[name] = v
  end
  for _, name in ipairs(ORDER) do indimail.policy(name, s[name]) end
end

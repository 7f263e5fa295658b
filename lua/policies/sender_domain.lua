-- sender_domain: reject mail whose envelope sender domain cannot receive
-- replies: the domain does not exist, has no MX/A/AAAA, or publishes a null
-- MX (RFC 7505). A DNS failure is a temporary error, never a rejection.
--
-- Example:
--   indimail.policy("sender_domain", {
--     skip_relay_clients = true,   -- trust relay_from clients (default true)
--     skip_domains = { "example.test" },
--   })
-- tx.env.NODNSCHECK (set by the envrules policy for a sender) skips the check.
local address = require("address")

local P = {}
local settings = {}

function P.setup(s)
  settings = s or {}
  if settings.skip_relay_clients == nil then settings.skip_relay_clients = true end
  settings.skip = {}
  for _, d in ipairs(settings.skip_domains or {}) do settings.skip[d:lower()] = true end
end

local function reject(domain, why)
  return indimail.reject(("Sender address rejected: domain %s %s"):format(domain, why),
    550, "5.1.8")
end

local function tempfail(domain, err)
  return indimail.tempfail(("Sender domain %s: DNS lookup failed (%s), try again later")
    :format(domain, err), 451, "4.4.3")
end

-- Returns a verdict, or nil when the domain has an address record.
local function check_addresses(domain)
  local any_nodata = false
  for _, qtype in ipairs({ "A", "AAAA" }) do
    local answers, status = indimail.dns.lookup(domain, qtype)
    if not answers then return tempfail(domain, status) end
    if #answers > 0 then return nil end
    if status == "nxdomain" then return reject(domain, "does not exist") end
    any_nodata = true
  end
  if any_nodata then return reject(domain, "has no MX, A or AAAA record") end
end

function P.mail(session, tx)
  local domain = address.domain(tx.sender)
  if not domain or address.is_literal(domain) then return end
  if settings.skip_relay_clients and session.relay then return end
  if settings.skip[domain] then return end
  if tx.env and tx.env.NODNSCHECK then return end   -- envrules (docs/policies/envrules.md)
  local mx, status = indimail.dns.lookup(domain, "MX")
  if not mx then return tempfail(domain, status) end
  if status == "nxdomain" then return reject(domain, "does not exist") end
  if #mx == 1 and (mx[1].host == "" or mx[1].host == ".") then
    return indimail.reject(("Sender address rejected: domain %s accepts no mail (null MX)")
      :format(domain), 550, "5.7.27")
  end
  if #mx > 0 then return end
  return check_addresses(domain)
end

return P

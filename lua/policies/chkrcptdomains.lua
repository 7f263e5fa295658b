-- chkrcptdomains: recipient checks for selected domains only (IndiMail's
-- control/chkrcptdomains). For a recipient in one of `domains`, the address
-- must be in `recipients` (exact addresses, @domain catch-alls, wildmats, or
-- regexes), else 550 5.1.1 at RCPT and event=chkrcptdomains. Recipients in
-- other domains are not checked here. Local domains need no list: the RCPT
-- decision already asks the directory (docs/smtp.md); this is for the
-- domains the directory does not know, such as those relayed to an inner
-- server. docs/policies/chkrcptdomains.md.
--
-- Example:
--   indimail.policy("chkrcptdomains", {
--     domains = { file = "etc/control/chkrcptdomains" },    -- example.net, @example.org
--     recipients = { file = "etc/control/recipients", entries = { "@open.example.net" } },
--   })
local addrlist = require("addrlist")
local match = require("match")

local P = {}
local domains, recipients

local LIST_KEYS = { file = true, entries = true, regex = true, flags = true }

function P.setup(s)
  s = s or {}
  addrlist.check_keys("chkrcptdomains", s, { domains = true, recipients = true })
  for _, k in ipairs({ "domains", "recipients" }) do
    if type(s[k]) ~= "table" then error(("chkrcptdomains: %s must be a table"):format(k), 2) end
    if s[k][1] == nil then addrlist.check_keys("chkrcptdomains: " .. k, s[k], LIST_KEYS) end
  end
  domains = addrlist.load(s.domains, { host = true })
  recipients = addrlist.load(s.recipients)
  return { rcpt = P.rcpt }
end

-- RCPT: in a checked domain, an address not listed is refused.
function P.rcpt(session, tx, rcpt)
  if not rcpt:find("@", 1, true) then return end
  local hit = domains:lookup(match.domain_of(rcpt))
  if not hit or recipients:match(rcpt) then return end
  indimail.log("chkrcptdomains", { rcpt = rcpt, rule = hit.text, where = hit.where,
    sender = tx.sender, ip = session.ip })
  return indimail.reject("Recipient address rejected: no such user here (chkrcptdomains)",
    550, "5.1.1")
end

return P

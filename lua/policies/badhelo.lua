-- badhelo: refuse listed HELO/EHLO names with 550 5.7.1 and a log line
-- naming the entry (IndiMail's badhelo; docs/policies/badmailfrom.md).
-- Entries: "host.example" (that name, any case), ".example" (its
-- subdomains), wildmats ("*.dynamic.example", "!ok.dynamic.example"), or
-- with regex = true PCRE2 regexes.
--
-- Example:
--   indimail.policy("badhelo", {
--     file = "etc/control/badhelo",
--     entries = { "localhost", "*.localdomain", "[127.0.0.1]" },
--   })
local addrlist = require("addrlist")

local P = {}
local list

function P.setup(s)
  s = s or {}
  addrlist.check_keys("badhelo", s, { file = true, entries = true, regex = true, flags = true })
  list = addrlist.load(s, { host = true })
  return { helo = P.helo }
end

-- HELO/EHLO: a listed name is refused; the client may greet again.
function P.helo(session, helo)
  local hit = list:lookup(helo)
  if not hit then return end
  indimail.log("badhelo", { helo = helo, rule = hit.text, where = hit.where, ip = session.ip })
  return indimail.reject(("HELO/EHLO name %s refused by policy (badhelo)"):format(helo),
    550, "5.7.1")
end

return P

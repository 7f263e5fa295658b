-- badrcptto: refuse listed envelope recipients at RCPT with 550 5.7.1 and
-- a log line naming the entry (IndiMail's badrcptto, with badrcptpatterns'
-- wildmats and QREGEX's regexes; docs/policies/badmailfrom.md).
--
-- Example:
--   indimail.policy("badrcptto", {
--     file = "etc/control/badrcptto",
--     entries = { "@retired.example.com", "*%*", "*@*@*" },
--   })
local addrlist = require("addrlist")

local P = {}
local list

function P.setup(s)
  s = s or {}
  addrlist.check_keys("badrcptto", s, { file = true, entries = true, regex = true, flags = true })
  list = addrlist.load(s)
  return { rcpt = P.rcpt }
end

-- RCPT: a listed recipient is refused; the others of the message go on.
function P.rcpt(session, tx, rcpt)
  local hit = list:lookup(rcpt)
  if not hit then return end
  indimail.log("badrcptto", { rcpt = rcpt, sender = tx.sender, rule = hit.text,
    where = hit.where, ip = session.ip })
  return indimail.reject(("Recipient address <%s> refused by policy (badrcptto)")
    :format(rcpt), 550, "5.7.1")
end

return P

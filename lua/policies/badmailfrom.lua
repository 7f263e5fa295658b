-- badmailfrom: refuse listed envelope senders at MAIL with 553 5.7.1 and
-- a log line naming the entry (qmail's and IndiMail's badmailfrom, with
-- badmailpatterns' wildmats and QREGEX's regexes; docs/policies/badmailfrom.md).
--
-- Example:
--   indimail.policy("badmailfrom", {
--     file = "etc/control/badmailfrom",     -- or a list of files
--     entries = { "@spam.example", "*@*.bulk.example", "!ok@bulk.example" },
--     regex = false,                        -- true: every entry is a PCRE2 regex
--   })
local addrlist = require("addrlist")

local P = {}
local list

function P.setup(s)
  s = s or {}
  addrlist.check_keys("badmailfrom", s, { file = true, entries = true, regex = true, flags = true })
  list = addrlist.load(s)
  return { mail = P.mail }
end

-- MAIL: a listed sender is refused (never the null sender <>).
function P.mail(session, tx)
  local hit = list:lookup(tx.sender)
  if not hit then return end
  indimail.log("badmailfrom", { sender = tx.sender, rule = hit.text, where = hit.where,
    ip = session.ip })
  return indimail.reject(("Sender address <%s> refused by policy (badmailfrom)")
    :format(tx.sender), 553, "5.7.1")
end

return P

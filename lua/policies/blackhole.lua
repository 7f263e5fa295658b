-- blackhole (IndiMail's NULLQUEUE, blackholedsender/blackholedrcpt): mail
-- from a blackholed sender, or to blackholed recipients only, is answered
-- 250 as usual and dropped with no queue write (indimail.discard at MAIL
-- or RCPT). A discard covers the whole transaction, so once one is
-- blackholing, a recipient that is not blackholed gets 452 4.5.3 and the
-- client sends it again in a new transaction (RFC 5321 4.5.3.1.10); a
-- blackholed recipient after a kept one is accepted and dropped by the
-- route hook before delivery. Logged: event=blackhole ...
--
-- Example (docs/policies/blackhole.md):
--   local tables = require("tables")
--   indimail.policy("blackhole", {
--     senders = { "*@spam.example", "bulk-*@*" },             -- wildmat
--     recipients = tables.control("etc/blackholedrcpt", { match = "wildmat" }),
--   })
local match = require("match")

local P = {}
local settings

local function matcher(v, name)
  if v == nil then return match.new("wildmat") end
  if type(v) == "table" and type(v.match) == "function" then return v end
  if type(v) ~= "table" then error("blackhole: " .. name .. " must be a list or a matcher", 3) end
  return match.wildmat(v)
end

function P.setup(s)
  s = s or {}
  for k in pairs(s) do
    if k ~= "senders" and k ~= "recipients" then
      error(("blackhole: unknown setting %s"):format(tostring(k)), 2)
    end
  end
  settings = { senders = matcher(s.senders, "senders"), recipients = matcher(s.recipients, "recipients") }
  return { mail = P.mail, rcpt = P.rcpt, route = P.route }
end

local function log(session, what, addr)
  indimail.log("blackhole", { what = what, address = addr, ip = session.ip })
end

-- MAIL: a blackholed sender: the whole transaction goes nowhere.
function P.mail(session, tx)
  if tx.sender ~= "" and settings.senders:match(tx.sender) then
    log(session, "sender", tx.sender)
    return indimail.discard()
  end
end

-- RCPT: blackholed recipients first discard the transaction; kept ones
-- after that wait for a transaction of their own.
function P.rcpt(session, tx, rcpt)
  local notes = tx.notes
  if settings.recipients:match(rcpt) then
    log(session, "recipient", rcpt)
    if notes.blackhole_kept then return end          -- dropped at route
    notes.blackholing = true
    return indimail.discard()
  end
  if notes.blackholing then
    log(session, "deferred", rcpt)
    return indimail.tempfail("Too many recipients for this transaction, send this one again",
      452, "4.5.3")
  end
  notes.blackhole_kept = true
end

-- Route (queue manager): a blackholed recipient of a kept message.
function P.route(session, tx, rcpt)
  if settings.recipients:match(rcpt) then
    indimail.log("blackhole", { what = "route", address = rcpt })
    return indimail.discard()
  end
end

return P

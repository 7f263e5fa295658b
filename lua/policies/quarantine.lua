-- quarantine: messages matching a rule go to a quarantine mailbox instead
-- of their recipients (indimail.quarantine: 250, queued for `address`
-- only, the original recipients and the reason in X-Quarantine-* header
-- fields). A rule matches the envelope sender, any recipient, or a header
-- field's value; the first matching rule gives the reason. Runs at the
-- message stage. Logged: event=quarantine_rule ... and the core's
-- event=quarantined qid= address= reason=.
--
-- Example (docs/policies/quarantine.md):
--   indimail.policy("quarantine", {
--     address = "quarantine@example.test",
--     senders = { "*@suspicious.example" },          -- wildmat, or a matcher
--     recipients = { "ceo@example.test" },
--     headers = { Subject = { "*invoice*overdue*" }, ["X-Spam-Flag"] = { "YES" } },
--   })
local match = require("match")

local P = {}
local settings

local function matcher(v, name)
  if type(v) == "table" and type(v.match) == "function" then return v end
  if type(v) ~= "table" then error("quarantine: " .. name .. " must be a list or a matcher", 4) end
  return match.wildmat(v)
end

local KNOWN = { address = true, senders = true, recipients = true, headers = true }

function P.setup(s)
  s = s or {}
  for k in pairs(s) do
    if not KNOWN[k] then error(("quarantine: unknown setting %s"):format(tostring(k)), 2) end
  end
  if type(s.address) ~= "string" or not s.address:find("@") then
    error("quarantine: address must be the quarantine mailbox (an address)", 2)
  end
  settings = { address = s.address, headers = {} }
  if s.senders then settings.senders = matcher(s.senders, "senders") end
  if s.recipients then settings.recipients = matcher(s.recipients, "recipients") end
  for name, list in pairs(s.headers or {}) do
    if type(name) ~= "string" then error("quarantine: headers are keyed by field name", 2) end
    settings.headers[#settings.headers + 1] = { name = name, m = matcher(list, "headers." .. name) }
  end
  table.sort(settings.headers, function(a, b) return a.name < b.name end)
  return { message = P.message }
end

-- The reason of the first rule the message matches, or nil.
function P.reason(tx, msg)
  if settings.senders and tx.sender ~= "" and settings.senders:match(tx.sender) then
    return "sender " .. tx.sender
  end
  if settings.recipients then
    for _, r in ipairs(tx.rcpts) do
      if settings.recipients:match(r) then return "recipient " .. r end
    end
  end
  for _, h in ipairs(settings.headers) do
    local v = msg:header(h.name)
    if v and h.m:match(v) then return "header " .. h.name end
  end
end

function P.message(session, tx, msg)
  local why = P.reason(tx, msg)
  if not why then return end
  indimail.log("quarantine_rule", { reason = why, address = settings.address, ip = session.ip })
  return indimail.quarantine(settings.address, "policy quarantine: " .. why)
end

return P

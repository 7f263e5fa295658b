-- duplicates: one delivery of a Message-ID to a recipient within a window.
-- At the message stage each recipient counts under (Message-ID, recipient)
-- in indimail.counter (shared by every worker). A message whose recipients
-- are all duplicates is discarded (250, nothing queued). When only some
-- are, those are removed with tx:remove_rcpt where the core has it;
-- otherwise they are listed in tx.env.DUPLICATE_RCPTS and this policy's
-- route hook drops them in the queue manager before their delivery.
-- Messages without a Message-ID pass. Logged: event=duplicate ...
--
-- Example (docs/policies/duplicates.md):
--   indimail.policy("duplicates", { window = 86400 })   -- seconds
-- Register it after the other message policies: a count is taken when this
-- hook runs, so a later refusal of the message makes its retry a duplicate.
local P = {}
local settings

function P.setup(s)
  s = s or {}
  for k in pairs(s) do
    if k ~= "window" then error(("duplicates: unknown setting %s"):format(tostring(k)), 2) end
  end
  local w = s.window or 86400
  if math.type(w) ~= "integer" or w < 1 or w > 366 * 86400 then
    error("duplicates: window must be a number of seconds (1 to 366 days)", 2)
  end
  settings = { window = w }
  return { message = P.message, route = P.route }
end

-- The Message-ID as a key: without blanks and control characters, at
-- most 500 bytes (the counters' keys are at most 1000), or nil.
function P.message_id(value)
  if not value then return nil end
  local id = value:gsub("[%c%s]", "")
  if id == "" then return nil end
  return id:sub(1, 500)
end

local function log(session, action, id, rcpt, n)
  indimail.log("duplicate", { action = action, message_id = id, rcpt = rcpt, count = n,
    window = settings.window, ip = session.ip })
end

-- Message: count every recipient; drop the duplicates.
function P.message(session, tx, msg)
  local id = P.message_id(msg:header("Message-ID"))
  if not id then return end
  local dups, kept = {}, 0
  for _, rcpt in ipairs(tx.rcpts) do
    local r = rcpt:lower()
    local n = indimail.counter.add("duplicates:" .. id .. ":" .. r, settings.window)
    if n > 1 then dups[#dups + 1] = { r, n } else kept = kept + 1 end
  end
  if #dups == 0 then return end
  if kept == 0 then
    for _, d in ipairs(dups) do log(session, "discard", id, d[1], d[2]) end
    return indimail.discard()
  end
  local remove, names = tx.remove_rcpt, {}
  for _, d in ipairs(dups) do
    if remove then remove(tx, d[1]) else names[#names + 1] = d[1] end
    log(session, remove and "removed" or "drop_at_route", id, d[1], d[2])
  end
  if #names > 0 then tx.env.DUPLICATE_RCPTS = table.concat(names, " ") end
end

-- Route (queue manager): a recipient listed as a duplicate is dropped.
function P.route(session, tx, rcpt)
  local list = tx.env and tx.env.DUPLICATE_RCPTS
  if not list then return end
  if (" " .. list .. " "):find(" " .. rcpt:lower() .. " ", 1, true) then
    indimail.log("duplicate", { action = "dropped", rcpt = rcpt })
    return indimail.discard()
  end
end

return P

-- removeheaders (IndiMail's REMOVEHEADERS / control/removeheaders): every
-- field of the listed names is removed from the message before the queue
-- write (msg:remove_header at the message stage; the queued file is the
-- edited one). Names are exact and case-insensitive; with wildmat = true
-- they are wildmats of lua/stdlib/match.lua ("X-Spam-*", "!X-Spam-Score":
-- the last matching entry decides). Our own Received line is never touched.
-- Logged when a field was removed: event=removeheaders count= names=.
--
-- Example (docs/policies/removeheaders.md):
--   indimail.policy("removeheaders", { headers = { "X-Originating-IP", "Bcc" } })
--   indimail.policy("removeheaders", { file = "/etc/indimail/control/removeheaders" })
local H = require("headerlist")
local match = require("match")

local P = {}
local settings

function P.setup(s)
  s = s or {}
  local ok, err = pcall(function()
    H.check_keys(s, { headers = true, file = true, wildmat = true }, "removeheaders")
    if s.wildmat ~= nil and type(s.wildmat) ~= "boolean" then
      error("removeheaders: wildmat must be true or false", 0)
    end
    local names = H.load(s, "removeheaders")
    settings = { m = s.wildmat and match.wildmat(names) or match.exact(names) }
  end)
  if not ok then error(err, 2) end
  return { message = P.message }
end

-- Message: each distinct matching name once (remove_header takes them all).
function P.message(session, tx, msg)
  local done, names, count = {}, {}, 0
  for _, h in ipairs(msg:headers()) do
    local lower = h.name:lower()
    if not done[lower] and settings.m:match(h.name) then
      done[lower] = true
      local n = msg:remove_header(h.name)
      if n > 0 then names[#names + 1] = lower; count = count + n end
    end
  end
  if count > 0 then
    indimail.log("removeheaders", { count = count, names = table.concat(names, ",") })
  end
end

return P

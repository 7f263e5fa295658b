-- logheaders (IndiMail's LOGHEADERS / control/logheaders): the values of
-- the listed header fields go into one log line per message, at the
-- message stage (so it carries qid=): event=logheaders qid=... subject=...
-- message-id=... The key is the field name in lower case (bytes other than
-- letters, digits, '-', '_' and '.' become '_'; session, qid and event get
-- an "h_" prefix); the value is the first field of that name, one line of
-- at most max_length bytes; the log itself quotes and escapes it.
--
-- Example (docs/policies/logheaders.md):
--   indimail.policy("logheaders", { headers = { "Subject", "Message-ID", "X-Mailer" } })
--   indimail.policy("logheaders", { file = "/etc/indimail/control/logheaders" })
local H = require("headerlist")

local P = {}
local settings

local TAKEN = { event = true, session = true, qid = true }

-- The log key of header name.
function P.key(name)
  local k = name:lower():gsub("[^%w%-_.]", "_")
  return TAKEN[k] and "h_" .. k or k
end

function P.setup(s)
  s = s or {}
  local ok, err = pcall(function()
    H.check_keys(s, { headers = true, file = true, max_length = true }, "logheaders")
    local keys = {}
    for _, name in ipairs(H.load(s, "logheaders")) do keys[#keys + 1] = { name = name, key = P.key(name) } end
    settings = { keys = keys, max = H.limit(s.max_length, 200, "max_length", "logheaders") }
  end)
  if not ok then error(err, 2) end
  return { message = P.message }
end

-- Message: one line with the present fields; none present, no line.
function P.message(session, tx, msg)
  local fields, n = {}, 0
  for _, k in ipairs(settings.keys) do
    local value = msg:header(k.name)
    if value and fields[k.key] == nil then
      fields[k.key] = H.clean(value, settings.max)
      n = n + 1
    end
  end
  if n > 0 then indimail.log("logheaders", fields) end
end

return P

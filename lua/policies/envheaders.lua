-- envheaders (IndiMail's ENVHEADERS / control/envheaders): the listed
-- header fields of a message are copied into tx.env at the data stage, so
-- the later data and message hooks, the route hook and delivery see them
-- (and the queued envelope has them as env lines). X-Spam-Score becomes
-- tx.env.X_SPAM_SCORE: upper case, every byte but a letter or digit an
-- underscore, after settings.prefix. The value is the first field of that
-- name, made one line of at most max_length bytes. Logged: event=envheaders.
--
-- Example (docs/policies/envheaders.md):
--   indimail.policy("envheaders", { headers = { "X-Spam-Score", "X-Spam-Status" } })
--   indimail.policy("envheaders", { file = "/etc/indimail/control/envheaders" })
local H = require("headerlist")

local P = {}
local settings

-- Variables other policies act on: a header must never set them.
P.RESERVED = { DATABYTES = true, NODNSCHECK = true, ROUTE = true, RELAYCLIENT = true,
  QUEUEDIR = true, QMAILQUEUE = true }

-- The tx.env name of header name.
function P.var(name, prefix)
  return (prefix or "") .. name:upper():gsub("[^%w]", "_")
end

local function map(names, prefix)
  local out, owner = {}, {}
  for _, name in ipairs(names) do
    local var = P.var(name, prefix)
    if P.RESERVED[var] then
      error(("envheaders: header '%s' would set %s, which changes delivery; use a prefix"):format(name, var), 0)
    end
    if owner[var] then
      error(("envheaders: headers '%s' and '%s' both map to %s"):format(owner[var], name, var), 0)
    end
    owner[var] = name
    out[#out + 1] = { name = name, var = var }
  end
  return out
end

function P.setup(s)
  s = s or {}
  local ok, err = pcall(function()
    H.check_keys(s, { headers = true, file = true, prefix = true, max_length = true }, "envheaders")
    if s.prefix ~= nil and (type(s.prefix) ~= "string" or s.prefix:find("[^%w_]")) then
      error("envheaders: prefix must be letters, digits and underscores", 0)
    end
    settings = { vars = map(H.load(s, "envheaders"), s.prefix),
      max = H.limit(s.max_length, 256, "max_length", "envheaders") }
  end)
  if not ok then error(err, 2) end
  return { data = P.data }
end

-- Data: the header section has arrived; set the variables of present fields.
function P.data(session, tx, msg)
  local set = {}
  for _, v in ipairs(settings.vars) do
    local value = msg:header(v.name)
    if value then
      tx.env[v.var] = H.clean(value, settings.max)
      set[#set + 1] = v.var
    end
  end
  if #set > 0 then indimail.log("envheaders", { count = #set, vars = table.concat(set, ",") }) end
end

return P

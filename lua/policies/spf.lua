-- spf: checks the client against the SPF record (RFC 7208) of the envelope
-- sender's domain at MAIL FROM; for the null sender <> the HELO name is the
-- identity (RFC 7208 2.4: postmaster@HELO). What each result does is a
-- setting: reject (550 5.7.23, 5.7.24 for permerror), tempfail (451
-- 4.7.23, 4.7.24 for the errors), mark (a Received-SPF: header at DATA)
-- or accept (nothing). The result goes into tx.notes.spf for later
-- policies (DMARC). The check runs off the event loop
-- (indimail.spf.check, docs/lua.md). Logged: event=spf result= action=
-- Never checked: logged-in users, relay_from clients, the local socket.
-- With helo = true (or a table of actions over the defaults) the HELO
-- identity is also checked at HELO/EHLO (RFC 7208 2.3): a reject or
-- tempfail answers the HELO; the result goes into session.notes.spf_helo.
--
-- Example (docs/policies/spf.md):
--   indimail.policy("spf", {
--     fail = "reject", softfail = "mark", temperror = "tempfail",
--     domains = { ["example.org"] = { softfail = "reject" } },
--   })
local address = require("address")

local settings_check = require("settings")

local P = {}
local settings

local RESULTS = { "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror" }
local DEFAULTS = { pass = "mark", fail = "reject", softfail = "mark", neutral = "mark",
  none = "mark", temperror = "tempfail", permerror = "mark" }
local ACTIONS = { reject = true, tempfail = true, mark = true, accept = true }
local KNOWN = { domains = true, helo = true }
for _, r in ipairs(RESULTS) do KNOWN[r] = true end
local TEXT_MAX = 300

-- The action table of one level (the defaults, or a domain's overrides).
local function actions(s, where, base)
  local t = {}
  for _, r in ipairs(RESULTS) do
    local a = s[r] or base[r]
    if not ACTIONS[a] then
      error(("spf: %s%s must be reject, tempfail, mark or accept"):format(where, r), 4)
    end
    t[r] = a
  end
  return t
end

function P.setup(s)
  s = settings_check.check_keys("spf", s, KNOWN)
  settings = { actions = actions(s, "", DEFAULTS), domains = {} }
  for d, o in pairs(s.domains or {}) do
    if type(d) ~= "string" or type(o) ~= "table" then
      error("spf: domains must map a domain to a table of actions", 3)
    end
    settings.domains[d:lower()] = actions(o, "domains." .. d .. ".", settings.actions)
  end
  local h = s.helo
  if h ~= nil and h ~= false and h ~= true and type(h) ~= "table" then
    error("spf: helo must be true, false or a table of actions", 3)
  end
  if not h then return { mail = P.mail, data = P.data } end
  settings.helo = actions(h == true and {} or h, "helo.", settings.actions)
  return { helo = P.helo, mail = P.mail, data = P.data }
end

local function skipped(session)
  return session.auth_user or session.relay or session.ip == nil or session.ip == ""
end

-- What to do with result for this sender domain.
function P.action(domain, result)
  local t = domain and settings.domains[domain:lower()] or settings.actions
  return t[result]
end

-- The reply text: the domain's explanation for a fail, else our comment.
local function text(result, info)
  local why = (result == "fail" and info.explanation) or info.comment or ""
  return ("SPF %s: %s"):format(result, why):sub(1, TEXT_MAX)
end

local function verdict(action, result, info)
  local err = result == "temperror" or result == "permerror"
  if action == "reject" then
    return indimail.reject(text(result, info), 550, err and "5.7.24" or "5.7.23")
  elseif action == "tempfail" then
    return indimail.tempfail(text(result, info), 451, err and "4.7.24" or "4.7.23")
  end
end

function P.mail(session, tx)
  if skipped(session) then return end
  local sender = tx.sender
  local result, info = indimail.spf.check{ ip = session.ip, helo = session.helo,
    sender = sender ~= "" and sender or nil }
  local action = P.action(address.domain(sender) or info.domain, result)
  tx.notes.spf = { result = result, domain = info.domain, identity = info.identity,
    header = info.header, mark = action == "mark" }
  indimail.log("spf", { result = result, domain = info.domain, identity = info.identity,
    action = action, ip = session.ip })
  return verdict(action, result, info)
end

-- HELO/EHLO: the HELO identity alone (helo = ... in the settings).
function P.helo(session, helo)
  if skipped(session) or helo == nil or helo == "" then return end
  local result, info = indimail.spf.check{ ip = session.ip, helo = helo }
  local action = settings.helo[result]
  session.notes.spf_helo = { result = result, domain = info.domain }
  indimail.log("spf", { result = result, domain = info.domain, identity = "helo",
    stage = "helo", action = action, ip = session.ip })
  return verdict(action, result, info)
end

function P.data(session, tx, msg)
  local spf = tx.notes.spf
  if spf and spf.mark and spf.header then
    msg:add_header("Received-SPF", spf.header, "trace")
  end
end

return P

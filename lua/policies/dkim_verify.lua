-- dkim_verify: verifies the DKIM signatures of inbound mail (RFC 6376,
-- RFC 8463) in the message hook, off the event loop (indimail.dkim.verify,
-- docs/lua.md), and says what it found in an Authentication-Results:
-- header (RFC 8601) named for this host, with SPF's result too when the spf
-- policy left one in tx.notes.spf. Authentication-Results fields that a
-- client sent in our name are removed first (RFC 8601 5). The results go
-- into tx.notes.dkim for later policies (DMARC). What a result does is a
-- setting: fail and permerror = "mark" (default) or "reject" (550 5.7.20),
-- temperror = "mark" (default) or "tempfail" (451 4.7.5).
-- Logged: event=dkim_verify result= domain= selector= action=
-- Not verified: logged-in users (their mail is signed, not checked).
--
-- Example (docs/policies/dkim.md):
--   indimail.policy("dkim_verify", { fail = "mark", temperror = "mark" })
local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { fail = true, permerror = true, temperror = true, authserv_id = true }
local ALLOWED = { fail = { mark = true, reject = true }, permerror = { mark = true, reject = true },
  temperror = { mark = true, tempfail = true } }
local HEADER = "Authentication-Results"

function P.setup(s)
  s = settings_check.check_keys("dkim_verify", s, KNOWN)
  settings = { authserv_id = s.authserv_id }
  for r, ok in pairs(ALLOWED) do
    local a = s[r] or "mark"
    if not ok[a] then
      error(("dkim_verify: %s must be mark or %s"):format(r, r == "temperror" and "tempfail" or "reject"), 3)
    end
    settings[r] = a
  end
  if settings.authserv_id ~= nil and not tostring(settings.authserv_id):match("^[%w%.%-]+$") then
    error("dkim_verify: authserv_id must be a host name", 3)
  end
  return { message = P.message }
end

-- The authserv-id an Authentication-Results value claims, lower case
-- (indimail.authres.parse, RFC 8601 2.2). A malformed field still claims
-- the id read before its error: one in our name is removed all the same,
-- as a lenient reader downstream might believe it. A field whose id cannot
-- be read claims nobody and is kept (it is not ours to judge).
local function authserv_of(value)
  local ar, _, id = indimail.authres.parse(value)
  id = ar and ar.authserv_id or id
  return id and id:lower()
end

-- Removes the fields that claim to be ours (RFC 8601 5); the others are
-- added back above the message's first field, in their order.
local function drop_forged(msg, ours)
  local keep, forged = {}, false
  for _, h in ipairs(msg:headers()) do
    if h.name:lower() == HEADER:lower() then
      if authserv_of(h.value) == ours then forged = true else keep[#keep + 1] = h.value end
    end
  end
  if not forged then return 0 end
  msg:remove_header(HEADER)
  for i = #keep, 1, -1 do msg:add_header(HEADER, keep[i], "prepend") end
  return 1
end

-- A value safe inside an RFC 8601 quoted reason.
local function quoted(s)
  return '"' .. (s or ""):gsub('[%c"\\]', "") .. '"'
end

local function dkim_part(r)
  local p = "dkim=" .. r.result
  if r.result ~= "pass" and r.error then p = p .. " reason=" .. quoted(r.error) end
  if r.domain then p = p .. " header.d=" .. r.domain end
  if r.selector then p = p .. " header.s=" .. r.selector end
  if r.b then p = p .. " header.b=" .. r.b:gsub("[^%w%+/=]", "") end
  return p
end

local function spf_part(spf)
  if not spf or not spf.result then return nil end
  local prop = spf.identity == "helo" and "smtp.helo" or "smtp.mailfrom"
  return ("spf=%s %s=%s"):format(spf.result, prop, spf.domain or "unknown")
end

-- The header's value: our id, then one method result per signature.
function P.header(id, results, spf)
  local parts = { id }
  if #results == 0 then parts[#parts + 1] = "dkim=none" end
  for _, r in ipairs(results) do parts[#parts + 1] = dkim_part(r) end
  parts[#parts + 1] = spf_part(spf)
  return table.concat(parts, ";\n\t")
end

-- The worst action any signature's result asks for.
local function action(results)
  local worst = "mark"
  for _, r in ipairs(results) do
    local a = settings[r.result]
    if a == "reject" then return "reject", r end
    if a == "tempfail" then worst = "tempfail" end
  end
  return worst
end

function P.message(session, tx, msg)
  if session.auth_user then return end
  local id = settings.authserv_id or indimail.dkim.authserv_id()
  drop_forged(msg, id:lower())
  local results = indimail.dkim.verify(msg)
  tx.notes.dkim = results
  local act, bad = action(results)
  for _, r in ipairs(results) do
    indimail.log("dkim_verify", { result = r.result, domain = r.domain, selector = r.selector,
      algorithm = r.algorithm, error = r.error, action = act })
  end
  if #results == 0 then indimail.log("dkim_verify", { result = "none", action = act }) end
  if act == "reject" then
    return indimail.reject(("DKIM %s for %s: %s"):format(bad.result, bad.domain or "?",
      bad.error or "invalid signature"), 550, "5.7.20")
  elseif act == "tempfail" then
    return indimail.tempfail("DKIM key lookup failed, try again later", 451, "4.7.5")
  end
  msg:add_header(HEADER, P.header(id, results, tx.notes.spf), "trace")
end

return P

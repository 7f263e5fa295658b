-- dmarc: applies the From: domain's DMARC policy (RFC 7489) in the message
-- hook. The RFC5322.From domain is read by GMime (indimail.dmarc.from_domain);
-- the policy record is found at _dmarc.<From domain>, else at
-- _dmarc.<Organizational Domain> (the Public Suffix List, libpsl), read by
-- libopendmarc; SPF (tx.notes.spf, left by the spf policy at MAIL) and DKIM
-- (tx.notes.dkim, left by dkim_verify) count when they pass for a domain
-- aligned with the From domain (adkim=/aspf=, relaxed or strict). Nothing
-- blocks: the lookups go through the loop's resolver (indimail.dmarc.check).
--
-- Order: after spf and dkim_verify (this needs their results), both
-- configured before it. The result goes into its own
-- Authentication-Results: field (RFC 8601 allows several; dkim_verify's
-- field is already written when this runs, and it removed the fields a
-- client forged in our name): `dmarc=fail (p=reject dis=quarantine)
-- header.from=example.com`, into tx.notes.dmarc, and into one log line
-- event=dmarc holding an aggregate report's row (docs/policies/dmarc.md).
--
-- The disposition: reject → 550 5.7.1 "DMARC policy of <domain> is reject";
-- quarantine → the quarantine mailbox (quarantine = "address") or an
-- X-DMARC-Quarantine: field (quarantine = "header", the default). mode =
-- "monitor" never acts; domains = { [d] = "monitor" | "quarantine" } caps
-- what mail from d (the From domain or its Organizational Domain) gets.
-- temperror (DNS did not answer): "accept" (default, marked) or
-- "tempfail" (451 4.7.1); permerror (several From: fields or domains, a
-- broken record): "accept" (default, marked) or "reject" (550 5.7.1).
-- Not checked: logged-in users and relay clients (their mail is ours).
--
-- Example (docs/policies/dmarc.md):
--   indimail.policy("spf", { fail = "mark" })
--   indimail.policy("dkim_verify")
--   indimail.policy("dmarc", { quarantine = "quarantine@example.org",
--     domains = { ["lists.example.net"] = "monitor" } })
local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { mode = true, quarantine = true, temperror = true, permerror = true,
  domains = true, authserv_id = true }
local CHOICES = { mode = { enforce = true, monitor = true },
  temperror = { accept = true, tempfail = true }, permerror = { accept = true, reject = true } }
local CAPS = { monitor = "none", quarantine = "quarantine" }
local RANK = { none = 0, quarantine = 1, reject = 2 }
local HEADER = "Authentication-Results"
local QUARANTINE_FIELD = "X-DMARC-Quarantine"

local function fail(fmt, ...) error("dmarc: " .. fmt:format(...), 4) end

local function choice(s, k, default)
  local v = s[k] or default
  if not CHOICES[k][v] then
    local ok = {}
    for c in pairs(CHOICES[k]) do ok[#ok + 1] = c end
    table.sort(ok)
    fail("%s must be %s", k, table.concat(ok, " or "))
  end
  return v
end

local function check_domains(t)
  local out = {}
  if t ~= nil and type(t) ~= "table" then fail("domains must map a domain to \"monitor\" or \"quarantine\"") end
  for d, v in pairs(t or {}) do
    if type(d) ~= "string" or not CAPS[v] then
      fail("domains[%s] must be \"monitor\" or \"quarantine\"", tostring(d))
    end
    out[d:lower()] = CAPS[v]
  end
  return out
end

function P.setup(s)
  s = settings_check.check_keys("dmarc", s, KNOWN)
  local q = s.quarantine or "header"
  if type(q) ~= "string" or (q ~= "header" and not q:find("@")) then
    fail("quarantine must be \"header\" or the quarantine mailbox (an address)")
  end
  if s.authserv_id ~= nil and not tostring(s.authserv_id):match("^[%w%.%-]+$") then
    fail("authserv_id must be a host name")
  end
  settings = { mode = choice(s, "mode", "enforce"), temperror = choice(s, "temperror", "accept"),
    permerror = choice(s, "permerror", "accept"), quarantine = q,
    domains = check_domains(s.domains), authserv_id = s.authserv_id }
  return { message = P.message }
end

-- The mildest of the disposition and what the settings allow for r.
function P.disposition(r)
  local cap = settings.mode == "monitor" and "none"
    or settings.domains[r.from_domain or ""]
    or settings.domains[r.organizational_domain or ""]
  if cap and RANK[cap] < RANK[r.disposition] then return cap, true end
  return r.disposition, false
end

-- The Authentication-Results value (RFC 7489 11.2, RFC 8601).
function P.header(id, r)
  local v = id .. "; dmarc=" .. r.result
  if r.result == "pass" or r.result == "fail" then
    v = v .. (" (p=%s dis=%s)"):format(r.policy, r.applied or r.disposition)
  elseif r.reason then
    v = v .. " reason=\"" .. r.reason:gsub('[%c"\\]', "") .. "\""
  end
  if r.from_domain then v = v .. " header.from=" .. r.from_domain end
  return v
end

-- The first passing signature's domain and selector, else the first one's.
local function dkim_summary(dkim)
  for _, s in ipairs(dkim) do
    if s.result == "pass" then return s end
  end
  return dkim[1] or { result = "none" }
end

-- One line with what an aggregate report's row needs (RFC 7489 7.2).
local function log(session, tx, r)
  local spf, d = tx.notes.spf or {}, dkim_summary(tx.notes.dkim or {})
  indimail.log("dmarc", { ip = session.ip, header_from = r.from_domain,
    envelope_from = tx.sender, result = r.result, reason = r.reason,
    record_domain = r.record_domain, organizational_domain = r.organizational_domain,
    p = r.p, sp = r.sp, pct = r.pct, adkim = r.adkim, aspf = r.aspf, policy = r.policy,
    disposition = r.applied, override = r.overridden and "local" or nil,
    spf = spf.result or "none", spf_domain = spf.domain, spf_aligned = r.spf_aligned,
    dkim = d.result, dkim_domain = r.dkim_domain or d.domain, dkim_selector = d.selector,
    dkim_aligned = r.dkim_aligned, rua = r.rua })
end

-- The result for the message: the From domain's check, or an error of From.
local function evaluate(tx, msg)
  local from, why = indimail.dmarc.from_domain(msg)
  if not from then
    local r = why == "multiple" and "permerror" or "none"
    return { result = r, policy = "none", disposition = "none",
      reason = why == "multiple" and "more than one From: field or domain" or "no From: domain" }
  end
  return indimail.dmarc.check{ from_domain = from, spf = tx.notes.spf, dkim = tx.notes.dkim }
end

local function verdict(r, msg)
  if r.result == "temperror" and settings.temperror == "tempfail" then
    return indimail.tempfail("DMARC policy of " .. r.from_domain .. " could not be retrieved, try again later",
      451, "4.7.1")
  elseif r.result == "permerror" and settings.permerror == "reject" then
    return indimail.reject("DMARC: " .. (r.reason or "permanent error"), 550, "5.7.1")
  elseif r.applied == "reject" then
    return indimail.reject("DMARC policy of " .. r.from_domain .. " is reject", 550, "5.7.1")
  elseif r.applied == "quarantine" and settings.quarantine ~= "header" then
    return indimail.quarantine(settings.quarantine, "DMARC policy of " .. r.from_domain .. " is quarantine")
  elseif r.applied == "quarantine" then
    msg:add_header(QUARANTINE_FIELD, "policy of " .. r.from_domain .. " is quarantine")
  end
end

function P.message(session, tx, msg)
  if session.auth_user or session.relay then return end
  local r = evaluate(tx, msg)
  r.applied, r.overridden = P.disposition(r)
  tx.notes.dmarc = r
  log(session, tx, r)
  msg:add_header(HEADER, P.header(settings.authserv_id or indimail.dkim.authserv_id(), r), "trace")
  return verdict(r, msg)
end

return P

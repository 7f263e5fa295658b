-- dkim_sign: asks for a DKIM signature (RFC 6376; RFC 8463 for Ed25519) on
-- mail our users send: a session that logged in (SMTP AUTH) or came in on
-- one of the listed listeners (submission by default), whose From: domain
-- (else the envelope sender's) has a key in the configuration's
-- dkim.keys. The signature is made by the core after every policy's edits
-- (disclaimers included), just before the queue write, off the event loop;
-- if it cannot be made the client gets 451, unless sign_failure = "pass"
-- (then the message is queued unsigned and the failure logged).
-- Logged: event=dkim_sign domain= (and the core's event=dkim_signed).
--
-- Example (docs/policies/dkim.md):
--   indimail.config{ dkim = { keys = { ["example.com"] = {
--     selector = "s2026", key_file = "etc/dkim/example.com.s2026.key" } } } }
--   indimail.policy("dkim_sign", { listeners = { "submission" } })
local address = require("address")

local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { listeners = true, sign_failure = true }
local FAILURES = { tempfail = true, pass = true }

function P.setup(s)
  s = settings_check.check_keys("dkim_sign", s, KNOWN)
  if s.sign_failure ~= nil and not FAILURES[s.sign_failure] then
    error("dkim_sign: sign_failure must be \"tempfail\" or \"pass\"", 3)
  end
  if s.listeners ~= nil and type(s.listeners) ~= "table" then
    error("dkim_sign: listeners must be a list of listener names", 3)
  end
  settings = { listeners = {}, sign_failure = s.sign_failure or "tempfail" }
  for _, name in ipairs(s.listeners or { "submission" }) do
    settings.listeners[name] = true
  end
  return { message = P.message }
end

-- Mail of ours: a logged-in user, or a submission listener.
local function ours(session)
  return session.auth_user ~= nil or settings.listeners[session.listener or ""] == true
end

-- The domain that signs: From:'s (what DMARC aligns with), else the sender's.
local function signing_domain(tx, msg)
  local from = msg:header("From") or ""
  local addr = from:match("<([^>]*)>") or from:match("[^%s,]+@[^%s,]+")
  local d = addr and address.domain(addr)
  if d and indimail.dkim.has_key(d) then return d end
  d = address.domain(tx.sender or "")
  if d and indimail.dkim.has_key(d) then return d end
end

function P.message(session, tx, msg)
  if not ours(session) then return end
  local domain = signing_domain(tx, msg)
  if not domain then return end
  msg:dkim_sign{ domain = domain, sign_failure = settings.sign_failure }
  indimail.log("dkim_sign", { domain = domain, listener = session.listener })
end

return P

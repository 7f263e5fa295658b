-- relay: what the core's relay rules (relay_from, AUTH, no_relay users,
-- local_sender_requires_auth; docs/smtp.md "Senders and relaying") do not
-- say. The core decides first and alone who may relay at all; this policy
-- only narrows it and adds IndiMail's authdomains with exceptions:
--   relay_to       a relay_from client without a login may relay only to
--                  these domains (else 554 5.7.1 at RCPT)
--   relay_senders  ... and only with these senders (else 554 5.7.1)
--   authdomains    senders in these domains need AUTH (550 5.7.1 at MAIL)
--                  unless the client is in auth_exempt_clients or the
--                  sender in auth_exempt_senders; relay_from clients and
--                  logged-in users pass, as in the core
-- rcpthosts (qmail's rcpthosts + morercpthosts) says which recipient
-- domains are ours: any other is relaying. Each refusal logs event=relay.
-- docs/policies/relay.md.
--
-- Example:
--   indimail.policy("relay", {
--     rcpthosts = { file = "etc/control/rcpthosts" },
--     relay_to = { entries = { "partner.example", ".partner.example" } },
--     authdomains = { file = "etc/control/authdomains" },
--     auth_exempt_clients = { "192.0.2.25", "2001:db8::25" },
--   })
local addrlist = require("addrlist")
local match = require("match")

local P = {}
local S

local LIST_KEYS = { file = true, entries = true, regex = true, flags = true }
local KEYS = { rcpthosts = "host", relay_to = "host", relay_senders = "addr",
  authdomains = "addr", auth_exempt_senders = "addr", auth_exempt_clients = "cidr" }

local function list(name, kind, v)
  if kind == "cidr" then return match.cidr(v) end
  if v[1] == nil then addrlist.check_keys("relay: " .. name, v, LIST_KEYS) end
  return addrlist.load(v, { host = kind == "host" })
end

local function build(s)
  S = {}
  for k, v in pairs(s) do
    if not KEYS[k] then error("relay: unknown setting " .. tostring(k), 0) end
    if type(v) ~= "table" then error(("relay: %s must be a table"):format(k), 0) end
    S[k] = list(k, KEYS[k], v)
  end
  if (S.relay_to or S.relay_senders) and not S.rcpthosts then
    error("relay: relay_to and relay_senders need rcpthosts (the domains that are ours)", 0)
  end
end

function P.setup(s)
  local ok, err = pcall(build, s or {})
  if not ok then error(err, 2) end
  return { mail = P.mail, rcpt = P.rcpt }
end

local function refuse(session, tx, what, fields, text, code)
  fields.rule, fields.sender, fields.ip = what, tx.sender, session.ip
  indimail.log("relay", fields)
  return indimail.reject(text .. " (relay)", code, "5.7.1")
end

-- MAIL: an authdomains sender from a client that neither logged in nor is
-- a relay client nor is exempt.
function P.mail(session, tx)
  local a = S.authdomains
  if not a or session.auth_user or session.relay or tx.sender == "" then return end
  local hit = a:lookup(tx.sender)
  if not hit then return end
  if S.auth_exempt_clients and S.auth_exempt_clients:match(session.ip or "") then return end
  if S.auth_exempt_senders and S.auth_exempt_senders:match(tx.sender) then return end
  return refuse(session, tx, "authdomains", { entry = hit.text, where = hit.where },
    "Authentication required to send as " .. match.domain_of(tx.sender), 550)
end

-- RCPT: a relay_from client without a login relaying (a domain not in
-- rcpthosts) outside relay_to or with a sender outside relay_senders.
function P.rcpt(session, tx, rcpt)
  if not S.rcpthosts or session.auth_user or not session.relay then return end
  if not rcpt:find("@", 1, true) then return end
  local domain = match.domain_of(rcpt)
  if S.rcpthosts:match(domain) then return end
  if S.relay_to and not S.relay_to:match(domain) then
    return refuse(session, tx, "relay_to", { rcpt = rcpt },
      "Relaying to " .. domain .. " denied for your address", 554)
  end
  if S.relay_senders and not S.relay_senders:match(tx.sender) then
    return refuse(session, tx, "relay_senders", { rcpt = rcpt },
      ("Relaying denied for sender <%s>"):format(tx.sender), 554)
  end
end

return P

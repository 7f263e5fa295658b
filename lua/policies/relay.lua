-- relay: what the core's relay rules (relay_from, AUTH, no_relay users,
-- local_sender_requires_auth; docs/smtp.md "Senders and relaying") do not
-- say. It grants relaying as IndiMail's control files do, and narrows it:
--   relayclients   clients allowed to relay (IndiMail's relayclients,
--                  qmail's tcp.smtp RELAYCLIENT lines: "192.168.1.",
--                  "192.0.2.7:", CIDR): session.relay = true at connect
--   relaymailfrom  senders (or @domain) allowed to relay, from any
--                  client: tx.relay = true at MAIL. Insecure by nature
--                  (anyone can write any MAIL FROM): prefer AUTH
--   relay_to       a relay client without a login may relay only to
--                  these domains (else 554 5.7.1 at RCPT)
--   relay_senders  ... and only with these senders (else 554 5.7.1)
--   authdomains    senders in these domains need AUTH (550 5.7.1 at MAIL)
--                  unless the client is in auth_exempt_clients or the
--                  sender in auth_exempt_senders; relay clients and
--                  logged-in users pass, as in the core
-- rcpthosts (qmail's rcpthosts + morercpthosts) says which recipient
-- domains are ours: any other is relaying. Each grant logs
-- event=relay_grant (the core) after event=relay rule=... (here); each
-- refusal logs event=relay. docs/policies/relay.md.
--
-- Example:
--   indimail.policy("relay", {
--     relayclients = { file = "etc/control/relayclients" },
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
  authdomains = "addr", auth_exempt_senders = "addr", auth_exempt_clients = "cidr",
  relayclients = "relayclients", relaymailfrom = "addr" }

-- relayclients: a file and/or entries in IndiMail's format; the matcher
-- answers the entry (CIDR) that lists an address.
local function relayclients(name, v)
  if v[1] ~= nil then v = { entries = v } end
  addrlist.check_keys("relay: " .. name, v, { file = true, entries = true })
  local cidrs = {}
  if v.file then
    for _, e in ipairs(addrlist.relayclients(v.file)) do cidrs[e] = e end
  end
  for _, e in ipairs(addrlist.relayclients(nil, v.entries or {})) do cidrs[e] = e end
  return match.from("cidr", cidrs)
end

local function list(name, kind, v)
  if kind == "cidr" then return match.cidr(v) end
  if kind == "relayclients" then return relayclients(name, v) end
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
  -- only the stages with work to do: each hook call costs even when it returns at once
  return { connect = S.relayclients and P.connect or nil,
    mail = (S.authdomains or S.relaymailfrom) and P.mail or nil,
    rcpt = S.rcpthosts and P.rcpt or nil }
end

local function refuse(session, tx, what, fields, text, code)
  fields.rule, fields.sender, fields.ip = what, tx.sender, session.ip
  indimail.log("relay", fields)
  return indimail.reject(text .. " (relay)", code, "5.7.1")
end

-- CONNECT: a client in relayclients may relay for the whole session.
function P.connect(session)
  if session.relay then return end
  local entry = session.ip and S.relayclients:lookup(session.ip)
  if not entry then return end
  indimail.log("relay", { rule = "relayclients", entry = entry, ip = session.ip })
  session.relay = true
end

-- MAIL: an authdomains sender from a client that neither logged in nor is
-- a relay client nor is exempt.
local function authdomains(session, tx)
  local a = S.authdomains
  if not a or session.auth_user or session.relay or tx.sender == "" then return end
  local hit = a:lookup(tx.sender)
  if not hit then return end
  if S.auth_exempt_clients and S.auth_exempt_clients:match(session.ip or "") then return end
  if S.auth_exempt_senders and S.auth_exempt_senders:match(tx.sender) then return end
  return refuse(session, tx, "authdomains", { entry = hit.text, where = hit.where },
    "Authentication required to send as " .. match.domain_of(tx.sender), 550)
end

-- MAIL: a sender in relaymailfrom may relay for this transaction (not a
-- logged-in user: the directory decides for users, no_relay included).
local function relaymailfrom(session, tx)
  if not S.relaymailfrom or session.auth_user or session.relay then return end
  local hit = S.relaymailfrom:lookup(tx.sender)
  if not hit then return end
  indimail.log("relay", { rule = "relaymailfrom", entry = hit.text, where = hit.where,
    sender = tx.sender, ip = session.ip })
  tx.relay = true
end

function P.mail(session, tx)
  local refused = authdomains(session, tx)
  if refused then return refused end
  relaymailfrom(session, tx)
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

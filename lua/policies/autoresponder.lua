-- autoresponder: vacation replies (RFC 3834). At the message stage, each
-- recipient that is a user of the directory with its vacation on (`indimail
-- user vacation ADDRESS on ...`, read with indimail.directory.user) and
-- inside its --from/--until window gets one reply sent to the envelope
-- sender with indimail.submit: MAIL FROM <> (RFC 3834 3.3), From: the user,
-- To: the sender, Subject: the user's or "Auto: " and the original's,
-- In-Reply-To and References from the original's Message-ID,
-- Auto-Submitted: auto-replied. The reply is queued only if the message is.
-- No reply (RFC 3834 2, 5): to <> or a MAILER-DAEMON, postmaster, owner-,
-- -request, list-server or no-reply sender; to a message with
-- Auto-Submitted other than "no", Precedence bulk/list/junk, a List-*
-- field or X-Auto-Response-Suppress; when the user's address is not in
-- To:/Cc: (addressed_only, the default); to the user itself; and more
-- than once per user and sender in the user's --interval (indimail.counter,
-- shared by every worker). Logged for users on vacation only:
-- event=autoreply user= to=, or event=autoreply user= to= skipped=why.
-- A failure here (directory, submit) never refuses the message.
--
-- Example (docs/policies/autoresponder.md):
--   indimail.policy("autoresponder", { addressed_only = true })
local P = {}
local settings

local address = require("address")

local MAX_RCPTS = 50          -- recipients looked at per message
local MAX_SUBJECT = 200       -- bytes of the original's subject kept
local MAX_REFERENCES = 900    -- bytes of References kept (one header line)

-- Senders that are programs (RFC 3834 2, and the usual list servers).
local PROGRAM_SENDERS = { "^mailer%-daemon$", "^postmaster$", "^owner%-", "%-request$",
  "^listserv$", "^majordomo$", "^no%-?reply$", "^bounces?$", "%-bounces?$" }
local LIST_FIELDS = { "List-Id", "List-Unsubscribe", "List-Post", "List-Help",
  "List-Subscribe", "List-Owner", "List-Archive", "Mailing-List" }

function P.setup(s)
  s = s or {}
  for k in pairs(s) do
    if k ~= "addressed_only" then error(("autoresponder: unknown setting %s"):format(tostring(k)), 2) end
  end
  if s.addressed_only ~= nil and type(s.addressed_only) ~= "boolean" then
    error("autoresponder: addressed_only must be true or false", 2)
  end
  settings = { addressed_only = s.addressed_only ~= false }
  return { message = P.message }
end

local function program_sender(sender)
  local l = (address.localpart(sender) or sender):lower()
  for _, p in ipairs(PROGRAM_SENDERS) do
    if l:find(p) then return true end
  end
  return false
end

local function auto_submitted(msg)
  local v = msg:header("Auto-Submitted")
  return v ~= nil and v:match("^%s*([^;%s]*)"):lower() ~= "no"
end

local function has_list_field(msg)
  for _, f in ipairs(LIST_FIELDS) do
    if msg:header(f) then return true end
  end
  return false
end

-- Why this message gets no reply from anyone, or nil.
function P.message_skip(tx, msg)
  local sender = tx.sender or ""
  if sender == "" then return "null_sender" end
  if program_sender(sender) then return "program_sender" end
  if auto_submitted(msg) then return "auto_submitted" end
  local prec = (msg:header("Precedence") or ""):lower():match("^%s*(%a+)")
  if prec == "bulk" or prec == "list" or prec == "junk" then return "precedence" end
  if has_list_field(msg) then return "list" end
  local sup = (msg:header("X-Auto-Response-Suppress") or ""):lower()
  if sup:find("all") or sup:find("oof") then return "suppressed" end
  return nil
end

-- Is addr (any case) one of the addresses of To: or Cc:?
function P.addressed(msg, addr)
  local want = addr:lower()
  for _, f in ipairs({ "To", "Cc" }) do
    for _, h in ipairs(msg:headers()) do
      if h.name:lower() == f:lower() then
        for a in h.value:lower():gmatch("[^%s<>,;:\"]+@[^%s<>,;:\"]+") do
          if a == want then return true end
        end
      end
    end
  end
  return false
end

local function in_window(v, now)
  return (v.from == 0 or now >= v.from) and (v["until"] == 0 or now < v["until"])
end

-- The reply's fields (RFC 3834 3.1).
function P.reply_header(user, sender, vac, msg)
  local h = { { "From", user }, { "To", sender } }
  local subject = vac.subject or ("Auto: " .. (msg:header("Subject") or ""):sub(1, MAX_SUBJECT))
  h[#h + 1] = { "Subject", subject }
  local id = msg:header("Message-ID")
  if id and #id <= MAX_REFERENCES then
    local refs = msg:header("References") or msg:header("In-Reply-To")
    refs = refs and (refs .. " " .. id) or id
    h[#h + 1] = { "In-Reply-To", id }
    h[#h + 1] = { "References", #refs <= MAX_REFERENCES and refs or id }
  end
  h[#h + 1] = { "Auto-Submitted", "auto-replied" }
  return h
end

local function log(user, to, skipped, err)
  indimail.log("autoreply", { user = user, to = to, skipped = skipped, error = err })
end

-- Why user (on vacation) does not answer this message, or nil.
local function user_skip(u, sender, msg, why)
  if why then return why end
  if not in_window(u.vacation, os.time()) then return "outside_dates" end
  if sender:lower() == u.address:lower() then return "self" end
  if settings.addressed_only and not P.addressed(msg, u.address) then return "not_addressed" end
  local key = ("autoreply:%s:%s"):format(u.address:lower(), sender:lower():sub(1, 400))
  if indimail.counter.add(key, u.vacation.interval) > 1 then return "interval" end
  return nil
end

-- One user on vacation: a reply, or the reason for none.
local function answer(u, tx, msg, why)
  local sender = tx.sender or ""
  local skipped = user_skip(u, sender, msg, why)
  if skipped then return log(u.address, sender, skipped) end
  local ok, err = pcall(indimail.submit, { from = "", to = { sender },
    header = P.reply_header(u.address, sender, u.vacation, msg), body = u.vacation.message })
  if ok then return log(u.address, sender) end
  log(u.address, sender, "submit_error", tostring(err))
end

function P.message(_, tx, msg)
  local why = P.message_skip(tx, msg)
  local seen = {}
  for i, rcpt in ipairs(tx.rcpts) do
    if i > MAX_RCPTS then break end
    local u, err = indimail.directory.user(rcpt)
    if err then log(rcpt, tx.sender, "directory_error", err) end
    if u and u.vacation and not seen[u.address] then
      seen[u.address] = true
      answer(u, tx, msg, why)
    end
  end
end

return P

-- disclaimer: appends a disclaimer to the readable text of our users'
-- mail (msg:append_text): the end of a text/plain body, before </body> of
-- a text/html one, both parts of a multipart/alternative, the text part
-- of a multipart/mixed (attachments untouched). The text is chosen by
-- the envelope sender: its address, else its domain, else the default.
-- Signed messages (multipart/signed, encrypted) are left byte for byte, so
-- is a message that already carries a DKIM-Signature (a changed body would
-- break it); a message is never given two (the marker header field, and
-- tx.notes.disclaimer). Our own DKIM signing runs after every edit, on the
-- message as queued, so it signs the disclaimer. Logged: event=disclaimer
-- result=added|skipped parts= source= why=.
--
-- Example (docs/policies/disclaimer.md):
--   indimail.policy("disclaimer", {
--     text = "--\nThis message is confidential.",       -- the default
--     html = "<p><small>This message is confidential.</small></p>",
--     domains = { ["sales.example.org"] = { text_file = "/etc/indimail/disclaimer.sales.txt" } },
--     senders = { ["ceo@example.org"] = { text = "--\nSent by the CEO's office." } },
--   })
local match = require("match")

local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { text = true, html = true, text_file = true, html_file = true, domains = true,
  senders = true, from = true, marker = true, skip_dkim_signed = true }
local TEXT_KEYS = { text = true, html = true, text_file = true, html_file = true }
local TEXT_MAX, LINE_MAX = 8192, 900      -- msg:append_text's limits
local DEFAULT_MARKER = "X-Disclaimer"

local function fail(fmt, ...) error("disclaimer: " .. fmt:format(...), 0) end

-- Printable ASCII, tabs and LFs, the lines at most 900: append_text's rule,
-- checked here so a bad text fails at load time, not at every message.
local function check_text(t, where)
  if type(t) ~= "string" or #t == 0 or #t > TEXT_MAX then
    fail("%s must be 1 to %d bytes", where, TEXT_MAX)
  end
  if t:find("[^\t\n\32-\126]") then fail("%s must be printable ASCII, tabs and LFs", where) end
  for line in (t .. "\n"):gmatch("([^\n]*)\n") do
    if #line > LINE_MAX then fail("%s: a line is at most %d bytes", where, LINE_MAX) end
  end
  return t
end

local function read(path, where)
  local f, err = io.open(path, "r")
  if not f then fail("%s: %s", where, err) end
  local t = f:read("a")
  f:close()
  return (t:gsub("\r\n", "\n"):gsub("\n+$", ""))
end

-- { text=, html= } of one level: inline strings or files.
local function texts(s, where)
  for k in pairs(s) do
    if not TEXT_KEYS[k] then fail("%s: unknown setting %s", where, tostring(k)) end
  end
  if (s.text ~= nil) == (s.text_file ~= nil) then fail("%s: needs text or text_file (one)", where) end
  if s.html ~= nil and s.html_file ~= nil then fail("%s: html or html_file, not both", where) end
  local t = { text = s.text or read(s.text_file, where .. ".text_file") }
  local h = s.html or (s.html_file and read(s.html_file, where .. ".html_file"))
  t.text = check_text(t.text, where .. ".text")
  t.html = h and check_text(h, where .. ".html")
  return t
end

local function keyed(map, what, norm)
  local out = {}
  for k, v in pairs(map or {}) do
    if type(k) ~= "string" or type(v) ~= "table" then fail("%s maps a name to { text = ... }", what) end
    out[norm(k)] = texts(v, what .. "[" .. k .. "]")
  end
  return out
end

function P.setup(s)
  s = settings_check.check_keys("disclaimer", s, KNOWN)
  local from = s.from or "our_users"
  if from ~= "our_users" and from ~= "all" then fail('from must be "our_users" or "all"') end
  local marker = s.marker == nil and DEFAULT_MARKER or s.marker
  if marker ~= false and (type(marker) ~= "string" or not marker:find("^[%w-]+$")) then
    fail("marker must be a header field name or false")
  end
  local default
  if s.text or s.text_file then
    default = texts({ text = s.text, html = s.html, text_file = s.text_file, html_file = s.html_file }, "default")
  elseif s.html or s.html_file then
    fail("html needs text (the plain version)")
  end
  settings = { default = default, from = from, marker = marker,
    skip_dkim_signed = s.skip_dkim_signed ~= false,
    domains = keyed(s.domains, "domains", match.domain_of),
    senders = keyed(s.senders, "senders", string.lower) }
  if not default and next(settings.domains) == nil and next(settings.senders) == nil then
    fail("no text: text, domains or senders")
  end
  return { message = P.message }
end

-- The texts for this sender and where they came from, or nil.
function P.choose(sender)
  if sender == "" then return settings.default, "default" end
  local s = settings.senders[sender:lower()]
  if s then return s, "sender" end
  local d = match.domain_of(sender)
  if settings.domains[d] then return settings.domains[d], "domain:" .. d end
  return settings.default, "default"
end

local function skipped(why, source)
  indimail.log("disclaimer", { result = "skipped", why = why, source = source })
end

-- Why this message gets none, or nil.
local function refusal(session, tx, msg)
  if settings.from == "our_users" and not session.relay then return "not_our_user" end
  if tx.notes.disclaimer then return "added_already" end
  if settings.marker and msg:header(settings.marker) then return "marker_present" end
  if settings.skip_dkim_signed and msg:header("DKIM-Signature") then return "dkim_signed" end
end

function P.message(session, tx, msg)
  local why = refusal(session, tx, msg)
  if why == "not_our_user" then return end        -- incoming mail: nothing to say
  if why then return skipped(why) end
  local t, source = P.choose(tx.sender)
  if not t then return end
  local n, reason = msg:append_text(t.text, t.html)
  if n == 0 then return skipped(reason, source) end
  tx.notes.disclaimer = source
  if settings.marker then msg:add_header(settings.marker, source) end
  indimail.log("disclaimer", { result = "added", parts = n, source = source })
end

return P

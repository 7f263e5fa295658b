-- bodycheck: content rules on the header fields and the readable text of
-- a message (IndiMail's qmail-smtpd bodycheck). A rule matches a pattern
-- against header fields, against the decoded text of the text parts
-- (msg:filter_body used read-only: every chunk is kept, nothing is
-- edited), or against the file names of the attachments. A matching rule
-- rejects (554 5.7.1 at the end of DATA with its reason), quarantines,
-- discards, or tags (an X-Bodycheck: header, then the scan goes on). The
-- first rule with a verdict ends the scan. Patterns are compiled once, at
-- setup. IndiMail's control file (lines of regex:reason[:-header|-body])
-- is read with `file`. Logged: event=bodycheck rule= action= where= reason=.
--
-- Example (docs/policies/bodycheck.md):
--   indimail.policy("bodycheck", {
--     rules = {
--       { name = "invoice", where = "header", header = "Subject",
--         match = "wildmat", pattern = "*overdue invoice*", action = "quarantine" },
--       { name = "wire", where = "body", pattern = "wire (the )?money", flags = "i",
--         action = "reject", reason = "Fraud pattern in the message text" },
--       { name = "exe", where = "filename", match = "pattern", pattern = "%.exe$",
--         action = "reject", reason = "Executable attachments are refused" },
--     },
--     file = "/etc/indimail/control/bodycheck",   -- IndiMail's format
--     quarantine = "quarantine@example.test",
--   })
local match = require("match")

local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { rules = true, file = true, file_action = true, quarantine = true,
  types = true, skip_authenticated = true }
local RULE_KEYS = { name = true, where = true, header = true, pattern = true, match = true,
  flags = true, action = true, reason = true, quarantine = true }
local WHERE = { header = true, body = true, any = true, filename = true }
local ACTIONS = { reject = true, quarantine = true, discard = true, tag = true }
local KINDS = { regex = true, pattern = true, wildmat = true }
local DEFAULT_REASON = "Message content refused by policy"
local REASON_MAX = 300        -- the reply's text stays one short line
local TAG_HEADER = "X-Bodycheck"
local STOP = {}               -- raised from the body scan at a verdict

local function fail(fmt, ...) error("bodycheck: " .. fmt:format(...), 0) end

-- ---- rules --------------------------------------------------------------

-- A reason is printable ASCII: it goes into a reply and a header field.
local function check_reason(r, where)
  if type(r) ~= "string" or #r == 0 or #r > REASON_MAX or r:find("[^\32-\126]") then
    fail("%s: reason must be 1 to %d printable ASCII characters", where, REASON_MAX)
  end
  return r
end

-- A Lua pattern for a chunk of lines: "^" and "$" become the line ends
-- of a chunk given as "\n" .. chunk .. "\n" (see body_subject).
local function line_pattern(p)
  local q = p:gsub("^%^", "\n")
  if q:find("%$$") and not q:find("%%%$$") then q = q:sub(1, -2) .. "\n" end
  return q
end

-- The rule's tests: one(s) on a header value or line, chunk(s) on text.
local function compile(r, where)
  local kind = r.match or "regex"
  if not KINDS[kind] then fail("%s: match must be regex, pattern or wildmat", where) end
  if type(r.pattern) ~= "string" or r.pattern == "" then fail("%s: pattern must be a string", where) end
  local flags = r.flags or ""
  if kind == "regex" then
    local ok, re = pcall(indimail.regex.compile, r.pattern, flags .. "m")
    if not ok then fail("%s: %s", where, tostring(re)) end
    local function test(s) return re:find(s) ~= nil end
    return test, test
  end
  if r.flags then fail("%s: flags go with match = \"regex\"", where) end
  local m = match.new(kind)                -- a wildmat ignores case, as everywhere
  local ok, err = pcall(m.add, m, r.pattern, true, where)
  if not ok then fail("%s", tostring(err)) end
  if kind == "wildmat" then
    if r.where ~= "header" and r.where ~= "filename" then
      fail("%s: a wildmat matches a whole string: use it for header or filename rules", where)
    end
    return function(s) return m:match(s) end
  end
  local lp = line_pattern(r.pattern)
  return function(s) return s:find(r.pattern) ~= nil end,
    function(_, framed) return framed:find(lp) ~= nil end, true
end

local function rule(r, where, default_q)
  if type(r) ~= "table" then fail("%s: a rule is a table", where) end
  for k in pairs(r) do
    if not RULE_KEYS[k] then fail("%s: unknown rule key %s", where, tostring(k)) end
  end
  local w, action = r.where or "any", r.action or "reject"
  if not WHERE[w] then fail("%s: where must be header, body, any or filename", where) end
  if not ACTIONS[action] then fail("%s: action must be reject, quarantine, discard or tag", where) end
  if r.header ~= nil and (w ~= "header" or type(r.header) ~= "string") then
    fail("%s: header = NAME goes with where = \"header\"", where)
  end
  local q = r.quarantine or default_q
  if action == "quarantine" and (type(q) ~= "string" or not q:find("@")) then
    fail("%s: action quarantine needs quarantine = the quarantine mailbox (an address)", where)
  end
  local one, chunk, framed = compile({ pattern = r.pattern, match = r.match, flags = r.flags, where = w }, where)
  return { name = r.name or where, where = w, header = r.header and r.header:lower(),
    one = one, chunk = chunk, framed = framed, action = action, quarantine = q,
    reason = check_reason(r.reason or DEFAULT_REASON, where) }
end

-- ---- IndiMail's control file ---------------------------------------------

-- "regex:reason[:-header|-body[blackhole]]" -> regex, reason, where, discard.
-- As IndiMail's bodycheck.c: the split is at the last colons, so a regex
-- may hold colons; a line without a colon is its own reason.
function P.parse_line(line)
  local head, tail = line:match("^(.*):%s*(%-[a-z]+)$")
  local where, discard = "any", false
  if head and (tail == "-header" or tail == "-body" or tail == "-headerblackhole"
      or tail == "-bodyblackhole") then
    where = tail:match("^%-(header)") or "body"
    discard = tail:find("blackhole", 1, true) ~= nil
    line = head
  end
  local regex, reason = line:match("^(.*):(.*)$")
  if not regex or regex == "" then regex, reason = line, line end
  reason = reason:match("^%s*(.-)%s*$")
  if reason == "" then reason = DEFAULT_REASON end
  return regex, reason, where, discard
end

-- The rules of an IndiMail bodycheck file: POSIX extended regexes, matched
-- without regard to case (REG_ICASE), here through PCRE2 with "i".
local function read_file(path, action, q)
  local out, n = {}, 0
  for line in io.lines(path) do
    n = n + 1
    line = line:gsub("\r$", ""):gsub("%s+$", "")
    if line ~= "" and not line:find("^%s*#") then
      local regex, reason, where, discard = P.parse_line(line)
      local at = ("%s:%d"):format(path, n)
      out[#out + 1] = rule({ name = at, where = where, pattern = regex, match = "regex",
        flags = "i", action = discard and "discard" or action,
        reason = reason:gsub("[^\32-\126]", "?"):sub(1, REASON_MAX) }, at, q)
    end
  end
  return out
end

function P.setup(s)
  s = settings_check.check_keys("bodycheck", s, KNOWN)
  if s.quarantine ~= nil and (type(s.quarantine) ~= "string" or not s.quarantine:find("@")) then
    fail("quarantine must be the quarantine mailbox (an address)")
  end
  settings = { rules = {}, skip_authenticated = s.skip_authenticated == true }
  for i, r in ipairs(s.rules or {}) do
    settings.rules[#settings.rules + 1] = rule(r, "rules[" .. i .. "]", s.quarantine)
  end
  if s.file then
    local action = s.file_action or "reject"
    if not ACTIONS[action] then fail("file_action must be reject, quarantine, discard or tag") end
    for _, r in ipairs(read_file(s.file, action, s.quarantine)) do
      settings.rules[#settings.rules + 1] = r
    end
  end
  if #settings.rules == 0 then fail("no rules (rules = { ... } or file = PATH)") end
  if s.types ~= nil then
    if type(s.types) ~= "table" then fail("types must be a list of text/* types") end
    settings.filter_opts = { types = s.types }
  end
  return { message = P.message }
end

-- ---- the scan -------------------------------------------------------------

-- Rules of each kind of subject, in order: { header = {...}, body = ... }.
local function rules_for(where)
  local out = {}
  for _, r in ipairs(settings.rules) do
    if r.where == where or (r.where == "any" and (where == "header" or where == "body")) then
      out[#out + 1] = r
    end
  end
  return out
end

-- The scan's state: the rules already fired, the verdict rule, tags.
local function new_scan()
  return { fired = {}, tags = {} }
end

-- Records a match of rule r; true when it ends the scan (not a tag).
local function hit(scan, r, where)
  if scan.fired[r] then return false end
  scan.fired[r] = true
  if r.action == "tag" then
    scan.tags[#scan.tags + 1] = { r = r, where = where }
    return false
  end
  scan.verdict = { r = r, where = where }
  return true
end

local function scan_headers(scan, msg)
  local rules = rules_for("header")
  if #rules == 0 then return false end
  for _, h in ipairs(msg:headers()) do
    local name, line = h.name:lower(), h.name .. ": " .. h.value
    for _, r in ipairs(rules) do
      local subject = r.header and (r.header == name and h.value) or (not r.header and line)
      if subject and r.one(subject) and hit(scan, r, "header") then return true end
    end
  end
  return false
end

-- "\n" .. chunk .. "\n" when a Lua pattern rule needs line anchors.
local function body_subject(chunk)
  if chunk:sub(-1) == "\n" then return "\n" .. chunk end
  return "\n" .. chunk .. "\n"
end

local function scan_body(scan, msg)
  local rules = rules_for("body")
  if #rules == 0 then return false end
  local ok, err = pcall(msg.filter_body, msg, function(chunk)
    local framed
    for _, r in ipairs(rules) do
      if not scan.fired[r] then
        if r.framed then framed = framed or body_subject(chunk) end
        if r.chunk(chunk, framed) and hit(scan, r, "body") then error(STOP, 0) end
      end
    end
    return nil                       -- keep the chunk: a read-only scan
  end, settings.filter_opts)
  if not ok and err ~= STOP then error(err, 0) end
  return not ok
end

local function scan_filenames(scan, msg)
  local rules = rules_for("filename")
  if #rules == 0 then return false end
  for _, part in ipairs(msg:parts()) do
    if part.filename then
      for _, r in ipairs(rules) do
        if r.one(part.filename) and hit(scan, r, "filename") then return true end
      end
    end
  end
  return false
end

local function log(r, where)
  indimail.log("bodycheck", { rule = r.name, action = r.action, where = where, reason = r.reason })
end

local function verdict(tx, v)
  local r = v.r
  log(r, v.where)
  tx.notes.bodycheck = { rule = r.name, action = r.action, reason = r.reason }
  if r.action == "reject" then return indimail.reject(r.reason, 554, "5.7.1") end
  if r.action == "discard" then return indimail.discard() end
  return indimail.quarantine(r.quarantine, "bodycheck " .. r.name .. ": " .. r.reason)
end

function P.message(session, tx, msg)
  if settings.skip_authenticated and session.auth_user then return end
  local scan = new_scan()
  local _ = scan_headers(scan, msg) or scan_filenames(scan, msg) or scan_body(scan, msg)
  if scan.verdict then return verdict(tx, scan.verdict) end
  for _, t in ipairs(scan.tags) do
    log(t.r, t.where)
    msg:add_header(TAG_HEADER, t.r.name .. "/" .. t.r.reason)
  end
end

return P

-- dnsbl: DNS block lists (RFC 5782) at MAIL FROM. The client's address is
-- looked up in IP lists (reversed IPv4 octets or IPv6 nibbles + zone), the
-- sender's domain or the HELO name in domain lists (RHSBL); every list that
-- lists it adds its weight to a score. Over reject_above: 550 5.7.1 naming
-- the lists; over tempfail_above: 451 4.7.1; over tag_above: an X-DNSBL:
-- header at DATA. All lookups of a transaction are in flight at once
-- (indimail.dns.lookup_all) and go through the shared DNS cache.
-- A list that times out, fails or answers an error code (127.255.255.x,
-- 127.0.0.1, anything outside 127/8) counts as not listing (logged), unless
-- that list says on_error = "tempfail". Never checked: logged-in users,
-- relay clients, the `allow` networks. Logged: event=dnsbl ip= score=
-- lists= action=.
--
-- Example (docs/policies/dnsbl.md):
--   indimail.policy("dnsbl", {
--     lists = {
--       { zone = "zen.spamhaus.org", weight = 10, ipv6 = true,
--         match = { "127.0.0.2", "127.0.0.3", "127.0.0.4" },
--         reason = "%s is listed at https://check.spamhaus.org/" },
--       { zone = "bl.spamcop.net", weight = 5 },
--       { zone = "dbl.example.org", check = "sender", weight = 5 },
--     },
--     reject_above = 9, tag_above = 0,
--     allow = { "192.0.2.0/24", "2001:db8::/32" },
--   })
local match = require("match")
local address = require("address")

local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { lists = true, reject_above = true, tempfail_above = true, tag_above = true,
  allow = true }
local LIST_KNOWN = { zone = true, name = true, weight = true, match = true, mask = true,
  reason = true, check = true, ipv6 = true, on_error = true }
local CHECKS = { ip = true, sender = true, helo = true }
local REPLY_MAX = 400        -- characters of the 550's text (RFC 5321 4.5.3.1.5: 512 a line)
local HEADER = "X-DNSBL"
local MASKED = "00000000000000000000ffff"   -- match.ip's prefix of an IPv4 address

local function fail(fmt, ...) error("dnsbl: " .. fmt:format(...), 4) end

-- ---- settings ------------------------------------------------------------

-- "127.0.0.2" or a list of them -> a set; nil stays nil (any listing code).
local function code_set(m, where)
  if m == nil then return nil end
  if type(m) == "string" then m = { m } end
  if type(m) ~= "table" then fail("%s.match must be an address or a list of them", where) end
  local set = {}
  for _, a in ipairs(m) do
    if type(a) ~= "string" or not a:match("^127%.%d+%.%d+%.%d+$") then
      fail("%s.match: %s is not a 127.x.y.z return code", where, tostring(a))
    end
    set[a] = true
  end
  return set
end

local function check_number(v, name, default)
  if v == nil then return default end
  if type(v) ~= "number" then fail("%s must be a number", name) end
  return v
end

-- One entry of `lists`, checked, with its defaults.
local function list_entry(l, i)
  local where = "lists[" .. i .. "]"
  if type(l) ~= "table" then fail("%s must be a table", where) end
  for k in pairs(l) do
    if not LIST_KNOWN[k] then fail("%s: unknown setting %s", where, tostring(k)) end
  end
  if type(l.zone) ~= "string" or not l.zone:match("^[%w%-_]+%.[%w%-_.]*%w$") then
    fail("%s.zone must be a DNS zone such as zen.spamhaus.org", where)
  end
  local check = l.check or "ip"
  if not CHECKS[check] then fail("%s.check must be ip, sender or helo", where) end
  local on_error = l.on_error or "pass"
  if on_error ~= "pass" and on_error ~= "tempfail" then fail("%s.on_error must be pass or tempfail", where) end
  local mask = check_number(l.mask, where .. ".mask", nil)
  if mask and (mask < 1 or mask > 255 or mask % 1 ~= 0) then fail("%s.mask must be 1 to 255", where) end
  if l.reason ~= nil and (type(l.reason) ~= "string" or l.reason:find("[\r\n]")) then
    fail("%s.reason must be one line of text", where)
  end
  return { zone = l.zone:lower(), name = l.name or l.zone:lower(), check = check,
    weight = check_number(l.weight, where .. ".weight", 1), codes = code_set(l.match, where),
    mask = mask, reason = l.reason, ipv6 = l.ipv6 == true, on_error = on_error }
end

function P.setup(s)
  s = settings_check.check_keys("dnsbl", s, KNOWN)
  if type(s.lists) ~= "table" or #s.lists == 0 then fail("lists must name at least one list") end
  settings = { lists = {},
    reject_above = check_number(s.reject_above, "reject_above", 0),
    tempfail_above = check_number(s.tempfail_above, "tempfail_above", nil),
    tag_above = check_number(s.tag_above, "tag_above", 0),
    allow = match.from("cidr", s.allow or {}) }
  for i, l in ipairs(s.lists) do settings.lists[i] = list_entry(l, i) end
  return { mail = P.mail, data = P.data }
end

-- ---- names to look up ----------------------------------------------------

-- The reversed form of an address (RFC 5782 2.1, 2.4) and its family, or nil:
-- "192.0.2.99" -> "99.2.0.192", 4; "2001:db8::1" -> "1.0.0.0....8.b.d.0.1.0.0.2", 6.
function P.reverse(ip)
  local hex = ip and match.ip(ip)
  if not hex then return nil end
  if hex:sub(1, 24) == MASKED then
    local v = tonumber(hex:sub(25), 16)
    return ("%d.%d.%d.%d"):format(v & 255, (v >> 8) & 255, (v >> 16) & 255, v >> 24), 4
  end
  return hex:reverse():gsub(".", "%0."):sub(1, -2), 6
end

-- A domain worth asking a domain list about (a name with a dot), or nil.
local function domain_key(d)
  if not d or d == "" or d:find("^%[") or not d:find("%.") then return nil end
  d = d:lower():gsub("%.$", "")
  if not d:match("^[%w%-_.]+$") then return nil end
  return d
end

-- What list l looks up in this transaction (nil: not asked).
local function key_for(l, who)
  if l.check == "ip" then
    if who.family == 6 and not l.ipv6 then return nil end
    return who.reversed
  end
  return who[l.check]
end

-- ---- answers -------------------------------------------------------------

-- An answer that is an error code, not a listing (RFC 5782 2.1, 5; Spamhaus'
-- 127.255.255.x "refused / public resolver / rate limited").
local function error_code(a)
  return not a:match("^127%.%d+%.%d+%.%d+$") or a == "127.0.0.1" or a:match("^127%.255%.255%.")
end

local function code_matches(l, a)
  if l.codes then return l.codes[a] == true end
  if l.mask then return (tonumber(a:match("(%d+)$")) & l.mask) ~= 0 end
  return true
end

-- A list's result: "hit", "none" or "error" (and the error).
function P.classify(l, r)
  if r.answers == nil then return "error", r.status end
  for _, a in ipairs(r.answers) do
    if error_code(a) then return "error", "answer " .. a end
  end
  for _, a in ipairs(r.answers) do
    if code_matches(l, a) then return "hit" end
  end
  return "none"
end

-- ---- the verdict ---------------------------------------------------------

local function log(who, fields)
  fields.ip = who.ip
  indimail.log("dnsbl", fields)
end

-- The 550's text: each list's reason (or "listed by ZONE"), bounded.
local function reply_text(who, hits)
  local why = {}
  for _, l in ipairs(hits) do
    why[#why + 1] = l.reason and l.reason:gsub("%%s", who.ip) or ("listed by " .. l.name)
  end
  local text = ("Client %s blocked: %s"):format(who.ip, table.concat(why, "; "))
  if #text > REPLY_MAX then text = text:sub(1, REPLY_MAX - 3) .. "..." end
  return text
end

-- Score and names of the lists that list the client; whether to tempfail.
function P.score(who, results)
  local score, hits, names, tempfail = 0, {}, {}, false
  for _, q in ipairs(who.queries) do
    local l = q.list
    local kind, err = P.classify(l, results[q.index])
    if kind == "hit" then
      score = score + l.weight
      hits[#hits + 1], names[#names + 1] = l, l.name
    elseif kind == "error" then
      log(who, { list = l.name, error = err, on_error = l.on_error, action = "error" })
      tempfail = tempfail or l.on_error == "tempfail"
    end
  end
  return score, hits, table.concat(names, ","), tempfail
end

-- The verdict for a score (nil: the mail goes on, tagged or not).
local function verdict(who, tx, score, hits, lists, tempfail)
  local s = settings
  local function done(action) log(who, { score = score, lists = lists, action = action }) end
  if score > s.reject_above and #hits > 0 then
    done("reject")
    return indimail.reject(reply_text(who, hits), 550, "5.7.1")
  end
  if tempfail or (s.tempfail_above and score > s.tempfail_above and #hits > 0) then
    done("tempfail")
    return indimail.tempfail("Client " .. who.ip .. " could not be checked against DNS block lists, try again later",
      451, "4.7.1")
  end
  if score > s.tag_above and #hits > 0 then
    tx.notes.dnsbl = { score = score, lists = lists }
    return done("tag")
  end
  done("pass")
end

-- The client: address, reversed form, and the domains of the domain lists.
local function who_is(session, tx)
  local reversed, family = P.reverse(session.ip)
  return { ip = session.ip, reversed = reversed, family = family,
    sender = domain_key(address.domain(tx.sender)), helo = domain_key(session.helo) }
end

-- The names to ask, one query per distinct name: who.queries, the names.
local function plan(who)
  local names, index = {}, {}
  who.queries = {}
  for _, l in ipairs(settings.lists) do
    local key = key_for(l, who)
    if key then
      local name = key .. "." .. l.zone
      if not index[name] then names[#names + 1] = name; index[name] = #names end
      who.queries[#who.queries + 1] = { list = l, index = index[name] }
    end
  end
  return names
end

local function exempt(session)
  return session.auth_user or session.relay or not session.ip or session.ip == ""
    or settings.allow:match(session.ip)
end

function P.mail(session, tx)
  if exempt(session) then return end
  local who = who_is(session, tx)
  local names = plan(who)
  if #names == 0 then return end
  local results = indimail.dns.lookup_all(names)
  return verdict(who, tx, P.score(who, results))
end

-- A tagged transaction gets X-DNSBL: (the client's own is removed first).
function P.data(_, tx, msg)
  local t = tx.notes.dnsbl
  msg:remove_header(HEADER)
  if t then msg:add_header(HEADER, ("score=%s lists=%s"):format(t.score, t.lists)) end
end

return P

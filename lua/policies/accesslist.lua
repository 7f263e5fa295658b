-- accesslist: who may send to whom (IndiMail's control/accesslist). A
-- "from" rule restricts a sender to the recipients it lists; a "rcpt" rule
-- restricts a recipient to the senders it lists. Checked at RCPT: 553 5.7.1
-- for a sender outside its from-rules, 550 5.7.1 for a recipient whose
-- rcpt-rules do not list the sender, each with event=accesslist naming the
-- rule. The null sender and postmaster@/abuse@ are never restricted (RFC
-- 5321, as IndiMail). docs/policies/accesslist.md.
--
-- Example:
--   indimail.policy("accesslist", {
--     file = "etc/control/accesslist",   -- lines type:sender:recipient
--     from = { ["recruiter@yahoo.com"] = { "hr@indimail.org" } },
--     rcpt = { ["all@indimail.org"] = { "ceo@indimail.org", "@board.indimail.org" } },
--     regex = false,                      -- true: patterns are PCRE2 (QREGEX)
--   })
-- Keys and peers: an address (a hash), "@domain" (a hash), or a wildmat
-- (a scan: keep them few); with regex = true, anything with a regex
-- metacharacter is a regex.
local match = require("match")
local tables = require("tables")

local P = {}
local sides

-- One direction's rules: keys (what the rule is about) and allowed peers.
local function new_side()
  return { exact = match.new("exact"), domain = match.new("domain"), patterns = {},
    pairs = match.new("exact"), peerpat = {}, where = {} }
end

local function is_pattern(s, regex)
  if regex then return s:find("[%^%$%*%+%?%(%)%[%]{}|\\]") ~= nil end
  return s:find("[%*%?%[]") ~= nil
end

local function pattern_matcher(regex)
  return regex and match.new("regex", { flags = "i" }) or match.new("wildmat")
end

-- The rule's key K for a key as written; registers it on first sight.
local function add_key(side, key, where, regex)
  if is_pattern(key, regex) then
    local K = key
    if not side.where[K] then
      local m = pattern_matcher(regex):add(key, K, where)
      side.patterns[#side.patterns + 1] = { m = m, K = K }
    end
    side.where[K] = side.where[K] or where
    return K
  end
  local K = key:lower()
  if K:byte(1) == 64 then side.domain:add(K:sub(2), K, where)   -- '@'
  else side.exact:add(K, K, where) end
  side.where[K] = side.where[K] or where
  return K
end

local function add_peer(side, K, peer, where, regex)
  if peer == "" then error(where .. ": empty address in accesslist rule", 0) end
  if is_pattern(peer, regex) then
    side.peerpat[K] = side.peerpat[K] or pattern_matcher(regex)
    side.peerpat[K]:add(peer, true, where)
  else
    side.pairs:add(K .. "\n" .. peer:lower(), true, where)
  end
end

local function add_rule(kind, key, peer, where, regex)
  local side = sides[kind]
  if not side then error(("%s: unknown rule type '%s' (from or rcpt)"):format(where, kind), 0) end
  if key == "" then error(where .. ": empty address in accesslist rule", 0) end
  add_peer(side, add_key(side, key, where, regex), peer, where, regex)
end

-- IndiMail lines: type:sender:recipient (split at the first two colons).
local function load_file(path, regex)
  for _, row in ipairs(tables.rows(path)) do
    local v = type(row.value) == "string" and row.value or ""
    local a, b = v:match("^([^:]*):(.*)$")
    if not a then error(row.where .. ": expected type:sender:recipient", 0) end
    if row.key == "from" then add_rule("from", a, b, row.where, regex)
    else add_rule(row.key, b, a, row.where, regex) end
  end
end

-- Lua form: from = { [sender] = { recipient, ... } }, rcpt = { [recipient] = { sender, ... } }.
local function load_table(kind, t, regex)
  if type(t) ~= "table" then error(("accesslist: %s must be a table"):format(kind), 0) end
  for key, peers in pairs(t) do
    if type(peers) == "string" then peers = { peers } end
    if type(key) ~= "string" or type(peers) ~= "table" then
      error(("accesslist: %s[%s] must map an address to a list"):format(kind, tostring(key)), 0)
    end
    for i, peer in ipairs(peers) do
      add_rule(kind, key, peer, ("%s[%q][%d]"):format(kind, key, i), regex)
    end
  end
end

local function build(s)
  for k in pairs(s) do
    if k ~= "file" and k ~= "from" and k ~= "rcpt" and k ~= "regex" then
      error("accesslist: unknown setting " .. tostring(k), 0)
    end
  end
  sides = { from = new_side(), rcpt = new_side() }
  local files = type(s.file) == "table" and s.file or { s.file }
  for _, f in ipairs(files) do load_file(f, s.regex) end
  if s.from then load_table("from", s.from, s.regex) end
  if s.rcpt then load_table("rcpt", s.rcpt, s.regex) end
end

function P.setup(s)
  local ok, err = pcall(build, s or {})
  if not ok then error(err, 2) end
  return { rcpt = P.rcpt }
end

-- The keys of side whose rules are about address a (hash hits, then the
-- scan), or nil: no table is made for an address without rules (most).
local function keys_of(side, a)
  local k, ks = side.exact:lookup(a), nil
  if k then ks = { k } end
  k = a:find("@", 1, true) and side.domain:lookup(a)
  if k then ks = ks or {}; ks[#ks + 1] = k end
  for _, p in ipairs(side.patterns) do
    if p.m:match(a) then ks = ks or {}; ks[#ks + 1] = p.K end
  end
  return ks
end

local function allows(side, K, peer)
  local l = peer:lower()
  if side.pairs:match(K .. "\n" .. l) then return true end
  local at = l:find("@", 1, true)
  if at and side.pairs:match(K .. "\n" .. l:sub(at)) then return true end
  return side.peerpat[K] ~= nil and side.peerpat[K]:match(peer)
end

-- nil when address a has no rule on side, else the refused key (or false).
local function refused_by(side, a, peer)
  local ks = keys_of(side, a)
  if not ks then return nil end
  for _, K in ipairs(ks) do
    if allows(side, K, peer) then return false end
  end
  return ks[1]
end

local function exempt(sender, rcpt)
  if sender == "" then return true end
  local user = rcpt:match("^(.*)@") or rcpt
  user = user:lower()
  return user == "postmaster" or user == "abuse"
end

local function refuse(session, tx, rcpt, kind, K, text, code)
  indimail.log("accesslist", { rule = kind .. ":" .. K, where = sides[kind].where[K],
    sender = tx.sender, rcpt = rcpt, ip = session.ip })
  return indimail.reject(text, code, "5.7.1")
end

-- RCPT: the sender's from-rules, then the recipient's rcpt-rules.
function P.rcpt(session, tx, rcpt)
  local sender = tx.sender or ""
  if exempt(sender, rcpt) then return end
  local K = refused_by(sides.from, sender, rcpt)
  if K then
    return refuse(session, tx, rcpt, "from", K,
      ("Sender <%s> may not send to <%s> (accesslist)"):format(sender, rcpt), 553)
  end
  K = refused_by(sides.rcpt, rcpt, sender)
  if K then
    return refuse(session, tx, rcpt, "rcpt", K,
      ("Recipient <%s> does not accept mail from <%s> (accesslist)"):format(rcpt, sender), 550)
  end
end

return P

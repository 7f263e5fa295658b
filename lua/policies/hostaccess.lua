-- hostaccess: which client addresses may send mail whose envelope sender
-- claims a domain (IndiMail's control/hostaccess, lines domain:ip-range).
-- A domain with lines may only be used from the ranges listed for it
-- (IPv4/IPv6 CIDR, a bare address, IndiMail's octet ranges such as
-- 192.0.2.10-20, or * for anywhere); "*:range" lets a range use any domain.
-- Others get 553 5.7.1 at MAIL and event=hostaccess naming the rule.
-- Logged-in users are not checked (the login says who sends).
-- docs/policies/hostaccess.md.
--
-- Example:
--   indimail.policy("hostaccess", {
--     file = "etc/control/hostaccess",
--     domains = { ["example.com"] = { "192.0.2.0/24", "2001:db8:1::/48" } },
--   })
local match = require("match")
local tables = require("tables")

local P = {}
local by_domain, anydomain, where_of

local MAX_EXPANSION = 65536

-- "a.b-c.d.e" (IndiMail octet ranges) -> list of addresses; nil if not one.
local function octet_range(s)
  local parts = {}
  for p in (s .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = p end
  if #parts ~= 4 or not s:find("-", 1, true) then return nil end
  local out = { "" }
  for i, p in ipairs(parts) do
    local lo, hi = p:match("^(%d+)%-(%d+)$")
    lo, hi = tonumber(lo or p:match("^%d+$")), tonumber(hi or p:match("^%d+$"))
    if not lo or not hi or lo > hi or hi > 255 then return nil end
    if #out * (hi - lo + 1) > MAX_EXPANSION then return nil end
    local nxt = {}
    for _, pre in ipairs(out) do
      for n = lo, hi do nxt[#nxt + 1] = pre .. (i > 1 and "." or "") .. n end
    end
    out = nxt
  end
  return out
end

-- Adds one range ("*", CIDR, address or octet range) to a cidr matcher.
local function add_range(m, range, where)
  if range == "*" then
    m:add("0.0.0.0/0", true, where)
    return m:add("::/0", true, where)
  end
  local list = octet_range(range)
  if not list then return m:add(range, true, where) end
  for _, a in ipairs(list) do m:add(a, true, where) end
  return m
end

local function add_rule(domain, range, where)
  if domain == "" or range == "" then error(where .. ": expected domain:ip-range", 0) end
  if domain == "*" then return add_range(anydomain, range, where) end
  domain = domain:lower()
  local m = by_domain:lookup(domain)
  if not m or where_of[m] == nil or m.domain_key ~= domain then
    m = match.new("cidr")
    m.domain_key = domain
    by_domain:add(domain, m, where)
    where_of[m] = where
  end
  add_range(m, range, where)
end

local function build(s)
  for k in pairs(s) do
    if k ~= "file" and k ~= "domains" then error("hostaccess: unknown setting " .. tostring(k), 0) end
  end
  by_domain, anydomain, where_of = match.new("domain"), match.new("cidr"), {}
  local files = type(s.file) == "table" and s.file or { s.file }
  for _, f in ipairs(files) do
    for _, row in ipairs(tables.rows(f)) do
      add_rule(row.key, type(row.value) == "string" and row.value or "", row.where)
    end
  end
  for domain, ranges in pairs(s.domains or {}) do
    if type(ranges) == "string" then ranges = { ranges } end
    for i, r in ipairs(ranges) do add_rule(domain, r, ("domains[%q][%d]"):format(domain, i)) end
  end
end

function P.setup(s)
  local ok, err = pcall(build, s or {})
  if not ok then error(err, 2) end
  return { mail = P.mail }
end

-- MAIL: the sender's domain, if listed, must come from one of its ranges.
function P.mail(session, tx)
  local sender, ip = tx.sender or "", session.ip or ""
  if sender == "" or ip == "" or session.auth_user or not sender:find("@", 1, true) then return end
  if anydomain:match(ip) then return end
  local ranges = by_domain:lookup(sender)
  if not ranges or ranges:match(ip) then return end
  local domain = match.domain_of(sender)
  indimail.log("hostaccess", { rule = ranges.domain_key, where = where_of[ranges],
    sender = sender, ip = ip })
  return indimail.reject(("Sender domain %s may not be used from your address [%s] (hostaccess)")
    :format(domain, ip), 553, "5.7.1")
end

return P

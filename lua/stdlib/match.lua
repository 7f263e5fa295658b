-- match: matchers for policy tables (docs/lua.md "Tables and matchers").
--
--   local match = require("match")
--   local hosts = match.domain({ "example.com", ".example.net" })
--   if hosts:match("mx.example.net") then ... end
--
-- Every matcher has :add(key [, value [, where]]), :lookup(s) (the value,
-- true by default, or nil), :match(s) (a boolean) and :size(). Kinds:
--   exact    hash of keys, case-insensitive unless opts.case       O(1)
--   domain   "example.com" itself, ".example.com" any subdomain   O(labels)
--   cidr     IPv4/IPv6 prefixes, longest prefix wins    O(prefix lengths)
--   wildmat  INN/qmail "*", "?", "[a-z]", "[^x]", "\\*"; "!pat" negates;
--            the last matching pattern decides           scan of the list
--   pattern  Lua patterns, the first match wins          scan of the list
--   regex    PCRE2 through indimail.regex.compile        scan of the list
-- A bad entry raises "WHERE: bad KIND 'entry': why" (WHERE: file:line
-- from the table loaders, "entry N" otherwise).
local M = {}

local function bad(kind, key, where, why)
  error(("%s: bad %s '%s': %s"):format(where or "entry", kind, key, why), 0)
end

-- The domain of an address ("a@b.example" -> "b.example"), lower case,
-- without a trailing dot; a bare domain is returned the same way.
-- The domain of s (low: s is lower case already).
local function domain_part(s, low)
  local at = s:find("@", 1, true)   -- the last '@' (plain finds: no pattern per call)
  while at do
    local nxt = s:find("@", at + 1, true)
    if not nxt then s = s:sub(at + 1); break end
    at = nxt
  end
  if not low then s = s:lower() end
  if s:byte(-1) == 46 then s = s:sub(1, -2) end   -- '.'
  return s
end

function M.domain_of(s) return domain_part(s) end

-- ---- IP addresses: IPv4 as a 32-bit integer, IPv6 as 32 hex digits ------

-- "a.b.c.d" -> integer, or nil (no leading zeros, as inet_pton).
local function v4int(s)
  local a, b, c, d = s:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 or s:find("%f[%d]0%d") then return nil end
  return (a << 24) | (b << 16) | (c << 8) | d
end

local function groups(s, out)
  if s == "" then return out end
  for g in (s .. ":"):gmatch("([^:]*):") do
    if not g:match("^%x%x?%x?%x?$") then return nil end
    out[#out + 1] = ("%04x"):format(tonumber(g, 16))
  end
  return out
end

local function parse6(s)
  local head, v4 = s:match("^(.*:)(%d+%.%d+%.%d+%.%d+)$")
  local tail = v4 and v4int(v4)
  if v4 and not tail then return nil end
  if v4 then s = head .. "0:0" end
  local l, r = s:match("^(.-)::(.*)$")
  local g
  if l then
    if r:find("::", 1, true) then return nil end
    local left, right = groups(l, {}), groups(r, {})
    if not left or not right or #left + #right > 7 then return nil end
    g = left
    for _ = 1, 8 - #left - #right do g[#g + 1] = "0000" end
    for _, x in ipairs(right) do g[#g + 1] = x end
  else
    g = groups(s, {})
    if not g or #g ~= 8 then return nil end
  end
  local hex = table.concat(g)
  return tail and hex:sub(1, 24) .. ("%08x"):format(tail) or hex
end

local MAPPED = "00000000000000000000ffff"

-- An address (bare, or "[...]" / "[IPv6:...]" as in an address literal) ->
-- 4, integer or 6, 32 hex digits; an IPv4-mapped IPv6 address is IPv4.
local function addr(s)
  if s:byte(1) == 91 then   -- '['
    s = s:match("^%[(.*)%]$") or s
    s = s:match("^[Ii][Pp][Vv]6:(.*)$") or s
  end
  local v = v4int(s)
  if v then return 4, v end
  local hex = s:find(":", 1, true) and parse6(s:lower())
  if not hex then return nil end
  if hex:sub(1, 24) == MAPPED then return 4, tonumber(hex:sub(25), 16) end
  return 6, hex
end

-- An address -> 32 lower-case hex digits (IPv4 as ::ffff:a.b.c.d), or nil.
function M.ip(s)
  local fam, v = addr(s)
  if fam == 4 then return MAPPED .. ("%08x"):format(v) end
  return v
end

-- The first `bits` bits of an address as a key, host bits cleared.
local function prefix_key(fam, v, bits)
  if fam == 4 then return bits == 0 and 0 or v >> (32 - bits) end
  local n, rest = bits // 4, bits % 4
  if rest == 0 then return v:sub(1, n) end
  local nib = tonumber(v:sub(n + 1, n + 1), 16) & (0xf << (4 - rest)) & 0xf
  return v:sub(1, n) .. ("%x"):format(nib)
end

-- "addr[/bits]" -> family, address, bits; or nil, why. An IPv6 prefix
-- inside ::ffff:0:0/96 is the IPv4 prefix it maps.
function M.parse_cidr(s)
  local a, bits = s:match("^([^/]+)/(%d+)$")
  a = a or s
  if a:byte(1) == 91 then return nil, "not an IP address" end
  local fam, v = addr(a)
  if not fam then return nil, "not an IP address" end
  local max = (fam == 4 and not a:find(":", 1, true)) and 32 or 128
  if not bits and s:find("/", 1, true) then return nil, "bad prefix length" end
  bits = bits and tonumber(bits) or max
  if bits > max then return nil, "prefix length over " .. max end
  if fam == 4 and max == 128 then
    if bits < 96 then return nil, "prefix over ::ffff:0:0/96 (IPv4-mapped)" end
    bits = bits - 96
  end
  return fam, v, bits
end

-- ---- wildmat -----------------------------------------------------------

local function lit(c)
  return c:match("%w") and c or "%" .. c
end

-- A "[...]" set starting at i (just after "["): Lua class, next index.
local function wild_set(p, i, key, where)
  local out, first = { "[" }, true
  if p:sub(i, i) == "^" or p:sub(i, i) == "!" then
    out[2], i = "^", i + 1
  end
  while i <= #p do
    local c = p:sub(i, i)
    if c == "]" and not first then return table.concat(out) .. "]", i + 1 end
    if c == "\\" then i = i + 1; c = p:sub(i, i) end
    if p:sub(i + 1, i + 1) == "-" and p:sub(i + 2, i + 2) ~= "]" and i + 2 <= #p then
      local hi = p:sub(i + 2, i + 2)
      if not (c:match("%w") and hi:match("%w")) or hi < c then
        bad("wildmat", key, where, "bad range " .. c .. "-" .. hi)
      end
      out[#out + 1], i = c .. "-" .. hi, i + 3
    else
      out[#out + 1], i = lit(c), i + 1
    end
    first = false
  end
  bad("wildmat", key, where, "unclosed [")
end

-- Splits a wildmat at its stars into fixed-length Lua patterns.
local function wild_segments(p, key, where)
  local segs, cur, i = {}, {}, 1
  while i <= #p do
    local c = p:sub(i, i)
    if c == "*" then
      segs[#segs + 1], cur = table.concat(cur), {}
    elseif c == "?" then cur[#cur + 1] = "."
    elseif c == "[" then
      cur[#cur + 1], i = wild_set(p, i + 1, key, where)
      goto next
    elseif c == "\\" then
      if i == #p then bad("wildmat", key, where, "trailing \\") end
      i = i + 1
      cur[#cur + 1] = lit(p:sub(i, i))
    else cur[#cur + 1] = lit(c) end
    i = i + 1
    ::next::
  end
  segs[#segs + 1] = table.concat(cur)
  return segs
end

-- A compiled wildmat: { whole = "^...$" } without a star, else the
-- anchored head (nil when the wildmat starts with a star), the non-empty
-- middle segments and the anchored tail (nil when it ends with a star),
-- so that a match builds no string and "*x*" is one search. A middle
-- segment without ? or [...] is searched as plain text (no pattern engine).
local function wild_compile(p, key, where)
  local segs = wild_segments(p, key, where)
  local n = #segs
  if n == 1 then return { whole = "^" .. segs[1] .. "$" } end
  local mids, plain = {}, {}
  for k = 2, n - 1 do
    local seg = segs[k]
    if seg ~= "" then
      local literal = not seg:gsub("%%%p", ""):find("%W")   -- only lit() output
      mids[#mids + 1] = literal and seg:gsub("%%(%p)", "%1") or seg
      plain[#mids] = literal
    end
  end
  return { head = segs[1] ~= "" and "^" .. segs[1] or nil, mids = mids, plain = plain,
    tail = segs[n] ~= "" and segs[n] .. "$" or nil }
end

-- Glob matching with fixed-length segments: greedy leftmost, O(n * m).
local function wild_match(w, s)
  if w.whole then return s:find(w.whole) ~= nil end
  local pos = 1
  if w.head then
    local _, e = s:find(w.head)
    if not e then return false end
    pos = e + 1
  end
  local mids, plain = w.mids, w.plain
  for k = 1, #mids do
    local _, e = s:find(mids[k], pos, plain[k])
    if not e then return false end
    pos = e + 1
  end
  return w.tail == nil or s:find(w.tail, pos) ~= nil
end

-- Does s match the wildmat p (case-sensitive)? Errors on a bad pattern.
-- Compiles p on every call: for a pattern used again, M.wildmat_compile.
function M.wildmat_match(p, s)
  return wild_match(wild_compile(p, p), s)
end

-- p compiled once (errors name `where`): a function(s) -> boolean,
-- case-sensitive, for a rule checked on every message.
function M.wildmat_compile(p, where)
  local w = wild_compile(p, p, where)
  return function(s) return wild_match(w, s) end
end

-- ---- the kinds ---------------------------------------------------------

local kinds = {}

-- s as the matcher compares it (low: s is lower case already).
local function fold(self, s, low)
  return (self.case or low) and s or s:lower()
end

-- Each kind's lookup(self, s, low): low as fold's.
kinds.exact = {
  add = function(self, key, value) self.map[fold(self, key)] = value end,
  lookup = function(self, s, low) return self.map[fold(self, s, low)] end,
}

kinds.domain = {
  add = function(self, key, value, where)
    local d = M.domain_of(key)
    if d == "" or d == "." or d:find("..", 1, true) or d:byte(-1) == 46 then
      bad("domain", key, where, "empty label")
    end
    if d:sub(1, 1) == "." then self.sub[d:sub(2)], self.has_sub = value, true
    else self.map[d] = value end
  end,
  lookup = function(self, s, low)
    local d = domain_part(s, low)
    local v = self.map[d]
    if v ~= nil or not self.has_sub then return v end   -- no ".domain" entry: no walk
    for i = 1, 127 do   -- a.b.example.com -> b.example.com -> example.com
      d = d:match("^[^.]*%.(.+)$")
      if not d then return nil end
      v = self.sub[d]
      if v ~= nil then return v end
    end
  end,
}

-- Per family, one hash per prefix length: longest first, O(lengths).
kinds.cidr = {
  add = function(self, key, value, where)
    local fam, v, bits = M.parse_cidr(key)
    if not fam then bad("cidr", key, where, v) end
    local byb, lengths = self.bits[fam], self.lengths[fam]
    if not byb[bits] then
      byb[bits] = {}
      lengths[#lengths + 1] = bits
      table.sort(lengths, function(a, b) return a > b end)
    end
    byb[bits][prefix_key(fam, v, bits)] = value
  end,
  lookup = function(self, s)
    local fam, v = addr(s)
    if not fam then return nil end
    local byb = self.bits[fam]
    for _, bits in ipairs(self.lengths[fam]) do
      local hit = byb[bits][prefix_key(fam, v, bits)]
      if hit ~= nil then return hit end
    end
  end,
}

kinds.wildmat = {
  add = function(self, key, value, where)
    local neg = key:sub(1, 1) == "!"
    local p = fold(self, neg and key:sub(2) or key)
    self.list[#self.list + 1] = { w = wild_compile(p, key, where), neg = neg, value = value }
  end,
  lookup = function(self, s, low)
    s = fold(self, s, low)
    for i = #self.list, 1, -1 do
      local e = self.list[i]
      if wild_match(e.w, s) then
        if e.neg then return nil end
        return e.value
      end
    end
  end,
}

-- Lua checks a pattern lazily, as far as a match gets: check it whole.
local function pattern_check(p)
  local depth, i = 0, 1
  while i <= #p do
    local c = p:sub(i, i)
    if c == "%" then
      local d = p:sub(i + 1, i + 1)
      if d == "" then return "ends with '%'" end
      if d == "b" and #p < i + 3 then return "missing arguments to '%b'" end
      if d == "f" and p:sub(i + 2, i + 2) ~= "[" then return "missing '[' after '%f'" end
      i = i + (d == "b" and 4 or 2)
    elseif c == "[" then
      local j = i + 1
      if p:sub(j, j) == "^" then j = j + 1 end
      j = j + 1                       -- a ']' first is literal
      while j <= #p and p:sub(j, j) ~= "]" do
        j = j + (p:sub(j, j) == "%" and 2 or 1)
      end
      if j > #p then return "missing ']'" end
      i = j + 1
    else
      if c == "(" then depth = depth + 1 elseif c == ")" then depth = depth - 1 end
      if depth < 0 then return "unbalanced ')'" end
      i = i + 1
    end
  end
  return depth ~= 0 and "unfinished capture" or nil
end

kinds.pattern = {
  add = function(self, key, value, where)
    local why = pattern_check(key)
    if why then bad("pattern", key, where, why) end
    local ok, err = pcall(string.find, "", key)
    if not ok then bad("pattern", key, where, (tostring(err):gsub("^.-:%d+: ", ""))) end
    self.list[#self.list + 1] = { p = key, value = value }
  end,
  lookup = function(self, s)
    for _, e in ipairs(self.list) do
      if s:find(e.p) then return e.value end
    end
  end,
}

kinds.regex = {
  add = function(self, key, value, where)
    local ok, re = pcall(self.compile, key, self.flags)
    if not ok or not re then
      local why, prefix = tostring(re), "bad regex '" .. key .. "': "
      if why:sub(1, #prefix) == prefix then why = why:sub(#prefix + 1) end
      bad("regex", key, where, why)
    end
    self.list[#self.list + 1] = { re = re, value = value }
  end,
  lookup = function(self, s)
    for _, e in ipairs(self.list) do
      if e.re:find(s) then return e.value end
    end
  end,
}

local Matcher = {}
Matcher.__index = Matcher

function Matcher:add(key, value, where)
  if type(key) ~= "string" then
    bad(self.kind, tostring(key), where, "not a string")
  end
  if value == nil then value = true end
  self.impl.add(self, key, value, where)
  self.n = self.n + 1
  return self
end

function Matcher:lookup(s)
  if self.n == 0 or type(s) ~= "string" then return nil end   -- empty: no work per message
  return self.impl.lookup(self, s)
end

-- lookup(s) for a string s the caller has lower-cased already: a
-- case-insensitive matcher skips folding it, so several lookups of one
-- address on every message share one s:lower().
function Matcher:lookup_lower(s)
  if self.n == 0 then return nil end
  return self.impl.lookup(self, s, true)
end

function Matcher:match(s) return self:lookup(s) ~= nil end
function Matcher:size() return self.n end

local function default_compile()
  local rx = indimail and indimail.regex
  if not rx then
    error("regex: indimail.regex is not available (opts.compile)", 0)
  end
  return rx.compile
end

-- An empty matcher of a kind; opts: case (exact/wildmat keep case), flags
-- and compile (regex: PCRE2 flags such as "i"; the compile function).
function M.new(kind, opts)
  opts = opts or {}
  local impl = kinds[kind]
  if not impl then error("match: unknown kind '" .. tostring(kind) .. "'", 2) end
  local self = setmetatable({ kind = kind, impl = impl, n = 0, case = opts.case,
    map = {}, sub = {}, bits = { [4] = {}, [6] = {} },
    lengths = { [4] = {}, [6] = {} }, list = {}, flags = opts.flags }, Matcher)
  if kind == "regex" then self.compile = opts.compile or default_compile() end
  return self
end

local function fill(kind, entries, opts)
  local m = M.new(kind, opts)
  for i, key in ipairs(entries) do m:add(key, true, "entry " .. i) end
  for key, value in pairs(entries) do
    if math.type(key) ~= "integer" or key < 1 or key > #entries then
      m:add(key, value, "entry " .. tostring(key))
    end
  end
  return m
end

-- A matcher from a list of keys ({ "a", "b" }: value true) and/or a map
-- ({ ["a"] = value }). Lists keep their order (wildmat, pattern, regex).
-- A bad entry's error also names the caller's FILE:LINE.
function M.from(kind, entries, opts)
  local ok, m = pcall(fill, kind, entries, opts)
  if not ok then error(m, 2) end
  return m
end

for kind in pairs(kinds) do
  M[kind] = function(entries, opts)
    local ok, m = pcall(fill, kind, entries, opts)
    if not ok then error(m, 2) end
    return m
  end
end

return M

-- addrlist: qmail/IndiMail address and host lists (badmailfrom, badrcptto,
-- badhelo, relaymailfrom, chkrcptdomains...) over the matchers of match.lua
-- (docs/policies/badmailfrom.md has the formats).
--
--   local addrlist = require("addrlist")
--   local bad = addrlist.load({ file = "etc/control/badmailfrom",
--                               entries = { "@spam.example" } })
--   local hit = bad:lookup("joe@spam.example")  --> { text = "@spam.example", where = "entry 1" }
--
-- An entry is, in address lists: "joe@example.com" (that address, any
-- case: a hash), "@example.com" (every address at that domain: a hash),
-- "@.example.com" (every address at its subdomains), a wildmat when it has
-- * ? or [ ("!pattern" excludes; the last matching pattern decides), or,
-- with opts.regex (IndiMail's QREGEX), a PCRE2 regex, "!re" meaning "does
-- not match". Host lists (opts.host, for HELO names) take "host.example",
-- ".example" (subdomains), wildmats and regexes. Only wildmats and regexes
-- are scanned; everything else costs the same whatever the list's size.
local match = require("match")
local tables = require("tables")
local A = {}

local List = {}
List.__index = List

-- A wildmat: "!" first, or * ? [ outside an address literal at the end
-- ("joe@[192.0.2.1]", "[IPv6:2001:db8::1]" are literal).
local function wild(s)
  if s:byte(1) == 33 then return true end   -- '!'
  local rest = s:gsub("%[[%w:.]*[.:][%w:.]*%]$", "")
  return rest:find("[%*%?%[]") ~= nil
end

-- Adds one entry; where says where it was written (for errors and logs).
function List:add(entry, where)
  local v = { text = entry, where = where }
  if self.regex then
    local neg = entry:byte(1) == 33 and #entry > 1
    local m = match.regex({ [neg and entry:sub(2) or entry] = v }, { flags = self.flags })
    self.scan[#self.scan + 1] = { m = m, neg = neg, v = v }
  elseif wild(entry) then
    self.wild:add(entry, v, where)
  elseif self.host then
    self.domain:add(entry, v, where)
  elseif entry:byte(1) == 64 then   -- '@'
    self.domain:add(entry:sub(2), v, where)
  else
    self.exact:add(entry, v, where)
  end
  self.n = self.n + 1
  return self
end

-- The entry that lists s ({ text=, where= }), or nil.
function List:lookup(s)
  if type(s) ~= "string" or s == "" then return nil end
  local l = s:lower()   -- once for the three (case-insensitive) matchers
  local v = self.exact:lookup_lower(l)
  if v == nil and (self.host or l:find("@", 1, true)) then v = self.domain:lookup_lower(l) end
  if v == nil then v = self.wild:lookup_lower(l) end
  if v ~= nil then return v end
  for _, e in ipairs(self.scan) do
    if e.m:match(s) ~= e.neg then return e.v end
  end
end

function List:match(s) return self:lookup(s) ~= nil end
function List:size() return self.n end

-- An empty list; opts: regex (entries are PCRE2), flags (default "i"),
-- host (a list of host names, not addresses).
function A.new(opts)
  opts = opts or {}
  return setmetatable({ regex = opts.regex, host = opts.host, flags = opts.flags or "i",
    exact = match.new("exact"), domain = match.new("domain"), wild = match.new("wildmat"),
    scan = {}, n = 0 }, List)
end

-- Adds the lines of a control file (one entry a line, "#" comments).
function A.add_file(list, path)
  for _, row in ipairs(tables.rows(path, { separator = "\n" })) do
    list:add(row.key, row.where)
  end
  return list
end

local function files(f)
  if f == nil then return {} end
  if type(f) == "string" then return { f } end
  if type(f) ~= "table" then error("file must be a file name or a list of them", 0) end
  return f
end

local function fill(s, opts)
  if s[1] ~= nil then s = { entries = s } end   -- a plain list of entries
  local list = A.new({ regex = s.regex, flags = s.flags, host = opts.host })
  for _, f in ipairs(files(s.file)) do A.add_file(list, f) end
  local entries = s.entries or {}
  if type(entries) ~= "table" then error("entries must be a list", 0) end
  for i, e in ipairs(entries) do
    if type(e) ~= "string" then error(("entries[%d] is not a string"):format(i), 0) end
    list:add(e, "entries[" .. i .. "]")
  end
  return list
end

-- A list from a policy's settings: file (a control file or a list of
-- them), entries (a list), regex, flags; or a plain list of entries. opts.host: a host list. Errors
-- name the caller's FILE:LINE.
function A.load(s, opts)
  local ok, list = pcall(fill, s or {}, opts or {})
  if not ok then error(list, 2) end
  return list
end

-- qmail's relayclients prefix "192.168.1." -> "192.168.1.0/24"; other
-- entries (addresses, CIDR) as they are.
local function prefix_cidr(p)
  if not p:find("^[%d.]+%.$") then return p end
  local n = select(2, p:gsub("%.", ""))
  if n > 3 then return p end
  return p .. ("0."):rep(4 - n):sub(1, -2) .. "/" .. (8 * n)
end

-- One relayclients line ("192.168.0.1:", "192.168.1.", "2001:db8::/32:")
-- as a CIDR entry; where names it in errors.
local function relayclient(line, where)
  if line:byte(-1) == 58 then line = line:sub(1, -2)   -- ':'
  elseif line:find("^[%d.]+:") then
    error(("%s: '%s': a RELAYCLIENT suffix is not supported"):format(where, line), 0)
  end
  local entry = prefix_cidr(line)
  if not match.parse_cidr(entry) then
    error(("%s: bad relayclients entry '%s'"):format(where, line), 0)
  end
  return entry
end

-- IndiMail's relayclients ("192.168.0.1:", "192.168.1.:", "2001:db8::/32:"
-- one a line) as a list for relay_from or a cidr matcher. A line's
-- RELAYCLIENT suffix after the colon must be empty (recipients are never
-- rewritten here). lines: the same entries as a list, not a file.
function A.relayclients(path, lines)
  local out = {}
  local ok, err = pcall(function()
    local rows = lines or tables.rows(path, { separator = "\n" })
    for i, row in ipairs(rows) do
      if type(row) == "string" then row = { key = row, where = "entries[" .. i .. "]" } end
      out[#out + 1] = relayclient(row.key, row.where)
    end
  end)
  if not ok then error(err, 2) end
  return out
end

-- The entries of a control file as a list of strings (e.g. rcpthosts for
-- local_domains, when it names only whole domains).
function A.lines(path)
  local out = {}
  for _, row in ipairs(tables.rows(path, { separator = "\n" })) do out[#out + 1] = row.key end
  return out
end

-- Settings a policy does not know are errors naming the policy
-- (lua/stdlib/settings.lua; kept here for the policies that call it so).
A.check_keys = require("settings").check_keys

return A

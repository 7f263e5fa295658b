-- tables: lookup tables read from files while the configuration loads
-- (docs/lua.md "Tables and matchers"). A SIGHUP reloads the configuration
-- and so reads them again; hooks only look up, they never read a file.
--
--   local tables = require("tables")
--   local blocked = tables.control("etc/blocked_domains", { match = "domain" })
--   indimail.hook("rcpt", function(s, tx, rcpt)
--     if blocked:match(rcpt) then return indimail.reject("Domain blocked") end
--   end)
--
-- Each loader returns a matcher of lua/stdlib/match.lua (opts.match: exact
-- by default, domain, cidr, wildmat, pattern or regex; opts.case, opts.flags
-- as there). A bad line is an error naming the file and the line.
local match = require("match")
local T = {}

-- Splits "key<sep>value" at the first separator (" ": any blank run).
local function split(line, sep)
  local i, j
  if sep == " " then i, j = line:find("%s+")
  else i, j = line:find(sep, 1, true) end
  if not i then return line, true end
  return line:sub(1, i - 1), line:sub(j + 1)
end

-- Calls fn(line, where) for each entry line of a qmail-style control file:
-- blank lines and lines starting with "#" skipped, surrounding blanks and
-- CR removed; where is "FILE:LINE".
local function each_line(path, fn)
  local f, err = io.open(path, "r")
  if not f then error("tables.control: " .. err, 0) end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:find("^%s") or line:find("%s$") then line = line:match("^%s*(.-)%s*$") end
    if line ~= "" and line:byte(1) ~= 35 then fn(line, path .. ":" .. n) end   -- '#'
  end
  f:close()
end

-- qmail-style control file: one entry a line (each_line). With
-- opts.values, a line is "key:value" (IndiMail's smtproutes, accesslist;
-- opts.separator to split elsewhere, " " for blanks); the value is the rest.
local function load_control(path, opts)
  opts = opts or {}
  local m = match.new(opts.match or "exact", opts)
  local sep = opts.separator or ":"
  each_line(path, function(line, where)
    local key, value = line, true
    if opts.values then key, value = split(line, sep) end
    m:add(key, value, where)
  end)
  return m
end

-- The lines of a control file as a list of { key=, value=, where= } (value
-- true without a separator), in file order, repeated keys kept: for
-- policies whose lines are rules, not a map (accesslist, hostaccess).
local function load_rows(path, opts)
  opts = opts or {}
  local rows, sep = {}, opts.separator or ":"
  each_line(path, function(line, where)
    local key, value = split(line, sep)
    rows[#rows + 1] = { key = key, value = value, where = where }
  end)
  return rows
end

-- A Lua file returning a table: { "key", ... } and/or { ["key"] = value }.
-- It runs with an empty environment: data only, no calls into anything.
local function load_lua(path, opts)
  opts = opts or {}
  local chunk, err = loadfile(path, "t", {})
  if not chunk then error("tables.lua: " .. err, 0) end
  local ok, t = pcall(chunk)
  if not ok then error("tables.lua: " .. tostring(t), 0) end
  if type(t) ~= "table" then error("tables.lua: " .. path .. " returns no table", 0) end
  local m = match.new(opts.match or "exact", opts)
  for i, key in ipairs(t) do m:add(key, true, path .. ": entry " .. i) end
  for key, value in pairs(t) do
    if math.type(key) ~= "integer" or key < 1 or key > #t then
      m:add(key, value, path .. ": entry " .. tostring(key))
    end
  end
  return m
end

-- A CDB file (tinycdb's cdb -c, qmail's cdbmake): read whole and indexed in
-- a Lua hash (the first value of a key wins, as in cdb's own lookup).
local function load_cdb(path, opts)
  opts = opts or {}
  local f, err = io.open(path, "rb")
  if not f then error("tables.cdb: " .. err, 0) end
  local data = f:read("a")
  f:close()
  local function corrupt(why) error(("tables.cdb: %s: corrupt (%s)"):format(path, why), 0) end
  if #data < 2048 then corrupt("shorter than its header") end
  local stop = #data
  for i = 0, 255 do
    local pos = string.unpack("<I4", data, i * 8 + 1)
    if pos < stop then stop = pos end
  end
  local m, pos, n = match.new(opts.match or "exact", opts), 2048, 0
  local seen = {}
  while pos < stop do
    if pos + 8 > stop then corrupt("record header past the records") end
    local klen, dlen = string.unpack("<I4I4", data, pos + 1)
    if pos + 8 + klen + dlen > stop then corrupt("record past the records") end
    local key = data:sub(pos + 9, pos + 8 + klen)
    n = n + 1
    if not seen[key] then
      seen[key] = true
      m:add(key, data:sub(pos + 9 + klen, pos + 8 + klen + dlen), path .. ": record " .. n)
    end
    pos = pos + 8 + klen + dlen
  end
  return m
end

-- The loaders; an error also names the caller's FILE:LINE.
for name, load in pairs({ control = load_control, rows = load_rows, lua = load_lua, cdb = load_cdb }) do
  T[name] = function(path, opts)
    if type(path) ~= "string" then error("tables." .. name .. ": a file name is needed", 2) end
    local ok, m = pcall(load, path, opts)
    if not ok then error(m, 2) end
    return m
  end
end

return T

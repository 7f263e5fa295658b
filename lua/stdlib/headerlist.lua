-- headerlist: the header-name lists of the envheaders, logheaders and
-- removeheaders policies (IndiMail's qmail-queue ENVHEADERS, LOGHEADERS,
-- REMOVEHEADERS). A list comes from settings.headers (a Lua list) and/or
-- settings.file (an IndiMail control file, one name a line, # comments),
-- read while the configuration loads; names are checked (RFC 5322 field
-- names) and kept in order, repeated ones (any case) once. clean() makes a
-- header value one bounded, printable line.
local H = {}

H.MAX_NAMES = 64

local function bad(policy, where, why) error(("%s: %s: %s"):format(policy, where, why), 0) end

-- 1 to 76 bytes of printable ASCII without ':' (RFC 5322 3.6.8).
function H.valid_name(name)
  return type(name) == "string" and #name >= 1 and #name <= 76 and not name:find("[^!-9;-~]")
end

local function add(out, seen, name, policy, where)
  if not H.valid_name(name) then
    bad(policy, where, ("bad header name '%s'"):format(tostring(name)))
  end
  if seen[name:lower()] then return end
  seen[name:lower()] = true
  out[#out + 1] = name
  if #out > H.MAX_NAMES then bad(policy, where, ("more than %d header names"):format(H.MAX_NAMES)) end
end

local function from_file(out, seen, path, policy)
  if type(path) ~= "string" then bad(policy, "file", "must be a file name") end
  local f, err = io.open(path, "r")
  if not f then bad(policy, "file", err) end
  local n = 0
  for line in f:lines() do
    n = n + 1
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and line:byte(1) ~= 35 then add(out, seen, line, policy, path .. ":" .. n) end
  end
  f:close()
end

-- The names of s.headers then s.file; an error "POLICY: WHERE: why".
function H.load(s, policy)
  local out, seen = {}, {}
  if s.headers ~= nil then
    if type(s.headers) ~= "table" then bad(policy, "headers", "must be a list of header names") end
    for i, name in ipairs(s.headers) do add(out, seen, name, policy, "headers entry " .. i) end
  end
  if s.file ~= nil then from_file(out, seen, s.file, policy) end
  if #out == 0 then bad(policy, "settings", "no header names (headers = { ... } or file = ...)") end
  return out
end

-- Refuses settings other than those in allowed (a set).
function H.check_keys(s, allowed, policy)
  for k in pairs(s) do
    if not allowed[k] then error(("%s: unknown setting %s"):format(policy, tostring(k)), 0) end
  end
end

-- A positive integer setting or its default.
function H.limit(v, default, name, policy)
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 1 or v > 4096 then
    error(("%s: %s must be an integer from 1 to 4096"):format(policy, name), 0)
  end
  return v
end

-- v as one line: control bytes (CR, LF, TAB, DEL ...) become spaces, runs
-- of blanks one space, no blanks at the ends, at most max bytes (cut
-- before a UTF-8 continuation byte, so a character is never split).
function H.clean(v, max)
  v = tostring(v):gsub("[\0-\31\127]", " "):gsub("%s+", " "):match("^ ?(.-) ?$")
  if #v <= max then return v end
  local i = max
  while i > 0 and v:byte(i + 1) >= 0x80 and v:byte(i + 1) < 0xC0 do i = i - 1 end
  return v:sub(1, i)
end

return H

-- queue_store: what a test sees of the messages stored in a queue dir,
-- whatever the queue backend (docs/queue.md):
--   - a message file in <queue>/<n>/mess/ (fs; wal once checkpointed);
--   - a record of a segment <queue>/<n>/wal/<pid>.<seq> at or past its mark
--     (<segment>.ck) and not in its dead list (<segment>.dead): the segment
--     backend keeps every message there; the wal backend until its
--     checkpoint writes the file.
-- A message is listed once, by its file if it has one. An entry is a file's
-- path, or "<segment>@<offset>+<length>/<id>" for a record; either ends in
-- the message's id. Read one with S.read(entry).
--
--   local S = require("queue_store")
--   for _, e in ipairs(S.entries(dir .. "/queue")) do local data = S.read(e) end

local S = {}

local MAGIC, MARK_MAGIC = "IMW1", "IMC1"
local HEADER = 4 + 8 + 24 + 4    -- magic, length, id, crc (queue_wal.h)

-- A whole file, or nil.
function S.readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local readfile = S.readfile

local function lines(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local out = {}
  for l in p:read("a"):gmatch("[^\n]+") do out[#out + 1] = l end
  p:close()
  return out
end

-- Where the segment's live records begin: its mark, else 0.
local function mark_of(segment)
  local m = readfile(segment .. ".ck")
  if m and #m >= 16 and m:sub(1, 4) == MARK_MAGIC then
    return (string.unpack("<I8", m, 5))
  end
  return 0
end

local function dead_of(segment)
  local dead = {}
  for line in (readfile(segment .. ".dead") or ""):gmatch("([^\n]*)\n") do
    if line:match("^[0-9A-F]+$") and #line == 24 then dead[line] = true end
  end
  return dead
end

-- The live records of one segment, in order: { id, offset, len }. A torn
-- tail (a write cut short) ends the walk, as it ends recovery's.
local function records(segment)
  local data = readfile(segment)
  if not data then return {} end
  local from, dead, out, off = mark_of(segment), dead_of(segment), {}, 0
  while off + HEADER <= #data and data:sub(off + 1, off + 4) == MAGIC do
    local len = string.unpack("<I8", data, off + 5)
    local id = data:sub(off + 13, off + 36)
    if len > #data - off - HEADER or not id:match("^[0-9A-F]+$") then break end
    if off >= from and not dead[id] then
      out[#out + 1] = { id = id, offset = off + HEADER, len = len }
    end
    off = off + HEADER + len
  end
  return out
end

-- The message files in mess/, by path.
function S.files(queue_dir)
  return lines("find " .. queue_dir .. " -path '*/mess/*' -type f | sort")
end

function S.entries(queue_dir)
  local out, seen = {}, {}
  for _, f in ipairs(S.files(queue_dir)) do
    out[#out + 1] = f
    seen[f:sub(-24)] = true
  end
  local segments = lines("find " .. queue_dir .. " -path '*/wal/*' -type f" ..
    " ! -name '*.ck' ! -name '*.dead' | sort")
  for _, seg in ipairs(segments) do
    for _, r in ipairs(records(seg)) do
      if not seen[r.id] then
        seen[r.id] = true
        out[#out + 1] = ("%s@%d+%d/%s"):format(seg, r.offset, r.len, r.id)
      end
    end
  end
  return out
end

-- The stored bytes of an entry (envelope, blank line, message), or nil.
function S.read(entry)
  local seg, off, len = entry:match("^(.+)@(%d+)%+(%d+)/%x+$")
  if not seg then return readfile(entry) end
  local f = io.open(seg, "rb")
  if not f then return nil end
  f:seek("set", tonumber(off))
  local s = f:read(tonumber(len))
  f:close()
  return s
end

return S

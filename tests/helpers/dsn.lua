-- dsn: reads bounces, RFC 3464 delivery status notifications: a
-- multipart/report with a message/delivery-status part holding one block
-- of fields per recipient. (Not "mime.lua": that name is luasocket's.)
--
--   local dsn = require("dsn")
--   local r, parts, hdrs = dsn.read(D.readfile(files[1]))   -- checks the frame
--   r[1]["final-recipient"], r[1]["status"], r[1]["diagnostic-code"]
--   dsn.find_part(parts, "text/rfc822-headers").body
--
local assert = require("luassert")

local M = {}

local function esc(s) return (s:gsub("%p", "%%%0")) end

-- The header section and body of a stored message (LF line ends).
function M.split_message(s)
  local h, b = s:match("^(.-\n)\n(.*)$")
  return h, b
end

-- The parts of a multipart message: { {headers=, body=}, ... }, its header.
function M.parts(message)
  local hdrs, body = M.split_message(message)
  assert.is_truthy(hdrs, "a header section")
  local boundary = hdrs:match('boundary="([^"]+)"') or hdrs:match("boundary=([^%s;]+)")
  assert.is_truthy(boundary, "a MIME boundary in: " .. hdrs)
  local parts, delim, text = {}, "\n--" .. boundary, "\n" .. body
  local pos = text:find(delim, 1, true)
  while pos do
    local start = pos + #delim
    if text:sub(start, start + 1) == "--" then break end
    local nextp = text:find(delim, start, true)
    local chunk = text:sub(start, (nextp or #text + 1) - 1):gsub("^[ \t]*\n", "")
    local ph, pb = chunk:match("^(.-\n)\n(.*)$")
    parts[#parts + 1] = { headers = ph or "", body = pb or chunk }
    pos = nextp
  end
  return parts, hdrs
end

-- The first part of the given content type, or nil.
function M.find_part(parts, ctype)
  for _, p in ipairs(parts) do
    if p.headers:lower():match("content%-type:%s*" .. esc(ctype:lower())) then return p end
  end
end

-- Per-recipient blocks of a message/delivery-status body (RFC 3464 2.1),
-- each a table of lower-cased field names.
function M.recipients(body)
  local blocks = {}
  for block in (body .. "\n\n"):gmatch("(.-)\n\n+") do
    local f = {}
    for name, value in block:gmatch("([%w%-]+):[ \t]*([^\n]*)") do f[name:lower()] = value end
    if f["final-recipient"] then blocks[#blocks + 1] = f end
  end
  return blocks
end

-- A stored bounce, checked: Return-Path <>, a multipart/report of type
-- delivery-status with a message/delivery-status part. Returns its
-- per-recipient blocks, the parts and the header section.
function M.read(text)
  assert.matches("^Return%-Path: <>\n", text)
  local parts, hdrs = M.parts(text)
  assert.matches("\nContent%-Type: multipart/report; report%-type=delivery%-status", hdrs)
  local ds = M.find_part(parts, "message/delivery-status")
  assert.is_truthy(ds, "a message/delivery-status part")
  return M.recipients(ds.body), parts, hdrs
end

return M

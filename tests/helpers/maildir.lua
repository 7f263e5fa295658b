-- maildir: the Maildirs a daemon delivers into (mailboxes.root is
-- <d.dir>/maildirs in the generated config: <domain>/<user>/Maildir).
--
--   local maildir = require("maildir")
--   local files = maildir.wait(d, "alice")        -- at least one, or nil
--   #maildir.new_files(d, "bob")                 -- sorted paths in new/
--
local D = require("daemon")

local M = {}

-- The folder of a user's Maildir (domain: example.test unless given).
function M.path(d, user, domain)
  return ("%s/maildirs/%s/%s/Maildir"):format(d.dir, domain or "example.test", user)
end

-- Files in a user's Maildir/new, sorted by path (none if it does not exist).
function M.new_files(d, user, domain)
  local out = D.sh("find " .. M.path(d, user, domain) .. "/new -type f 2>/dev/null | sort")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

-- Waits (bounded, default 5s) until new/ holds at least n (default 1)
-- files; returns them, or nil.
function M.wait(d, user, n, timeout)
  return D.eventually(function()
    local f = M.new_files(d, user)
    return #f >= (n or 1) and f
  end, timeout or 5)
end

function M.file_size(path)
  local s = D.readfile(path)
  return s and #s
end

return M

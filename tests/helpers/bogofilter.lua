-- bogofilter: a word list for the specs, trained in a temp folder through
-- `indimail spam train` (so the command is tested too) with a few spam
-- and ham messages of clearly different words; and fake bogofilter
-- programs for the failure cases (a broken one, a slow one) and one that
-- records the descriptors it inherited before it runs the real one.
--
--   local bogo = require("bogofilter")
--   local dir = bogo.train(scratch .. "/wordlist")   -- the -d folder
--   bogo.SPAM, bogo.HAM                              -- two fresh messages
--   local path = bogo.fake(scratch, "slow")          -- "broken", "slow", "fds"
local D = require("daemon")

local M = { bin = "/usr/bin/bogofilter" }

local SPAM_WORDS = "viagra casino jackpot pills cheap winner lottery bitcoin"
  .. " discount prize cialis offer unclaimed millions"
local HAM_WORDS = "meeting agenda minutes quarterly review project budget"
  .. " schedule tomorrow colleagues report draft lunch deadline"

local function message(subject, words, n)
  local body = {}
  for i = 1, n do body[#body + 1] = words .. " " .. i end
  return ("From: someone@example.org\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\n%s\r\n")
    :format(subject, table.concat(body, "\r\n"))
end

M.SPAM = message("claim your prize", SPAM_WORDS, 3)
M.HAM = message("project meeting", HAM_WORDS, 3)

-- Trains dir (created for the account when run as root) with 4 spam and
-- 4 ham messages through bin/indimail spam train; returns dir.
function M.train(dir)
  for i = 1, 4 do
    for class, words in pairs({ spam = SPAM_WORDS, ham = HAM_WORDS }) do
      local f = os.tmpname()
      D.writefile(f, message(class .. " " .. i, words, i))
      local ok = os.execute(("%s/indimail spam train %s --dir %s %s"):format(D.bin, class, dir, f))
      os.remove(f)
      assert(ok, "indimail spam train " .. class .. " failed")
    end
  end
  return dir
end

local FAKES = {
  -- exits 3 with bogofilter's own error text, as with a damaged word list
  broken = "#!/bin/sh\ncat >/dev/null\necho \"Can't open file 'wordlist.db'\" >&2\nexit 3\n",
  -- reads the message, then never answers (bounded: it ends by itself)
  -- reads the message, then becomes a 30 s sleep; its pid in slow.pid beside it
  slow = "#!/bin/sh\necho $$ >\"$(dirname \"$0\")/slow.pid\"\ncat >/dev/null\nexec sleep 30\n",
  -- lists its open descriptors beside itself, then is bogofilter
  fds = "#!/usr/bin/python3\nimport os, sys\n"
    .. "fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n"
    .. "def what(f):\n  try: return os.readlink('/proc/self/fd/%d' % f)\n  except OSError: return '?'\n"
    .. "open(os.path.dirname(sys.argv[0]) + '/fds.out', 'w').write(' '.join('%d=%s' % (f, what(f)) for f in fds))\n"
    .. "os.execv('" .. M.bin .. "', ['bogofilter'] + sys.argv[1:])\n",
}

-- Writes the fake program `kind` into dir (mode 755); its path.
function M.fake(dir, kind)
  local path = dir .. "/bogofilter-" .. kind
  D.writefile(path, assert(FAKES[kind], kind))
  D.sh("chmod 755 " .. path)
  if kind ~= "broken" then D.sh("chmod 1777 " .. dir) end   -- the account writes fds.out, slow.pid
  return path
end

return M

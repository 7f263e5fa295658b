-- The fs queue backend (docs/queue.md "Order of operations"), no longer
-- the default: each accepted message is its own file in mess/ (mode 0640
-- once complete) before its 250, no segment is written, and the queue
-- manager delivers from the file and removes it. A queue switched to the
-- default backend (segment) keeps its files: they are read, delivered and
-- removed as before.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")

local USERS = "users = { 'alice@example.test' }, postmaster = 'alice@example.test'"

local function send(d, n)
  local c = d:session()
  for i = 1, n do
    local code, text = c:transaction("bob@example.test", { "alice@example.test" },
      ("Subject: fs %d\r\n\r\nbody %d\r\n"):format(i, i))
    assert.equal(250, code, text)
  end
  c:cmd("QUIT")
end

local function segments(d)
  return D.sh("find " .. d.dir .. "/queue -path '*/wal/*' -type f"):gsub("%s+$", "")
end

describe("the fs queue backend", function()
  after_each(cleanup.run)

  it("writes each message to its own file in mess/, mode 0640, before the 250; no segment", function()
    local d = D.start_for_test{ deliver = false, queue_backend = "fs", mailboxes = USERS }
    send(d, 3)
    local files = d:mess_files()
    assert.equal(3, #files, d:log())
    for _, f in ipairs(files) do
      assert.equal("640", D.sh("stat -c %a " .. f):gsub("%s+$", ""), f)
      assert.matches("\nSubject: fs %d", D.readfile(f))
    end
    assert.equal("", segments(d))
  end)

  it("delivers from the files and removes them; the default backend then reads the files it left", function()
    local d = D.start_for_test{ deliver = true, queue_backend = "fs", mailboxes = USERS }
    send(d, 2)
    assert.is_truthy(maildir.wait(d, "alice", 2, 20), d:log())
    assert.is_truthy(D.eventually(function() return #d:mess_files() == 0 end, 10), d:log())
    -- three more left queued (delivery paused), then the default backend
    d:stop()
    D.writefile(d.config, (D.readfile(d.config):gsub("paused = false", "paused = true")))
    d:restart()
    send(d, 3)
    assert.equal(3, #d:mess_files(), d:log())
    d:stop()
    D.writefile(d.config, (D.readfile(d.config):gsub("backend = 'fs'", ""):gsub("paused = true", "paused = false")))
    d:restart()
    assert.is_truthy(maildir.wait(d, "alice", 5, 20), d:log())
    assert.is_truthy(D.eventually(function() return #d:queue_files() == 0 end, 10), d:log())
    assert.equal(5, #maildir.new_files(d, "alice"))
  end)
end)

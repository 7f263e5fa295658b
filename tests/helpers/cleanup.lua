-- cleanup: things to undo when the current test ends, pass or fail.
-- busted keeps only one finally() per test, so the specs keep a list and
-- run it from after_each (and teardown, for what setup started).
--
--   local cleanup = require("cleanup")
--   after_each(cleanup.run)
--   cleanup.defer(function() d:cleanup() end)   -- run last-in, first-out
--
local M = {}
local list = {}

function M.defer(fn) list[#list + 1] = fn end

-- Runs every deferred function, newest first; an error in one does not
-- stop the others.
function M.run()
  for i = #list, 1, -1 do pcall(list[i]) end
  list = {}
end

return M

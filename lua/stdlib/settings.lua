-- settings: the first check of every policy's setup. A setting the policy
-- does not know is an error naming it, never silently ignored (a misspelt
-- "fial" must not leave the default in force).
--
--   local settings = require("settings")
--   function P.setup(s)
--     s = settings.check_keys("virus", s, { clamd = true, timeout = true })
--     ...
--
-- The error has no position of its own (level 0): indimail.policy and
-- `indimaild -t` report it at the configuration line that names the policy.
local M = {}

-- s (nil: an empty table) once every key of it is in allowed.
function M.check_keys(name, s, allowed)
  if s == nil then return {} end
  if type(s) ~= "table" then error(("%s: the settings must be a table"):format(name), 0) end
  for k in pairs(s) do
    if not allowed[k] then error(("%s: unknown setting %s"):format(name, tostring(k)), 0) end
  end
  return s
end

return M

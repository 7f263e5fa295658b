-- address: small helpers for envelope addresses ("local@domain").
local M = {}

-- The domain part, lower case, or nil for <> and <postmaster>.
function M.domain(addr)
  if not addr then return nil end
  local d = addr:match("@([^@]+)$")
  return d and d:lower() or nil
end

-- The local part (may be quoted), or nil.
function M.localpart(addr)
  if not addr then return nil end
  return addr:match("^(.*)@[^@]+$")
end

-- True for an address literal domain such as [192.0.2.1].
function M.is_literal(domain)
  return domain ~= nil and domain:sub(1, 1) == "["
end

return M

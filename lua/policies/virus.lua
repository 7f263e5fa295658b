-- virus: every message is scanned by clamd (ClamAV's daemon) over its
-- socket before it is queued (indimail.clamd.scan: INSTREAM, the loop never
-- waits). A virus is refused with 554 5.7.0 at the end of DATA (action
-- "reject") or the message goes to a quarantine mailbox only (action
-- "quarantine", the address in `quarantine`). A scanner that is down,
-- slow or in trouble gives 451 4.7.0 (on_error "tempfail", the default)
-- or lets the message through unscanned (on_error "pass"). A message over
-- max_size is not scanned (clamd's StreamMaxLength would refuse it).
-- Every outcome is logged: event=virus result=clean|virus|error|skipped
-- name= error= ms= size=.
--
-- Example (docs/policies/virus.md):
--   indimail.policy("virus", {
--     clamd = { socket = "/run/clamav/clamd.ctl" },  -- or { host = "127.0.0.1", port = 3310 }
--     timeout = 20,                                  -- seconds for the whole scan
--     action = "reject",                             -- or "quarantine"
--     -- quarantine = "virus@example.test",          -- with action = "quarantine"
--     on_error = "tempfail",                         -- or "pass"
--     max_size = 25 * 1024 * 1024,                   -- StreamMaxLength of clamd.conf
--     skip_authenticated = false,
--   })
local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { clamd = true, timeout = true, action = true, quarantine = true,
  on_error = true, max_size = true, skip_authenticated = true }
local DEFAULT_MAX_SIZE = 25 * 1024 * 1024   -- clamd.conf's StreamMaxLength default
local DEFAULT_SOCKET = "/run/clamav/clamd.ctl"

local function fail(fmt, ...) error("virus: " .. fmt:format(...), 3) end

-- The options indimail.clamd.scan gets: where clamd is and the timeout.
local function scan_options(c, timeout)
  c = c or { socket = DEFAULT_SOCKET }
  if type(c) ~= "table" then fail("clamd must be { socket = path } or { host = ip, port = n }") end
  for k in pairs(c) do
    if k ~= "socket" and k ~= "host" and k ~= "port" then fail("unknown clamd setting %s", tostring(k)) end
  end
  if (c.socket == nil) == (c.host == nil) then fail("clamd needs socket or host (one of them)") end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then fail("timeout must be seconds") end
  return { socket = c.socket, host = c.host, port = c.port, timeout = timeout }
end

local function check_choice(v, name, a, b)
  if v ~= a and v ~= b then fail("%s must be %q or %q", name, a, b) end
  return v
end

function P.setup(s)
  s = settings_check.check_keys("virus", s, KNOWN)
  settings = {
    scan = scan_options(s.clamd, s.timeout),
    action = check_choice(s.action or "reject", "action", "reject", "quarantine"),
    on_error = check_choice(s.on_error or "tempfail", "on_error", "tempfail", "pass"),
    max_size = s.max_size or DEFAULT_MAX_SIZE,
    skip_authenticated = s.skip_authenticated == true,
    quarantine = s.quarantine,
  }
  if settings.action == "quarantine" and (type(s.quarantine) ~= "string" or not s.quarantine:find("@")) then
    fail("action quarantine needs quarantine = the quarantine mailbox (an address)")
  end
  if type(settings.max_size) ~= "number" or settings.max_size <= 0 then fail("max_size must be bytes") end
  return { message = P.message }
end

local function log(fields) indimail.log("virus", fields) end

-- A virus was found: refused, or kept in quarantine.
local function found(name, ms)
  log({ result = "virus", name = name, ms = ms, action = settings.action })
  if settings.action == "quarantine" then
    return indimail.quarantine(settings.quarantine, "virus " .. name)
  end
  return indimail.reject(("Message contains a virus (%s)"):format(name), 554, "5.7.0")
end

-- The scanner could not answer: 451, or through unscanned.
local function scanner_failed(err, ms)
  log({ result = "error", error = err, ms = ms, on_error = settings.on_error })
  if settings.on_error == "pass" then return end
  return indimail.tempfail("Virus scanner unavailable, try again later", 451, "4.7.0")
end

function P.message(session, tx, msg)
  if settings.skip_authenticated and session.auth_user then return end
  local size = msg:size()
  if size > settings.max_size then
    log({ result = "skipped", size = size, max_size = settings.max_size })
    return
  end
  local result, detail, ms = indimail.clamd.scan(msg, settings.scan)
  if result == "clean" then
    log({ result = "clean", ms = ms, size = size })
  elseif result == "virus" then
    return found(detail, ms)
  else
    return scanner_failed(detail, ms)
  end
end

return P

-- spam: every message is classified before it is queued, by bogofilter (a
-- child per message, indimail.bogofilter.classify: the Bayesian word list
-- of the site, trained with `indimail spam train ham|spam`) or by rspamd
-- over its HTTP protocol (indimail.rspamd.check). Neither blocks the loop.
--
-- bogofilter: the verdict is by score (the spamicity, 0..1): above
-- reject_above a 550 5.7.1, above quarantine_above the message goes to
-- the quarantine mailbox only; otherwise it is queued. rspamd: its action
-- is followed ("reject" 550 5.7.1, "soft reject" and "greylist" 451 4.7.1,
-- "rewrite subject" the subject, "add header" X-Spam-Flag: YES); the two
-- thresholds apply to its score too, when set. With tag (the default)
-- every message gets X-Spam-Status: and X-Spam-Score: (and X-Bogosity:
-- from bogofilter); the client's own fields of those names are removed.
-- A classifier that is missing, broken, slow or down: on_error "pass"
-- (the default: queued untagged, as IndiMail does when bogofilter fails)
-- or "tempfail" (451 4.7.1). Authenticated senders are not classified
-- unless skip_authenticated = false. Logged: event=spam engine= class=
-- score= ms= action= (or error=).
--
-- Example (docs/policies/spam.md):
--   indimail.policy("spam", {
--     engine = "bogofilter",                      -- or "rspamd"
--     bogofilter = { dir = "/var/lib/indimail/bogofilter" },
--     -- rspamd = { host = "127.0.0.1", port = 11333, password = nil },
--     timeout = 10,                               -- seconds for one classification
--     reject_above = 0.99,                        -- 550 5.7.1 above this score
--     quarantine_above = 0.9, quarantine = "spam@example.test",
--     tag = true, skip_authenticated = true, on_error = "pass",
--   })
local settings_check = require("settings")

local P = {}
local settings

local KNOWN = { engine = true, bogofilter = true, rspamd = true, timeout = true,
  reject_above = true, quarantine_above = true, quarantine = true, tag = true,
  skip_authenticated = true, on_error = true }
local BOGOFILTER_KEYS = { dir = true, path = true }
local RSPAMD_KEYS = { host = true, port = true, password = true }
local DEFAULT_TIMEOUT = { bogofilter = 10, rspamd = 20 }
local SPAM_SUBJECT = "*** SPAM *** "
local OUR_FIELDS = { "X-Bogosity", "X-Spam-Status", "X-Spam-Score", "X-Spam-Flag" }

local function fail(fmt, ...) error("spam: " .. fmt:format(...), 3) end

local function check_keys(t, known, what)
  if t == nil then return {} end
  if type(t) ~= "table" then fail("%s must be a table", what) end
  for k in pairs(t) do
    if not known[k] then fail("unknown %s setting %s", what, tostring(k)) end
  end
  return t
end

local function check_choice(v, name, a, b)
  if v ~= a and v ~= b then fail("%s must be %q or %q", name, a, b) end
  return v
end

local function check_number(v, name)
  if v ~= nil and type(v) ~= "number" then fail("%s must be a number", name) end
  return v
end

-- The options of the engine's call: where it is and the timeout.
local function engine_options(s, engine)
  local timeout = s.timeout or DEFAULT_TIMEOUT[engine]
  if type(timeout) ~= "number" or timeout <= 0 then fail("timeout must be seconds") end
  if engine == "bogofilter" then
    local b = check_keys(s.bogofilter, BOGOFILTER_KEYS, "bogofilter")
    return { dir = b.dir, path = b.path, timeout = timeout }
  end
  local r = check_keys(s.rspamd, RSPAMD_KEYS, "rspamd")
  return { host = r.host, port = r.port, password = r.password, timeout = timeout }
end

function P.setup(s)
  s = settings_check.check_keys("spam", s, KNOWN)
  local engine = check_choice(s.engine or "bogofilter", "engine", "bogofilter", "rspamd")
  settings = {
    engine = engine,
    call = engine_options(s, engine),
    reject_above = check_number(s.reject_above, "reject_above"),
    quarantine_above = check_number(s.quarantine_above, "quarantine_above"),
    quarantine = s.quarantine,
    tag = s.tag ~= false,
    skip_authenticated = s.skip_authenticated ~= false,
    on_error = check_choice(s.on_error or "pass", "on_error", "pass", "tempfail"),
  }
  if settings.quarantine_above and (type(s.quarantine) ~= "string" or not s.quarantine:find("@")) then
    fail("quarantine_above needs quarantine = the quarantine mailbox (an address)")
  end
  return { message = P.message }
end

local function log(fields)
  fields.engine = settings.engine
  indimail.log("spam", fields)
end

-- Our header fields, never the client's: theirs go first.
local function tag(msg, fields)
  if not settings.tag then return end
  for _, name in ipairs(OUR_FIELDS) do msg:remove_header(name) end
  for i = #fields, 1, -1 do msg:add_header(fields[i][1], fields[i][2]) end
end

-- The verdict the thresholds give a score (nil: none).
local function by_score(score, why)
  if settings.reject_above and score > settings.reject_above then
    return "reject", indimail.reject("Message looks like spam (" .. why .. ")", 550, "5.7.1")
  end
  if settings.quarantine_above and score > settings.quarantine_above then
    return "quarantine", indimail.quarantine(settings.quarantine, "spam " .. why)
  end
end

-- The classifier could not answer: through untagged, or 451.
local function classifier_failed(err, ms)
  log({ result = "error", error = err, ms = ms, on_error = settings.on_error })
  if settings.on_error == "pass" then return end
  return indimail.tempfail("Spam filter unavailable, try again later", 451, "4.7.1")
end

local function bogofilter(msg)
  local class, score, bogosity, ms = indimail.bogofilter.classify(msg, settings.call)
  if class == nil then return classifier_failed(score, bogosity) end
  local shown = ("%.4f"):format(score)
  tag(msg, { { "X-Bogosity", bogosity },
    { "X-Spam-Status", (class == "spam" and "Yes" or "No") .. ", score=" .. shown .. " tests=bogofilter" },
    { "X-Spam-Score", shown } })
  local action, verdict = by_score(score, "bogofilter score " .. shown)
  log({ class = class, score = shown, ms = ms, action = action or "queue" })
  return verdict
end

local RSPAMD_ACTIONS = {
  ["reject"] = function(r)
    return indimail.reject("Message refused as spam (rspamd score " .. r.score .. ")", 550, "5.7.1")
  end,
  ["soft reject"] = function()
    return indimail.tempfail("Message deferred by the spam filter, try again later", 451, "4.7.1")
  end,
  ["greylist"] = function()
    return indimail.tempfail("Greylisted, try again later", 451, "4.7.1")
  end,
  ["rewrite subject"] = function(r, msg)
    msg:replace_header("Subject", r.subject or (SPAM_SUBJECT .. (msg:header("Subject") or "")))
  end,
  ["add header"] = function(_, msg)
    if settings.tag then msg:add_header("X-Spam-Flag", "YES") end
  end,
}

local function rspamd(msg)
  local r, err, ms = indimail.rspamd.check(msg, settings.call)
  if r == nil then return classifier_failed(err, ms) end
  local spam = r.action ~= "no action"
  local shown = ("%.2f"):format(r.score)
  tag(msg, { { "X-Spam-Status", ("%s, score=%s required=%.2f action=%s"):format(spam and "Yes" or "No",
      shown, r.required_score, r.action) }, { "X-Spam-Score", shown } })
  local act = RSPAMD_ACTIONS[r.action]
  local verdict = act and act(r, msg)
  local action = verdict and r.action
  if verdict == nil then action, verdict = by_score(r.score, "rspamd score " .. shown) end
  log({ class = spam and "spam" or "ham", score = shown, ms = r.ms, action = action or r.action })
  return verdict
end

function P.message(session, tx, msg)
  if settings.skip_authenticated and session.auth_user then return end
  if settings.engine == "bogofilter" then return bogofilter(msg) end
  return rspamd(msg)
end

return P

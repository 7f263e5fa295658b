-- auth_fail_limit (docs/smtp.md, docs/directory.md): failed SMTP AUTH is
-- counted per client IP and per user in the counters the master shares
-- with every worker (src/lib/counter.c). A real daemon with two workers
-- and a SQLite directory; clients connect from different loopback
-- addresses (127.0.0.x) so each test has IPs of its own. Past a limit the
-- right password gets 454 without being checked, until the window passes.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local mime = require("mime")

local PASSWORD = "Right-Pa55word"
local WRONG = "Wr0ng-Guess"
local WINDOW = 4
local LOCKED = "^454 4%.7%.0 Too many failed authentications, try again later"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function plain(user, pw) return (mime.b64("\0" .. user .. "\0" .. pw)) end

-- A daemon with two workers on a SQLite directory holding joe and ann.
local function start(limit)
  local dir = D.mktemp("authlimit")
  if D.sh("id -u"):match("^0") then D.sh("chown indimail: " .. dir) end
  cleanup.defer(function() D.rmtemp(dir) end)
  local d = D.start_for_test{
    workers = 2,
    directory = ("backend = 'sqlite', path = %q"):format(dir .. "/directory.sqlite"),
    listen_opts = { smtp = "auth = true, auth_plaintext = true, "
      .. "auth_mechs = { 'plain', 'login', 'cram-md5', 'scram-sha-256' }" },
    auth_fail_limit = limit or ("per_ip = 4, per_user = 3, window = %d, delay = 0.2, delay_max = 0.8"):format(WINDOW),
    limits = "errors = 100",
  }
  local cli = D.bin .. "/indimail -c " .. q(d.config)
  D.sh(cli .. " domain add example.test")
  for _, u in ipairs{ "joe@example.test", "ann@example.test" } do
    D.sh("printf '%s\\n' " .. q(PASSWORD) .. " | " .. cli .. " user add " .. u .. " --password-stdin")
  end
  return d
end

-- A session from src, EHLO said.
local function session(d, src)
  local c = D.connect(d.ports.smtp, "127.0.0.1", src)
  assert.equal(220, (c:reply()))
  assert.equal(250, (c:cmd("EHLO client.example.test")))
  return c
end

-- One AUTH PLAIN on a new session from src: code, text.
local function auth(d, src, user, pw)
  local c = session(d, src)
  local code, text = c:cmd("AUTH PLAIN " .. plain(user, pw))
  c:close()
  return code, text
end

-- Failures sent at once on n sessions (one per user of users); the codes.
local function fail_at_once(d, src, users)
  local cs, codes = {}, {}
  for i, u in ipairs(users) do
    cs[i] = session(d, src)
    cs[i]:send("AUTH PLAIN " .. plain(u, WRONG) .. "\r\n")
  end
  for i, c in ipairs(cs) do
    codes[i] = c:reply()
    c:close()
  end
  return codes
end

local function all_equal(list, v)
  for _, x in ipairs(list) do if x ~= v then return false end end
  return true
end

describe("auth_fail_limit", function()
  after_each(cleanup.run)

  it("locks a user after per_user failures from several connections, even for the right password, until the window passes", function()
    local d = start()
    local t0 = D.t.now()
    assert.same({ 535, 535, 535 }, fail_at_once(d, "127.0.0.2", { "joe@example.test", "JOE@example.test", "joe@example.test" }))
    local code, text = auth(d, "127.0.0.2", "joe@example.test", PASSWORD)
    assert.equal(454, code, text)
    assert.matches(LOCKED, text)
    -- from another address too: the lock is the user's
    assert.equal(454, (auth(d, "127.0.0.3", "joe@example.test", PASSWORD)))
    -- another user from the first address is not locked (3 < per_ip)
    assert.equal(235, (auth(d, "127.0.0.2", "ann@example.test", PASSWORD)))
    assert.truthy(d:wait_log("event=auth_locked [^\n]*user=joe@example%.test ip=127%.0%.0%.2 "
      .. "reason=\"3 failed authentications for this user within 4 s %(limit 3%)\"", 5))
    -- after the window the right password works again (bounded wait)
    assert.is_true(D.t.now() - t0 < WINDOW, "the lock was checked too late")
    local ok = D.eventually(function()
      return auth(d, "127.0.0.3", "joe@example.test", PASSWORD) == 235
    end, 3 * WINDOW, 0.5)
    assert.truthy(ok, "still locked after " .. (D.t.now() - t0) .. " s")
    assert.is_true(D.t.now() - t0 >= WINDOW - 0.5)
    assert.not_matches(WRONG, d:log(), 1, true)
    assert.not_matches(PASSWORD, d:log(), 1, true)
  end)

  it("locks a client address after per_ip failures with different user names", function()
    local d = start()
    assert.same({ 535, 535, 535, 535 }, fail_at_once(d, "127.0.0.4",
      { "a@example.test", "b@example.test", "c@example.test", "ann@example.test" }))
    local code, text = auth(d, "127.0.0.4", "joe@example.test", PASSWORD)
    assert.equal(454, code, text)
    assert.matches(LOCKED, text)
    assert.truthy(d:wait_log("event=auth_locked [^\n]*user=joe@example%.test ip=127%.0%.0%.4 "
      .. "reason=\"4 failed authentications for this ip", 5))
    -- LOGIN is refused the same way, once the password line has come
    local c = session(d, "127.0.0.4")
    assert.equal(334, (c:cmd("AUTH LOGIN")))
    assert.equal(334, (c:cmd((mime.b64("joe@example.test")))))
    assert.equal(454, (c:cmd((mime.b64(PASSWORD)))))
    c:close()
    -- joe from another address: neither he nor it is locked
    assert.equal(235, (auth(d, "127.0.0.5", "joe@example.test", PASSWORD)))
    assert.not_matches(PASSWORD, d:log(), 1, true)
  end)

  it("refuses CRAM-MD5 and SCRAM-SHA-256 for a locked user as soon as the name is known", function()
    local d = start()
    assert.same({ 535, 535, 535 }, fail_at_once(d, "127.0.0.8",
      { "joe@example.test", "joe@example.test", "joe@example.test" }))
    local c = session(d, "127.0.0.9")
    local code, text = c:cmd("AUTH SCRAM-SHA-256 " .. mime.b64("n,,n=joe@example.test,r=abcdefghijklmnop"))
    assert.equal(454, code, text)
    assert.matches(LOCKED, text)
    assert.equal(334, (c:cmd("AUTH CRAM-MD5")))
    assert.equal(454, (c:cmd((mime.b64("joe@example.test " .. string.rep("0", 32))))))
    c:close()
    assert.truthy(d:wait_log("event=auth_locked [^\n]*user=joe@example%.test ip=127%.0%.0%.9 ", 5))
  end)

  it("a success does not reset the client's count", function()
    local d = start()
    assert.same({ 535, 535, 535 }, fail_at_once(d, "127.0.0.6",
      { "a@example.test", "b@example.test", "c@example.test" }))
    assert.equal(235, (auth(d, "127.0.0.6", "joe@example.test", PASSWORD)))
    assert.equal(535, (auth(d, "127.0.0.6", "d@example.test", WRONG)))
    assert.equal(454, (auth(d, "127.0.0.6", "joe@example.test", PASSWORD)))
  end)

  it("holds a failure's reply longer with the client's count, on a new connection too", function()
    local d = start("per_ip = 10, per_user = 10, window = 60, delay = 1, delay_max = 4")
    local waits = {}
    for i = 1, 4 do
      local t0 = D.t.now()
      assert.equal(535, (auth(d, "127.0.0.7", "x" .. i .. "@example.test", WRONG)))
      waits[i] = D.t.now() - t0
    end
    -- each session's first failure alone would wait 1 s
    assert.is_true(waits[1] >= 0.9 and waits[1] < 1.8, "1st: " .. waits[1])
    assert.is_true(waits[2] >= 1.9 and waits[2] < 2.8, "2nd: " .. waits[2])
    assert.is_true(waits[3] >= 3.9, "3rd: " .. waits[3])
    assert.is_true(waits[4] >= 3.9 and waits[4] < 4.8, "capped: " .. waits[4])
  end)

  it("adds up the failures both workers see, and keeps them over a reload and when workers die", function()
    local d = start(("per_ip = 6, per_user = 100, window = %d, delay = 0.2, delay_max = 0.2"):format(60))
    local pids = d:worker_pids()
    assert.equal(2, #pids)
    -- rounds of 6 failures at once, each from a fresh address, until one
    -- round is served by both workers (the kernel picks who accepts)
    local split, src
    for round = 1, 8 do
      src = "127.0.1." .. round
      local mark = #d:log()
      local users = {}
      for i = 1, 6 do users[i] = ("u%d.%d@example.test"):format(round, i) end
      assert.is_true(all_equal(fail_at_once(d, src, users), 535))
      assert.truthy(D.eventually(function()
        local n = 0
        for _ in d:log():sub(mark + 1):gmatch("event=auth_failed [^\n]*ip=" .. src:gsub("%.", "%%.") .. " ") do n = n + 1 end
        return n == 6
      end, 5, 0.05))
      local seen = {}
      for pid in d:log():sub(mark + 1):gmatch("%[(%d+)%][^\n]*event=auth_failed [^\n]*ip=" .. src:gsub("%.", "%%.") .. " ") do
        seen[pid] = (seen[pid] or 0) + 1
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      if n == 2 then split = seen break end
      -- a one-sided round still locks its address
      assert.equal(454, (auth(d, src, "joe@example.test", PASSWORD)))
    end
    assert.truthy(split, "no round was shared by both workers")
    -- neither worker saw 6 failures alone, together they did
    assert.equal(454, (auth(d, src, "joe@example.test", PASSWORD)))
    -- counts live in the master: a reload keeps them, and new workers
    -- still refuse
    d:signal("HUP")
    assert.truthy(d:wait_log("event=reloaded[^\n]*\n.*event=reloaded", 10))
    assert.equal(454, (auth(d, src, "joe@example.test", PASSWORD)))
    for _, pid in ipairs(pids) do D.t.kill(pid, "KILL") end
    assert.truthy(D.eventually(function()
      local now = d:worker_pids()
      return #now == 2 and now[1] ~= pids[1] and now[2] ~= pids[2]
    end, 10, 0.1))
    local ok = D.eventually(function()
      local okc, code = pcall(auth, d, src, "joe@example.test", PASSWORD)
      return okc and code
    end, 10, 0.2)
    assert.equal(454, ok)
    assert.equal(235, (auth(d, "127.0.1.99", "joe@example.test", PASSWORD)))
  end)

  it("is refused at load when malformed", function()
    local dir = D.mktemp("authlimit-config")
    cleanup.defer(function() D.rmtemp(dir) end)
    local function check(text)
      local path = dir .. "/bad.lua"
      D.writefile(path, "indimail.config {\n  listen = { { port = 0 } },\n"
        .. "  auth_fail_limit = { " .. text .. " },\n}\n")
      return D.sh(D.bin .. "/indimaild -t -c " .. path .. " 2>&1")
    end
    assert.matches("auth_fail_limit%.per_ip: %-1 is out of range", check("per_ip = -1"))
    assert.matches("auth_fail_limit%.window: 0 is out of range", check("window = 0"))
    assert.matches("auth_fail_limit: unknown key 'per_host'", check("per_host = 3"))
    assert.matches("auth_fail_limit%.delay_max: is less than delay", check("delay = 4, delay_max = 2"))
    assert.matches("auth_fail_limit%.per_user: must be a number", check("per_user = 'five'"))
  end)
end)

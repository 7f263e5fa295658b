-- lua/policies/ratelimit.lua on a real daemon with two workers: the counts
-- (indimail.counter, the master's shared table) hold across workers,
-- connections and a SIGHUP reload; a worker killed while it holds
-- connections leaks none of them.
local D = require("daemon")
local cleanup = require("cleanup")

local MSG = "Subject: t\r\n\r\nbody\r\n"

local function start(settings)
  return D.start_for_test{ workers = 2,
    policies = ("indimail.policy('ratelimit', %s)"):format(settings) }
end

-- One message in a connection of its own: the final code and text.
local function send(d, from)
  local c = D.connect(d.ports.smtp)
  assert.are.equal(220, (c:reply()))
  assert.are.equal(250, (c:cmd("EHLO client.test")))
  local code, text = c:transaction(from, { "b@example.test" }, MSG)
  c:cmd("QUIT")
  c:close()
  return code, text
end

-- The pids of the smtp processes that logged a connect.
local function serving_pids(d, from)
  local pids = {}
  for pid in d:log():sub(from or 1):gmatch("smtp%[(%d+)%][^\n]*event=connect ") do pids[pid] = true end
  local n = 0
  for _ in pairs(pids) do n = n + 1 end
  return n, pids
end

-- A line event=ratelimit with every field of fields (in any order).
local function logged(d, fields)
  return D.eventually(function()
    for line in d:log():gmatch("[^\n]*event=ratelimit [^\n]*") do
      local all = true
      for k, v in pairs(fields) do
        if not (line .. " "):find(" " .. k .. "=" .. v .. " ", 1, true) then all = false end
      end
      if all then return line end
    end
  end, 2)
end

-- Waits until every session logged has ended: the daemon logs a
-- disconnect after the session's holds are released.
local function settled(d)
  return D.eventually(function()
    local log = d:log()
    return select(2, log:gsub("event=connect ", "")) == select(2, log:gsub("event=disconnect ", ""))
  end, 5)
end

local function greeted(d)
  local c = D.connect(d.ports.smtp)
  cleanup.defer(function() c:close() end)
  local code, text = c:reply()
  return code, text, c
end

describe("ratelimit policy across workers", function()
  after_each(cleanup.run)

  it("lets exactly 5 messages of a sender through in a minute over many connections on both workers", function()
    local d = start("{ messages = { per_sender = 5 } }")
    local accepted, refused, last = 0, 0, nil
    -- connections opened in pairs, so the kernel hands them to both workers
    for _ = 1, 6 do
      local a = D.connect(d.ports.smtp)
      local b = D.connect(d.ports.smtp)
      for _, c in ipairs({ a, b }) do
        assert.are.equal(220, (c:reply()))
        assert.are.equal(250, (c:cmd("EHLO client.test")))
        local code, text = c:transaction("joe@example.test", { "b@example.test" }, MSG)
        if code == 250 then accepted = accepted + 1 else refused = refused + 1; last = text end
        c:cmd("QUIT")
        c:close()
      end
    end
    assert.are.equal(5, accepted)
    assert.are.equal(7, refused)
    assert.matches("^451 4%.7%.1 Too many messages from sender <joe@example%.test> in 60 s %(limit 5%)", last)
    local n = serving_pids(d)
    assert.are.equal(2, n, "both workers served: " .. d:log())
    assert.truthy(logged(d, { key = "ratelimit:messages-sender:joe@example.test", count = 5, limit = 5,
      limit_name = "messages.per_sender" }))
    -- another sender is not affected
    assert.are.equal(250, (d:session():transaction("ann@example.test", { "b@example.test" }, MSG)))
    assert.are.equal(5, #d:queue_files() - 1)
  end)

  it("lets exactly 5 through when 8 transactions of the sender end at the same moment", function()
    local d = start("{ messages = { per_sender = 5 } }")
    -- one batch per sender; the kernel may hand a whole batch to one
    -- worker, so batches go on (at most 4) until one was served by both
    local workers = 0
    for round = 1, 4 do
      local from, sender = #d:log() + 1, ("joe%d@example.test"):format(round)
      local cs = {}
      for i = 1, 8 do
        local c = D.connect(d.ports.smtp)
        cs[i] = c
        assert.are.equal(220, (c:reply()))
        assert.are.equal(250, (c:cmd("EHLO client.test")))
        assert.are.equal(250, (c:cmd("MAIL FROM:<" .. sender .. ">")))
        assert.are.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
        assert.are.equal(354, (c:cmd("DATA")))
      end
      for _, c in ipairs(cs) do c:send(MSG .. ".\r\n") end
      local codes = {}
      for _, c in ipairs(cs) do
        local code = c:reply()
        codes[code] = (codes[code] or 0) + 1
        c:close()
      end
      assert.are.same({ [250] = 5, [451] = 3 }, codes)
      workers = serving_pids(d, from)
      if workers == 2 then break end
    end
    assert.are.equal(2, workers, "a batch served by both workers")
  end)

  it("refuses the third concurrent connection of an address with 421, and takes a new one after one closes", function()
    local d = start("{ connections = { concurrent_per_ip = 2 } }")
    local c1 = select(3, greeted(d))
    local code2, _, c2 = greeted(d)
    assert.are.equal(220, code2)
    local code3, text3, c3 = greeted(d)
    assert.are.equal(421, code3)
    assert.matches("4%.7%.0 Too many concurrent connections from your address %(3, limit 2%)", text3)
    assert.is_true(c3:closed_by_server())
    assert.truthy(logged(d, { key = "ratelimit:ip:127.0.0.1", count = 3, limit = 2 }))
    assert.are.equal(221, (c1:cmd("QUIT")))
    assert.is_true(c1:closed_by_server())
    local ok = D.eventually(function()
      local code, _, c = greeted(d)
      if code ~= 220 then c:close() end
      return code == 220
    end, 3, 0.1)
    assert.is_true(ok)
    assert.are.equal(250, (c2:cmd("NOOP")))
  end)

  it("keeps the counts over a SIGHUP reload", function()
    local d = start("{ messages = { per_sender = 5 }, connections = { concurrent_per_ip = 2 } }")
    for _ = 1, 3 do assert.are.equal(250, (send(d, "joe@example.test"))) end
    local c1 = select(3, greeted(d))
    local c2 = select(3, greeted(d))
    assert.are.equal(250, (c1:cmd("EHLO a.test")))
    local from = #d:log() + 1
    d:signal("HUP")
    assert.truthy(d:wait_log("event=reload ", 5, from))
    assert.truthy(D.eventually(function()
      return select(2, d:log():sub(from):gsub("smtp%[%d+%][^\n]*event=reloaded", "")) == 2
    end, 5), "both workers reloaded")
    -- both connections still count: a third is refused
    local code3, _, c3 = greeted(d)
    assert.are.equal(421, code3)
    c1:cmd("QUIT"); c1:close()
    c2:cmd("QUIT"); c2:close()
    c3:close()
    assert.truthy(settled(d), "every session ended")
    assert.are.equal(250, (send(d, "joe@example.test")))
    assert.are.equal(250, (send(d, "joe@example.test")))
    local code, text = send(d, "joe@example.test")
    assert.are.equal(451, code, text)
  end)

  it("gives back the connections a killed worker held", function()
    local d = start("{ connections = { concurrent_per_ip = 2 } }")
    local c1 = select(3, greeted(d))
    local c2 = select(3, greeted(d))
    assert.are.equal(421, (greeted(d)))
    local from = #d:log() + 1
    for _, pid in ipairs(d:worker_pids()) do D.t.kill(pid, "KILL") end
    assert.truthy(d:wait_log("event=worker_start index=0", 5, from))
    assert.truthy(d:wait_log("event=worker_start index=1", 5, from))
    c1:close(); c2:close()
    local a, b = select(3, greeted(d)), nil
    local code2
    code2, _, b = greeted(d)
    assert.are.equal(220, code2)
    assert.are.equal(250, (a:cmd("NOOP")))
    assert.are.equal(250, (b:cmd("NOOP")))
    assert.are.equal(421, (greeted(d)))
  end)
end)

describe("indimail.counter", function()
  after_each(cleanup.run)

  it("counts in hooks, apart from the AUTH limit's keys, and checks its arguments", function()
    local d = D.start_for_test{ workers = 2, policies = [[
      indimail.hook("rcpt", function(session, tx, rcpt)
        if rcpt:match("^bad@") then return indimail.counter.add("k", 0) end
        if rcpt:match("^held@") then
          return indimail.reject(("held=%d"):format(indimail.counter.hold("h")), 550, "5.7.1")
        end
        local n = indimail.counter.add("k", 60)
        local auth = indimail.counter.get("authfail-ip:127.0.0.1", 900)
        return indimail.reject(("n=%d auth=%d"):format(n, auth), 550, "5.7.1")
      end)
    ]] }
    local c = d:session()
    assert.are.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
    assert.matches("n=1 auth=0", select(2, c:cmd("RCPT TO:<x@example.test>")))
    assert.matches("n=2 auth=0", select(2, c:cmd("RCPT TO:<x@example.test>")))
    assert.matches("held=1", select(2, c:cmd("RCPT TO:<held@example.test>")))
    assert.matches("held=1", select(2, c:cmd("RCPT TO:<held@example.test>")))  -- once per session
    local c2 = d:session()
    assert.are.equal(250, (c2:cmd("MAIL FROM:<a@example.test>")))
    assert.matches("held=2", select(2, c2:cmd("RCPT TO:<held@example.test>")))
    local code, text = c:cmd("RCPT TO:<bad@example.test>")
    assert.are.equal(451, code, text)
    assert.truthy(d:wait_log("a window of 1 second to 366 days", 2))
  end)

  it("raises a clear error outside a hook", function()
    local ok, err = pcall(D.start, { policies = [[ indimail.counter.add("k", 60) ]] })
    assert.is_false(ok)
    assert.matches("indimail.counter.add can only be called from a hook", err)
  end)
end)

-- indimaild as a process: checking a configuration (-t), reloading it on
-- SIGHUP, surviving the death of a worker, keeping every message it
-- acknowledged across a kill -9 of everything, and draining on SIGTERM.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local MSG = "From: a@example.test\r\nTo: b@example.test\r\nSubject: lifecycle\r\n\r\nbody line\r\n"

-- ---- helpers -------------------------------------------------------------

local defer = cleanup.defer

local start = D.start_for_test

local REJECT_BLOCKED = [[
indimail.hook("rcpt", function(session, tx, rcpt)
  if rcpt == "blocked@example.test" then
    return indimail.reject("Blocked by the new configuration", 550, "5.7.1")
  end
end, "reloaded")
]]

-- ---- the specification ---------------------------------------------------

describe("indimaild lifecycle", function()
  after_each(cleanup.run)

  describe("indimaild -t (configuration check)", function()
    local function check(text)
      local dir = D.scratch_dir("lc")
      local file = dir .. "/indimail.lua"
      D.writefile(file, text)
      local out, code = D.sh(D.bin .. "/indimaild -t -c " .. file)
      return out, code, file
    end

    it("exits 0 and says OK for a good configuration", function()
      local out, code, file = check([[
-- a minimal configuration
indimail.config {
  hostname = "mx.test.example",
  listen = { { name = "smtp", address = "127.0.0.1", port = 0 } },
}
indimail.hook("rcpt", function() end)
]])
      assert.equal(0, code, out)
      assert.matches(file .. ": configuration OK", out, 1, true)
    end)

    it("exits 1 and names FILE:LINE and the reason for a Lua syntax error", function()
      local out, code, file = check([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } } }
-- line 2
local x = = 1
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3:", out, 1, true)
      assert.matches("unexpected symbol", out, 1, true)
    end)

    it("exits 1 and names FILE:LINE and the reason for a bad setting", function()
      -- The line is that of the key (here the call's own line; a key on
      -- its own line: config_check_spec.lua); the reason names the setting.
      local out, code, file = check([[
-- line 1
-- line 2
indimail.config { hostname = "mx.test.example", listen = { { port = "x" } } }
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3:", out, 1, true)
      assert.matches("listen[].port: must be a number", out, 1, true)
    end)

    it("exits 1 and names FILE:LINE and the key for an unknown key", function()
      local out, code, file = check([[
-- line 1
-- line 2
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } }, frobnicate = true }
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3:", out, 1, true)
      assert.matches("unknown key 'frobnicate'", out, 1, true)
    end)

    it("exits 1 and names FILE:LINE for an error in the policy part", function()
      local out, code, file = check([[
indimail.config { hostname = "mx.test.example", listen = { { port = 0 } } }

indimail.hook("nosuchstage", function() end)
]])
      assert.equal(1, code, out)
      assert.matches(file .. ":3:", out, 1, true)
      assert.matches("unknown hook stage 'nosuchstage'", out, 1, true)
    end)

    it("exits 1 when the file does not exist", function()
      local dir = D.scratch_dir("lc")
      local out, code = D.sh(D.bin .. "/indimaild -t -c " .. dir .. "/missing.lua")
      assert.equal(1, code, out)
      assert.matches("missing.lua", out, 1, true)
    end)
  end)

  describe("SIGHUP", function()
    it("reloads the configuration: open sessions go on, new sessions get the new hooks", function()
      local d = start()
      local old_config = D.readfile(d.config)
      local c = d:session("before.reload.test")
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))

      D.writefile(d.config, old_config .. REJECT_BLOCKED)
      assert.is_truthy(d:signal("HUP"))
      assert.is_truthy(d:wait_log("event=reloaded", 5), "the worker reloaded")

      -- The open session goes on with its transaction under the rules it
      -- started with (like Postfix, a reload applies to new sessions).
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
      local code, text = c:cmd("RCPT TO:<blocked@example.test>")
      assert.equal(250, code, text)
      assert.equal(354, (c:cmd("DATA")))
      c:send(MSG .. ".\r\n")
      local code2, text2 = c:reply()
      assert.equal(250, code2, text2)
      local env = d:queued(text2:match("queued as (%w+)"))
      assert.matches("\nrcpt b@example.test\n", env, 1, true)
      assert.matches("\nrcpt blocked@example.test\n", env, 1, true)

      -- A new connection sees the new hook.
      local c2 = d:session()
      assert.equal(250, (c2:cmd("MAIL FROM:<a@example.test>")))
      assert.equal("550 5.7.1 Blocked by the new configuration",
        select(2, c2:cmd("RCPT TO:<blocked@example.test>")))
      assert.equal(250, (c2:cmd("RCPT TO:<b@example.test>")))
    end)

    it("sent as soon as the daemon is ready kills no process", function()
      local d = start()
      D.writefile(d.config, D.readfile(d.config) .. REJECT_BLOCKED)
      assert.is_truthy(d:signal("HUP"))
      assert.is_truthy(d:wait_log("event=reloaded", 5))
      t.sleep(0.5)
      assert.is_nil(d:log():match("event=%S+_died[^\n]*"))
      assert.is_nil(d:log():match("event=%S+_exited[^\n]*"))
    end)

    it("with a broken configuration logs event=reload_failed and keeps serving the old one", function()
      local d = start{ policies = REJECT_BLOCKED }
      local good = D.readfile(d.config)
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))

      D.writefile(d.config, good .. "\nthis is not lua\n")
      assert.is_truthy(d:signal("HUP"))
      assert.is_truthy(d:wait_log("event=reload_failed[^\n]*indimail%.lua:%d+:", 5),
        "reload_failed names the file and line")
      t.sleep(0.2)
      assert.equal(0, d:count_log("event=reloaded"), "the workers were not told to reload")

      -- the open session and a new one still run the old hooks
      assert.equal(550, (c:cmd("RCPT TO:<blocked@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
      local c2 = d:session()
      assert.equal(250, (c2:cmd("MAIL FROM:<a@example.test>")))
      assert.equal(550, (c2:cmd("RCPT TO:<blocked@example.test>")))
      assert.equal(250, (c2:cmd("RSET")))
      assert.equal(250, (c2:transaction("a@example.test", { "b@example.test" }, MSG)))

      -- and a later good configuration is picked up again
      D.writefile(d.config, good:gsub("Blocked by the new configuration", "Blocked again"))
      d:signal("HUP")
      assert.is_truthy(d:wait_log("event=reloaded", 5))
      local c3 = d:session()
      c3:cmd("MAIL FROM:<a@example.test>")
      assert.equal("550 5.7.1 Blocked again", select(2, c3:cmd("RCPT TO:<blocked@example.test>")))
    end)
  end)

  describe("a worker killed with SIGKILL in the middle of DATA", function()
    it("drops that connection; the master starts a new worker; nothing half-written remains", function()
      local d = start{ workers = 1 }
      local pids = d:worker_pids()
      assert.equal(1, #pids)
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
      c:send("Subject: half\r\n\r\nthe first half of the message\r\n")
      assert.is_true(c:silent_for(0.2))   -- the worker has it, and waits for more

      assert.is_truthy(t.kill(pids[1], "KILL"))

      local code, err = c:reply()
      assert.is_nil(code)
      assert.is_true(err == "closed" or err:match("reset") ~= nil, "connection dropped, got " .. tostring(err))
      assert.is_truthy(d:wait_log("event=worker_died index=0 pid=" .. pids[1] .. " signal=9", 5))
      local new = D.eventually(function()
        local p = d:worker_pids()
        return #p == 1 and p[1] ~= pids[1] and p[1]
      end, 5)
      assert.is_truthy(new, "a new worker was started")
      assert.is_truthy(D.eventually(function() return d:count_log("event=worker_start index=0") >= 2 end, 5))

      assert.same({}, d:queue_files(), "no message was queued")
      assert.same({}, d:tmp_files(), "no file left under tmp/")

      local c2 = d:session()
      local code2, text2 = c2:transaction("a@example.test", { "b@example.test" }, MSG)
      assert.equal(250, code2, text2)
      assert.equal(1, #d:queue_files())
    end)
  end)

  describe("kill -9 of every process right after 250", function()
    it("keeps the acknowledged message complete; a new daemon on the same directory lists it", function()
      local d = start()
      local lines = {}
      for i = 1, 2000 do lines[i] = ("line %04d of a message that must survive intact"):format(i) end
      local body = table.concat(lines, "\r\n") .. "\r\n"
      local c = d:session("crash.client.test")
      local code, text = c:transaction("sender@example.test", { "rcpt@example.test" },
        "From: sender@example.test\r\nSubject: durable\r\n\r\n" .. body)
      assert.equal(250, code, text)
      local id = text:match("queued as (%w+)")
      assert.is_truthy(id)

      d:kill9()
      c:close()

      -- a new daemon on the same configuration and directories
      d:restart()

      local env, msg = d:queued(id)
      assert.is_truthy(env, "the message file is there")
      assert.matches("^IMQ1\n", env)
      assert.matches("\nid " .. id .. "\n", env, 1, true)
      assert.matches("\nsender sender@example.test\n", env, 1, true)
      assert.matches("\nrcpt rcpt@example.test\n", env, 1, true)
      local want = "From: sender@example.test\nSubject: durable\n\n" .. body:gsub("\r\n", "\n")
      assert.matches("^Received: ", msg)
      assert.equal(want, msg:sub(-#want), "the whole message, byte for byte")
      assert.same({}, d:tmp_files())

      local out, rc = d:queue_list()
      assert.equal(0, rc, out)
      assert.matches(id .. "[^\n]*<sender@example%.test>", out)
      assert.matches("<rcpt@example%.test>", out)
      assert.matches("1 message in the queue", out, 1, true)

      -- and it serves
      local c2 = d:connect()
      assert.equal(220, (c2:reply()))
    end)
  end)

  describe("SIGTERM", function()
    it("closes an idle session with 421 4.3.2 and the master exits 0 within seconds", function()
      local d = start()
      local c = d:session()
      local t0 = t.now()
      assert.is_truthy(d:signal("TERM"))
      local code, text = c:reply()
      assert.equal(421, code, text)
      assert.matches("^421 4%.3%.2 ", text)
      assert.is_true(c:closed_by_server(3))
      local how, rc = d:wait_exit(10)
      assert.same({ "exited", 0 }, { how, rc })
      assert.is_true(t.now() - t0 < 3, ("took %.2fs"):format(t.now() - t0))
    end)

    it("lets a session in the middle of DATA finish its message (250), then closes it with 421", function()
      local d = start()
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
      c:send("Subject: draining\r\n\r\nfirst half\r\n")

      assert.is_truthy(d:signal("TERM"))
      assert.is_truthy(d:wait_event("draining", { "sessions=" }, true))  -- the worker's, not the queue manager's
      assert.is_true(c:silent_for(0.3), "nothing is said in the middle of DATA")

      c:send("second half\r\n.\r\n")
      local code, text = c:reply()
      assert.equal(250, code, text)
      local id = text:match("queued as (%w+)")
      local code2, text2 = c:reply()
      assert.equal(421, code2, text2)
      assert.matches("^421 4%.3%.2 ", text2)
      assert.is_true(c:closed_by_server(3))

      local how, rc = d:wait_exit(10)
      assert.same({ "exited", 0 }, { how, rc })
      local _, msg = d:queued(id)
      assert.matches("\n\nfirst half\nsecond half\n$", msg)
    end)

    it("stops promptly even when it arrives while a dead worker is being replaced", function()
      local d = start{ workers = 1 }
      local old = d:worker_pids()[1]
      assert.is_truthy(t.kill(old, "KILL"))
      -- the worker died young: the master pauses 1s before replacing it
      assert.is_truthy(d:wait_log("event=worker_died", 5))
      t.sleep(0.3)
      local t0 = t.now()
      assert.is_truthy(d:signal("TERM"))
      local how, rc = d:wait_exit(15)
      assert.same({ "exited", 0 }, { how, rc })
      assert.is_true(t.now() - t0 < 4, ("took %.2fs"):format(t.now() - t0))
      assert.is_truthy(d:log():match("event=worker_exit reason=drained"), "the new worker drained, it was not killed")
    end)

    it("does not leave a connection made during the drain hanging without a greeting", function()
      local d = start()
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<a@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<b@example.test>")))
      assert.equal(354, (c:cmd("DATA")))   -- keeps the worker draining
      d:signal("TERM")
      assert.is_truthy(d:wait_event("draining", { "sessions=" }, true))  -- the worker's, not the queue manager's
      -- refused outright, or greeted with 421 (RFC 5321 3.8): both are fine
      local ok, late = pcall(D.connect, d.ports.smtp)
      if ok then
        defer(function() late:close() end)
        late.s:settimeout(1)
        local code, err = late:reply()
        assert.is_true(code == 421 or err == "closed", "got " .. tostring(code or err))
      end
      c:send(MSG .. ".\r\n")
    end)
  end)
end)

-- The directory answering later (src/directory/directory.h): with the test
-- hook INDIMAIL_DIRECTORY_DEFER=1 in indimaild's environment the config
-- backend answers every lookup on the next loop turn (and is cached like a
-- remote backend), so these sessions take the asynchronous path of the
-- RCPT check, of the alias expansion at the end of DATA and of local
-- delivery's mailbox check. The answers must be those of the synchronous
-- path, in order, and a client that leaves mid-lookup harms nobody.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")

local DEFER = { INDIMAIL_DIRECTORY_DEFER = "1" }
local USERS = "users = { 'alice@example.test', 'bob@example.test' },"
  .. " aliases = { ['team@example.test'] = { 'alice@example.test', 'bob@example.test' } }"

local function message(subject)
  return "From: someone@example.test\r\nSubject: " .. subject
    .. "\r\n\r\nbody of " .. subject .. "\r\n"
end

local function tail(d) return d:log():sub(-4000) end

local function start(o)
  o.env = o.env or DEFER
  o.mailboxes = o.mailboxes or USERS
  return D.start_for_test(o)
end

-- RCPT in a fresh transaction; returns code, text.
local function rcpt(d, address)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<someone@example.test>")))
  return c:cmd("RCPT TO:<" .. address .. ">")
end

describe("a directory that answers later", function()
  after_each(cleanup.run)

  it("refuses an unknown user with 550 5.1.1 and accepts a known one with 250", function()
    local d = start{}
    local code, text = rcpt(d, "ghost@example.test")
    assert.equal(550, code, text)
    assert.matches("^550 5%.1%.1 ", text)
    code, text = rcpt(d, "alice@example.test")
    assert.equal(250, code, text)
    code, text = rcpt(d, "ALICE@example.test")   -- the cache compares without case
    assert.equal(250, code, text)
  end)

  it("refuses relaying to a remote domain with 554 5.7.1", function()
    local d = start{}
    local code, text = rcpt(d, "x@remote.test")
    assert.equal(554, code, text)
    assert.matches("^554 5%.7%.1 ", text)
  end)

  it("delivers mail for an alias to its targets", function()
    local d = start{ deliver = true }
    local qid = d:send("someone@example.test", { "team@example.test" }, message("to the team"))
    assert.is_truthy(maildir.wait(d, "alice", 1, 5), tail(d))
    assert.is_truthy(maildir.wait(d, "bob", 1, 5), tail(d))
    assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
  end)

  it("answers 451 4.3.0 after the dot when the aliases loop", function()
    -- INDIMAIL_DIRECTORY_LOOPS=1 lets the looping configuration load.
    local d = start{ env = { INDIMAIL_DIRECTORY_DEFER = "1", INDIMAIL_DIRECTORY_LOOPS = "1" },
      mailboxes = "aliases = { ['a@example.test'] = 'b@example.test',"
        .. " ['b@example.test'] = 'a@example.test' }" }
    local c = d:session()
    local code, text = c:transaction("someone@example.test", { "a@example.test" }, message("loop"))
    assert.equal(451, code, text)
    assert.matches("^451 4%.3%.0 ", text)
    assert.equal(250, (c:cmd("RSET")))   -- the session goes on
  end)

  it("keeps the replies of pipelined RCPTs in order", function()
    local d = start{}
    local c = d:session()
    c:send("MAIL FROM:<someone@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
      .. "RCPT TO:<ghost@example.test>\r\nRCPT TO:<team@example.test>\r\n"
      .. "RCPT TO:<x@remote.test>\r\nRCPT TO:<bob@example.test>\r\n")
    local want = { 250, 250, 550, 250, 554, 250 }
    for i, w in ipairs(want) do
      local code, text = c:reply()
      assert.equal(w, code, "reply " .. i .. ": " .. tostring(text))
    end
  end)

  it("survives clients that leave while lookups and expansions are pending", function()
    local d = start{ deliver = true }
    for _ = 1, 5 do
      local c = d:session()
      c:send("MAIL FROM:<someone@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
        .. "RCPT TO:<team@example.test>\r\nRCPT TO:<ghost@example.test>\r\n")
      c:close()
    end
    for _ = 1, 3 do   -- gone right after the dot: the expansion is in flight
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<someone@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<team@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
      c:send(message("left") .. ".\r\n")
      c:close()
    end
    local qid = d:send("someone@example.test", { "alice@example.test" }, message("after"))
    assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
    assert.is_nil(d:log():find("worker_died", 1, true), tail(d))
  end)
end)

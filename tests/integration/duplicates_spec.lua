-- lua/policies/duplicates.lua on a real daemon with swaks: a repeat of a
-- Message-ID to the same recipient is answered 250 and never delivered;
-- a repeat to one of two recipients reaches only the new one.
local D = require("daemon")
local cleanup = require("cleanup")
local swaks = require("swaks")
local maildir = require("maildir")

local function send(d, to, id)
  local out, rc, qid = swaks(d, ("--from joe@sender.test --to %s --header 'Message-Id: %s'"):format(to, id))
  assert.are.equal(0, rc, out)
  assert.truthy(qid, out)
  return qid
end

describe("duplicates policy over SMTP", function()
  after_each(cleanup.run)

  it("delivers a Message-ID once per recipient within the window", function()
    local d = D.start_for_test{ deliver = true,
      mailboxes = "users = { 'alice@example.test', 'bob@example.test' }",
      policies = 'indimail.policy("duplicates", { window = 600 })' }
    send(d, "alice@example.test", "<dup-1@sender.test>")
    assert.truthy(maildir.wait(d, "alice", 1))
    -- the same message again: 250, discarded, logged
    send(d, "alice@example.test", "<dup-1@sender.test>")
    assert.truthy(d:wait_log("event=discarded ", 3))
    assert.truthy(d:wait_log("event=duplicate [^\n]*action=discard", 2))
    assert.truthy(d:log():find("message_id=<dup-1@sender.test>", 1, true))
    -- to alice and bob: only bob's copy is new
    send(d, "alice@example.test,bob@example.test", "<dup-1@sender.test>")
    assert.truthy(maildir.wait(d, "bob", 1))
    assert.truthy(d:wait_log("event=duplicate [^\n]*action=removed", 3))   -- tx:remove_rcpt
    -- another Message-ID goes through
    send(d, "alice@example.test", "<dup-2@sender.test>")
    assert.truthy(maildir.wait(d, "alice", 2))
    D.sh("sleep 0.5")
    assert.are.equal(2, #maildir.new_files(d, "alice"))
    assert.are.equal(1, #maildir.new_files(d, "bob"))
  end)
end)

-- lua/policies/blackhole.lua and quarantine.lua on a real daemon that
-- delivers: blackholed mail is answered 250 and leaves no file in the
-- queue and no delivery; a recipient after a kept one is dropped at route;
-- a quarantined message reaches the quarantine mailbox only.
local D = require("daemon")
local cleanup = require("cleanup")
local swaks = require("swaks")
local maildir = require("maildir")

local function start()
  return D.start_for_test{ deliver = true,
    mailboxes = "users = { 'alice@example.test', 'bob@example.test', 'quarantine@example.test',"
      .. " 'trap-1@example.test', 'trap-2@example.test', 'trap-9@example.test' }",
    policies = [[
      indimail.policy("blackhole", { senders = { "*@spam.example" }, recipients = { "trap-*@example.test" } })
      indimail.policy("quarantine", { address = "quarantine@example.test",
        headers = { Subject = { "*invoice*overdue*" } } })
    ]] }
end

-- Every file under the queue (but the queue manager's lock) and the
-- Maildirs: the folders stay, no file may appear.
local function files(d, sub)
  return (D.sh(("find %s/%s -type f ! -name qmgr.lock ! -name retry.idx"):format(d.dir, sub)))
end

describe("blackhole policy over SMTP", function()
  after_each(cleanup.run)

  it("answers 250 to mail for blackholed recipients only and writes nothing to the queue", function()
    local d = start()
    local out, rc, qid = swaks(d, "--from joe@ok.test --to trap-1@example.test,trap-2@example.test")
    assert.are.equal(0, rc, out)
    assert.truthy(qid, out)
    assert.truthy(d:wait_log("event=discarded [^\n]*", 3))
    assert.truthy(d:log():find("event=blackhole [^\n]*address=trap%-1@example%.test"))
    assert.are.equal("", files(d, "queue"))
    D.sh("sleep 0.3")
    assert.are.equal("", files(d, "maildirs"))
  end)

  it("drops a blackholed sender's message at MAIL", function()
    local d = start()
    local out, rc = swaks(d, "--from bulk@spam.example --to alice@example.test")
    assert.are.equal(0, rc, out)
    assert.truthy(d:wait_log("event=blackhole [^\n]*what=sender", 2) or d:wait_log("what=sender", 2))
    assert.truthy(d:wait_log("event=discarded ", 2))
    assert.are.equal("", files(d, "queue"))
    assert.are.equal(0, #maildir.new_files(d, "alice"))
  end)

  it("defers a kept recipient after blackholed ones with 452, and drops one after a kept one at route", function()
    local d = start()
    local c = d:session()
    assert.are.equal(250, (c:cmd("MAIL FROM:<joe@ok.test>")))
    assert.are.equal(250, (c:cmd("RCPT TO:<trap-1@example.test>")))
    local code, text = c:cmd("RCPT TO:<alice@example.test>")
    assert.are.equal(452, code)
    assert.matches("4%.5%.3 Too many recipients for this transaction", text)
    c:cmd("RSET")
    local out, rc = swaks(d, "--from joe@ok.test --to alice@example.test,trap-9@example.test")
    assert.are.equal(0, rc, out)
    assert.truthy(maildir.wait(d, "alice", 1))
    assert.truthy(d:wait_log("what=route", 3))
    D.sh("sleep 0.3")
    assert.are.equal(0, #maildir.new_files(d, "trap-9"))
  end)
end)

describe("quarantine policy over SMTP", function()
  after_each(cleanup.run)

  it("delivers a matching message to the quarantine mailbox only, with the reason", function()
    local d = start()
    local out, rc = swaks(d, "--from joe@ok.test --to alice@example.test,bob@example.test"
      .. " --header 'Subject: your invoice is overdue'")
    assert.are.equal(0, rc, out)
    local q = maildir.wait(d, "quarantine", 1)
    assert.truthy(q)
    local text = D.readfile(q[1])
    assert.matches("X%-Quarantine%-Reason: policy quarantine: header Subject", text)
    assert.matches("X%-Quarantine%-Recipients: <alice@example%.test>,\n\t<bob@example%.test>", text)
    assert.truthy(d:wait_log("event=quarantine_rule [^\n]*", 2) or d:wait_log("event=quarantine_rule", 2))
    assert.truthy(d:wait_log("event=quarantined ", 2))
    assert.are.equal(0, #maildir.new_files(d, "alice"))
    assert.are.equal(0, #maildir.new_files(d, "bob"))
  end)
end)

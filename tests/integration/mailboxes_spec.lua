-- Which local addresses are mailboxes (docs/delivery.md): the postmaster
-- address is a mailbox of its own unless it is redirected, and the targets
-- of a catch-all are not caught by it again, so minimal configurations
-- have no alias loop.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local dsn = require("dsn")

-- ---- helpers -------------------------------------------------------------

local function message(subject, extra_headers)
  return "From: someone@example.test\r\n" .. (extra_headers or "") .. "Subject: " .. subject
    .. "\r\n\r\nbody of " .. subject .. "\r\n"
end

-- A message that local delivery to alice bounces (5.4.6: already delivered).
local function looping(subject)
  return message(subject, "Delivered-To: alice@example.test\r\n")
end

local function exists(path)
  return D.sh("test -e " .. path .. " && echo yes"):match("yes") ~= nil
end

local function folder(d, localpart, domain)
  return d.dir .. "/maildirs/" .. (domain or "example.test") .. "/" .. localpart
end

local function tail(d) return d:log():sub(-4000) end

-- RCPT in a fresh transaction; returns code, text.
local function rcpt(d, address)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<someone@example.test>")))
  return c:cmd("RCPT TO:<" .. address .. ">")
end

-- ---- the specification ---------------------------------------------------

describe("mailboxes", function()
  after_each(cleanup.run)

  describe("the postmaster address", function()
    -- exactly: mailboxes = { root = ..., postmaster = "postmaster@example.test" }
    local PM = "postmaster = \"postmaster@example.test\""

    it("with no users list is a mailbox of its own: postmaster@example.test is delivered to its Maildir", function()
      local d = D.start_for_test{ deliver = true, mailboxes = PM }
      local qid = d:send("someone@example.test", { "postmaster@example.test" }, message("to pm"))
      local files = maildir.wait(d, "postmaster", 1, 5)
      assert.is_truthy(files, tail(d))
      assert.matches("^Return%-Path: <someone@example%.test>\nDelivered%-To: postmaster@example%.test\n",
        D.readfile(files[1]))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
    end)

    it("takes mail for the bare <Postmaster> into the same Maildir", function()
      local d = D.start_for_test{ deliver = true, mailboxes = PM }
      local qid = d:send("someone@example.test", { "Postmaster" }, message("to bare pm"))
      local files = maildir.wait(d, "postmaster", 1, 5)
      assert.is_truthy(files, tail(d))
      assert.matches("\nDelivered%-To: postmaster@example%.test\n", D.readfile(files[1]))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
    end)

    it("with users listed is a mailbox of its own when it is no user and no alias", function()
      local d = D.start_for_test{ deliver = true, mailboxes = "users = { 'alice@example.test' }" }
      local qid = d:send("alice@example.test", { "postmaster@local.test" }, message("to the postmaster"))
      local files = maildir.wait(d, "postmaster", 1, 5)
      assert.is_truthy(files, tail(d))
      assert.matches("^Return%-Path: <alice@example%.test>\nDelivered%-To: postmaster@example%.test\n",
        D.readfile(files[1]))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
    end)
  end)

  describe("a catch-all", function()
    it("takes any local part to its target, which it does not catch again (no users list)", function()
      local d = D.start_for_test{ deliver = true, mailboxes = "aliases = { ['@example.test'] = 'carol@example.test' }" }
      local qid = d:send("someone@example.test", { "x/y@example.test" }, message("caught"))
      assert.is_truthy(maildir.wait(d, "carol", 1, 5), tail(d))
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
    end)
  end)
end)

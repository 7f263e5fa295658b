-- Which local addresses are mailboxes (docs/delivery.md): the postmaster
-- address is a mailbox of its own unless it is redirected, and the targets
-- of a catch-all are not caught by it again, so minimal configurations
-- have no alias loop.
-- With mailboxes.users listed, only the users and the postmaster address
-- have a Maildir: local delivery to anything else fails with 5.1.1 and
-- creates none.
-- With no users list, every local part that can be a folder name is a
-- mailbox; the others are refused at RCPT with 550 5.1.3, never accepted
-- and bounced later to a sender that can be forged.
-- The configuration check refuses an alias that does not lead to
-- mailboxes, an alias loop, and names that cannot be Maildirs.
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

  describe("with mailboxes.users listed", function()
    local USERS = "users = { 'alice@example.test', 'bob@example.test', 'pm@example.test' },"
      .. " aliases = { ['team@example.test'] = { 'alice@example.test', 'bob@example.test' } },"
      .. " postmaster = 'pm@example.test'"

    it("a bounce to a local sender who is not a user fails with 5.1.1, becomes a double bounce "
      .. "to the postmaster, and creates no Maildir", function()
      local d = D.start_for_test{ deliver = true, mailboxes = USERS }
      local qid = d:send("ghost@example.test", { "alice@example.test" }, looping("from a ghost"))
      local bqid = d:wait_log("event=bounce_queued qid=" .. qid .. " bounce_qid=(%w+) to=ghost@example%.test", 5)
      assert.is_truthy(bqid, tail(d))
      local line = d:wait_log("(event=bounced qid=" .. bqid .. " to=ghost@example%.test[^\n]*)", 5)
      assert.is_truthy(line, tail(d))
      assert.matches("reply=\"550 5%.1%.1 ", line)
      local files = maildir.wait(d, "pm", 1, 5)
      assert.is_truthy(files, "a double bounce for the postmaster; log:\n" .. tail(d))
      local r = dsn.read(D.readfile(files[1]))
      assert.equal("rfc822; ghost@example.test", r[1]["final-recipient"])
      assert.equal("5.1.1", r[1]["status"])
      assert.is_false(exists(folder(d, "ghost")), "no Maildir for ghost")
    end)

    it("a recipient routed to local delivery that is not a user is bounced with 5.1.1, "
      .. "and no Maildir is created", function()
      local d = D.start_for_test{ deliver = true, mailboxes = USERS, relay_from = "'127.0.0.1'",
        policies = [[
indimail.hook("route", function(session, tx, rcpt)
  if rcpt == "x@remote.test" then return indimail.route_local() end
end)
]] }
      local qid = d:send("alice@example.test", { "x@remote.test" }, message("routed here"))
      local line = d:wait_log("(event=bounced qid=" .. qid .. " to=x@remote%.test[^\n]*)", 5)
      assert.is_truthy(line, tail(d))
      assert.matches("reply=\"550 5%.1%.1 ", line)
      local files = maildir.wait(d, "alice", 1, 5)
      assert.is_truthy(files, "a bounce for alice; log:\n" .. tail(d))
      assert.equal("5.1.1", dsn.read(D.readfile(files[1]))[1]["status"])
      assert.is_false(exists(folder(d, "x", "remote.test")), "no Maildir for x@remote.test")
    end)

    it("a bounce to a sender that is an alias reaches the alias's users", function()
      local d = D.start_for_test{ deliver = true, mailboxes = USERS }
      local qid = d:send("team@example.test", { "alice@example.test" }, looping("from the team"))
      assert.is_truthy(d:wait_log("event=bounced qid=" .. qid, 5), tail(d))
      local a, b = maildir.wait(d, "alice", 1, 5), maildir.wait(d, "bob", 1, 5)
      assert.is_truthy(a and b, "the bounce for alice and bob; log:\n" .. tail(d))
      assert.equal("rfc822; alice@example.test", dsn.read(D.readfile(b[1]))[1]["final-recipient"])
      assert.is_false(exists(folder(d, "team")), "no Maildir for the alias")
    end)

  end)

  describe("names at RCPT with no users list", function()
    it("refuses local parts that can never be a Maildir with 550 5.1.3 and a clear text", function()
      local d = D.start_for_test{}
      for _, bad in ipairs({ '"a/b"@example.test', "x/y@example.test", '"../../x"@example.test',
          '".hidden"@example.test', '"a b"@example.test', "a%b@example.test" }) do
        local code, text = rcpt(d, bad)
        assert.equal(550, code, bad .. ": " .. tostring(text))
        assert.matches("^550 5%.1%.3 ", text)
        assert.matches("mailbox name", text, 1, true)
      end
      -- non-ASCII never passes the address syntax (no SMTPUTF8)
      local code, text = rcpt(d, "jos\xc3\xa9@example.test")
      assert.equal(501, code, text)
    end)

    it("accepts and delivers names made of letters, digits and . _ + - =", function()
      local d = D.start_for_test{ deliver = true }
      local qid = d:send("someone@example.test", { "First.Last+tag_1-x=y@example.test" }, message("good name"))
      assert.is_truthy(d:wait_log("event=delivered qid=" .. qid, 5), tail(d))
      assert.equal(1, #maildir.new_files(d, "first.last+tag_1-x=y"))
    end)

    it("bounces nothing for a refused name: the valid recipients of the message are delivered", function()
      local d = D.start_for_test{ deliver = true }
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<victim@remote.test>")))
      assert.equal(550, (c:cmd("RCPT TO:<x/y@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<good@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
      c:send(message("one bad name") .. ".\r\n")
      local code, text = c:reply()
      assert.equal(250, code, text)
      local qid = text:match("queued as (%w+)")
      assert.is_truthy(d:wait_log("event=removed qid=" .. qid, 5), tail(d))
      assert.equal(1, #maildir.new_files(d, "good"))
      assert.equal(0, d:count_log("event=bounce"), tail(d))
    end)

  end)

  describe("configuration check (indimaild -t)", function()
    local function check(mailboxes)
      local dir = D.scratch_dir("mb")
      local file = dir .. "/indimail.lua"
      D.writefile(file, "indimail.config {\n  hostname = 'mx.test.example',\n"
        .. "  listen = { { port = 0 } },\n  local_domains = { 'example.test', 'local.test' },\n"
        .. "  mailboxes = { " .. mailboxes .. " },\n}\n")
      return D.sh(D.bin .. "/indimaild -t -c " .. file)
    end

    it("refuses an alias to a local address that is neither a user, an alias nor the postmaster, "
      .. "naming the alias and the target", function()
      local out, code = check("users = { 'alice@example.test' },"
        .. " aliases = { ['team@example.test'] = { 'alice@example.test', 'carol@example.test' } }")
      assert.equal(1, code, out)
      assert.matches("mailboxes.aliases['team@example.test']", out, 1, true)
      assert.matches("'carol@example.test'", out, 1, true)
      assert.matches("not a mailbox", out, 1, true)
    end)

    it("accepts alias targets that are users, aliases, the postmaster or remote addresses", function()
      local out, code = check("users = { 'alice@example.test' }, postmaster = 'pm@example.test',"
        .. " aliases = { ['team@example.test'] = { 'alice@example.test', 'all@example.test',"
        .. " 'pm@example.test', 'postmaster@local.test', 'friend@remote.test' },"
        .. " ['all@example.test'] = 'alice@example.test' }")
      assert.equal(0, code, out)
      assert.matches("configuration OK", out, 1, true)
    end)

    it("refuses aliases that loop, and a catch-all to a local address that is not a mailbox", function()
      local out, code = check("aliases = { ['a@example.test'] = 'b@example.test',"
        .. " ['b@example.test'] = { 'a@example.test', 'friend@remote.test' } }")
      assert.equal(1, code, out)
      assert.matches("alias loop", out, 1, true)
      out, code = check("users = { 'alice@example.test' }, aliases = { ['@example.test'] = 'carol@example.test' }")
      assert.equal(1, code, out)
      assert.matches("mailboxes.aliases['@example.test']: 'carol@example.test' is not a mailbox", out, 1, true)
    end)

    it("refuses a user, an alias target or a postmaster whose name cannot be a Maildir", function()
      local out, code = check("users = { 'a/b@example.test' }")
      assert.equal(1, code, out)
      assert.matches("'a/b@example.test'", out, 1, true)
      out, code = check("aliases = { ['x@example.test'] = 'y/z@example.test' }")
      assert.equal(1, code, out)
      assert.matches("mailboxes.aliases['x@example.test']", out, 1, true)
      assert.matches("'y/z@example.test'", out, 1, true)
      out, code = check("postmaster = '.pm@example.test'")
      assert.equal(1, code, out)
      assert.matches("mailboxes.postmaster", out, 1, true)
    end)
  end)
end)

-- Editing the message and the envelope from the data and message hooks
-- (docs/lua.md "Editing the message"): headers added, removed and replaced,
-- recipients added (BCC), removed and replaced, the sender changed, a
-- disclaimer appended to text/plain and to the right parts of a
-- multipart/alternative (checked with Python's email package), a
-- multipart/signed message left byte for byte, and invalid edits refused
-- with a 451 and a log line. Each is checked in the delivered Maildir file.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local t = D.t

local USERS = "users = { 'alice@example.test', 'bob@example.test',"
  .. " 'carol@example.test', 'audit@example.test' }, postmaster = 'alice@example.test'"

local function start(policies)
  return D.start_for_test({ deliver = true, mailboxes = USERS, policies = policies })
end

-- The file delivered to user for queue id qid (its Received line names it).
local function delivered(d, user, qid, timeout)
  local got = D.eventually(function()
    for _, f in ipairs(maildir.new_files(d, user)) do
      local s = D.readfile(f)
      if s and s:find("id " .. qid, 1, true) then return { s, f } end
    end
  end, timeout or 5)
  if got then return got[1], got[2] end
end

local function plain(subject, body)
  return "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: "
    .. subject .. "\r\nX-Old: one\r\nX-Old: two\r\n\r\n" .. (body or "hello\r\n")
end

-- Runs python3 over a delivered file; returns its output.
local function python(d, file, script)
  local py = d.dir .. "/check.py"
  local f = assert(io.open(py, "w"))
  f:write(script)
  f:close()
  return D.sh("/usr/bin/python3 " .. py .. " " .. file .. " 2>&1")
end

local function refused(d, rcpt, message)
  local c = d:session()
  local code, text = c:transaction("bob@example.test", { rcpt or "alice@example.test" },
    message or plain("bad"))
  c:cmd("QUIT")
  return code, text
end

describe("editing the message", function()
  after_each(cleanup.run)

  describe("headers", function()
    it("adds at the top (default) and at the bottom, removes all, replaces the first", function()
      local d = start([[
        indimail.hook("data", function(s, tx, m)
          m:add_header("X-Scanned", "yes")
          m:add_header("X-Tail", "folded\n\tline", "append")
          tx.notes.removed = m:remove_header("x-old")
        end, "hdr")
        indimail.hook("message", function(s, tx, m)
          indimail.log("removed", { n = tx.notes.removed })
          assert(m:replace_header("Subject", "[ext] edited") == 1)
          assert(m:replace_header("X-New", "made") == 0)
        end, "hdr2")]])
      local qid = d:send("bob@example.test", { "alice@example.test" }, plain("hi"))
      local got = delivered(d, "alice", qid)
      assert.is_truthy(got, d:log())
      local hdr = got:match("^(.-)\n\n")
      assert.matches("\nX%-New: made\nX%-Scanned: yes\nFrom: bob@example%.test\n", hdr)
      assert.matches("\nSubject: %[ext%] edited\n", hdr)
      assert.matches("\nX%-Tail: folded\n\tline$", hdr)
      assert.is_nil(hdr:find("X-Old", 1, true))
      assert.matches("\n\nhello\n$", got)
      assert.is_truthy(d:wait_log("event=removed .*n=2", 2))
      assert.is_truthy(d:wait_log("event=edit session=%S+ qid=" .. qid .. " policy=hdr kind=header_prepend name=X%-Scanned", 1))
      assert.is_truthy(d:wait_log("kind=header_remove name=x%-old count=2", 1))
      assert.is_truthy(d:wait_log("kind=header_replace name=Subject count=1", 1))
    end)
  end)

  describe("recipients and sender", function()
    it("adds a BCC recipient, removes one, and changes the sender (Return-Path)", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          tx:add_rcpt("audit@example.test")
          assert(tx:remove_rcpt("carol@example.test") == 1)
          assert(tx:remove_rcpt("nobody@example.test") == 0)
          tx:set_sender("bounces@example.test")
          indimail.log("seen", { sender = tx.sender, n = #tx.rcpts })
        end, "env")]])
      local qid = d:send("bob@example.test", { "alice@example.test", "carol@example.test" },
        plain("bcc"))
      local a = delivered(d, "alice", qid)
      assert.is_truthy(a, d:log())
      assert.matches("^Return%-Path: <bounces@example%.test>\n", a)
      assert.is_truthy((delivered(d, "audit", qid)), d:log())
      t.sleep(1)
      assert.equal(0, #maildir.new_files(d, "carol"))
      assert.is_truthy(d:wait_log("event=seen .*sender=bounces@example%.test", 1))
      assert.is_truthy(d:wait_log("event=seen .*n=2", 1))
      assert.is_truthy(d:wait_log("kind=rcpt_add address=audit@example%.test", 1))
      assert.is_truthy(d:wait_log("kind=rcpt_remove address=carol@example%.test count=1", 1), d:log())
      assert.is_truthy(d:wait_log("kind=sender_set address=bounces@example%.test", 1))
    end)

    it("replaces every recipient with set_rcpts (quarantine by hand); the null sender", function()
      local d = start([[
        indimail.hook("data", function(s, tx, m)
          tx:set_rcpts({ "audit@example.test", "AUDIT@example.test" })
          tx:set_sender("")
        end, "env")]])
      local qid = d:send("bob@example.test", { "alice@example.test" }, plain("quar"))
      local got = delivered(d, "audit", qid)
      assert.is_truthy(got, d:log())
      assert.matches("^Return%-Path: <>\n", got)
      t.sleep(1)
      assert.equal(0, #maildir.new_files(d, "alice"))
      assert.equal(1, #maildir.new_files(d, "audit"))
      assert.is_truthy(d:wait_log("kind=rcpts_set count=2", 1))
    end)
  end)

  describe("msg:append_text", function()
    it("appends to a single-part text/plain message", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          assert(m:append_text("--\nDisclaimer: be nice.\n") == 1)
        end, "disc")]])
      local qid = d:send("bob@example.test", { "alice@example.test" }, plain("d", "line 1\r\nline 2\r\n"))
      local got = delivered(d, "alice", qid)
      assert.is_truthy(got, d:log())
      assert.matches("\n\nline 1\nline 2\n%-%-\nDisclaimer: be nice%.\n$", got)
      assert.is_truthy(d:wait_log("kind=append_text result=appended count=1", 1))
    end)

    it("appends to the text/plain and text/html parts of a multipart/alternative inside a multipart/mixed", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          indimail.log("appended", { n = m:append_text("Disclaimer & <terms>") })
        end, "disc")]])
      local m = table.concat({
        "From: bob@example.test", "To: alice@example.test", "Subject: mime",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="outer"', "",
        "preamble", "--outer", 'Content-Type: multipart/alternative; boundary="alt"', "",
        "--alt", "Content-Type: text/plain; charset=us-ascii", "", "plain body", "",
        "--alt", "Content-Type: text/html; charset=us-ascii", "Content-Transfer-Encoding: quoted-printable", "",
        "<html><body><p>html body</p></body></html>", "--alt--", "",
        "--outer", "Content-Type: text/plain", 'Content-Disposition: attachment; filename="a.txt"', "",
        "attached text", "--outer--", "" }, "\r\n")
      local qid = d:send("bob@example.test", { "alice@example.test" }, m)
      local got, file = delivered(d, "alice", qid)
      assert.is_truthy(got, d:log())
      assert.is_truthy(d:wait_log("event=appended .*n=2", 1))
      local out = python(d, file, [[
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
assert m.get_content_type() == 'multipart/mixed', m.get_content_type()
parts = m.get_payload()
assert len(parts) == 2, len(parts)
alt, att = parts
assert alt.get_content_type() == 'multipart/alternative'
p, h = alt.get_payload()
assert p.get_content() == 'plain body\n\nDisclaimer & <terms>', repr(p.get_content())
hc = h.get_content()
assert hc == '<html><body><p>html body</p>Disclaimer &amp; &lt;terms&gt;\n</body></html>', repr(hc)
assert att.get_content() == 'attached text', repr(att.get_content())
print("ok")
]])
      assert.equal("ok\n", out)
    end)

    it("leaves a multipart/signed message intact byte for byte and says so", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          local n, why = m:append_text("Disclaimer")
          indimail.log("appended", { n = n, why = why })
        end, "disc")]])
      local body = table.concat({
        "From: bob@example.test", "To: alice@example.test", "Subject: signed",
        "MIME-Version: 1.0",
        'Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="sig"', "",
        "--sig", "Content-Type: text/plain", "", "signed text", "",
        "--sig", "Content-Type: application/pgp-signature", "",
        "-----BEGIN PGP SIGNATURE-----", "abc", "-----END PGP SIGNATURE-----", "--sig--", "" }, "\r\n")
      local qid = d:send("bob@example.test", { "alice@example.test" }, body)
      local got = delivered(d, "alice", qid)
      assert.is_truthy(got, d:log())
      local want = body:gsub("\r\n", "\n")
      assert.equal(want, got:sub(-#want))
      assert.is_truthy(d:wait_log("event=appended .*why=signed", 1))
      assert.is_truthy(d:wait_log("event=appended .*n=0", 1))
      assert.is_truthy(d:wait_log("kind=append_text result=signed count=0", 1))
    end)

    it("leaves a message alone when any of its Content-Type fields says signed (found by fuzz_mime_text)", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          local n, why = m:append_text("Disclaimer")
          indimail.log("appended", { n = n, why = why })
        end, "disc")]])
      local body = table.concat({
        "From: bob@example.test", "To: alice@example.test", "Subject: two types",
        "Content-Type: multipart/encrypted; boundary=e",
        "Content-Type: text/plain", "", "not to be touched", "" }, "\r\n")
      local qid = d:send("bob@example.test", { "alice@example.test" }, body)
      local got = delivered(d, "alice", qid)
      assert.is_truthy(got, d:log())
      local want = body:gsub("\r\n", "\n")
      assert.equal(want, got:sub(-#want))
      assert.is_truthy(d:wait_log("event=appended .*why=signed", 1))
    end)

    it("puts no HTML text before a </body> on a line starting with -- (found by fuzz_mime_text)", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          indimail.log("appended", { n = m:append_text("x", " <i>note</i>") })
        end, "disc")]])
      local body = table.concat({
        "From: bob@example.test", "To: alice@example.test", "Subject: dash",
        "MIME-Version: 1.0", 'Content-Type: multipart/alternative; boundary="ab"', "",
        "--ab", "Content-Type: text/html", "", "<html><body>hi", "--ab</body></html>",
        "--ab--", "" }, "\r\n")
      local qid = d:send("bob@example.test", { "alice@example.test" }, body)
      local got = delivered(d, "alice", qid)
      assert.is_truthy(got, d:log())
      -- the only delimiter lines are the two that were sent
      local n = 0
      for line in got:gmatch("[^\n]*") do
        if line:match("^%-%-ab%s*$") or line:match("^%-%-ab%-%-") then n = n + 1 end
      end
      assert.equal(2, n, got)
      assert.is_truthy(got:find("--ab</body></html>\n", 1, true), got)
      assert.is_truthy(d:wait_log("event=appended .*n=1", 1))
    end)
  end)

  describe("refused edits", function()
    it("a bad header name, a CRLF injection, a bad address, a body edit at data: 451 and a log line", function()
      local d = start([[
        indimail.hook("data", function(s, tx, m)
          local subj = m:header("Subject")
          if subj == "name" then m:add_header("Bad Name", "x")
          elseif subj == "crlf" then m:add_header("X-Ok", "v\r\nBcc: evil@example.test")
          elseif subj == "lf" then m:replace_header("X-Ok", "v\nBcc: evil@example.test")
          elseif subj == "addr" then tx:add_rcpt("not an address")
          elseif subj == "route" then tx:set_sender("@relay.test:bob@example.test")
          elseif subj == "body" then m:append_text("x")
          elseif subj == "write" then tx.sender = "x@example.test"
          end
        end, "bad")
        indimail.hook("rcpt", function(s, tx, r)
          if r == "carol@example.test" then tx:add_rcpt("audit@example.test") end
        end, "rcptedit")]])
      local cases = {
        { "name", "msg:add_header%(%): a header name is printable ASCII" },
        { "crlf", "msg:add_header%(%): a header value may not hold a CR" },
        { "lf", "msg:replace_header%(%): a header value may hold a line break only as a fold" },
        { "addr", "tx:add_rcpt%(%): not a valid mail address" },
        { "route", "tx:set_sender%(%): not a valid mail address" },
        { "body", "msg:append_text%(%) cannot be used in the data hook %(message hook only%)" },
        { "write", "field 'sender' of tx is read%-only" },
      }
      for _, c in ipairs(cases) do
        local code, text = refused(d, nil, plain(c[1]))
        assert.equal(451, code, c[1] .. ": " .. tostring(text))
        assert.matches("4.3.0", text)
        assert.is_truthy(d:wait_log(c[2], 2), c[1] .. ": " .. d:log())
      end
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<bob@example.test>")))
      assert.equal(451, (c:cmd("RCPT TO:<carol@example.test>")))
      c:cmd("QUIT")
      assert.is_truthy(d:wait_log("tx:add_rcpt%(%) cannot be used in the rcpt hook %(data and message hooks only%)", 2))
      t.sleep(1)
      for _, u in ipairs({ "alice", "carol", "audit" }) do
        assert.equal(0, #maildir.new_files(d, u), u)
      end
    end)

    it("an edit that would pass the envelope ceiling raises", function()
      local d = start([[
        indimail.hook("message", function(s, tx, m)
          local many = {}
          local dom = string.rep("a", 60) .. "." .. string.rep("b", 60) .. "." .. string.rep("c", 60) .. ".test"
          for i = 1, 40000 do many[i] = ("user%05d@"):format(i) .. dom end
          local ok, err = pcall(tx.set_rcpts, tx, many)
          indimail.log("ceiling", { ok = tostring(ok), err = err })
          local ok2, err2 = pcall(tx.add_rcpt, tx, "x@" .. string.rep("a", 300) .. ".test")
          indimail.log("long", { ok = tostring(ok2) })
        end, "big")]])
      local qid = d:send("bob@example.test", { "alice@example.test" }, plain("big"))
      assert.is_truthy(d:wait_log("event=ceiling .*err=\"tx:set_rcpts%(%): the envelope would pass the queue's limit", 2), d:log())
      assert.is_truthy((delivered(d, "alice", qid)), d:log())
    end)
  end)
end)

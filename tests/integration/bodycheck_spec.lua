-- lua/policies/bodycheck.lua over SMTP (swaks and our luasocket client):
-- a pattern in a quoted-printable or base64 text part is found in the
-- decoded text and refused with 554 5.7.1 and its reason; IndiMail's
-- control file format (regex:reason:-header, -bodyblackhole) rejects and
-- discards; a filename rule refuses an attachment by its name; a tag rule
-- adds X-Bodycheck: and the message is delivered with its body byte for
-- byte (the read-only body scan makes no edit); a quarantine rule sends
-- the message to the quarantine mailbox only. Each verdict has its
-- event=bodycheck line.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")
local swaks = require("swaks")

local USERS = "users = { 'alice@example.test', 'q@example.test' }, postmaster = 'alice@example.test'"

local function start(settings)
  return D.start_for_test({ deliver = true, mailboxes = USERS,
    policies = "indimail.policy('bodycheck', " .. settings .. ")" })
end

local function message(headers, body)
  return table.concat(headers, "\r\n") .. "\r\n\r\n" .. body:gsub("\r?\n", "\r\n")
end

local HDR = { "From: bob@ok.test", "To: alice@example.test", "MIME-Version: 1.0" }
local function hdr(...)
  local t = { table.unpack(HDR) }
  for _, h in ipairs({ ... }) do t[#t + 1] = h end
  return t
end

local function send(d, msg)
  local c = d:session()
  local code, text = c:transaction("bob@ok.test", { "alice@example.test" }, msg)
  c:cmd("QUIT")
  return code, text
end

local function delivered(d, user, qid)
  return D.eventually(function()
    for _, f in ipairs(maildir.new_files(d, user)) do
      local s = D.readfile(f)
      if s and s:find("id " .. qid, 1, true) then return s end
    end
  end, 10)
end

-- An event=bodycheck line holding every field given (in any order).
local function logged(d, fields)
  return D.eventually(function()
    for line in d:log():gmatch("[^\n]*event=bodycheck [^\n]*") do
      local all = true
      for k, v in pairs(fields) do all = all and line:find(" " .. k .. "=" .. v, 1, true) ~= nil end
      if all then return line end
    end
  end, 3)
end

local RULES = [[{ rules = {
  { name = "wire", where = "body", pattern = "wire (the )?money", flags = "i",
    reason = "Fraud pattern in the message text" },
  { name = "exe", where = "filename", match = "wildmat", pattern = "*.exe",
    reason = "Executable attachments are refused" },
  { name = "newsletter", where = "header", header = "List-Id", match = "pattern",
    pattern = "news", action = "tag", reason = "newsletter" },
  { name = "invoice", where = "header", header = "Subject", match = "wildmat",
    pattern = "*overdue invoice*", action = "quarantine" },
}, quarantine = "q@example.test" }]]

describe("bodycheck policy", function()
  after_each(cleanup.run)

  it("refuses a pattern in a quoted-printable text part (decoded, across a soft break) with 554 5.7.1, by swaks", function()
    local d = start(RULES)
    local file = d.dir .. "/qp.eml"
    local f = assert(io.open(file, "w"))
    f:write(message(hdr("Subject: hello", "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: quoted-printable"), "Please wire the mo=\nney today=2E\n"))
    f:close()
    local out = swaks(d, "--from bob@ok.test --to alice@example.test --data " .. file)
    assert.is_truthy(out:find("554 5.7.1 Fraud pattern in the message text", 1, true), out)
    assert.is_truthy(logged(d, { rule = "wire", action = "reject", where = "body" }), d:log())
  end)

  it("refuses an attachment by its file name, and finds a pattern in a base64 text part", function()
    local d = start(RULES)
    local mixed = message(hdr("Subject: files", 'Content-Type: multipart/mixed; boundary="b1"'),
      table.concat({ "--b1", "Content-Type: text/plain", "", "see attached", "--b1",
        "Content-Type: application/octet-stream; name=\"x.bin\"",
        "Content-Disposition: attachment; filename=\"Invoice.EXE\"",
        "Content-Transfer-Encoding: base64", "", "TVqQAAMAAAAEAAAA", "--b1--", "" }, "\n"))
    local code, text = send(d, mixed)
    assert.equal(554, code, text)
    assert.is_truthy(text:find("5.7.1 Executable attachments are refused", 1, true), text)
    assert.is_truthy(logged(d, { rule = "exe", action = "reject", where = "filename" }), d:log())
    local b64 = D.sh("printf 'hello\\nWIRE MONEY now\\n' | base64 -w0"):gsub("%s+$", "")
    code, text = send(d, message(hdr("Subject: b64", "Content-Type: text/plain",
      "Content-Transfer-Encoding: base64"), b64 .. "\n"))
    assert.equal(554, code, text)
  end)

  it("tags with X-Bodycheck and delivers the body byte for byte (a read-only scan edits nothing)", function()
    local d = start(RULES)
    local body = "plain words=\nsoft break, caf=C3=A9\n"
    local m = message(hdr("Subject: weekly", "List-Id: <news.example.org>",
      "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"), body)
    local code, text = send(d, m)
    assert.equal(250, code, text)
    local got = delivered(d, "alice", text:match("queued as (%w+)"))
    assert.is_truthy(got, d:log())
    assert.is_truthy(got:find("\nX-Bodycheck: newsletter/newsletter\n", 1, true), got)
    assert.equal(body, got:sub(-#body))
    assert.is_truthy(logged(d, { rule = "newsletter", action = "tag", where = "header" }), d:log())
    assert.is_truthy(d:log():find("kind=filter_body result=unchanged count=0", 1, true), d:log())
  end)

  it("quarantines by a Subject wildmat: the quarantine mailbox only", function()
    local d = start(RULES)
    local code, text = send(d, message(hdr("Subject: Your OVERDUE invoice #12"), "pay\n"))
    assert.equal(250, code, text)
    local got = delivered(d, "q", text:match("queued as (%w+)"))
    assert.is_truthy(got, d:log())
    assert.is_truthy(got:find("X-Quarantine-Reason: bodycheck invoice:", 1, true), got)
    assert.is_truthy(logged(d, { rule = "invoice", action = "quarantine" }), d:log())
  end)

  it("reads IndiMail's bodycheck control file: -header rejects, -bodyblackhole discards", function()
    local dir = D.scratch_dir("bodycheck")
    local f = assert(io.open(dir .. "/bodycheck", "w"))
    f:write("# IndiMail control/bodycheck\n",
      "^Subject:.*viagra:Spam subject:-header\n",
      "lottery win[a-z]*:Lottery scam:-bodyblackhole\n",
      "^Content-Disposition:.*filename=\".*\\.doc\":Prehistoric documents\n")
    f:close()
    local d = start("{ file = '" .. dir .. "/bodycheck' }")
    local code, text = send(d, message(hdr("Subject: cheap VIAGRA"), "hi\n"))
    assert.equal(554, code, text)
    assert.is_truthy(text:find("5.7.1 Spam subject", 1, true), text)
    assert.is_truthy(logged(d, { rule = dir .. "/bodycheck:2", action = "reject" }), d:log())
    code, text = send(d, message(hdr("Subject: news"), "You are a LOTTERY WINNER\n"))
    assert.equal(250, code, text)
    assert.is_truthy(logged(d, { rule = dir .. "/bodycheck:3", action = "discard" }), d:log())
    assert.is_truthy(d:wait_log("event=discarded", 2), d:log())
    -- a body rule is not a header rule: a Subject with the words passes
    code, text = send(d, message(hdr("Subject: lottery winners"), "hi\n"))
    assert.equal(250, code, text)
  end)

  it("scans a 1 MB body with 1,000 rules (compiled once at load) well inside the hook's time", function()
    local d = D.start_for_test({ mailboxes = USERS, policies = [[
      local r = {}
      for i = 1, 1000 do r[i] = { where = "body", pattern = "^forbidden phrase " .. i .. "$" } end
      r[1001] = { name = "last", where = "body", pattern = "^the end$" }
      indimail.policy("bodycheck", { rules = r })]] })
    local body = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do\r\n"):rep(16 * 1024)
    local t0 = D.t.now()
    local code, text = send(d, "Subject: big\r\n\r\n" .. body .. "the end\r\n")
    local took = D.t.now() - t0
    assert.equal(554, code, text)
    assert.is_true(took < 5, ("took %.2f s"):format(took))
    assert.is_truthy(logged(d, { rule = "last", action = "reject" }), d:log())
  end)
end)


-- msg:filter_body (docs/lua.md "Filtering the body"): a message hook
-- streams every text part through a Lua function in decoded chunks; the
-- replacements are encoded back (quoted-printable, base64, as is) and
-- written by the queue write as replaced ranges. Checked on the delivered
-- Maildir file with Python's email package: QP and base64 parts, both
-- parts of a multipart/alternative, a multipart/signed message left byte
-- for byte, a 3 MB body in 64 KiB chunks, the composition with
-- append_text and header edits, and a failing filter or one over the size
-- limit answered 451 with a log line.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")

local USERS = "users = { 'alice@example.test', 'bob@example.test' }, postmaster = 'alice@example.test'"

local function start(policies, limits)
  return D.start_for_test({ deliver = true, mailboxes = USERS, policies = policies,
    limits = limits })
end

local function delivered(d, qid)
  local got = D.eventually(function()
    for _, f in ipairs(maildir.new_files(d, "alice")) do
      local s = D.readfile(f)
      if s and s:find("id " .. qid, 1, true) then return { s, f } end
    end
  end, 10)
  if got then return got[1], got[2] end
end

local function python(d, file, script)
  local py = d.dir .. "/check.py"
  local f = assert(io.open(py, "w"))
  f:write("import email, sys\nfrom email import policy\n"
    .. "m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)\n"
    .. script .. "\nprint('ok')\n")
  f:close()
  return D.sh("/usr/bin/python3 " .. py .. " " .. file .. " 2>&1")
end

local function message(headers, body)
  return table.concat(headers, "\r\n") .. "\r\n\r\n" .. body:gsub("\r?\n", "\r\n")
end

local HDR = { "From: bob@example.test", "To: alice@example.test", "MIME-Version: 1.0" }
local function hdr(...)
  local t = { table.unpack(HDR) }
  for _, h in ipairs({ ... }) do t[#t + 1] = h end
  return t
end

-- A footer on each part's last chunk, and a word replaced everywhere.
local FOOTER = [[
  indimail.hook("message", function(s, tx, m)
    local changed, parts = m:filter_body(function(chunk, part)
      local out = chunk:gsub("secret", "[redacted]")
      if part.last then
        out = out .. (part.type == "text/html" and "<p>Footer \u{e9}</p>" or "\n-- \nFooter \u{e9}\n")
      end
      return out
    end)
    indimail.log("filtered", { changed = changed, parts = parts })
  end, "footer")]]

describe("msg:filter_body", function()
  after_each(cleanup.run)

  it("re-encodes a quoted-printable and a base64 text part and keeps the rest byte for byte", function()
    local d = start(FOOTER)
    local b64 = D.sh("printf 'the secret plan\\nline two\\n' | base64 -w0"):gsub("%s+$", "")
    local body = table.concat({
      "preamble", "--b1", "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: quoted-printable", "",
      "caf=C3=A9 secret=", "soft line", "--b1", "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: base64", "", b64, "--b1",
      "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
      "c2VjcmV0", "--b1--", "epilogue", "" }, "\n")
    local m = message(hdr("Subject: qp", 'Content-Type: multipart/mixed; boundary="b1"'), body)
    local qid = d:send("bob@example.test", { "alice@example.test" }, m)
    local got, file = delivered(d, qid)
    assert.is_truthy(got, d:log())
    assert.is_truthy(d:wait_log("event=filtered .*changed=2", 2), d:log())
    assert.is_truthy(d:wait_log("event=filtered .*parts=2", 1))
    assert.is_truthy(d:wait_log("kind=filter_body result=changed count=2", 1))
    -- the attachment, boundaries and headers as sent
    assert.is_truthy(got:find("\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nc2VjcmV0\n--b1--\nepilogue\n", 1, true), got)
    assert.is_truthy(got:find("\n\npreamble\n--b1\nContent-Type: text/plain; charset=utf-8\n", 1, true), got)
    assert.equal("ok\n", python(d, file, [[
a, b, c = m.get_payload()
assert a.get_content() == 'caf\u00e9 [redacted]soft line\n-- \nFooter \u00e9\n', repr(a.get_content())
assert b.get_content() == 'the [redacted] plan\nline two\n\n-- \nFooter \u00e9\n', repr(b.get_content())
assert c.get_payload(decode=True) == b'secret'
assert m.epilogue.strip() == 'epilogue', repr(m.epilogue)
for line in open(sys.argv[1], 'rb').read().split(b'\n'):
    assert len(line) <= 998]]))
  end)

  it("changes both parts of a multipart/alternative and leaves a multipart/signed message intact", function()
    local d = start(FOOTER)
    local alt = message(hdr("Subject: alt", 'Content-Type: multipart/alternative; boundary="alt"'),
      table.concat({ "--alt", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit", "", "plain secret", "--alt",
        "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "",
        "<html><body>html secret</body></html>", "--alt--", "" }, "\n"))
    local signed = message(hdr("Subject: signed",
      'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary="sig"'),
      table.concat({ "--sig", "Content-Type: text/plain", "", "signed secret", "--sig",
        "Content-Type: application/pgp-signature", "", "sig", "--sig--", "" }, "\n"))
    local q1 = d:send("bob@example.test", { "alice@example.test" }, alt)
    local got, file = delivered(d, q1)
    assert.is_truthy(got, d:log())
    assert.equal("ok\n", python(d, file, [[
p, h = m.get_payload()
assert p.get_content() == 'plain [redacted]\n-- \nFooter \u00e9\n', repr(p.get_content())
assert h.get_content() == '<html><body>html [redacted]</body></html><p>Footer \u00e9</p>', repr(h.get_content())]]))
    local q2 = d:send("bob@example.test", { "alice@example.test" }, signed)
    local got2 = delivered(d, q2)
    assert.is_truthy(got2, d:log())
    local want = signed:gsub("\r\n", "\n")
    assert.equal(want, got2:sub(-#want))
    assert.is_truthy(d:wait_log("kind=filter_body result=signed count=0", 2), d:log())
  end)

  it("streams a 3 MB body in chunks of at most 64 KiB cut at line ends", function()
    local d = start([[
      indimail.hook("message", function(s, tx, m)
        local n, max, bad = 0, 0, 0
        m:filter_body(function(chunk, part)
          n = n + 1
          if #chunk > max then max = #chunk end
          if not part.last and chunk:sub(-1) ~= "\n" then bad = bad + 1 end
          return chunk:upper()
        end)
        indimail.log("chunks", { n = n, max = max, bad = bad })
      end, "upper")]], "message_size = 8388608")
    local line = string.rep("abcdefghij", 7) .. "\n"      -- 71 bytes
    local body = string.rep(line, 45000)                  -- about 3.2 MB
    local qid = d:send("bob@example.test", { "alice@example.test" },
      message(hdr("Subject: big"), body))
    local got = delivered(d, qid)
    assert.is_truthy(got, d:log())
    local want = body:upper()
    assert.equal(#want, #got:match("\n\n(.*)$"))
    assert.is_truthy(got:sub(-#want) == want, "body differs")
    assert.is_truthy(d:wait_log("event=chunks .*n=4[89]", 2), d:log())
    assert.is_truthy(d:wait_log("event=chunks .*max=65[0-5][0-9][0-9]", 1))
    assert.is_truthy(d:wait_log("event=chunks .*bad=0", 1))
  end)

  it("composes with append_text and header edits on the same message", function()
    local d = start([[
      indimail.hook("message", function(s, tx, m)
        m:add_header("X-Filtered", "yes")
        m:append_text("-- appended")
        m:filter_body(function(chunk) return (chunk:gsub("hello", "HELLO")) end)
      end, "both")]])
    local qid = d:send("bob@example.test", { "alice@example.test" },
      message({ "From: bob@example.test", "To: alice@example.test", "Subject: c" },
        "hello world\nsecond hello\n"))
    local got = delivered(d, qid)
    assert.is_truthy(got, d:log())
    assert.matches("\nX%-Filtered: yes\nFrom: bob@example%.test\n", got)
    assert.matches("\n\nHELLO world\nsecond HELLO\n%-%- appended\n$", got)
  end)

  it("answers 451 with a log line when the filter raises or its output passes the size limit", function()
    local d = start([[
      indimail.hook("message", function(s, tx, m)
        local subj = m:header("Subject")
        m:filter_body(function(chunk, part)
          if subj == "raise" then error("filter broke") end
          if subj == "big" then return chunk:rep(6) end
          if subj == "type" then return 42 end
          if subj == "ro" then part.last = false end
          if subj == "8bit" then return "caf\u{e9}\n" end
        end)
      end, "bad")]], "message_size = 20000")
    local cases = {
      { "raise", "filter broke" },
      { "big", "would pass the message size limit %(limits.message_size%)" },
      { "type", "the function returned a number" },
      { "ro", "read%-only" },
      { "8bit", "must be ASCII" },
    }
    for _, c in ipairs(cases) do
      local s = d:session()
      local code, text = s:transaction("bob@example.test", { "alice@example.test" },
        message({ "From: bob@example.test", "Subject: " .. c[1] }, string.rep("x", 70) .. "\n"
          .. string.rep("y\n", 2000)))
      s:cmd("QUIT")
      assert.equal(451, code, c[1] .. ": " .. tostring(text))
      assert.is_truthy(d:wait_log("event=hook_error .*" .. c[2], 2), c[1] .. ": " .. d:log())
    end
    assert.equal(0, #maildir.new_files(d, "alice"))
  end)

  it("msg:parts() lists every leaf part with its file name, inside signed messages too", function()
    local d = start([[
      indimail.hook("message", function(s, tx, m)
        for i, p in ipairs(m:parts()) do
          indimail.log("part", { i = i, type = p.type, filename = p.filename or "-",
            encoding = p.encoding, size = p.size, signed = tostring(p.signed) })
        end
      end, "parts")]])
    local body = table.concat({ "--s", 'Content-Type: multipart/mixed; boundary="m"', "",
      "--m", "Content-Type: text/plain; charset=utf-8", "", "hi", "--m",
      'Content-Type: application/octet-stream; name="ignored.bin"',
      "Content-Disposition: attachment;", " filename*=utf-8''r%C3%A9sum%C3%A9.exe",
      "Content-Transfer-Encoding: base64", "", "AAAA", "--m",
      "Content-Type: application/msword; name=b.doc", "", "x", "--m--",
      "--s", "Content-Type: application/pgp-signature", "", "sig", "--s--", "" }, "\n")
    d:send("bob@example.test", { "alice@example.test" }, message(hdr("Subject: parts",
      'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary="s"'), body))
    local want = {
      "i=1 type=text/plain filename=- encoding=7bit size=2 signed=true",
      "i=2 type=application/octet-stream filename=r%C3%A9sum%C3%A9.exe encoding=base64 size=4 signed=true",
      "i=3 type=application/msword filename=b.doc encoding=7bit size=1 signed=true",
      "i=4 type=application/pgp-signature filename=- encoding=7bit size=3 signed=true",
    }
    for _, w in ipairs(want) do
      local ok = D.eventually(function()
        for line in d:log():gmatch("[^\n]*event=part [^\n]*") do
          local all = true
          for f in w:gmatch("%S+") do all = all and line:find(" " .. f, 1, true) ~= nil end
          if all then return true end
        end
      end, 3)
      assert.is_truthy(ok, w .. "\n" .. d:log())
    end
  end)
end)

-- lua/policies/disclaimer.lua over SMTP (Python's smtplib and our
-- luasocket client), each delivered message read back with Python's email
-- package: a text/plain and a text/html message, both parts of a
-- multipart/alternative, the text part of a multipart/mixed with its
-- attachment byte for byte, a quoted-printable part, a multipart/signed
-- message delivered byte for byte, the text chosen by the sender's domain
-- and address, never twice (the marker), and nothing for mail from
-- outside (a client that may not relay).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local maildir = require("maildir")

local USERS = "users = { 'alice@example.test' }, postmaster = 'alice@example.test'"
local POLICY = [[indimail.policy("disclaimer", {
  text = "--\nDefault disclaimer.",
  html = "<p>Default disclaimer.</p>",
  domains = { ["sales.example.test"] = { text = "--\nSales disclaimer." } },
  senders = { ["ceo@example.test"] = { text = "--\nCEO disclaimer." } },
})]]

local function start()
  return D.start_for_test({ deliver = true, mailboxes = USERS, policies = POLICY,
    relay_from = "'127.0.0.1'" })
end

local function message(from, headers, body)
  local h = { "From: " .. from, "To: alice@example.test", "MIME-Version: 1.0" }
  for _, x in ipairs(headers) do h[#h + 1] = x end
  return table.concat(h, "\r\n") .. "\r\n\r\n" .. body:gsub("\r?\n", "\r\n")
end

local function delivered(d, qid)
  return D.eventually(function()
    for _, f in ipairs(maildir.new_files(d, "alice")) do
      local s = D.readfile(f)
      if s and s:find("id " .. qid, 1, true) then return f end
    end
  end, 10)
end

-- Sends with smtplib (tests/clients/smtplib_send.py), returns the file.
local function send_py(d, from, msg)
  local file = d.dir .. "/msg.eml"
  local f = assert(io.open(file, "wb"))
  f:write(msg)
  f:close()
  local py = d.dir .. "/send.py"
  f = assert(io.open(py, "w"))
  f:write("import smtplib, sys\n",
    "s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)\n",
    "r = s.sendmail(sys.argv[2], ['alice@example.test'], open(sys.argv[3], 'rb').read())\n",
    "print(s.noop()[0]); s.quit()\n")
  f:close()
  local out = D.sh(("timeout 30 /usr/bin/python3 %s %d %s %s 2>&1"):format(py, d.ports.smtp, from, file))
  assert.equal("250\n", out)
  local qid = D.eventually(function()
    local last
    for q in d:log():gmatch("event=queued [^\n]*qid=(%w+) from=" .. from:gsub("%p", "%%%0")) do last = q end
    return last
  end, 5)
  return delivered(d, qid)
end

local function send(d, from, msg)
  local qid = d:send(from, { "alice@example.test" }, msg)
  return delivered(d, qid)
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

describe("disclaimer policy", function()
  after_each(cleanup.run)

  it("appends to text/plain (smtplib) and into text/html before </body>", function()
    local d = start()
    local f1 = send_py(d, "joe@example.test", message("joe@example.test", { "Subject: plain" }, "Hello.\n"))
    assert.is_truthy(f1, d:log())
    assert.equal("ok\n", python(d, f1, [=[
assert m.get_content() == 'Hello.\n--\nDefault disclaimer.\n', repr(m.get_content())
assert m['X-Disclaimer'] == 'default', m['X-Disclaimer']]=]))
    local f2 = send(d, "joe@example.test", message("joe@example.test",
      { "Subject: html", "Content-Type: text/html" }, "<html><body><p>Hi</p></body></html>\n"))
    assert.equal("ok\n", python(d, f2, [[
c = m.get_content()
assert '<p>Default disclaimer.</p>' in c and c.index('Default') < c.index('</body>'), repr(c)]]))
    assert.is_truthy(d:wait_log("event=disclaimer [^\n]*parts=1", 1), d:log())
  end)

  it("changes both parts of a multipart/alternative and only the text of a multipart/mixed", function()
    local d = start()
    local alt = message("joe@example.test", { "Subject: alt", 'Content-Type: multipart/alternative; boundary="a"' },
      table.concat({ "--a", "Content-Type: text/plain", "", "plain", "--a", "Content-Type: text/html", "",
        "<html><body>html</body></html>", "--a--", "" }, "\n"))
    local f1 = send(d, "joe@example.test", alt)
    assert.equal("ok\n", python(d, f1, [[
p, h = m.get_payload()
assert p.get_content() == 'plain\n--\nDefault disclaimer.', repr(p.get_content())
assert h.get_content() == '<html><body>html<p>Default disclaimer.</p>\n</body></html>', repr(h.get_content())]]))
    local attachment = "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
      .. "Content-Disposition: attachment; filename=\"a.bin\"\n\nAAECAwQF\n"
    local mixed = message("joe@example.test", { "Subject: mixed", 'Content-Type: multipart/mixed; boundary="m"' },
      table.concat({ "--m", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable",
        "", "caf=C3=A9 =3D price", "--m", attachment .. "--m--", "" }, "\n"))
    local f2 = send(d, "joe@example.test", mixed)
    local got = D.readfile(f2)
    assert.is_truthy(got:find("\n--m\n" .. attachment .. "--m--\n", 1, true), got)
    assert.equal("ok\n", python(d, f2, [[
t, a = m.get_payload()
assert t.get_content().startswith('caf\u00e9 = price\n--\nDefault disclaimer.'), repr(t.get_content())
assert a.get_payload(decode=True) == bytes(range(6))]]))
    assert.is_truthy(d:wait_log("event=disclaimer [^\n]*parts=2", 1), d:log())
  end)

  it("leaves a multipart/signed message byte for byte and says so", function()
    local d = start()
    local signed = message("joe@example.test", { "Subject: signed",
      'Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="s"' },
      table.concat({ "--s", "Content-Type: text/plain", "", "signed text", "--s",
        "Content-Type: application/pgp-signature", "", "-----BEGIN PGP SIGNATURE-----",
        "iQ==", "-----END PGP SIGNATURE-----", "--s--", "" }, "\n"))
    local got = D.readfile(send(d, "joe@example.test", signed))
    local want = signed:gsub("\r\n", "\n")
    assert.equal(want, got:sub(-#want))
    assert.is_falsy(got:find("X-Disclaimer", 1, true))
    assert.is_truthy(d:wait_log("event=disclaimer [^\n]*why=signed", 1), d:log())
  end)

  it("chooses the text by sender address, then domain, and never adds it twice", function()
    local d = start()
    local f1 = send(d, "ceo@example.test", message("ceo@example.test", { "Subject: a" }, "x\n"))
    assert.is_truthy(D.readfile(f1):find("\n\nx\n--\nCEO disclaimer.\n", 1, true), D.readfile(f1))
    local f2 = send(d, "bob@sales.example.test", message("bob@sales.example.test", { "Subject: b" }, "y\n"))
    assert.is_truthy(D.readfile(f2):find("\n\ny\n--\nSales disclaimer.\n", 1, true), D.readfile(f2))
    assert.is_truthy(d:wait_log("event=disclaimer [^\n]*source=domain:sales.example.test", 1), d:log())
    -- a message that went through once already (its marker) gets no second one
    local again = message("joe@example.test", { "Subject: c", "X-Disclaimer: default" }, "z\n")
    local f3 = send(d, "joe@example.test", again)
    assert.is_truthy(D.readfile(f3):find("\n\nz\n$"), D.readfile(f3))
    assert.is_truthy(d:wait_log("event=disclaimer [^\n]*why=marker_present", 1), d:log())
  end)

  it("adds nothing to mail from a client that may not relay (not our user)", function()
    local d = start()
    local c = D.connect(d.ports.smtp, "127.0.0.1", "127.0.0.2")
    c:reply()
    c:cmd("EHLO outside.test")
    local code, text = c:transaction("x@outside.test", { "alice@example.test" },
      message("x@outside.test", { "Subject: in" }, "incoming\n"))
    c:cmd("QUIT")
    assert.equal(250, code, text)
    local got = D.readfile(delivered(d, text:match("queued as (%w+)")))
    assert.is_truthy(got:find("\n\nincoming\n$"), got)
  end)
end)

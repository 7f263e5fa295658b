-- DKIM signing (lua/policies/dkim_sign.lua, src/smtp/smtp_dkim.c): a message
-- from a listed listener whose From: domain has a key in dkim.keys is signed
-- at the queue write with RSA-SHA256 or Ed25519-SHA256 (RFC 8463), and the
-- queued message verifies with dkimpy (tests/clients/dkim_check.py, a
-- verifier not ours); a disclaimer appended by another policy is signed
-- over (the signature covers the final body); mail of other domains, or on
-- other listeners, is not signed; a world-readable key stops the start.
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local CHECK = "/usr/bin/python3 tests/clients/dkim_check.py"

-- A key pair in dir: the key file (0640, the account's group as in
-- production) and the TXT record's file. alg: "rsa" or "ed25519".
local function keypair(dir, alg)
  local key, txt = dir .. "/" .. alg .. ".key", dir .. "/" .. alg .. ".txt"
  if alg == "rsa" then
    D.sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"):format(key))
    local p = D.sh(("openssl pkey -in %s -pubout -outform DER | base64 -w0"):format(key))
    D.writefile(txt, "v=DKIM1; k=rsa; p=" .. p)
  else
    D.sh(("openssl genpkey -algorithm ed25519 -out %s 2>/dev/null"):format(key))
    local p = D.sh(("openssl pkey -in %s -pubout -outform DER | tail -c 32 | base64 -w0"):format(key))
    D.writefile(txt, "v=DKIM1; k=ed25519; p=" .. p)
  end
  D.sh("chmod 0640 " .. key .. (t.getuid() == 0 and (" && chgrp indimail " .. key) or ""))
  return key, txt
end

local function dkim_config(key, alg)
  return ("dkim = { keys = { ['example.test'] = { selector = 's1', key_file = %q, "
    .. "algorithm = %q } } },"):format(key, alg)
end

local function start(key, alg, policies)
  return D.start_for_test{
    mailboxes = "users = { 'alice@example.test' }",
    config_extra = dkim_config(key, alg),
    policies = policies or "indimail.policy('dkim_sign', { listeners = { 'smtp' } })",
  }
end

local function message(from, body)
  return ("From: Joe <%s>\r\nTo: alice@example.test\r\nSubject: signed\r\n"
    .. "Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\n%s\r\n")
    :format(from, body)
end

-- The queued message of id in a file; dkimpy's verdict on it.
local function verify(d, id, txt)
  local _, msg = d:queued(id)
  local f = d.dir .. "/msg." .. id
  D.writefile(f, msg)
  local out = D.sh(("%s %s s1._domainkey.example.test=%s; echo rc=$?"):format(CHECK, f, txt))
  return out, msg
end

describe("DKIM signing", function()
  local scratch

  setup(function()
    scratch = D.mktemp("dkim_sign")
    D.sh("chmod 755 " .. scratch)
  end)
  teardown(function() D.rmtemp(scratch) end)
  after_each(cleanup.run)

  for _, alg in ipairs({ { "rsa", "rsa-sha256" }, { "ed25519", "ed25519-sha256" } }) do
    it("signs with " .. alg[2] .. " and dkimpy verifies the queued message", function()
      local key, txt = keypair(scratch, alg[1])
      local d = start(key, alg[2])
      local id = d:send("joe@example.test", { "alice@example.test" },
        message("joe@example.test", "Hello.\r\n\r\nTwo lines.\r\n"))
      local out, msg = verify(d, id, txt)
      assert.matches("^DKIM%-Signature: v=1; a=" .. alg[2]:gsub("%-", "%%-") .. ";", msg)
      assert.matches("d=example%.test;", msg)
      assert.matches("^pass\nrc=0", out, msg)
      assert.truthy(d:wait_log("event=dkim_signed .*domain=example%.test", 2), d:log())
    end)
  end

  it("signs over a disclaimer appended by another policy (the final body)", function()
    local key, txt = keypair(scratch, "rsa")
    local d = start(key, "rsa-sha256", [[
indimail.policy('dkim_sign', { listeners = { 'smtp' } })
indimail.hook("message", function(session, tx, msg)
  msg:append_text("--\nDisclaimer: this mail is confidential.\n")
end, "disclaimer")
]])
    local id = d:send("joe@example.test", { "alice@example.test" },
      message("joe@example.test", "Body before the disclaimer."))
    local out, msg = verify(d, id, txt)
    assert.matches("Disclaimer: this mail is confidential%.", msg)
    assert.matches("^pass\nrc=0", out, msg)
  end)

  it("does not sign a domain without a key, nor mail on an unlisted listener", function()
    local key = keypair(scratch, "rsa")
    local d = start(key, "rsa-sha256", "indimail.policy('dkim_sign', { listeners = { 'submission' } })")
    local id = d:send("joe@example.test", { "alice@example.test" }, message("joe@example.test", "x"))
    local _, msg = d:queued(id)
    assert.is_nil(msg:find("DKIM%-Signature"))
    local d2 = start(key, "rsa-sha256")
    id = d2:send("joe@other.test", { "alice@example.test" }, message("joe@other.test", "x"))
    _, msg = d2:queued(id)
    assert.is_nil(msg:find("DKIM%-Signature"))
  end)

  it("`indimail dkim keygen` writes a 0600 key and prints the TXT record that verifies it", function()
    local dir = scratch .. "/keygen"
    local out = D.sh(("%s/indimail dkim keygen example.test --selector s1 --algorithm ed25519 --dir %s")
      :format(D.bin, dir))
    local key = dir .. "/example.test.s1.key"
    assert.are.equal("600", (D.sh("stat -c %a " .. key):gsub("%s+$", "")))
    if t.getuid() == 0 then D.sh("chgrp indimail " .. dir) end
    assert.matches("^s1%._domainkey%.example%.test%. IN TXT %(", out)
    local record = table.concat((function()
      local parts = {}
      for q in out:match("%((.-)%)"):gmatch('"([^"]*)"') do parts[#parts + 1] = q end
      return parts
    end)())
    assert.matches("^v=DKIM1; k=ed25519; p=", record)
    local txt = scratch .. "/keygen.txt"
    D.writefile(txt, record)
    D.sh("chmod 0640 " .. key .. (t.getuid() == 0 and (" && chgrp indimail " .. key) or ""))
    local d = start(key, "ed25519-sha256")
    local id = d:send("joe@example.test", { "alice@example.test" }, message("joe@example.test", "k"))
    local res, msg = verify(d, id, txt)
    assert.matches("^pass\nrc=0", res, msg)
  end)

  it("refuses to start with a key file anyone may read", function()
    local key = keypair(scratch, "rsa")
    D.sh("chmod 0644 " .. key)
    local ok, err = pcall(D.start, { config_extra = dkim_config(key, "rsa-sha256") })
    assert.is_false(ok)
    assert.matches("may be read by anyone", err)
  end)
end)

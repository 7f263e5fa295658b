-- indimaild against a real SMTP client: swaks (plain, STARTTLS, implicit
-- TLS, PIPELINING, dot-stuffing, relay control, message size limit).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")

-- Runs swaks against 127.0.0.1:port; returns its transcript and exit code.
-- Every run is bounded: swaks' own per-reply timeout and timeout(1).
local function swaks(port, args)
  return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5"
    .. " --helo client.example.test %s"):format(port, args))
end

local function queue_id(transcript)
  return transcript:match("<[-~*]+ +250 2%.0%.0 Ok: queued as (%w+)")
end

-- The lines swaks sent between the 354 and the final dot, as on the wire.
local function sent_data_lines(transcript)
  local lines, in_data = {}, false
  for line in transcript:gmatch("([^\n]*)\n") do
    if line:match("^<.- 354 ") then
      in_data = true
    elseif in_data then
      local sent = line:match("^ [-~]> (.-)\r?$")	-- swaks shows the CR
      if sent == "." then break end
      if sent then lines[#lines + 1] = sent end
    end
  end
  return lines
end

local function write_tmp(d, name, content)
  local path = d.dir .. "/" .. name
  D.writefile(path, content)
  return path
end

describe("swaks client", function()
  describe("with the default configuration", function()
    local d
    setup(function() d = D.start() end)
    teardown(function() d:cleanup() end)

    it("delivers a plain SMTP message that is queued with its envelope", function()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test --h-Subject plain-swaks")
      assert.equal(0, rc, out)
      local id = queue_id(out)
      assert.is_truthy(id, out)
      local env, msg = d:queued(id)
      assert.is_truthy(env, "queue file for " .. id)
      assert.matches("\nid " .. id .. "\n", env)
      assert.matches("\nip 127%.0%.0%.1\n", env)
      assert.matches("\nhelo client%.example%.test\n", env)
      assert.matches("\nlistener smtp\n", env)
      assert.matches("\nsender sender@example%.test\n", env)
      assert.matches("\nrcpt rcpt@example%.test\n", env)
      assert.not_matches("\ntls ", env)
      assert.matches("^Received: from client%.example%.test %(%[127%.0%.0%.1%]%)\n"
        .. "\tby mx%.test%.example %(indimail%) with ESMTP id " .. id .. "\n", msg)
      assert.matches("\nSubject: plain%-swaks\n", msg)
      assert.matches("\nThis is a test mailing\n", msg)
      assert.not_matches("\r", msg)
    end)

    it("delivers over STARTTLS; Received says ESMTPS and names the TLS version", function()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test -tls")
      assert.equal(0, rc, out)
      assert.matches("<%- +220 2%.0%.0 Ready to start TLS", out)
      local version = out:match("=== TLS started with cipher (TLSv[%d.]+):")
      assert.is_truthy(version, out)
      local id = queue_id(out)
      assert.is_truthy(id, out)
      local env, msg = d:queued(id)
      assert.matches("\ntls " .. version:gsub("%.", "%%.") .. " %S+\n", env)
      assert.matches("^Received: from client%.example%.test %(%[127%.0%.0%.1%]%)\n"
        .. "\tby mx%.test%.example %(indimail%) with ESMTPS id " .. id .. "\n"
        .. "\t%(using " .. version:gsub("%.", "%%.") .. " with cipher %S+%)", msg)
    end)

    it("names TLSv1.2 in Received when the client negotiates TLS 1.2", function()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test -tls --tls-protocol tlsv1_2")
      assert.equal(0, rc, out)
      assert.matches("=== TLS started with cipher TLSv1%.2:", out)
      local _, msg = d:queued(queue_id(out))
      assert.matches("with ESMTPS id %w+\n\t%(using TLSv1%.2 with cipher ", msg)
    end)

    it("does not offer STARTTLS again in the EHLO after TLS started", function()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test -tls --quit-after EHLO")
      assert.equal(0, rc, out)
      local plain, tls = out:match("^(.-)=== TLS started(.*)$")
      assert.is_truthy(plain, out)
      assert.matches("<%- +250%-STARTTLS", plain)
      assert.matches("<~ +250 HELP", tls)
      assert.not_matches("STARTTLS", tls)
    end)

    it("delivers a message over implicit TLS (swaks --tls-on-connect)", function()
      local out, rc = swaks(d.ports.smtps,
        "--from sender@example.test --to rcpt@example.test --tls-on-connect")
      assert.equal(0, rc, out)
      assert.matches("<~ +220 mx%.test%.example ESMTP", out)
      local id = queue_id(out)
      assert.is_truthy(id, out)
      local env, msg = d:queued(id)
      assert.matches("\nlistener smtps\n", env)
      assert.matches("\ntls TLSv1%.%d ", env)
      assert.matches("with ESMTPS id " .. id, msg)
    end)

    it("pipelines MAIL, several RCPTs and DATA in one go (RFC 2920)", function()
      local rcpts = { "r1@example.test", "r2@example.test", "r3@local.test" }
      local out, rc = swaks(d.ports.smtp,
        "--pipeline --from sender@example.test --to " .. table.concat(rcpts, ","))
      assert.equal(0, rc, out)
      -- swaks really pipelined: DATA went out before the reply to MAIL came
      local data_sent = out:find(" %-> DATA\n")
      local mail_ok = out:find("<%- +250 2%.1%.0 Sender <sender@example%.test> OK")
      assert.is_truthy(data_sent, out)
      assert.is_truthy(mail_ok, out)
      assert.is_true(data_sent < mail_ok, out)
      for _, r in ipairs(rcpts) do
        assert.matches("<%- +250 2%.1%.5 Recipient <" .. r:gsub("%.", "%%.") .. "> OK", out)
      end
      local id = queue_id(out)
      assert.is_truthy(id, out)
      local env, msg = d:queued(id)
      assert.matches("\nsender sender@example%.test\n"
        .. "rcpt r1@example%.test\nrcpt r2@example%.test\nrcpt r3@local%.test\n", env)
      -- with several recipients Received names none of them
      assert.not_matches("^Received:[^\n]*\n[^\n]*\n\tfor <", msg)
    end)

    it("round-trips lines starting with '.' byte for byte (dot-stuffing)", function()
      local body = "first line\n.leading dot\n..two dots\n.\n. space after dot\n"
        .. "...\nlast line\n"
      local file = write_tmp(d, "dots.txt", body)
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test --body @" .. file)
      assert.equal(0, rc, out)
      -- swaks stuffed the dots on the wire
      local wire = sent_data_lines(out)
      local wire_text = table.concat(wire, "\n") .. "\n"
      assert.matches("\n%.%.leading dot\n%.%.%.two dots\n%.%.\n%.%. space after dot\n"
        .. "%.%.%.%.\n", wire_text)
      local _, msg = d:queued(queue_id(out))
      -- stored = Received header + exactly what was sent, unstuffed, LF ends
      local unstuffed = {}
      for i, l in ipairs(wire) do unstuffed[i] = (l:gsub("^%.", "")) end
      local received, rest = msg:match("^(Received: [^\n]*\n\t[^\n]*\n\t[^\n]*\n)(.*)$")
      assert.is_truthy(received, msg)
      assert.equal(table.concat(unstuffed, "\n") .. "\n", rest)
      -- and the body from the file is there unchanged, after the header
      local stored_body = rest:match("^.-\n\n(.*)$")
      assert.equal(body, stored_body:sub(1, #body))
      assert.matches("^\n*$", stored_body:sub(#body + 1))
    end)

    it("refuses to relay to a non-local domain for a client not in relay_from (554)", function()
      local before = #d:queue_files()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to someone@elsewhere.example")
      assert.equal(24, rc, out)	-- swaks: no RCPTs accepted
      assert.matches("<%*%* +554 5%.7%.1 Relay access denied", out)
      assert.not_matches(" %-> DATA", out)
      assert.equal(before, #d:queue_files())
    end)
  end)

  describe("with relay_from = 127.0.0.0/8", function()
    local d
    setup(function() d = D.start{ relay_from = "'127.0.0.0/8'" } end)
    teardown(function() d:cleanup() end)

    it("relays to a non-local domain for a listed client", function()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to someone@elsewhere.example")
      assert.equal(0, rc, out)
      assert.matches("<%- +250 2%.1%.5 Recipient <someone@elsewhere%.example> OK", out)
      local env = d:queued(queue_id(out))
      assert.matches("\nrcpt someone@elsewhere%.example\n", env)
    end)
  end)

  describe("with message_size = 2048", function()
    local d
    setup(function() d = D.start{ limits = "message_size = 2048" } end)
    teardown(function() d:cleanup() end)

    it("advertises SIZE 2048", function()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test --quit-after EHLO")
      assert.equal(0, rc, out)
      assert.matches("<%- +250%-SIZE 2048\n", out)
    end)

    it("refuses a 10 KiB message with 552 5.3.4 after the data and queues nothing", function()
      local line = ("x"):rep(79) .. "\n"
      local file = write_tmp(d, "big.txt", line:rep(128))	-- 10240 bytes
      local before = #d:queue_files()
      local out, rc = swaks(d.ports.smtp,
        "--from sender@example.test --to rcpt@example.test --body @" .. file)
      assert.equal(26, rc, out)	-- swaks: mail not accepted after data
      assert.matches("<%*%* +552 5%.3%.4 ", out)
      assert.is_nil(queue_id(out))
      assert.equal(before, #d:queue_files())
      assert.equal(0, #d:tmp_files())
      assert.is_truthy(d:wait_log("event=reject [^\n]*command=DATA reply=\"552 5%.3%.4", 2))
    end)
  end)
end)

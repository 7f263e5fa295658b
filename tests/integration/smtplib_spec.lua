-- indimaild against Python's smtplib (tests/clients/smtplib_send.py):
-- plain, STARTTLS, implicit TLS, refused recipients, SIZE, 8BITMIME.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local json = require("dkjson")

local SCRIPT = D.root .. "/tests/clients/smtplib_send.py"

-- Runs the helper; returns its decoded JSON result (bounded by timeout(1)).
local function smtplib(port, mode, from, to, kind)
  local out, rc = D.sh(("timeout 60 /usr/bin/python3 %s %d %s %s %s %s"):format(
    SCRIPT, port, mode, from, table.concat(to, ","), kind or "text"))
  assert.equal(0, rc, out)
  local r, _, err = json.decode(out)
  assert.is_table(r, "bad JSON from smtplib_send.py: " .. tostring(err) .. "\n" .. out)
  return r
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- What the queue must hold after the Received header: the bytes smtplib
-- handed to data() (before dot-stuffing), CRLF turned into LF.
local function expected_stored(r)
  local sent = unhex(r.sent_hex)
  if sent:sub(-2) ~= "\r\n" then sent = sent .. "\r\n" end
  return (sent:gsub("\r\n", "\n"))
end

local function queued_id(r)
  assert.is_table(r.data_reply, json.encode(r))
  assert.equal(250, r.data_reply[1])
  local id = r.data_reply[2]:match("^2%.0%.0 Ok: queued as (%w+)$")
  assert.is_truthy(id, r.data_reply[2])
  return id
end

-- Splits a stored message into its Received header and the rest.
local function split_received(msg)
  if not msg:match("^Received: ") then return nil end
  local eol = msg:find("\n[^\t]")	-- the first line that is not a continuation
  return msg:sub(1, eol), msg:sub(eol + 1)
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

describe("Python smtplib client", function()
  describe("with the default configuration", function()
    local d
    setup(function() d = D.start() end)
    teardown(function() d:cleanup() end)

    it("sends a plain message to two recipients with sendmail()", function()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test",
        { "one@example.test", "two@local.test" })
      assert.is_true(r.ok, json.encode(r))
      assert.same({}, r.refused)
      assert.is_nil(r.tls_version)
      local id = queued_id(r)
      local env, msg = d:queued(id)
      assert.is_truthy(env, "queue file for " .. id)
      assert.matches("\nhelo client%.example%.test\n", env)
      assert.matches("\nsender sender@example%.test\n"
        .. "rcpt one@example%.test\nrcpt two@local%.test\n", env)
      local received, rest = split_received(msg)
      assert.is_truthy(received, msg)
      assert.matches("^Received: from client%.example%.test %(%[127%.0%.0%.1%]%)\n"
        .. "\tby mx%.test%.example %(indimail%) with ESMTP id " .. id .. ";", received)
      assert.equal(expected_stored(r), rest)
      -- smtplib stuffed ".dot line"; the queue has it unstuffed
      assert.matches("\n%.dot line\n$", rest)
    end)

    it("upgrades with starttls() and sends; Received says ESMTPS and the TLS version", function()
      local r = smtplib(d.ports.smtp, "starttls", "sender@example.test",
        { "one@example.test", "two@example.test" })
      assert.is_true(r.ok, json.encode(r))
      assert.matches("^TLSv1%.[23]$", r.tls_version)
      -- the EHLO after STARTTLS offers no second STARTTLS
      assert.is_nil(r.esmtp_features.starttls)
      assert.not_matches("STARTTLS", r.ehlo_resp)
      local id = queued_id(r)
      local env, msg = d:queued(id)
      assert.matches("\ntls " .. esc(r.tls_version) .. " %S+\n", env)
      local received, rest = split_received(msg)
      assert.matches("with ESMTPS id " .. id .. "\n\t%(using " .. esc(r.tls_version)
        .. " with cipher %S+%)", received)
      assert.equal(expected_stored(r), rest)
    end)

    it("sends over implicit TLS with SMTP_SSL on the smtps port", function()
      local r = smtplib(d.ports.smtps, "ssl", "sender@example.test", { "one@example.test" })
      assert.is_true(r.ok, json.encode(r))
      assert.matches("^TLSv1%.[23]$", r.tls_version)
      assert.is_nil(r.esmtp_features.starttls)
      local id = queued_id(r)
      local env, msg = d:queued(id)
      assert.matches("\nlistener smtps\n", env)
      assert.matches("with ESMTPS id " .. id, msg)
    end)

    it("raises SMTPRecipientsRefused (554 5.7.1) for a relay attempt and queues nothing", function()
      local before = #d:queue_files()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test",
        { "someone@elsewhere.example" })
      assert.is_false(r.ok)
      assert.equal("SMTPRecipientsRefused", r.error, json.encode(r))
      local refused = r.error_args["someone@elsewhere.example"]
      assert.is_table(refused, json.encode(r))
      assert.equal(554, refused[1])
      assert.matches("^5%.7%.1 Relay access denied", refused[2])
      assert.is_nil(r.sent_hex)	-- DATA was never reached
      assert.equal(before, #d:queue_files())
    end)

    it("reports only the non-local recipient as refused when the other is accepted", function()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test",
        { "one@example.test", "someone@elsewhere.example" })
      assert.is_true(r.ok, json.encode(r))
      local refused = r.refused["someone@elsewhere.example"]
      assert.is_table(refused, json.encode(r))
      assert.equal(554, refused[1])
      assert.matches("^5%.7%.1 ", refused[2])
      assert.is_nil(r.refused["one@example.test"])
      local env = d:queued(queued_id(r))
      assert.matches("\nrcpt one@example%.test\n", env)
      assert.not_matches("elsewhere", env)
    end)

    it("sees SIZE advertised in ehlo_resp and esmtp_features", function()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test", { "one@example.test" }, "ehlo")
      assert.is_true(r.ok, json.encode(r))
      assert.matches("\nSIZE 26214400\n", r.ehlo_resp)
      assert.equal("26214400", r.esmtp_features.size)
      for _, k in ipairs({ "pipelining", "8bitmime", "enhancedstatuscodes", "starttls" }) do
        assert.is_string(r.esmtp_features[k], k)
      end
    end)

    it("sends a UTF-8 body with send_message() and BODY=8BITMIME; stored bytes are exact", function()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test", { "one@example.test" }, "utf8")
      assert.is_true(r.ok, json.encode(r))
      local id = queued_id(r)
      local env, msg = d:queued(id)
      assert.matches("\nbody 8BITMIME\n", env)
      local _, rest = split_received(msg)
      assert.equal(expected_stored(r), rest)
      -- really 8bit on the wire and in the queue, not re-encoded
      assert.matches("Content%-Transfer%-Encoding: 8bit\n", rest)
      assert.is_truthy(rest:find("Grüße aus Köln — ünïcödé ☃ 日本語\n", 1, true))
      assert.is_truthy(rest:find("\n.a line starting with a dot\n..two dots\n.\nlast line ✓\n", 1, true))
    end)
  end)

  describe("with message_size = 2048", function()
    local d
    setup(function() d = D.start{ limits = "message_size = 2048" } end)
    teardown(function() d:cleanup() end)

    it("advertises SIZE 2048", function()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test", { "one@example.test" }, "ehlo")
      assert.equal("2048", r.esmtp_features.size)
    end)

    it("refuses smtplib's MAIL ... SIZE= for a 10 KiB message with 552 5.3.4", function()
      local before = #d:queue_files()
      local r = smtplib(d.ports.smtp, "plain", "sender@example.test", { "one@example.test" }, "big")
      assert.is_false(r.ok)
      assert.equal("SMTPSenderRefused", r.error, json.encode(r))
      assert.equal(552, r.error_args[1])
      assert.matches("^5%.3%.4 ", r.error_args[2])
      assert.equal(before, #d:queue_files())
      -- smtplib sends its verbs in lower case; the log keeps the verb as sent
      assert.is_truthy(d:wait_log("event=reject [^\n]*command=mail reply=\"552 5%.3%.4", 2))
    end)
  end)
end)

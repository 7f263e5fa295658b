-- bin/sendmail: the sendmail-compatible injector submits through our own
-- SMTP listener, so injected mail meets the same policies as any client.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")

local function sendmail(d, args, input)
  local f = assert(io.open(d.dir .. "/input.txt", "wb"))
  f:write(input)
  f:close()
  return D.sh(("%s/sendmail -C %s %s < %s/input.txt"):format(D.bin, d.config, args, d.dir))
end

-- The one queued message (delivery is paused in these specs).
local function only_message(d)
  local files = d:queue_files()
  assert.equal(1, #files)
  local data = D.readfile(files[1])
  return data:match("^(.-\n)\n(.*)$")
end

describe("sendmail injector", function()
  local d
  before_each(function() d = D.start{ relay_from = "'127.0.0.0/8'" } end)
  after_each(function() d:cleanup() end)

  it("queues a message for the recipients on the command line with -f as sender", function()
    local out, rc = sendmail(d, "-f boss@example.test a@example.test b@remote.test",
      "Subject: cron\n\nnightly report\n")
    assert.equal(0, rc, out)
    local env, msg = only_message(d)
    assert.matches("\nsender boss@example.test\n", env)
    assert.matches("\nrcpt a@example.test\n", env)
    assert.matches("\nrcpt b@remote.test\n", env)
    assert.matches("\nSubject: cron\n", msg)
    assert.matches("\n\nnightly report\n$", msg)
  end)

  it("adds From, Date and Message-ID when the message has none", function()
    assert.equal(0, select(2, sendmail(d, "-f boss@example.test a@example.test", "Subject: x\n\nbody\n")))
    local _, msg = only_message(d)
    assert.matches("\nFrom: <boss@example.test>\n", msg)
    assert.matches("\nDate: %a%a%a, ", msg)
    assert.matches("\nMessage%-ID: <[^>]+@mx%.test%.example>\n", msg)
  end)

  it("takes recipients from To, Cc and Bcc with -t and removes Bcc", function()
    local out, rc = sendmail(d, "-t -f boss@example.test",
      "To: Alice <a@example.test>, b@example.test (Bob)\nCc: \"C, D\" <c@example.test>,\n d@example.test\nBcc: hidden@example.test\nSubject: t\n\nhello\n")
    assert.equal(0, rc, out)
    local env, msg = only_message(d)
    for _, r in ipairs({ "a", "b", "c", "d", "hidden" }) do
      assert.matches("\nrcpt " .. r .. "@example.test\n", env)
    end
    assert.not_matches("Bcc:", msg)
    assert.matches("\nCc: \"C, D\" <c@example.test>,\n d@example.test\n", msg)
  end)

  it("ends the message at a lone dot unless -i is given", function()
    sendmail(d, "-f s@example.test a@example.test", "Subject: x\n\nbefore\n.\nafter\n")
    local _, msg = only_message(d)
    assert.matches("before\n$", msg)
    d:cleanup()
    d = D.start{}
    sendmail(d, "-i -f s@example.test a@example.test", "Subject: x\n\nbefore\n.\n..two\nafter\n")
    local _, msg2 = only_message(d)
    assert.matches("before\n%.\n%.%.two\nafter\n$", msg2)
  end)

  it("fails with exit code 65 and the server's reply when a recipient is refused", function()
    -- relay_from is empty in this daemon: a remote recipient is refused
    d:cleanup()
    d = D.start{}
    local out, rc = sendmail(d, "-f s@example.test x@remote.test", "Subject: x\n\nbody\n")
    assert.equal(65, rc)
    assert.matches("554 5%.7%.1", out)
    assert.equal(0, #d:queue_files())
  end)

  it("speaks SMTP on standard input and output with -bs", function()
    local out, rc = sendmail(d, "-bs", "EHLO cron.example.test\r\nMAIL FROM:<s@example.test>\r\n"
      .. "RCPT TO:<a@example.test>\r\nDATA\r\nSubject: bs\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert.equal(0, rc)
    assert.matches("^220 ", out)
    assert.matches("250 2%.0%.0 Ok: queued as %w+", out)
    assert.matches("221 ", out)
    assert.equal(1, #d:queue_files())
  end)

  it("fails with exit code 64 without recipients", function()
    local _, rc = sendmail(d, "-f s@example.test", "Subject: x\n\nbody\n")
    assert.equal(64, rc)
  end)
end)

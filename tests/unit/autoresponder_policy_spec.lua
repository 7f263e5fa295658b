-- lua/policies/autoresponder.lua without a daemon (tests/helpers/fake_indimail.lua,
-- indimail.directory.user and indimail.submit faked): who gets a reply,
-- its fields (RFC 3834 3.1), every reason for none, and its settings.
-- Over SMTP with a real directory: tests/integration/autoresponder_spec.lua.
package.path = "tests/helpers/?.lua;" .. package.path
local F = require("fake_indimail")

local JOE = { address = "joe@example.test", vacation = { subject = "Away", message = "Back soon.\n",
  from = 0, ["until"] = 0, interval = 3600 } }

-- The policy with users (address → entry) and the submissions it made.
local function policy(users, settings)
  local H, I, P = F.policy("autoresponder", settings or {})
  I.sent = {}
  I.directory = { user = function(a) return users[a:lower()] end }
  I.submit = function(m) I.sent[#I.sent + 1] = m; return true end
  return H, I, P
end

local function tx(sender, rcpts) return { sender = sender, rcpts = rcpts or { "joe@example.test" } } end

local function msg(extra)
  local h = { { "From", "ann@remote.test" }, { "To", "Joe <Joe@Example.test>" },
    { "Subject", "lunch?" }, { "Message-ID", "<1@remote.test>" } }
  for _, f in ipairs(extra or {}) do h[#h + 1] = f end
  return F.msg(h)
end

local function field(m, name)
  for _, h in ipairs(m.header) do if h[1] == name then return h[2] end end
end

describe("autoresponder policy", function()
  it("replies from <> to the sender with the RFC 3834 fields, once per interval", function()
    local H, I = policy({ ["joe@example.test"] = JOE })
    H.message({}, tx("ann@remote.test"), msg())
    assert.equal(1, #I.sent)
    local m = I.sent[1]
    assert.equal("", m.from)
    assert.same({ "ann@remote.test" }, m.to)
    assert.equal("joe@example.test", field(m, "From"))
    assert.equal("ann@remote.test", field(m, "To"))
    assert.equal("Away", field(m, "Subject"))
    assert.equal("<1@remote.test>", field(m, "In-Reply-To"))
    assert.equal("<1@remote.test>", field(m, "References"))
    assert.equal("auto-replied", field(m, "Auto-Submitted"))
    assert.equal("Back soon.\n", m.body)
    assert.same({ event = "autoreply", user = "joe@example.test", to = "ann@remote.test" }, I.logs[1])
    H.message({}, tx("ann@remote.test"), msg())
    assert.equal(1, #I.sent)
    assert.equal("interval", I.logs[2].skipped)
    I.now = I.now + 3600           -- the counter's window is over
    H.message({}, tx("Ann@Remote.test"), msg())
    assert.equal(2, #I.sent)
  end)

  it("keeps the thread: References gets the original's, Subject 'Auto: ' without one", function()
    local joe = { address = JOE.address, vacation = { message = "x", from = 0, ["until"] = 0, interval = 60 } }
    local H, I = policy({ ["joe@example.test"] = joe })
    H.message({}, tx("ann@remote.test"), msg({ { "References", "<0@remote.test>" } }))
    assert.equal("<0@remote.test> <1@remote.test>", field(I.sent[1], "References"))
    assert.equal("Auto: lunch?", field(I.sent[1], "Subject"))
  end)

  it("never replies to <>, programs, auto-submitted, bulk or list mail", function()
    local cases = {
      { "", {}, "null_sender" },
      { "MAILER-DAEMON@remote.test", {}, "program_sender" },
      { "owner-team@remote.test", {}, "program_sender" },
      { "team-request@remote.test", {}, "program_sender" },
      { "no-reply@remote.test", {}, "program_sender" },
      { "ann@remote.test", { { "Auto-Submitted", "auto-replied" } }, "auto_submitted" },
      { "ann@remote.test", { { "Precedence", "Bulk" } }, "precedence" },
      { "ann@remote.test", { { "Precedence", "junk" } }, "precedence" },
      { "ann@remote.test", { { "List-Unsubscribe", "<mailto:u@remote.test>" } }, "list" },
      { "ann@remote.test", { { "X-Auto-Response-Suppress", "OOF, AutoReply" } }, "suppressed" },
    }
    for _, c in ipairs(cases) do
      local H, I = policy({ ["joe@example.test"] = JOE })
      H.message({}, tx(c[1]), msg(c[2]))
      assert.equal(0, #I.sent, c[3])
      assert.equal(c[3], I.logs[1].skipped)
    end
    local H, I = policy({ ["joe@example.test"] = JOE })
    H.message({}, tx("ann@remote.test"), msg({ { "Auto-Submitted", "No" } }))
    assert.equal(1, #I.sent)
  end)

  it("needs the user in To: or Cc: unless addressed_only = false", function()
    local bcc = F.msg({ { "To", "team@example.test" }, { "Cc", "x@y.test, jo@example.test" } })
    local H, I = policy({ ["joe@example.test"] = JOE })
    H.message({}, tx("ann@remote.test"), bcc)
    assert.equal("not_addressed", I.logs[1].skipped)
    local cc = F.msg({ { "To", "team@example.test" }, { "Cc", "x@y.test,\"Joe\" <joe@example.test>" } })
    H.message({}, tx("ann@remote.test"), cc)
    assert.equal(1, #I.sent)
    local H2, I2 = policy({ ["joe@example.test"] = JOE }, { addressed_only = false })
    H2.message({}, tx("ann@remote.test"), bcc)
    assert.equal(1, #I2.sent)
  end)

  it("answers inside the dates only, never the user itself, each user once", function()
    local now = os.time()
    local later = { address = JOE.address, vacation = { message = "x", from = now + 3600, ["until"] = 0,
      interval = 60 } }
    local H, I = policy({ ["joe@example.test"] = later })
    H.message({}, tx("ann@remote.test"), msg())
    assert.equal("outside_dates", I.logs[1].skipped)
    local H2, I2 = policy({ ["joe@example.test"] = JOE, ["joe+x@example.test"] = JOE })
    H2.message({}, tx("joe@example.test"), msg())
    assert.equal("self", I2.logs[1].skipped)
    H2.message({}, tx("ann@remote.test", { "joe@example.test", "joe+x@example.test", "nobody@example.test" }), msg())
    assert.equal(1, #I2.sent)
  end)

  it("logs a failed submit or directory lookup and never refuses the message", function()
    local H, I = policy({ ["joe@example.test"] = JOE })
    I.submit = function() error("indimail.submit: this message already made 16 submissions") end
    assert.is_nil(H.message({}, tx("ann@remote.test"), msg()))
    assert.equal("submit_error", I.logs[1].skipped)
    I.directory.user = function() return nil, "tempfail: directory user lookup failed" end
    assert.is_nil(H.message({}, tx("ann@remote.test"), msg()))
    assert.equal("directory_error", I.logs[2].skipped)
  end)

  it("refuses unknown settings and a non-boolean addressed_only", function()
    assert.has_error(function() F.policy("autoresponder", { interval = 5 }) end,
      "autoresponder: unknown setting interval")
    assert.has_error(function() F.policy("autoresponder", { addressed_only = "yes" }) end,
      "autoresponder: addressed_only must be true or false")
  end)
end)

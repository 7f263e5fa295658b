-- lua/policies/duplicates.lua without a daemon (tests/helpers/fake_indimail.lua);
-- over SMTP with the real counters: tests/integration/duplicates_spec.lua.
local F = require("fake_indimail")

local S = { ip = "192.0.2.7" }
local function tx(rcpts) return { rcpts = rcpts, env = {} } end
local function msg(id) return F.msg(id and { { "Message-ID", id } } or {}) end

describe("duplicates policy", function()
  it("passes the first delivery and discards a repeat to the same recipient, with a log line", function()
    local H, I = F.policy("duplicates", { window = 60 })
    assert.is_nil(H.message(S, tx({ "Ann@example.test" }), msg("<a1@x.test>")))
    local v = H.message(S, tx({ "ann@example.test" }), msg("<a1@x.test>"))
    assert.are.equal("discard", v.action)
    assert.are.same({ event = "duplicate", action = "discard", message_id = "<a1@x.test>",
      rcpt = "ann@example.test", count = 2, window = 60, ip = "192.0.2.7" }, I.logs[1])
  end)

  it("forgets after the window", function()
    local H, I = F.policy("duplicates", { window = 60 })
    H.message(S, tx({ "a@example.test" }), msg("<a1@x.test>"))
    I.now = I.now + 61
    assert.is_nil(H.message(S, tx({ "a@example.test" }), msg("<a1@x.test>")))
  end)

  it("lets messages without a Message-ID and other recipients pass", function()
    local H = F.policy("duplicates", {})
    assert.is_nil(H.message(S, tx({ "a@example.test" }), msg(nil)))
    assert.is_nil(H.message(S, tx({ "a@example.test" }), msg(nil)))
    assert.is_nil(H.message(S, tx({ "a@example.test" }), msg("  ")))
    H.message(S, tx({ "a@example.test" }), msg("<m@x>"))
    assert.is_nil(H.message(S, tx({ "b@example.test" }), msg("<m@x>")))
  end)

  it("without tx:remove_rcpt, lists part duplicates in tx.env for the route hook to drop", function()
    local H, I = F.policy("duplicates", {})
    H.message(S, tx({ "a@example.test" }), msg("<m@x>"))
    local t = tx({ "A@example.test", "b@example.test" })
    assert.is_nil(H.message(S, t, msg("<m@x>")))
    assert.are.equal("a@example.test", t.env.DUPLICATE_RCPTS)
    assert.are.equal("drop_at_route", I.logs[1].action)
    assert.are.equal("discard", H.route(S, t, "A@example.test").action)
    assert.is_nil(H.route(S, t, "b@example.test"))
    assert.is_nil(H.route(S, { env = {} }, "a@example.test"))
  end)

  it("uses tx:remove_rcpt when the core has it", function()
    local H, I = F.policy("duplicates", {})
    H.message(S, tx({ "a@example.test" }), msg("<m@x>"))
    local t, removed = tx({ "a@example.test", "b@example.test" }), {}
    t.remove_rcpt = function(self, r) removed[#removed + 1] = r; assert.are.equal(t, self) end
    assert.is_nil(H.message(S, t, msg("<m@x>")))
    assert.are.same({ "a@example.test" }, removed)
    assert.is_nil(t.env.DUPLICATE_RCPTS)
    assert.are.equal("removed", I.logs[1].action)
  end)

  it("cleans the Message-ID into a key and refuses bad settings", function()
    local _, _, P = F.policy("duplicates", {})
    assert.are.equal("<a@b>", P.message_id(" <a@b>\t"))
    assert.are.equal(500, #P.message_id(("x"):rep(900)))
    assert.has_error(function() F.policy("duplicates", { windw = 1 }) end, "duplicates: unknown setting windw")
    assert.has_error(function() F.policy("duplicates", { window = 0 }) end,
      "duplicates: window must be a number of seconds (1 to 366 days)")
  end)
end)

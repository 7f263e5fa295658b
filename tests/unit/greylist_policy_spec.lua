-- lua/policies/greylist.lua without a daemon: the counters run on the
-- fake's clock (tests/helpers/fake_indimail.lua), so minutes pass at once.
-- The real shared counters: tests/integration/greylist_spec.lua.
local F = require("fake_indimail")

local function session(ip) return { ip = ip or "192.0.2.7", id = "S1" } end

describe("greylist policy", function()
  it("defers the first attempt with 451 4.7.1 and a log line", function()
    local H, I = F.policy("greylist", { min_delay = 300 })
    local v = H.rcpt(session(), { sender = "Joe@Example.ORG" }, "Ann@example.test")
    assert.are.equal("tempfail", v.action)
    assert.are.equal(451, v.code)
    assert.are.equal("4.7.1", v.status)
    assert.matches("^Greylisted: first attempt .* retry in 300 seconds$", v.text)
    assert.are.same({ event = "greylist", action = "defer", ip = "192.0.2.7",
      triplet = "192.0.2.7/joe@example.org/ann@example.test" }, I.logs[1])
  end)

  it("defers a retry before min_delay, passes one after it, then whitelists the client", function()
    local H, I = F.policy("greylist", { min_delay = 300, max_delay = 3600 })
    local tx = { sender = "joe@example.org" }
    assert.are.equal(451, H.rcpt(session(), tx, "a@example.test").code)
    I.now = I.now + 100
    local early = H.rcpt(session(), tx, "a@example.test")
    assert.matches("retried too early", early.text)
    I.now = I.now + 201
    assert.is_nil(H.rcpt(session(), tx, "a@example.test"))
    assert.are.equal("pass", I.logs[#I.logs].action)
    -- whitelisted client: another sender and recipient pass at once
    assert.is_nil(H.rcpt(session(), { sender = "x@y.test" }, "b@example.test"))
    assert.are.equal(451, H.rcpt(session("192.0.2.8"), tx, "a@example.test").code)
  end)

  it("starts again after max_delay, and forgets the whitelist after whitelist_time", function()
    local H, I = F.policy("greylist", { min_delay = 1, max_delay = 10, whitelist_time = 100 })
    local tx = { sender = "joe@example.org" }
    assert.are.equal(451, H.rcpt(session(), tx, "a@example.test").code)
    I.now = I.now + 11
    assert.matches("first attempt", H.rcpt(session(), tx, "a@example.test").text)
    I.now = I.now + 2
    assert.is_nil(H.rcpt(session(), tx, "a@example.test"))
    I.now = I.now + 99
    assert.is_nil(H.rcpt(session(), { sender = "" }, "z@example.test"))
    I.now = I.now + 2
    assert.are.equal(451, H.rcpt(session(), { sender = "" }, "z@example.test").code)
  end)

  it("whitelists only the triplet with whitelist = \"triplet\"", function()
    local H, I = F.policy("greylist", { min_delay = 1, whitelist = "triplet" })
    local tx = { sender = "joe@example.org" }
    H.rcpt(session(), tx, "a@example.test")
    I.now = I.now + 2
    assert.is_nil(H.rcpt(session(), tx, "a@example.test"))
    assert.are.equal(451, H.rcpt(session(), tx, "b@example.test").code)
  end)

  it("greylists a /24 or /64 as one client with network = true", function()
    local H, I, P = F.policy("greylist", { min_delay = 1, network = true })
    assert.are.equal("192.0.2.0/24", P.client("192.0.2.77"))
    assert.are.equal("20010db8000000aa/64", P.client("2001:db8:0:aa::5"))
    local tx = { sender = "joe@example.org" }
    H.rcpt(session("192.0.2.7"), tx, "a@example.test")
    I.now = I.now + 2
    assert.is_nil(H.rcpt(session("192.0.2.99"), tx, "a@example.test"))
  end)

  it("never greylists logged-in users, relay_from clients and the whitelist", function()
    local H = F.policy("greylist", { skip_clients = { "198.51.100.0/24" },
      skip_senders = { "example.org", ".example.net" } })
    assert.is_nil(H.rcpt({ ip = "192.0.2.7", auth_user = "joe@example.test" }, { sender = "a@b.test" }, "x@example.test"))
    assert.is_nil(H.rcpt({ ip = "192.0.2.7", relay = true }, { sender = "a@b.test" }, "x@example.test"))
    assert.is_nil(H.rcpt(session("198.51.100.3"), { sender = "a@b.test" }, "x@example.test"))
    assert.is_nil(H.rcpt(session(), { sender = "joe@example.org" }, "x@example.test"))
    assert.is_nil(H.rcpt(session(), { sender = "joe@mx.example.net" }, "x@example.test"))
    assert.are.equal(451, H.rcpt(session(), { sender = "joe@example.net" }, "x@example.test").code)
  end)

  it("returns only stage functions and refuses bad settings", function()
    local H = F.policy("greylist", {})
    assert.are.same({ "rcpt" }, (function() local k = {}; for n in pairs(H) do k[#k + 1] = n end; return k end)())
    assert.has_error(function() F.policy("greylist", { min_dely = 1 }) end, "greylist: unknown setting min_dely")
    assert.has_error(function() F.policy("greylist", { min_delay = 0 }) end,
      "greylist: min_delay must be a number of seconds (1 to 366 days)")
    assert.has_error(function() F.policy("greylist", { min_delay = 20, max_delay = 10 }) end,
      "greylist: min_delay must be shorter than max_delay")
    assert.has_error(function() F.policy("greylist", { whitelist = "ip" }) end,
      "greylist: whitelist must be \"client\" or \"triplet\"")
  end)
end)

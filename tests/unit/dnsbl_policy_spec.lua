-- lua/policies/dnsbl.lua without a daemon: indimail.dns.lookup_all answers
-- from a table (tests/helpers/fake_indimail.lua), so the query names (RFC
-- 5782 reversed IPv4 and IPv6 nibbles), weights, match codes and masks, the
-- error codes, the thresholds, the exemptions, the log line and the header
-- are checked alone. Against a real DNS server: tests/integration/dnsbl_spec.lua.
package.path = "tests/helpers/?.lua;" .. package.path
local F = require("fake_indimail")

local function session(ip, more)
  local s = { ip = ip or "192.0.2.99", helo = "mail.example.org", id = "S1" }
  for k, v in pairs(more or {}) do s[k] = v end
  return s
end
local function tx(sender) return { sender = sender or "a@example.org", notes = {} } end

local TWO = { { zone = "a.test", weight = 2 }, { zone = "b.test", weight = 3 } }

local function policy(settings, zone)
  local H, I, P = F.policy("dnsbl", settings)
  I.zone = zone or {}
  return H, I, P
end

local function last_log(I)
  for i = #I.logs, 1, -1 do
    if I.logs[i].event == "dnsbl" and I.logs[i].action ~= "error" then return I.logs[i] end
  end
end

describe("dnsbl policy", function()
  describe("query names (RFC 5782 2.1, 2.4)", function()
    local _, _, P = policy({ lists = TWO })

    it("reverses the octets of an IPv4 address", function()
      assert.are.equal("99.2.0.192", (P.reverse("192.0.2.99")))
      assert.are.equal("2.0.0.127", (P.reverse("::ffff:127.0.0.2")))
    end)

    it("reverses the 32 nibbles of an IPv6 address", function()
      local name, family = P.reverse("2001:db8::1")
      assert.are.equal(6, family)
      assert.are.equal("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2", name)
    end)

    it("gives nil for what is not an address", function()
      assert.is_nil(P.reverse("mail.example.org"))
    end)
  end)

  describe("scores", function()
    it("asks every list in one lookup_all and rejects a score over reject_above with 550 5.7.1", function()
      local H, I = policy({ lists = TWO, reject_above = 4 },
        { ["99.2.0.192.a.test"] = { "127.0.0.2" }, ["99.2.0.192.b.test"] = { "127.0.0.2" } })
      local v = H.mail(session(), tx())
      assert.are.same({ "99.2.0.192.a.test", "99.2.0.192.b.test" }, I.queries)
      assert.are.equal("reject", v.action)
      assert.are.equal(550, v.code)
      assert.are.equal("5.7.1", v.status)
      assert.are.equal("Client 192.0.2.99 blocked: listed by a.test; listed by b.test", v.text)
      local l = last_log(I)
      assert.are.same({ event = "dnsbl", ip = "192.0.2.99", score = 5, lists = "a.test,b.test",
        action = "reject" }, l)
    end)

    it("tags a score below reject_above: X-DNSBL at DATA", function()
      local H, I = policy({ lists = TWO, reject_above = 4 }, { ["99.2.0.192.b.test"] = { "127.0.0.2" } })
      local t = tx()
      assert.is_nil(H.mail(session(), t))
      assert.are.equal("tag", last_log(I).action)
      local added, removed
      H.data(session(), t, { add_header = function(_, n, v) added = { n, v } end,
        remove_header = function(_, n) removed = n end })
      assert.are.equal("X-DNSBL", removed)
      assert.are.same({ "X-DNSBL", "score=3 lists=b.test" }, added)
    end)

    it("tempfails a score over tempfail_above with 451 4.7.1", function()
      local H = policy({ lists = TWO, reject_above = 4, tempfail_above = 2 },
        { ["99.2.0.192.b.test"] = { "127.0.0.2" } })
      local v = H.mail(session(), tx())
      assert.are.equal(451, v.code)
      assert.are.equal("4.7.1", v.status)
    end)

    it("passes an unlisted client without a header", function()
      local H, I = policy({ lists = TWO })
      local t = tx()
      assert.is_nil(H.mail(session(), t))
      assert.is_nil(t.notes.dnsbl)
      assert.are.equal("pass", last_log(I).action)
    end)

    it("uses a list's reason with %s as the client's address", function()
      local H = policy({ lists = { { zone = "a.test", reason = "%s is listed, see https://a.test/?%s" } } },
        { ["99.2.0.192.a.test"] = { "127.0.0.2" } })
      assert.are.equal("Client 192.0.2.99 blocked: 192.0.2.99 is listed, see https://a.test/?192.0.2.99",
        H.mail(session(), tx()).text)
    end)

    it("bounds the reply text", function()
      local lists = {}
      for i = 1, 20 do lists[i] = { zone = ("l%d.test"):format(i), reason = ("x"):rep(60) } end
      local zone = {}
      for i = 1, 20 do zone[("99.2.0.192.l%d.test"):format(i)] = { "127.0.0.2" } end
      local v = policy({ lists = lists }, zone).mail(session(), tx())
      assert.are.equal(400, #v.text)
      assert.matches("%.%.%.$", v.text)
    end)
  end)

  describe("return codes", function()
    local function hit(list, answer)
      local H, I = policy({ lists = { list }, reject_above = 0 }, { ["99.2.0.192.a.test"] = { answer } })
      local v = H.mail(session(), tx())
      return v ~= nil and v.action == "reject", I
    end

    it("counts any 127.0.0.x listing code without match", function()
      assert.is_true(hit({ zone = "a.test" }, "127.0.0.2"))
      assert.is_true(hit({ zone = "a.test" }, "127.0.0.10"))
    end)

    it("counts only the codes of match, a code or a set", function()
      assert.is_true(hit({ zone = "a.test", match = "127.0.0.4" }, "127.0.0.4"))
      assert.is_false(hit({ zone = "a.test", match = { "127.0.0.2", "127.0.0.3" } }, "127.0.0.4"))
      assert.is_true(hit({ zone = "a.test", match = { "127.0.0.2", "127.0.0.3" } }, "127.0.0.3"))
    end)

    it("counts a mask against the last octet (SURBL/URIBL multi lists)", function()
      assert.is_true(hit({ zone = "a.test", mask = 8 }, "127.0.0.12"))
      assert.is_false(hit({ zone = "a.test", mask = 8 }, "127.0.0.6"))
    end)

    it("takes 127.255.255.x, 127.0.0.1 and answers outside 127/8 as errors, not listings", function()
      for _, a in ipairs({ "127.255.255.254", "127.255.255.255", "127.0.0.1", "198.51.100.7" }) do
        local listed, I = hit({ zone = "a.test" }, a)
        assert.is_false(listed, a)
        assert.are.equal("error", I.logs[1].action, a)
        assert.are.equal("answer " .. a, I.logs[1].error)
      end
    end)
  end)

  describe("a list that fails", function()
    it("counts as not listing, with a log line, by default", function()
      local H, I = policy({ lists = TWO, reject_above = 5 },
        { ["99.2.0.192.a.test"] = "tempfail", ["99.2.0.192.b.test"] = { "127.0.0.2" } })
      local t = tx()
      assert.is_nil(H.mail(session(), t))
      assert.are.same({ event = "dnsbl", ip = "192.0.2.99", list = "a.test", on_error = "pass",
        action = "error", error = "tempfail: Timeout while contacting DNS servers" }, I.logs[1])
      assert.are.equal("tag", last_log(I).action)
    end)

    it("gives 451 4.7.1 with on_error = tempfail", function()
      local H = policy({ lists = { { zone = "a.test", on_error = "tempfail" } } }, { ["99.2.0.192.a.test"] = "tempfail" })
      local v = H.mail(session(), tx())
      assert.are.equal("tempfail", v.action)
      assert.are.equal(451, v.code)
    end)
  end)

  describe("who is checked", function()
    local zone = { ["99.2.0.192.a.test"] = { "127.0.0.2" }, ["99.2.0.192.b.test"] = { "127.0.0.2" } }

    it("never checks logged-in users, relay clients or the allow networks", function()
      local H, I = policy({ lists = TWO, allow = { "192.0.2.0/24" } }, zone)
      assert.is_nil(H.mail(session(nil, { auth_user = "joe@example.test" }), tx()))
      assert.is_nil(H.mail(session(nil, { relay = true }), tx()))
      assert.is_nil(H.mail(session(), tx()))
      assert.are.same({}, I.queries)
    end)

    it("asks IPv6 clients only of lists with ipv6 = true", function()
      local H, I = policy({ lists = { { zone = "a.test" }, { zone = "six.test", ipv6 = true } } })
      H.mail(session("2001:db8::1"), tx())
      assert.are.same({ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.six.test" }, I.queries)
    end)

    it("asks domain lists about the sender's domain and the HELO name, once per name", function()
      local H, I = policy({ lists = {
        { zone = "dbl.test", check = "sender", match = "127.0.1.2" },
        { zone = "dbl.test", check = "sender", match = "127.0.1.3", weight = 5 },
        { zone = "dbl.test", check = "helo" } } }, { ["example.org.dbl.test"] = { "127.0.1.3" } })
      local v = H.mail(session(), tx("a@Example.ORG"))
      assert.are.same({ "example.org.dbl.test", "mail.example.org.dbl.test" }, I.queries)
      assert.are.equal(550, v.code)
      assert.are.equal(5, last_log(I).score)
    end)

    it("skips the null sender and address literals for domain lists", function()
      local H, I = policy({ lists = { { zone = "dbl.test", check = "sender" }, { zone = "dbl.test", check = "helo" } } })
      assert.is_nil(H.mail(session(nil, { helo = "[192.0.2.99]" }), tx("")))
      assert.are.same({}, I.queries)
    end)
  end)

  describe("settings", function()
    local function bad(s, msg)
      local ok, err = pcall(F.policy, "dnsbl", s)
      assert.is_false(ok)
      assert.matches(msg, err, 1, true)
    end

    it("refuses unknown settings and bad lists with the field's name", function()
      bad({ lists = TWO, rejectabove = 1 }, "dnsbl: unknown setting rejectabove")
      bad({}, "dnsbl: lists must name at least one list")
      bad({ lists = { { zone = "a.test", wieght = 1 } } }, "dnsbl: lists[1]: unknown setting wieght")
      bad({ lists = { { zone = "nodot" } } }, "dnsbl: lists[1].zone must be a DNS zone")
      bad({ lists = { { zone = "a.test", match = "1.2.3.4" } } }, "is not a 127.x.y.z return code")
      bad({ lists = { { zone = "a.test", check = "rcpt" } } }, "check must be ip, sender or helo")
      bad({ lists = { { zone = "a.test", on_error = "reject" } } }, "on_error must be pass or tempfail")
      bad({ lists = { { zone = "a.test", mask = 256 } } }, "mask must be 1 to 255")
      bad({ lists = TWO, allow = { "300.1.1.1/8" } }, "bad cidr")
    end)

    it("returns only stage functions", function()
      local H = policy({ lists = TWO })
      for k, v in pairs(H) do
        assert.is_true(k == "mail" or k == "data")
        assert.are.equal("function", type(v))
      end
    end)
  end)
end)

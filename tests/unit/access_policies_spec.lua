-- The access policies without a daemon (lua/policies/accesslist, hostaccess,
-- chkrcptdomains, badmailfrom, badrcptto, badhelo, relay and
-- lua/stdlib/addrlist.lua): indimail.log/reject are fakes, regexes come from
-- lrexlib's rex_pcre2 (what indimaild links for indimail.regex.compile).
-- tests/integration/access_policies_spec.lua runs them over SMTP.
package.path = "lua/stdlib/?.lua;" .. package.path
local rex = require("rex_pcre2")

local function fake_indimail()
  local I = { logs = {} }
  I.regex = { compile = rex.new }
  I.log = function(event, f) f.event = event; I.logs[#I.logs + 1] = f end
  I.reject = function(text, code, status)
    return { action = "reject", text = text, code = code, status = status }
  end
  return I
end

-- The policy's hook table after setup(settings), and the fake's log.
local function load(name, settings)
  _G.indimail = fake_indimail()
  local P = dofile("lua/policies/" .. name .. ".lua")
  return P.setup(settings), _G.indimail
end

local files = {}
local function control(text)
  local f = os.tmpname()
  local h = assert(io.open(f, "w"))
  h:write(text)
  h:close()
  files[#files + 1] = f
  return f
end

local S = { ip = "192.0.2.7", id = "S1" }
local function tx(sender) return { sender = sender } end

teardown(function() for _, f in ipairs(files) do os.remove(f) end end)

describe("addrlist", function()
  setup(function() _G.indimail = fake_indimail() end)
  local addrlist = require("addrlist")

  it("reads qmail lines: addresses, @domain, wildmats with ! exclusions", function()
    local l = addrlist.load({ file = control("# bad senders\njoe@spam.example\n@bulk.example\n"
      .. "*@earthlink.net\n!fred@earthlink.net\n"), entries = { "@.sub.example" } })
    assert.same({ text = "joe@spam.example", where = files[#files] .. ":2" }, l:lookup("JOE@Spam.Example"))
    assert.equal("@bulk.example", l:lookup("x@bulk.example").text)
    assert.is_nil(l:lookup("x@a.bulk.example"))
    assert.equal("@.sub.example", l:lookup("x@a.sub.example").text)
    assert.equal("*@earthlink.net", l:lookup("bob@earthlink.net").text)
    assert.is_nil(l:lookup("fred@earthlink.net"))
    assert.is_nil(l:lookup(""))
    assert.equal(5, l:size())
  end)

  it("takes address literals as literal, not as wildmat sets", function()
    local l = addrlist.load({ entries = { "joe@[192.0.2.1]" } })
    assert.is_true(l:match("joe@[192.0.2.1]"))
    assert.is_false(l:match("joe@1"))
  end)

  it("treats every entry as a PCRE2 regex with regex = true, !re negated", function()
    local l = addrlist.load({ regex = true, entries = { ".*spam.*", "!@" } })
    assert.equal(".*spam.*", l:lookup("bigSPAMmer@x.example").text)
    assert.equal("!@", l:lookup("unqualified").text)
    assert.is_nil(l:lookup("joe@ok.example"))
  end)

  it("names the file and line of a bad entry", function()
    local f = control("ok@example.com\n[abc\n")
    assert.has_error(function() addrlist.load({ file = f }) end,
      f .. ":2: bad wildmat '[abc': unclosed [")
  end)

  it("reads relayclients into CIDR entries", function()
    local f = control("127.0.0.1:\n192.168.1.:\n10.:\n2001:db8::/32:\n")
    assert.same({ "127.0.0.1", "192.168.1.0/24", "10.0.0.0/8", "2001:db8::/32" },
      addrlist.relayclients(f))
    assert.has_error(function() addrlist.relayclients(control("192.0.2.1:+ext\n")) end)
  end)
end)

describe("badmailfrom", function()
  it("refuses a listed sender at MAIL with 553 5.7.1 and logs the entry", function()
    local f = control("@spam.example\n")
    local P, I = load("badmailfrom", { file = f, entries = { "*@*.bulk.example" } })
    local v = P.mail(S, tx("joe@SPAM.example"))
    assert.same({ action = "reject", code = 553, status = "5.7.1",
      text = "Sender address <joe@SPAM.example> refused by policy (badmailfrom)" }, v)
    assert.same({ event = "badmailfrom", sender = "joe@SPAM.example", rule = "@spam.example",
      where = f .. ":1", ip = "192.0.2.7" }, I.logs[1])
    assert.equal(553, P.mail(S, tx("a@x.bulk.example")).code)
    assert.is_nil(P.mail(S, tx("joe@ok.example")))
    assert.is_nil(P.mail(S, tx("")))
  end)

  it("refuses unknown settings", function()
    assert.has_error(function() load("badmailfrom", { fille = "x" }) end,
      "badmailfrom: unknown setting fille")
  end)
end)

describe("badrcptto", function()
  it("refuses a listed recipient with 550 5.7.1, a wildmat too", function()
    local P, I = load("badrcptto", { entries = { "retired@example.test", "*%*" } })
    local v = P.rcpt(S, tx("a@b.test"), "Retired@example.test")
    assert.equal(550, v.code)
    assert.equal("5.7.1", v.status)
    assert.equal("Recipient address <Retired@example.test> refused by policy (badrcptto)", v.text)
    assert.equal("entries[1]", I.logs[1].where)
    assert.equal(550, P.rcpt(S, tx(""), "a%b@example.test").code)
    assert.equal("*%*", I.logs[2].rule)
    assert.is_nil(P.rcpt(S, tx(""), "joe@example.test"))
  end)
end)

describe("badhelo", function()
  it("refuses listed HELO names: exact, subdomains, wildmats, literals", function()
    local P, I = load("badhelo", { entries = { "localhost", ".dyn.example", "*.localdomain",
      "[127.0.0.1]" } })
    local v = P.helo(S, "LOCALHOST")
    assert.same({ action = "reject", code = 550, status = "5.7.1",
      text = "HELO/EHLO name LOCALHOST refused by policy (badhelo)" }, v)
    assert.equal("localhost", I.logs[1].rule)
    assert.is_truthy(P.helo(S, "a.b.dyn.example"))
    assert.is_truthy(P.helo(S, "pc.localdomain"))
    assert.is_truthy(P.helo(S, "[127.0.0.1]"))
    assert.is_nil(P.helo(S, "dyn.example"))
    assert.is_nil(P.helo(S, "mx.example.org"))
  end)
end)

describe("accesslist", function()
  local f
  setup(function()
    f = control("# IndiMail accesslist\nfrom:recruiter@yahoo.com:hr@indimail.org\n"
      .. "rcpt:ceo@indimail.org:country@indimail.org\nrcpt:md@indimail.org:country@indimail.org\n"
      .. "from:*@partner.example:@indimail.org\n")
  end)

  it("keeps a from-rule's sender to its recipients: 553 5.7.1 naming the rule", function()
    local P, I = load("accesslist", { file = f })
    assert.is_nil(P.rcpt(S, tx("Recruiter@Yahoo.com"), "hr@indimail.org"))
    local v = P.rcpt(S, tx("recruiter@yahoo.com"), "ceo@indimail.org")
    assert.same({ action = "reject", code = 553, status = "5.7.1",
      text = "Sender <recruiter@yahoo.com> may not send to <ceo@indimail.org> (accesslist)" }, v)
    assert.same({ event = "accesslist", rule = "from:recruiter@yahoo.com", where = f .. ":2",
      sender = "recruiter@yahoo.com", rcpt = "ceo@indimail.org", ip = "192.0.2.7" }, I.logs[1])
  end)

  it("keeps a rcpt-rule's recipient to its senders: 550 5.7.1", function()
    local P, I = load("accesslist", { file = f })
    assert.is_nil(P.rcpt(S, tx("md@indimail.org"), "country@indimail.org"))
    assert.is_nil(P.rcpt(S, tx("ceo@indimail.org"), "COUNTRY@indimail.org"))
    local v = P.rcpt(S, tx("joe@indimail.org"), "country@indimail.org")
    assert.equal(550, v.code)
    assert.equal("Recipient <country@indimail.org> does not accept mail from <joe@indimail.org> (accesslist)", v.text)
    assert.equal("rcpt:country@indimail.org", I.logs[1].rule)
    assert.equal(f .. ":3", I.logs[1].where)
  end)

  it("matches wildmat keys and @domain peers; others are free", function()
    local P = load("accesslist", { file = f })
    assert.is_nil(P.rcpt(S, tx("a@partner.example"), "x@indimail.org"))
    assert.equal(553, P.rcpt(S, tx("a@partner.example"), "x@other.example").code)
    assert.is_nil(P.rcpt(S, tx("joe@free.example"), "anyone@anywhere.example"))
  end)

  it("never restricts the null sender, postmaster or abuse", function()
    local P = load("accesslist", { file = f })
    assert.is_nil(P.rcpt(S, tx(""), "country@indimail.org"))
    assert.is_nil(P.rcpt(S, tx("recruiter@yahoo.com"), "postmaster@indimail.org"))
    assert.is_nil(P.rcpt(S, tx("recruiter@yahoo.com"), "Abuse@indimail.org"))
  end)

  it("takes the Lua table form and regexes", function()
    local P, I = load("accesslist", { regex = true,
      from = { ["^bot\\d+@example\\.test$"] = { "@example.test" } },
      rcpt = { ["board@example.test"] = "ceo@example.test" } })
    assert.is_nil(P.rcpt(S, tx("bot7@example.test"), "x@example.test"))
    assert.equal(553, P.rcpt(S, tx("BOT7@example.test"), "x@else.test").code)
    assert.equal(550, P.rcpt(S, tx("joe@example.test"), "board@example.test").code)
    assert.equal('rcpt["board@example.test"][1]', I.logs[2].where)
  end)

  it("names the line of a bad rule", function()
    local bad = control("from:a@b.example:c@d.example\nto:x@y:z@w\n")
    assert.has_error(function() load("accesslist", { file = bad }) end,
      bad .. ":2: unknown rule type 'to' (from or rcpt)")
    assert.has_error(function() load("accesslist", { file = control("from:a@b\n") }) end)
  end)

  it("looks up a 100,000-line file by hash: the scan is only over patterns", function()
    local lines = {}
    for i = 1, 100000 do lines[i] = ("from:user%d@big.example:peer%d@example.test"):format(i, i) end
    local P = load("accesslist", { file = control(table.concat(lines, "\n") .. "\n") })
    local t0 = os.clock()
    for i = 1, 10000 do
      assert.is_nil(P.rcpt(S, tx("user" .. i .. "@big.example"), "peer" .. i .. "@example.test"))
    end
    assert.equal(553, P.rcpt(S, tx("user99999@big.example"), "peer1@example.test").code)
    assert.is_true(os.clock() - t0 < 10, "a scan of 100,000 lines per lookup would take minutes")
  end)
end)

describe("hostaccess", function()
  it("lets a listed domain come only from its ranges: 553 5.7.1 otherwise", function()
    local f = control("example.com:192.0.2.0/24\nexample.com:2001:db8:1::/48\n"
      .. "*:198.51.100.9\nrange.example:203.0.113.10-20\nopen.example:*\n")
    local P, I = load("hostaccess", { file = f, domains = { ["lua.example"] = "10.0.0.0/8" } })
    assert.is_nil(P.mail({ ip = "192.0.2.200" }, tx("joe@example.com")))
    assert.is_nil(P.mail({ ip = "2001:db8:1:2::5" }, tx("joe@EXAMPLE.com")))
    local v = P.mail({ ip = "192.0.3.1" }, tx("joe@example.com"))
    assert.same({ action = "reject", code = 553, status = "5.7.1",
      text = "Sender domain example.com may not be used from your address [192.0.3.1] (hostaccess)" }, v)
    assert.same({ event = "hostaccess", rule = "example.com", where = f .. ":1",
      sender = "joe@example.com", ip = "192.0.3.1" }, I.logs[1])
    assert.is_nil(P.mail({ ip = "198.51.100.9" }, tx("joe@example.com")))
    assert.is_nil(P.mail({ ip = "203.0.113.15" }, tx("a@range.example")))
    assert.equal(553, P.mail({ ip = "203.0.113.21" }, tx("a@range.example")).code)
    assert.is_nil(P.mail({ ip = "192.0.3.1" }, tx("a@open.example")))
    assert.is_nil(P.mail({ ip = "10.1.2.3" }, tx("a@lua.example")))
    assert.equal(553, P.mail({ ip = "11.1.2.3" }, tx("a@lua.example")).code)
    assert.is_nil(P.mail({ ip = "192.0.3.1" }, tx("a@unlisted.example")))
    assert.is_nil(P.mail({ ip = "192.0.3.1", auth_user = "joe@example.com" }, tx("joe@example.com")))
  end)

  it("names the line of a bad range", function()
    local f = control("example.com:192.0.2.0/33\n")
    assert.has_error(function() load("hostaccess", { file = f }) end,
      f .. ":1: bad cidr '192.0.2.0/33': prefix length over 32")
  end)
end)

describe("chkrcptdomains", function()
  it("checks recipients of the listed domains only: 550 5.1.1", function()
    local d = control("relayed.example\n@other.example\n")
    local r = control("joe@relayed.example\n@other.example\n")
    local P, I = load("chkrcptdomains", { domains = { file = d }, recipients = { file = r } })
    assert.is_nil(P.rcpt(S, tx("a@b.test"), "Joe@relayed.example"))
    local v = P.rcpt(S, tx("a@b.test"), "ann@relayed.example")
    assert.same({ action = "reject", code = 550, status = "5.1.1",
      text = "Recipient address rejected: no such user here (chkrcptdomains)" }, v)
    assert.equal("relayed.example", I.logs[1].rule)
    assert.is_nil(P.rcpt(S, tx("a@b.test"), "anyone@other.example"))
    assert.is_nil(P.rcpt(S, tx("a@b.test"), "anyone@unchecked.example"))
  end)

  it("takes plain lists too", function()
    local P = load("chkrcptdomains", { domains = { "p.example" }, recipients = { "j@p.example" } })
    assert.is_nil(P.rcpt(S, tx(""), "j@p.example"))
    assert.equal(550, P.rcpt(S, tx(""), "k@p.example").code)
  end)
end)

describe("relay", function()
  local function settings()
    return { rcpthosts = { entries = { "example.test", ".example.test" } },
      relay_to = { entries = { "partner.example" } },
      relay_senders = { entries = { "@example.test" } },
      authdomains = { entries = { "@corp.example" } },
      auth_exempt_clients = { "198.51.100.0/24" },
      auth_exempt_senders = { "robot@corp.example" } }
  end
  local relay_client = { ip = "192.0.2.7", relay = true }

  it("keeps a relay client to relay_to domains: 554 5.7.1", function()
    local P, I = load("relay", settings())
    assert.is_nil(P.rcpt(relay_client, tx("a@example.test"), "x@partner.example"))
    assert.is_nil(P.rcpt(relay_client, tx("a@example.test"), "x@mx.example.test"))
    local v = P.rcpt(relay_client, tx("a@example.test"), "x@elsewhere.example")
    assert.same({ action = "reject", code = 554, status = "5.7.1",
      text = "Relaying to elsewhere.example denied for your address (relay)" }, v)
    assert.same({ event = "relay", rule = "relay_to", rcpt = "x@elsewhere.example",
      sender = "a@example.test", ip = "192.0.2.7" }, I.logs[1])
    assert.is_nil(P.rcpt({ ip = "192.0.2.7", relay = true, auth_user = "u@example.test" },
      tx("a@example.test"), "x@elsewhere.example"))
  end)

  it("keeps a relay client to relay_senders", function()
    local P = load("relay", settings())
    local v = P.rcpt(relay_client, tx("a@forged.example"), "x@partner.example")
    assert.equal("Relaying denied for sender <a@forged.example> (relay)", v.text)
  end)

  it("asks authdomains senders for AUTH unless exempt: 550 5.7.1", function()
    local P, I = load("relay", settings())
    local v = P.mail({ ip = "192.0.2.9" }, tx("boss@corp.example"))
    assert.same({ action = "reject", code = 550, status = "5.7.1",
      text = "Authentication required to send as corp.example (relay)" }, v)
    assert.equal("@corp.example", I.logs[1].entry)
    assert.is_nil(P.mail({ ip = "198.51.100.3" }, tx("boss@corp.example")))
    assert.is_nil(P.mail({ ip = "192.0.2.9" }, tx("robot@corp.example")))
    assert.is_nil(P.mail({ ip = "192.0.2.9", auth_user = "boss@corp.example" }, tx("boss@corp.example")))
    assert.is_nil(P.mail(relay_client, tx("boss@corp.example")))
    assert.is_nil(P.mail({ ip = "192.0.2.9" }, tx("joe@else.example")))
  end)

  it("grants a relayclients client relaying for the session at connect", function()
    local f = control("127.0.0.1:\n192.168.1.\n")
    local P, I = load("relay", { relayclients = { file = f, entries = { "2001:db8::/32:" } } })
    local s = { ip = "192.168.1.40" }
    assert.is_nil(P.connect(s))
    assert.is_true(s.relay)
    assert.same({ event = "relay", rule = "relayclients", entry = "192.168.1.0/24",
      ip = "192.168.1.40" }, I.logs[1])
    local v6 = { ip = "2001:db8::7" }
    P.connect(v6)
    assert.is_true(v6.relay)
    local other = { ip = "192.0.2.9" }
    P.connect(other)
    assert.is_nil(other.relay)
    assert.is_nil(load("relay", {}).connect)   -- no relayclients: no connect hook
  end)

  it("names a bad relayclients line", function()
    assert.error_matches(function() load("relay", { relayclients = { "192.0.2.1:+ext" } }) end,
      "entries%[1%]: '192.0.2.1:%+ext': a RELAYCLIENT suffix is not supported$")
    assert.error_matches(function() load("relay", { relayclients = { "nonsense" } }) end,
      "entries%[1%]: bad relayclients entry 'nonsense'$")
  end)

  it("grants relaymailfrom senders relaying for the transaction, not users", function()
    local P, I = load("relay", { relaymailfrom = { entries = { "lists@example.test", "@alerts.example" } } })
    local t = tx("Lists@example.test")
    assert.is_nil(P.mail({ ip = "192.0.2.9" }, t))
    assert.is_true(t.relay)
    assert.same({ event = "relay", rule = "relaymailfrom", entry = "lists@example.test",
      where = "entries[1]", sender = "Lists@example.test", ip = "192.0.2.9" }, I.logs[1])
    local d = tx("x@alerts.example")
    P.mail({ ip = "192.0.2.9" }, d)
    assert.is_true(d.relay)
    local o = tx("x@else.example")
    P.mail({ ip = "192.0.2.9" }, o)
    assert.is_nil(o.relay)
    local u = tx("lists@example.test")
    P.mail({ ip = "192.0.2.9", auth_user = "lists@example.test" }, u)
    assert.is_nil(u.relay)
  end)

  it("asks authdomains before relaymailfrom grants", function()
    local P = load("relay", { relaymailfrom = { "@corp.example" }, authdomains = { "@corp.example" } })
    local t = tx("boss@corp.example")
    assert.equal(550, P.mail({ ip = "192.0.2.9" }, t).code)
    assert.is_nil(t.relay)
  end)

  it("needs rcpthosts for the relay checks and knows its settings", function()
    assert.has_error(function() load("relay", { relay_to = { entries = {} } }) end,
      "relay: relay_to and relay_senders need rcpthosts (the domains that are ours)")
    assert.has_error(function() load("relay", { relayto = {} }) end, "relay: unknown setting relayto")
  end)
end)

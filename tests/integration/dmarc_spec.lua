-- The dmarc policy end to end (lua/policies/dmarc.lua after spf and
-- dkim_verify; indimail.dmarc.check on the loop's resolver): a real dnsmasq
-- serves the _dmarc TXT records, the SPF records and a DKIM key; dkimpy
-- signs the messages; SMTP sessions come from 127.0.0.1. Aligned DKIM or
-- SPF → dmarc=pass in Authentication-Results; p=reject unaligned → 550
-- 5.7.1; p=quarantine → the quarantine mailbox (or a header); sp= for a
-- subdomain; the Organizational Domain from the Public Suffix List
-- (mail.example.co.uk → example.co.uk); adkim/aspf strict and relaxed;
-- two From: fields → permerror; DNS down → temperror, as configured.
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local socket = require("socket")
local t = D.t

local ID = "mx.test.example"	-- the daemon's hostname (daemon.lua)
local DNS_TIMEOUT = 2		-- the daemon's dns.timeout (daemon.lua), seconds

local ZONE = {
  "--local=/uk/",	-- co.uk names are answered here, never forwarded
  "--txt-record=_dmarc.ok.test,v=DMARC1; p=reject; rua=mailto:agg@ok.test",
  "--txt-record=_dmarc.spf.test,v=DMARC1; p=reject",
  "--txt-record=spf.test,v=spf1 ip4:127.0.0.1 -all",
  "--txt-record=_dmarc.rej.test,v=DMARC1; p=reject",
  "--txt-record=_dmarc.quar.test,v=DMARC1; p=quarantine",
  "--txt-record=_dmarc.sub.test,v=DMARC1; p=none; sp=reject",
  "--txt-record=_dmarc.example.co.uk,v=DMARC1; p=reject",
  "--txt-record=_dmarc.strict.test,v=DMARC1; p=reject; aspf=s",
  "--txt-record=mail.strict.test,v=spf1 ip4:127.0.0.1 -all",
  "--txt-record=_dmarc.relaxed.test,v=DMARC1; p=reject",
  "--txt-record=mail.relaxed.test,v=spf1 ip4:127.0.0.1 -all",
  "--txt-record=_dmarc.sample.test,v=DMARC1; p=reject; pct=0",
  "--txt-record=_dmarc.two.test,v=DMARC1; p=reject",
  "--txt-record=_dmarc.two.test,v=DMARC1; p=none",
}

local POLICIES = [[
indimail.policy("spf", { fail = "mark" })
indimail.policy("dkim_verify")
indimail.policy("dmarc", { quarantine = "quarantine@example.test" })
]]

local function message(from, subject)
  return ("From: %s\r\nTo: alice@example.test\r\nSubject: %s\r\n"
    .. "Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s@dmarc.test>\r\n\r\nHello.\r\n")
    :format(from, subject, subject)
end

local function crlf(s)
  return (s:gsub("\r\n", "\n"):gsub("\n", "\r\n"))
end

-- The value of our dmarc Authentication-Results field in a queued message.
local function dmarc_ar(queued)
  return queued:match("Authentication%-Results: " .. ID:gsub("%.", "%%.") .. "; (dmarc=[^\n]*)")
end

-- The fields of the last event=dmarc line of d's log (waits up to 2 s).
local function dmarc_log(d)
  assert.truthy(d:wait_log("event=dmarc ", 2), d:log())
  local line
  for l in d:log():gmatch("[^\n]*event=dmarc [^\n]*") do line = l end
  local f = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do f[k] = v end
  return f
end

-- Sends msg from sender; code, reply text (and the queued message on 250).
local function try(d, sender, msg)
  local c = d:session()
  local code, text = c:transaction(sender, { "alice@example.test" }, msg)
  c:cmd("QUIT")
  if code ~= 250 then return code, text end
  local _, queued = d:queued(assert(text:match("queued as (%w+)"), text))
  return code, text, queued
end

describe("dmarc policy", function()
  local scratch, dns, key, blackhole

  setup(function()
    scratch = D.mktemp("dmarc")
    blackhole = assert(socket.udp())	-- _dmarc.slow.test goes here: never answered
    assert(blackhole:setsockname("127.0.0.1", 0))
    local _, port = blackhole:getsockname()
    key = scratch .. "/rsa.key"
    D.sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"):format(key))
    local p = D.sh(("openssl pkey -in %s -pubout -outform DER | base64 -w0"):format(key))
    local records = { "--txt-record=s1._domainkey.ok.test,v=DKIM1; k=rsa; p=" .. p:gsub("%s+$", ""),
      "--server=/_dmarc.slow.test/127.0.0.1#" .. port }
    for _, r in ipairs(ZONE) do records[#records + 1] = r end
    dns = dnsmasq.start{ dir = scratch, records = records }
  end)

  teardown(function()
    if dns then dns.stop() end
    if blackhole then blackhole:close() end
    D.rmtemp(scratch)
  end)

  after_each(cleanup.run)

  local function start(policies, dnsaddr, timeouts)
    return D.start_for_test{ dns = dnsaddr or ("127.0.0.1:" .. dns.port),
      mailboxes = "users = { 'alice@example.test', 'quarantine@example.test' }",
      config_extra = "dkim = { timeout = 3 }, spf = { timeout = 3 },",
      policies = policies or POLICIES, timeouts = timeouts }
  end

  local function signed(from, subject)
    local f = scratch .. "/unsigned"
    D.writefile(f, message(from, subject):gsub("\r\n", "\n"))
    return crlf(D.sh(("dkimsign s1 ok.test %s < %s"):format(key, f)))
  end

  describe("with spf, dkim_verify and dmarc", function()
    local d
    before_each(function() d = start() end)

    it("passes a message with an aligned DKIM signature, in its own Authentication-Results", function()
      local code, text, queued = try(d, "bounce@nowhere.test", signed("Joe <joe@ok.test>", "dkim"))
      assert.are.equal(250, code, text)
      assert.are.equal("dmarc=pass (p=reject dis=none) header.from=ok.test", dmarc_ar(queued), queued)
      local f = dmarc_log(d)
      assert.are.same({ "ok.test", "pass", "pass", "true", "s1", "mailto:agg@ok.test", "127.0.0.1", "none" },
        { f.header_from, f.result, f.dkim, f.dkim_aligned, f.dkim_selector, f.rua, f.ip, f.disposition })
    end)

    it("passes a message whose SPF pass is for the From domain", function()
      local code, text, queued = try(d, "a@spf.test", message("a@spf.test", "spf"))
      assert.are.equal(250, code, text)
      assert.are.equal("dmarc=pass (p=reject dis=none) header.from=spf.test", dmarc_ar(queued), queued)
    end)

    it("rejects with 550 5.7.1 when p=reject and neither SPF nor DKIM is aligned", function()
      local code, text = try(d, "a@spf.test", message("joe@rej.test", "reject"))
      assert.are.equal(550, code, text)
      assert.matches("5%.7%.1 DMARC policy of rej%.test is reject", text)
      local f = dmarc_log(d)
      assert.are.same({ "fail", "reject", "reject", "spf.test", "false" },
        { f.result, f.policy, f.disposition, f.spf_domain, f.spf_aligned })
    end)

    it("sends p=quarantine mail to the quarantine mailbox", function()
      local code, text, queued = try(d, "a@spf.test", message("joe@quar.test", "quarantine"))
      assert.are.equal(250, code, text)
      assert.are.equal("dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test", dmarc_ar(queued), queued)
      assert.truthy(d:wait_log("event=quarantined .*address=quarantine@example%.test", 2), d:log())
    end)

    it("applies sp= to a subdomain whose policy comes from the Organizational Domain", function()
      local code, text = try(d, "a@spf.test", message("joe@mail.sub.test", "sp"))
      assert.are.equal(550, code, text)
      assert.matches("DMARC policy of mail%.sub%.test is reject", text)
      local _, _, queued = try(d, "a@spf.test", message("joe@sub.test", "p"))
      assert.are.equal("dmarc=fail (p=none dis=none) header.from=sub.test", dmarc_ar(queued), queued)
    end)

    it("finds the Organizational Domain with the Public Suffix List (mail.example.co.uk)", function()
      local code, text = try(d, "a@spf.test", message("joe@mail.example.co.uk", "psl"))
      assert.are.equal(550, code, text)
      local log = D.readfile(dns.log) or ""
      assert.truthy(log:find("_dmarc.mail.example.co.uk", 1, true), log)
      assert.truthy(log:find("_dmarc.example.co.uk", 1, true), log)
      assert.falsy(log:find("_dmarc.co.uk", 1, true), log)
    end)

    it("aligns SPF of a subdomain when relaxed, not when aspf=s", function()
      local _, text, queued = try(d, "a@mail.relaxed.test", message("joe@relaxed.test", "relaxed"))
      assert.are.equal("dmarc=pass (p=reject dis=none) header.from=relaxed.test", dmarc_ar(queued or ""), text)
      local code, text2 = try(d, "a@mail.strict.test", message("joe@strict.test", "strict"))
      assert.are.equal(550, code, text2)
    end)

    it("says permerror for a message with two From: fields, and accepts it by default", function()
      local code, text, queued = try(d, "a@spf.test", "From: a@spf.test\r\n" .. message("joe@rej.test", "two"))
      assert.are.equal(250, code, text)
      assert.matches("^dmarc=permerror reason=\"more than one From: field or domain\"", dmarc_ar(queued))
    end)

    it("applies pct=0 as the next milder policy (reject → quarantine)", function()
      local code, text, queued = try(d, "a@spf.test", message("joe@sample.test", "pct"))
      assert.are.equal(250, code, text)
      assert.are.equal("dmarc=fail (p=reject dis=quarantine) header.from=sample.test", dmarc_ar(queued), queued)
    end)

    it("applies no policy when the domain publishes two DMARC records", function()
      local _, _, queued = try(d, "a@spf.test", message("joe@two.test", "two records"))
      assert.matches("^dmarc=none reason=\"more than one DMARC record at _dmarc%.two%.test\" header%.from=two%.test$",
        dmarc_ar(queued or ""))
    end)
  end)

  it("marks instead of acting in monitor mode, and tags with a header by default", function()
    local d = start([[
indimail.policy("spf", { fail = "mark" })
indimail.policy("dkim_verify")
indimail.policy("dmarc", { domains = { ["rej.test"] = "monitor" } })]])
    local code, text, queued = try(d, "a@spf.test", message("joe@rej.test", "monitor"))
    assert.are.equal(250, code, text)
    assert.are.equal("dmarc=fail (p=reject dis=none) header.from=rej.test", dmarc_ar(queued), queued)
    assert.are.equal("local", dmarc_log(d).override)
    local _, _, q2 = try(d, "a@spf.test", message("joe@quar.test", "tag"))
    assert.matches("\nX%-DMARC%-Quarantine: policy of quar%.test is quarantine\n", q2)
  end)

  it("rejects a message with two From: fields when permerror = 'reject'", function()
    local d = start([[indimail.policy("dmarc", { permerror = "reject" })]])
    local code, text = try(d, "a@spf.test", "From: a@spf.test\r\n" .. message("joe@rej.test", "two"))
    assert.are.equal(550, code, text)
    assert.matches("5%.7%.1 DMARC: more than one From", text)
  end)

  it("says temperror when DNS is down: accepted and marked, or 451 with temperror = 'tempfail'", function()
    local down = "127.0.0.1:" .. D.free_udp_port()
    local d = start([[indimail.policy("dmarc")]], down)
    local code, text, queued = try(d, "a@spf.test", message("joe@rej.test", "dnsdown"))
    assert.are.equal(250, code, text)
    assert.matches("^dmarc=temperror reason=\"DNS: [^\"]+\" header%.from=rej%.test$", dmarc_ar(queued))
    cleanup.run()
    d = start([[indimail.policy("dmarc", { temperror = "tempfail" })]], down)
    code, text = try(d, "a@spf.test", message("joe@rej.test", "dnsdown2"))
    assert.are.equal(451, code, text)
    assert.matches("4%.7%.1 DMARC policy of rej%.test could not be retrieved", text)
  end)

  it("gives 451 4.3.0 when the hook's time runs out with a _dmarc query out, and the worker goes on", function()
    local d = start([[indimail.policy("dmarc")]], nil, "command = 30, data = 30, tls = 10, hook = 0.5, drain = 5")
    local code, text = try(d, "a@spf.test", message("joe@slow.test", "slow"))
    assert.are.equal(451, code, text)
    assert.matches("4%.3%.0", text)
    t.sleep(DNS_TIMEOUT + 0.5)   -- the late answer arrives for a finished hook
    code, text = try(d, "a@spf.test", message("joe@rej.test", "after"))
    assert.are.equal(550, code, text)
    assert.are.equal(0, d:count_log("event=worker_died"), d:log())
  end)

  it("indimail.dmarc: record= without DNS, relaxed alignment by the PSL, errors that name the field", function()
    local d = start([[
indimail.hook("message", function(session, tx, msg)
  local r = indimail.dmarc.check{ from_domain = "Mail.Example.CO.UK", record = "v=DMARC1; p=quarantine; pct=50",
    spf = { result = "pass", domain = "bounce.example.co.uk" }, dkim = { { result = "fail", domain = "x.test" } } }
  local _, e1 = pcall(indimail.dmarc.check, { from_domain = "x.test", spff = {} })
  local _, e2 = pcall(indimail.dmarc.check, { from_domain = "not a domain" })
  indimail.log("probe", { result = r.result, org = r.organizational_domain, aligned = tostring(r.spf_aligned),
    policy = r.policy, pct = r.pct, e1 = e1, e2 = e2, from = indimail.dmarc.from_domain(msg),
    od = indimail.dmarc.organizational_domain("a.b.example.com"), ps = tostring(indimail.dmarc.organizational_domain("co.uk")) })
end, "probe")]])
    local code, text = try(d, "a@spf.test", message("Joe <JOE@Mail.Example.CO.UK>", "probe"))
    assert.are.equal(250, code, text)
    assert.truthy(d:wait_log("event=probe ", 2), d:log())
    local line = d:log():match("[^\n]*event=probe [^\n]*")
    for _, want in ipairs({ "result=pass", "org=example.co.uk", "aligned=true", "policy=quarantine", "pct=50",
      "from=mail.example.co.uk", "od=example.com", "ps=nil", "unknown option spff", "from_domain must be a domain name" }) do
      assert.truthy(line:find(want, 1, true), want .. " in " .. line)
    end
  end)
end)

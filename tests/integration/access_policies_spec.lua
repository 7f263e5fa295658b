-- The access policies in a running daemon, over SMTP with swaks, Python's
-- smtplib and the spec's own client: each refusal's reply and its log line
-- (docs/policies/accesslist.md, hostaccess.md, chkrcptdomains.md,
-- badmailfrom.md, relay.md). Control files are IndiMail's formats; the
-- clients exempt from authdomains come from a relayclients file.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local json = require("dkjson")

local SCRIPT = D.root .. "/tests/clients/smtplib_send.py"

local function swaks(port, args)
  return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5 %s"):format(port, args))
end

local function smtplib(port, from, to)
  local out, rc = D.sh(("timeout 60 /usr/bin/python3 %s %d plain %s %s text"):format(
    SCRIPT, port, from, table.concat(to, ",")))
  assert.equal(0, rc, out)
  return assert(json.decode(out), out)
end

local CONTROL = {
  badmailfrom = "# qmail badmailfrom\n@spam.example\n*@*.bulk.example\n!ok@x.bulk.example\n",
  badrcptto = "retired@example.test\n",
  accesslist = "from:recruiter@yahoo.com:hr@example.test\n"
    .. "rcpt:ceo@example.test:all@example.test\n",
  hostaccess = "hosted.example:127.0.0.9\nhosted.example:2001:db8::/32\n",
  chkrcptdomains = "partner.example\n",
  recipients = "joe@partner.example\n",
  relayclients = "127.0.0.3:\n",
}

local function policies(dir)
  local f = function(name) return ("%q"):format(dir .. "/" .. name) end
  return ([[
indimail.policy("badhelo", { entries = { "*.localdomain" } })
indimail.policy("badmailfrom", { file = %s })
indimail.policy("badrcptto", { file = %s })
indimail.policy("accesslist", { file = %s })
indimail.policy("hostaccess", { file = %s })
indimail.policy("chkrcptdomains", { domains = { file = %s }, recipients = { file = %s } })
indimail.policy("relay", {
  rcpthosts = { entries = { "example.test", "local.test" } },
  relay_to = { entries = { "partner.example" } },
  authdomains = { entries = { "@corp.example" } },
  auth_exempt_clients = require("addrlist").relayclients(%s),
})
]]):format(f("badmailfrom"), f("badrcptto"), f("accesslist"), f("hostaccess"),
    f("chkrcptdomains"), f("recipients"), f("relayclients"))
end

local function start()
  local dir = D.scratch_dir("access")
  for name, text in pairs(CONTROL) do D.writefile(dir .. "/" .. name, text) end
  return D.start_for_test{ policies = policies(dir), relay_from = "'127.0.0.2'" }
end

-- The reply to RCPT TO:<to> after MAIL FROM:<from>, from address src.
local function rcpt(d, from, to, src)
  local c = D.connect(d.ports.smtp, nil, src)
  cleanup.defer(function() c:close() end)
  assert.equal(220, (c:reply()))
  assert.equal(250, (c:cmd("EHLO client.example.test")))
  local code, text = c:cmd("MAIL FROM:<" .. from .. ">")
  if code == 250 then code, text = c:cmd("RCPT TO:<" .. to .. ">") end
  c:cmd("QUIT")
  return code, text
end

describe("access policies over SMTP", function()
  local d
  setup(function() d = start() end)
  teardown(function() cleanup.run() end)

  it("badhelo: swaks' EHLO pc.localdomain gets 550 5.7.1 and event=badhelo", function()
    local out = swaks(d.ports.smtp, "--helo pc.localdomain --from a@example.test --to b@example.test")
    assert.matches("<%** 550 5%.7%.1 HELO/EHLO name pc%.localdomain refused by policy %(badhelo%)", out)
    assert.is_truthy(d:wait_log("event=badhelo[^\n]*rule=%*%.localdomain", 5))
  end)

  it("badmailfrom: swaks' MAIL FROM a listed domain gets 553 5.7.1 naming the file line", function()
    local out = swaks(d.ports.smtp, "--helo client.example.test --from joe@spam.example --to b@example.test")
    assert.matches("<%** 553 5%.7%.1 Sender address <joe@spam%.example> refused by policy %(badmailfrom%)", out)
    assert.is_truthy(d:wait_log("event=badmailfrom[^\n]*where=[^\n ]*/badmailfrom:2", 5))
    assert.equal(553, (rcpt(d, "a@b.bulk.example", "b@example.test")))
    assert.equal(250, (rcpt(d, "ok@x.bulk.example", "b@example.test")))
  end)

  it("badrcptto: 550 5.7.1 for the listed recipient only", function()
    assert.same({ 550, "550 5.7.1 Recipient address <retired@example.test> refused by policy (badrcptto)" },
      { rcpt(d, "a@example.test", "retired@example.test") })
    assert.is_truthy(d:wait_log("event=badrcptto[^\n]*rule=retired@example%.test", 5))
    assert.equal(250, (rcpt(d, "a@example.test", "joe@example.test")))
  end)

  it("accesslist: smtplib sees 553 5.7.1 for a from-rule and 550 5.7.1 for a rcpt-rule", function()
    local r = smtplib(d.ports.smtp, "recruiter@yahoo.com", { "ceo@example.test" })
    assert.equal("SMTPRecipientsRefused", r.error, json.encode(r))
    assert.same({ 553, "5.7.1 Sender <recruiter@yahoo.com> may not send to <ceo@example.test> (accesslist)" },
      r.error_args["ceo@example.test"])
    assert.is_truthy(d:wait_log("event=accesslist[^\n]*rule=from:recruiter@yahoo%.com", 5))

    r = smtplib(d.ports.smtp, "recruiter@yahoo.com", { "hr@example.test" })
    assert.is_true(r.ok, json.encode(r))
    assert.equal(250, r.data_reply[1])

    r = smtplib(d.ports.smtp, "joe@example.test", { "all@example.test" })
    assert.same({ 550, "5.7.1 Recipient <all@example.test> does not accept mail from <joe@example.test> (accesslist)" },
      r.error_args["all@example.test"])
    assert.is_truthy(d:wait_log("event=accesslist[^\n]*rule=rcpt:all@example%.test", 5))
    assert.is_true(smtplib(d.ports.smtp, "ceo@example.test", { "all@example.test" }).ok)
  end)

  it("hostaccess: hosted.example only from 127.0.0.9, 553 5.7.1 elsewhere", function()
    local code, text = rcpt(d, "joe@hosted.example", "b@example.test", "127.0.0.1")
    assert.equal(553, code)
    assert.equal("553 5.7.1 Sender domain hosted.example may not be used from your address [127.0.0.1] (hostaccess)", text)
    assert.is_truthy(d:wait_log("event=hostaccess[^\n]*rule=hosted%.example", 5))
    assert.equal(250, (rcpt(d, "joe@hosted.example", "b@example.test", "127.0.0.9")))
  end)

  it("relay: relay_from's 127.0.0.2 relays to partner.example only (554 5.7.1), the core refuses others", function()
    assert.equal(250, (rcpt(d, "a@example.test", "joe@partner.example", "127.0.0.2")))
    assert.same({ 554, "554 5.7.1 Relaying to elsewhere.example denied for your address (relay)" },
      { rcpt(d, "a@example.test", "x@elsewhere.example", "127.0.0.2") })
    assert.is_truthy(d:wait_log("event=relay[^\n]*rule=relay_to", 5))
    assert.same({ 554, "554 5.7.1 Relay access denied: not a local domain" },
      { rcpt(d, "a@example.test", "joe@partner.example", "127.0.0.1") })
  end)

  it("chkrcptdomains: partner.example recipients must be listed (550 5.1.1)", function()
    assert.same({ 550, "550 5.1.1 Recipient address rejected: no such user here (chkrcptdomains)" },
      { rcpt(d, "a@example.test", "ann@partner.example", "127.0.0.2") })
    assert.is_truthy(d:wait_log("event=chkrcptdomains[^\n]*rcpt=ann@partner%.example", 5))
  end)

  it("relay: an authdomains sender needs AUTH (550 5.7.1) unless from a relayclients client", function()
    assert.same({ 550, "550 5.7.1 Authentication required to send as corp.example (relay)" },
      { rcpt(d, "boss@corp.example", "b@example.test", "127.0.0.1") })
    assert.is_truthy(d:wait_log("event=relay[^\n]*rule=authdomains", 5))
    assert.equal(250, (rcpt(d, "boss@corp.example", "b@example.test", "127.0.0.3")))
  end)
end)

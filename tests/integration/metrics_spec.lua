-- /metrics on the admin listener (docs/operations.md "Monitoring"): the
-- Prometheus text format 0.0.4, scraped with Python's urllib and a bearer
-- token of scope "metrics" made by `indimail admin token add`; mail is
-- accepted, refused by a policy and by the core, delivered to a Maildir,
-- to a remote MX (a scripted SMTP server behind dnsmasq) and deferred
-- there, and every family moves by what happened. Histograms are checked
-- for form: buckets cumulative, +Inf equal to _count.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local fake_smtp = require("fake_smtp")
local maildir = require("maildir")
local backends = require("dirbackend")

local SCRATCH, P, dns, ADMIN_PORT

local ZONE = { "--mx-host=remote.test,mx.remote.test,10", "--host-record=mx.remote.test,127.0.0.4" }

local POLICY = [[
indimail.hook("rcpt", function(session, tx, rcpt)
  if rcpt == "blocked@example.test" then
    return indimail.reject("Blocked by the metrics spec", 550, "5.7.1")
  end
end, "spec_block")
]]

local SCRAPE = [[
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    r = urllib.request.urlopen(req, timeout=5)
    sys.stdout.write("%d\n%s\n%s" % (r.status, r.headers.get("Content-Type"), r.read().decode()))
except urllib.error.HTTPError as e:
    sys.stdout.write("%d\n\n" % e.code)
]]

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- status, content type, body of GET /metrics (token: the bearer, or none).
local function scrape(token)
  local f = SCRATCH .. "/scrape.py"
  D.writefile(f, SCRAPE)
  local out = D.sh("python3 " .. q(f) .. " " .. q(("http://127.0.0.1:%d/metrics"):format(ADMIN_PORT))
    .. (token and (" " .. q(token)) or ""))
  local status, ctype, body = out:match("^(%d+)\n([^\n]*)\n(.*)$")
  return tonumber(status), ctype, body or out
end

-- The value of the sample `name{labels}`, 0 when absent (a series made later).
local function sample(text, name, labels)
  local key = name .. (labels and ("{" .. labels .. "}") or "")
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^(.-) (%S+)$")
    if k == key then return tonumber(v) end
  end
  return 0
end

-- Every histogram: cumulative buckets, +Inf == _count; returns how many.
local function check_histograms(text)
  local last, n = {}, 0
  for line in text:gmatch("[^\n]+") do
    local name, labels, v = line:match('^(%S+)_bucket{(.-)le="[^"]+"} (%d+)$')
    if name then
      local series = name .. "{" .. labels
      assert.is_true(tonumber(v) >= (last[series] or 0), "not cumulative: " .. line)
      last[series] = tonumber(v)
      if line:find('le="+Inf"', 1, true) then
        local base = labels:gsub(",$", "")
        assert.equal(sample(text, name .. "_count", base ~= "" and base or nil), tonumber(v), line)
        n = n + 1
      end
    end
  end
  return n
end

-- A token of scope metrics, made by the CLI on the running daemon's config.
local function metrics_token(d, scopes)
  local out = D.sh(D.bin .. "/indimail -c " .. q(d.config) .. " admin token add scraper"
    .. tostring(math.random(1e6)) .. " --scopes " .. (scopes or "metrics"))
  return assert(out:match("(imt_[%w_%-]+)"), out)
end

local function start(o)
  return D.start_for_test{
    deliver = true,
    dns = "127.0.0.1:" .. dns.port,
    relay_from = "'127.0.0.0/8'",
    mailboxes = o.mailboxes or "users = { 'alice@example.test', 'blocked@example.test' }, postmaster = 'alice@example.test'",
    directory = o.directory,
    delivery = "port = " .. P .. ", retry = { base = 60, max = 60 },"
      .. " timeouts = { connect = 2, greeting = 3, command = 2, data = 3 }",
    config_extra = ("admin = { listen = '127.0.0.1:%d', tls = false },"):format(ADMIN_PORT),
    policies = POLICY,
  }
end

local function message(to)
  return "From: alice@example.test\r\nTo: " .. to .. "\r\nSubject: metrics\r\n\r\nbody\r\n"
end

-- Refusals: blocked@ (a user) by the policy (550 5.7.1), nobody@ by the core
-- (550 5.1.1, before the rcpt hook).
local function refused_rcpts(d)
  local c = d:session()
  assert.equal(250, (c:cmd("MAIL FROM:<alice@example.test>")))
  assert.equal(550, (c:cmd("RCPT TO:<blocked@example.test>")))
  assert.equal(550, (c:cmd("RCPT TO:<nobody@example.test>")))
  c:cmd("QUIT")
end

describe("/metrics", function()
  setup(function()
    SCRATCH = D.mktemp("metrics")
    P = D.free_tcp_port()
    ADMIN_PORT = D.free_tcp_port()
    dns = dnsmasq.start{ dir = SCRATCH, records = ZONE }
  end)
  teardown(function()
    cleanup.run()
    if dns then dns.stop() end
    D.rmtemp(SCRATCH)
  end)
  after_each(cleanup.run)

  it("answers 401 without a token and 403 with a token of another scope", function()
    local d = start{}
    assert.equal(401, (scrape()))
    assert.equal(403, (scrape(metrics_token(d, "queue:read"))))
  end)

  it("serves the text format 0.0.4, every family at 0 first, and moves each by what happened", function()
    D.sh("mkdir -p " .. q(SCRATCH .. "/fake"))
    local fake = fake_smtp.start(SCRATCH .. "/fake", "127.0.0.4", P,
      { rcpt = { ["soft@remote.test"] = { "451 4.3.0 try later" } } })
    local d = start{}
    local token = metrics_token(d)
    local status, ctype, before = scrape(token)
    assert.equal(200, status, before)
    assert.equal("text/plain; version=0.0.4", ctype:gsub(";%s*charset=utf%-8", ""))
    assert.truthy(before:find("# TYPE indimail_connections_total counter\n", 1, true))
    assert.equal(0, sample(before, "indimail_messages_accepted_total", 'listener="smtp"'))
    assert.truthy(before:find('indimail_deliveries_total{result="delivered",class="local"} 0', 1, true))
    assert.truthy(before:find('indimail_queue_messages{queue="0",state="deferred"} 0', 1, true))
    assert.truthy(before:find('indimail_destinations{state="down"} 0', 1, true))
    assert.equal(1, sample(before, "indimail_build_info", 'version="' .. (before:match('version="([^"]+)"') or "") .. '"'))
    assert.is_true(check_histograms(before) >= 3)

    d:send("alice@example.test", { "alice@example.test" }, message("alice@example.test"))
    d:send("alice@example.test", { "user@remote.test" }, message("user@remote.test"))
    d:send("alice@example.test", { "soft@remote.test" }, message("soft@remote.test"))
    refused_rcpts(d)
    assert.truthy(maildir.wait(d, "alice", 1, 10), d:log())
    assert.truthy(d:wait_event("delivered", { "to=user@remote.test" }), d:log())
    assert.truthy(d:wait_event("deferred", { "to=soft@remote.test" }), d:log())

    local after
    assert.truthy(D.eventually(function()   -- the queue gauges follow each second
      after = select(3, scrape(token))
      return sample(after, "indimail_queue_messages", 'queue="0",state="deferred"')
        + sample(after, "indimail_queue_messages", 'queue="1",state="deferred"') == 1
    end, 5), after)
    local function moved(name, labels)
      return sample(after, name, labels) - sample(before, name, labels)
    end
    assert.equal(4, moved("indimail_connections_total", 'listener="smtp"'))
    assert.equal(3, moved("indimail_messages_accepted_total", 'listener="smtp"'))
    assert.equal(0, moved("indimail_messages_accepted_total", 'listener="submission"'))
    assert.equal(1, moved("indimail_messages_rejected_total", 'stage="rcpt",reason="5.7.1",policy="spec_block"'), after)
    assert.equal(1, moved("indimail_messages_rejected_total", 'stage="rcpt",reason="5.1.1",policy=""'))
    assert.equal(1, moved("indimail_deliveries_total", 'result="delivered",class="local"'))
    assert.equal(1, moved("indimail_deliveries_total", 'result="delivered",class="remote"'))
    assert.equal(1, moved("indimail_deliveries_total", 'result="deferred",class="remote"'))
    assert.equal(0, moved("indimail_deliveries_total", 'result="bounced",class="remote"'))
    assert.equal(2, moved("indimail_delivery_delay_seconds_count"))
    -- the rcpt hook ran for the three messages and for blocked@ (the core
    -- refused nobody@ before it)
    assert.equal(4, moved("indimail_hook_duration_seconds_count", 'stage="rcpt"'))
    assert.is_true(moved("indimail_group_commit_batch_size_count") >= 1)
    assert.is_true(moved("indimail_group_commit_batch_size_sum") >= 3)
    assert.is_true(check_histograms(after) >= 4)
    fake.stop()
  end)

  it("keeps its counts across a worker's restart and a reload", function()
    local d = start{}
    local token = metrics_token(d)
    d:send("alice@example.test", { "alice@example.test" }, message("alice@example.test"))
    assert.equal(1, sample(select(3, scrape(token)), "indimail_messages_accepted_total", 'listener="smtp"'))
    assert.is_truthy(d:signal("HUP"))
    assert.truthy(d:wait_log("event=reloaded", 10), d:log())
    local old = assert(d:worker_pids()[1])
    assert.is_truthy(D.t.kill(old, "KILL"))
    assert.truthy(D.eventually(function()   -- a young death: replaced after 1 s
      local p = d:worker_pids()
      return #p == 1 and p[1] ~= old
    end, 10), d:log())
    d:send("alice@example.test", { "alice@example.test" }, message("alice@example.test"))
    assert.equal(2, sample(select(3, scrape(token)), "indimail_messages_accepted_total", 'listener="smtp"'))
  end)

  it("counts directory cache hits, misses and negative hits (SQLite)", function()
    local db = backends.all()[1].fresh()   -- SQLite
    local function cli(args, stdin)
      local out, code = D.sh((stdin and ("printf '%s\\n' " .. q(stdin) .. " | ") or "")
        .. D.bin .. "/indimail " .. table.concat(db.cli_args, " ") .. " " .. args)
      assert.equal(0, code, out)
    end
    cli("domain add cache.test")
    cli("user add u@cache.test --password-stdin", "Passw0rd-1")
    local d = start{ directory = db.directory, mailboxes = "" }
    local token = metrics_token(d)
    local before = select(3, scrape(token))
    for _ = 1, 2 do
      local c = d:session()
      assert.equal(250, (c:cmd("MAIL FROM:<alice@example.test>")))
      c:cmd("RCPT TO:<u@cache.test>")
      assert.equal(550, (c:cmd("RCPT TO:<none@cache.test>")))
      c:cmd("QUIT")
    end
    local after = select(3, scrape(token))
    local function moved(result)
      local l = 'result="' .. result .. '"'
      return sample(after, "indimail_directory_cache_lookups_total", l)
        - sample(before, "indimail_directory_cache_lookups_total", l)
    end
    assert.is_true(moved("miss") >= 2, after)
    assert.is_true(moved("hit") >= 1, after)
    assert.is_true(moved("negative_hit") >= 1, after)
  end)
end)

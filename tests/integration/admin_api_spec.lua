-- The admin HTTP API (docs/admin-api.md, docs/admin-api.yaml): an
-- indimaild with admin = { listen = "127.0.0.1:0" } (HTTPS with the test
-- certificate), tokens made with `indimail admin token`, and every request
-- made by Python's urllib verifying the certificate
-- (tests/clients/admin_api.py). Checks: tokens add/list/remove, 401 and
-- 403, a domain and a user made over the API that then logs in with SMTP
-- AUTH, aliases, the queue (list with filters, show, hold, release,
-- remove) with a message kept by paused delivery, config check and
-- reload (and a refused reload), stats, /metrics, the audit lines, 413
-- and 400; that docs/admin-api.yaml describes every route the server has;
-- and that plain HTTP off loopback is refused at load.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

local BIN = D.bin .. "/indimail"
local CLIENT = "tests/clients/admin_api.py"
local PW = "Passw0rd-1"
local ALL_SCOPES = "domains:read,domains:write,users:read,users:write,aliases:read,"
  .. "aliases:write,queue:read,queue:write,config:read,config:write,stats:read,metrics"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A daemon with the admin API and an SQLite directory of its own.
local function start()
  local dbdir = D.scratch_dir("admindb")
  if D.t.getuid() == 0 then D.sh("chown indimail: " .. dbdir) end
  local d = D.start_for_test{
    directory = ("backend = 'sqlite', path = %q, cache_ttl = 1, negative_ttl = 1"):format(dbdir .. "/dir.sqlite"),
    config_extra = "admin = { listen = '127.0.0.1:0' },",
  }
  assert.is_truthy(d.ports.admin, d:log())
  assert.is_truthy(d:wait_log("event=admin_start", 5), d:log())
  return d
end

-- `indimail -c CONFIG admin token ARGS`: stdout, exit code.
local function token(d, args)
  local out, code = D.sh(BIN .. " -c " .. q(d.config) .. " admin token " .. args)
  return out:gsub("%s+$", ""), code
end

-- One request; returns status, body, content type, WWW-Authenticate.
local function api(d, tok, method, path, body, body_size)
  local cert = D.test_cert()
  local cmd = ("timeout 120 python3 %s --ca %s --name mx.test.example --port %d"):format(
    CLIENT, q(cert), d.ports.admin)
  if tok then cmd = cmd .. " --token " .. q(tok) end
  if body then cmd = cmd .. " --body " .. q(body) end
  if body_size then cmd = cmd .. " --body-size " .. body_size end
  local out = D.sh(cmd .. " " .. method .. " " .. q(path))
  local status, ctype, www, rest = out:match("^(%d+)\n([^\n]*)\n([^\n]*)\n(.*)$")
  assert.is_truthy(status, "client: " .. out)
  return tonumber(status), rest, ctype, www
end

-- Waits for the token file's change to be seen (mtime) by asking.
local function usable(d, tok)
  return D.eventually(function() return (api(d, tok, "GET", "/metrics")) ~= 401 end, 5, 0.2)
end

describe("admin API", function()
  after_each(cleanup.run)

  it("makes, lists and removes tokens; 401 without or with an unknown one, 403 without the scope", function()
    local d = start()
    local ops, code = token(d, "add ops --scopes " .. ALL_SCOPES)
    assert.equal(0, code)
    assert.matches("^imt_[A-Za-z0-9_-]+$", ops)
    assert.equal(47, #ops)                                    -- imt_ + 43 base64url characters
    local reader = token(d, "add reader --scopes domains:read")
    assert.is_truthy(usable(d, ops))
    local list = token(d, "list")
    assert.matches("ops\tdomains:read,domains:write", list, 1, true)
    assert.matches("reader\tdomains:read", list, 1, true)
    assert.not_matches(ops, list, 1, true)                    -- never the token
    local file = D.readfile(d.dir .. "/admin-tokens")
    assert.not_matches(ops, file, 1, true)                    -- only its hash
    if D.t.getuid() == 0 then
      assert.equal("root:indimail 640", (D.sh("stat -c '%U:%G %a' " .. d.dir .. "/admin-tokens"):gsub("%s+$", "")))
    end
    local _, c2 = token(d, "add ops --scopes metrics")
    assert.are_not.equal(0, c2)                               -- the name is taken
    local _, c3 = token(d, "add x --scopes domains:rule")
    assert.are_not.equal(0, c3)                               -- no such scope

    local s, body, _, www = api(d, nil, "GET", "/v1/domains")
    assert.equal(401, s)
    assert.equal('Bearer realm="indimail"', www)
    assert.matches('"error":', body, 1, true)
    assert.equal(401, (api(d, "imt_" .. string.rep("A", 43), "GET", "/v1/domains")))
    assert.equal(200, (api(d, reader, "GET", "/v1/domains")))
    s, body = api(d, reader, "POST", "/v1/domains", '{"domain":"example.test"}')
    assert.equal(403, s)
    assert.matches("domains:write", body, 1, true)
    assert.equal(403, (api(d, reader, "GET", "/metrics")))
    assert.equal(404, (api(d, reader, "GET", "/v1/nothing")))
    assert.equal(405, (api(d, ops, "PUT", "/v1/domains")))

    assert.equal(0, select(2, token(d, "remove reader")))
    assert.is_truthy(D.eventually(function()
      return (api(d, reader, "GET", "/v1/domains")) == 401 end, 5, 0.2))
    assert.equal(200, (api(d, ops, "GET", "/v1/domains")))
    assert.not_matches(ops, d:log(), 1, true)
  end)

  it("creates a domain, a user that logs in with SMTP AUTH, and an alias; changes and deletes them", function()
    local d = start()
    local ops = token(d, "add ops --scopes " .. ALL_SCOPES)
    assert.is_truthy(usable(d, ops))
    assert.equal(201, (api(d, ops, "POST", "/v1/domains", '{"domain":"example.test"}')))
    local s, body = api(d, ops, "POST", "/v1/domains", '{"domain":"example.test"}')
    assert.equal(409, s)
    assert.matches("exists", body)
    s, body = api(d, ops, "POST", "/v1/domains/example.test/users",
      ('{"local":"joe","password":"%s","quota":"2M"}'):format(PW))
    assert.equal(201, s, body)
    s, body = api(d, ops, "GET", "/v1/users/joe@example.test")
    assert.equal(200, s)
    assert.matches('"address":"joe@example.test"', body, 1, true)
    assert.matches('"quota":2097152', body, 1, true)
    s, body = api(d, ops, "GET", "/v1/domains/example.test/users")
    assert.matches('^%[{"address":"joe@example.test"', body)
    -- the user made over the API really logs in
    local function auth(pw)
      return D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5 --helo c.example.test"
        .. " --tls --auth PLAIN --auth-user joe@example.test --auth-password %s"
        .. " --from joe@example.test --to x@remote.test --quit-after RCPT 2>&1"):format(d.ports.submission, q(pw)))
    end
    assert.matches("<[-~*]+ +235 2%.7%.0", auth(PW))
    s = api(d, ops, "PATCH", "/v1/users/joe@example.test", '{"password":"N3w-Passw0rd","no_relay":true}')
    assert.equal(200, s)
    assert.is_truthy(D.eventually(function() return auth("N3w-Passw0rd"):match("235 2%.7%.0") end, 5, 0.5))
    assert.matches('"no_relay":1', select(2, api(d, ops, "GET", "/v1/users/joe@example.test")), 1, true)
    -- input that looks like an option is data, never an option
    s, body = api(d, ops, "GET", "/v1/users/--db=x@example.test")
    assert.is_true(s == 400 or s == 404, body)
    s, body = api(d, ops, "POST", "/v1/domains", '{"domain":"--help"}')
    assert.equal(400, s, body)
    -- aliases
    s, body = api(d, ops, "POST", "/v1/aliases", '{"alias":"info@example.test","targets":["joe@example.test"]}')
    assert.equal(201, s, body)
    s, body = api(d, ops, "GET", "/v1/aliases/info@example.test")
    assert.matches("joe@example.test", body, 1, true)
    assert.equal(200, (api(d, ops, "DELETE", "/v1/aliases/info@example.test")))
    assert.equal(200, (api(d, ops, "DELETE", "/v1/users/joe@example.test")))
    assert.equal(404, (api(d, ops, "GET", "/v1/users/joe@example.test")))
    assert.equal(404, (api(d, ops, "DELETE", "/v1/domains/nowhere.test")))
    -- every change is audited, without a token or a password
    assert.is_truthy(d:wait_event("admin_api", { "token=ops", "method=POST", "path=/v1/domains ",
      "status=201", "client=127.0.0.1" }, true))
    assert.is_truthy(d:wait_event("admin_api", { "method=PATCH", "path=/v1/users/joe@example.test", "status=200" }, true))
    assert.is_truthy(d:wait_event("admin_api", { "method=DELETE", "status=404" }, true))
    assert.not_matches(PW, d:log(), 1, true)
    assert.not_matches("N3w-Passw0rd", d:log(), 1, true)
    assert.not_matches(ops, d:log(), 1, true)
  end)

  it("lists, filters, shows, holds, releases and removes a queued message", function()
    local d = start()       -- delivery paused: the message stays queued
    local ops = token(d, "add ops --scopes " .. ALL_SCOPES)
    assert.is_truthy(usable(d, ops))
    assert.equal(201, (api(d, ops, "POST", "/v1/domains", '{"domain":"example.test"}')))
    assert.equal(201, (api(d, ops, "POST", "/v1/domains/example.test/users",
      ('{"local":"bob","password":"%s"}'):format(PW))))
    local id = d:send("ann@remote.test", { "bob@example.test" }, "Subject: q\r\n\r\nhello\r\n")
    local s, body = api(d, ops, "GET", "/v1/queue")
    assert.equal(200, s, body)
    assert.matches('"id":"' .. id .. '"', body, 1, true)
    assert.matches('"sender":"ann@remote.test"', body, 1, true)
    assert.matches('"address":"bob@example.test"', body, 1, true)
    assert.matches(id, select(2, api(d, ops, "GET", "/v1/queue?to=bob@example.test&from=ann@remote.test")), 1, true)
    assert.equal("[]\n", select(2, api(d, ops, "GET", "/v1/queue?domain=other.test")))
    assert.equal("[]\n", select(2, api(d, ops, "GET", "/v1/queue?older_than=1d")))
    assert.equal(400, (api(d, ops, "GET", "/v1/queue?older_than=soon")))
    s, body = api(d, ops, "POST", "/v1/queue/" .. id .. "/hold")
    assert.equal(200, s, body)
    assert.matches("1 message held", body, 1, true)
    s, body = api(d, ops, "GET", "/v1/queue/" .. id)
    assert.matches('"held":true', body, 1, true)
    assert.matches(id, select(2, api(d, ops, "GET", "/v1/queue?state=held")), 1, true)
    assert.equal(200, (api(d, ops, "POST", "/v1/queue/" .. id .. "/release")))
    assert.matches('"held":false', select(2, api(d, ops, "GET", "/v1/queue/" .. id)), 1, true)
    assert.equal(404, (api(d, ops, "POST", "/v1/queue/" .. id .. "/explode")))
    assert.equal(400, (api(d, ops, "GET", "/v1/queue/-x")))
    s, body = api(d, ops, "POST", "/v1/queue/actions", '{"action":"hold"}')
    assert.equal(400, s)                                      -- which messages?
    s, body = api(d, ops, "POST", "/v1/queue/actions", '{"action":"hold","domain":"example.test"}')
    assert.equal(200, s, body)
    assert.matches("1 message held", body, 1, true)
    s, body = api(d, ops, "DELETE", "/v1/queue/" .. id)
    assert.equal(200, s, body)
    assert.is_truthy(D.eventually(function() return (api(d, ops, "GET", "/v1/queue/" .. id)) == 404 end, 5, 0.2))
    assert.is_truthy(d:wait_event("admin_api", { "method=DELETE", "path=/v1/queue/" .. id, "status=200" }, true))
  end)

  it("checks and reloads the configuration, refuses a broken one, reports stats and serves /metrics", function()
    local d = start()
    local ops = token(d, "add ops --scopes " .. ALL_SCOPES)
    assert.is_truthy(usable(d, ops))
    local s, body = api(d, ops, "GET", "/v1/config/check")
    assert.equal(200, s)
    assert.matches('"ok":true', body, 1, true)
    s, body = api(d, ops, "POST", "/v1/config/reload")
    assert.equal(200, s, body)
    assert.is_truthy(d:wait_event("reload_requested", { "by=admin_api" }, true))
    assert.is_truthy(d:wait_log("event=reload workers=", 5))
    local good = D.readfile(d.config)
    D.writefile(d.config, good .. "\nerror('broken on purpose')\n")
    s, body = api(d, ops, "GET", "/v1/config/check")
    assert.matches('"ok":false', body, 1, true)
    assert.matches("broken on purpose", body, 1, true)
    s, body = api(d, ops, "POST", "/v1/config/reload")
    assert.equal(409, s, body)
    assert.is_truthy(d:wait_log("event=reload_failed", 5))
    D.writefile(d.config, good)
    s, body = api(d, ops, "GET", "/v1/stats?since=1h")
    assert.equal(200, s, body)
    assert.matches("Messages", body, 1, true)
    assert.equal(400, (api(d, ops, "GET", "/v1/stats?since=--html=x")))
    local ctype
    s, body, ctype = api(d, ops, "GET", "/metrics")
    assert.equal(200, s)
    assert.equal("text/plain; version=0.0.4", ctype)
    assert.matches("\n# TYPE indimail_connections_total counter\n", body, 1, true)
  end)

  it("reads the new log for stats after logrotate's rename and SIGHUP; keeps a changed admin table until a restart", function()
    local d = start()
    local ops = token(d, "add ops --scopes " .. ALL_SCOPES)
    assert.is_truthy(usable(d, ops))
    assert.equal(201, (api(d, ops, "POST", "/v1/domains", '{"domain":"example.test"}')))
    assert.equal(201, (api(d, ops, "POST", "/v1/domains/example.test/users",
      ('{"local":"bob","password":"%s"}'):format(PW))))
    local msg = "Subject: t\r\n\r\nhello\r\n"
    local qid = d:send("ann@remote.test", { "bob@example.test" }, msg)
    assert.is_truthy(d:wait_log("event=queued[^\n]*" .. qid, 5))
    local log = d.dir .. "/indimail.log"
    D.sh(("mv %s %s.1"):format(log, log))
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("event=log_reopened", 5))
    -- the workers write to the new file once they took it (at their reload)
    assert.is_truthy(D.eventually(function()
      return d:count_log("smtp%[%d+%] info event=reloaded") >= #d:worker_pids()
    end, 10), d:log())
    for _ = 1, 2 do
      qid = d:send("ann@remote.test", { "bob@example.test" }, msg)
      assert.is_truthy(d:wait_log("event=queued[^\n]*" .. qid, 5))
    end
    local s, body = api(d, ops, "GET", "/v1/stats?since=1h")
    assert.equal(200, s, body)
    assert.matches("received%s+2%s", body)   -- the new file's two, not the old one's
    -- a changed admin table is kept until a restart, and the log says so
    local text = D.readfile(d.config)
    local changed, n = text:gsub("admin = { listen = '127%.0%.0%.1:0' }", "admin = { listen = '127.0.0.1:0', tls = false }")
    assert.equal(1, n)
    D.writefile(d.config, changed)
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("event=reload_admin_kept", 5), d:log():sub(-1500))
    assert.equal(200, (api(d, ops, "GET", "/v1/stats?since=1h")))   -- still HTTPS
  end)

  it("is restarted by the master when it dies", function()
    local d = start()
    local ops = token(d, "add ops --scopes metrics")
    assert.is_truthy(usable(d, ops))
    local pid = tonumber(d:log():match("event=admin_started pid=(%d+)"))
    assert.is_truthy(D.t.kill(pid, "KILL"))
    assert.is_truthy(d:wait_event("admin_died", { "process=admin", "signal=9" }, true), d:log())
    local again = D.eventually(function()
      local p = d:log():match(".*event=admin_started pid=(%d+)")
      return p and tonumber(p) ~= pid and p
    end, 10)
    assert.is_truthy(again, d:log())
    assert.is_truthy(D.eventually(function() return (api(d, ops, "GET", "/metrics")) == 200 end, 10, 0.2))
  end)

  it("serves plain HTTP on loopback with tls = false (curl)", function()
    local d = D.start_for_test{ config_extra = "admin = { listen = '127.0.0.1:0', tls = false }," }
    assert.is_truthy(d:wait_log("event=admin_start", 5), d:log())
    local ops = token(d, "add ops --scopes metrics")
    local function get()
      return D.sh(("curl -s -o /dev/null -w '%%{http_code}' -H 'Authorization: Bearer %s' http://127.0.0.1:%d/metrics")
        :format(ops, d.ports.admin))
    end
    assert.is_truthy(D.eventually(function() return get() == "200" end, 5, 0.2), get())
    assert.matches("tls=no", d:wait_event("admin_start", {}) or "", 1, true)
  end)

  it("answers 413 to an oversized body and 400 to a bad JSON body", function()
    local d = start()
    local ops = token(d, "add ops --scopes " .. ALL_SCOPES)
    assert.is_truthy(usable(d, ops))
    local s, body = api(d, ops, "POST", "/v1/domains", nil, 100000)
    assert.equal(413, s)
    assert.matches("65536", body, 1, true)
    s, body = api(d, ops, "POST", "/v1/domains", '{"domain": ')
    assert.equal(400, s)
    assert.matches("not JSON", body, 1, true)
    s, body = api(d, ops, "POST", "/v1/domains", '["example.test"]')
    assert.equal(400, s)
    s, body = api(d, ops, "POST", "/v1/domains", '{"domain": 7}')
    assert.equal(400, s)
    assert.matches('\\"domain\\" must be a string', body, 1, true)
    assert.is_truthy(d:wait_event("admin_api", { "method=POST", "status=413" }, true))
  end)
end)

describe("admin API definition", function()
  after_each(cleanup.run)

  it("describes every route of src/admin/admin_route.c in docs/admin-api.yaml, with its scope", function()
    local routes = {}
    for m, p, scope in D.readfile("src/admin/admin_route.c"):gmatch('{ "(%u+)", "([^"]+)", SCOPE_([%u_]+),') do
      routes[m .. " " .. p] = scope:lower():gsub("_", ":")
    end
    assert.is_truthy(next(routes))
    local out, code = D.sh("python3 -c " .. q([[
import sys, yaml
d = yaml.safe_load(open("docs/admin-api.yaml"))
assert d["openapi"].startswith("3.0")
for path, item in d["paths"].items():
    for m, op in item.items():
        if m != "parameters":
            print(m.upper(), path, op["x-scope"])
]]))
    assert.equal(0, code, out)
    local documented = {}
    for m, p, scope in out:gmatch("(%u+) (%S+) (%S+)\n") do documented[m .. " " .. p] = scope end
    for r, scope in pairs(routes) do
      assert.equal(scope, documented[r], r .. " is not in docs/admin-api.yaml with x-scope " .. scope)
    end
    for r in pairs(documented) do
      assert.is_truthy(routes[r], r .. " is documented but the server has no such route")
    end
  end)

  it("refuses plain HTTP on an address that is not loopback, and accepts it on loopback", function()
    local dir = D.scratch_dir("admincfg")
    local function check(admin)
      D.writefile(dir .. "/c.lua", ("indimail.config{ hostname = 'mx.test', lua_dir = 'lua', listen = { { name = 'smtp', "
        .. "address = '127.0.0.1', port = 0 } }, admin = { %s } }\n"):format(admin))
      return D.sh(D.bin .. "/indimaild -t -c " .. dir .. "/c.lua")
    end
    local out, code = check("listen = '0.0.0.0:8443', tls = false")
    assert.are_not.equal(0, code)
    assert.matches("admin.tls", out, 1, true)
    out, code = check("listen = '127.0.0.1:8443', tls = false")
    assert.equal(0, code, out)
    out, code = check("listen = '127.0.0.1:8443'")      -- TLS without a certificate
    assert.are_not.equal(0, code)
    assert.matches("certificate", out, 1, true)
    out, code = check("listen = 'localhost'")
    assert.are_not.equal(0, code)
    assert.matches("admin.listen", out, 1, true)
  end)
end)

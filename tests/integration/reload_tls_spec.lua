-- SIGHUP reloads the TLS certificate and key (docs/operations.md): the
-- files are swapped on disk, the master re-reads them (through its root
-- keeper when started as root) and every worker serves the new
-- certificate to new handshakes, while a session that started TLS before
-- the reload keeps working; a broken new key keeps the running
-- certificate and says why. Handshakes are Python's ssl (a real client).
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local PROBE = D.root .. "/tests/clients/tls_probe.py"

-- A self-signed certificate for cn in dir/NAME.{crt,key}.
local function make_cert(dir, name, cn)
  D.sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=%s -keyout %s/%s.key -out %s/%s.crt 2>/dev/null")
    :format(cn, dir, name, dir, name))
  local fp = D.sh(("openssl x509 -in %s/%s.crt -outform DER | sha256sum"):format(dir, name))
  return (fp:match("^(%x+)"))
end

-- Puts NAME's files where the daemon reads them (a rename, as certbot does).
local function install(dir, name)
  D.sh(("cp %s/%s.crt %s/cert.tmp && mv %s/cert.tmp %s/cert.pem"):format(dir, name, dir, dir, dir))
  D.sh(("cp %s/%s.key %s/key.tmp && mv %s/key.tmp %s/key.pem"):format(dir, name, dir, dir, dir))
end

-- The fingerprint a new STARTTLS handshake sees.
local function served(d)
  local out = D.sh(("python3 %s smtp %d"):format(PROBE, d.ports.smtp))
  return (out:match("fp (%x+)"))
end

local function setup()
  local dir = D.scratch_dir("reload-tls")
  local old = make_cert(dir, "old", "old.test.example")
  local new = make_cert(dir, "new", "new.test.example")
  install(dir, "old")
  local d = D.start_for_test{ cert = dir .. "/cert.pem", key = dir .. "/key.pem", workers = 2 }
  return d, dir, old, new
end

describe("SIGHUP reloads the TLS certificate", function()
  after_each(cleanup.run)

  it("serves the new certificate to new handshakes; a session opened before keeps working", function()
    local d, dir, old, new = setup()
    assert.equal(old, served(d))
    -- a session in TLS before the reload, held open until waitfile exists
    local waitfile, out = dir .. "/go", dir .. "/probe.out"
    local pid = assert(t.spawn({ "python3", PROBE, "smtp", tostring(d.ports.smtp), waitfile }, out))
    cleanup.defer(function() D.stop_pid(pid) end)
    assert.is_truthy(D.eventually(function() return (D.readfile(out) or ""):match("fp %x+") end, 10),
      "the first session did not start TLS")
    install(dir, "new")
    local from = #d:log() + 1
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("event=reload_tls ", 5, from), "the master did not reload TLS")
    assert.is_truthy(D.eventually(function() return d:count_log("event=reloaded") >= 2 end, 5),
      "both workers reloaded")
    for _ = 1, 4 do assert.equal(new, served(d)) end   -- whichever worker accepts
    D.sh("touch " .. waitfile)
    assert.equal("exited", (D.wait_pid(pid, 10)))
    local probe = D.readfile(out)
    assert.equal(old, probe:match("fp (%x+)"), "the first session saw the old certificate")
    assert.is_truthy(probe:match("noop 250"), "the old session still works: " .. probe)
  end)

  it("a worker forked after the reload (a crash) serves the new certificate", function()
    local d, dir, _, new = setup()
    install(dir, "new")
    local from = #d:log() + 1
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=reload_tls ", 5, from))
    local before = d:count_log("event=worker_started")
    for _, pid in ipairs(d:worker_pids()) do t.kill(pid, "KILL") end
    assert.is_truthy(D.eventually(function() return d:count_log("event=worker_started") >= before + 2 end, 10))
    assert.is_truthy(D.eventually(function() return d:count_log("event=worker_start index") >= 4 end, 5))
    assert.equal(new, served(d))
  end)

  it("a broken new key keeps the running certificate and logs reload_tls_failed with the file names", function()
    local d, dir, old = setup()
    D.sh(("printf 'not a key\\n' > %s/key.tmp && mv %s/key.tmp %s/key.pem"):format(dir, dir, dir))
    D.sh(("cp %s/new.crt %s/cert.pem"):format(dir, dir))
    local from = #d:log() + 1
    d:signal("HUP")
    local line = d:wait_log("(event=reload_tls_failed[^\n]*)", 5, from)
    assert.is_truthy(line, "no reload_tls_failed")
    assert.is_truthy(line:find(dir .. "/key.pem", 1, true), "names the key file: " .. line)
    assert.is_truthy(line:find("error=", 1, true), line)
    assert.is_truthy(d:wait_log("event=reloaded", 5, from))
    assert.equal(old, served(d))
    -- fixed again: the next SIGHUP takes it
    install(dir, "new")
    from = #d:log() + 1
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=reload_tls ", 5, from))
  end)
end)

-- The admin API (admin = { cert, key }, docs/admin-api.md): SIGHUP reloads
-- its certificate too; new connections get the new one on the same port,
-- a connection opened before keeps the old one until it ends.

local function admin_served(d)
  local out = D.sh(("python3 %s https %d"):format(PROBE, d.ports.admin))
  return (out:match("fp (%x+)"))
end

-- Puts NAME's files where the admin API reads them (renamed in, as certbot does).
local function install_admin(dir, name)
  D.sh(("cp %s/%s.crt %s/a.tmp && mv %s/a.tmp %s/admin-cert.pem"):format(dir, name, dir, dir, dir))
  D.sh(("cp %s/%s.key %s/a.tmp && mv %s/a.tmp %s/admin-key.pem"):format(dir, name, dir, dir, dir))
end

local function setup_admin()
  local dir = D.scratch_dir("reload-admin-tls")
  local old = make_cert(dir, "old", "old.admin.example")
  local new = make_cert(dir, "new", "new.admin.example")
  install_admin(dir, "old")
  local d = D.start_for_test{ config_extra = ("admin = { listen = '127.0.0.1:0', cert = '%s/admin-cert.pem', "
    .. "key = '%s/admin-key.pem' },"):format(dir, dir) }
  return d, dir, old, new
end

describe("SIGHUP reloads the admin API's certificate", function()
  after_each(cleanup.run)

  it("serves the new certificate to new connections on the same port; a connection opened before keeps working", function()
    local d, dir, old, new = setup_admin()
    local port = d.ports.admin
    assert.equal(old, admin_served(d))
    local waitfile, out = dir .. "/go", dir .. "/probe.out"
    local pid = assert(t.spawn({ "python3", PROBE, "https", tostring(port), waitfile }, out))
    cleanup.defer(function() D.stop_pid(pid) end)
    assert.is_truthy(D.eventually(function() return (D.readfile(out) or ""):match("fp %x+") end, 10),
      "the first connection did not start TLS")
    install_admin(dir, "new")
    local from = #d:log() + 1
    assert.is_truthy(d:signal("HUP"))
    assert.is_truthy(d:wait_log("event=reload_admin_tls ", 5, from), "the master did not reload it")
    assert.is_truthy(d:wait_log("event=admin_tls_swapped ", 5, from), "the admin process did not swap it")
    for _ = 1, 3 do assert.equal(new, admin_served(d)) end
    assert.equal(0, d:count_log("event=reload_admin_kept"))
    D.sh("touch " .. waitfile)
    assert.equal("exited", (D.wait_pid(pid, 10)))
    local probe = D.readfile(out)
    assert.equal(old, probe:match("fp (%x+)"), "the first connection saw the old certificate")
    assert.equal("401", probe:match("status (%S+)"), "the old connection still answers: " .. probe)
    -- its last connection gone, the replaced daemon stops; the socket stays
    assert.is_truthy(d:wait_log("event=admin_tls_drained ", 5, from), "the old daemon did not stop")
    assert.equal(new, admin_served(d))
    assert.equal(port, d:read_ports(from).admin or port, "the port did not move")
    assert.equal(0, d:count_log("event=admin_tls_drain_cut"))
  end)

  it("a broken new key keeps the running certificate and logs reload_tls_failed name=admin; the next SIGHUP takes a good one", function()
    local d, dir, old, new = setup_admin()
    D.sh(("cp %s/new.crt %s/admin-cert.pem"):format(dir, dir))
    D.sh(("printf 'not a key\\n' > %s/a.tmp && mv %s/a.tmp %s/admin-key.pem"):format(dir, dir, dir))
    local from = #d:log() + 1
    d:signal("HUP")
    local line = d:wait_event("reload_tls_failed", { "name=admin", dir .. "/admin-key.pem", "error=" }, true)
    assert.is_truthy(line, "no reload_tls_failed name=admin: " .. d:log():sub(from))
    assert.is_truthy(d:wait_log("event=reloaded", 5, from))
    assert.equal(old, admin_served(d))
    install_admin(dir, "new")
    from = #d:log() + 1
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=admin_tls_swapped ", 5, from))
    assert.equal(new, admin_served(d))
  end)

  it("an admin process forked after the reload (a crash) serves the new certificate", function()
    local d, dir, _, new = setup_admin()
    install_admin(dir, "new")
    local from = #d:log() + 1
    d:signal("HUP")
    assert.is_truthy(d:wait_log("event=admin_tls_swapped ", 5, from))
    local pid = tonumber(d:log():match("event=admin_started pid=(%d+)"))
    t.kill(pid, "KILL")
    assert.is_truthy(d:wait_log("event=admin_started pid=%d+", 10, from))
    assert.is_truthy(D.eventually(function() return admin_served(d) == new end, 10))
  end)
end)

-- Privileges and secrets: root never runs the configuration, opens the log
-- only where the unprivileged account cannot plant a link, and keeps the
-- TLS key to itself. These specs need root (CI runs as root); as another
-- user they are reported as skipped, with the reason.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local t = D.t

local ROOT = t.getuid() == 0

-- A temp dir laid out like D.start's, with a config we can adjust first.
local function prepared(o)
  local dir = D.scratch_dir("priv")
  D.sh("mkdir -p " .. dir .. "/queue " .. dir .. "/maildirs && chown -R indimail: "
    .. dir .. "/queue " .. dir .. "/maildirs")
  local config = dir .. "/indimail.lua"
  D.writefile(config, D.make_config(dir, o or {}))
  return dir, config
end

-- Runs indimaild on config until it exits (bounded): how, code, stderr.
local function run_until_exit(dir, config, seconds)
  local pid = t.spawn({ D.bin .. "/indimaild", "-c", config }, dir .. "/run.err")
  local how, code = D.wait_pid(pid, seconds or 10)
  if how == "running" then D.stop_pid(pid) end
  return how, code, (D.readfile(dir .. "/run.err") or "") .. (D.readfile(dir .. "/indimail.log") or "")
end

describe("privileges", function()
  after_each(cleanup.run)

  if not ROOT then
    pending("needs root: indimaild only drops privileges when started as root")
    return
  end

  it("never evaluates the configuration as root: a root-only file is unreadable to it", function()
    local dir = D.scratch_dir("secret")
    local secret = dir .. "/root-only"
    D.writefile(secret, "not for the configuration\n")
    D.sh("chmod 600 " .. secret)
    local d = D.start_for_test{ policies = ([[
      local f = io.open(%q, "r")
      if f then error("the configuration was evaluated as root") end
    ]]):format(secret) }
    assert.is_truthy(d:wait_log("event=privileges_dropped user=indimail"))
    -- and `indimaild -t` as root does the same
    local out, rc = D.sh(D.bin .. "/indimaild -t -c " .. d.config)
    assert.equal(0, rc, out)
  end)

  it("runs the workers and the queue manager as the account, and the master too once started", function()
    local d = D.start_for_test()
    local uid = tonumber(D.sh("id -u indimail"):match("%d+"))
    local pids = { d.pid, table.unpack(d:worker_pids()) }
    pids[#pids + 1] = tonumber(d:wait_log("event=qmgr_started pid=(%d+)"))
    for _, pid in ipairs(pids) do
      local status = D.readfile("/proc/" .. pid .. "/status") or ""
      assert.equal(uid, tonumber(status:match("Uid:%s+(%d+)")), "pid " .. pid)
    end
  end)

  it("refuses to open its log in a folder the account can write to", function()
    local dir, config = prepared()
    D.sh("mkdir " .. dir .. "/logs && chown indimail " .. dir .. "/logs")
    local conf = D.readfile(config):gsub("log = { file = [^,]+,", "log = { file = '" .. dir .. "/logs/x.log',")
    D.writefile(config, conf)
    local how, code, err = run_until_exit(dir, config)
    assert.equal("exited", how)
    assert.equal(1, code)
    assert.matches("log folder [^\n]*logs must exist, belong to root", err)
  end)

  it("does not follow a symlink planted where the log goes", function()
    local dir, config = prepared()
    local target = dir .. "/target"
    D.writefile(target, "root's file\n")
    D.sh("chmod 600 " .. target .. " && ln -s " .. target .. " " .. dir .. "/indimail.log")
    local how, code, err = run_until_exit(dir, config)
    assert.equal("exited", how)
    assert.equal(1, code)
    assert.matches("cannot open log file", err)
    assert.equal("root's file\n", D.readfile(target))
  end)
end)

describe("make run's runtime tree (tools/setup-runtime)", function()
  after_each(cleanup.run)

  if not ROOT then
    pending("needs root: the ownership it sets is root's and the account's")
    return
  end

  it("keeps the key and the log folder root's, and gives the spool and mailboxes to the account", function()
    local dir = D.scratch_dir("runtime")
    local out, rc = D.sh("cd " .. dir .. " && " .. D.root .. "/tools/setup-runtime")
    assert.equal(0, rc, out)
    local function owner_mode(p)
      local o = D.sh("stat -c '%U %a' " .. dir .. "/" .. p):gsub("%s+$", "")
      return o
    end
    assert.equal("root 600", owner_mode("var/tls/key.pem"))
    assert.equal("root 700", owner_mode("var/tls"))
    assert.equal("root 755", owner_mode("var/log"))
    assert.matches("^indimail ", owner_mode("queue"))
    assert.matches("^indimail ", owner_mode("var/maildirs"))
    -- the SQLite directory is the account's; the sample passwords root's
    assert.matches("^indimail ", owner_mode("var/db"))
    assert.equal("indimail 600", owner_mode("var/db/directory.sqlite"))
    assert.equal("root 600", owner_mode("var/passwords"))
  end)

  it("lets the account open the directory by a relative name inside folders it may not search", function()
    -- SQLite would make the name absolute, and /tmp/X (0700, root's) would
    -- stop the account on the way: dirdb_sqlite.c keeps it relative.
    local top = D.scratch_dir("private")
    D.sh("chmod 700 " .. top .. " && mkdir " .. top .. "/run")
    local cli = D.bin .. "/indimail --db directory.sqlite "
    local out, rc = D.sh("cd " .. top .. "/run && " .. cli .. "domain add example.test")
    assert.equal(0, rc, out)
    D.sh("chown -R indimail: " .. top .. "/run")
    out, rc = D.sh("cd " .. top .. "/run && setpriv --reuid=indimail --regid=indimail"
      .. " --clear-groups " .. cli .. "domain list 2>&1")
    assert.equal(0, rc, out)
    assert.matches("^example%.test", out)
  end)
end)

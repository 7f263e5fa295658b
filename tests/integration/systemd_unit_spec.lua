-- systemd (issue 13, item 3): the unit etc/systemd/indimail.service as
-- `make install` lays it out passes `systemd-analyze verify` without a
-- warning (no systemd needs to run: it only reads the unit), and says what
-- the process model needs; and the master tells $NOTIFY_SOCKET READY=1,
-- RELOADING=1 ... READY=1 on SIGHUP and STOPPING=1 on SIGTERM, as
-- Type=notify expects.
local D = require("daemon")
local cleanup = require("cleanup")
local unix = require("socket.unix")

local MAKE = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2"
local UNIT = D.readfile("etc/systemd/indimail.service")

local function unit_value(key)
  return UNIT:match("\n" .. key .. "=([^\n]*)")
end

describe("etc/systemd/indimail.service", function()
  it("is Type=notify, reloads with SIGHUP and lets the master drain (KillMode=mixed)", function()
    assert.are.equal("notify", unit_value("Type"))
    assert.are.equal("/bin/kill -HUP $MAINPID", unit_value("ExecReload"))
    assert.are.equal("mixed", unit_value("KillMode"))
    assert.are.equal("/usr/sbin/indimaild -t -c /etc/indimail/indimail.lua", unit_value("ExecStartPre"))
  end)

  it("is hardened, with only the capabilities the root part of the master uses", function()
    assert.are.equal("strict", unit_value("ProtectSystem"))
    assert.are.equal("/var/spool/indimail /var/lib/indimail /var/log/indimail", unit_value("ReadWritePaths"))
    assert.are.equal("true", unit_value("PrivateTmp"))
    assert.are.equal("true", unit_value("NoNewPrivileges"))
    assert.are.equal("CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID", unit_value("CapabilityBoundingSet"))
  end)

  it("passes systemd-analyze verify as installed", function()
    local dest = D.scratch_dir("unit")
    local out, rc = D.sh(("%s install DESTDIR=%s PREFIX=/usr"):format(MAKE, dest))
    assert.are.equal(0, rc, out)
    -- ExecStart= must name an executable: the unit `make install
    -- SBINDIR=$dest/usr/sbin` would write, the installed binaries in it.
    -- --man=no: the man pages of Documentation= are not installed here.
    local unit = dest .. "/indimail.service"
    out, rc = D.sh(("sed 's|/usr/sbin/|%s/usr/sbin/|g' %s/lib/systemd/system/indimail.service >%s")
      :format(dest, dest, unit))
    assert.are.equal(0, rc, out)
    out, rc = D.sh("systemd-analyze verify --man=no " .. unit)
    assert.are.equal(0, rc, out)
    assert.are.equal("", out)
  end)
end)

describe("sd_notify", function()
  after_each(cleanup.run)

  -- A datagram socket standing for systemd's; returns it and its path.
  local function notify_socket()
    local dir = D.scratch_dir("notify")
    local path = dir .. "/notify.sock"
    local s = assert(unix.dgram())
    assert(s:bind(path))
    D.sh("chmod 666 " .. path)	-- the master sends after dropping privileges
    s:settimeout(0.1)
    cleanup.defer(function() s:close() end)
    return s, path
  end

  -- Reads datagrams until one holds every pattern (bounded: 100 x 0.1 s).
  local function expect(s, patterns)
    local seen = {}
    for _ = 1, 100 do
      local msg = s:receive()
      if msg then
        seen[#seen + 1] = msg
        local all = true
        for _, p in ipairs(patterns) do all = all and msg:find(p) ~= nil end
        if all then return msg end
      end
    end
    error("no notification with " .. table.concat(patterns, ", ") .. "; got:\n"
      .. table.concat(seen, "\n--\n"))
  end

  it("says READY=1 when serving, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM", function()
    local s, path = notify_socket()
    local d = D.start_for_test{ env = { NOTIFY_SOCKET = path } }
    local ready = expect(s, { "READY=1", "STATUS=running: %d+ listeners, %d+ workers" })
    assert.is_nil(ready:find("RELOADING"))
    assert.is_truthy(d:signal("HUP"))
    local reloading = expect(s, { "RELOADING=1", "MONOTONIC_USEC=%d+" })
    assert.is_nil(reloading:find("READY=1"))
    expect(s, { "READY=1", "STATUS=running; configuration reloaded" })
    assert.is_truthy(d:signal("TERM"))
    expect(s, { "STOPPING=1" })
  end)
end)

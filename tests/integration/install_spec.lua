-- `make install DESTDIR=... PREFIX=/usr` (issue 13, item 1): the FHS
-- layout, no path of the build tree in an installed binary, `indimaild -V`,
-- and the installed indimaild accepting the installed production config.
-- For that check the config's absolute paths (/etc/indimail, /var/...,
-- and the lua_dir it leaves to the compiled-in default) are moved under
-- DESTDIR in a copy, as `make install` with those folders would have laid
-- it out: no mount, no root needed (a mount namespace cannot be made
-- private inside a chroot such as a fresh CI root), nothing outside
-- DESTDIR touched.
local D = require("daemon")

-- The Makefile's own variables must not leak in (make test SAN=1 exports
-- SAN through MAKEFLAGS): the spec installs what a user's `make install` does.
local MAKE = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2"

local dest
local install_out, install_rc

-- The installed config, its absolute paths moved under dest.
local function config_under_dest()
  local text = D.readfile(dest .. "/etc/indimail/indimail.lua")
  local n
  text, n = text:gsub('%-%- lua_dir = "/usr/share/indimail/lua"',
    ('lua_dir = "%s/usr/share/indimail/lua"'):format(dest))
  assert(n == 1, "the production config no longer names lua_dir in a comment")
  text = text:gsub('"/etc/indimail"', ('"%s/etc/indimail"'):format(dest))
  text = text:gsub('"/var/', ('"%s/var/'):format(dest))
  local path = dest .. "/etc/indimail/indimail.dest.lua"
  D.writefile(path, text)
  return path
end

describe("make install", function()
  setup(function()
    dest = D.mktemp("install")
    install_out, install_rc = D.sh(("%s install DESTDIR=%s PREFIX=/usr"):format(MAKE, dest))
  end)

  teardown(function() D.rmtemp(dest) end)

  it("succeeds", function()
    assert.are.equal(0, install_rc, install_out)
  end)

  it("lays out the FHS paths", function()
    for _, f in ipairs({ "usr/sbin/indimaild", "usr/sbin/sendmail", "usr/bin/indimail" }) do
      local _, rc = D.sh(("test -x %s/%s"):format(dest, f))
      assert.are.equal(0, rc, f .. " is not an executable")
    end
    for _, l in ipairs({ "usr/bin/mailq", "usr/bin/newaliases", "usr/lib/sendmail" }) do
      assert.are.equal("../sbin/sendmail", (D.sh(("readlink %s/%s"):format(dest, l)):gsub("%s+$", "")), l)
    end
    for _, f in ipairs({ "usr/share/indimail/lua/policies/relay.lua",
        "usr/share/indimail/lua/stdlib/address.lua", "etc/indimail/indimail.lua",
        "etc/indimail/policies.lua", "etc/indimail/control/badhelo",
        "lib/systemd/system/indimail.service", "usr/share/man/man8/indimaild.8",
        "usr/share/man/man8/indimail.8", "usr/share/man/man5/indimail.lua.5",
        "usr/share/man/man1/sendmail.1", "usr/share/man/man7/indimail-policies.7" }) do
      assert.is_not_nil(D.readfile(dest .. "/" .. f), f .. " is missing")
    end
    for _, d in ipairs({ "var/spool/indimail", "var/lib/indimail", "var/log/indimail" }) do
      local _, rc = D.sh(("test -d %s/%s"):format(dest, d))
      assert.are.equal(0, rc, d .. " is missing")
    end
  end)

  it("installs the production sample as /etc/indimail/indimail.lua", function()
    assert.are.equal(D.readfile("etc/indimail.production.lua"),
      D.readfile(dest .. "/etc/indimail/indimail.lua"))
  end)

  it("leaves no path of the build tree in an installed binary", function()
    for _, f in ipairs({ "usr/sbin/indimaild", "usr/sbin/sendmail", "usr/bin/indimail" }) do
      local out, rc = D.sh(("grep -c -a -F %q %s/%s"):format(D.root, dest, f))
      assert.are.equal(1, rc, ("%s holds %s %s times"):format(f, D.root, out))
    end
  end)

  it("has indimaild -V print the version, the installed paths and the libraries", function()
    local out, rc = D.sh(dest .. "/usr/sbin/indimaild -V")
    assert.are.equal(0, rc, out)
    local version = D.readfile("VERSION"):gsub("%s+$", "")
    assert.truthy(out:find("indimaild " .. version, 1, true), out)
    assert.truthy(out:find("config: /etc/indimail/indimail.lua", 1, true), out)
    assert.truthy(out:find("lua_dir: /usr/share/indimail/lua", 1, true), out)
    assert.truthy(out:find("submit_socket: /var/spool/indimail/public/submit.sock", 1, true), out)
    for _, lib in ipairs({ "libuv", "openssl", "lua", "sqlite", "mariadb_client",
        "libspf2", "opendkim", "gmime", "libsystemd" }) do
      assert.truthy(out:find("\n" .. lib .. ": %S"), lib .. " missing in\n" .. out)
    end
    out = D.sh(dest .. "/usr/bin/indimail -V")
    assert.are.equal("indimail " .. version .. "\n", out)
  end)

  it("builds the package from the Makefile's DEB_BUILD (debian/control Build-Depends)", function()
    local want = D.sh(MAKE .. " --no-print-directory --eval='print-deb-build: ; @echo $(DEB_BUILD)' print-deb-build")
    local control = D.readfile("debian/control")
    local field = control:match("\nBuild%-Depends:(.-)\n%S")
    local have = {}
    for name in field:gmatch("([%w][%w%.%+%-]*)") do have[name] = true end
    for name in want:gmatch("%S+") do
      assert.is_true(have[name] ~= nil, name .. " of DEB_BUILD is not in Build-Depends")
    end
  end)

  it("has the installed indimaild -t accept the installed production config", function()
    -- what the package's postinst makes: a self-signed pair in /etc/indimail/tls
    local tls = dest .. "/etc/indimail/tls"
    D.sh(("mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
      .. "-subj /CN=mail.example.com -keyout %s/key.pem -out %s/cert.pem"):format(tls, tls, tls))
    local config = config_under_dest()
    local out, rc = D.sh(("%s/usr/sbin/indimaild -t -c %s"):format(dest, config))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find(config .. ": configuration OK (3 listeners)", 1, true), out)
  end)
end)

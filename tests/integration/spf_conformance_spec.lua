-- The RFC 7208 test suite (openspf.org, as python3-spf ships it) through
-- spf_check, the function the daemon's thread-pool jobs run (loaded here
-- as the indimail_spf module, so each case can give its own client
-- address). tests/helpers/spf_zone_server.py serves each scenario's zone
-- data over real DNS on 127.0.0.1; the spec switches scenarios through its
-- control file. It asserts the pass count we reach and prints every case
-- we differ on; docs/policies/spf.md explains each one.
package.path = "tests/helpers/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local D = require("daemon")
local cleanup = require("cleanup")
local dnsmasq = require("dnsmasq")
local spf = require("indimail_spf")
local t = D.t

local SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
local MIN_PASS = 194

local function start_zone_server(dir)
  local port = D.free_udp_port()
  local files = { control = dir .. "/scenario", cases = dir .. "/cases.lua" }
  D.writefile(files.control, "0")
  local pid = assert(t.spawn({ "/usr/bin/python3", "tests/helpers/spf_zone_server.py",
    SUITE, tostring(port), files.control, files.cases }, dir .. "/zone.log"))
  cleanup.defer(function() D.stop_pid(pid) end)
  assert(dnsmasq.answers(port, 10, pid), D.readfile(dir .. "/zone.log"))
  return port, files
end

local function accepted(case, result)
  for _, r in ipairs(case.result) do
    if r == result then return true end
  end
  return false
end

describe("SPF conformance (RFC 7208 test suite)", function()
  after_each(cleanup.run)

  it(("passes at least %d cases and lists the others"):format(MIN_PASS), function()
    local dir = D.scratch_dir("spf")
    local port, files = start_zone_server(dir)
    local cases = dofile(files.cases)
    local pass, differ = 0, {}
    for _, c in ipairs(cases) do
      D.writefile(files.control, tostring(c.scenario))
      local r, info = spf.check{ ip = c.host, helo = c.helo, sender = c.mailfrom,
        servers = "127.0.0.1:" .. port, timeout = 2, dns_timeout = 0.3,
        receiver = "receiver.test" }
      if accepted(c, r) then
        pass = pass + 1
      else
        differ[#differ + 1] = ("  %s: %s, expected %s (%s)"):format(c.id, r,
          table.concat(c.result, " or "), info.comment or "")
      end
    end
    print(("\nRFC 7208 suite: %d of %d cases pass; differing:\n%s"):format(pass, #cases,
      table.concat(differ, "\n")))
    assert.is_true(pass >= MIN_PASS, pass .. " < " .. MIN_PASS)
  end)
end)

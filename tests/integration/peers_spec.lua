-- Peers that try to stall or exhaust a worker: a client that never reads
-- its replies, junk commands, DATA that never ends, address harvesting,
-- slow drips that used to re-arm every timer, HTTP on the SMTP port, and
-- a header section without its blank line.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local socket = require("socket")
local t = D.t

-- Resident memory (KiB) of a process, from /proc.
local function rss_kib(pid)
  local status = D.readfile("/proc/" .. pid .. "/status") or ""
  return tonumber(status:match("VmRSS:%s+(%d+)")) or 0
end

-- CPU seconds (user + system) a process has used so far.
local function cpu_seconds(pid)
  local stat = D.readfile("/proc/" .. pid .. "/stat") or ""
  local fields = {}
  for f in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
  return ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / 100
end

-- Reads n replies, each with a bounded wait; returns their codes.
local function codes(c, n, timeout)
  c.s:settimeout(timeout or 5)
  local out = {}
  for _ = 1, n do
    local code = c:reply()
    if not code then break end
    out[#out + 1] = code
  end
  return out
end

local function count(list, code)
  local n = 0
  for _, v in ipairs(list) do if v == code then n = n + 1 end end
  return n
end

describe("a client that sends HTTP to the SMTP port", function()
  after_each(cleanup.run)

  for _, line in ipairs({ "GET / HTTP/1.1", "POST /form HTTP/1.1", "CONNECT mx.example:25 HTTP/1.1" }) do
    it("is dropped at once after '" .. line .. "', and logged", function()
      local d = D.start_for_test()
      local c = d:connect()
      assert.equal(220, (c:reply()))
      c:send(line .. "\r\nHost: x\r\n\r\n")
      local code, text = c:reply()
      assert.equal(221, code, text)
      assert.matches("^221 2%.7%.0 ", text)
      assert.is_true(c:closed_by_server(3))
      assert.is_truthy(d:wait_log("event=not_smtp [^\n]*line=\"" .. line:match("^%S+"), 3))
    end)
  end
end)

describe("a client that never reads its replies", function()
  after_each(cleanup.run)

  it("cannot make the worker buffer them: sending stalls and the worker stays small", function()
    local d = D.start_for_test{ limits = "junk_commands = 100000, errors = 1000" }
    local pid = d:worker_pids()[1]
    local c = d:connect()
    assert.equal(220, (c:reply()))
    c.s:setoption("tcp-nodelay", true)
    local before = rss_kib(pid)
    -- up to 16 MiB of HELP, sent without ever reading: each is 13 times as
    -- many bytes of reply, so an unbounded server would need ~200 MiB.
    local chunk = ("HELP\r\n"):rep(10000)
    c.s:settimeout(0.5)
    local sent, deadline = 0, t.now() + 20
    while sent < 16 * 1024 * 1024 and t.now() < deadline do
      local n, err, partial = c.s:send(chunk)
      sent = sent + (n or partial or 0)
      if err == "timeout" then break end      -- the server stopped reading
    end
    t.sleep(0.5)
    local grown = rss_kib(pid) - before
    assert.is_true(sent < 16 * 1024 * 1024, "the server read all " .. sent .. " bytes")
    assert.is_true(grown < 32 * 1024, "the worker grew by " .. grown .. " KiB")
    -- another client on the same worker is served normally meanwhile
    local other = d:session()
    assert.equal(250, (other:cmd("NOOP")))
  end)
end)

describe("junk commands (limits.junk_commands = 100, errors = 10)", function()
  after_each(cleanup.run)

  it("count as errors past the limit: 110 NOOPs in a row end with 421 4.7.0", function()
    local d = D.start_for_test()
    local c = d:session()
    c:send(("NOOP\r\n"):rep(130))
    local got = codes(c, 131)
    assert.equal(110, count(got, 250))
    assert.equal(421, got[111])
    assert.is_true(c:closed_by_server(3))
  end)

  it("are forgiven once a message is sent", function()
    local d = D.start_for_test()
    local c = d:session()
    c:send(("RSET\r\n"):rep(90))
    assert.equal(90, count(codes(c, 90), 250))
    assert.equal(250, (c:transaction("a@example.test", { "b@example.test" }, "Subject: x\r\n\r\nx\r\n")))
    c:send(("VRFY x\r\n"):rep(90))
    local got = codes(c, 90)
    assert.equal(90, count(got, 252))
    assert.equal(250, (c:cmd("NOOP")))
  end)
end)

describe("the per-worker DATA memory budget (limits.data_memory = 1 MiB)", function()
  after_each(cleanup.run)

  it("answers 451 4.3.1 to a message that would exceed it, and lets the others through", function()
    local d = D.start_for_test{ limits = "data_memory = 1048576" }
    local body = ("x"):rep(998) .. "\r\n"
    local a, b = d:session(), d:session()
    for _, c in ipairs({ a, b }) do
      assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
      assert.equal(250, (c:cmd("RCPT TO:<r@example.test>")))
      assert.equal(354, (c:cmd("DATA")))
    end
    a:send("Subject: a\r\n\r\n" .. body:rep(300))      -- ~300 KB held
    t.sleep(0.3)
    b:send("Subject: b\r\n\r\n" .. body:rep(300) .. ".\r\n")
    local code, text = b:reply()
    assert.equal(451, code, text)
    assert.matches("^451 4%.3%.1 ", text)
    assert.is_truthy(d:wait_log("event=data_memory_exhausted", 3))
    a:send(".\r\n")
    assert.equal(250, (a:reply()))
    assert.equal(1, #d:queue_files())
  end)
end)

describe("address harvesting", function()
  after_each(cleanup.run)

  local users = "users = { 'known@example.test' }"

  it("ends a session after limits.errors refused recipients: 5,000 pipelined RCPTs get at most 10 refusals", function()
    local d = D.start_for_test{ mailboxes = users, limits = "tarpit_after = 100" }
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
    local lines = {}
    for i = 1, 5000 do lines[i] = "RCPT TO:<nobody" .. i .. "@example.test>\r\n" end
    c.s:settimeout(5)
    c:send(table.concat(lines))
    local got = codes(c, 5000, 5)
    assert.equal(10, count(got, 550))
    assert.equal(421, got[#got])
    assert.is_true(#got <= 11)
  end)

  it("holds every reply back longer and longer after limits.tarpit_after refused recipients, "
    .. "without slowing anyone else", function()
    local d = D.start_for_test{ mailboxes = users,
      limits = "tarpit_after = 2, tarpit_delay = 0.4, errors = 50" }
    local c = d:session()
    local other = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
    local waited = {}
    for i = 1, 4 do
      local t0 = t.now()
      assert.equal(550, (c:cmd("RCPT TO:<nobody" .. i .. "@example.test>")))
      waited[i] = t.now() - t0
    end
    -- the 5th is held back 1.2 s; meanwhile the same worker answers others
    local t0 = t.now()
    c:send("RCPT TO:<nobody5@example.test>\r\n")
    local t1 = t.now()
    assert.equal(250, (other:cmd("NOOP")))
    assert.is_true(t.now() - t1 < 0.3, "the other session waited")
    assert.equal(550, (c:reply()))
    waited[5] = t.now() - t0
    assert.is_true(waited[1] < 0.3 and waited[2] < 0.3, table.concat(waited, " "))
    assert.is_true(waited[3] >= 0.35, "3rd: " .. waited[3])
    assert.is_true(waited[4] >= 0.75, "4th: " .. waited[4])
    assert.is_true(waited[5] >= 1.15, "5th: " .. waited[5])
    -- a good recipient is held back too (each reply, not only refusals)
    local t0 = t.now()
    assert.equal(250, (c:cmd("RCPT TO:<known@example.test>")))
    assert.is_true(t.now() - t0 >= 1.15)
  end)
end)

describe("timeouts that bytes do not extend", function()
  after_each(cleanup.run)

  -- Sends s one byte every `every` seconds until the server closes or
  -- `limit` seconds pass; returns the seconds it took the server to close.
  local function drip(c, s, every, limit)
    local t0 = t.now()
    c.s:settimeout(every)
    local i = 1
    while t.now() - t0 < limit do
      local _, err = c.s:send(s:sub(i, i))
      if err then return t.now() - t0 end
      i = i % #s + 1
      local line, rerr = c.s:receive("*l")
      if line and line:match("^421") then return t.now() - t0, line end
      if rerr == "closed" then return t.now() - t0 end
    end
    return nil
  end

  it("closes a command line dripped a byte at a time after timeouts.command", function()
    local d = D.start_for_test{ timeouts = "command = 1, data = 30, tls = 10, hook = 5, drain = 5" }
    local c = d:session()
    local took, line = drip(c, "NOOPNOOPNOOP", 0.2, 6)
    assert.is_truthy(took, "still open after 6 s")
    assert.is_true(took < 2.5, "took " .. took)
    if line then assert.matches("^421 4%.4%.2 ", line) end
  end)

  it("closes a DATA phase dripped a byte at a time after timeouts.data_total", function()
    local d = D.start_for_test{ timeouts = "command = 30, data = 1, data_total = 2, tls = 10, hook = 5, drain = 5" }
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<r@example.test>")))
    assert.equal(354, (c:cmd("DATA")))
    local took = drip(c, "Subject: slow\r\n", 0.2, 8)
    assert.is_truthy(took, "still open after 8 s")
    assert.is_true(took >= 1.5 and took < 3.5, "took " .. tostring(took))
    assert.equal(0, #d:queue_files())
  end)

  it("closes a TLS handshake dripped a byte at a time after timeouts.tls", function()
    local d = D.start_for_test{ timeouts = "command = 30, data = 30, tls = 1, hook = 5, drain = 5" }
    local c = d:session()
    assert.equal(220, (c:cmd("STARTTLS")))
    -- the first bytes of a TLS ClientHello record, slowly
    local took = drip(c, "\22\3\1\2\0\1\0\1\252\3\3" .. ("\0"):rep(32), 0.2, 6)
    assert.is_truthy(took, "still open after 6 s")
    assert.is_true(took < 2.5, "took " .. took)
  end)
end)

describe("a header section that never ends", function()
  after_each(cleanup.run)

  it("is scanned once, not on every read: 20 MB without a blank line costs well under a second of CPU", function()
    local d = D.start_for_test{ limits = "message_size = 30000000" }
    local pid = d:worker_pids()[1]
    local c = d:session()
    assert.equal(250, (c:cmd("MAIL FROM:<s@example.test>")))
    assert.equal(250, (c:cmd("RCPT TO:<r@example.test>")))
    assert.equal(354, (c:cmd("DATA")))
    local cpu0 = cpu_seconds(pid)
    local line = "X-Filler: " .. ("y"):rep(980) .. "\r\n"
    local chunk = line:rep(64)
    for _ = 1, 20 * 1024 * 1024 // #chunk do
      assert.is_truthy(c:send(chunk))
    end
    c:send(".\r\n")
    local code = c:reply()
    assert.equal(250, code)
    local used = cpu_seconds(pid) - cpu0
    print(("\n  header scan: %.2f s of CPU"):format(used))
    assert.is_true(used < 1.0, ("the worker used %.2f s of CPU"):format(used))
  end)
end)

describe("per-IP limits under IPv6 (a network namespace of our own)", function()
  after_each(cleanup.run)

  it("counts every address of one /64 as one client", function()
    local setup = "ip link set lo up"
    for _, a in ipairs({ "fd00::1", "fd00::a", "fd00::b", "fd00:0:0:1::c" }) do
      setup = setup .. " && ip addr add " .. a .. "/64 dev lo nodad"
    end
    local d = D.start_for_test{ netns_setup = setup, address = "fd00::1",
      limits = "connections_per_ip = 1" }
    -- one connection from fd00::a held open, then fd00::b (same /64) and
    -- fd00:0:0:1::c (another /64) try; the greeting tells who got in
    local script = D.scratch_dir("v6") .. "/clients.py"
    D.writefile(script, ([[
import socket
def conn(src):
    s = socket.socket(socket.AF_INET6)
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(('fd00::1', %d))
    return s, s.recv(200).decode()[:3]
a, ga = conn('fd00::a')
b, gb = conn('fd00::b')
c, gc = conn('fd00:0:0:1::c')
print(ga, gb, gc)
]]):format(d.ports.smtp))
    local out, code = d:in_netns("/usr/bin/python3 " .. script)
    assert.equal(0, code, out)
    assert.equal("220 421 220", out:match("%d+ %d+ %d+"))
  end)
end)

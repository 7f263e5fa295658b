-- lua/policies/bodycheck.lua and disclaimer.lua without a daemon
-- (tests/helpers/fake_indimail.lua, the message faked per case): settings,
-- IndiMail's control line format, the order of rules and verdicts, chunk
-- matching, the work of 1,000 rules (counted: searches and bytes), the
-- disclaimer's choice of text and its refusals. Over SMTP: tests/integration/bodycheck_spec.lua and
-- disclaimer_spec.lua.
local F = require("fake_indimail")

local S = { ip = "192.0.2.7" }

local function tx(sender) return { sender = sender or "joe@ok.test", rcpts = { "a@example.test" }, notes = {}, env = {} } end

-- A message: header fields, the text chunks filter_body hands over, parts.
local function msg(headers, chunks, parts)
  local m = F.msg(headers)
  m.added, m.chunk_calls = {}, 0
  function m.add_header(_, n, v) m.added[#m.added + 1] = n .. ": " .. v end
  function m.filter_body(_, fn)
    for _, c in ipairs(chunks or {}) do
      m.chunk_calls = m.chunk_calls + 1
      assert(fn(c, { type = "text/plain", charset = "", index = 1, last = false }) == nil)
    end
    return 0, #(chunks or {})
  end
  function m.parts() return parts or {} end
  function m.append_text(_, t, h) m.appended = { t, h }; return m.append_result or 1, m.append_why end
  return m
end

-- A regex compiler for the fake: Lua patterns stand in for PCRE2 here.
-- I.regex.work counts the searches and the bytes searched (the scan's cost).
local function with_regex(I)
  local work = { finds = 0, bytes = 0 }
  I.regex = { work = work, compile = function(p, flags)
    if p:find("(", 1, true) and not p:find(")", 1, true) then error("bad regex '" .. p .. "': missing )") end
    local ci = flags:find("i", 1, true)
    return { find = function(_, s)
      work.finds, work.bytes = work.finds + 1, work.bytes + #s
      if ci then return s:lower():find(p:lower()) end
      return s:find(p)
    end }
  end }
end

local function bodycheck(settings)
  local I = F.install()
  with_regex(I)
  local P = dofile("lua/policies/bodycheck.lua")
  return P.setup(settings), I, P
end

describe("bodycheck policy", function()
  it("parses IndiMail's control lines: last colons, -header/-body, blackhole", function()
    local _, _, P = bodycheck({ rules = { { pattern = "x" } } })
    assert.are.same({ "^Content-Disposition:.*filename=\".*.doc\"", "Prehistoric documents", "any", false },
      { P.parse_line("^Content-Disposition:.*filename=\".*.doc\":Prehistoric documents") })
    assert.are.same({ "^Subject:.*viagra", "Spam", "header", false },
      { P.parse_line("^Subject:.*viagra:Spam:-header") })
    assert.are.same({ "lottery", "Scam", "body", true }, { P.parse_line("lottery:Scam: -bodyblackhole") })
    assert.are.same({ "nocolon", "nocolon", "any", false }, { P.parse_line("nocolon") })
  end)

  it("rejects with 554 5.7.1 and the reason; logs rule, action, where; notes the verdict", function()
    local H, I = bodycheck({ rules = { { name = "w", where = "body", pattern = "wire money",
      reason = "Fraud" } } })
    local t = tx()
    local v = H.message(S, t, msg({}, { "hello\n", "please wire money\n" }))
    assert.are.same({ action = "reject", text = "Fraud", code = 554, status = "5.7.1" }, v)
    assert.are.same({ event = "bodycheck", rule = "w", action = "reject", where = "body", reason = "Fraud" }, I.logs[1])
    assert.are.same({ rule = "w", action = "reject", reason = "Fraud" }, t.notes.bodycheck)
  end)

  it("stops the body scan at the first verdict; a tag adds X-Bodycheck and the scan goes on", function()
    local H = bodycheck({ quarantine = "q@example.test", rules = {
      { name = "t", where = "header", header = "Subject", match = "wildmat", pattern = "*sale*", action = "tag", reason = "sale" },
      { name = "q", where = "body", match = "pattern", pattern = "^buy now$", action = "quarantine" },
    } })
    local m = msg({ { "Subject", "Big SALE" } }, { "a\n", "buy now\n", "never read\n" })
    local v = H.message(S, tx(), m)
    assert.equal("quarantine", v.action)
    assert.equal("q@example.test", v.address)
    assert.equal(2, m.chunk_calls)
    assert.are.same({}, m.added)             -- a verdict wins: no tag header
    local m2 = msg({ { "Subject", "Big SALE" } }, { "buy now later\n" })
    assert.is_nil(H.message(S, tx(), m2))    -- "^...$": a whole line only
    assert.are.same({ "X-Bodycheck: t/sale" }, m2.added)
  end)

  it("matches attachment file names and header lines without a header name", function()
    local H = bodycheck({ rules = {
      { name = "exe", where = "filename", match = "wildmat", pattern = "*.exe", action = "discard" },
      { name = "xm", where = "header", pattern = "^X.Mailer: .*bulk", flags = "i" },
    } })
    assert.are.same({ action = "discard" }, H.message(S, tx(), msg({}, {}, { { type = "a/b", filename = "Run.EXE" } })))
    assert.equal(554, H.message(S, tx(), msg({ { "X-Mailer", "BULK sender" } })).code)
    assert.is_nil(H.message(S, tx(), msg({ { "X-Mailer", "mutt" } }, { "x\n" }, { { type = "a/b" } })))
  end)

  it("refuses bad settings, naming the rule", function()
    local function err(s) local ok, e = pcall(bodycheck, s); assert.is_false(ok); return e end
    assert.matches("unknown setting rule", err({ rule = {} }))
    assert.matches("no rules", err({}))
    assert.matches("rules%[1%]: action must be", err({ rules = { { pattern = "x", action = "drop" } } }))
    assert.matches("rules%[1%]: a wildmat matches a whole string", err({ rules = { { where = "body", match = "wildmat", pattern = "*x*" } } }))
    assert.matches("rules%[1%]: action quarantine needs", err({ rules = { { pattern = "x", action = "quarantine" } } }))
    assert.matches("rules%[1%]: .*missing", err({ rules = { { pattern = "(x" } } }))
    assert.matches("rules%[1%]: bad pattern", err({ rules = { { match = "pattern", pattern = "[x" } } }))
    assert.matches("rules%[2%]: reason must be", err({ rules = { { pattern = "x" }, { pattern = "y", reason = "a\r\nb" } } }))
    assert.matches("rules%[1%]: unknown rule key patern", err({ rules = { { patern = "x" } } }))
  end)

  it("costs rules x chunks: 1,000 rules over 2 and 20 chunks, each chunk searched once per rule, compiled once", function()
    local rules, compiled = {}, 0
    for i = 1, 1000 do rules[i] = { where = "body", pattern = "word" .. i .. "x" } end
    local H, I = bodycheck({ rules = rules })
    local compile = I.regex.compile
    I.regex.compile = function(...) compiled = compiled + 1; return compile(...) end
    local line = ("lorem ipsum dolor sit amet "):rep(40) .. "\n"
    -- the work of one message of n chunks: searches and bytes searched
    -- (counted, not timed: a test asserts behaviour, make bench measures)
    local function cost(n)
      local chunks = {}
      for i = 1, n do chunks[i] = line:rep(50) end
      local w = I.regex.work
      local finds, bytes = w.finds, w.bytes
      assert.is_nil(H.message(S, tx(), msg({}, chunks)))
      return w.finds - finds, w.bytes - bytes
    end
    local f2, b2 = cost(2)
    local f20, b20 = cost(20)
    assert.equal(0, compiled)
    assert.equal(1000 * 2, f2)
    assert.equal(1000 * 20, f20)
    assert.equal(1000 * 2 * #line * 50, b2)   -- no chunk joined to or searched with another
    assert.equal(10 * b2, b20)
  end)
end)

local function disclaimer(settings)
  return F.policy("disclaimer", settings)
end

describe("disclaimer policy", function()
  local OURS = { relay = true }

  it("chooses the sender's text, then its domain's, then the default; marks the message", function()
    local H, I = disclaimer({ text = "--\nD", html = "<p>D</p>",
      domains = { ["Sales.Example.test"] = { text = "--\nS" } }, senders = { ["CEO@example.test"] = { text = "--\nC" } } })
    local m = msg({})
    H.message(OURS, tx("ceo@example.test"), m)
    assert.are.same({ "--\nC" }, m.appended)
    assert.are.same({ "X-Disclaimer: sender" }, m.added)
    local m2 = msg({})
    H.message(OURS, tx("bob@sales.example.test"), m2)
    assert.are.same({ "--\nS" }, m2.appended)
    local m3 = msg({})
    local t3 = tx("joe@other.test")
    H.message(OURS, t3, m3)
    assert.are.same({ "--\nD", "<p>D</p>" }, m3.appended)
    assert.equal("default", t3.notes.disclaimer)
    assert.are.same({ event = "disclaimer", result = "added", parts = 1, source = "default" }, I.logs[3])
  end)

  it("adds nothing twice, nothing to a DKIM-signed message, nothing to mail from outside", function()
    local H, I = disclaimer({ text = "--\nD" })
    local t = tx()
    t.notes.disclaimer = "default"
    local cases = { { OURS, t, msg({}) }, { OURS, tx(), msg({ { "X-Disclaimer", "default" } }) },
      { OURS, tx(), msg({ { "DKIM-Signature", "v=1; d=x" } }) }, { {}, tx(), msg({}) } }
    for _, c in ipairs(cases) do
      H.message(c[1], c[2], c[3])
      assert.is_nil(c[3].appended)
    end
    assert.are.same({ "added_already", "marker_present", "dkim_signed" },
      { I.logs[1].why, I.logs[2].why, I.logs[3].why })
    assert.equal(3, #I.logs)                -- outside mail: not even a line
  end)

  it("logs why append_text changed nothing (a signed message)", function()
    local H, I = disclaimer({ text = "--\nD", from = "all" })
    local m = msg({})
    m.append_result, m.append_why = 0, "signed"
    H.message({}, tx(), m)
    assert.are.same({ event = "disclaimer", result = "skipped", why = "signed", source = "default" }, I.logs[1])
    assert.are.same({}, m.added)
  end)

  it("refuses bad settings at load time", function()
    local function err(s) local ok, e = pcall(disclaimer, s); assert.is_false(ok); return e end
    assert.matches("unknown setting txt", err({ txt = "x" }))
    assert.matches("no text", err({}))
    assert.matches("printable ASCII", err({ text = "caf\u{e9}" }))
    assert.matches("a line is at most 900", err({ text = ("x"):rep(901) }))
    assert.matches("html needs text", err({ html = "<p>x</p>" }))
    assert.matches("from must be", err({ text = "x", from = "everyone" }))
    assert.matches("domains%[d.test%].text_file: .*No such file", err({ domains = { ["d.test"] = { text_file = "/nonexistent/x" } } }))
  end)
end)

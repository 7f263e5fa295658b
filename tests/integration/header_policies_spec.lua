-- lua/policies/envheaders.lua, logheaders.lua and removeheaders.lua on a
-- real daemon with swaks: a message's X-Spam-Score reaches tx.env (a later
-- message hook reads it, the queued envelope has it), Subject and
-- Message-ID are in one event=logheaders line with the queue id, and the
-- fields named in a removeheaders control file are gone from the queued
-- message. And `indimaild -t` accepts a configuration using all three.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")
local swaks = require("swaks")

-- A control file in a scratch folder the daemon's account can read.
local function control(lines)
  local dir = D.scratch_dir("hdr")
  D.writefile(dir .. "/removeheaders", table.concat(lines, "\n") .. "\n")
  D.sh("chmod 644 " .. dir .. "/removeheaders")
  return dir .. "/removeheaders"
end

local function policies(file)
  return ([[
indimail.policy("envheaders", { headers = { "X-Spam-Score" } })
indimail.policy("logheaders", { headers = { "Subject", "Message-ID" }, max_length = 40 })
indimail.policy("removeheaders", { file = %q })
indimail.hook("message", function(session, tx, msg)
  indimail.log("seen_env", { score = tx.env.X_SPAM_SCORE })
end, "reader")
]]):format(file)
end

local ARGS = "--from joe@example.test --to ann@example.test"
  .. " --header 'Subject: hello\tthere'"
  .. " --add-header 'X-Spam-Score: 5.2'"
  .. " --add-header 'X-Originating-IP: [10.1.2.3]'"
  .. " --add-header 'x-originating-ip: [10.9.9.9]'"
  .. " --add-header 'X-Keep: yes'"

describe("header policies over SMTP", function()
  after_each(cleanup.run)

  it("copies, logs and removes the listed header fields of a message", function()
    local d = D.start_for_test({ policies = policies(control({ "# IndiMail removeheaders", "X-Originating-IP" })) })
    local out, rc, qid = swaks(d, ARGS)
    assert.are.equal(0, rc, out)
    assert.is_truthy(qid, out)
    local env, msg = d:queued(qid)
    assert.matches("\nenv X_SPAM_SCORE=5%.2\n", "\n" .. env)
    assert.is_nil(msg:lower():find("x-originating-ip", 1, true), msg)
    assert.matches("\nX%-Keep: yes\r?\n", msg)
    assert.matches("\nX%-Spam%-Score: 5%.2\r?\n", msg)
    assert.is_truthy(d:wait_log("event=seen_env [^\n]*score=5%.2", 2))
    local line = d:wait_log("event=logheaders [^\n]*", 2)
    assert.is_truthy(line, d:log())
    line = d:log():match("[^\n]*event=logheaders[^\n]*")
    assert.matches(" qid=" .. qid .. " ", line)
    assert.matches(' subject="hello there"', line, 1, true)
    assert.matches(" message%-id=<[^ ]+>", line)
    assert.matches("event=removeheaders [^\n]*qid=" .. qid .. " [^\n]*count=2", d:log())
    assert.matches("event=envheaders [^\n]*vars=X_SPAM_SCORE", d:log())
  end)

  it("passes `indimaild -t` with all three policies", function()
    local dir = D.scratch_dir("hdrt")
    local file = dir .. "/indimail.lua"
    D.writefile(file, 'indimail.config { hostname = "mx.test.example", lua_dir = "lua", listen = { { port = 0 } } }\n'
      .. policies(control({ "X-Originating-IP" })))
    D.sh("chmod 644 " .. file)
    local out, code = D.sh(D.bin .. "/indimaild -t -c " .. file .. " 2>&1")
    assert.are.equal(0, code, out)
    assert.matches("configuration OK", out)
    D.writefile(file, 'indimail.config { hostname = "mx.test.example", lua_dir = "lua", listen = { { port = 0 } } }\n'
      .. 'indimail.policy("envheaders", { headers = { "Route" } })\n')
    out, code = D.sh(D.bin .. "/indimaild -t -c " .. file .. " 2>&1")
    assert.are.equal(1, code, out)
    assert.matches("header 'Route' would set ROUTE", out, 1, true)
  end)
end)

-- swaks: one SMTP transaction by the real swaks client against a daemon,
-- bounded by swaks' own reply timeout and timeout(1). Returns the
-- transcript, its exit code and the queue id of a 250 to the final dot.
--   local swaks = require("swaks")
--   local out, rc, qid = swaks(d, "--from a@x.test --to b@example.test")
local D = require("daemon")

return function(d, args, port)
  local out, rc = D.sh(("timeout 60 swaks --server 127.0.0.1 --port %d --timeout 5"
    .. " --helo client.example.test %s"):format(port or d.ports.smtp, args))
  return out, rc, out:match("<[-~*]+ +250 2%.0%.0 Ok: queued as (%w+)")
end

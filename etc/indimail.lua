-- indimail default configuration: what `make run` starts.
-- Plain Lua. Reloaded on SIGHUP (listeners are bound once, at start).
-- Relative paths are relative to the directory indimaild is started from.
-- Started as root, indimaild evaluates this file as `user` only, never as
-- root (docs/security.md).

indimail.config {
  hostname = "mx.example.test",
  user = "indimail",            -- the account to run as when started as root
  lua_dir = "lua",              -- policies/ and stdlib/ (relative: reachable
                                -- by `user` even inside a private home)
  workers = 0,                  -- 0: one SMTP worker per core

  listen = {
    { name = "smtp",       address = "127.0.0.1", port = 2525, tls = "starttls" },
    { name = "submission", address = "127.0.0.1", port = 5870, tls = "starttls" },
    { name = "smtps",      address = "127.0.0.1", port = 4650, tls = "implicit" },
  },
  tls = { cert = "var/tls/cert.pem", key = "var/tls/key.pem" },

  queue = { path = "queue", count = 2, split = 16 },
  log = { level = "info" },     -- file = "var/log/indimail.log" to log to a file
  -- (also format = "json", syslog = "mail": docs/operations.md "Logs")

  local_domains = { "example.test", "localhost" },
  relay_from = { "127.0.0.0/8", "::1/128" },   -- clients allowed to relay

  -- Virtual domains, users and aliases live in SQLite (docs/directory.md),
  -- managed with bin/indimail (domain|user|alias ...). `make run` creates
  -- the database with postmaster@, user@ and small@example.test (1 MiB
  -- quota) and abuse@ -> postmaster@; their passwords are in
  -- var/passwords (root only). Other addresses of the local domains are
  -- refused at RCPT with 550 5.1.1.
  directory = { backend = "sqlite", path = "var/db/directory.sqlite" },

  -- Mailboxes: <root>/<domain>/<user>/Maildir.
  mailboxes = {
    root = "var/maildirs",
    postmaster = "postmaster@example.test",   -- receives double bounces
  },

  delivery = {
    lifetime = 7 * 86400,             -- then bounce
    retry = { base = 60, max = 7200 },  -- next try after base * attempts^2, capped
    concurrency = { ["local"] = 10, remote = 50, per_domain = 10 },
    -- a destination down (refused, 421, throttling) waits this long for
    -- its probe, doubled by each failed probe (default: retry's base, max)
    -- dead_destination = { backoff = 60, max = 7200 },
    -- messages the queue manager holds whole; the others wait on disk
    -- active_limit = 20000,
    tls = "opportunistic",            -- STARTTLS to MX hosts when offered
    timeouts = { connect = 30, greeting = 300, command = 300, data = 600 },
  },
  -- routes = { ["partner.example"] = "relay.partner.example:2525",
  --            ["slow.example"] = { host = "10.0.0.9", port = 25,
  --                                 timeouts = { greeting = 600 }, retry = { base = 300, max = 3600 } } },

  limits = {
    command_line = 512,            -- RFC 5321 4.5.3.1.4
    text_line = 1000,              -- RFC 5321 4.5.3.1.6, CRLF included
    message_size = 25 * 1024 * 1024,
    recipients = 100,
    connections = 1000,
    connections_per_ip = 20,
    errors = 10,                   -- bad commands before 421
    hook_instructions = 10000000,  -- per hook call
  },
  timeouts = { command = 300, data = 600, tls = 30, hook = 30, drain = 30 },
}

-- The default policy set (etc/policies.lua, docs/policies/default.md):
-- badhelo, badmailfrom, envrules, sender_domain (senders whose domain has
-- no MX/A/AAAA; not for relay clients), relay, ratelimit, badrcptto and
-- accesslist, with the lists in etc/control/. Greylisting is not in it.
dofile("etc/policies.lua")({ domains = { "example.test", "localhost" } })

-- indimail: a production configuration, installed as
-- /etc/indimail/indimail.lua by `make install` and the Debian package.
-- Plain Lua, evaluated by the `indimail` account (never by root) at start
-- and at every reload (systemctl reload indimail: SIGHUP). Check a change
-- with `indimaild -t` before reloading. Every key: docs/lua.md.
--
-- Change DOMAINS and HOSTNAME below, then publish the DNS records of
-- README.md ("Install on a server"): MX, SPF, DKIM, DMARC.

local HOSTNAME = "mail.example.com"   -- the name of this host: its A/AAAA and PTR
local DOMAINS = { "example.com" }     -- the domains we receive mail for
local ETC = "/etc/indimail"           -- this file's folder

indimail.config {
  -- Greeting, EHLO and Received: the host's public name (its PTR).
  hostname = HOSTNAME,
  -- The account the workers and the queue manager run as; the master
  -- binds the ports as root, then drops to it (docs/security.md).
  user = "indimail",
  -- SMTP worker processes; 0: one per core.
  workers = 0,
  -- lua_dir: where lua/policies/ and lua/stdlib/ are; the default is the
  -- installed one (`indimaild -V` prints it: /usr/share/indimail/lua).
  -- lua_dir = "/usr/share/indimail/lua",

  listen = {
    -- Mail from the world: port 25, STARTTLS offered, no AUTH.
    { name = "smtp",       address = "0.0.0.0", port = 25,  tls = "starttls" },
    -- Mail from our users' clients: port 587 (RFC 6409), STARTTLS, AUTH
    -- required (the name "submission" turns auth and require_auth on).
    { name = "submission", address = "0.0.0.0", port = 587, tls = "starttls" },
    -- The same over implicit TLS: port 465 (RFC 8314), AUTH required.
    { name = "smtps",      address = "0.0.0.0", port = 465, tls = "implicit",
      require_auth = true },
    -- IPv6: the same three with address = "::".
  },

  -- Certificate and key (PEM), read by root at start. The package makes a
  -- self-signed pair here; replace it with a real one, e.g. Let's Encrypt's:
  --   cert = "/etc/letsencrypt/live/mail.example.com/fullchain.pem",
  --   key  = "/etc/letsencrypt/live/mail.example.com/privkey.pem",
  tls = { cert = ETC .. "/tls/cert.pem", key = ETC .. "/tls/key.pem" },

  -- The spool: queued messages, their journals, the queue manager's socket
  -- and the local submission socket (public/submit.sock, for sendmail).
  -- count: queues (one writer each); split: hashed subfolders per queue.
  queue = { path = "/var/spool/indimail", count = 2, split = 16 },

  -- One key=value line per event (format = "json": one JSON object per
  -- line; syslog = "mail": also to syslog, ident indimail/<role>). The
  -- folder is root's (root opens the file): rotate with logrotate's rename
  -- and `systemctl reload indimail`, never copytruncate (docs/operations.md).
  log = { file = "/var/log/indimail/indimail.log", level = "info" },
  -- log = { file = "/var/log/indimail/indimail.log", level = "info",
  --         format = "json", syslog = "mail" },

  -- The admin HTTP API and Prometheus /metrics (docs/admin-api.md), HTTPS
  -- with tls.cert/tls.key on loopback; tokens with `indimail admin token add`
  -- (kept hashed in /etc/indimail/admin-tokens). Off unless given:
  -- admin = { listen = "127.0.0.1:8443" },

  -- Mail for these domains is ours (the directory database adds its own).
  local_domains = DOMAINS,
  -- Clients that may relay without AUTH: this host only (sendmail, cron).
  relay_from = { "127.0.0.0/8", "::1/128" },

  -- Domains, users (with their SMTP AUTH passwords) and aliases, in SQLite,
  -- managed with `indimail domain|user|alias ...` (docs/directory.md).
  -- An address of a local domain that is no user or alias: 550 5.1.1.
  directory = { backend = "sqlite", path = "/var/lib/indimail/directory.sqlite" },

  -- Mailboxes: <root>/<domain>/<user>/Maildir, owned by the account.
  mailboxes = {
    root = "/var/lib/indimail/maildirs",
    postmaster = "postmaster@" .. DOMAINS[1],  -- receives double bounces
  },

  delivery = {
    lifetime = 5 * 86400,               -- seconds in the queue, then a bounce
    retry = { base = 60, max = 7200 },  -- next try after base * attempts^2, capped
    -- connections at once: local deliveries, remote ones, per remote domain
    concurrency = { ["local"] = 10, remote = 50, per_domain = 10 },
    tls = "opportunistic",              -- STARTTLS to MX hosts that offer it
    timeouts = { connect = 30, greeting = 300, command = 300, data = 600 },
    -- a destination refusing every connection, answering 421 or throttling
    -- is marked down: its mail waits for one probe after backoff seconds,
    -- doubled up to max (default: the retry base and max above)
    -- dead_destination = { backoff = 60, max = 3600 },
  },

  limits = {
    command_line = 512,                 -- RFC 5321 4.5.3.1.4
    text_line = 1000,                   -- RFC 5321 4.5.3.1.6, CRLF included
    message_size = 50 * 1024 * 1024,    -- bytes: 552 5.3.4 past it
    recipients = 100,                   -- per message: 452 4.5.3 past it
    connections = 1000,                 -- at once, every worker together
    connections_per_ip = 20,            -- at once, per client address
    errors = 10,                        -- bad commands before 421
    hook_instructions = 10000000,       -- Lua instructions per hook call
  },
  -- seconds: per command, per DATA line, TLS handshake, Lua hook, and the
  -- drain at stop (systemd's TimeoutStopSec is above it)
  timeouts = { command = 300, data = 600, tls = 30, hook = 30, drain = 30 },
}

-- The default policy set (docs/policies/default.md): badhelo, badmailfrom,
-- envrules, sender_domain, relay, ratelimit, badrcptto and accesslist, with
-- their lists in /etc/indimail/control/. Greylisting is not in it.
dofile(ETC .. "/policies.lua")({ domains = DOMAINS, control = ETC .. "/control" })

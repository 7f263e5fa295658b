-- The server's TLS profile (docs/smtp.md): by default Mozilla's
-- "intermediate" one — TLS 1.2 with forward-secret AEAD suites only
-- (ECDHE/DHE with AES-GCM or CHACHA20-POLY1305), TLS 1.3 with OpenSSL's
-- suites, the server's preference — on STARTTLS and implicit-TLS listeners.
-- Each listener may set its own tls_ciphers, tls_ciphersuites and
-- tls_min_version. Checked with real handshakes by `openssl s_client`.
package.path = "tests/helpers/?.lua;" .. package.path
local D = require("daemon")
local cleanup = require("cleanup")

-- One handshake with s_client (bounded by timeout(1)), STARTTLS on a
-- plain listener, TLS at once on an implicit one. Returns the negotiated
-- cipher suite (nil when the handshake failed), the protocol, the output.
local function handshake(d, listener, args)
  local port = assert(d.ports[listener], "no listener " .. listener)
  local starttls = listener ~= "smtps" and "-starttls smtp" or ""
  local out = D.sh(("timeout 10 openssl s_client -brief -connect 127.0.0.1:%d %s %s < /dev/null")
    :format(port, starttls, args))
  return out:match("Ciphersuite: (%S+)"), out:match("Protocol version: (%S+)"), out
end

describe("the default TLS profile", function()
  local d
  setup(function() d = D.start() end)
  teardown(function() d:cleanup() end)

  for _, listener in ipairs({ "smtp", "smtps" }) do
    describe("on " .. listener, function()
      it("refuses TLS 1.2 with RSA key exchange and CBC (AES128-SHA)", function()
        local cipher, _, out = handshake(d, listener, "-tls1_2 -cipher AES128-SHA")
        assert.is_nil(cipher, out)
      end)

      it("refuses TLS 1.2 with RSA key exchange and CBC-SHA256 (AES256-SHA256)", function()
        local cipher, _, out = handshake(d, listener, "-tls1_2 -cipher AES256-SHA256")
        assert.is_nil(cipher, out)
      end)

      it("refuses TLS 1.2 with forward secrecy but CBC (ECDHE-RSA-AES128-SHA)", function()
        local cipher, _, out = handshake(d, listener, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA")
        assert.is_nil(cipher, out)
      end)

      it("accepts TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256", function()
        local cipher, proto, out = handshake(d, listener, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256")
        assert.equal("ECDHE-RSA-AES128-GCM-SHA256", cipher, out)
        assert.equal("TLSv1.2", proto)
      end)

      it("accepts TLS 1.2 with ECDHE-RSA-CHACHA20-POLY1305", function()
        local cipher, _, out = handshake(d, listener, "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305")
        assert.equal("ECDHE-RSA-CHACHA20-POLY1305", cipher, out)
      end)

      it("accepts TLS 1.2 with DHE-RSA-AES256-GCM-SHA384 (automatic DH parameters)", function()
        local cipher, _, out = handshake(d, listener, "-tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384")
        assert.equal("DHE-RSA-AES256-GCM-SHA384", cipher, out)
      end)

      it("accepts TLS 1.3", function()
        local cipher, proto, out = handshake(d, listener, "-tls1_3")
        assert.equal("TLSv1.3", proto, out)
        assert.matches("^TLS_", cipher)
      end)
    end)
  end

  it("chooses by its own preference, not the client's order", function()
    local cipher, _, out = handshake(d, "smtp",
      "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256")
    assert.equal("ECDHE-RSA-AES128-GCM-SHA256", cipher, out)
  end)
end)

describe("a listener's own TLS settings", function()
  local d
  setup(function()
    d = D.start{ listen_opts = {
      submission = "tls_min_version = 'TLSv1.3'",
      smtps = "tls_ciphers = 'ECDHE-RSA-AES256-GCM-SHA384', tls_ciphersuites = 'TLS_CHACHA20_POLY1305_SHA256'",
    } }
  end)
  teardown(function() d:cleanup() end)

  it("tls_min_version = 'TLSv1.3' refuses TLS 1.2 on that listener only", function()
    local cipher, _, out = handshake(d, "submission", "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256")
    assert.is_nil(cipher, out)
    local _, proto
    _, proto, out = handshake(d, "submission", "-tls1_3")
    assert.equal("TLSv1.3", proto, out)
    cipher, _, out = handshake(d, "smtp", "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256")
    assert.equal("ECDHE-RSA-AES128-GCM-SHA256", cipher, out)
  end)

  it("tls_ciphers replaces the TLS 1.2 suites", function()
    local cipher, _, out = handshake(d, "smtps", "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256")
    assert.is_nil(cipher, out)
    cipher, _, out = handshake(d, "smtps", "-tls1_2")
    assert.equal("ECDHE-RSA-AES256-GCM-SHA384", cipher, out)
  end)

  it("tls_ciphersuites replaces the TLS 1.3 suites", function()
    local cipher, _, out = handshake(d, "smtps", "-tls1_3")
    assert.equal("TLS_CHACHA20_POLY1305_SHA256", cipher, out)
    cipher, _, out = handshake(d, "smtps", "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384")
    assert.is_nil(cipher, out)
    cipher, _, out = handshake(d, "smtp", "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384")
    assert.equal("TLS_AES_256_GCM_SHA384", cipher, out)   -- the others keep OpenSSL's suites
  end)
end)

describe("TLS settings in the configuration", function()
  after_each(cleanup.run)

  -- `indimaild -t` on a config whose one STARTTLS listener has fields.
  local function check(fields, tls)
    local dir = D.scratch_dir("tls-config")
    local cert, key = D.test_cert()
    local path = dir .. "/bad.lua"
    D.writefile(path, ("indimail.config {\n  listen = { { port = 0, tls = '%s', %s } },\n"
      .. "  tls = { cert = %q, key = %q },\n}\n"):format(tls or "starttls", fields, cert, key))
    return D.sh(D.bin .. "/indimaild -t -c " .. path)
  end

  it("accepts valid settings", function()
    local out, code = check("tls_ciphers = 'ECDHE+AESGCM', tls_ciphersuites = 'TLS_AES_256_GCM_SHA384',"
      .. " tls_min_version = 'TLSv1.2'")
    assert.equal(0, code, out)
    assert.matches("configuration OK", out)
  end)

  it("reports a tls_ciphers string OpenSSL cannot use, with the file and line", function()
    local out, code = check("tls_ciphers = 'NO-SUCH-CIPHER'")
    assert.equal(1, code, out)
    assert.matches("bad%.lua:2:.*listen%[%]%.tls_ciphers: [^\n]*NO%-SUCH%-CIPHER", out)
  end)

  it("reports an unknown name in tls_ciphersuites, even next to a known one", function()
    local out, code = check("tls_ciphersuites = 'TLS_AES_128_GCM_SHA256:TLS_NO_SUCH_SUITE'")
    assert.equal(1, code, out)
    assert.matches("bad%.lua:2:.*listen%[%]%.tls_ciphersuites: [^\n]*TLS_NO_SUCH_SUITE", out)
  end)

  it("reports a tls_min_version other than TLSv1.2 or TLSv1.3", function()
    local out, code = check("tls_min_version = 'TLSv1.1'")
    assert.equal(1, code, out)
    assert.matches("bad%.lua:2:.*listen%[%]%.tls_min_version: must be \"TLSv1%.2\" or \"TLSv1%.3\"", out)
  end)

  it("reports TLS settings on a listener without TLS", function()
    local out, code = check("tls_min_version = 'TLSv1.3'", "none")
    assert.equal(1, code, out)
    assert.matches("bad%.lua:2:.*listen%[%]: [^\n]*TLS settings but tls = \"none\"", out)
  end)
end)

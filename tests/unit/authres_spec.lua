-- src/mail/authres.c through indimail.authres.parse as the daemon has it
-- (src/lua/lua_authres.c, loaded here as indimail_test.authres_parse):
-- RFC 8601 Appendix B's fields, comments and quoting where CFWS may go,
-- the bounds, and malformed fields with the reason and byte of the error.
package.cpath = "build/?.so;" .. package.cpath
local parse = require("indimail_test").authres_parse

local function fails(value, why, id)
  local r, err, got_id = parse(value)
  assert.is_nil(r)
  assert.are.equal(why, err)
  assert.are.equal(id, got_id)
end

describe("indimail.authres.parse: RFC 8601 Appendix B", function()
  it("B.2: reads 'none' and the authres-version", function()
    assert.are.same({ authserv_id = "example.org", version = 1, results = {} },
      parse("example.org 1; none"))
  end)

  it("B.3: one SPF result, the field folded with CRLF", function()
    assert.are.same({ authserv_id = "example.com", results = {
      { method = "spf", result = "pass", props = { ["smtp.mailfrom"] = "example.net" } } } },
      parse("example.com;\r\n          spf=pass smtp.mailfrom=example.net"))
  end)

  it("B.4: several results, a comment after the result; iprev's policy property", function()
    local r = parse("example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;"
      .. "\r\n          spf=pass smtp.mailfrom=example.net")
    assert.are.same({ { method = "auth", result = "pass", props = { ["smtp.auth"] = "sender@example.net" } },
      { method = "spf", result = "pass", props = { ["smtp.mailfrom"] = "example.net" } } }, r.results)
    assert.are.same({ ["policy.iprev"] = "192.0.2.200" },
      parse("example.com; iprev=pass\r\n          policy.iprev=192.0.2.200").results[1].props)
  end)

  it("B.5 and B.6: DKIM results with header.d and header.b", function()
    local r = parse("mail-router.example.net;\r\n          dkim=pass (good signature) header.d=newyork.example.com"
      .. "\r\n                header.b=oINEO8hg;\r\n          dkim=fail (bad signature) header.d=newyork.example.com"
      .. "\r\n                header.b=EToRSuvU")
    assert.are.equal("mail-router.example.net", r.authserv_id)
    assert.are.same({ method = "dkim", result = "fail",
      props = { ["header.d"] = "newyork.example.com", ["header.b"] = "EToRSuvU" } }, r.results[2])
  end)

  it("B.6: a quoted reason, and header.i with only '@domain'", function()
    local r = parse('example.com;\r\n          dkim=pass reason="good signature"\r\n'
      .. "            header.i=@mail-router.example.net;\r\n          dkim=fail reason=\"bad signature\"\r\n"
      .. "            header.i=@newyork.example.com")
    assert.are.same({ method = "dkim", result = "pass", reason = "good signature",
      props = { ["header.i"] = "@mail-router.example.net" } }, r.results[1])
    assert.are.equal("bad signature", r.results[2].reason)
  end)

  it("B.7: comments everywhere CFWS may go, and a method version", function()
    assert.are.same({ authserv_id = "foo.example.net", version = 1, results = {
      { method = "dkim", version = 1, result = "fail", props = { ["policy.expired"] = "1362471462" } } } },
      parse("foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail"
        .. "\r\n      policy (A dot can go here) . (like that) expired"
        .. "\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462"))
  end)
end)

describe("indimail.authres.parse: quoting, case and what we write", function()
  it("unquotes a quoted authserv-id and reason; comments nest and quote", function()
    local r = parse('"mx \\"q\\" id" (a (nested \\) one) here) ; spf = pass reason = "a\\\\b c"')
    assert.are.equal('mx "q" id', r.authserv_id)
    assert.are.equal("a\\b c", r.results[1].reason)
  end)

  it("keeps the id as written, lowers methods, results and property keys", function()
    local r = parse("MX.Example.NET; DKIM=Pass Header.D=Example.COM")
    assert.are.same({ authserv_id = "MX.Example.NET", results = {
      { method = "dkim", result = "pass", props = { ["header.d"] = "Example.COM" } } } }, r)
  end)

  it("keeps a quoted local-part before '@' as written, and takes base64 and IPv6 values", function()
    local p = parse('mx; dkim=pass header.i="joe smith"@example.com header.b=ab/+=cd'
      .. " smtp.remote-ip=2001:db8::1").results[1].props
    assert.are.same({ ["header.i"] = '"joe smith"@example.com', ["header.b"] = "ab/+=cd",
      ["smtp.remote-ip"] = "2001:db8::1" }, p)
  end)

  it("reads the field dkim_verify writes (LF folds), and one ending with a line break", function()
    local r = parse("mx.example.net;\n\tdkim=fail reason=\"bad sig\" header.d=example.org header.s=s2"
      .. " header.b=ab/+=cd;\n\tspf=softfail smtp.mailfrom=example.com\r\n")
    assert.are.equal(2, #r.results)
    assert.are.same({ ["header.d"] = "example.org", ["header.s"] = "s2", ["header.b"] = "ab/+=cd" },
      r.results[1].props)
  end)

  it("keeps the first value of a property given twice", function()
    assert.are.equal("a.example", parse("mx; dkim=pass header.d=a.example header.d=b.example")
      .results[1].props["header.d"])
  end)
end)

describe("indimail.authres.parse: malformed fields", function()
  it("says why and where, and gives the authserv-id when it was read", function()
    fails("", "byte 0: expected the authserv-id (a host name) first")
    fails("mx.example.net", "byte 14: expected ';' and the results (or none) after the authserv-id",
      "mx.example.net")
    fails("mx.example.net; spf=pass smtp.mailfrom=example.com;",
      "byte 51: expected a method (as in dkim=) after ';'", "mx.example.net")
    fails("mx; none; spf=pass", "byte 8: \"none\" must stand alone after the authserv-id", "mx")
    fails("mx; dkim pass", "byte 9: expected '=' after the method", "mx")
    fails("mx; dkim=", "byte 9: expected a result (as in pass) after '='", "mx")
    fails("mx; dkim=pass,x", "byte 13: expected white space, ';' or the end after a result or a property", "mx")
    fails("mx; dkim=pass headerd=x", "byte 21: expected '.' after the property type (as in header.d=)", "mx")
    fails("mx; dkim=pass header.d=", "byte 23: expected a property value after '='", "mx")
    fails("mx; dkim=pass header.d=x reason=y", "byte 31: reason= comes once, before the properties", "mx")
    fails("mx; dkim-=pass", "byte 9: a keyword that ends with '-'", "mx")
    fails("mx; dkim/=pass", "byte 9: expected a method version (digits) after '/'", "mx")
    fails("mx; dkim/1234567890=pass", "byte 18: a version longer than 9 digits", "mx")
  end)

  it("refuses unterminated comments and quotes, bad quoted-pairs and controls", function()
    fails("mx; dkim=pass (good", "byte 19: an unterminated comment", "mx")
    fails('mx; dkim=pass reason="good', "byte 26: an unterminated quoted-string", "mx")
    fails('"mx', "byte 3: an unterminated quoted-string")
    fails("mx; dkim=pass (a\\", "byte 16: a backslash not followed by a character", "mx")
    fails("mx; dkim=pass (a\1b)", "byte 16: a control character in a comment", "mx")
    fails("mx; dkim=pass reason=\"a\0b\"", "byte 23: a control character in a quoted-string", "mx")
  end)

  it("refuses a line break that is not a fold (a smuggled field)", function()
    fails("mx\r\nX-Evil: 1; none", "byte 2: a line break not followed by white space", "mx")
    fails("mx; spf=pass\nX: y", "byte 12: a line break not followed by white space", "mx")
  end)

  it("bounds the field, the results, the properties and each value", function()
    fails("mx; none" .. (" "):rep(16384), "byte 0: a field longer than 16384 bytes")
    fails("mx" .. ("; spf=pass"):rep(17), "byte 162: more than 16 results", "mx")
    fails("mx; spf=pass" .. (" a.b=c"):rep(17), "byte 110: more than 16 properties in one result", "mx")
    fails("mx; spf=pass reason=" .. ("x"):rep(1025), "byte 1044: a value longer than 1024 bytes", "mx")
    fails(("x"):rep(1025) .. "; none", "byte 1024: a value longer than 1024 bytes")
    assert.is_table(parse("mx" .. ("; spf=pass"):rep(16)))
  end)

  it("raises on a value that is not a string", function()
    assert.has_error(function() parse({}) end)
  end)
end)

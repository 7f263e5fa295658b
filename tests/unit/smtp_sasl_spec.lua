-- SMTP AUTH CRAM-MD5 and SCRAM-SHA-256: the client messages as
-- src/smtp/smtp_sasl_parse.c reads them, and the stored secrets and checks
-- of src/lib/sasl_scram.c and sasl_cram.c against the RFCs' own examples
-- (RFC 7677 section 3, RFC 2195 section 2) and Dovecot's CRAM-MD5 scheme.
package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

local function unb64(s) return t.base64_decode(s) end

describe("SCRAM-SHA-256 (RFC 7677 section 3)", function()
  local CFIRST = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
  local SFIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    .. "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
  local CFINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    .. "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
  local SFINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

  it("reads the client-first message", function()
    local f = assert(t.parse_scram_first(CFIRST))
    assert.same({ cbind = "n", gs2 = "n,,", authz = "", user = "user",
                  bare = "n=user,r=rOprNGfwEbeRWgbNEkqO", nonce = "rOprNGfwEbeRWgbNEkqO" }, f)
  end)

  it("reads the client-final message", function()
    local f = assert(t.parse_scram_final(CFINAL))
    assert.equal("biws", f.cbind)
    assert.equal("rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", f.nonce)
    assert.equal("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", f.proof)
    assert.equal(CFINAL:match("^(.*),p="), f.without_proof)
  end)

  it("stores pencil's keys, accepts the RFC's proof and signs exactly the RFC's v=", function()
    local secret = t.scram_make("pencil", unb64("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    assert.equal("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
      .. "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", secret)
    local bare = t.parse_scram_first(CFIRST).bare
    local am = bare .. "," .. SFIRST .. "," .. t.parse_scram_final(CFINAL).without_proof
    local ok, sig = t.scram_check(secret, am, unb64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
    assert.is_true(ok)
    assert.equal(SFINAL, "v=" .. t.base64_encode(sig))
  end)

  it("refuses a tampered proof, another password and another AuthMessage", function()
    local secret = t.scram_make("pencil", unb64("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    local am = "n=user,r=rOprNGfwEbeRWgbNEkqO," .. SFIRST .. "," .. CFINAL:match("^(.*),p=")
    local proof = unb64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    local bad = string.char(proof:byte(1) ~ 1) .. proof:sub(2)
    assert.is_false((t.scram_check(secret, am, bad)))
    assert.is_false((t.scram_check(secret, am .. "x", proof)))
    assert.is_false((t.scram_check(secret, am, proof:sub(2))))
    local other = t.scram_make("pencil2", unb64("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    assert.is_false((t.scram_check(other, am, proof)))
  end)

  it("decodes saslnames and takes y, and an authzid", function()
    local f = assert(t.parse_scram_first("y,a=j=2Co=3De,n=j=2Co=3De,r=abc,ext=1"))
    assert.equal("y", f.cbind)
    assert.equal("j,o=e", f.user)
    assert.equal("j,o=e", f.authz)
    assert.equal("y,a=j=2Co=3De,", f.gs2)
  end)

  it("refuses channel binding, bad gs2 headers, bad names and nonces", function()
    for _, bad in ipairs({ "p=tls-unique,,n=u,r=a", "", "n", "n,", "x,,n=u,r=a", "n,,", "n,,n=u",
                           "n,,n=,r=a", "n,,n=u=,r=a", "n,,n=u=41,r=a", "n,,n=u,r=", "n,,r=a,n=u",
                           "n,,m=x,n=u,r=a", "n,b=x,n=u,r=a", "n,a=,n=u,r=a", "n,,n=u\0v,r=a",
                           "n,,n=u,r=a\tb", "n,,n=" .. ("x"):rep(256) .. ",r=a" }) do
      assert.is_nil(t.parse_scram_first(bad), ("%q"):format(bad))
    end
    local _, why = t.parse_scram_first("p=tls-unique,,n=u,r=a")
    assert.matches("channel binding", why)
  end)

  it("refuses client-final messages without c=, r= or a last p=", function()
    for _, bad in ipairs({ "", "c=biws", "c=biws,r=a", "r=a,c=biws,p=x", "c=biws,r=a,p=",
                           "c=biws,r=a,p=x,e=1", "c=,r=a,p=x", "c=biws,r=,p=x", "c=biws,p=x" }) do
      assert.is_nil(t.parse_scram_final(bad), ("%q"):format(bad))
    end
    local f = assert(t.parse_scram_final("c=eSws,r=a,e=1,p=x"))
    assert.equal("c=eSws,r=a,e=1", f.without_proof)
  end)
end)

describe("CRAM-MD5 (RFC 2195)", function()
  local CHAL = "<1896.697170952@postoffice.reston.mci.net>"

  it("stores Dovecot's {CRAM-MD5} secret (doveadm pw -s CRAM-MD5 -p pencil)", function()
    assert.equal("{CRAM-MD5}7f47ace0e2af8f6cdeb72c03243a8c87834e19104164d6a42de72d243adb4080",
      t.cram_make("pencil"))
  end)

  it("checks the RFC's example answer from the stored secret", function()
    local secret = t.cram_make("tanstaaftanstaaf")
    assert.is_true(t.cram_check(secret, CHAL, "b913a602c7eda7a495b4e6e7334d3890"))
    assert.is_false(t.cram_check(secret, CHAL, "b913a602c7eda7a495b4e6e7334d3891"))
    assert.is_false(t.cram_check(secret, CHAL .. " ", "b913a602c7eda7a495b4e6e7334d3890"))
    assert.is_false(t.cram_check("{CRAM-MD5}zz", CHAL, "b913a602c7eda7a495b4e6e7334d3890"))
    local long = t.cram_make(("k"):rep(100))      -- a key over 64 bytes is hashed first
    assert.matches("^{CRAM%-MD5}%x+$", long)
    assert.equal(74, #long)
  end)

  it("reads \"user digest\" with the digest after the last space", function()
    assert.same({ "tim", "b913a602c7eda7a495b4e6e7334d3890" },
      { t.parse_cram("tim b913a602c7eda7a495b4e6e7334d3890") })
    assert.same({ "a b", ("0"):rep(32) }, { t.parse_cram("a b " .. ("0"):rep(32)) })
    for _, bad in ipairs({ "", "tim", " b913a602c7eda7a495b4e6e7334d3890", "tim b913",
                           "tim B913A602C7EDA7A495B4E6E7334D3890", "tim b913a602c7eda7a495b4e6e7334d38900" }) do
      assert.is_nil(t.parse_cram(bad), ("%q"):format(bad))
    end
  end)
end)

package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- HELO/EHLO arguments and the domain grammar they share with paths:
-- letters, digits and hyphens in labels of at most 63 octets, at most
-- 255 octets in all, or an address literal.

local function code(reply)
	return reply and reply:sub(1, 9)
end

local function label(n, c)
	return (c or "a"):rep(n)
end

describe("HELO/EHLO argument", function()
	it("accepts a domain name", function()
		for _, d in ipairs({ "mail.example.test", "localhost", "MX1.Example.COM",
		    "a", "1", "x-1.y-2.test", "123.example" }) do
			assert.is_true(t.parse_helo(d), d)
		end
	end)

	it("accepts IPv4 and IPv6 address literals", function()
		for _, d in ipairs({ "[192.0.2.1]", "[127.0.0.1]", "[IPv6:::1]",
		    "[IPv6:2001:db8::1]", "[ipv6:fe80::1]",
		    "[IPv6:::ffff:192.0.2.1]" }) do
			assert.is_true(t.parse_helo(d), d)
		end
	end)

	it("rejects an empty argument with the usage reply", function()
		local ok, reply = t.parse_helo("")
		assert.is_nil(ok)
		assert.are.equal("501 5.5.4 Syntax: HELO/EHLO hostname", reply)
	end)

	it("rejects an invalid domain or literal with 501 5.5.4", function()
		for _, d in ipairs({ "bad_domain.test", "-a.test", "a-.test", "a..b",
		    "a.", ".a", "exa mple.test", "a.test ", " a.test", "a\tb",
		    "h\xC3\xA9llo.test", "[1.2.3]", "[IPv6:1.2.3.4]", "[::1]", "[",
		    "[]", "[192.0.2.1", "192.0.2.1]", "[IPv6:]", "[bogus]",
		    label(64) .. ".test", "a@b.test" }) do
			local ok, reply = t.parse_helo(d)
			assert.is_nil(ok, string.format("%q", d))
			assert.are.equal("501 5.5.4", code(reply))
			assert.matches("valid domain", reply)
		end
	end)
end)

describe("domain names", function()
	it("accept letters, digits and inner hyphens", function()
		assert.is_true(t.valid_domain("example.test"))
		assert.is_true(t.valid_domain("EXAMPLE.Test"))
		assert.is_true(t.valid_domain("a-b--c.d0"))
		assert.is_true(t.valid_domain("0.1.2.3"))
	end)

	it("accept a label of 63 octets but not 64", function()
		assert.is_true(t.valid_domain(label(63) .. ".test"))
		assert.is_true(t.valid_domain("x." .. label(63)))
		assert.is_false(t.valid_domain(label(64) .. ".test"))
		assert.is_false(t.valid_domain("x." .. label(64)))
	end)

	it("accept 255 octets in all but not 256", function()
		local d255 = label(63) .. "." .. label(63) .. "." .. label(63) ..
		    "." .. label(63)
		assert.are.equal(255, #d255)
		assert.is_true(t.valid_domain(d255))
		local d256 = label(63) .. "." .. label(63) .. "." .. label(63) ..
		    "." .. label(62) .. ".a"
		assert.are.equal(256, #d256)
		assert.is_false(t.valid_domain(d256))
		assert.is_true(t.valid_domain(d256:sub(3)))
	end)

	it("reject empty names and empty labels", function()
		for _, d in ipairs({ "", ".", "..", "a..b", ".a", "a.", "a.b." }) do
			assert.is_false(t.valid_domain(d), string.format("%q", d))
		end
	end)

	it("reject hyphens at either end of a label", function()
		for _, d in ipairs({ "-a", "a-", "a.-b", "a.b-", "-", "a-.b" }) do
			assert.is_false(t.valid_domain(d), d)
		end
	end)

	it("reject any other byte, including non-ASCII and NUL", function()
		for _, d in ipairs({ "a_b", "a b", "a@b", "a/b", "a:b", "[1.2.3.4]",
		    "caf\xC3\xA9.test", "\xFF", "a\0b", "a\0", "a\r\n" }) do
			assert.is_false(t.valid_domain(d), string.format("%q", d))
		end
	end)
end)

describe("address domain", function()
	it("is the part after the last '@'", function()
		assert.are.equal("b.test", t.addr_domain("a@b.test"))
		assert.are.equal("z.test", t.addr_domain('"x@y"@z.test'))
		assert.are.equal("", t.addr_domain("a@"))
	end)

	it("is nil without an '@'", function()
		assert.is_nil(t.addr_domain("Postmaster"))
		assert.is_nil(t.addr_domain(""))
	end)
end)

package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- MAIL FROM: the reverse-path grammar of RFC 5321 §4.1.2 and the SIZE and
-- BODY parameters. The argument is what follows "MAIL ".

local function code(reply)
	return reply and reply:sub(1, 9)
end

local function ok(arg)
	local m, reply = t.parse_mail(arg)
	assert(m, "expected " .. string.format("%q", arg) ..
	    " to parse, got " .. tostring(reply))
	return m
end

local function rejects(arg, want)
	local m, reply = t.parse_mail(arg)
	assert.is_nil(m, string.format("%q parsed as %q", arg,
	    m and m.path or ""))
	assert.are.equal(want, code(reply), string.format("%q", arg))
	return reply
end

describe("MAIL FROM", function()
	describe("paths", function()
		it("accepts a plain address", function()
			local m = ok("FROM:<user@example.test>")
			assert.are.equal("user@example.test", m.path)
			assert.is_nil(m.size)
			assert.is_nil(m.body)
		end)

		it("accepts the null sender <> as an empty path", function()
			local m = ok("FROM:<>")
			assert.are.equal("", m.path)
		end)

		it("accepts parameters after the null sender", function()
			local m = ok("FROM:<> SIZE=100 BODY=8BITMIME")
			assert.are.equal("", m.path)
			assert.are.equal(100, m.size)
			assert.are.equal("8BITMIME", m.body)
		end)

		it("is case-insensitive in FROM:", function()
			assert.are.equal("a@b.test", ok("from:<a@b.test>").path)
			assert.are.equal("a@b.test", ok("FrOm:<a@b.test>").path)
		end)

		it("accepts blanks after the colon", function()
			assert.are.equal("a@b.test", ok("FROM: <a@b.test>").path)
			assert.are.equal("a@b.test", ok("FROM:    <a@b.test>").path)
		end)

		it("lowercases the domain but preserves the local part", function()
			local m = ok("FROM:<John.Smith@Example.COM>")
			assert.are.equal("John.Smith@example.com", m.path)
		end)

		it("accepts every atext character in the local part", function()
			local lp = "a!#$%&'*+-/=?^_`{|}~z"
			assert.are.equal(lp .. "@x.test", ok("FROM:<" .. lp .. "@x.test>").path)
		end)

		it("accepts a dot-string local part", function()
			assert.are.equal("first.middle.last@x.test",
			    ok("FROM:<first.middle.last@x.test>").path)
		end)

		it("accepts hyphens and digits inside domain labels", function()
			assert.are.equal("a@mail-1.x-y.test",
			    ok("FROM:<a@mail-1.x-y.test>").path)
			assert.are.equal("a@123.test", ok("FROM:<a@123.test>").path)
		end)

		it("accepts a single-label domain", function()
			assert.are.equal("root@localhost", ok("FROM:<root@localhost>").path)
		end)
	end)

	describe("quoted local parts", function()
		it("accepts a quoted local part with a space", function()
			assert.are.equal('"a b"@x.test', ok('FROM:<"a b"@x.test>').path)
		end)

		it("does not end the path at a '>' inside quotes", function()
			assert.are.equal('"a>b"@x.test', ok('FROM:<"a>b"@x.test>').path)
		end)

		it("accepts '@' and ',' and ':' inside quotes", function()
			assert.are.equal('"a@b,c:d"@x.test',
			    ok('FROM:<"a@b,c:d"@x.test>').path)
		end)

		it("accepts a backslash-escaped quote and backslash", function()
			assert.are.equal('"a\\"b\\\\c"@x.test',
			    ok('FROM:<"a\\"b\\\\c"@x.test>').path)
		end)

		it("preserves the case of a quoted local part", function()
			assert.are.equal('"Mixed Case"@x.test',
			    ok('FROM:<"Mixed Case"@X.TEST>').path)
		end)

		it("rejects an unterminated quote with 501 5.1.7", function()
			rejects('FROM:<"ab@x.test>', "501 5.1.7")
		end)

		it("rejects control bytes inside quotes with 501 5.1.7", function()
			rejects('FROM:<"a\tb"@x.test>', "501 5.1.7")
			rejects('FROM:<"a\rb"@x.test>', "501 5.1.7")
			rejects('FROM:<"a\\\nb"@x.test>', "501 5.1.7")
		end)

		it("rejects a quote that does not cover the whole local part", function()
			rejects('FROM:<"a"b@x.test>', "501 5.1.7")
			rejects('FROM:<a"b"@x.test>', "501 5.1.7")
		end)

		it("rejects a quoted local part longer than 64 octets (quotes count)", function()
			local q62 = '"' .. ("q"):rep(62) .. '"'
			local q63 = '"' .. ("q"):rep(63) .. '"'
			assert.are.equal(q62 .. "@x.test", ok("FROM:<" .. q62 .. "@x.test>").path)
			rejects("FROM:<" .. q63 .. "@x.test>", "501 5.1.7")
		end)
	end)

	describe("source routes", function()
		it("drops a source route and keeps the mailbox", function()
			assert.are.equal("u@c.test",
			    ok("FROM:<@a.test,@b.test:u@c.test>").path)
			assert.are.equal("u@c.test", ok("FROM:<@a.test:u@c.test>").path)
		end)

		it("rejects a route that ends without a mailbox", function()
			rejects("FROM:<@a.test:>", "501 5.1.7")
		end)

		it("rejects a route without the ':' separator", function()
			rejects("FROM:<@a.test,@b.test>", "501 5.1.7")
			rejects("FROM:<@a.test>", "501 5.1.7")
		end)

		it("rejects a route hop without '@' after ','", function()
			rejects("FROM:<@a.test,b.test:u@c.test>", "501 5.1.7")
		end)

		it("rejects a route hop with a bad domain", function()
			rejects("FROM:<@a..test:u@c.test>", "501 5.1.7")
			rejects("FROM:<@:u@c.test>", "501 5.1.7")
			rejects("FROM:<@[1.2.3.4]:u@c.test>", "501 5.1.7")
		end)
	end)

	describe("address literals", function()
		it("accepts an IPv4 literal", function()
			assert.are.equal("u@[127.0.0.1]", ok("FROM:<u@[127.0.0.1]>").path)
		end)

		it("accepts an IPv6 literal (the tag is stored lower case)", function()
			assert.are.equal("u@[ipv6:::1]", ok("FROM:<u@[IPv6:::1]>").path)
			assert.are.equal("u@[ipv6:2001:db8::1]",
			    ok("FROM:<u@[IPv6:2001:DB8::1]>").path)
		end)

		it("rejects malformed literals with 501 5.1.7", function()
			for _, lit in ipairs({ "[]", "[1.2.3]", "[256.1.1.1]",
			    "[1.2.3.4.5]", "[IPv6:zz]", "[IPv6:]", "[::1]",
			    "[IPv6:1.2.3.4]", "[1.2.3.4", "[1.2.3.4]x",
			    "[ 1.2.3.4]", "[" .. ("1"):rep(70) .. "]" }) do
				rejects("FROM:<u@" .. lit .. ">", "501 5.1.7")
			end
		end)
	end)

	describe("bad paths", function()
		it("rejects a missing FROM: with 501 5.5.4", function()
			local r = rejects("<a@b.test>", "501 5.5.4")
			assert.are.equal("501 5.5.4 Syntax: MAIL FROM:<address>", r)
			rejects("FROM <a@b.test>", "501 5.5.4")
			rejects("FROM", "501 5.5.4")
			rejects("TO:<a@b.test>", "501 5.5.4")
			rejects("", "501 5.5.4")
		end)

		it("rejects a missing <> with 501 5.1.7", function()
			local r = rejects("FROM:a@b.test", "501 5.1.7")
			assert.are.equal("501 5.1.7 Bad sender address syntax", r)
			rejects("FROM:", "501 5.1.7")
			rejects("FROM:<", "501 5.1.7")
		end)

		it("rejects a missing '>' with 501 5.1.7", function()
			rejects("FROM:<a@b.test", "501 5.1.7")
			rejects("FROM:<a@b.test SIZE=10", "501 5.1.7")
		end)

		it("rejects text glued to the closing '>' with 501 5.1.7", function()
			rejects("FROM:<a@b.test>x", "501 5.1.7")
			rejects("FROM:<a@b.test>>", "501 5.1.7")
			rejects("FROM:<>SIZE=1", "501 5.1.7")
		end)

		it("rejects a path without a domain with 501 5.1.7", function()
			rejects("FROM:<user>", "501 5.1.7")
			rejects("FROM:<user@>", "501 5.1.7")
			rejects("FROM:<@b.test>", "501 5.1.7")
		end)

		it("rejects postmaster without a domain (only RCPT allows it)", function()
			rejects("FROM:<postmaster>", "501 5.1.7")
		end)

		it("rejects an empty local part", function()
			rejects("FROM:<@>", "501 5.1.7")
			rejects("FROM:<@b.test>", "501 5.1.7")
		end)

		it("accepts an empty quoted local part (RFC 5321 grammar allows it)", function()
			assert.are.equal('""@b.test', ok('FROM:<""@b.test>').path)
		end)

		it("rejects a local part longer than 64 octets", function()
			local lp64, lp65 = ("l"):rep(64), ("l"):rep(65)
			assert.are.equal(lp64 .. "@x.test", ok("FROM:<" .. lp64 .. "@x.test>").path)
			rejects("FROM:<" .. lp65 .. "@x.test>", "501 5.1.7")
		end)

		it("rejects a domain label longer than 63 octets", function()
			local l63, l64 = ("d"):rep(63), ("d"):rep(64)
			assert.are.equal("a@" .. l63 .. ".test",
			    ok("FROM:<a@" .. l63 .. ".test>").path)
			rejects("FROM:<a@" .. l64 .. ".test>", "501 5.1.7")
		end)

		it("rejects a domain longer than 255 octets", function()
			local l = ("d"):rep(63)
			local d256 = l .. "." .. l .. "." .. l .. "." .. ("d"):rep(62) .. ".a"
			assert.are.equal(256, #d256)
			rejects("FROM:<a@" .. d256 .. ">", "501 5.1.7")
		end)

		it("accepts a path of 256 octets with its brackets, not 257", function()
			-- RFC 5321 4.5.3.1.3 counts the brackets in its 256.
			local l = ("d"):rep(60)
			local prefix = ("l"):rep(64) .. "@" .. l .. "." .. l .. "." .. l .. "."
			local p254 = prefix .. ("e"):rep(254 - #prefix)
			assert.are.equal(254, #p254)
			assert.are.equal(p254, ok("FROM:<" .. p254 .. ">").path)
			rejects("FROM:<" .. p254 .. "e>", "501 5.1.7")
		end)

		it("rejects a source route that pushes the path over 256 octets", function()
			local hop = "@" .. ("r"):rep(60) .. ".test"
			local route = hop .. "," .. hop .. "," .. hop .. "," .. hop .. ":"
			rejects("FROM:<" .. route .. "u@x.test>", "501 5.1.7")
		end)

		it("rejects dots in the wrong places", function()
			for _, p in ipairs({ "a@b..test", "a@b.test.", "a@.b.test",
			    "a..b@x.test", ".a@x.test", "a.@x.test", "a@.", "a@b.." }) do
				rejects("FROM:<" .. p .. ">", "501 5.1.7")
			end
		end)

		it("rejects hyphens at the edge of a label", function()
			rejects("FROM:<a@-b.test>", "501 5.1.7")
			rejects("FROM:<a@b-.test>", "501 5.1.7")
			rejects("FROM:<a@b.test->", "501 5.1.7")
		end)

		it("rejects characters that are not allowed in domains", function()
			for _, d in ipairs({ "b_c.test", "b c.test", "b!.test",
			    "b@c.test", "b\t.test" }) do
				rejects("FROM:<a@" .. d .. ">", "501 5.1.7")
			end
		end)

		it("rejects non-ASCII bytes in the local part and domain", function()
			rejects("FROM:<j\xC3\xB6rg@x.test>", "501 5.1.7")
			rejects("FROM:<a@b\xC3\xA9.test>", "501 5.1.7")
			rejects("FROM:<\xFF@x.test>", "501 5.1.7")
			rejects("FROM:<a@x.test\x80>", "501 5.1.7")
		end)

		it("rejects specials and blanks in an unquoted local part", function()
			for _, lp in ipairs({ "a b", "a(b)", "a,b", "a;b", "a:b",
			    "a\\b", "a[b]", "a<b" }) do
				rejects("FROM:<" .. lp .. "@x.test>", "501 5.1.7")
			end
		end)
	end)

	describe("SIZE parameter", function()
		it("accepts SIZE=n", function()
			assert.are.equal(12345678, ok("FROM:<a@b.test> SIZE=12345678").size)
			assert.are.equal(0, ok("FROM:<a@b.test> SIZE=0").size)
		end)

		it("is case-insensitive in the keyword", function()
			assert.are.equal(10, ok("FROM:<a@b.test> size=10").size)
		end)

		it("accepts the largest 64-bit signed value", function()
			local m = ok("FROM:<a@b.test> SIZE=9223372036854775807")
			assert.are.equal(math.maxinteger, m.size)
		end)

		it("accepts 19 digits and rejects 20 with 501 5.5.4", function()
			assert.is_not_nil(ok("FROM:<a@b.test> SIZE=9999999999999999999").size)
			local r = rejects("FROM:<a@b.test> SIZE=10000000000000000000",
			    "501 5.5.4")
			assert.are.equal("501 5.5.4 Syntax error in SIZE parameter", r)
		end)

		it("rejects a SIZE without a number with 501 5.5.4", function()
			for _, p in ipairs({ "SIZE", "SIZE=", "SIZE=abc", "SIZE=-1",
			    "SIZE=+1", "SIZE=1k", "SIZE= 1", "SIZE=1.5" }) do
				rejects("FROM:<a@b.test> " .. p, "501 5.5.4")
			end
		end)
	end)

	describe("BODY parameter", function()
		it("accepts BODY=7BIT and BODY=8BITMIME in any case", function()
			assert.are.equal("7BIT", ok("FROM:<a@b.test> BODY=7BIT").body)
			assert.are.equal("8BITMIME", ok("FROM:<a@b.test> BODY=8BITMIME").body)
			assert.are.equal("8BITMIME", ok("FROM:<a@b.test> body=8bitmime").body)
			assert.are.equal("7BIT", ok("FROM:<a@b.test> Body=7bit").body)
		end)

		it("rejects another BODY value with 501 5.5.4", function()
			for _, p in ipairs({ "BODY=BINARYMIME", "BODY=", "BODY",
			    "BODY=8BIT", "BODY=7BITX" }) do
				local r = rejects("FROM:<a@b.test> " .. p, "501 5.5.4")
				assert.are.equal(
				    "501 5.5.4 Syntax error in BODY parameter (7BIT or 8BITMIME)",
				    r)
			end
		end)
	end)

	describe("parameters", function()
		it("accepts SIZE and BODY together, several blanks apart", function()
			local m = ok("FROM:<a@b.test>   SIZE=42    BODY=7BIT  ")
			assert.are.equal(42, m.size)
			assert.are.equal("7BIT", m.body)
		end)

		it("lets a later SIZE or BODY override an earlier one", function()
			local m = ok("FROM:<a@b.test> SIZE=1 BODY=7BIT SIZE=2 BODY=8BITMIME")
			assert.are.equal(2, m.size)
			assert.are.equal("8BITMIME", m.body)
		end)

		it("rejects an unknown parameter with 555 5.5.4", function()
			for _, p in ipairs({ "SMTPUTF8", "AUTH=<>", "RET=FULL",
			    "ENVID=x", "X=1", "=" }) do
				local r = rejects("FROM:<a@b.test> " .. p, "555 5.5.4")
				assert.are.equal("555 5.5.4 Unsupported MAIL FROM parameter", r)
			end
		end)

		it("rejects an unknown parameter even after good ones", function()
			rejects("FROM:<a@b.test> SIZE=1 BODY=7BIT XFOO", "555 5.5.4")
		end)

		it("does not split parameters on tabs", function()
			rejects("FROM:<a@b.test> SIZE=1\tBODY=7BIT", "501 5.5.4")
		end)
	end)
end)

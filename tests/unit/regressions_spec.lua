package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- Inputs that once broke (or still break) a parser, mostly found by the
-- fuzzers in fuzz/. Each spec names the target and the input, and is a
-- plain assertion: a bug is fixed before its spec lands, never skipped.

local function code(reply)
	return reply and reply:sub(1, 9)
end

describe("regressions", function()
	describe("NUL byte inside an address literal (fuzz_address)", function()
		-- was: smtp_parse.c valid_literal(): inet_pton() stopped at the
		-- NUL, so "[1.2.3.4<NUL>junk]" passed as a literal

		-- fuzz_address crash-bfb78abc...: "FROM:<" .. this .. ">"
		local crash = "u@[IPv6:::" .. ("\0"):rep(39) .. "1]"

		it("MAIL rejects the fuzzer's input with 501 5.1.7", function()
			local m, reply = t.parse_mail("FROM:<" .. crash .. ">")
			assert.is_nil(m)
			assert.are.equal("501 5.1.7", code(reply))
		end)

		it("MAIL rejects u@[1.2.3.4<NUL>junk] with 501 5.1.7", function()
			local m, reply = t.parse_mail("FROM:<u@[1.2.3.4\0junk]>")
			assert.is_nil(m)
			assert.are.equal("501 5.1.7", code(reply))
		end)

		-- fuzz_address crash-495576e2... (KNOWN_BUGS=1 run): the bytes after
		-- the NUL are never checked, so a stored path can carry CR, LF,
		-- blanks, '@', control and 8-bit bytes (lowered as "domain").
		it("MAIL never stores CR or LF in a path", function()
			local m = t.parse_mail(
			    "FROM:<u@[1.2.3.4\0\r\nX-Injected: yes\1\255]> SIZE=5")
			assert.is_nil(m)
		end)

		it("MAIL rejects the second fuzzer input (an '@' hidden after the NUL)", function()
			local m = t.parse_mail("FROM:<u@[IPv6:::92\0\0`0\1QG\179HE " ..
			    "SIZE=LO ,1FrOM:<e@[]>")
			assert.is_nil(m)
		end)

		it("RCPT rejects u@[IPv6:::1<NUL>x] with 501 5.1.3", function()
			local r, reply = t.parse_rcpt("TO:<u@[IPv6:::1\0x]>")
			assert.is_nil(r)
			assert.are.equal("501 5.1.3", code(reply))
		end)

		it("HELO rejects [127.0.0.1<NUL>evil] with 501 5.5.4", function()
			local ok, reply = t.parse_helo("[127.0.0.1\0evil]")
			assert.is_nil(ok)
			assert.are.equal("501 5.5.4", code(reply))
			-- fuzz_address crash-e0fb045e...
			assert.is_nil(t.parse_helo("[IPv6:::\0]"))
		end)

		it("is not reachable through a command line: NUL is refused first", function()
			for _, line in ipairs({ "MAIL FROM:<u@[1.2.3.4\0junk]>",
			    "RCPT TO:<u@[IPv6:::1\0x]>", "EHLO [127.0.0.1\0evil]" }) do
				local c, reply = t.parse_command(line)
				assert.is_nil(c)
				assert.are.equal("500 5.5.2", code(reply))
			end
		end)
	end)

	describe("DATA end detection (fuzz_data seeds)", function()
		it("does not end at a dot line reached through a bare LF", function()
			local input = "a\n.\nMAIL FROM:<x@y.test>\r\n\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.is_true(r.bare_lf)
		end)
	end)
end)

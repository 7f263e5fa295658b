package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- RCPT TO: the forward-path grammar (shared with MAIL) plus the special
-- <Postmaster> recipient, and no parameters at all.

local function code(reply)
	return reply and reply:sub(1, 9)
end

local function ok(arg)
	local r, reply = t.parse_rcpt(arg)
	assert(r, "expected " .. string.format("%q", arg) ..
	    " to parse, got " .. tostring(reply))
	return r
end

local function rejects(arg, want)
	local r, reply = t.parse_rcpt(arg)
	assert.is_nil(r, string.format("%q parsed as %q", arg,
	    r and r.path or ""))
	assert.are.equal(want, code(reply), string.format("%q", arg))
	return reply
end

describe("RCPT TO", function()
	describe("paths", function()
		it("accepts a plain address, not flagged as postmaster", function()
			local r = ok("TO:<user@example.test>")
			assert.are.equal("user@example.test", r.path)
			assert.is_false(r.postmaster)
		end)

		it("is case-insensitive in TO: and accepts blanks after the colon", function()
			assert.are.equal("a@b.test", ok("to:<a@b.test>").path)
			assert.are.equal("a@b.test", ok("To:  <a@b.test>").path)
		end)

		it("lowercases the domain but preserves the local part", function()
			assert.are.equal("Bob@example.net", ok("TO:<Bob@EXAMPLE.Net>").path)
		end)

		it("drops a source route", function()
			local r = ok("TO:<@relay.test,@hop.test:u@c.test>")
			assert.are.equal("u@c.test", r.path)
		end)

		it("accepts quoted local parts and address literals", function()
			assert.are.equal('"x y"@c.test', ok('TO:<"x y"@c.test>').path)
			assert.are.equal('"a>b"@c.test', ok('TO:<"a>b"@c.test>').path)
			assert.are.equal("u@[192.0.2.1]", ok("TO:<u@[192.0.2.1]>").path)
			assert.are.equal("u@[ipv6:::1]", ok("TO:<u@[IPv6:::1]>").path)
		end)

		it("accepts a trailing blank after the path", function()
			assert.are.equal("a@b.test", ok("TO:<a@b.test>   ").path)
		end)
	end)

	describe("postmaster", function()
		it("accepts <Postmaster> without a domain, in any case", function()
			for _, pm in ipairs({ "Postmaster", "postmaster", "POSTMASTER",
			    "PostMaster" }) do
				local r = ok("TO:<" .. pm .. ">")
				assert.is_true(r.postmaster, pm)
				assert.are.equal(pm, r.path)
			end
		end)

		it("treats postmaster@domain as an ordinary address", function()
			local r = ok("TO:<postmaster@Example.TEST>")
			assert.is_false(r.postmaster)
			assert.are.equal("postmaster@example.test", r.path)
		end)

		it("rejects other local parts without a domain with 501 5.1.3", function()
			for _, p in ipairs({ "postmast", "postmasterx", "xpostmaster",
			    "abuse", "root", '"postmaster"' }) do
				rejects("TO:<" .. p .. ">", "501 5.1.3")
			end
		end)
	end)

	describe("rejections", function()
		it("rejects the null path <> with 501 5.1.3", function()
			local r = rejects("TO:<>", "501 5.1.3")
			assert.are.equal("501 5.1.3 Bad recipient address syntax", r)
		end)

		it("rejects a missing TO: with 501 5.5.4", function()
			local r = rejects("<a@b.test>", "501 5.5.4")
			assert.are.equal("501 5.5.4 Syntax: RCPT TO:<address>", r)
			rejects("FROM:<a@b.test>", "501 5.5.4")
			rejects("TO", "501 5.5.4")
			rejects("", "501 5.5.4")
		end)

		it("rejects a missing <> or '>' with 501 5.1.3", function()
			rejects("TO:a@b.test", "501 5.1.3")
			rejects("TO:<a@b.test", "501 5.1.3")
			rejects("TO:", "501 5.1.3")
		end)

		it("rejects text glued to the closing '>' with 501 5.1.3", function()
			rejects("TO:<a@b.test>,<c@d.test>", "501 5.1.3")
		end)

		it("rejects bad addresses with 501 5.1.3", function()
			for _, p in ipairs({ "a@b..test", "a@b.test.", "a..b@c.test",
			    "a@", "@c.test", "a@[1.2.3]", ("l"):rep(65) .. "@c.test",
			    "a@" .. ("d"):rep(64) .. ".test", "j\xC3\xB6rg@c.test",
			    "a b@c.test", "@a.test:", '"open@c.test' }) do
				rejects("TO:<" .. p .. ">", "501 5.1.3")
			end
		end)

		it("rejects any parameter with 555 5.5.4", function()
			for _, p in ipairs({ "NOTIFY=NEVER", "ORCPT=rfc822;a@b.test",
			    "SIZE=10", "BODY=8BITMIME", "X" }) do
				local r = rejects("TO:<a@b.test> " .. p, "555 5.5.4")
				assert.are.equal("555 5.5.4 Unsupported RCPT TO parameter", r)
			end
			rejects("TO:<postmaster> NOTIFY=NEVER", "555 5.5.4")
		end)
	end)
end)

package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- The command-line parser (smtp_parse_command): one framed line, CRLF
-- already removed, becomes a verb and its argument or a complete reply.

local function code(reply)
	return reply and reply:sub(1, 9)
end

local VERBS = {
	"HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT",
	"VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "ETRN", "BDAT",
}
local NOARG = { DATA = true, RSET = true, QUIT = true, STARTTLS = true }

local function mixed(s)
	local i = 0
	return (s:gsub("%a", function(c)
		i = i + 1
		return i % 2 == 0 and c:lower() or c:upper()
	end))
end

describe("SMTP command line", function()
	describe("verbs", function()
		for _, v in ipairs(VERBS) do
			it("recognises " .. v .. " in upper, lower and mixed case", function()
				for _, form in ipairs({ v, v:lower(), mixed(v:lower()) }) do
					local c, reply = t.parse_command(form)
					assert.is_nil(reply)
					assert.are.equal(v, c.cmd)
					assert.are.equal(form, c.verb)
					assert.are.equal("", c.arg)
				end
			end)
		end

		for _, v in ipairs(VERBS) do
			if not NOARG[v] then
				it("gives " .. v .. " its argument verbatim", function()
					local c = t.parse_command(v .. " Some Arg:<x@y>")
					assert.are.equal(v, c.cmd)
					assert.are.equal("Some Arg:<x@y>", c.arg)
				end)
			end
		end

		it("does not match a verb that is only a prefix or has a suffix", function()
			for _, line in ipairs({ "MAI", "MAILX", "HEL", "HELOO",
			    "STARTTL", "STARTTLSX", "DAT", "DATAA" }) do
				local c, reply, which = t.parse_command(line)
				assert.is_nil(c)
				assert.are.equal("500 5.5.1", code(reply), line)
				assert.are.equal("UNKNOWN", which)
			end
		end)
	end)

	describe("argument splitting", function()
		it("splits the verb from its argument at the first space", function()
			local c = t.parse_command("MAIL FROM:<a@b.test> SIZE=10")
			assert.are.equal("MAIL", c.verb)
			assert.are.equal("FROM:<a@b.test> SIZE=10", c.arg)
		end)

		it("skips several spaces between verb and argument", function()
			local c = t.parse_command("RCPT    TO:<a@b.test>")
			assert.are.equal("RCPT", c.cmd)
			assert.are.equal("TO:<a@b.test>", c.arg)
		end)

		it("keeps spaces inside the argument", function()
			local c = t.parse_command("HELP me  please")
			assert.are.equal("me  please", c.arg)
		end)

		it("drops trailing spaces from the argument", function()
			local c = t.parse_command("MAIL FROM:<a@b.test>   ")
			assert.are.equal("FROM:<a@b.test>", c.arg)
		end)

		it("accepts a verb followed only by spaces as having no argument", function()
			for _, v in ipairs(VERBS) do
				local c, reply = t.parse_command(v .. "   ")
				assert.is_nil(reply, v)
				assert.are.equal(v, c.cmd)
				assert.are.equal(v, c.verb)
				assert.are.equal("", c.arg)
			end
		end)

		it("does not treat a tab as a separator (verb \"HELO\\tx\" is unknown)", function()
			local c, reply = t.parse_command("HELO\tx.test")
			assert.is_nil(c)
			assert.are.equal("500 5.5.1", code(reply))
		end)

		it("does not strip a trailing tab (\"DATA\\t\" is unknown)", function()
			local _, reply = t.parse_command("DATA\t")
			assert.are.equal("500 5.5.1", code(reply))
		end)

		it("treats a leading space as an empty, unknown verb", function()
			local _, reply = t.parse_command(" NOOP")
			assert.are.equal("500 5.5.1", code(reply))
		end)
	end)

	describe("rejections", function()
		it("rejects an empty line with 500 5.5.2", function()
			local c, reply = t.parse_command("")
			assert.is_nil(c)
			assert.are.equal("500 5.5.2 Syntax error: empty command", reply)
		end)

		it("rejects a line of spaces only with 500 5.5.2", function()
			local _, reply = t.parse_command("     ")
			assert.are.equal("500 5.5.2", code(reply))
		end)

		it("rejects a NUL byte anywhere with 500 5.5.2", function()
			for _, line in ipairs({ "\0", "NOOP\0", "\0NOOP",
			    "MAIL FROM:<a\0@b.test>", "RCPT TO:<a@b.test>\0" }) do
				local c, reply = t.parse_command(line)
				assert.is_nil(c)
				assert.are.equal(
				    "500 5.5.2 Syntax error: NUL byte in command", reply)
			end
		end)

		it("checks for NUL before anything else (even after trailing spaces)", function()
			local _, reply = t.parse_command("NOOP \0 ")
			assert.are.equal("500 5.5.2 Syntax error: NUL byte in command",
			    reply)
		end)

		it("rejects an unknown verb with 500 5.5.1", function()
			for _, line in ipairs({ "FOO", "XCLIENT ADDR=1.2.3.4",
			    "MAIL:FROM<a@b>", "\r", "é" }) do
				local c, reply, which = t.parse_command(line)
				assert.is_nil(c)
				assert.are.equal("500 5.5.1 Command unrecognized", reply)
				assert.are.equal("UNKNOWN", which)
			end
		end)

		it("recognises HTTP and proxy request lines as HTTP (not SMTP)", function()
			for _, line in ipairs({ "GET / HTTP/1.1", "POST /x HTTP/1.0",
			    "CONNECT mx.example:25 HTTP/1.1", "head / HTTP/1.1", "PUT /",
			    "GET" }) do
				local c = t.parse_command(line)
				assert.is_truthy(c, line)
				assert.are.equal("HTTP", c.cmd)
			end
		end)

		for v in pairs(NOARG) do
			it("rejects " .. v .. " with an argument with 501 5.5.4", function()
				for _, form in ipairs({ v .. " x", v:lower() .. " now please" }) do
					local c, reply, which = t.parse_command(form)
					assert.is_nil(c)
					assert.are.equal(
					    "501 5.5.4 Syntax error: this command takes no arguments",
					    reply)
					assert.are.equal(v, which)
				end
			end)
		end

		it("accepts NOOP, HELP, VRFY, EXPN, ETRN, AUTH, BDAT with arguments", function()
			for _, v in ipairs({ "NOOP", "HELP", "VRFY", "EXPN", "ETRN",
			    "AUTH", "BDAT" }) do
				local c, reply = t.parse_command(v .. " x")
				assert.is_nil(reply, v)
				assert.are.equal(v, c.cmd)
			end
		end)
	end)

	describe("argument checking of the test module", function()
		it("raises a Lua error for a non-string line", function()
			assert.has_error(function() t.parse_command(nil) end)
			assert.has_error(function() t.parse_command({}) end)
		end)
	end)
end)

package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- The DATA phase: only CRLF "." CRLF ends a message (the DATA command's
-- own CRLF counts as the first CRLF), dot-stuffing is undone, lines are
-- stored with LF, and a bare CR, bare LF, NUL, long line or oversize
-- message is flagged and rejected after reading to the real end.

local BARE = "554 5.6.0 Message contains bare CR or LF"
local NUL = "554 5.6.0 Message contains NUL bytes; not accepted"
local LONG = "554 5.6.0 Message has a text line longer than the limit"
local BIG = "552 5.3.4 Message size exceeds fixed maximum message size"

local FLAGS = { "bare_lf", "bare_cr", "nul", "long_line", "too_big" }

local function clean(r)
	for _, f in ipairs(FLAGS) do
		assert.is_false(r[f], f)
	end
	assert.is_nil(r.reply)
end

-- Only the named flags are set.
local function only(r, ...)
	local want = {}
	for _, f in ipairs({ ... }) do
		want[f] = true
	end
	for _, f in ipairs(FLAGS) do
		assert.are.equal(want[f] == true, r[f], f)
	end
end

local function starts(prefix, s)
	assert.is_string(s)
	assert.are.equal(prefix, s:sub(1, #prefix))
end

describe("DATA", function()
	describe("end of data", function()
		it("reads a simple message to CRLF.CRLF", function()
			local input = "Subject: hi\r\n\r\nbody line\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal("Subject: hi\n\nbody line\n", r.message)
			assert.are.equal(#input, r.consumed)
			assert.are.equal(#input, r.wire_size)
			clean(r)
		end)

		it("ends an empty message at \".\\r\\n\" right after DATA", function()
			local r = t.data(".\r\n")
			assert.is_true(r.done)
			assert.are.equal("", r.message)
			assert.are.equal(3, r.consumed)
			clean(r)
		end)

		it("keeps an empty first line before the end", function()
			local r = t.data("\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal("\n", r.message)
			assert.are.equal(5, r.consumed)
		end)

		it("does not consume the bytes after the end", function()
			local msg = "a\r\nb\r\n.\r\n"
			for _, rest in ipairs({ "QUIT\r\n", "MAIL FROM:<>\r\n.\r\n", ".\r\n", "x" }) do
				local r = t.data(msg .. rest)
				assert.is_true(r.done)
				assert.are.equal(#msg, r.consumed)
				assert.are.equal(#msg, r.wire_size)
				assert.are.equal("a\nb\n", r.message)
			end
		end)

		it("is not done until the final LF arrives", function()
			for _, input in ipairs({ "", "a", "a\r\n", "a\r\n.", "a\r\n.\r",
			    ".", ".\r", "a\r\nb" }) do
				local r = t.data(input)
				assert.is_false(r.done, string.format("%q", input))
				assert.are.equal(#input, r.consumed)
			end
		end)

		it("does not end at a '.' that is not alone on its line", function()
			local input = "x.\r\n. \r\n.x\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.are.equal("x.\n \nx\n", r.message)
			clean(r)
		end)
	end)

	describe("dot-stuffing", function()
		it("removes the leading dot of \"..x\"", function()
			local r = t.data("..x\r\n.\r\n")
			assert.are.equal(".x\n", r.message)
			clean(r)
		end)

		it("turns a \"..\" line into \".\"", function()
			local r = t.data("a\r\n..\r\nb\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal("a\n.\nb\n", r.message)
			clean(r)
		end)

		it("removes exactly one dot", function()
			assert.are.equal("..\n", t.data("...\r\n.\r\n").message)
			assert.are.equal("...x\n", t.data("....x\r\n.\r\n").message)
		end)

		it("removes a lone leading dot too (RFC 5321 §4.5.2)", function()
			assert.are.equal("x\n", t.data(".x\r\n.\r\n").message)
		end)

		it("leaves dots that are not at a line start alone", function()
			assert.are.equal("a.b..\n", t.data("a.b..\r\n.\r\n").message)
			assert.are.equal(" .\n", t.data(" .\r\n.\r\n").message)
		end)
	end)

	describe("bare LF", function()
		it("is flagged, stored as a line end, and rejected with 554 5.6.0", function()
			local r = t.data("a\nb\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal("a\nb\n", r.message)
			only(r, "bare_lf")
			starts(BARE, r.reply)
		end)

		it("does not end the message at \"\\n.\\n\"", function()
			local input = "a\n.\nb\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.is_true(r.bare_lf)
			starts(BARE, r.reply)
			local partial = t.data("a\n.\n")
			assert.is_false(partial.done)
			assert.are.equal(4, partial.consumed)
		end)

		it("does not end the message at \"\\n.\\r\\n\"", function()
			local input = "a\n.\r\nmore\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.is_true(r.bare_lf)
			-- the dot after a bare LF is data, not stuffing
			assert.are.equal("a\n.\nmore\n", r.message)
			assert.is_false(t.data("a\n.\r\n").done)
		end)

		it("does not end the message at \"\\r\\n.\\n\"", function()
			local input = "a\r\n.\nb\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			only(r, "bare_lf")
			assert.is_false(t.data("a\r\n.\n").done)
			assert.is_false(t.data(".\n").done)
		end)

		it("treats a dot right after a leading bare LF as data", function()
			local r = t.data("\n.\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal(7, r.consumed)
			assert.is_true(r.bare_lf)
		end)

		it("ends only once a real CRLF precedes the final dot", function()
			local r = t.data("x\n.\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal(8, r.consumed)
		end)
	end)

	describe("bare CR", function()
		it("is flagged, kept in the line, and rejected with 554 5.6.0", function()
			local r = t.data("a\rb\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal("a\rb\n", r.message)
			only(r, "bare_cr")
			starts(BARE, r.reply)
		end)

		it("is seen before CRLF (\"a\\r\\r\\n\")", function()
			local r = t.data("a\r\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal("a\r\n", r.message)
			only(r, "bare_cr")
		end)

		it("does not end the message at \".\\r\" followed by something else", function()
			local input = ".\rx\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.are.equal("\rx\n", r.message)
			only(r, "bare_cr")
		end)

		it("does not end the message at \".\\r\\r\\n\"", function()
			local input = "a\r\n.\r\r\nb\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.are.equal("a\n\r\nb\n", r.message)
			only(r, "bare_cr")
			assert.is_false(t.data(".\r\r\n").done)
		end)

		it("does not end the message at \"\\r.\\r\\n\"", function()
			local input = "a\r.\r\nb\r\n.\r\n"
			local r = t.data(input)
			assert.is_true(r.done)
			assert.are.equal(#input, r.consumed)
			assert.is_true(r.bare_cr)
			assert.is_false(t.data("a\r.\r\n").done)
		end)
	end)

	describe("NUL bytes", function()
		it("are flagged and rejected with 554 5.6.0", function()
			for _, input in ipairs({ "a\0b\r\n.\r\n", "\0\r\n.\r\n",
			    "ab\0\r\n.\r\n", "..\0\r\n.\r\n" }) do
				local r = t.data(input)
				assert.is_true(r.done)
				assert.are.equal(#input, r.consumed)
				only(r, "nul")
				assert.are.equal(NUL, r.reply)
			end
		end)

		it("are kept in the stored message", function()
			assert.are.equal("a\0b\n", t.data("a\0b\r\n.\r\n").message)
		end)
	end)

	describe("line length", function()
		it("accepts a line of exactly 998 octets plus CRLF", function()
			local r = t.data(("x"):rep(998) .. "\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal(999, #r.message)
			clean(r)
		end)

		it("flags a line of 999 octets and rejects it with 554 5.6.0", function()
			local r = t.data(("x"):rep(999) .. "\r\n.\r\n")
			assert.is_true(r.done)
			assert.are.equal(1000, #r.message)
			only(r, "long_line")
			starts(LONG, r.reply)
		end)

		it("counts the stuffing dot as part of the line on the wire", function()
			clean(t.data("." .. ("x"):rep(997) .. "\r\n.\r\n"))
			only(t.data("." .. ("x"):rep(998) .. "\r\n.\r\n"), "long_line")
		end)

		it("counts NUL and bare CR bytes towards the line length", function()
			only(t.data(("x"):rep(997) .. "\0\r\n.\r\n"), "nul")
			only(t.data(("x"):rep(998) .. "\0\r\n.\r\n"), "nul", "long_line")
			only(t.data(("x"):rep(996) .. "\rx\r\n.\r\n"), "bare_cr")
			only(t.data(("x"):rep(997) .. "\rx\r\n.\r\n"), "bare_cr", "long_line")
			only(t.data("\0\0\r\n.\r\n", 4), "nul")
			only(t.data("\0\0\0\r\n.\r\n", 4), "nul", "long_line")
		end)

		it("measures each line separately", function()
			local l = ("y"):rep(998) .. "\r\n"
			clean(t.data(l .. l .. "short\r\n" .. l .. ".\r\n"))
			only(t.data(l .. "z" .. l .. ".\r\n"), "long_line")
		end)

		it("flags a long line anywhere in the message", function()
			local r = t.data("a\r\n" .. ("x"):rep(2000) .. "\r\nb\r\n.\r\n")
			assert.is_true(r.done)
			assert.is_true(r.long_line)
		end)

		it("honours a custom max_line", function()
			clean(t.data("12345678\r\n.\r\n", 10))
			only(t.data("123456789\r\n.\r\n", 10), "long_line")
		end)

		it("has no limit when max_line is 0", function()
			clean(t.data(("x"):rep(100000) .. "\r\n.\r\n", 0))
		end)
	end)

	describe("message size", function()
		it("truncates at max_size, flags too_big and rejects with 552 5.3.4", function()
			local input = "0123456789\r\nabc\r\n.\r\n"
			local r = t.data(input, 1000, 5)
			assert.is_true(r.done)
			assert.are.equal("01234", r.message)
			assert.are.equal(#input, r.consumed)
			only(r, "too_big")
			assert.are.equal(BIG, r.reply)
		end)

		it("accepts a message of exactly max_size stored octets", function()
			local r = t.data("abcd\r\n.\r\n", 1000, 5)
			assert.are.equal("abcd\n", r.message)
			clean(r)
			local r2 = t.data("abcd\r\n.\r\n", 1000, 4)
			assert.are.equal("abcd", r2.message)
			only(r2, "too_big")
		end)

		it("counts stored octets (LF, unstuffed), not wire octets", function()
			local r = t.data("..\r\n..\r\n.\r\n", 1000, 4)
			assert.are.equal(".\n.\n", r.message)
			clean(r)
		end)

		it("never stores more than max_size octets", function()
			for size = 1, 12 do
				local r = t.data("hello\r\nworld\r\n..x\r\n.\r\n", 1000, size)
				assert.is_true(#r.message <= size)
				assert.is_true(r.done)
			end
		end)

		it("reports too_big before NUL, bare line ends and long lines", function()
			local r = t.data("a\0\n" .. ("x"):rep(1200) .. "\r\n.\r\n", 1000, 2)
			only(r, "too_big", "nul", "bare_lf", "long_line")
			assert.are.equal(BIG, r.reply)
		end)

		it("reports NUL before bare line ends and long lines", function()
			local r = t.data("a\0\n" .. ("x"):rep(1200) .. "\r\n.\r\n")
			only(r, "nul", "bare_lf", "long_line")
			assert.are.equal(NUL, r.reply)
		end)

		it("reports bare line ends before long lines", function()
			local r = t.data("a\r" .. ("x"):rep(1200) .. "\r\n.\r\n")
			only(r, "bare_cr", "long_line")
			starts(BARE, r.reply)
		end)
	end)

	describe("stream splitting", function()
		local inputs = {
			"Subject: x\r\n\r\nhello\r\n.\r\n",
			".\r\n",
			"..x\r\n..\r\n...\r\n.\r\nQUIT\r\n",
			"a\n.\nb\n.\r\nc\r\n.\r\nNOOP\r\n",
			"a\r.\r\nb\r\r\n.\rx\r\n.\r\nRSET\r\n",
			"a\0b\r\n\0\r\n.\r\n",
			("x"):rep(997) .. "\r\n" .. ("y"):rep(999) .. "\r\n.\r\n",
			"0123456789\r\n.\r\nextra",
			"no end\r\n.",
			"\r\n.\n.\r\n.\r\n",
		}

		for i, input in ipairs(inputs) do
			it(string.format("gives identical results for chunks 1..7 (input %d)", i), function()
				for _, sizes in ipairs({ { 1000, 0 }, { 10, 7 } }) do
					local whole = t.data(input, sizes[1], sizes[2])
					for chunk = 1, 7 do
						local r = t.data(input, sizes[1], sizes[2], chunk)
						assert.are.same(whole, r)
					end
				end
			end)
		end

		it("gives identical results for random inputs and chunk sizes", function()
			local alphabet = { ".", ".", "\r\n", "\r\n", "\r", "\n", "a", "\0", "..", "x" }
			local seed = 12345
			local function rnd(n)
				seed = (seed * 1103515245 + 12345) % 2147483648
				return seed % n + 1
			end
			for _ = 1, 300 do
				local parts = {}
				for k = 1, rnd(40) do
					parts[k] = alphabet[rnd(#alphabet)]
				end
				local input = table.concat(parts)
				local max_line, max_size = rnd(12) - 1, rnd(20) - 1
				local whole = t.data(input, max_line, max_size)
				assert.is_true(whole.consumed <= #input)
				for chunk = 1, 7 do
					assert.are.same(whole,
					    t.data(input, max_line, max_size, chunk),
					    string.format("%q chunk %d", input, chunk))
				end
			end
		end)
	end)

	describe("round trip", function()
		local function stuff(message)
			local out = message:gsub("\n", "\r\n"):gsub("^%.", ".."):gsub("\n%.", "\n..")
			return out .. ".\r\n"
		end

		it("re-stuffing a clean message and reading it again gives the same message", function()
			for _, msg in ipairs({ "", "\n", "a\n", ".\n", "..\n", ".a\n.\n",
			    "x\n\n.\n..\n...x\n", "Subject: s\n\n.hidden\n" }) do
				local wire = stuff(msg)
				local r = t.data(wire)
				assert.is_true(r.done)
				assert.are.equal(#wire, r.consumed)
				assert.are.equal(msg, r.message)
				clean(r)
			end
		end)
	end)

	describe("argument checking of the test module", function()
		it("rejects negative limits and chunk sizes", function()
			assert.has_error(function() t.data("x", -1) end)
			assert.has_error(function() t.data("x", 1000, -1) end)
			assert.has_error(function() t.data("x", 1000, 0, -1) end)
			assert.has_error(function() t.data(nil) end)
		end)
	end)
end)

-- lua/stdlib/match.lua: the matchers policies build their tables from, run
-- under plain lua5.4 (regex with lrexlib's rex_pcre2, the library indimaild
-- links for indimail.regex.compile).
package.path = "lua/stdlib/?.lua;" .. package.path
local match = require("match")
local rex = require("rex_pcre2")

describe("match.exact", function()
	it("matches whole keys, ignoring case, and returns their values", function()
		local m = match.exact({ "joe@example.com", ["ann@example.com"] = "vip" })
		assert.is_true(m:lookup("JOE@Example.COM"))
		assert.are.equal("vip", m:lookup("ann@example.com"))
		assert.is_false(m:match("joe@example.co"))
		assert.is_false(m:match(nil))
		assert.are.equal(2, m:size())
	end)

	it("keeps case with case = true", function()
		local m = match.exact({ "Joe" }, { case = true })
		assert.is_true(m:match("Joe"))
		assert.is_false(m:match("joe"))
	end)
end)

describe("match.domain", function()
	local m = match.domain({ "example.com", ".example.net", ["Parked.Example"] = "parked" })

	it("matches 'example.com' itself only, like qmail's rcpthosts", function()
		assert.is_true(m:match("example.com"))
		assert.is_true(m:match("EXAMPLE.COM."))
		assert.is_false(m:match("mx.example.com"))
	end)

	it("matches any subdomain of '.example.net', not the domain itself", function()
		assert.is_true(m:match("a.example.net"))
		assert.is_true(m:match("a.b.c.example.net"))
		assert.is_false(m:match("example.net"))
		assert.is_false(m:match("badexample.net"))
	end)

	it("takes the domain of an address", function()
		assert.is_true(m:match("joe@mx.Example.Net"))
		assert.are.equal("parked", m:lookup("joe@parked.example"))
	end)

	it("refuses an empty label", function()
		assert.has_error(function() match.domain({ "a..example" }) end,
			"entry 1: bad domain 'a..example': empty label")
	end)
end)

describe("match.cidr", function()
	local m = match.cidr({ "192.0.2.0/24", "2001:db8::/32", ["10.0.0.0/8"] = "ten",
		["10.1.0.0/16"] = "ten-one", ["198.51.100.7"] = "host" })

	it("matches IPv4 prefixes, the longest prefix giving the value", function()
		assert.is_true(m:lookup("192.0.2.200"))
		assert.are.equal("ten", m:lookup("10.200.0.1"))
		assert.are.equal("ten-one", m:lookup("10.1.2.3"))
		assert.are.equal("host", m:lookup("198.51.100.7"))
		assert.is_false(m:match("198.51.100.8"))
		assert.is_false(m:match("192.0.3.1"))
	end)

	it("matches IPv6 prefixes, and IPv4-mapped peers against IPv4 prefixes", function()
		assert.is_true(m:match("2001:db8:ffff::1"))
		assert.is_true(m:match("2001:DB8::"))
		assert.is_false(m:match("2001:db9::1"))
		assert.is_true(m:match("::ffff:192.0.2.9"))
		assert.is_true(m:match("[192.0.2.9]"))
		assert.is_true(m:match("[IPv6:2001:db8::2]"))
	end)

	it("masks host bits of a prefix and handles odd prefix lengths", function()
		local o = match.cidr({ "192.0.2.77/27", "2001:db8:8000::/33" })
		assert.is_true(o:match("192.0.2.64"))
		assert.is_true(o:match("192.0.2.95"))
		assert.is_false(o:match("192.0.2.96"))
		assert.is_true(o:match("2001:db8:ffff::"))
		assert.is_false(o:match("2001:db8:7fff::"))
	end)

	it("never matches text that is no address", function()
		for _, s in ipairs({ "", "example.com", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "12345::" }) do
			assert.is_false(m:match(s), s)
		end
	end)

	it("refuses a bad prefix with its position", function()
		for _, bad in ipairs({ "1.2.3.4/33", "2001:db8::/129", "1.2.3/24", "1.2.3.4/", "host.example" }) do
			assert.has_error(function() match.cidr({ bad }) end)
		end
		assert.has_error(function() match.cidr({ "192.0.2.0/33" }) end,
			"entry 1: bad cidr '192.0.2.0/33': prefix length over 32")
	end)

	it("parses every IPv6 form", function()
		assert.are.equal("00000000000000000000000000000001", match.ip("::1"))
		assert.are.equal("20010db8000000000000000000000000", match.ip("2001:db8::"))
		assert.are.equal("00010002000300040005000600070008", match.ip("1:2:3:4:5:6:7:8"))
		assert.are.equal("00000000000000000000ffffc0000201", match.ip("::ffff:192.0.2.1"))
		assert.is_nil(match.ip("1:2:3:4:5:6:7:8:9"))
		assert.is_nil(match.ip("1:2:3:4:5:6:7::8"))
		assert.is_nil(match.ip(":1:2:3:4:5:6:7"))
	end)
end)

describe("match.wildmat", function()
	it("knows *, ?, [set], [^set], [!set] and \\ escapes", function()
		local m = match.wildmat({ "*.example.com", "a?c", "[a-c]x*", "[^a-z]y", "[!0-9]z", "\\*lit", "*a*b*c*" })
		assert.is_true(m:match("mx.example.com"))
		assert.is_false(m:match("example.com"))
		assert.is_true(m:match("abc"))
		assert.is_true(m:match("bx-anything"))
		assert.is_false(m:match("dx"))
		assert.is_true(m:match("9y"))
		assert.is_false(m:match("qy"))
		assert.is_true(m:match("qz"))
		assert.is_false(m:match("5z"))
		assert.is_true(m:match("*lit"))
		assert.is_false(m:match("xlit"))
		assert.is_true(m:match("xxaxxbxxcxx"))
		assert.is_false(m:match("xxcxxbxxaxx"))
	end)

	it("lets the last matching pattern decide; '!' negates (INN)", function()
		local m = match.wildmat({ "*.example.com", "!bad.example.com" })
		assert.is_true(m:match("good.example.com"))
		assert.is_false(m:match("bad.example.com"))
		local m2 = match.wildmat({ "!bad.example.com", "*.example.com" })
		assert.is_true(m2:match("bad.example.com"))
	end)

	it("is case-insensitive unless case = true", function()
		assert.is_true(match.wildmat({ "*@Example.COM" }):match("JOE@example.com"))
		assert.is_false(match.wildmat({ "*@Example.COM" }, { case = true }):match("joe@example.com"))
	end)

	it("stays linear on a pattern of many stars", function()
		local m = match.wildmat({ ("*a"):rep(20) .. "*b" })
		local t0 = os.clock()
		assert.is_false(m:match(("a"):rep(2000)))
		assert.is_true(os.clock() - t0 < 5, "exponential backtracking would take far longer")
	end)

	it("refuses a bad wildmat", function()
		assert.has_error(function() match.wildmat({ "ok", "[abc" }) end,
			"entry 2: bad wildmat '[abc': unclosed [")
		assert.has_error(function() match.wildmat({ "abc\\" }) end,
			"entry 1: bad wildmat 'abc\\': trailing \\")
		assert.has_error(function() match.wildmat({ "[z-a]" }) end,
			"entry 1: bad wildmat '[z-a]': bad range z-a")
	end)
end)

describe("match.pattern", function()
	it("matches Lua patterns, the first match giving the value", function()
		local m = match.pattern({ ["^postmaster@"] = "pm" })
		m:add("^noreply%-?%w*@", "noreply")
		assert.are.equal("noreply", m:lookup("noreply-bounce@example.com"))
		assert.are.equal("pm", m:lookup("postmaster@example.com"))
		assert.is_false(m:match("joe@example.com"))
	end)

	it("refuses a bad pattern even where a match would not reach it", function()
		for _, bad in ipairs({ "(a", "a)", "[a", "x%", "x%b", "x%fa", "a[%" }) do
			assert.has_error(function() match.pattern({ bad }) end, nil, bad)
		end
		assert.has_error(function() match.pattern({ "joe[" }) end,
			"entry 1: bad pattern 'joe[': missing ']'")
	end)
end)

describe("match.regex", function()
	it("matches PCRE2 regular expressions, with flags", function()
		local m = match.regex({ "^joe\\d+@example\\.(com|net)$" }, { compile = rex.new })
		assert.is_true(m:match("joe12@example.net"))
		assert.is_false(m:match("joe@example.net"))
		local i = match.regex({ "^JOE@" }, { compile = rex.new, flags = "i" })
		assert.is_true(i:match("joe@x"))
	end)

	it("refuses a bad regex, saying why", function()
		assert.has_error(function() match.regex({ "a", "(a" }, { compile = rex.new }) end,
			"entry 2: bad regex '(a': missing closing parenthesis (pattern offset: 3)")
	end)

	it("without indimail.regex (plain Lua) says so", function()
		assert.has_error(function() match.regex({ "a" }) end,
			"regex: indimail.regex is not available (opts.compile)")
	end)
end)

describe("match.new", function()
	it("refuses an unknown kind and a key that is no string", function()
		assert.has_error(function() match.new("fuzzy") end)
		assert.has_error(function() match.exact({ [true] = 1 }) end)
	end)
end)

package.cpath = "build/?.so;" .. package.cpath
local counter = require("indimail_counter")

-- src/lib/counter.c: counts in shared memory that every worker sees. Real
-- processes are forked on one table, as the master's workers are.

local function now()
	local f = assert(io.popen("date +%s.%N"))
	local s = f:read("l")
	f:close()
	return tonumber(s)
end

describe("shared counters", function()
	it("counts, and keeps keys apart", function()
		local t = counter.create(64)
		assert.are.equal(0, t:get("a"))
		assert.are.equal(1, t:add("a", 60, 1))
		assert.are.equal(3, t:add("a", 60, 2))
		assert.are.equal(1, t:add("b", 60, 1))
		assert.are.equal(3, t:get("a"))
		assert.are.equal(1, t:get("b"))
		assert.are.equal(0, t:get("c"))
	end)

	it("adds up what several processes count at the same time", function()
		local t = counter.create(1024)
		local keys = { "authfail-ip:192.0.2.1", "authfail-user:joe@example.test", "k3" }
		assert.are.equal(6, t:hammer(6, 2000, keys))
		for _, k in ipairs(keys) do
			assert.are.equal(12000, t:get(k))
		end
	end)

	it("starts from zero once a key's window has passed", function()
		local t = counter.create(64)
		assert.are.equal(1, t:add("w", 1, 1))
		assert.are.equal(2, t:add("w", 1, 1))
		local t0 = now()
		while t:get("w") ~= 0 and now() - t0 < 3 do
			os.execute("sleep 0.1")
		end
		local waited = now() - t0
		assert.are.equal(0, t:get("w"))
		assert.is_true(waited > 0.5 and waited < 1.5, "expired after " .. waited)
		assert.are.equal(1, t:add("w", 1, 1))
	end)

	it("a window is not extended by later adds", function()
		local t = counter.create(64)
		t:add("fixed", 1, 1)
		os.execute("sleep 0.6")
		assert.are.equal(2, t:add("fixed", 1, 1))
		os.execute("sleep 0.6")
		assert.are.equal(0, t:get("fixed"))
	end)

	it("evicts the oldest key when a full table takes a new one", function()
		local t = counter.create(16)	-- one probe run: 16 slots
		for i = 1, 16 do
			t:add("k" .. i, 60, i)
			if i == 1 then os.execute("sleep 0.02") end
		end
		for i = 1, 16 do
			assert.are.equal(i, t:get("k" .. i))
		end
		assert.are.equal(5, t:add("new", 60, 5))
		assert.are.equal(0, t:get("k1"))	-- the oldest went
		assert.are.equal(2, t:get("k2"))
		assert.are.equal(5, t:get("new"))
	end)

	it("shares a count between two long keys alike in their first 287 bytes only when their hashes agree", function()
		local t = counter.create(256)
		local base = string.rep("x", 287)
		t:add(base .. "A", 60, 1)
		t:add(base .. "B", 60, 10)
		assert.are.equal(1, t:get(base .. "A"))
		assert.are.equal(10, t:get(base .. "B"))
	end)

	it("stays usable after processes are killed while they count", function()
		local t = counter.create(64)
		assert.is_true(t:kill_adders(40, "hot"))
		local n = t:get("hot")
		assert.is_true(n > 0)
		assert.are.equal(n + 1, t:add("hot", 60, 1))
	end)

	describe("holds (concurrency)", function()
		it("counts takes and gives back across owners, never below zero", function()
			local t = counter.create(256)
			assert.are.equal(1, t:hold("c", 101, 1))
			assert.are.equal(2, t:hold("c", 102, 1))
			assert.are.equal(2, t:get("c"))
			assert.are.equal(1, t:hold("c", 101, -1))
			assert.are.equal(0, t:hold("c", 102, -1))
			assert.are.equal(0, t:hold("c", 102, -1))
			assert.are.equal(0, t:get("c"))
		end)

		it("forgets what a dead owner held, and only that", function()
			local t = counter.create(256)
			t:hold("ip:192.0.2.1", 201, 1)
			t:hold("ip:192.0.2.1", 201, 1)
			t:hold("ip:192.0.2.1", 202, 1)
			t:hold("ip:192.0.2.2", 201, 1)
			assert.are.equal(3, t:get("ip:192.0.2.1"))
			t:forget_owner(201)
			assert.are.equal(1, t:get("ip:192.0.2.1"))
			assert.are.equal(0, t:get("ip:192.0.2.2"))
			assert.are.equal(0, t:hold("ip:192.0.2.1", 202, -1))
			t:forget_owner(202)
			assert.are.equal(0, t:get("ip:192.0.2.1"))
		end)

		it("has no window: a hold outlives any time", function()
			local t = counter.create(64)
			t:hold("h", 7, 1)
			os.execute("sleep 1.1")
			assert.are.equal(1, t:get("h"))
		end)

		it("refuses a key too long for its owner's suffix, and a bad owner", function()
			local t = counter.create(64)
			assert.are.equal(-1, t:hold(string.rep("k", 264), 1, 1))
			assert.are.equal(1, t:hold(string.rep("k", 263), 1, 1))
			assert.are.equal(-1, t:hold("k", 0, 1))
		end)
	end)
end)

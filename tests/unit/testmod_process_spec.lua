package.cpath = "build/?.so;" .. package.cpath
local t = require("indimail_test")

-- The process helpers the integration specs build on: spawn, kill,
-- waitpid, sleep, now, getuid. If these lie, every integration spec lies.

local function tmpname()
	local p = os.tmpname()
	os.remove(p)
	return p
end

local function slurp(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("a")
	f:close()
	return s
end

-- Waits up to `limit` seconds for pid to finish.
local function wait_for(pid, limit)
	local deadline = t.now() + (limit or 5)
	while t.now() < deadline do
		local how, val = t.waitpid(pid, true)
		if how ~= "running" then
			return how, val
		end
		t.sleep(0.01)
	end
	t.kill(pid, "KILL")
	return t.waitpid(pid)
end

describe("process helpers", function()
	describe("spawn and waitpid", function()
		it("reports a normal exit and its code", function()
			local pid = assert(t.spawn({ "sh", "-c", "exit 7" }))
			assert.is_true(pid > 1)
			local how, code = t.waitpid(pid)
			assert.are.equal("exited", how)
			assert.are.equal(7, code)
		end)

		it("searches PATH and passes every argument", function()
			local log = tmpname()
			local pid = t.spawn({ "printf", "%s|", "a b", "", "c" }, log)
			assert.are.same({ "exited", 0 }, { t.waitpid(pid) })
			assert.are.equal("a b||c|", slurp(log))
			os.remove(log)
		end)

		it("exits 127 when the program cannot be executed", function()
			local pid = t.spawn({ "/nonexistent/indimail-test-program" })
			assert.are.same({ "exited", 127 }, { t.waitpid(pid) })
		end)

		it("appends stdout and stderr to the log file", function()
			local log = tmpname()
			local f = assert(io.open(log, "w"))
			f:write("before\n")
			f:close()
			local pid = t.spawn({ "sh", "-c", "echo out; echo err >&2" }, log)
			t.waitpid(pid)
			pid = t.spawn({ "sh", "-c", "echo again" }, log)
			t.waitpid(pid)
			assert.are.equal("before\nout\nerr\nagain\n", slurp(log))
			os.remove(log)
		end)

		it("gives the child /dev/null as stdin", function()
			local log = tmpname()
			local pid = t.spawn({ "sh", "-c", "wc -c; readlink /proc/self/fd/0" }, log)
			assert.are.same({ "exited", 0 }, { wait_for(pid) })
			local out = slurp(log)
			assert.matches("^%s*0\n/dev/null\n$", out)
			os.remove(log)
		end)

		it("puts the child in its own process group", function()
			local log = tmpname()
			local pid = t.spawn({ "sh", "-c", "cut -d' ' -f5 /proc/$$/stat" }, log)
			t.waitpid(pid)
			assert.are.equal(tostring(pid), (slurp(log):gsub("%s+$", "")))
			os.remove(log)
		end)

		it("reports a running child with nohang", function()
			local pid = t.spawn({ "sleep", "5" })
			assert.are.equal("running", t.waitpid(pid, true))
			assert.is_true(t.kill(pid, "KILL"))
			assert.are.same({ "signaled", 9 }, { t.waitpid(pid) })
		end)

		it("returns nil and an error for a pid that is not a child", function()
			local ok, err = t.waitpid(999999999)
			assert.is_nil(ok)
			assert.is_string(err)
		end)

		it("returns nil and an error when the log file cannot be opened", function()
			local pid, err = t.spawn({ "true" }, "/nonexistent/dir/log")
			assert.is_nil(pid)
			assert.is_string(err)
		end)

		it("rejects a bad argv", function()
			assert.has_error(function() t.spawn({}) end)
			assert.has_error(function() t.spawn("true") end)
			assert.has_error(function() t.spawn({ "true", 5, {} }) end)
		end)
	end)

	describe("kill", function()
		for _, case in ipairs({ { "TERM", 15 }, { "SIGTERM", 15 },
		    { "term", 15 }, { "INT", 2 }, { "HUP", 1 }, { "USR1", 10 },
		    { "KILL", 9 }, { 15, 15 } }) do
			it("sends " .. tostring(case[1]), function()
				local pid = t.spawn({ "sleep", "5" })
				t.sleep(0.05)
				assert.is_true(t.kill(pid, case[1]))
				assert.are.same({ "signaled", case[2] }, { wait_for(pid) })
			end)
		end

		it("signals a whole process group with a negative pid", function()
			local log = tmpname()
			local pid = t.spawn({ "sh", "-c", "sleep 5 & echo $!; wait" }, log)
			local deadline = t.now() + 5
			while slurp(log) == "" and t.now() < deadline do
				t.sleep(0.01)
			end
			local grandchild = tonumber(slurp(log):match("%d+"))
			assert.is_true(t.kill(-pid, "TERM"))
			assert.are.same({ "signaled", 15 }, { wait_for(pid) })
			-- the grandchild got it too: gone, or a zombie nobody reaped yet
			local function dead()
				local f = io.open("/proc/" .. grandchild .. "/stat")
				if f == nil then
					return true
				end
				local st = f:read("a"):match("%) (%a)")
				f:close()
				return st == "Z" or st == "X"
			end
			deadline = t.now() + 5
			while not dead() and t.now() < deadline do
				t.sleep(0.01)
			end
			assert.is_true(dead())
			os.remove(log)
		end)

		it("returns nil and an error for a missing process", function()
			local pid = t.spawn({ "true" })
			t.waitpid(pid)
			local ok, err = t.kill(pid, "TERM")
			assert.is_nil(ok)
			assert.is_string(err)
		end)

		it("refuses pid 0, -1 and 1 and unknown signals", function()
			assert.has_error(function() t.kill(0, "TERM") end)
			assert.has_error(function() t.kill(-1, "TERM") end)
			assert.has_error(function() t.kill(1, "TERM") end)
			assert.has_error(function() t.kill(99999, "NOPE") end)
			assert.has_error(function() t.kill(99999, 1000) end)
			assert.has_error(function() t.kill("x", "TERM") end)
		end)
	end)

	describe("time", function()
		it("sleeps at least as long as asked, measured by a monotonic clock", function()
			local t0 = t.now()
			t.sleep(0.05)
			local dt = t.now() - t0
			assert.is_true(dt >= 0.05, tostring(dt))
			assert.is_true(dt < 2, tostring(dt))
		end)

		it("rejects a negative sleep", function()
			assert.has_error(function() t.sleep(-1) end)
		end)
	end)

	it("reports the real uid", function()
		local uid = t.getuid()
		assert.is_true(math.type(uid) == "integer")
		local p = io.popen("id -u")
		local want = tonumber(p:read("a"))
		p:close()
		assert.are.equal(want, uid)
	end)
end)
